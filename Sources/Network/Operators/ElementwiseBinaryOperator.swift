import Tensors

/// Add, Sub, Mul, Div with numpy broadcasting: A, B -> C (broadcast shape)
struct ElementwiseBinaryOperator: GraphOperator {
    let node: Node
    let op: BinaryOperator

    init(_ node: Node) throws {
        self.node = node
        switch node.opType {
        case "Add": op = .add
        case "Sub": op = .sub
        case "Mul": op = .mul
        case "Div": op = .div
        default: throw ExecutionError.unsupportedOperator(op: node.opType, node: node.name, domain: node.domain)
        }
    }

    /// Mul and Div read the other operand; Add and Sub need the operands' shapes to undo broadcasting.
    var backwardNeeds: BackwardNeeds { .inputs }
    var isFoldable: Bool { true }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        if case .int(let a)? = inputs.first ?? nil, case .int(let b)? = inputs.count > 1 ? inputs[1] : nil {
            return ForwardResult(outputs: [.int(try integerResult(a, b))])
        }
        let a = try inputs.float(0, node.opType), b = try inputs.float(1, node.opType)
        guard let shape = Broadcast.shape(a.shape, b.shape) else {
            throw ExecutionError.shapeMismatch(node: node.name, op: node.opType, detail: "shapes \(a.shape) and \(b.shape) do not broadcast")
        }
        // An empty operand gives an empty result; the broadcasting kernel walks rows and needs none to be empty.
        if try node.requireAllocatable(shape) == 0 || a.count == 0 || b.count == 0 { return ForwardResult(Tensor(shape: shape)) }
        return ForwardResult(Broadcast.binary(a, b, op))
    }

    /// Shape arithmetic on int64 tensors (e.g. in exported Reshape chains): same-shape or scalar operands only.
    private func integerResult(_ a: IntTensor, _ b: IntTensor) throws -> IntTensor {
        // Overflow (and Int64.min / -1) is an error, never a trap or a silently wrapped shape.
        let f: (Int64, Int64) throws -> Int64
        switch op {
        case .add: f = { try checkedInteger(node, $0, $1) { $0.addingReportingOverflow($1) } }
        case .sub: f = { try checkedInteger(node, $0, $1) { $0.subtractingReportingOverflow($1) } }
        case .mul: f = { try checkedInteger(node, $0, $1) { $0.multipliedReportingOverflow(by: $1) } }
        case .div: f = { a, b in
            // Integer division truncates toward zero (ONNX, as C does); by zero it has no value.
            guard b != 0 else { throw node.invalid("integer division of \(a) by zero") }
            return try checkedInteger(node, a, b) { $0.dividedReportingOverflow(by: $1) }
        }
        }
        if a.values.count == b.values.count && (a.shape == b.shape || a.values.count <= 1) {
            return IntTensor(shape: a.shape.count >= b.shape.count ? a.shape : b.shape, values: try zip(a.values, b.values).map(f))
        }
        if b.values.count == 1 { return IntTensor(shape: a.shape, values: try a.values.map { try f($0, b.values[0]) }) }
        if a.values.count == 1 { return IntTensor(shape: b.shape, values: try b.values.map { try f(a.values[0], $0) }) }
        throw ExecutionError.shapeMismatch(node: node.name, op: node.opType, detail: "integer broadcasting of \(a.shape) and \(b.shape)")
    }

    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        guard let dy = outputGradients[0] else { return [nil, nil] }
        let a = try inputs.float(0, node.opType), b = try inputs.float(1, node.opType)
        if dy.count == 0 || a.count == 0 || b.count == 0 { return [need[0] ? Tensor(shape: a.shape) : nil, need[1] ? Tensor(shape: b.shape) : nil] }
        let g = Broadcast.binaryBackward(dy, a: a, b: b, op)
        return [need[0] ? g.da : nil, need[1] ? g.db : nil]
    }
}
