import Foundation

/// Which parameters exist (as the graph's operators define them, see `GraphExecutor.parameterNames`) and which
/// are frozen.
public struct ParameterFreezing {
    public let executor: GraphExecutor
    public var graph: Graph { executor.graph }

    public init(executor: GraphExecutor) { self.executor = executor }

    /// Trainable-candidate parameters in file order.
    public var parameterNames: [String] { executor.parameterNames }

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
