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
        alpha = try node.requireFinite(try a.float("alpha", default: 1), "alpha")
        beta = try node.requireFinite(try a.float("beta", default: 1), "beta")
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
        let m = transA ? a.shape[1] : a.shape[0], n = transB ? b.shape[0] : b.shape[1]
        if let c {
            // C broadcasts (numpy rules, unidirectionally) to [M, N].
            let cs = Array(repeating: 1, count: max(0, 2 - c.rank)) + c.shape
            guard c.rank <= 2, cs[0] == 1 || cs[0] == m, cs[1] == 1 || cs[1] == n else {
                throw node.invalid("C \(c.shape) does not broadcast to the output [\(m), \(n)]")
            }
        }
        try node.requireAllocatable([m, n])
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

    /// numpy matmul rules checked before the kernel: rank >= 1, equal inner dimensions, broadcastable batch dimensions.
    private func operands(_ inputs: [Value?]) throws -> (Tensor, Tensor) {
        let a = try inputs.float(0, "MatMul"), b = try inputs.float(1, "MatMul")
        guard a.rank >= 1, b.rank >= 1 else { throw node.invalid("operands must have rank 1 or more, got \(a.shape) and \(b.shape)") }
        let k1 = a.shape.last ?? 1, k2 = b.rank >= 2 ? b.shape[b.rank - 2] : (b.shape.first ?? 1)
        guard k1 == k2 else {
            throw ExecutionError.shapeMismatch(node: node.name, op: "MatMul", detail: "inner dimensions differ: \(a.shape) · \(b.shape)")
        }
        let aBatch = Array(a.shape.dropLast(2)), bBatch = Array(b.shape.dropLast(2))
        let rank = max(aBatch.count, bBatch.count)
        let aPad = Array(repeating: 1, count: rank - aBatch.count) + aBatch
        let bPad = Array(repeating: 1, count: rank - bBatch.count) + bBatch
        var out: [Int] = []
        for (x, y) in zip(aPad, bPad) {
            guard x == y || x == 1 || y == 1 else {
                throw node.invalid("batch dimensions of \(a.shape) and \(b.shape) do not broadcast")
            }
            out.append(x == 1 ? y : x)
        }
        if a.rank > 1 { out.append(a.shape[a.rank - 2]) }
        if b.rank > 1 { out.append(b.shape[b.rank - 1]) }
        try node.requireAllocatable(out)
        return (a, b)
    }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        let (a, b) = try operands(inputs)
        return ForwardResult(MatMul.forward(a, b))
    }

    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        guard let dy = outputGradients[0] else { return [nil, nil] }
        let (a, b) = try operands(inputs)
        let g = MatMul.backward(dy, a: a, b: b)
        return [g.da, g.db]
    }
}
