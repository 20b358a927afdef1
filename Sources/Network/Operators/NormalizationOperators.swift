import Tensors

/// ONNX LRN across channels: X [N,C,H,W] -> Y (same shape)
struct LocalResponseNormOperator: GraphOperator {
    let node: Node
    let parameters: LRNParameters

    init(_ node: Node) throws {
        self.node = node
        let a = AttributeReader(node: node)
        // ONNX requires `size`; Caffe-converted files always carry it. Any size >= 1 is computable (even sizes put
        // the extra channel after c, as ONNX's floor/ceil rule says).
        let size = try a.int("size", default: 5)
        guard size >= 1, size <= TensorLimits.maxWindowAttribute else { throw node.badAttribute("size", "at least 1, not \(size)") }
        parameters = LRNParameters(size: size, alpha: try node.requireFinite(try a.float("alpha", default: 1e-4), "alpha"),
                                   beta: try node.requireFinite(try a.float("beta", default: 0.75), "beta"),
                                   bias: try node.requireFinite(try a.float("bias", default: 1), "bias", positive: true))
    }

    var backwardNeeds: BackwardNeeds { .inputs }

    /// ONNX LRN takes [N,C,D1,…,Dk] with k >= 1.
    private func checked(_ x: Tensor) throws -> Tensor {
        guard x.rank >= 3 else { throw node.invalid("LRN needs an input of rank 3 or more [N,C,H,...], got \(x.shape)") }
        return x
    }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        ForwardResult(LocalResponseNorm.forward(try checked(try inputs.float(0, "LRN")), parameters))
    }

    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        guard let dy = outputGradients[0] else { return [nil] }
        return [LocalResponseNorm.backward(dy, x: try checked(try inputs.float(0, "LRN")), parameters)]
    }
}

/// ONNX BatchNormalization, inference form: X [N,C,...], scale, B, mean, var [C] -> Y
struct BatchNormOperator: GraphOperator {
    let node: Node
    let epsilon: Float
    /// An activation applied as each plane is written: the planner fuses BatchNormalization → activation into one
    /// pass (DenseNet's pre-activation BatchNormalization → Relu before each convolution) where no gradient flows
    /// through, and BatchNormalization → Relu where one does: its backward reads the Relu's output (y > 0).
    var activation: Activation?

    init(_ node: Node) throws {
        self.node = node
        let a = AttributeReader(node: node)
        epsilon = try node.requireFinite(try a.float("epsilon", default: 1e-5), "epsilon", nonNegative: true)
        if try a.int("training_mode", default: 0) != 0 || node.outputs.filter({ !$0.isEmpty }).count > 1 {
            throw ExecutionError.unsupportedAttribute(node: node.name, op: "BatchNormalization", detail: "training mode (running statistics outputs)")
        }
    }

    var backwardNeeds: BackwardNeeds { activation == nil ? .inputs : [.inputs, .outputs] }

    /// Whether the planner may fuse `activation` after this layer: any fixed activation where no gradient flows
    /// through the step, a Relu where one does (its backward needs only the fused output's sign).
    func fuses(_ activation: Activation, differentiated: Bool) -> Bool {
        guard differentiated else { return true }
        if case .relu = activation { return true }
        return false
    }

    /// Scale and bias are parameters; the running mean and variance (inputs 3 and 4) are statistics, not trained.
    func isParameterInput(_ index: Int) -> Bool { index < 3 }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        let op = "BatchNormalization"
        let x = try inputs.float(0, op)
        let parameters = try (1...4).map { try inputs.float($0, op) }
        guard x.rank >= 2, parameters.allSatisfy({ $0.rank == 1 && $0.count == x.shape[1] }) else {
            throw ExecutionError.shapeMismatch(node: node.name, op: op, detail: "input \(x.shape) and per-channel parameters \(parameters.map(\.shape))")
        }
        return ForwardResult(BatchNorm.forward(x, scale: parameters[0], bias: parameters[1], mean: parameters[2],
                                               variance: parameters[3], epsilon: epsilon, epilogue: activation))
    }

    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        guard let dy = outputGradients[0] else { return [nil, nil, nil, nil, nil] }
        let op = "BatchNormalization"
        let x = try inputs.float(0, op)
        guard x.rank >= 2, dy.shape == x.shape, try (1...4).allSatisfy({ try inputs.float($0, op).count == x.shape[1] }) else {
            throw node.invalid("input \(x.shape), gradient \(dy.shape) and per-channel parameters disagree")
        }
        var reluOutput: Tensor?
        if let activation {
            guard case .relu = activation else { throw node.invalid("a BatchNormalization fused with \(activation) has no backward pass") }
            guard case .float(let y)? = result.outputs.first, y.shape == dy.shape else {
                throw ExecutionError.missingSavedValue(node: node.name, op: op)
            }
            reluOutput = y
        }
        if !need[1] && !need[2] {
            return [need[0] ? BatchNorm.inputGradient(dy, scale: try inputs.float(1, op), variance: try inputs.float(4, op),
                                                      epsilon: epsilon, reluOutput: reluOutput) : nil, nil, nil, nil, nil]
        }
        let masked = reluOutput.map { Activation.relu.backward(dy, x: $0, y: $0) } ?? dy
        let g = BatchNorm.backward(masked, x: x, scale: try inputs.float(1, op), mean: try inputs.float(3, op),
                                   variance: try inputs.float(4, op), epsilon: epsilon)
        return [need[0] ? g.dx : nil, need[1] ? g.dScale : nil, need[2] ? g.dBias : nil, nil, nil]
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

    /// The tensor as the kernel sees it and the axis to normalise; the axis is checked against the rank.
    private func view(_ t: Tensor) throws -> (Tensor, Int) {
        let a = try node.normalizedAxis(axis, rank: t.rank)
        guard coerceTo2D else { return (t, a) }
        let outer = t.shape.prefix(a).reduce(1, *)
        return (t.reshaped([outer, t.count / max(outer, 1)]), 1)
    }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        let x = try inputs.float(0, "Softmax")
        let (v, ax) = try view(x)
        return ForwardResult(Softmax.forward(v, axis: ax).reshaped(x.shape))
    }

    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        guard let dy = outputGradients[0], case .float(let y) = result.outputs[0] else { return [nil] }
        let (yv, ax) = try view(y)
        let (dyv, _) = try view(dy)
        return [Softmax.backward(dyv, y: yv, axis: ax).reshaped(y.shape)]
    }
}
