import Foundation

/// What each node's operator says about itself, for the parts of the program that look at a graph without running
/// it (the parameter list, the layer table, the feature-map walk). Node indices are those of `graph.nodes`.
extension GraphExecutor {
    /// Input positions of node `node` at which an initializer is a trainable parameter (see
    /// `GraphOperator.isParameterInput`): a Conv's weight and bias, but not a Clip's bounds.
    public func parameterInputIndices(node: Int) -> [Int] {
        graph.nodes[node].inputs.indices.filter { operators[node].isParameterInput($0) }
    }

    /// The trainable parameters of the graph: float initializers at a parameter input of some node, in file order.
    /// Integer initializers (shapes, axes), configuration (Clip's bounds, pads) and statistics (BatchNormalization's
    /// mean and variance) are not parameters.
    public var parameterNames: [String] {
        var used = Set<String>()
        for i in graph.nodes.indices {
            for k in parameterInputIndices(node: i) {
                let name = graph.nodes[i].inputs[k]
                if graph.initializers[name]?.floatTensor != nil { used.insert(name) }
            }
        }
        return graph.initializerOrder.filter { used.contains($0) }
    }

    /// Whether node `node` is an elementwise non-linearity (Relu, Clip, Sigmoid …).
    public func isActivation(node: Int) -> Bool { operators[node].isActivation }

    /// Whether node `node` produces feature maps worth looking at (convolutions, pools, concatenated branches); a
    /// Concat of shape arithmetic (`computesOnlyShapes`) does not.
    public func producesFeatureMaps(node: Int) -> Bool { operators[node].producesFeatureMaps && !computesOnlyShapes(node: node) }

    /// Multiply-accumulates of node `node` given the shapes of the values (by name, as from `valueShapes`);
    /// initializers' shapes are taken from the graph.
    public func multiplyAccumulates(node: Int, shapes: [String: [Int]]) -> Int {
        let n = graph.nodes[node]
        func shape(_ name: String) -> [Int]? { name.isEmpty ? nil : graph.initializers[name]?.shape ?? shapes[name] }
        return operators[node].multiplyAccumulates(inputShapes: n.inputs.map(shape), outputShapes: n.outputs.map(shape))
    }
}

/// The layers that get short ordinal names, the way Caffe and Keras tutorials number them: convolutions (`conv3`)
/// and windowed pools (`pool2`: MaxPool and AveragePool; global pools are not counted, they are the classifier's).
public enum LayerOrdinalKind: String, CaseIterable, Sendable {
    case conv
    case pool
}

/// The traits a `GraphExecutor` answers, for code that holds only a `Graph` (layer names): each node's operator is
/// built from its attributes alone, which is cheap; a node no operator supports has none of the traits.
public struct GraphTraits {
    public let isActivation: [Bool]
    public let ordinalKind: [LayerOrdinalKind?]

    public init(graph: Graph) {
        let operators = graph.nodes.map { try? OperatorRegistry.make($0, opset: graph.opsetVersion) }
        isActivation = operators.map { $0?.isActivation ?? false }
        ordinalKind = operators.map { $0?.ordinalKind }
    }
}
