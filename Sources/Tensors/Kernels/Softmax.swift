import Foundation

/// Softmax and log-softmax along one axis (ONNX Softmax / LogSoftmax, opset 13 semantics).
/// The tensor is viewed as [outer, length, inner]; when inner > 1 the loops run across `inner` so they stay contiguous.
public enum Softmax {
    /// x -> y, same shape; y = exp(x - max) / sum exp(x - max) along `axis` (negative counts from the end).
    public static func forward(_ x: Tensor, axis: Int) -> Tensor {
        compute(x, axis: axis, log: false)
    }

    /// dy, y (softmax output) -> dx, same shape; dx = y · (dy - sum(dy · y)) along `axis`.
    public static func backward(_ dy: Tensor, y: Tensor, axis: Int) -> Tensor {
        precondition(dy.shape == y.shape, "Softmax backward: \(dy.shape) vs \(y.shape)")
        let (outer, length, inner) = split(y.shape, axis)
        return Tensor(shape: y.shape) { db in
            dy.withUnsafeBufferPointer { gb in
                y.withUnsafeBufferPointer { yb in
                    let gp = gb.baseAddress!, yp = yb.baseAddress!, dp = db.baseAddress!
                    let dot = UnsafeMutablePointer<Float>.allocate(capacity: max(inner, 1))
                    defer { dot.deallocate() }
                    for o in 0..<outer {
                        let base = o * length * inner
                        let g = gp + base, s = yp + base, d = dp + base
                        for i in 0..<inner { dot[i] = 0 }
                        for k in 0..<length {
                            let row = k * inner
                            for i in 0..<inner { dot[i] += g[row + i] * s[row + i] }
                        }
                        for k in 0..<length {
                            let row = k * inner
                            for i in 0..<inner { d[row + i] = s[row + i] * (g[row + i] - dot[i]) }
                        }
                    }
                }
            }
        }
    }

    /// x -> log softmax(x), same shape; x - max - log(sum exp(x - max)) along `axis`.
    public static func logForward(_ x: Tensor, axis: Int) -> Tensor {
        compute(x, axis: axis, log: true)
    }

    /// (outer, axis length, inner) of a shape split at a possibly negative axis.
    static func split(_ shape: [Int], _ axis: Int) -> (Int, Int, Int) {
        let a = axis < 0 ? axis + shape.count : axis
        precondition(a >= 0 && a < shape.count, "softmax axis \(axis) out of range for \(shape)")
        return (shape[..<a].reduce(1, *), shape[a], shape[(a + 1)...].reduce(1, *))
    }

    static func compute(_ x: Tensor, axis: Int, log: Bool) -> Tensor {
        let (outer, length, inner) = split(x.shape, axis)
        return Tensor(shape: x.shape) { yb in
            x.withUnsafeBufferPointer { xb in
                let xp = xb.baseAddress!, yp = yb.baseAddress!
                // Per-column running max and sum across the axis (columns = the inner positions).
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 2 * max(inner, 1))
                defer { scratch.deallocate() }
                let maxima = scratch, sums = scratch + max(inner, 1)
                for o in 0..<outer {
                    let base = o * length * inner
                    let src = xp + base, dst = yp + base
                    for i in 0..<inner { maxima[i] = -.infinity; sums[i] = 0 }
                    for k in 0..<length {
                        let row = k * inner
                        for i in 0..<inner { maxima[i] = max(maxima[i], src[row + i]) }
                    }
                    for k in 0..<length {
                        let row = k * inner
                        for i in 0..<inner {
                            let e = Foundation.exp(src[row + i] - maxima[i])
                            if !log { dst[row + i] = e }
                            sums[i] += e
                        }
                    }
                    if log {
                        // (x - max) - log(sum), not x - (max + log(sum)): the latter loses the small term next to a large max.
                        for i in 0..<inner { sums[i] = Foundation.log(sums[i]) }
                        for k in 0..<length {
                            let row = k * inner
                            for i in 0..<inner { dst[row + i] = (src[row + i] - maxima[i]) - sums[i] }
                        }
                    } else {
                        for i in 0..<inner { sums[i] = 1 / sums[i] }
                        for k in 0..<length {
                            let row = k * inner
                            for i in 0..<inner { dst[row + i] *= sums[i] }
                        }
                    }
                }
            }
        }
    }
}
