import CKernels
import Parallel

/// Hyper-parameters of ONNX LRN (size is the channel window; alpha is divided by size as ONNX and Caffe do).
public struct LRNParameters: Equatable {
    public var size: Int
    public var alpha: Float
    public var beta: Float
    public var bias: Float

    public init(size: Int, alpha: Float = 1e-4, beta: Float = 0.75, bias: Float = 1) {
        self.size = size; self.alpha = alpha; self.beta = beta; self.bias = bias
    }

    /// Channels before and after c in c's window: [c - before, c + after].
    var before: Int { (size - 1) / 2 }
    var after: Int { size - 1 - (size - 1) / 2 }
}

/// Local response normalisation across channels (ONNX LRN, as in AlexNet / GoogLeNet).
/// The kernels are in C (CKernels/KernelBodies.h, one compilation per `SIMDLevel`): a vector of pixels walks down the
/// channels keeping the window's sum of squares in a register, so the cost is O(C·H·W) whatever the window size and
/// x is read from memory once. Every level gives the same bits (sqrt and division are correctly rounded and no
/// multiply-add is fused). This file splits the pixels over threads.
public enum LocalResponseNorm {
    /// x [N,C,...] -> y [N,C,...]; y = x * s^-beta with s = bias + alpha/size * sum_{window(c)} x^2.
    public static func forward(_ x: Tensor, _ p: LRNParameters) -> Tensor {
        precondition(x.rank >= 3, "LRN expects [N,C,...], got \(x.shape)")
        if x.count == 0 { return x }
        var shape = kernelShape(x.shape, p)
        return Tensor(shape: x.shape) { yb in
            x.withUnsafeBufferPointer { xb in
                let xp = xb.baseAddress!, yp = yb.baseAddress!
                forEachPixelRange(x.shape, &shape) { shape, offset, first, end in
                    dream_lrn_forward(shape, xp + offset, yp + offset, Int64(first), Int64(end))
                }
            }
        }
    }

    /// dy, x [N,C,...] -> dx [N,C,...]:
    /// dx_j = dy_j s_j^-beta - 2·alpha·beta/size · x_j · sum_{i : j in window(i)} dy_i x_i s_i^(-beta-1).
    public static func backward(_ dy: Tensor, x: Tensor, _ p: LRNParameters) -> Tensor {
        precondition(dy.shape == x.shape, "LRN backward: \(dy.shape) vs \(x.shape)")
        if x.count == 0 { return x }
        var shape = kernelShape(x.shape, p)
        let floats = Int(dream_lrn_backward_scratch_floats(&shape))
        return Tensor(shape: x.shape) { db in
            x.withUnsafeBufferPointer { xb in
                dy.withUnsafeBufferPointer { gb in
                    let xp = xb.baseAddress!, gp = gb.baseAddress!, dp = db.baseAddress!
                    forEachPixelRange(x.shape, &shape) { shape, offset, first, end in
                        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: floats)
                        defer { scratch.deallocate() }
                        dream_lrn_backward(shape, xp + offset, gp + offset, dp + offset, Int64(first), Int64(end), scratch)
                    }
                }
            }
        }
    }

    /// The kernels' view of one sample of `shape` with parameters `p`.
    static func kernelShape(_ shape: [Int], _ p: LRNParameters) -> dream_lrn_shape {
        let n = shape[0], c = shape[1], count = shape.reduce(1, *)
        return dream_lrn_shape(channels: Int64(c), plane: Int64(count / max(1, n * c)), before: Int64(p.before),
                               after: Int64(p.after), bias: p.bias, coefficient: p.alpha / Float(p.size), beta: p.beta,
                               factor: 2 * p.alpha * p.beta / Float(p.size))
    }

    /// Splits the N·plane pixel columns over threads (each column runs down all channels) and calls
    /// body(shape, offset of the sample, first pixel, end pixel) for each piece within one sample.
    static func forEachPixelRange(_ xShape: [Int], _ shape: inout dream_lrn_shape,
                                  _ body: (UnsafePointer<dream_lrn_shape>, Int, Int, Int) -> Void) {
        let n = xShape[0], c = Int(shape.channels), plane = Int(shape.plane)
        withUnsafePointer(to: &shape) { shape in
            // Pieces of at least 64 pixels, so that the overlapping last vector of a piece is a small share of it.
            let pieces = max(1, (plane + 63) / 64)
            parallelRanges(n * pieces, work: n * c * plane, minimumWorkPerThread: 1 << 15) { range in
                var piece = range.lowerBound
                while piece < range.upperBound {
                    let sample = piece / pieces
                    let last = min(range.upperBound, (sample + 1) * pieces)
                    let first = (piece % pieces) * plane / pieces, end = ((last - 1) % pieces + 1) * plane / pieces
                    body(shape, sample * c * plane, first, end)
                    piece = last
                }
            }
        }
    }
}
