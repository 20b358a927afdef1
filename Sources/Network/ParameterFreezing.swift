import Foundation

/// Which parameters (float initializers consumed by nodes) exist, and which are frozen.
public struct ParameterFreezing {
    public let graph: Graph

    public init(graph: Graph) { self.graph = graph }

    /// Trainable-candidate parameters: float initializers used as node inputs, in file order.
    /// Shape-like integers and BatchNormalization statistics (mean, variance) are not parameters.
    public var parameterNames: [String] {
        var statistics = Set<String>()
        var used = Set<String>()
        for node in graph.nodes {
            for (k, input) in node.inputs.enumerated() where graph.initializers[input]?.floatTensor != nil {
                if node.opType == "BatchNormalization" && k >= 3 { statistics.insert(input) } else { used.insert(input) }
            }
        }
        return graph.initializerOrder.filter { used.contains($0) && !statistics.contains($0) }
    }

    /// Parameters frozen by name prefix (e.g. "conv1", "inception_3") and/or by position: every parameter of
    /// the nodes before the node that produces `beforeLayer` (a value or node name).
    public func frozen(prefixes: [String] = [], beforeLayer: String? = nil) throws -> Set<String> {
        let names = parameterNames
        var frozen = Set(names.filter { name in prefixes.contains { name.hasPrefix($0) } })
        if let layer = beforeLayer {
            let value = try LayerNames(graph: graph).resolve(layer)
            guard let index = graph.nodes.firstIndex(where: { $0.outputs.contains(value) }) else {
                throw ExecutionError.unknownValue(name: layer, suggestions: [])
            }
            let parameterSet = Set(names)
            for node in graph.nodes[..<index] { frozen.formUnion(node.inputs.filter { parameterSet.contains($0) }) }
        }
        return frozen
    }
}
