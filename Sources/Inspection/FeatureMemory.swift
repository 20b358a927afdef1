import Foundation
import Imaging
import Models
import Network
import Parallel
import Tensors

/// How much memory computing feature maps of an image would take, estimated before anything image-sized is
/// allocated: a forward pass on a small probe of the same aspect ratio, with the values alive at each node tracked
/// as the executor frees them (a value lives until its last consumer; inputs and requested layers stay), scaled by
/// the area ratio (activation sizes of a convolutional network grow with the input's area).
public struct FeatureMemoryEstimate {
    /// Peak bytes of the forward pass (every value alive at the worst node, the requested layers included).
    public var forward: Int
    /// The working image (Float RGB) and the network input.
    public var input: Int
    /// Rendering: a few full-size RGB channel pictures at a time (one per thread, and the grid's current tile).
    public var rendering: Int
    public var total: Int { forward + input + rendering }
}

public enum FeatureMemory {
    /// The estimate for an input of `width` x `height` and the (resolved) `layers`.
    public static func estimate(model: LoadedModel, width: Int, height: Int, layers: [String]) throws -> FeatureMemoryEstimate {
        let probeSide = 256
        let scale = min(1, Double(probeSide) / Double(max(width, height)))
        let pw = max(32, Int((Double(width) * scale).rounded())), ph = max(32, Int((Double(height) * scale).rounded()))
        let inputName = try model.inputName
        var order: [Int] = []
        var outputShapes: [Int: [[Int]]] = [:]
        _ = try model.executor.forward([inputName: .float(Tensor(shape: [1, 3, ph, pw]))], outputs: layers, recordingFor: []) { i, outputs in
            order.append(i)
            outputShapes[i] = outputs.map(\.shape)
        }
        let nodes = model.executor.graph.nodes
        var uses: [String: Int] = [:]
        for i in order { for input in nodes[i].inputs where !input.isEmpty { uses[input, default: 0] += 1 } }
        let keep = Set(layers)
        var live: [String: Int] = [:]
        var peak = 0
        for i in order {
            for (name, bytes) in zip(nodes[i].outputs, (outputShapes[i] ?? []).map({ 4 * $0.reduce(1, *) })) where !name.isEmpty { live[name] = bytes }
            peak = max(peak, live.values.reduce(0, +))
            for input in nodes[i].inputs where !input.isEmpty && live[input] != nil {
                uses[input]! -= 1
                if uses[input] == 0 && !keep.contains(input) { live[input] = nil }
            }
            for name in nodes[i].outputs where !name.isEmpty && uses[name] == nil && !keep.contains(name) { live[name] = nil }
        }
        let ratio = Double(width) * Double(height) / (Double(pw) * Double(ph))
        // The largest plane (H x W) among the requested layers, at the probe's size.
        let largestPlane = layers.compactMap { name -> Int? in
            guard let i = order.first(where: { nodes[$0].outputs.contains(name) }),
                  let k = nodes[i].outputs.firstIndex(of: name), let shape = outputShapes[i]?[k] else { return nil }
            return shape.count == 4 ? shape[2] * shape[3] : 1
        }.max() ?? 0
        let pixels = width * height
        return FeatureMemoryEstimate(forward: Int(Double(peak) * ratio), input: pixels * 3 * 4 * 2,
                                     rendering: Int(Double(largestPlane) * ratio) * 3 * 4 * (Threading.threadCount + 1))
    }

    /// A longer side at which the estimate fits in `limit` bytes (the estimate grows with the area).
    public static func fittingSide(for estimate: FeatureMemoryEstimate, width: Int, height: Int, limit: Int) -> Int {
        let factor = (Double(limit) / Double(max(estimate.total, 1))).squareRoot()
        return max(32, Int(Double(max(width, height)) * factor * 0.95))
    }
}
