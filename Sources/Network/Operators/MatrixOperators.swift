import Tensors

/// ONNX Gemm: A [M,K] (or [K,M] when transA), B [K,N] (or [N,K] when transB), C? broadcastable to [M,N] -> Y [M,N]
struct GemmOperator: GraphOperator {
    let node: Node
    let transA: Bool, transB: Bool
    let alpha: Float, beta: Float

    init(_ node: Node) throws {
        self.node = node
        let a = AttributeReader(node: node)
        transA = try a.int("transA", default: 0) != 0
        transB = try a.int("transB", default: 0) != 0
        alpha = try a.float("alpha", default: 1)
        beta = try a.float("beta", default: 1)
    }

    var backwardNeeds: BackwardNeeds { .inputs }

    /// One product per output value and inner index: M · N · K.
    func multiplyAccumulates(inputShapes: [[Int]?], outputShapes: [[Int]?]) -> Int {
        guard let y = outputShapes.first ?? nil, let a = inputShapes.first ?? nil else { return 0 }
        return y.reduce(1, *) * ((transA ? a.first : a.last) ?? 0)
    }

    private func operands(_ inputs: [Value?]) throws -> (Tensor, Tensor, Tensor?) {
        let a = try inputs.float(0, "Gemm"), b = try inputs.float(1, "Gemm"), c = try inputs.optionalFloat(2, "Gemm")
        guard a.rank == 2, b.rank == 2 else {
            throw ExecutionError.shapeMismatch(node: node.name, op: "Gemm", detail: "A \(a.shape) and B \(b.shape) must be 2-D (add a Flatten before)")
        }
        let k1 = transA ? a.shape[0] : a.shape[1], k2 = transB ? b.shape[1] : b.shape[0]
        guard k1 == k2 else {
            throw ExecutionError.shapeMismatch(node: node.name, op: "Gemm", detail: "inner dimensions differ: A \(a.shape)\(transA ? "ᵀ" : "") · B \(b.shape)\(transB ? "ᵀ" : "")")
        }
        return (a, b, c)
    }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        let (a, b, c) = try operands(inputs)
        return ForwardResult(Gemm.forward(a, b, c: c, transA: transA, transB: transB, alpha: alpha, beta: beta))
    }

    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        guard let dy = outputGradients[0] else { return [nil, nil, nil] }
        let (a, b, c) = try operands(inputs)
        let g = Gemm.backward(dy, a: a, b: b, c: c, transA: transA, transB: transB, alpha: alpha, beta: beta)
        return [g.da, g.db, g.dc]
    }
}

/// ONNX MatMul (numpy semantics): A [...,M,K] · B [...,K,N] -> Y [...,M,N]
struct MatMulOperator: GraphOperator {
    let node: Node
    var backwardNeeds: BackwardNeeds { .inputs }

    /// One product per output value and inner index: |Y| · K.
    func multiplyAccumulates(inputShapes: [[Int]?], outputShapes: [[Int]?]) -> Int {
        guard let y = outputShapes.first ?? nil, let a = inputShapes.first ?? nil else { return 0 }
        return y.reduce(1, *) * (a.last ?? 0)
    }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        let a = try inputs.float(0, "MatMul"), b = try inputs.float(1, "MatMul")
        let k1 = a.shape.last ?? 1, k2 = b.rank >= 2 ? b.shape[b.rank - 2] : (b.shape.first ?? 1)
        guard k1 == k2 else {
            throw ExecutionError.shapeMismatch(node: node.name, op: "MatMul", detail: "inner dimensions differ: \(a.shape) · \(b.shape)")
        }
        return ForwardResult(MatMul.forward(a, b))
    }

    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        guard let dy = outputGradients[0] else { return [nil, nil] }
        let g = MatMul.backward(dy, a: try inputs.float(0, "MatMul"), b: try inputs.float(1, "MatMul"))
        return [g.da, g.db]
    }
}
