import Foundation
import Tensors

/// One term of a dream objective: a layer (value name), its weight, and optionally a single channel.
public struct DreamLayer: Equatable, CustomStringConvertible {
    public var name: String
    public var weight: Float
    public var channel: Int?
    /// How the activations are summarised: DeepDream's mean square, or the plain mean (linear: for one channel or a
    /// class logit, which the square would push further down when it is negative).
    public var reduction: DreamReduction = .meanSquare

    public init(name: String, weight: Float = 1, channel: Int? = nil, reduction: DreamReduction = .meanSquare) {
        self.name = name
        self.weight = weight
        self.channel = channel
        self.reduction = reduction
    }

    /// Parses the command-line form `name` or `name:weight`; the weight must be a finite number.
    public init(parsing spec: String) throws {
        if let colon = spec.lastIndex(of: ":"), let w = Float(spec[spec.index(after: colon)...]) {
            guard w.isFinite else { throw DreamLayerError(spec: spec, reason: "the weight must be a finite number") }
            self.init(name: String(spec[..<colon]), weight: w)
        } else {
            self.init(name: spec)
        }
        guard !name.isEmpty else { throw DreamLayerError(spec: spec, reason: "the layer name is empty") }
    }

    public var description: String {
        "\(name)\(channel.map { "[channel \($0)]" } ?? "")\(reduction == .mean ? "(mean)" : ""):\(weight)"
    }
}

/// The summary of a layer's activations a dream maximises.
public enum DreamReduction: String, CaseIterable, Sendable {
    /// mean(a²): the classic DeepDream objective.
    case meanSquare = "l2"
    /// mean(a): a linear objective, as in feature visualisation and class dreams.
    case mean
}

/// A `--layer NAME:WEIGHT` that cannot be used.
public struct DreamLayerError: Error, LocalizedError, CustomStringConvertible {
    public var spec: String
    public var reason: String
    public var description: String { "--layer '\(spec)': \(reason)" }
    public var errorDescription: String? { description }
}

/// What a dream maximises, given the activations of its layers:
/// - plain: Σ weight · mean(act²) over the layer (or one channel of it), the classic DeepDream objective;
/// - guided: Σ weight · mean over positions of max over guide positions of ⟨act(p), guide(q)⟩ (match the guide's features).
/// Returns the value and d(objective)/d(activation) for each layer.
public struct DreamObjective {
    public var layers: [DreamLayer]
    /// Guide features per layer value name, as [C, M] (M guide positions), when dreaming towards a guide image.
    public var guideFeatures: [String: Tensor] = [:]

    public init(layers: [DreamLayer]) { self.layers = layers }

    public func evaluate(_ activations: [String: Tensor]) throws -> (value: Double, gradients: [String: Tensor]) {
        var total = 0.0
        var gradients: [String: Tensor] = [:]
        for layer in layers {
            guard let act = activations[layer.name] else { continue }
            let (value, grad): (Double, Tensor)
            if let guide = guideFeatures[layer.name] {
                (value, grad) = Self.guided(act, guide: guide)
            } else if let channel = layer.channel {
                guard act.rank >= 2, channel >= 0, channel < act.shape[1] else {
                    throw DreamError.channelOutOfRange(layer: layer.name, channel: channel, channels: act.rank >= 2 ? act.shape[1] : 0)
                }
                (value, grad) = layer.reduction == .mean ? Self.channelMean(act, channel: channel) : Self.channelMeanSquare(act, channel: channel)
            } else {
                (value, grad) = layer.reduction == .mean ? Self.mean(act) : Self.meanSquare(act)
            }
            total += Double(layer.weight) * value
            var weighted = grad
            if layer.weight != 1 { weighted.scale(by: layer.weight) }
            if var existing = gradients[layer.name] {
                existing.add(weighted)
                gradients[layer.name] = existing
            } else {
                gradients[layer.name] = weighted
            }
        }
        return (total, gradients)
    }

    /// mean(a²) and its gradient 2a/n.
    static func meanSquare(_ a: Tensor) -> (Double, Tensor) {
        let n = Float(max(a.count, 1))
        return (a.sumOfSquares() / Double(n), a.map { 2 * $0 / n })
    }

    /// mean(a[:, c]²) over one channel of an [N, C, …] tensor; zero gradient elsewhere.
    static func channelMeanSquare(_ a: Tensor, channel: Int) -> (Double, Tensor) {
        let batch = a.shape[0], channels = a.shape[1], plane = a.count / max(batch * channels, 1)
        let n = Float(max(batch * plane, 1))
        var sum = 0.0
        let grad = Tensor(shape: a.shape) { g in
            g.initialize(repeating: 0)
            a.withUnsafeBufferPointer { x in
                for b in 0..<batch {
                    let base = (b * channels + channel) * plane
                    for i in base..<(base + plane) {
                        sum += Double(x[i]) * Double(x[i])
                        g[i] = 2 * x[i] / n
                    }
                }
            }
        }
        return (sum / Double(n), grad)
    }

    /// mean(a) and its gradient 1/n.
    static func mean(_ a: Tensor) -> (Double, Tensor) {
        let n = Float(max(a.count, 1))
        return (Double(a.sum()) / Double(n), Tensor(shape: a.shape, repeating: 1 / n))
    }

    /// mean(a[:, c]) over one channel of an [N, C, …] tensor (a class logit when a is [N, classes]).
    static func channelMean(_ a: Tensor, channel: Int) -> (Double, Tensor) {
        let batch = a.shape[0], channels = a.shape[1], plane = a.count / max(batch * channels, 1)
        let n = Float(max(batch * plane, 1))
        var sum = 0.0
        let grad = Tensor(shape: a.shape) { g in
            g.initialize(repeating: 0)
            a.withUnsafeBufferPointer { x in
                for b in 0..<batch {
                    let base = (b * channels + channel) * plane
                    for i in base..<(base + plane) {
                        sum += Double(x[i])
                        g[i] = 1 / n
                    }
                }
            }
        }
        return (sum / Double(n), grad)
    }

    /// Guided objective on a [1, C, H, W] activation with guide features [C, M].
    static func guided(_ a: Tensor, guide: Tensor) -> (Double, Tensor) {
        let channels = a.shape[1], positions = a.count / channels, m = guide.shape[1]
        var total = 0.0
        let grad = Tensor(shape: a.shape) { g in
            g.initialize(repeating: 0)
            a.withUnsafeBufferPointer { x in
                guide.withUnsafeBufferPointer { y in
                    for p in 0..<positions {
                        var best = -Float.greatestFiniteMagnitude, bestQ = 0
                        for q in 0..<m {
                            var dot: Float = 0
                            for c in 0..<channels { dot += x[c * positions + p] * y[c * m + q] }
                            if dot > best { best = dot; bestQ = q }
                        }
                        total += Double(best)
                        for c in 0..<channels { g[c * positions + p] = y[c * m + bestQ] / Float(positions) }
                    }
                }
            }
        }
        return (total / Double(positions), grad)
    }
}
