import Tensors

/// Identity, Dropout (inference: identity; the optional mask output is all ones): X -> X
struct IdentityOperator: GraphOperator {
    let node: Node
    var backwardNeeds: BackwardNeeds { [] }
    var isFoldable: Bool { true }
    /// Dropout's ratio and training_mode inputs are configuration.
    func isParameterInput(_ index: Int) -> Bool { index == 0 }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        guard let x = inputs.first ?? nil else { throw ExecutionError.missingInput(op: node.opType, index: 0) }
        var outputs = [x]
        if node.opType == "Dropout" && node.outputs.count > 1 && !node.outputs[1].isEmpty {
            outputs.append(.int(IntTensor(shape: x.shape, values: Array(repeating: 1, count: x.shape.reduce(1, *)))))
        }
        return ForwardResult(outputs: outputs)
    }

    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        [outputGradients[0]] + Array(repeating: nil, count: max(0, inputs.count - 1))
    }
}

/// Flatten: X [d0,…,dn] -> [d0·…·d(axis-1), d(axis)·…·dn]; Reshape: X, shape (int64) -> X viewed with the new shape.
struct ReshapeOperator: GraphOperator {
    let node: Node
    let flattenAxis: Int?
    let allowZero: Bool

    init(_ node: Node) throws {
        self.node = node
        let a = AttributeReader(node: node)
        flattenAxis = node.opType == "Flatten" ? try a.int("axis", default: 1) : nil
        allowZero = try a.int("allowzero", default: 0) != 0
    }

    var backwardNeeds: BackwardNeeds { [] }
    var isFoldable: Bool { true }
    /// Reshape's second input is the target shape.
    func isParameterInput(_ index: Int) -> Bool { index == 0 }

    func targetShape(of shape: [Int], inputs: [Value?]) throws -> [Int] {
        let count = shape.reduce(1, *)
        if let axis = flattenAxis {
            let a = axis < 0 ? axis + shape.count : axis
            guard a >= 0 && a <= shape.count else {
                throw ExecutionError.shapeMismatch(node: node.name, op: "Flatten", detail: "axis \(axis) for input rank \(shape.count)")
            }
            let outer = shape.prefix(a).reduce(1, *)
            return [outer, outer == 0 ? 0 : count / outer]
        }
        guard inputs.count > 1, let spec = inputs[1] else { throw ExecutionError.missingInput(op: "Reshape", index: 1) }
        func refuse(_ why: String) -> ExecutionError { node.invalid("cannot reshape \(shape) to \(spec.integers): \(why)") }
        guard spec.shape.count <= 1, spec.integers.count <= 64 else { throw refuse("the shape must be a 1-D list of at most 64 sizes") }
        // ONNX: at most one -1 (inferred), 0 copies the input's size (unless allowzero), nothing below -1.
        guard spec.integers.allSatisfy({ $0 >= -1 }), spec.integers.filter({ $0 == -1 }).count <= 1 else {
            throw refuse("sizes must be >= 0, with at most one -1")
        }
        var result = try spec.integers.enumerated().map { i, d -> Int in
            if d == 0 && !allowZero {
                guard i < shape.count else { throw refuse("0 copies a size the input does not have") }
                return shape[i]
            }
            guard d <= Int64(Int32.max) else { throw refuse("size \(d) is too large") }
            return Int(d)
        }
        if let infer = result.firstIndex(of: -1) {
            guard let known = checkedElementCount(result.enumerated().filter { $0.offset != infer }.map(\.element)),
                  known > 0, count % known == 0 else {
                throw refuse("the other sizes do not divide \(count) elements")
            }
            result[infer] = count / known
        }
        guard checkedElementCount(result) == count else { throw refuse("the element counts differ") }
        return result
    }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        guard let x = inputs.first ?? nil else { throw ExecutionError.missingInput(op: node.opType, index: 0) }
        let shape = try targetShape(of: x.shape, inputs: inputs)
        switch x {
        case .float(let t): return ForwardResult(t.reshaped(shape), saved: .shape(t.shape))
        case .int(let t): return ForwardResult(outputs: [.int(IntTensor(shape: shape, values: t.values))])
        }
    }

    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        guard let dy = outputGradients[0] else { return Array(repeating: nil, count: inputs.count) }
        return [dy.reshaped(try result.savedShape(node))] + Array(repeating: nil, count: inputs.count - 1)
    }
}

/// Constant: () -> the node's `value` tensor (or value_float(s) / value_int(s)).
struct ConstantOperator: GraphOperator {
    let value: Value
    var backwardNeeds: BackwardNeeds { [] }
    var isFoldable: Bool { true }

    init(_ node: Node) throws {
        let a = AttributeReader(node: node)
        if let t = try a.tensor("value") { value = t }
        else if let f = node.attributes["value_float"], case .float(let v) = f { value = .float(Tensor(v)) }
        else if let f = try a.floats("value_floats") { value = .float(Tensor(shape: [f.count], scalars: f)) }
        else if let i = node.attributes["value_int"], case .int(let v) = i { value = .int(IntTensor(shape: [], values: [Int64(v)])) }
        else if let i = try a.ints("value_ints") { value = .int(IntTensor(shape: [i.count], values: i.map(Int64.init))) }
        else { throw ExecutionError.unsupportedAttribute(node: node.name, op: "Constant", detail: "a Constant without a numeric value") }
    }

    func forward(_ inputs: [Value?]) throws -> ForwardResult { ForwardResult(outputs: [value]) }
    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] { [] }
}

/// Concat along an axis: X1 … Xn -> Y
struct ConcatOperator: GraphOperator {
    let node: Node
    let axis: Int
    init(_ node: Node) throws {
        self.node = node
        guard let axis = node.attributes["axis"], case .int(let a) = axis else {
            throw ExecutionError.badAttribute(node: node.name, op: "Concat", attribute: "axis", expected: "present")
        }
        self.axis = a
    }

    var backwardNeeds: BackwardNeeds { [] }
    var producesFeatureMaps: Bool { true }
    var isFoldable: Bool { true }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        let values = inputs.compactMap { $0 }
        if values.allSatisfy({ $0.intTensor != nil }), values.allSatisfy({ $0.shape.count == 1 }) {
            _ = try node.normalizedAxis(axis, rank: 1)
            return ForwardResult(outputs: [.int(IntTensor(shape: [values.map { $0.shape[0] }.reduce(0, +)], values: values.flatMap { $0.integers }))])
        }
        let xs = try (0..<inputs.count).filter { inputs[$0] != nil }.map { try inputs.float($0, "Concat") }
        guard let first = xs.first else { throw ExecutionError.missingInput(op: "Concat", index: 0) }
        let a = try node.normalizedAxis(axis, rank: first.rank)
        for x in xs where x.rank != first.rank || (0..<x.rank).contains(where: { $0 != a && x.shape[$0] != first.shape[$0] }) {
            throw ExecutionError.shapeMismatch(node: node.name, op: "Concat", detail: "cannot concatenate \(first.shape) and \(x.shape) on axis \(axis)")
        }
        var outShape = first.shape
        outShape[a] = xs.reduce(0) { $0 + $1.shape[a] }
        try node.requireAllocatable(outShape)
        // The backward sees no inputs (backwardNeeds is empty): it learns which ones were present from `saved`.
        return ForwardResult(Concat.forward(xs, axis: axis), saved: .shapes(inputs.map { $0?.shape }))
    }

    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        guard let dy = outputGradients[0] else { return Array(repeating: nil, count: inputs.count) }
        let shapes = try result.savedShapes(node)
        var pieces = Concat.backward(dy, shapes: shapes.compactMap { $0 }, axis: axis)[...]
        return shapes.map { $0 == nil ? nil : pieces.popFirst() }
    }
}

/// Pad: X, pads (opset >= 11: input; before: attribute), constant_value -> Y
struct PadOperator: GraphOperator {
    let node: Node
    let mode: PadMode
    let attributePads: [Int]?
    let attributeValue: Float

    init(_ node: Node, opset: Int) throws {
        self.node = node
        let a = AttributeReader(node: node)
        let m = try a.string("mode", default: "constant")
        guard let mode = PadMode(rawValue: m) else {
            throw ExecutionError.unsupportedAttribute(node: node.name, op: "Pad", detail: "mode '\(m)'")
        }
        self.mode = mode
        attributePads = opset < 11 ? (try a.ints("pads") ?? a.ints("paddings")) : nil
        attributeValue = try a.float("value", default: 0)
    }

    var backwardNeeds: BackwardNeeds { .inputs }
    /// The pads, the constant value and the axes are configuration.
    func isParameterInput(_ index: Int) -> Bool { index == 0 }

    /// The pads for every axis of `x` ([begin…, end…]), checked: in range, never cropping more than an axis holds,
    /// reflect/edge only on non-empty axes, and an output that can be allocated.
    private func pads(_ inputs: [Value?], for x: Tensor) throws -> [Int] {
        let rank = x.rank
        let limit = Int64(TensorLimits.maxWindowAttribute)
        func bounded(_ values: [Int64], _ what: String) throws -> [Int] {
            guard values.allSatisfy({ $0 >= -limit && $0 <= limit }) else { throw node.invalid("\(what) \(values) are out of range (at most \(limit) in size)") }
            return values.map { Int($0) }
        }
        var pads: [Int]
        if let attributePads { pads = try bounded(attributePads.map { Int64($0) }, "pads") }
        else if inputs.count > 1, let p = inputs[1] { pads = try bounded(p.integers, "pads") }
        else { throw ExecutionError.missingInput(op: "Pad", index: 1) }
        if inputs.count > 3, let axesValue = inputs[3] {
            // Pads given for a subset of axes: spread them onto the full rank.
            let raw = try bounded(axesValue.integers, "axes")
            let axes = try raw.map { try node.normalizedAxis($0, rank: rank, attribute: "axis") }
            guard Set(axes).count == axes.count, pads.count == 2 * axes.count else {
                throw node.invalid("\(pads.count) pads for the axes \(raw) (two per axis, each axis once)")
            }
            var full = [Int](repeating: 0, count: 2 * rank)
            for (i, axis) in axes.enumerated() {
                full[axis] = pads[i]
                full[rank + axis] = pads[axes.count + i]
            }
            pads = full
        }
        guard pads.count == 2 * rank else {
            throw ExecutionError.shapeMismatch(node: node.name, op: "Pad", detail: "\(pads.count) pads for an input of rank \(rank)")
        }
        var out: [Int] = []
        for axis in 0..<rank {
            let n = x.shape[axis], begin = pads[axis], end = pads[rank + axis]
            let size = n + begin + end
            guard size >= 0 else { throw node.invalid("pads \(pads) crop more than the input \(x.shape) holds") }
            if mode != .constant && (begin > 0 || end > 0) && n == 0 {
                throw node.invalid("cannot \(mode.rawValue)-pad the empty axis \(axis) of \(x.shape)")
            }
            out.append(size)
        }
        try node.requireAllocatable(out)
        return pads
    }

    /// The pads [top, left, bottom, right] of an NCHW tensor when this node pads only H and W, with zeros, by
    /// amounts known before the run (`constant` gives the values of initializers and Constant nodes); nil for
    /// anything else: another mode or value, N or C padded, a crop, pads or axes given at run time. The planner
    /// folds such a Pad into the window of the Conv or AveragePool that reads it.
    func zeroSpatialPads(_ constant: (String) -> Value?) -> [Int]? {
        guard mode == .constant else { return nil }
        let inputs = node.inputs
        let pads: [Int64]
        if let attributePads {
            guard attributeValue == 0 else { return nil }
            pads = attributePads.map { Int64($0) }
        } else {
            guard inputs.count > 1, let given = constant(inputs[1]) else { return nil }
            if inputs.count > 2, !inputs[2].isEmpty {
                guard case .float(let value)? = constant(inputs[2]), value.count == 1, value.scalars[0] == 0 else { return nil }
            }
            if inputs.count > 3, !inputs[3].isEmpty { return nil }
            pads = given.integers
        }
        let limit = Int64(TensorLimits.maxWindowAttribute)
        guard pads.count == 8, pads[0] == 0, pads[1] == 0, pads[4] == 0, pads[5] == 0,
              pads.allSatisfy({ $0 >= 0 && $0 <= limit }) else { return nil }
        return [pads[2], pads[3], pads[6], pads[7]].map { Int($0) }
    }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        let x = try inputs.float(0, "Pad")
        let value = attributePads != nil ? attributeValue : (try inputs.optionalFloat(2, "Pad")?.scalars.first ?? 0)
        return ForwardResult(Pad.forward(x, pads: try pads(inputs, for: x), mode: mode, value: value))
    }

    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        guard let dy = outputGradients[0] else { return Array(repeating: nil, count: inputs.count) }
        let x = try inputs.float(0, "Pad")
        return [Pad.backward(dy, inputShape: x.shape, pads: try pads(inputs, for: x), mode: mode)]
            + Array(repeating: nil, count: inputs.count - 1)
    }
}
