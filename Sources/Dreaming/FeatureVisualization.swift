import Foundation
import Imaging
import Models
import Network
import Tensors

/// What a feature visualisation maximises.
public enum VisualizationTarget: Equatable, CustomStringConvertible {
    /// The mean activation of one channel of a layer (a linear objective: negative values count too).
    case channel(layer: String, channel: Int)
    /// The mean activation over all channels of a layer.
    case layer(String)
    /// A class score (the logit when the model has logits).
    case classScore(Int)

    public var description: String {
        switch self {
        case let .channel(layer, channel): return "\(layer) channel \(channel)"
        case let .layer(layer): return layer
        case let .classScore(c): return "class \(c)"
        }
    }
}

/// Settings of a feature visualisation; defaults follow Lucid's `render_vis` with its standard transforms.
public struct VisualizationSettings: Equatable {
    public var size = 224
    public var steps = 512
    public var learningRate: Float = 0.05
    public var seed: UInt64 = 0
    /// Optimise the value before the layer's ReLU (so a channel that starts dead still has a gradient).
    public var preReLU = true
    /// Pad, jitter, scale and rotate every step.
    public var transforms = true

    public init() {}

    public var summary: String {
        "size=\(size) steps=\(steps) lr=\(learningRate) seed=\(seed) pre_relu=\(preReLU) transforms=\(transforms) "
            + "parameterisation=fourier+decorrelated optimiser=adam"
    }
}

/// Where a visualisation is, for progress displays.
public struct VisualizationProgress {
    public var step: Int
    public var steps: Int
    public var objective: Double
    public var elapsed: TimeInterval
    public var remaining: TimeInterval
}

/// Feature visualisation (Olah et al. 2017): an image optimised from noise, in a decorrelated Fourier
/// parameterisation with Adam, under random transformations, to maximise a channel's mean activation or a class
/// score. The pixel mapping and its gradient are the model's (`LoadedModel.pixelGradient`).
public final class FeatureVisualization {
    public let model: LoadedModel
    public let target: VisualizationTarget
    public let settings: VisualizationSettings
    let inputName: String
    /// The value optimised and its channel (the pre-ReLU source of the target when there is one).
    public let objectiveValue: String
    public let objectiveChannel: Int?

    public init(model: LoadedModel, target: VisualizationTarget, settings: VisualizationSettings) throws {
        self.model = model
        self.settings = settings
        inputName = try model.inputName
        let names = LayerNames(graph: model.graph)
        switch target {
        case let .channel(layer, channel):
            let name = try names.resolve(layer)
            self.target = .channel(layer: name, channel: channel)
            let shapes = try model.executor.valueShapes([inputName: .float(Tensor(shape: [1, 3, settings.size, settings.size]))])
            guard let shape = shapes[name], shape.count >= 2 else {
                throw ExecutionError.shapeMismatch(node: name, op: "visualize", detail: "the layer has no channels")
            }
            guard channel >= 0 && channel < shape[1] else {
                throw ExecutionError.shapeMismatch(node: name, op: "visualize",
                    detail: "channel \(channel) is out of range: the layer has \(shape[1]) channels (0…\(shape[1] - 1))")
            }
            (objectiveValue, objectiveChannel) = settings.preReLU ? Self.preReLUSource(name, channel: channel, graph: model.graph, shapes: shapes)
                                                                  : (name, channel)
        case let .layer(layer):
            let name = try names.resolve(layer)
            self.target = .layer(name)
            let producer = model.executor.producer[name].map { model.graph.nodes[$0] }
            objectiveValue = settings.preReLU && producer?.opType == "Relu" ? producer!.inputs[0] : name
            objectiveChannel = nil
        case let .classScore(c):
            self.target = target
            objectiveValue = model.classifierOutput.name
            objectiveChannel = c
        }
    }

    /// The value before the ReLU that produces channel `channel` of `name`, following Concat to the branch that
    /// holds the channel (GoogLeNet's inception_4c_output channel 97 -> inception_4c_1x1_pre_relu channel 97).
    static func preReLUSource(_ name: String, channel: Int, graph: Graph, shapes: [String: [Int]]) -> (String, Int) {
        var producer: [String: Node] = [:]
        for node in graph.nodes { for o in node.outputs { producer[o] = node } }
        var value = name, c = channel
        while let node = producer[value] {
            if node.opType == "Relu" { return (node.inputs[0], c) }
            guard node.opType == "Concat", case .int(let axis)? = node.attributes["axis"], axis == 1 || axis == -3 else { break }
            var offset = 0, found = false
            for input in node.inputs {
                guard let n = shapes[input]?[1] else { break }
                if c < offset + n { value = input; c -= offset; found = true; break }
                offset += n
            }
            if !found { break }
        }
        return (name, channel)
    }

    /// The objective and its gradient seed on `objectiveValue` from that value's tensor.
    func objective(_ t: Tensor) throws -> (Double, Tensor) {
        var seed = Tensor(shape: t.shape)
        switch target {
        case .classScore(let c):
            guard c >= 0 && c < t.count else { throw ClassSelectionError.outOfRange(c, classes: t.count) }
            seed.withUnsafeMutableBufferPointer { $0[c] = 1 }
            return (Double(t.withUnsafeBufferPointer { $0[c] }), seed)
        case .layer:
            let n = Float(t.count)
            seed = Tensor(shape: t.shape, repeating: 1 / n)
            return (Double(t.sum()) / Double(n), seed)
        case .channel:
            let c = objectiveChannel ?? 0
            let plane = t.count / (t.shape[0] * t.shape[1]), channels = t.shape[1]
            var sum = 0.0
            t.withUnsafeBufferPointer { x in
                seed.withUnsafeMutableBufferPointer { g in
                    for b in 0..<t.shape[0] {
                        let base = (b * channels + c) * plane
                        for i in base..<(base + plane) { sum += Double(x[i]); g[i] = 1 / Float(plane * t.shape[0]) }
                    }
                }
            }
            return (sum / Double(plane * t.shape[0]), seed)
        }
    }

    /// Objective and d objective / d pixels (0–255 scale) for an image.
    func objectiveAndPixelGradient(_ image: RGBImage) throws -> (Double, [Float]) {
        let x = try model.inputTensor(for: image)
        var tape = try model.executor.forward([inputName: .float(x)], outputs: [objectiveValue], recordingFor: [inputName])
        guard let t = tape.values[objectiveValue]?.floatTensor else { throw ExecutionError.unknownValue(name: objectiveValue, suggestions: []) }
        tape.values = [:]
        let (value, seed) = try objective(t)
        let g = try model.executor.backward(&tape, seeds: [objectiveValue: seed])[inputName] ?? Tensor(shape: x.shape)
        return (value, try model.pixelGradient(fromNetwork: g, width: image.width, height: image.height))
    }

    /// The objective on an image as it is (no transformation).
    public func evaluate(_ image: RGBImage) throws -> Double {
        let x = try model.inputTensor(for: image)
        guard let t = try model.executor.run([inputName: .float(x)], outputs: [objectiveValue])[objectiveValue]?.floatTensor else {
            throw ExecutionError.unknownValue(name: objectiveValue, suggestions: [])
        }
        return try objective(t).0
    }

    /// Runs the optimisation and returns the picture (size x size).
    public func run(progress: ((VisualizationProgress) -> Void)? = nil) throws -> RGBImage {
        let n = settings.size
        var image = FourierImage(width: n, height: n, seed: settings.seed)
        var rng = SplitMix64(seed: settings.seed ^ 0x7669_7375_616C)
        var m = [Float](repeating: 0, count: image.parameters.count), v = m
        let beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8
        let start = Date()
        for step in 1...max(settings.steps, 1) {
            let (rgb, _) = image.render()
            let warp = settings.transforms ? RandomWarp(width: n, height: n, rng: &rng) : RandomWarp(identityFor: n, height: n)
            let warped = warp.apply(rgb)
            let picture = RGBImage(width: warp.outWidth, height: warp.outHeight, pixels: warped.map { $0 * 255 })
            let (value, pixelGradient) = try objectiveAndPixelGradient(picture)
            let gradRGB = warp.backward(pixelGradient.map { $0 * 255 })
            let g = image.backward(gradRGB, rgb: rgb)
            // Adam, ascending.
            let c1 = 1 - pow(beta1, Float(step)), c2 = 1 - pow(beta2, Float(step))
            for i in image.parameters.indices {
                m[i] = beta1 * m[i] + (1 - beta1) * g[i]
                v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i]
                image.parameters[i] += settings.learningRate * (m[i] / c1) / ((v[i] / c2).squareRoot() + epsilon)
            }
            if let progress {
                let elapsed = Date().timeIntervalSince(start)
                progress(VisualizationProgress(step: step, steps: settings.steps, objective: value, elapsed: elapsed,
                                               remaining: elapsed / Double(step) * Double(settings.steps - step)))
            }
        }
        return RGBImage(width: n, height: n, pixels: image.render().rgb.map { $0 * 255 })
    }
}
