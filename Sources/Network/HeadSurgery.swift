import Foundation
import Tensors

/// What follows the new head's Gemm: softmax (N classes), sigmoid (binary / multi-label) or nothing (regression).
public enum HeadActivation: String, Codable, Sendable, CaseIterable {
    case softmax, sigmoid, linear
}

public enum SurgeryError: Error, LocalizedError, CustomStringConvertible {
    case noClassifier(graph: String)
    case featureNotFound(String)

    public var description: String {
        switch self {
        case .noClassifier(let graph):
            return "\(graph): no Gemm or 1x1 Conv classifier found to cut the head at; name the feature tensor (a model description's feature_vector_for_transfer_learning)"
        case .featureNotFound(let name):
            return "the feature tensor '\(name)' is not computed by the graph"
        }
    }
}

/// A graph with a new head, and the names the head's parts ended up with.
public struct NewHead {
    public var graph: Graph
    public var weight: String, bias: String
    /// Raw scores (`logits`, or `prediction` for a linear head) and the activation's output (`prob`) if any.
    public var scores: String
    public var probability: String?
}

/// Cuts a classifier's head off and puts a new one on: the graph keeps only what computes the feature tensor
/// (old head weights pruned), then [GlobalAveragePool when the features are still spatial] · Flatten · Gemm →
/// `logits` · Softmax/Sigmoid → `prob` (a linear head outputs `prediction`).
public enum HeadSurgery {
    public static let weightName = "head_W"
    public static let biasName = "head_B"
    public static let logitsName = "logits"
    public static let probabilityName = "prob"
    public static let predictionName = "prediction"

    /// The input of the last Gemm (or 1x1 Conv) — the classic feature vector of a CNN classifier.
    public static func defaultFeatureTensor(of graph: Graph) throws -> String {
        for node in graph.nodes.reversed() {
            if node.opType == "Gemm" || node.opType == "MatMul" { return node.inputs[0] }
            if node.opType == "Conv", node.inputs.count > 1, let w = graph.initializers[node.inputs[1]], w.shape.count == 4,
               w.shape[2] == 1, w.shape[3] == 1 { return node.inputs[0] }
        }
        throw SurgeryError.noClassifier(graph: graph.name)
    }

    /// The graph with every node, initializer and output that `outputs` do not need removed.
    public static func pruned(_ graph: Graph, keeping outputs: [String]) throws -> Graph {
        var producer: [String: Int] = [:]
        for (i, node) in graph.nodes.enumerated() { for o in node.outputs where !o.isEmpty { producer[o] = i } }
        var needed = Set<Int>(), stack = outputs
        for name in outputs where producer[name] == nil && !graph.inputs.contains(where: { $0.name == name }) {
            throw SurgeryError.featureNotFound(name)
        }
        while let name = stack.popLast() {
            guard let i = producer[name], needed.insert(i).inserted else { continue }
            stack.append(contentsOf: graph.nodes[i].inputs.filter { !$0.isEmpty })
        }
        var g = graph
        g.nodes = graph.nodes.indices.filter { needed.contains($0) }.map { graph.nodes[$0] }
        let used = Set(g.nodes.flatMap(\.inputs))
        g.initializers = graph.initializers.filter { used.contains($0.key) }
        g.initializerOrder = graph.initializerOrder.filter { used.contains($0) }
        g.inputs = graph.inputs.filter { used.contains($0.name) || outputs.contains($0.name) }
        g.outputs = outputs.map { name in graph.outputs.first { $0.name == name } ?? ValueInfo(name: name) }
        return g
    }

    /// `graph` pruned to `feature` (shape `featureShape` for one image, e.g. [1, 1024] or [1, 512, 13, 13]) plus a new
    /// head with `outputs` units. The weights start as given (the trainer's initialisation); names that would
    /// collide with what remains get a numeric suffix.
    public static func replaceHead(of graph: Graph, feature: String, featureShape: [Int], outputs: Int,
                                   activation: HeadActivation, weight: Tensor, bias: Tensor) throws -> NewHead {
        var g = try pruned(graph, keeping: [feature])
        var taken = Set(g.nodes.flatMap { $0.inputs + $0.outputs + [$0.name] }).union(g.initializers.keys)
        func fresh(_ base: String) -> String {
            var name = base, k = 1
            while taken.contains(name) { k += 1; name = "\(base)_\(k)" }
            taken.insert(name)
            return name
        }
        var x = feature
        if featureShape.count == 4 && featureShape[2] * featureShape[3] > 1 {
            let pooled = fresh("head_pool")
            g.nodes.append(Node(name: pooled, opType: "GlobalAveragePool", inputs: [x], outputs: [pooled]))
            x = pooled
        }
        if featureShape.count != 2 {
            let flat = fresh("head_flatten")
            g.nodes.append(Node(name: flat, opType: "Flatten", inputs: [x], outputs: [flat], attributes: ["axis": .int(1)]))
            x = flat
        }
        let w = fresh(weightName), b = fresh(biasName)
        precondition(weight.rank == 2 && weight.shape[0] == outputs && bias.shape == [outputs], "head weight [\(outputs), features], bias [\(outputs)]")
        g.initializers[w] = .float(weight)
        g.initializers[b] = .float(bias)
        g.initializerOrder += [w, b]
        let scores = fresh(activation == .linear ? predictionName : logitsName)
        g.nodes.append(Node(name: fresh("head_gemm"), opType: "Gemm", inputs: [x, w, b], outputs: [scores],
                            attributes: ["transB": .int(1)]))
        g.outputs = [ValueInfo(name: scores, shape: [nil, outputs])]
        if activation != .linear {
            let prob = fresh(probabilityName)
            g.nodes.append(activation == .softmax
                ? Node(name: fresh("head_softmax"), opType: "Softmax", inputs: [scores], outputs: [prob], attributes: ["axis": .int(1)])
                : Node(name: fresh("head_sigmoid"), opType: "Sigmoid", inputs: [scores], outputs: [prob]))
            g.outputs.append(ValueInfo(name: prob, shape: [nil, outputs]))
        }
        return NewHead(graph: g, weight: w, bias: b, scores: scores, probability: g.outputs.count > 1 ? g.outputs[1].name : nil)
    }
}

extension SurgeryError {
    public var errorDescription: String? { description }
}
