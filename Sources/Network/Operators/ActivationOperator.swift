import Tensors

/// Elementwise activations: Relu, LeakyRelu, Clip, Sigmoid, HardSigmoid, HardSwish, Tanh. X (any shape) -> Y (same shape)
struct ActivationOperator: GraphOperator {
    let node: Node
    /// nil for Clip from opset 11 on, whose bounds arrive as inputs.
    let activation: Activation?

    init(_ node: Node, opset: Int) throws {
        self.node = node
        let a = AttributeReader(node: node)
        switch node.opType {
        case "Relu": activation = .relu
        case "LeakyRelu": activation = .leakyRelu(alpha: try node.requireFinite(try a.float("alpha", default: 0.01), "alpha"))
        case "Sigmoid": activation = .sigmoid
        case "HardSigmoid": activation = .hardSigmoid(alpha: try node.requireFinite(try a.float("alpha", default: 0.2), "alpha"),
                                                      beta: try node.requireFinite(try a.float("beta", default: 0.5), "beta"))
        case "HardSwish": activation = .hardSwish
        case "Tanh": activation = .tanh
        case "Clip":
            activation = opset < 11
                ? .clip(min: try a.float("min", default: -.greatestFiniteMagnitude), max: try a.float("max", default: .greatestFiniteMagnitude))
                : nil
        default:
            throw ExecutionError.unsupportedOperator(op: node.opType, node: node.name, domain: node.domain)
        }
    }

    /// Relu, Sigmoid and Tanh differentiate from y alone, so their inputs can be freed after the forward pass.
    var backwardNeeds: BackwardNeeds { activation.map { $0.backwardReadsInput ? [.inputs, .outputs] : .outputs } ?? [.inputs, .outputs] }

    var isActivation: Bool { true }
    /// Clip's min and max inputs are bounds, not parameters.
    func isParameterInput(_ index: Int) -> Bool { index == 0 }

    private func resolved(_ inputs: [Value?]) throws -> Activation {
        if let activation { return activation }
        let lo = try inputs.optionalFloat(1, "Clip")?.scalars.first ?? -.greatestFiniteMagnitude
        let hi = try inputs.optionalFloat(2, "Clip")?.scalars.first ?? .greatestFiniteMagnitude
        return .clip(min: lo, max: hi)
    }

    /// The activation when its bounds are known before the run: always, except for a Clip whose bounds are inputs,
    /// which `constant` must then supply (nil: not constant, e.g. fed or computed). For fusing it into a convolution.
    func fixedActivation(_ constant: (String) -> Value?) -> Activation? {
        if let activation { return activation }
        var bounds: [Value?] = [nil]
        for name in node.inputs.dropFirst() {
            if name.isEmpty { bounds.append(nil); continue }
            guard let value = constant(name) else { return nil }
            bounds.append(value)
        }
        return try? resolved(bounds)
    }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        ForwardResult(try resolved(inputs).forward(try inputs.float(0, node.opType)))
    }

    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        guard let dy = outputGradients[0], case .float(let y) = result.outputs[0] else { return [nil] }
        let activation = try resolved(inputs)
        let dx = activation.backward(dy, x: activation.backwardReadsInput ? try inputs.float(0, node.opType) : y, y: y)
        return [dx] + Array(repeating: nil, count: max(0, inputs.count - 1))
    }
}
