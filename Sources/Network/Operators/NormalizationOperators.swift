import Tensors

/// ONNX LRN across channels: X [N,C,H,W] -> Y (same shape)
struct LocalResponseNormOperator: GraphOperator {
    let parameters: LRNParameters

    init(_ node: Node) throws {
        let a = AttributeReader(node: node)
        parameters = LRNParameters(size: try a.int("size", default: 5), alpha: try a.float("alpha", default: 1e-4),
                                   beta: try a.float("beta", default: 0.75), bias: try a.float("bias", default: 1))
    }

    var backwardNeeds: BackwardNeeds { .inputs }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        ForwardResult(LocalResponseNorm.forward(try inputs.float(0, "LRN"), parameters))
    }

    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        guard let dy = outputGradients[0] else { return [nil] }
        return [LocalResponseNorm.backward(dy, x: try inputs.float(0, "LRN"), parameters)]
    }
}

/// ONNX BatchNormalization, inference form: X [N,C,...], scale, B, mean, var [C] -> Y
struct BatchNormOperator: GraphOperator {
    let node: Node
    let epsilon: Float

    init(_ node: Node) throws {
        self.node = node
        let a = AttributeReader(node: node)
        epsilon = try a.float("epsilon", default: 1e-5)
        if try a.int("training_mode", default: 0) != 0 || node.outputs.filter({ !$0.isEmpty }).count > 1 {
            throw ExecutionError.unsupportedAttribute(node: node.name, op: "BatchNormalization", detail: "training mode (running statistics outputs)")
        }
    }

    var backwardNeeds: BackwardNeeds { .inputs }

    /// Scale and bias are parameters; the running mean and variance (inputs 3 and 4) are statistics, not trained.
    func isParameterInput(_ index: Int) -> Bool { index < 3 }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        let op = "BatchNormalization"
        let x = try inputs.float(0, op)
        let parameters = try (1...4).map { try inputs.float($0, op) }
        guard x.rank >= 2, parameters.allSatisfy({ $0.count == x.shape[1] }) else {
            throw ExecutionError.shapeMismatch(node: node.name, op: op, detail: "input \(x.shape) and per-channel parameters \(parameters.map(\.shape))")
        }
        return ForwardResult(BatchNorm.forward(x, scale: parameters[0], bias: parameters[1], mean: parameters[2],
                                               variance: parameters[3], epsilon: epsilon))
    }

    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        guard let dy = outputGradients[0] else { return [nil, nil, nil, nil, nil] }
        let op = "BatchNormalization"
        let g = BatchNorm.backward(dy, x: try inputs.float(0, op), scale: try inputs.float(1, op), mean: try inputs.float(3, op),
                                   variance: try inputs.float(4, op), epsilon: epsilon)
        return [g.dx, g.dScale, g.dBias, nil, nil]
    }
}

/// ONNX Softmax. Opset >= 13: along `axis` (default -1). Before 13: the input is viewed as 2-D [prod(<axis), prod(>=axis)] (default axis 1).
struct SoftmaxOperator: GraphOperator {
    let node: Node
    let axis: Int
    let coerceTo2D: Bool

    init(_ node: Node, opset: Int) throws {
        self.node = node
        coerceTo2D = opset < 13
        axis = try AttributeReader(node: node).int("axis", default: coerceTo2D ? 1 : -1)
    }

    var backwardNeeds: BackwardNeeds { .outputs }

    private func view(_ t: Tensor) -> (Tensor, Int) {
        guard coerceTo2D else { return (t, axis) }
        let a = axis < 0 ? axis + t.rank : axis
        let outer = t.shape.prefix(a).reduce(1, *)
        return (t.reshaped([outer, t.count / max(outer, 1)]), 1)
    }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        let x = try inputs.float(0, "Softmax")
        let (v, ax) = view(x)
        return ForwardResult(Softmax.forward(v, axis: ax).reshaped(x.shape))
    }

    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        guard let dy = outputGradients[0], case .float(let y) = result.outputs[0] else { return [nil] }
        let (yv, ax) = view(y)
        let (dyv, _) = view(dy)
        return [Softmax.backward(dyv, y: yv, axis: ax).reshaped(y.shape)]
    }
}
