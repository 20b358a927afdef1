import Foundation
import Network

/// Receptive fields of a graph's values, per spatial axis (height, width):
/// - `kernel`: the effective window of the node itself (dilation included), for Conv and pooling nodes;
/// - `jump`: the distance in input pixels between neighbouring output positions (the product of the strides so far);
/// - `size`: the side of the input region one output position sees.
/// A windowed node with kernel k, stride s after (size r, jump j) gives r + (k - 1)·j and j·s; element-wise nodes,
/// Concat and Add take the largest field of their inputs (every branch is followed). Global pooling, Flatten and
/// fully connected layers see the whole image and have no field (nil).
public struct ReceptiveField: Equatable, Codable, Sendable {
    public var kernel: [Int]?
    public var jump: [Int]
    public var size: [Int]

    public init(kernel: [Int]? = nil, jump: [Int], size: [Int]) {
        self.kernel = kernel
        self.jump = jump
        self.size = size
    }

    /// The field of an image input: one pixel, jump 1.
    public static let pixel = ReceptiveField(jump: [1, 1], size: [1, 1])

    /// Fields by value name for every value computed from `input`. Nodes whose shapes say they are not spatial
    /// (rank below 4 when `shapes` knows it) get none.
    public static func compute(graph: Graph, input: String, shapes: [String: [Int]] = [:]) -> [String: ReceptiveField] {
        var fields: [String: ReceptiveField] = [input: .pixel]
        for node in graph.nodes {
            let known = node.inputs.compactMap { fields[$0] }
            guard !known.isEmpty else { continue }
            var out: ReceptiveField?
            switch node.opType {
            case "Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool":
                guard node.opType != "ConvTranspose", let first = fields[node.inputs[0]],
                      let window = Self.window(node, graph: graph) else { break }
                out = ReceptiveField(kernel: window.kernel,
                                     jump: zip(first.jump, window.stride).map { $0 * $1 },
                                     size: (0..<2).map { first.size[$0] + (window.kernel[$0] - 1) * first.jump[$0] })
            case "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", "Flatten", "Gemm", "MatMul",
                 "Softmax", "LogSoftmax", "ReduceMean", "ReduceMax", "ReduceSum":
                out = nil
            default:
                // Element-wise (Relu, BatchNormalization, LRN, Dropout, Add, Mul, Concat, Pad, Clip …): the
                // largest field among the inputs; LRN mixes channels only, Pad moves positions but widens nothing.
                // Data movement (Reshape, Transpose, Slice, Split …) keeps each element's field: a channel shuffle's
                // [N,2,C/2,H,W] view still has its spatial axes (a value of rank below 4 has none and gets no field).
                out = ReceptiveField(jump: (0..<2).map { a in known.map { $0.jump[a] }.max()! },
                                     size: (0..<2).map { a in known.map { $0.size[a] }.max()! })
            }
            guard let field = out else { continue }
            for name in node.outputs where !name.isEmpty {
                if let shape = shapes[name], shape.count < 4 { continue }
                fields[name] = field
            }
        }
        return fields
    }

    /// A Conv/pooling node's kernel (dilated) and strides per spatial axis; 1-D windows act on the width.
    static func window(_ node: Node, graph: Graph) -> (kernel: [Int], stride: [Int])? {
        func ints(_ name: String) -> [Int]? {
            switch node.attributes[name] {
            case .ints(let v)?: return v
            case .int(let v)?: return [v]
            default: return nil
            }
        }
        var kernel = ints("kernel_shape")
        if kernel == nil, node.opType == "Conv", node.inputs.count > 1,
           let w = graph.initializers[node.inputs[1]]?.shape, w.count >= 3 {
            kernel = Array(w.dropFirst(2))
        }
        guard var k = kernel, (1...2).contains(k.count) else { return nil }
        var s = ints("strides") ?? Array(repeating: 1, count: k.count)
        var d = ints("dilations") ?? Array(repeating: 1, count: k.count)
        guard s.count == k.count, d.count == k.count else { return nil }
        if k.count == 1 { k = [1] + k; s = [1] + s; d = [1] + d }
        return ((0..<2).map { d[$0] * (k[$0] - 1) + 1 }, s)
    }
}
