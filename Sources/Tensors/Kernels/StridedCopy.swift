import Foundation

/// A copy between two strided views of the same logical shape: `dst[offset + Σ i_k·dstStride_k] =
/// src[offset + Σ i_k·srcStride_k]` for every index i. Transpose (source strides permuted), Slice (source strides
/// scaled by the steps, from the first element kept) and Slice's backward (the same view on the destination) are all
/// this one loop, so they share its fast paths:
/// - axes of size 1 are dropped and neighbouring axes that are contiguous in both views are merged, so that a channel
///   shuffle [N,g,c,H,W] -> [N,c,g,H,W] becomes [g,c,H·W] -> [c,g,H·W] and a channel chunk becomes one block;
/// - when the innermost axis is contiguous on both sides, each row is one block copy (`memcpy`);
/// - when it is contiguous on one side only (NCHW <-> NHWC), the copy goes through 16x16 tiles so that both sides
///   are read and written a cache line at a time.
public struct StridedCopy {
    /// Merged shape and strides (innermost last); empty for a single element.
    public private(set) var shape: [Int]
    public private(set) var srcStrides: [Int]
    public private(set) var dstStrides: [Int]
    public let srcOffset: Int
    public let dstOffset: Int

    /// `shape` with source and destination strides (in elements) and the offsets of the first element.
    public init(shape: [Int], srcStrides: [Int], dstStrides: [Int], srcOffset: Int = 0, dstOffset: Int = 0) {
        precondition(shape.count == srcStrides.count && shape.count == dstStrides.count, "StridedCopy: rank mismatch")
        self.srcOffset = srcOffset
        self.dstOffset = dstOffset
        var s: [Int] = [], a: [Int] = [], b: [Int] = []
        for k in shape.indices where shape[k] != 1 {
            if let last = s.indices.last, a[last] == srcStrides[k] * shape[k], b[last] == dstStrides[k] * shape[k] {
                // Axis `last` steps over exactly one run of axis k on both sides: one axis of the product size.
                s[last] *= shape[k]; a[last] = srcStrides[k]; b[last] = dstStrides[k]
            } else {
                s.append(shape[k]); a.append(srcStrides[k]); b.append(dstStrides[k])
            }
        }
        self.shape = s
        self.srcStrides = a
        self.dstStrides = b
    }

    /// Elements copied.
    public var count: Int { shape.reduce(1, *) }

    /// Runs the copy. Generic so that integer tensors (shape arithmetic) take the same path as Float32 ones.
    public func run<T>(from src: UnsafePointer<T>, to dst: UnsafeMutablePointer<T>) {
        if shape.contains(0) { return }
        let s = src + srcOffset, d = dst + dstOffset
        let rank = shape.count
        if rank == 0 { d.pointee = s.pointee; return }
        let inner = rank - 1
        if srcStrides[inner] == 1 && dstStrides[inner] == 1 {
            let n = shape[inner]
            forEachIndex(axes: inner) { so, dO in (d + dO).update(from: s + so, count: n) }
            return
        }
        // One side contiguous on the innermost axis, the other on axis `k`: 2-D tiles over (k, inner).
        if let k = (0..<inner).last(where: { srcStrides[$0] == 1 || dstStrides[$0] == 1 }), rank >= 2 {
            tiled(s, d, k: k)
            return
        }
        let n = shape[inner], sa = srcStrides[inner], da = dstStrides[inner]
        forEachIndex(axes: inner) { so, dO in
            for i in 0..<n { d[dO + i * da] = s[so + i * sa] }
        }
    }

    /// The copy applied to an array of `dstCount` elements read from `src` (integer tensors; `fill` for elements the
    /// copy does not write).
    public func run<T>(_ src: [T], dstCount: Int, fill: T) -> [T] {
        var out = [T](repeating: fill, count: dstCount)
        guard count > 0 else { return out }
        src.withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { d in run(from: s.baseAddress!, to: d.baseAddress!) } }
        return out
    }

    /// Calls `body(srcOffset, dstOffset)` for every index of the first `axes` axes (odometer order).
    private func forEachIndex(axes: Int, skipping skip: Int = -1, _ body: (Int, Int) -> Void) {
        var index = [Int](repeating: 0, count: axes)
        var so = 0, dO = 0
        while true {
            body(so, dO)
            var k = axes - 1
            while k >= 0 {
                if k == skip { k -= 1; continue }
                index[k] += 1
                so += srcStrides[k]; dO += dstStrides[k]
                if index[k] < shape[k] { break }
                so -= srcStrides[k] * shape[k]; dO -= dstStrides[k] * shape[k]
                index[k] = 0
                k -= 1
            }
            if k < 0 { return }
        }
    }

    private func tiled<T>(_ s: UnsafePointer<T>, _ d: UnsafeMutablePointer<T>, k: Int) {
        let inner = shape.count - 1
        let rows = shape[k], cols = shape[inner]
        let sr = srcStrides[k], sc = srcStrides[inner], dr = dstStrides[k], dc = dstStrides[inner]
        let tile = 16
        forEachIndex(axes: inner, skipping: k) { so, dO in
            var r0 = 0
            while r0 < rows {
                let r1 = min(r0 + tile, rows)
                var c0 = 0
                while c0 < cols {
                    let c1 = min(c0 + tile, cols)
                    if dc == 1 {
                        for r in r0..<r1 { for c in c0..<c1 { d[dO + r * dr + c] = s[so + r * sr + c * sc] } }
                    } else {
                        for c in c0..<c1 { for r in r0..<r1 { d[dO + r * dr + c * dc] = s[so + r * sr + c * sc] } }
                    }
                    c0 = c1
                }
                r0 = r1
            }
        }
    }
}

/// ONNX Transpose: X [d_0 … d_(r-1)] -> Y [d_p0 … d_p(r-1)] with Y[i_0 … i_(r-1)] = X at index i_k on axis p_k.
/// Backward: the transpose of dY by the inverse permutation.
public enum Transpose {
    /// `perm` must be a permutation of 0..<x.rank (the operator checks it).
    public static func forward(_ x: Tensor, perm: [Int]) -> Tensor {
        let outShape = perm.map { x.shape[$0] }
        let copy = plan(inputShape: x.shape, perm: perm)
        return Tensor(shape: outShape) { y in
            x.withUnsafeBufferPointer { copy.run(from: $0.baseAddress!, to: y.baseAddress!) }
        }
    }

    /// The copy from a dense tensor of `inputShape` to its dense transpose.
    public static func plan(inputShape: [Int], perm: [Int]) -> StridedCopy {
        let outShape = perm.map { inputShape[$0] }
        let inStrides = strides(of: inputShape)
        return StridedCopy(shape: outShape, srcStrides: perm.map { inStrides[$0] }, dstStrides: strides(of: outShape))
    }

    /// dY [d_p…] -> dX [d…].
    public static func backward(_ dy: Tensor, perm: [Int]) -> Tensor { forward(dy, perm: inverse(perm)) }

    /// q with q[p[k]] = k.
    public static func inverse(_ perm: [Int]) -> [Int] {
        var q = [Int](repeating: 0, count: perm.count)
        for (k, p) in perm.enumerated() { q[p] = k }
        return q
    }
}

/// ONNX Slice with resolved bounds: along every axis k, the elements start_k, start_k + step_k, … (count_k of them;
/// steps may be negative). X [d…] -> Y [count…]. Backward: dY scattered into zeros of X's shape.
public enum Slice {
    /// The strided view of the kept elements inside a tensor of `shape`: its strides and the offset of the first.
    static func view(shape: [Int], starts: [Int], steps: [Int]) -> (strides: [Int], offset: Int) {
        let s = strides(of: shape)
        return (zip(s, steps).map { $0 * $1 }, zip(s, starts).reduce(0) { $0 + $1.0 * $1.1 })
    }

    /// `starts`, `steps` and `counts` per axis of `x`; every kept index must lie inside `x` (the operator checks it).
    /// Elements that are one run of x's memory (a channel chunk of one image) and at least a quarter of it are
    /// returned as a view of x (no copy; a small view would keep much memory alive).
    public static func forward(_ x: Tensor, starts: [Int], steps: [Int], counts: [Int]) -> Tensor {
        let copy = plan(inputShape: x.shape, starts: starts, steps: steps, counts: counts)
        let kept = counts.reduce(1, *)
        if kept > 0, 4 * kept >= x.count, copy.shape.isEmpty || (copy.shape.count == 1 && copy.srcStrides[0] == 1) {
            return x.contiguousView(offset: copy.srcOffset, shape: counts)
        }
        return Tensor(shape: counts) { y in
            guard y.count > 0 else { return }
            x.withUnsafeBufferPointer { copy.run(from: $0.baseAddress!, to: y.baseAddress!) }
        }
    }

    /// The copy from a dense tensor of `inputShape` to the dense slice.
    public static func plan(inputShape: [Int], starts: [Int], steps: [Int], counts: [Int]) -> StridedCopy {
        let v = view(shape: inputShape, starts: starts, steps: steps)
        return StridedCopy(shape: counts, srcStrides: v.strides, dstStrides: strides(of: counts), srcOffset: v.offset)
    }

    /// dY [count…] -> dX [inputShape] (zero where nothing was kept).
    public static func backward(_ dy: Tensor, inputShape: [Int], starts: [Int], steps: [Int]) -> Tensor {
        let v = view(shape: inputShape, starts: starts, steps: steps)
        let copy = StridedCopy(shape: dy.shape, srcStrides: strides(of: dy.shape), dstStrides: v.strides, dstOffset: v.offset)
        var dx = Tensor(shape: inputShape)
        guard dy.count > 0 else { return dx }
        dx.withUnsafeMutableBufferPointer { d in dy.withUnsafeBufferPointer { copy.run(from: $0.baseAddress!, to: d.baseAddress!) } }
        return dx
    }
}

/// ONNX Gather: X [pre…, d, post…], indices I (already in 0..<d) -> Y [pre…, I's shape…, post…]:
/// Y[a, j, b] = X[a, I[j], b]. Backward: dX[a, I[j], b] += dY[a, j, b] (repeated indices add up).
public enum Gather {
    public static func forward(_ x: Tensor, axis: Int, indices: [Int], indicesShape: [Int]) -> Tensor {
        let outer = x.shape[..<axis].reduce(1, *), d = x.shape[axis], inner = x.shape[(axis + 1)...].reduce(1, *)
        let outShape = Array(x.shape[..<axis]) + indicesShape + Array(x.shape[(axis + 1)...])
        return Tensor(shape: outShape) { y in
            guard y.count > 0 else { return }
            x.withUnsafeBufferPointer { xb in
                let xp = xb.baseAddress!, yp = y.baseAddress!
                for o in 0..<outer {
                    for (j, i) in indices.enumerated() {
                        (yp + (o * indices.count + j) * inner).update(from: xp + (o * d + i) * inner, count: inner)
                    }
                }
            }
        }
    }

    public static func backward(_ dy: Tensor, inputShape: [Int], axis: Int, indices: [Int]) -> Tensor {
        let outer = inputShape[..<axis].reduce(1, *), d = inputShape[axis], inner = inputShape[(axis + 1)...].reduce(1, *)
        var dx = Tensor(shape: inputShape)
        guard dy.count > 0 else { return dx }
        dx.withUnsafeMutableBufferPointer { xb in
            dy.withUnsafeBufferPointer { yb in
                let xp = xb.baseAddress!, yp = yb.baseAddress!
                for o in 0..<outer {
                    for (j, i) in indices.enumerated() {
                        let target = xp + (o * d + i) * inner, source = yp + (o * indices.count + j) * inner
                        for e in 0..<inner { target[e] += source[e] }
                    }
                }
            }
        }
        return dx
    }
}

/// Mean over a set of axes (ONNX ReduceMean): each axis is reduced in turn as the middle of [outer, n, inner]
/// (the mean over several axes is the mean of means, all groups having the same size). Y keeps the reduced axes as 1.
/// Backward: dX = dY / n broadcast over each reduced axis.
public enum ReduceMean {
    /// x -> y with the axes in `axes` (distinct, in range) reduced to size 1.
    public static func forward(_ x: Tensor, axes: [Int]) -> Tensor {
        let sorted = axes.sorted()
        // The common case, the trailing H and W of NCHW: GlobalAveragePool's kernel.
        if x.rank == 4 && sorted == [2, 3] && x.shape[2] * x.shape[3] > 0 { return GlobalAveragePool.forward(x) }
        var y = x
        for axis in sorted { y = meanAxis(y, axis: axis) }
        return y
    }

    public static func backward(_ dy: Tensor, inputShape: [Int], axes: [Int]) -> Tensor {
        let sorted = axes.sorted()
        if inputShape.count == 4 && sorted == [2, 3] && inputShape[2] * inputShape[3] > 0 {
            return GlobalAveragePool.backward(dy.reshaped([inputShape[0], inputShape[1], 1, 1]), inputShape: inputShape)
        }
        var g = dy
        var shape = inputShape
        for axis in sorted { shape[axis] = 1 }
        for axis in sorted.reversed() {
            shape[axis] = inputShape[axis]
            g = broadcastAxis(g, to: shape, axis: axis)
        }
        return g
    }

    /// [outer, n, inner] -> [outer, 1, inner]: the mean over the middle axis (an empty axis gives NaN, as 0/0).
    static func meanAxis(_ x: Tensor, axis: Int) -> Tensor {
        let outer = x.shape[..<axis].reduce(1, *), n = x.shape[axis], inner = x.shape[(axis + 1)...].reduce(1, *)
        var outShape = x.shape
        outShape[axis] = 1
        let scale = 1 / Float(n)
        return Tensor(shape: outShape) { y in
            guard y.count > 0 else { return }
            x.withUnsafeBufferPointer { xb in
                let xp = xb.baseAddress!, yp = y.baseAddress!
                for o in 0..<outer {
                    let row = yp + o * inner
                    row.initialize(repeating: 0, count: inner)
                    for k in 0..<n {
                        let source = xp + (o * n + k) * inner
                        for e in 0..<inner { row[e] += source[e] }
                    }
                    for e in 0..<inner { row[e] *= scale }
                }
            }
        }
    }

    /// [outer, 1, inner] -> [outer, n, inner] with each value divided by n.
    static func broadcastAxis(_ g: Tensor, to shape: [Int], axis: Int) -> Tensor {
        let outer = shape[..<axis].reduce(1, *), n = shape[axis], inner = shape[(axis + 1)...].reduce(1, *)
        let scale = 1 / Float(n)
        return Tensor(shape: shape) { x in
            guard x.count > 0 else { return }
            g.withUnsafeBufferPointer { gb in
                let gp = gb.baseAddress!, xp = x.baseAddress!
                for o in 0..<outer {
                    for k in 0..<n {
                        let target = xp + (o * n + k) * inner
                        for e in 0..<inner { target[e] = gp[o * inner + e] * scale }
                    }
                }
            }
        }
    }
}

/// The concatenation of g equal tensors along the channels followed by ShuffleNet's channel shuffle (view as
/// [N, g, c, H, W], swap axes 1 and 2, view as [N, g·c, H, W]) in one pass: y[n, j·g + k] = x_k[n, j].
public enum ChannelShuffle {
    /// xs: g tensors [N, c, H, W] (equal shapes) -> y [N, g·c, H, W].
    public static func interleave(_ xs: [Tensor]) -> Tensor {
        let shape = xs[0].shape, g = xs.count
        precondition(shape.count == 4 && xs.allSatisfy { $0.shape == shape }, "ChannelShuffle: shapes \(xs.map(\.shape))")
        let n = shape[0], c = shape[1], plane = shape[2] * shape[3]
        return Tensor(shape: [n, g * c, shape[2], shape[3]]) { y in
            guard y.count > 0 else { return }
            for (k, x) in xs.enumerated() {
                let copy = StridedCopy(shape: [n, c, plane], srcStrides: [c * plane, plane, 1],
                                       dstStrides: [g * c * plane, g * plane, 1], dstOffset: k * plane)
                x.withUnsafeBufferPointer { copy.run(from: $0.baseAddress!, to: y.baseAddress!) }
            }
        }
    }
}
