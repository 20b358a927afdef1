import Foundation
import Parallel

/// Elementwise binary operators (ONNX Add, Sub, Mul, Div).
public enum BinaryOperator { case add, sub, mul, div }

/// An operation as a type, so that `run` is specialised for each one (no switch inside the inner loop).
protocol BroadcastOp { static func apply(_ a: Float, _ b: Float) -> Float }
enum AddOp: BroadcastOp { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a + b } }
enum SubOp: BroadcastOp { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a - b } }
enum MulOp: BroadcastOp { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a * b } }
enum DivOp: BroadcastOp { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a / b } }

/// An output shape walked as rows of a contiguous innermost run, with each operand's element stride per axis
/// (0 where the operand is broadcast). Size-1 axes are dropped and axes contiguous in every operand are merged,
/// so [N,C,H,W] + [1,C,1,1] becomes dims [N, C, H*W] with strides [0, 1, 0]: one scalar per run of H*W.
struct BroadcastLayout {
    var dims: [Int]
    var strides: [[Int]]

    init(output: [Int], operands: [[Int]]) {
        let rank = output.count
        var aligned: [[Int]] = operands.map { shape in
            let padded = [Int](repeating: 1, count: rank - shape.count) + shape
            let contiguous = Tensors.strides(of: padded)
            return (0..<rank).map { padded[$0] == 1 ? 0 : contiguous[$0] }
        }
        var dims: [Int] = []
        var merged: [[Int]] = Array(repeating: [], count: operands.count)
        for axis in 0..<rank where output[axis] != 1 {
            let size = output[axis]
            if let last = dims.last,
               (0..<operands.count).allSatisfy({ merged[$0].last! == aligned[$0][axis] * size }) {
                dims[dims.count - 1] = last * size
                for k in 0..<operands.count { merged[k][merged[k].count - 1] = aligned[k][axis] }
            } else {
                dims.append(size)
                for k in 0..<operands.count { merged[k].append(aligned[k][axis]) }
            }
        }
        if dims.isEmpty {
            dims = [1]
            merged = Array(repeating: [0], count: operands.count)
        }
        aligned.removeAll()
        self.dims = dims
        self.strides = merged
    }

    var inner: Int { dims[dims.count - 1] }
    var rows: Int { dims.dropLast().reduce(1, *) }

    /// Calls body(row, offsets) for rows in `range`, offsets being each operand's element offset of the row start.
    /// Offsets advance with an odometer, so the per-row cost is O(1) amortised.
    func forEachRow(_ range: Range<Int>, _ body: (Int, [Int]) -> Void) {
        let outer = dims.count - 1
        var counter = [Int](repeating: 0, count: outer)
        var offsets = [Int](repeating: 0, count: strides.count)
        var rest = range.lowerBound
        for axis in stride(from: outer - 1, through: 0, by: -1) {
            counter[axis] = rest % dims[axis]
            rest /= dims[axis]
            for k in 0..<strides.count { offsets[k] += counter[axis] * strides[k][axis] }
        }
        for row in range {
            body(row, offsets)
            var axis = outer - 1
            while axis >= 0 {
                counter[axis] += 1
                for k in 0..<strides.count { offsets[k] += strides[k][axis] }
                if counter[axis] < dims[axis] { break }
                for k in 0..<strides.count { offsets[k] -= dims[axis] * strides[k][axis] }
                counter[axis] = 0
                axis -= 1
            }
        }
    }
}

/// Numpy-style multidirectional broadcasting for elementwise binary operators and the matching gradient reduction.
public enum Broadcast {
    /// numpy multidirectional broadcasting of a and b (any ranks) -> result shape; nil when not broadcastable.
    public static func shape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = max(a.count, b.count)
        let pa = [Int](repeating: 1, count: rank - a.count) + a
        let pb = [Int](repeating: 1, count: rank - b.count) + b
        var result = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            if pa[i] == pb[i] || pb[i] == 1 { result[i] = pa[i] }
            else if pa[i] == 1 { result[i] = pb[i] }
            else { return nil }
        }
        return result
    }

    /// a (shape A) op b (shape B) -> shape(A, B).
    public static func binary(_ a: Tensor, _ b: Tensor, _ op: BinaryOperator) -> Tensor {
        switch op {
        case .add: return run(AddOp.self, a, b)
        case .sub: return run(SubOp.self, a, b)
        case .mul: return run(MulOp.self, a, b)
        case .div: return run(DivOp.self, a, b)
        }
    }

    /// dy (shape(A, B)) -> gradients w.r.t. a (A) and b (B), each summed back to its own shape.
    public static func binaryBackward(_ dy: Tensor, a: Tensor, b: Tensor, _ op: BinaryOperator) -> (da: Tensor, db: Tensor) {
        switch op {
        case .add:
            return (reduce(dy, to: a.shape), reduce(dy, to: b.shape))
        case .sub:
            var db = reduce(dy, to: b.shape)
            db.scale(by: -1)
            return (reduce(dy, to: a.shape), db)
        case .mul:
            return (reduceProduct(dy, b, to: a.shape), reduceProduct(dy, a, to: b.shape))
        case .div:
            // d(a/b)/db = -a/b^2 = -(dy/b) * a / b
            let dyOverB = binary(dy, b, .div)
            var db = reduce(binary(binary(dyOverB, a, .mul), b, .div), to: b.shape)
            db.scale(by: -1)
            return (reduce(dyOverB, to: a.shape), db)
        }
    }

    /// reduce(binary(dy, x, .mul), to: shape), the same values; when x has dy's shape and each run of the product
    /// sums to one element (a squeeze-excitation gate's gradient: Σ over H·W of dy·x), without the product tensor.
    static func reduceProduct(_ dy: Tensor, _ x: Tensor, to shape: [Int]) -> Tensor {
        guard x.shape == dy.shape, shape.reduce(1, *) != dy.count,
              Broadcast.shape(shape, dy.shape) == dy.shape else { return reduce(binary(dy, x, .mul), to: shape) }
        let layout = BroadcastLayout(output: dy.shape, operands: [shape])
        let inner = layout.inner
        guard layout.strides[0][layout.dims.count - 1] == 0 else { return reduce(binary(dy, x, .mul), to: shape) }
        return Tensor(shape: shape) { out in
            let dst = out.baseAddress!
            dst.initialize(repeating: 0, count: out.count)
            dy.withUnsafeBufferPointer { gb in
                x.withUnsafeBufferPointer { xb in
                    let g = gb.baseAddress!, xp = xb.baseAddress!
                    let sums = [Double](unsafeUninitializedCapacity: layout.rows) { buffer, initialized in
                        let sp = buffer.baseAddress!
                        parallelRanges(layout.rows, work: layout.rows * inner) { rows in
                            for row in rows { sp[row] = rowSum(g + row * inner, xp + row * inner, inner) }
                        }
                        initialized = layout.rows
                    }
                    layout.forEachRow(0..<layout.rows) { row, offsets in dst[offsets[0]] += Float(sums[row]) }
                }
            }
        }
    }

    /// dy (shape S) -> sum over the broadcast axes down to `shape` (which must broadcast to S).
    public static func reduce(_ dy: Tensor, to shape: [Int]) -> Tensor {
        precondition(Broadcast.shape(shape, dy.shape) == dy.shape, "reduce: \(shape) does not broadcast to \(dy.shape)")
        if shape.reduce(1, *) == dy.count { return dy.reshaped(shape) }
        let layout = BroadcastLayout(output: dy.shape, operands: [shape])
        let inner = layout.inner
        let innerStride = layout.strides[0][layout.dims.count - 1]
        return Tensor(shape: shape) { out in
            let dst = out.baseAddress!
            dst.initialize(repeating: 0, count: out.count)
            dy.withUnsafeBufferPointer { gb in
                let src = gb.baseAddress!
                if innerStride == 0 {
                    // Each run sums to one element (a bias or a squeeze-excitation gate's gradient over H·W): the
                    // runs are summed in parallel, in Double (long runs lose precision in Float), then added to
                    // their elements in row order.
                    let sums = [Double](unsafeUninitializedCapacity: layout.rows) { buffer, initialized in
                        let sp = buffer.baseAddress!
                        parallelRanges(layout.rows, work: layout.rows * inner) { rows in
                            for row in rows { sp[row] = rowSum(src + row * inner, inner) }
                        }
                        initialized = layout.rows
                    }
                    layout.forEachRow(0..<layout.rows) { row, offsets in dst[offsets[0]] += Float(sums[row]) }
                } else {
                    layout.forEachRow(0..<layout.rows) { row, offsets in
                        let s = src + row * inner, d = dst + offsets[0]
                        for i in 0..<inner { d[i] += s[i] }
                    }
                }
            }
        }
    }

    /// Σ s[0..<count] in Double: eight interleaved partial sums (element i goes to partial i mod 8), then added
    /// pairwise, so that the loop is vector code; the same order, so the same result, on every machine.
    @inline(__always)
    static func rowSum(_ s: UnsafePointer<Float>, _ count: Int) -> Double {
        var partial = SIMD8<Double>(repeating: 0)
        var i = 0
        while i + 8 <= count {
            let v = UnsafeRawPointer(s + i).loadUnaligned(as: SIMD8<Float>.self)
            partial += SIMD8<Double>(v)
            i += 8
        }
        var lanes = partial
        for k in 0..<(count - i) { lanes[k] += Double(s[i + k]) }
        let four = lanes.lowHalf + lanes.highHalf, two = four.lowHalf + four.highHalf
        return two[0] + two[1]
    }

    /// Σ Float(a[i]·b[i]) over 0..<count, each product rounded to Float as `binary(_, _, .mul)` stores it, then
    /// summed exactly as `rowSum` sums the stored products: the same result as rowSum over the product tensor.
    @inline(__always)
    static func rowSum(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Double {
        var partial = SIMD8<Double>(repeating: 0)
        var i = 0
        while i + 8 <= count {
            let p = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self) * UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self)
            partial += SIMD8<Double>(p)
            i += 8
        }
        var lanes = partial
        for k in 0..<(count - i) { lanes[k] += Double(a[i + k] * b[i + k]) }
        let four = lanes.lowHalf + lanes.highHalf, two = four.lowHalf + four.highHalf
        return two[0] + two[1]
    }

    static func run<Op: BroadcastOp>(_ op: Op.Type, _ a: Tensor, _ b: Tensor) -> Tensor {
        guard let outShape = shape(a.shape, b.shape) else {
            preconditionFailure("cannot broadcast \(a.shape) with \(b.shape)")
        }
        let count = outShape.reduce(1, *)
        return Tensor(shape: outShape) { out in
            a.withUnsafeBufferPointer { ab in
                b.withUnsafeBufferPointer { bb in
                    let ap = ab.baseAddress!, bp = bb.baseAddress!, op = out.baseAddress!
                    if ab.count == count && bb.count == count {
                        parallelRanges(count) { r in for i in r { op[i] = Op.apply(ap[i], bp[i]) } }
                    } else if ab.count == count && bb.count == 1 {
                        let s = bp[0]
                        parallelRanges(count) { r in for i in r { op[i] = Op.apply(ap[i], s) } }
                    } else if bb.count == count && ab.count == 1 {
                        let s = ap[0]
                        parallelRanges(count) { r in for i in r { op[i] = Op.apply(s, bp[i]) } }
                    } else {
                        let layout = BroadcastLayout(output: outShape, operands: [a.shape, b.shape])
                        let inner = layout.inner, last = layout.dims.count - 1
                        let sa = layout.strides[0][last], sb = layout.strides[1][last]
                        parallelRanges(layout.rows, minimumWorkPerThread: max(1, (1 << 16) / inner)) { rows in
                            layout.forEachRow(rows) { row, offsets in
                                let x = ap + offsets[0], y = bp + offsets[1], z = op + row * inner
                                switch (sa, sb) {
                                case (1, 1):
                                    for i in 0..<inner { z[i] = Op.apply(x[i], y[i]) }
                                case (1, 0):
                                    let s = y[0]
                                    for i in 0..<inner { z[i] = Op.apply(x[i], s) }
                                case (0, 1):
                                    let s = x[0]
                                    for i in 0..<inner { z[i] = Op.apply(s, y[i]) }
                                default:
                                    for i in 0..<inner { z[i] = Op.apply(x[i * sa], y[i * sb]) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
