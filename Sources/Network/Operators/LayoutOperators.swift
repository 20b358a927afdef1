import Tensors

// Operators that move data without arithmetic (Transpose, Slice, Split, Gather, Unsqueeze/Squeeze) and the shape
// arithmetic exporters wrap around them (Shape, Cast). They accept integer tensors as well as Float32 ones, since
// PyTorch computes the target shape of a channel shuffle or the bounds of a chunk with them at run time; on integer
// tensors they share the Float32 kernels' index logic (`StridedCopy`).

extension Value {
    /// The same kind of value with other contents: a Float32 result for a Float32 input, an integer one otherwise.
    fileprivate func mapping(shape: [Int], float: (Tensor) -> Tensor, int: ([Int64]) -> [Int64]) -> Value {
        switch self {
        case .float(let t): return .float(float(t))
        case .int(let t): return .int(IntTensor(shape: shape, values: int(t.values)))
        }
    }

    /// This value viewed with another shape of the same element count (no copy for Float32).
    func reshaped(_ shape: [Int]) -> Value {
        switch self {
        case .float(let t): return .float(t.reshaped(shape))
        case .int(let t): return .int(IntTensor(shape: shape, values: t.values))
        }
    }
}

/// Integers from an input (axes, bounds, sizes) as Int, clamped to ±2^62 so that later sums cannot overflow (no
/// tensor comes near that size, so a clamped bound means what INT64_MAX means: "to the end"); `name` says what
/// they are in errors.
func integerInput(_ node: Node, _ inputs: [Value?], _ index: Int, _ name: String) throws -> [Int]? {
    guard index < inputs.count, let v = inputs[index] else { return nil }
    guard v.shape.count <= 1 else { throw node.invalid("\(name) must be a scalar or a 1-D list, not a tensor of shape \(v.shape)") }
    return v.integers.map { Int(max(min($0, 1 << 62), -(1 << 62))) }
}

/// An attribute's integers clamped the same way as `integerInput`.
func clampedIntegers(_ values: [Int]) -> [Int] { values.map { max(min($0, 1 << 62), -(1 << 62)) } }

/// Distinct axes in 0..<rank (negative ones counted from the end), or an error naming the node.
func normalizedAxes(_ node: Node, _ axes: [Int], rank: Int, attribute: String = "axes") throws -> [Int] {
    let result = try axes.map { try node.normalizedAxis($0, rank: rank, attribute: attribute) }
    guard Set(result).count == result.count else { throw node.invalid("\(attribute) \(axes) repeats an axis") }
    return result
}

/// Transpose: X [d_0 … d_(r-1)], perm -> Y [d_perm0 … d_perm(r-1)] (default perm: the axes reversed).
struct TransposeOperator: GraphOperator {
    let node: Node
    let perm: [Int]?

    init(_ node: Node) throws {
        self.node = node
        perm = try AttributeReader(node: node).ints("perm")
        if let perm, perm.sorted() != Array(0..<perm.count) {
            throw node.badAttribute("perm", "a permutation of 0…\(perm.count - 1), not \(perm)")
        }
    }

    var backwardNeeds: BackwardNeeds { [] }
    var isFoldable: Bool { true }

    private func permutation(rank: Int) throws -> [Int] {
        guard let perm else { return Array((0..<rank).reversed()) }
        guard perm.count == rank else { throw node.invalid("perm \(perm) for an input of rank \(rank)") }
        return perm
    }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        guard let x = inputs.first ?? nil else { throw ExecutionError.missingInput(op: "Transpose", index: 0) }
        let p = try permutation(rank: x.shape.count)
        let outShape = p.map { x.shape[$0] }
        return ForwardResult(outputs: [x.mapping(shape: outShape, float: { Transpose.forward($0, perm: p) }, int: {
            Transpose.plan(inputShape: x.shape, perm: p).run($0, dstCount: $0.count, fill: 0)
        })])
    }

    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        guard let dy = outputGradients[0] else { return [nil] }
        return [Transpose.backward(dy, perm: try permutation(rank: dy.rank))]
    }
}

/// Slice: X, starts, ends [, axes, steps] (opset >= 10: inputs; before: attributes starts, ends, axes) -> Y,
/// the elements start, start + step, … before end on each listed axis (ONNX's clamping of out-of-range bounds).
struct SliceOperator: GraphOperator {
    let node: Node
    /// Opset < 10: the bounds are attributes.
    let attributeBounds: (starts: [Int], ends: [Int], axes: [Int]?)?

    init(_ node: Node, opset: Int) throws {
        self.node = node
        if opset < 10 {
            let a = AttributeReader(node: node)
            guard let starts = try a.ints("starts"), let ends = try a.ints("ends") else {
                throw node.badAttribute("starts", "present with 'ends' (Slice before opset 10)")
            }
            attributeBounds = (clampedIntegers(starts), clampedIntegers(ends), try a.ints("axes"))
        } else {
            attributeBounds = nil
        }
    }

    var backwardNeeds: BackwardNeeds { [] }
    var isFoldable: Bool { true }
    /// The bounds, axes and steps are configuration.
    func isParameterInput(_ index: Int) -> Bool { index == 0 }

    /// First index, step and count per axis of an input of `shape`.
    func region(_ inputs: [Value?], shape: [Int]) throws -> (starts: [Int], steps: [Int], counts: [Int]) {
        let rank = shape.count
        let startList: [Int], endList: [Int], axisList: [Int]?, stepList: [Int]?
        if let attributeBounds {
            (startList, endList, axisList, stepList) = (attributeBounds.starts, attributeBounds.ends, attributeBounds.axes, nil)
        } else {
            guard let s = try integerInput(node, inputs, 1, "starts") else { throw ExecutionError.missingInput(op: "Slice", index: 1) }
            guard let e = try integerInput(node, inputs, 2, "ends") else { throw ExecutionError.missingInput(op: "Slice", index: 2) }
            (startList, endList) = (s, e)
            axisList = try integerInput(node, inputs, 3, "axes")
            stepList = try integerInput(node, inputs, 4, "steps")
        }
        let axes = try normalizedAxes(node, axisList ?? Array(0..<startList.count), rank: rank)
        let steps = stepList ?? Array(repeating: 1, count: axes.count)
        guard startList.count == axes.count, endList.count == axes.count, steps.count == axes.count else {
            throw node.invalid("\(startList.count) starts, \(endList.count) ends, \(axes.count) axes and \(steps.count) steps (one of each per axis)")
        }
        var starts = [Int](repeating: 0, count: rank), stepsOut = [Int](repeating: 1, count: rank), counts = shape
        for (k, axis) in axes.enumerated() {
            let d = shape[axis], step = steps[k]
            guard step != 0 else { throw node.invalid("step 0 on axis \(axis)") }
            // ONNX: negative bounds count from the end; then clamp to [0, d] (step > 0) or [-1, d-1] (step < 0).
            var start = startList[k] < 0 ? startList[k] + d : startList[k]
            var end = endList[k] < 0 ? endList[k] + d : endList[k]
            if step > 0 {
                start = min(max(start, 0), d); end = min(max(end, 0), d)
                counts[axis] = end > start ? (end - start + step - 1) / step : 0
            } else {
                start = min(max(start, 0), d - 1); end = min(max(end, -1), d - 1)
                counts[axis] = start > end ? (start - end - step - 1) / -step : 0
            }
            starts[axis] = counts[axis] > 0 ? start : 0
            stepsOut[axis] = step
        }
        try node.requireAllocatable(counts)
        return (starts, stepsOut, counts)
    }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        guard let x = inputs.first ?? nil else { throw ExecutionError.missingInput(op: "Slice", index: 0) }
        let r = try region(inputs, shape: x.shape)
        let saved = ForwardResult.Saved.slice(inputShape: x.shape, starts: r.starts, steps: r.steps)
        // Everything kept in order: the input itself, no copy.
        if r.counts == x.shape && r.steps.allSatisfy({ $0 == 1 }) { return ForwardResult(outputs: [x], saved: saved) }
        let y = x.mapping(shape: r.counts, float: { Slice.forward($0, starts: r.starts, steps: r.steps, counts: r.counts) }) {
            Slice.plan(inputShape: x.shape, starts: r.starts, steps: r.steps, counts: r.counts)
                .run($0, dstCount: r.counts.reduce(1, *), fill: 0)
        }
        return ForwardResult(outputs: [y], saved: saved)
    }

    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        let none = [Tensor?](repeating: nil, count: inputs.count)
        guard let dy = outputGradients[0] else { return none }
        let saved = try result.savedSlice(node)
        return [Slice.backward(dy, inputShape: saved.inputShape, starts: saved.starts, steps: saved.steps)] + none.dropFirst()
    }
}

/// Split: X, [split] (opset >= 13: input; before: attribute) -> Y_1 … Y_n, consecutive pieces along `axis`: the
/// given sizes, or n equal ones (opset >= 18 with num_outputs: ceil(d/n) each, the last smaller).
struct SplitOperator: GraphOperator {
    let node: Node
    let axis: Int
    let attributeSplit: [Int]?
    let opset: Int

    init(_ node: Node, opset: Int) throws {
        self.node = node
        self.opset = opset
        let a = AttributeReader(node: node)
        axis = try a.int("axis", default: 0)
        attributeSplit = opset < 13 ? try a.ints("split") : nil
        if let attributeSplit, attributeSplit.count != node.outputs.count {
            throw node.badAttribute("split", "one size per output (\(node.outputs.count)), not \(attributeSplit)")
        }
        if let n = try a.ints("num_outputs")?.first, n != node.outputs.count {
            throw node.badAttribute("num_outputs", "the number of outputs (\(node.outputs.count)), not \(n)")
        }
        guard !node.outputs.isEmpty else { throw node.invalid("a Split without outputs") }
    }

    var backwardNeeds: BackwardNeeds { [] }
    var isFoldable: Bool { true }
    func isParameterInput(_ index: Int) -> Bool { index == 0 }

    func sizes(_ inputs: [Value?], length d: Int) throws -> [Int] {
        let n = node.outputs.count
        if let given = try attributeSplit ?? integerInput(node, inputs, 1, "split") {
            guard given.count == n, given.allSatisfy({ $0 >= 0 && $0 <= d }), given.reduce(0, +) == d else {
                throw node.invalid("split \(given) does not cut an axis of \(d) into \(n) pieces")
            }
            return given
        }
        if d % n == 0 { return Array(repeating: d / n, count: n) }
        guard opset >= 18 else { throw node.invalid("an axis of \(d) does not split into \(n) equal pieces") }
        let size = (d + n - 1) / n
        return (0..<n).map { max(0, min(size, d - $0 * size)) }
    }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        guard let x = inputs.first ?? nil else { throw ExecutionError.missingInput(op: "Split", index: 0) }
        let a = try node.normalizedAxis(axis, rank: x.shape.count)
        let pieces = try sizes(inputs, length: x.shape[a])
        let shapes = pieces.map { size -> [Int] in var s = x.shape; s[a] = size; return s }
        switch x {
        case .float(let t):
            return ForwardResult(outputs: Concat.backward(t, shapes: shapes, axis: a).map { .float($0) }, saved: .shapes(shapes))
        case .int(let t):
            let inner: Int = x.shape[(a + 1)...].reduce(1, *), outer: Int = x.shape[..<a].reduce(1, *), d: Int = x.shape[a]
            var outputs: [Value] = []
            var start = 0
            for (size, shape) in zip(pieces, shapes) {
                var values: [Int64] = []
                for o in 0..<outer {
                    let first: Int = (o * d + start) * inner
                    values += t.values[first..<(first + size * inner)]
                }
                outputs.append(.int(IntTensor(shape: shape, values: values)))
                start += size
            }
            return ForwardResult(outputs: outputs, saved: .shapes(shapes))
        }
    }

    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        let none = [Tensor?](repeating: nil, count: inputs.count)
        guard outputGradients.contains(where: { $0 != nil }) else { return none }
        let shapes = try result.savedShapes(node).compactMap { $0 }
        guard let first = shapes.first else { return none }
        let a = try node.normalizedAxis(axis, rank: first.count)
        // An output nobody differentiated contributes zeros.
        let pieces = shapes.enumerated().map { k, shape in (k < outputGradients.count ? outputGradients[k] : nil) ?? Tensor(shape: shape) }
        return [Concat.forward(pieces, axis: a)] + none.dropFirst()
    }
}

/// Gather: X [pre…, d, post…], indices I (integers in [-d, d)) -> Y [pre…, I's shape…, post…] along `axis`.
struct GatherOperator: GraphOperator {
    let node: Node
    let axis: Int

    init(_ node: Node) throws {
        self.node = node
        axis = try AttributeReader(node: node).int("axis", default: 0)
    }

    var backwardNeeds: BackwardNeeds { .inputs }
    var isFoldable: Bool { true }
    /// The indices are configuration.
    func isParameterInput(_ index: Int) -> Bool { index == 0 }

    private func resolved(_ inputs: [Value?], shape: [Int]) throws -> (axis: Int, indices: [Int], shape: [Int]) {
        guard inputs.count > 1, let i = inputs[1] else { throw ExecutionError.missingInput(op: "Gather", index: 1) }
        guard !shape.isEmpty else { throw node.invalid("cannot gather from a scalar") }
        let a = try node.normalizedAxis(axis, rank: shape.count)
        let d = Int64(shape[a])
        let indices = try i.integers.map { k -> Int in
            guard k >= -d && k < d else { throw node.invalid("index \(k) is out of range for an axis of \(d)") }
            return Int(k < 0 ? k + d : k)
        }
        try node.requireAllocatable(Array(shape[..<a]) + i.shape + Array(shape[(a + 1)...]))
        return (a, indices, i.shape)
    }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        guard let x = inputs.first ?? nil else { throw ExecutionError.missingInput(op: "Gather", index: 0) }
        let r = try resolved(inputs, shape: x.shape)
        let outShape = Array(x.shape[..<r.axis]) + r.shape + Array(x.shape[(r.axis + 1)...])
        return ForwardResult(outputs: [x.mapping(shape: outShape, float: {
            Gather.forward($0, axis: r.axis, indices: r.indices, indicesShape: r.shape)
        }, int: { values in
            let d: Int = x.shape[r.axis], inner: Int = x.shape[(r.axis + 1)...].reduce(1, *), outer: Int = x.shape[..<r.axis].reduce(1, *)
            var out: [Int64] = []
            for o in 0..<outer {
                for i in r.indices {
                    let first: Int = (o * d + i) * inner
                    out += values[first..<(first + inner)]
                }
            }
            return out
        })])
    }

    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        guard let dy = outputGradients[0], let x = inputs.first ?? nil else { return [nil, nil] }
        let r = try resolved(inputs, shape: x.shape)
        return [Gather.backward(dy, inputShape: x.shape, axis: r.axis, indices: r.indices), nil]
    }
}

/// Unsqueeze: X, axes -> X with size-1 axes inserted at `axes` (of the output); Squeeze: X [, axes] -> X without
/// the size-1 axes listed (all of them by default). Opset < 13: axes is an attribute. No data moves.
struct UnsqueezeOperator: GraphOperator {
    let node: Node
    let squeezes: Bool
    let attributeAxes: [Int]?

    init(_ node: Node, opset: Int) throws {
        self.node = node
        squeezes = node.opType == "Squeeze"
        attributeAxes = opset < 13 ? try AttributeReader(node: node).ints("axes") : nil
        if !squeezes && opset < 13 && attributeAxes == nil { throw node.badAttribute("axes", "present (Unsqueeze before opset 13)") }
    }

    var backwardNeeds: BackwardNeeds { [] }
    var isFoldable: Bool { true }
    func isParameterInput(_ index: Int) -> Bool { index == 0 }

    func outputShape(_ inputs: [Value?], shape: [Int]) throws -> [Int] {
        let given = try attributeAxes ?? integerInput(node, inputs, 1, "axes")
        if squeezes {
            guard let given else { return shape.filter { $0 != 1 } }
            let axes = Set(try normalizedAxes(node, given, rank: shape.count))
            for a in axes where shape[a] != 1 { throw node.invalid("cannot squeeze axis \(a) of size \(shape[a]) in \(shape)") }
            return shape.indices.filter { !axes.contains($0) }.map { shape[$0] }
        }
        guard let given else { throw ExecutionError.missingInput(op: "Unsqueeze", index: 1) }
        let rank = shape.count + given.count
        guard rank <= 64 else { throw node.invalid("an output of rank \(rank)") }
        let axes = Set(try normalizedAxes(node, given, rank: rank))
        var rest = shape[...]
        return (0..<rank).map { axes.contains($0) ? 1 : rest.popFirst()! }
    }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        guard let x = inputs.first ?? nil else { throw ExecutionError.missingInput(op: node.opType, index: 0) }
        return ForwardResult(outputs: [x.reshaped(try outputShape(inputs, shape: x.shape))], saved: .shape(x.shape))
    }

    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        let none = [Tensor?](repeating: nil, count: inputs.count)
        guard let dy = outputGradients[0] else { return none }
        return [dy.reshaped(try result.savedShape(node))] + none.dropFirst()
    }
}

/// Shape: X -> its shape as a 1-D integer tensor (opset >= 15: the axes start..<end of it).
struct ShapeOperator: GraphOperator {
    let node: Node
    let start: Int
    let end: Int?

    init(_ node: Node) throws {
        self.node = node
        let a = AttributeReader(node: node)
        start = try a.int("start", default: 0)
        end = node.attributes["end"] == nil ? nil : try a.int("end", default: 0)
    }

    var backwardNeeds: BackwardNeeds { [] }
    var isFoldable: Bool { true }
    var readsOnlyShapes: Bool { true }
    /// Nothing it reads is a parameter: it only looks at a shape.
    func isParameterInput(_ index: Int) -> Bool { false }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        guard let x = inputs.first ?? nil else { throw ExecutionError.missingInput(op: "Shape", index: 0) }
        let rank = x.shape.count
        // ONNX clamps start and end (negative: from the end) into [0, rank].
        func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + rank : v, 0), rank) }
        let lower = clamp(start), upper = clamp(end ?? rank)
        let dims = lower < upper ? Array(x.shape[lower..<upper]) : []
        return ForwardResult(outputs: [.int(IntTensor(shape: [dims.count], values: dims.map { Int64($0) }))])
    }

    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] { [nil] }
}

/// Cast: X -> X converted to the element type `to`: Float32 for float types (Float16 and Double arrive as Float32
/// already), integers (truncated toward zero from floats, wrapped to the width of the type) or bool (0/1).
struct CastOperator: GraphOperator {
    let node: Node
    let target: ElementType

    init(_ node: Node) throws {
        self.node = node
        let to = try AttributeReader(node: node).int("to", default: -1)
        guard let target = ElementType(rawValue: to), target != .undefined, target != .string else {
            throw node.badAttribute("to", "a numeric ONNX element type, not \(to)")
        }
        self.target = target
    }

    var isFloat: Bool { [.float, .float16, .double].contains(target) }
    var backwardNeeds: BackwardNeeds { [] }
    var isFoldable: Bool { true }

    /// An integer as the type `target` holds it.
    private func narrowed(_ v: Int64) -> Int64 {
        switch target {
        case .int8: return Int64(Int8(truncatingIfNeeded: v))
        case .uint8: return Int64(UInt8(truncatingIfNeeded: v))
        case .int16: return Int64(Int16(truncatingIfNeeded: v))
        case .uint16: return Int64(UInt16(truncatingIfNeeded: v))
        case .int32: return Int64(Int32(truncatingIfNeeded: v))
        case .uint32: return Int64(UInt32(truncatingIfNeeded: v))
        case .bool: return v != 0 ? 1 : 0
        default: return v
        }
    }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        guard let x = inputs.first ?? nil else { throw ExecutionError.missingInput(op: "Cast", index: 0) }
        switch (x, isFloat) {
        case (.float, true): return ForwardResult(outputs: [x])
        case (.int(let t), true): return ForwardResult(Tensor(shape: t.shape, scalars: t.values.map { Float($0) }))
        case (.int(let t), false): return ForwardResult(outputs: [.int(IntTensor(shape: t.shape, values: t.values.map(narrowed)))])
        case (.float(let t), false):
            let values = try t.scalars.map { f -> Int64 in
                if target == .bool { return f != 0 ? 1 : 0 }
                guard f.isFinite, abs(f) < 9.2e18 else { throw node.invalid("cannot convert \(f) to an integer") }
                return narrowed(Int64(f))
            }
            return ForwardResult(outputs: [.int(IntTensor(shape: t.shape, values: values))])
        }
    }

    /// Float to float is the identity; nothing reaches a Float32 input through an integer.
    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        [isFloat ? outputGradients[0] : nil]
    }
}

/// ReduceMean: X, [axes] (opset >= 18: input; before: attribute) -> the mean over `axes` (all axes when none are
/// given, or X itself with noop_with_empty_axes), keeping them as size 1 with keepdims (the default).
struct ReduceMeanOperator: GraphOperator {
    let node: Node
    let attributeAxes: [Int]?
    let keepDims: Bool
    let noopWithEmptyAxes: Bool

    init(_ node: Node, opset: Int) throws {
        self.node = node
        let a = AttributeReader(node: node)
        attributeAxes = opset < 18 ? try a.ints("axes") : nil
        keepDims = try a.int("keepdims", default: 1) != 0
        noopWithEmptyAxes = try a.int("noop_with_empty_axes", default: 0) != 0
    }

    var backwardNeeds: BackwardNeeds { [] }
    var producesFeatureMaps: Bool { true }
    func isParameterInput(_ index: Int) -> Bool { index == 0 }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        let x = try inputs.float(0, "ReduceMean")
        let given = try attributeAxes ?? integerInput(node, inputs, 1, "axes")
        if (given ?? []).isEmpty && noopWithEmptyAxes { return ForwardResult(outputs: [.float(x)], saved: .reduction(inputShape: x.shape, axes: [])) }
        let axes = try given.flatMap { $0.isEmpty ? nil : try normalizedAxes(node, $0, rank: x.rank) } ?? Array(0..<x.rank)
        for a in axes where x.shape[a] == 0 { throw node.invalid("cannot average the empty axis \(a) of \(x.shape)") }
        let kept = ReduceMean.forward(x, axes: axes)
        let shape = keepDims ? kept.shape : x.shape.indices.filter { !axes.contains($0) }.map { x.shape[$0] }
        return ForwardResult(outputs: [.float(kept.reshaped(shape))], saved: .reduction(inputShape: x.shape, axes: axes))
    }

    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        let none = [Tensor?](repeating: nil, count: inputs.count)
        guard let dy = outputGradients[0] else { return none }
        let saved = try result.savedReduction(node)
        guard !saved.axes.isEmpty else { return [dy] + none.dropFirst() }
        var kept = saved.inputShape
        for a in saved.axes { kept[a] = 1 }
        return [ReduceMean.backward(dy.reshaped(kept), inputShape: saved.inputShape, axes: saved.axes)] + none.dropFirst()
    }
}
