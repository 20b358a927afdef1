import Foundation
import Network
import Tensors

public enum FeatureError: Error, CustomStringConvertible, LocalizedError, Equatable {
    case notAFeatureMap(layer: String, shape: [Int])
    case channelOutOfRange(layer: String, channel: Int, channels: Int)
    case badInputTensor(shape: [Int])

    public var description: String {
        switch self {
        case let .notAFeatureMap(layer, shape):
            return "\(layer) has shape \(shape): feature maps need [1, C, H, W] (or [1, C]) activations of one image"
        case let .channelOutOfRange(layer, channel, channels):
            return "\(layer) has \(channels) channels (0...\(channels - 1)); there is no channel \(channel)"
        case let .badInputTensor(shape):
            return "the input tensor has shape \(shape); expected [1, 3, H, W]"
        }
    }

    public var errorDescription: String? { description }
}

/// One layer's activations for one image as C maps of H x W, with per-channel statistics.
public struct LayerActivations {
    /// The value name the activations were read from.
    public let layer: String
    /// The activations as the network produced them ([1, C, H, W] or [1, C]).
    public let tensor: Tensor
    public let channels: Int
    public let height: Int
    public let width: Int
    /// Per channel: mean, minimum and maximum over the map.
    public let means: [Float]
    public let minima: [Float]
    public let maxima: [Float]

    /// Wraps a [1, C, H, W], [C, H, W] or [1, C] tensor (the last as C maps of 1 x 1).
    public init(layer: String, tensor: Tensor) throws {
        let s = tensor.shape
        let chw: (Int, Int, Int)
        switch s.count {
        case 4 where s[0] == 1: chw = (s[1], s[2], s[3])
        case 3: chw = (s[0], s[1], s[2])
        case 2 where s[0] == 1: chw = (s[1], 1, 1)
        default: throw FeatureError.notAFeatureMap(layer: layer, shape: s)
        }
        self.layer = layer
        self.tensor = tensor
        (channels, height, width) = chw
        let plane = chw.1 * chw.2
        var means = [Float](repeating: 0, count: chw.0), minima = means, maxima = means
        tensor.withUnsafeBufferPointer { p in
            for c in 0..<chw.0 {
                let base = p.baseAddress! + c * plane
                var sum: Double = 0, lo = Float.infinity, hi = -Float.infinity
                for i in 0..<plane {
                    let v = base[i]
                    sum += Double(v)
                    lo = min(lo, v); hi = max(hi, v)
                }
                means[c] = plane > 0 ? Float(sum / Double(plane)) : 0
                minima[c] = plane > 0 ? lo : 0
                maxima[c] = plane > 0 ? hi : 0
            }
        }
        self.means = means
        self.minima = minima
        self.maxima = maxima
    }

    /// True when some activation is negative (pre-activation maps): such layers are drawn with a diverging map.
    public var isSigned: Bool { (minima.min() ?? 0) < 0 }

    /// The C, H, W shape as text ("480x28x28").
    public var shapeText: String { "\(channels)x\(height)x\(width)" }

    /// Channel `c` as `height * width` values, row-major.
    public func channel(_ c: Int) -> [Float] {
        precondition(c >= 0 && c < channels, "channel \(c) of \(channels)")
        let plane = height * width
        return tensor.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: $0.baseAddress! + c * plane, count: plane)) }
    }

    /// The mean over channels at each position: where the layer as a whole fires.
    public func meanMap() -> [Float] {
        let plane = height * width
        var out = [Float](repeating: 0, count: plane)
        tensor.withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { o in
                for c in 0..<channels {
                    let base = p.baseAddress! + c * plane
                    for i in 0..<plane { o[i] += base[i] }
                }
                let inv = channels > 0 ? 1 / Float(channels) : 0
                for i in 0..<plane { o[i] *= inv }
            }
        }
        return out
    }

    /// The `k` channels with the highest mean activation, highest first (ties: lower channel first).
    public func topChannels(_ k: Int) -> [Int] {
        Array(channelsByMean().prefix(max(0, k)))
    }

    /// Every channel ordered by mean activation, highest first (ties: lower channel first).
    public func channelsByMean() -> [Int] {
        means.indices.sorted { means[$0] != means[$1] ? means[$0] > means[$1] : $0 < $1 }
    }

    /// The channels to show: all, the top `k` by mean, or a `fixed` list (as given); in channel order, or by mean
    /// (highest first) when `sortByMean`.
    public func selectChannels(top k: Int?, sortByMean: Bool, fixed: [Int]? = nil) -> [Int] {
        if let fixed {
            return sortByMean ? fixed.sorted { means[$0] != means[$1] ? means[$0] > means[$1] : $0 < $1 } : fixed
        }
        var chosen = k.map { topChannels($0) } ?? Array(0..<channels)
        if sortByMean {
            if k == nil { chosen = channelsByMean() }
        } else {
            chosen.sort()
        }
        return chosen
    }
}

/// Which layers `--all-layers` shows, and file-system-safe folder names for layers.
public enum FeatureLayers {
    /// Every feature-map output (Conv, Concat, pooling: see `GraphExecutor.producesFeatureMaps`) in graph order; one
    /// whose only consumer is an activation is shown after the activation (what the next layer sees, e.g.
    /// GoogLeNet's `conv2_3x3` rather than `conv2_3x3_pre_relu`).
    public static func all(in executor: GraphExecutor) -> [String] {
        let graph = executor.graph
        var consumers: [String: [Int]] = [:]
        for (i, node) in graph.nodes.enumerated() {
            for input in node.inputs where !input.isEmpty { consumers[input, default: []].append(i) }
        }
        var seen = Set<String>()
        var names: [String] = []
        for (i, node) in graph.nodes.enumerated() where executor.producesFeatureMaps(node: i) {
            guard var name = node.outputs.first, !name.isEmpty else { continue }
            if let users = consumers[name], users.count == 1,
               executor.isActivation(node: users[0]), let activated = graph.nodes[users[0]].outputs.first {
                name = activated
            }
            if seen.insert(name).inserted { names.append(name) }
        }
        return names
    }

    /// A folder name for a layer: letters, digits, '.', '_' and '-' kept, anything else ('/', ':', spaces) becomes '_'.
    public static func safeName(_ layer: String) -> String {
        var out = String(layer.unicodeScalars.map { s -> Character in
            let ok = (s.value < 128) && (CharacterSet.alphanumerics.contains(s) || s == "." || s == "_" || s == "-")
            return ok ? Character(s) : "_"
        })
        if out.isEmpty || out.allSatisfy({ $0 == "." }) { out = "_" + out }
        if out.hasPrefix("-") || out.hasPrefix(".") { out = "_" + out }
        return out
    }

    /// Safe folder names for several layers, made distinct with a numeric suffix when two names collide.
    public static func safeNames(_ layers: [String]) -> [String: String] {
        var used = Set<String>()
        var result: [String: String] = [:]
        for layer in layers where result[layer] == nil {
            let base = safeName(layer)
            var name = base, n = 2
            while used.contains(name.lowercased()) { name = "\(base)-\(n)"; n += 1 }
            used.insert(name.lowercased())
            result[layer] = name
        }
        return result
    }
}
