import Foundation
import Tensors

/// One term of a dream objective: a layer (value name), its weight, and optionally some of its channels.
public struct DreamLayer: Equatable, CustomStringConvertible {
    public var name: String
    public var weight: Float
    /// The channels the objective reads (empty: all of them); the summary is taken over their union.
    public var channels: [Int]
    /// How the activations are summarised: DeepDream's mean square, or the plain mean (linear: for one channel or a
    /// class logit, which the square would push further down when it is negative).
    public var reduction: DreamReduction = .meanSquare

    public init(name: String, weight: Float = 1, channel: Int? = nil, reduction: DreamReduction = .meanSquare) {
        self.init(name: name, weight: weight, channels: channel.map { [$0] } ?? [], reduction: reduction)
    }

    public init(name: String, weight: Float = 1, channels: [Int], reduction: DreamReduction = .meanSquare) {
        self.name = name
        self.weight = weight
        self.channels = channels
        self.reduction = reduction
    }

    /// The single channel, when exactly one is chosen (setting it chooses that one alone, or all with nil).
    public var channel: Int? {
        get { channels.count == 1 ? channels[0] : nil }
        set { channels = newValue.map { [$0] } ?? [] }
    }

    /// Parses the command-line form `name`, `name:weight` or `name:weight:channels` (channels as `97,130`; an empty
    /// weight, `name::97`, is 1). Names may themselves hold colons: only trailing parts that parse are taken.
    public init(parsing spec: String) throws {
        let parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        // A weight that is a number but not a finite one (nan, inf) is a mistake, not part of a layer's name.
        for part in parts.suffix(2) where Float(part).map({ !$0.isFinite }) ?? false {
            throw DreamError.badLayerSpec(spec: spec, problem: "the weight must be a finite number")
        }
        if parts.count >= 3, let channels = try Self.channelList(parts[parts.count - 1]),
           parts[parts.count - 2].isEmpty || Self.weight(parts[parts.count - 2]) != nil {
            let w = Self.weight(parts[parts.count - 2]) ?? 1
            self.init(name: parts.dropLast(2).joined(separator: ":"), weight: w, channels: channels)
        } else if parts.count >= 2, let w = Self.weight(parts[parts.count - 1]) {
            self.init(name: parts.dropLast().joined(separator: ":"), weight: w)
        } else {
            self.init(name: spec)
        }
        if name.isEmpty { throw DreamError.badLayerSpec(spec: spec, problem: "the layer name is empty") }
    }

    static func weight(_ text: String) -> Float? {
        guard let w = Float(text), w.isFinite else { return nil }
        return w
    }

    /// `97,130` -> [97, 130]; nil when the text is no list of numbers at all (then it is part of the name), an error
    /// when it looks like one but holds a negative or non-integer channel.
    static func channelList(_ text: String) throws -> [Int]? {
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard !text.isEmpty, items.contains(where: { Int($0) != nil }) || items.count > 1 else { return nil }
        var channels: [Int] = []
        for item in items {
            guard let c = Int(item), c >= 0 else {
                throw DreamError.badLayerSpec(spec: text, problem: "channels are numbers 0, 1, … separated by commas, not '\(item)'")
            }
            if !channels.contains(c) { channels.append(c) }
        }
        return channels
    }

    public var description: String {
        let chosen = channels.isEmpty ? "" : channels.count == 1 ? "[channel \(channels[0])]"
            : "[channels \(channels.map(String.init).joined(separator: ","))]"
        return "\(name)\(chosen)\(reduction == .mean ? "(mean)" : ""):\(weight)"
    }
}

/// The summary of a layer's activations a dream maximises.
public enum DreamReduction: String, CaseIterable, Sendable {
    /// mean(a²): the classic DeepDream objective.
    case meanSquare = "l2"
    /// mean(a): a linear objective, as in feature visualisation and class dreams.
    case mean
}

/// What a dream maximises, given the activations of its layers:
/// - plain: Σ weight · mean(act²) over the layer (or some channels of it), the classic DeepDream objective;
/// - guided: Σ weight · mean over positions of max over guide positions of ⟨act(p), guide(q)⟩ (match the guide's features);
/// - normalised (`normalizers`): each layer's term divided by its value on a reference image (neural-dream's
///   -normalize_weights), so that layers whose mean squares differ by orders of magnitude pull comparably.
/// Returns the value and d(objective)/d(activation) for each layer.
public struct DreamObjective {
    public var layers: [DreamLayer]
    /// Guide features per layer value name, as [C, M] (M guide positions), when dreaming towards a guide image.
    public var guideFeatures: [String: Tensor] = [:]
    /// Per layer (same order as `layers`): the value its term is divided by; empty for no normalisation.
    public var normalizers: [Double] = []

    public init(layers: [DreamLayer]) { self.layers = layers }

    public func evaluate(_ activations: [String: Tensor]) throws -> (value: Double, gradients: [String: Tensor]) {
        let result = try evaluateLayers(activations)
        return (result.value, result.gradients)
    }

    /// The objective, each layer's own term (unweighted, not normalised: what `normalizers` are measured in), and the
    /// gradients.
    public func evaluateLayers(_ activations: [String: Tensor]) throws -> (value: Double, layerValues: [Double], gradients: [String: Tensor]) {
        var total = 0.0
        var layerValues = [Double](repeating: 0, count: layers.count)
        var gradients: [String: Tensor] = [:]
        for (index, layer) in layers.enumerated() {
            guard let act = activations[layer.name] else { continue }
            let (value, grad) = try Self.term(layer, act, guide: guideFeatures[layer.name])
            layerValues[index] = value
            var scale = Double(layer.weight)
            if index < normalizers.count { scale /= Self.safeNormalizer(normalizers[index]) }
            total += scale * value
            var weighted = grad
            if scale != 1 { weighted.scale(by: Float(scale)) }
            if var existing = gradients[layer.name] {
                existing.add(weighted)
                gradients[layer.name] = existing
            } else {
                gradients[layer.name] = weighted
            }
        }
        return (total, layerValues, gradients)
    }

    /// One layer's term and its gradient.
    static func term(_ layer: DreamLayer, _ act: Tensor, guide: Tensor?) throws -> (Double, Tensor) {
        if let guide { return guided(act, guide: guide) }
        if layer.channels.isEmpty { return layer.reduction == .mean ? mean(act) : meanSquare(act) }
        for channel in layer.channels {
            guard act.rank >= 2, channel >= 0, channel < act.shape[1] else {
                throw DreamError.channelOutOfRange(layer: layer.name, channel: channel, channels: act.rank >= 2 ? act.shape[1] : 0)
            }
        }
        return channelsSummary(act, channels: layer.channels, square: layer.reduction == .meanSquare)
    }

    /// A normaliser is a magnitude: its absolute value, kept away from zero (a layer silent on the start image would
    /// otherwise get an infinite weight).
    static func safeNormalizer(_ v: Double) -> Double { max(abs(v), 1e-8) }

    /// mean(a²) and its gradient 2a/n.
    static func meanSquare(_ a: Tensor) -> (Double, Tensor) {
        let n = Float(max(a.count, 1))
        return (a.sumOfSquares() / Double(n), a.map { 2 * $0 / n })
    }

    /// mean over the chosen channels of a² (or of a), over every position of those channels of an [N, C, …] tensor
    /// (a class logit when a is [N, classes]); zero gradient elsewhere.
    static func channelsSummary(_ a: Tensor, channels chosen: [Int], square: Bool) -> (Double, Tensor) {
        let batch = a.shape[0], channels = a.shape[1], plane = a.count / max(batch * channels, 1)
        let n = Float(max(batch * plane * chosen.count, 1))
        var sum = 0.0
        let grad = Tensor(shape: a.shape) { g in
            g.initialize(repeating: 0)
            a.withUnsafeBufferPointer { x in
                for b in 0..<batch {
                    for channel in chosen {
                        let base = (b * channels + channel) * plane
                        for i in base..<(base + plane) {
                            if square {
                                sum += Double(x[i]) * Double(x[i])
                                g[i] = 2 * x[i] / n
                            } else {
                                sum += Double(x[i])
                                g[i] = 1 / n
                            }
                        }
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
