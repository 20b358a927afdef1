import Foundation
import Imaging
import Models
import Network
import Tensors

/// Ways of answering "which pixels made the network choose this class".
public enum AttributionMethod: String, CaseIterable, Codable, Sendable {
    /// Selvaraju et al. 2017: channel weights = spatial mean of d score / d A at a layer; map = ReLU(Σ_k w_k A_k), upsampled.
    case gradcam
    /// Simonyan et al. 2014: max over colour channels of |d score / d pixel|.
    case saliency
    /// Smilkov et al. 2017: the saliency map averaged over noisy copies of the image.
    case smoothgrad
    /// Sundararajan et al. 2017: (x − baseline) · the mean gradient on the straight path from a black baseline.
    case integratedGradients = "integrated-gradients"
}

/// An attribution map over the analysed image and what it explains.
public struct Attribution {
    public var method: AttributionMethod
    public var classIndex: Int
    public var label: String
    /// Softmax probability (and score: logit, or probability for models that only output those) of the class.
    public var probability: Float
    public var score: Float
    /// Grad-CAM's layer (value name).
    public var layer: String?
    /// Row-major [height, width] at the analysed image's resolution; larger = more important for the class
    /// (integrated gradients: the magnitudes of the three colour channels' attributions summed).
    public var map: [Float]
    public var width: Int
    public var height: Int
    /// Integrated gradients: Σ attributions and score(x) − score(baseline), which it should equal (completeness).
    public var attributionSum: Double?
    public var scoreDifference: Double?
}

/// Settings of the attribution methods (defaults from the papers).
public struct AttributionSettings: Sendable {
    public var layer: String?
    /// SmoothGrad: noisy copies and the noise's standard deviation as a fraction of the 0–255 range.
    public var samples = 25
    public var noise: Float = 0.15
    /// Integrated gradients: intervals of the path (trapezoid rule, steps + 1 gradients).
    public var steps = 64
    public var seed: UInt64 = 0
    public init() {}
}

/// Computes attribution maps for one model with the executor's exact backward pass.
public final class Attributor {
    public let model: LoadedModel
    let inputName: String
    /// The class-score value (logits when the model has them) and whether it is already a probability.
    public let scoreName: String
    let scoreIsProbability: Bool

    public init(model: LoadedModel) throws {
        self.model = model
        inputName = try model.inputName
        (scoreName, scoreIsProbability) = model.classifierOutput
    }

    /// Class scores for a network input [1, 3, H, W].
    public func scores(_ x: Tensor) throws -> [Float] {
        guard let s = try model.executor.run([inputName: .float(x)], outputs: [scoreName])[scoreName]?.floatTensor else {
            throw ExecutionError.unknownValue(name: scoreName, suggestions: [])
        }
        return s.scalars
    }

    /// Softmax probabilities from scores (or the scores themselves when they already are probabilities).
    public func probabilities(fromScores s: [Float]) -> [Float] {
        if scoreIsProbability { return s }
        return Softmax.forward(Tensor(shape: [1, s.count], scalars: s), axis: 1).scalars
    }

    /// Probabilities for an image at its own size (no resize or crop).
    public func probabilities(_ image: RGBImage) throws -> [Float] {
        probabilities(fromScores: try scores(try model.inputTensor(for: image)))
    }

    /// score_c(x) and d score_c / d (each of `wrt`), plus the forward values of `wrt` and the scores.
    func scoreGradient(_ x: Tensor, classIndex c: Int, wrt: [String]) throws
        -> (scores: [Float], values: [String: Tensor], gradients: [String: Tensor]) {
        var tape = try model.executor.forward([inputName: .float(x)], outputs: Array(Set(wrt + [scoreName])), recordingFor: Set(wrt))
        guard let s = tape.values[scoreName]?.floatTensor else { throw ExecutionError.unknownValue(name: scoreName, suggestions: []) }
        guard c >= 0 && c < s.count else { throw ClassSelectionError.outOfRange(c, classes: s.count) }
        var values: [String: Tensor] = [:]
        for name in wrt where name != inputName { values[name] = tape.values[name]?.floatTensor }
        tape.values = [:]
        var seed = Tensor(shape: s.shape)
        seed.withUnsafeMutableBufferPointer { $0[c] = 1 }
        let gradients = try model.executor.backward(&tape, seeds: [scoreName: seed])
        return (s.scalars, values, gradients)
    }

    /// d score_c / d pixels (interleaved RGB, 0–255 scale) and the scores.
    public func pixelGradient(_ image: RGBImage, classIndex c: Int) throws -> (scores: [Float], gradient: [Float]) {
        let x = try model.inputTensor(for: image)
        let r = try scoreGradient(x, classIndex: c, wrt: [inputName])
        let g = r.gradients[inputName] ?? Tensor(shape: x.shape)
        return (r.scores, try model.pixelGradient(fromNetwork: g, width: image.width, height: image.height))
    }

    /// The layer Grad-CAM uses by default: the last spatial value (H·W > 1) before the network pools it away, found
    /// as the 4-D input of the first node whose output is no longer spatial (GoogLeNet: inception_5b_output). A value
    /// of higher rank whose last two axes are H and W (a channel shuffle's [N, g, C/g, H, W] view) is still spatial,
    /// and nodes that only compute shapes (Shape reading a feature map) are not layers.
    public func defaultGradCAMLayer(size: [Int] = [224, 224]) throws -> String {
        let shapes = try model.executor.valueShapes([inputName: .float(Tensor(shape: [1, 3, size[0], size[1]]))])
        func spatial(_ name: String) -> Bool { (shapes[name].map { $0.count >= 4 && $0[$0.count - 2] * $0[$0.count - 1] > 1 }) ?? false }
        for (i, node) in model.graph.nodes.enumerated() where !model.executor.computesOnlyShapes(node: i) {
            guard let input = node.inputs.first(where: { spatial($0) && shapes[$0]?.count == 4 }), let output = node.outputs.first,
                  shapes[output] != nil else { continue }
            if !spatial(output) { return input }
        }
        throw ExecutionError.unknownValue(name: "a spatial layer before the classifier", suggestions: [])
    }

    /// Explains class `classIndex` (nil: the top-1 class) of an image at its own size.
    public func explain(_ image: RGBImage, method: AttributionMethod, classIndex: Int? = nil,
                        settings: AttributionSettings = AttributionSettings()) throws -> Attribution {
        let x = try model.inputTensor(for: image)
        let s = try scores(x)
        let p = probabilities(fromScores: s)
        let c = classIndex ?? p.indices.max { p[$0] < p[$1] }!
        guard c >= 0 && c < s.count else { throw ClassSelectionError.outOfRange(c, classes: s.count) }
        var result = Attribution(method: method, classIndex: c, label: model.label(ofClass: c), probability: p[c], score: s[c],
                                 map: [], width: image.width, height: image.height)
        switch method {
        case .gradcam:
            let layer = try settings.layer.map { try LayerNames(graph: model.graph).resolve($0) } ?? defaultGradCAMLayer()
            result.layer = layer
            result.map = try gradCAM(image, classIndex: c, layer: layer).upsampled
        case .saliency:
            result.map = Self.channelMaxAbs(try pixelGradient(image, classIndex: c).gradient)
        case .smoothgrad:
            result.map = try smoothGrad(image, classIndex: c, samples: settings.samples, noise: settings.noise, seed: settings.seed)
        case .integratedGradients:
            let ig = try integratedGradients(image, classIndex: c, steps: settings.steps)
            result.map = ig.map
            result.attributionSum = ig.sum
            result.scoreDifference = ig.expected
        }
        return result
    }

    /// Grad-CAM at `layer`: the channel weights, the map at the layer's resolution, and the map upsampled bilinearly
    /// to the image.
    public func gradCAM(_ image: RGBImage, classIndex c: Int, layer: String) throws
        -> (weights: [Float], map: [Float], mapWidth: Int, mapHeight: Int, upsampled: [Float]) {
        let x = try model.inputTensor(for: image)
        let r = try scoreGradient(x, classIndex: c, wrt: [layer])
        guard let a = r.values[layer], a.rank == 4, a.shape[0] == 1 else {
            throw ExecutionError.shapeMismatch(node: layer, op: "Grad-CAM", detail: "the layer is not a [1, C, H, W] feature map")
        }
        let g = r.gradients[layer] ?? Tensor(shape: a.shape)
        let channels = a.shape[1], h = a.shape[2], w = a.shape[3], plane = h * w
        var weights = [Float](repeating: 0, count: channels)
        var map = [Float](repeating: 0, count: plane)
        a.withUnsafeBufferPointer { ap in
            g.withUnsafeBufferPointer { gp in
                for k in 0..<channels {
                    var sum: Float = 0
                    for i in 0..<plane { sum += gp[k * plane + i] }
                    weights[k] = sum / Float(plane)
                    for i in 0..<plane { map[i] += weights[k] * ap[k * plane + i] }
                }
            }
        }
        map = map.map { max($0, 0) }
        let up = ScalarMap.resized(map, width: w, height: h, toWidth: image.width, toHeight: image.height)
        return (weights, map, w, h, up)
    }

    /// SmoothGrad of the saliency map: the mean of max_c |d score / d pixel| over `samples` copies with Gaussian
    /// pixel noise of standard deviation `noise` · 255 (not clipped, as in the paper).
    public func smoothGrad(_ image: RGBImage, classIndex c: Int, samples: Int, noise: Float, seed: UInt64) throws -> [Float] {
        var rng = SplitMix64(seed: seed)
        var total = [Float](repeating: 0, count: image.width * image.height)
        let sigma = noise * 255
        for _ in 0..<max(samples, 1) {
            var noisy = image
            for i in noisy.pixels.indices { noisy.pixels[i] += sigma * rng.nextGaussian() }
            let map = Self.channelMaxAbs(try pixelGradient(noisy, classIndex: c).gradient)
            for i in total.indices { total[i] += map[i] }
        }
        return total.map { $0 / Float(max(samples, 1)) }
    }

    /// Integrated gradients from a black image, trapezoid rule over `steps` intervals: the per-pixel map (Σ over
    /// colour channels of |attribution|), the signed attributions (interleaved RGB), Σ attributions, and
    /// score(x) − score(black), which that sum approximates (completeness).
    public func integratedGradients(_ image: RGBImage, classIndex c: Int, steps: Int) throws
        -> (map: [Float], attributions: [Float], sum: Double, expected: Double) {
        let n = max(steps, 1)
        var meanGradient = [Float](repeating: 0, count: image.pixels.count)
        var first: Float = 0, last: Float = 0
        for k in 0...n {
            let alpha = Float(k) / Float(n)
            var point = image
            for i in point.pixels.indices { point.pixels[i] *= alpha }
            let (s, g) = try pixelGradient(point, classIndex: c)
            if k == 0 { first = s[c] }
            if k == n { last = s[c] }
            let weight = (k == 0 || k == n ? 0.5 : 1) / Float(n)
            for i in meanGradient.indices { meanGradient[i] += weight * g[i] }
        }
        let attributions = zip(image.pixels, meanGradient).map { $0 * $1 }
        var map = [Float](repeating: 0, count: image.width * image.height)
        for i in map.indices { map[i] = abs(attributions[3 * i]) + abs(attributions[3 * i + 1]) + abs(attributions[3 * i + 2]) }
        let sum = attributions.reduce(0.0) { $0 + Double($1) }
        return (map, attributions, sum, Double(last) - Double(first))
    }

    /// max over colour channels of |g| for interleaved RGB.
    static func channelMaxAbs(_ g: [Float]) -> [Float] {
        (0..<(g.count / 3)).map { max(abs(g[3 * $0]), abs(g[3 * $0 + 1]), abs(g[3 * $0 + 2])) }
    }

}
