import CKernels
import Foundation
import Parallel

/// Batch normalisation in inference form (ONNX BatchNormalization with stored statistics).
/// The whole layer is a per-channel affine map y = a[c]·x + b[c], which is also how it is folded into a conv.
public enum BatchNorm {
    /// x [N,C,...], scale/bias/mean/variance [C] -> y [N,C,...]; y = scale·(x - mean)/sqrt(variance + epsilon) + bias,
    /// then `epilogue` applied to each plane while it is in cache (the values of `Activation.forward` applied after).
    public static func forward(_ x: Tensor, scale: Tensor, bias: Tensor, mean: Tensor, variance: Tensor, epsilon: Float,
                               epilogue: Activation? = nil) -> Tensor {
        precondition(x.rank >= 2, "BatchNorm expects [N,C,...], got \(x.shape)")
        let (a, b) = affine(scale: scale, bias: bias, mean: mean, variance: variance, epsilon: epsilon)
        let n = x.shape[0], c = x.shape[1], plane = x.count / max(1, n * c)
        precondition(a.count == c, "BatchNorm: \(c) channels but parameters of \(a.count)")
        return Tensor(shape: x.shape) { yb in
            x.withUnsafeBufferPointer { xb in
                let xp = xb.baseAddress!, yp = yb.baseAddress!
                parallelRanges(n * c, work: n * c * plane) { planes in
                    for k in planes {
                        let m = a[k % c], o = b[k % c], xs = xp + k * plane, ys = yp + k * plane
                        for i in 0..<plane { ys[i] = m * xs[i] + o }
                        epilogue?.forward(UnsafePointer(ys), ys, 0..<plane)
                    }
                }
            }
        }
    }

    /// dy [N,C,...] -> dx = m[c]·dy, m = scale / sqrt(variance + epsilon) as `backward` computes it (the same bits as
    /// its dx): the input's gradient alone, what a dream or a layer with frozen scale and bias needs, one vectorised
    /// pass instead of `backward`'s sums. `reluOutput`: the output y of a Relu applied to this layer's output (the
    /// two fused into one step); dx is then m[c]·(y > 0 ? dy : 0), the Relu's backward and this one in one pass, the
    /// bits of the two applied one after the other.
    public static func inputGradient(_ dy: Tensor, scale: Tensor, variance: Tensor, epsilon: Float, reluOutput: Tensor? = nil) -> Tensor {
        precondition(dy.rank >= 2, "BatchNorm backward expects [N,C,...], got \(dy.shape)")
        let n = dy.shape[0], c = dy.shape[1], plane = dy.count / max(1, n * c)
        precondition(scale.count == c && variance.count == c, "BatchNorm: parameters must be [\(c)]")
        if let reluOutput { precondition(reluOutput.shape == dy.shape, "BatchNorm+Relu backward: \(reluOutput.shape) vs \(dy.shape)") }
        let scales = scale.scalars, variances = variance.scalars
        let multipliers = (0..<c).map { scales[$0] * (1 / (variances[$0] + epsilon).squareRoot()) }
        return Tensor(shape: dy.shape) { db in
            dy.withUnsafeBufferPointer { gb in
                let gp = gb.baseAddress!, dp = db.baseAddress!
                let yp = reluOutput?.storage.pointer
                parallelRanges(n * c, work: n * c * plane) { planes in
                    for k in planes {
                        let m = multipliers[k % c], gs = gp + k * plane, ds = dp + k * plane
                        if let yp {
                            // The Relu's backward (its C kernel, vectorised), then the scaling, while the plane is in cache.
                            dream_relu_backward(gs, UnsafePointer(yp) + k * plane, ds, Int64(plane))
                            for i in 0..<plane { ds[i] = m * ds[i] }
                        } else {
                            for i in 0..<plane { ds[i] = m * gs[i] }
                        }
                    }
                }
            }
        }
    }

    /// dy, x [N,C,...] -> dx [N,C,...], dScale [C], dBias [C] (mean and variance are fixed statistics here).
    public static func backward(_ dy: Tensor, x: Tensor, scale: Tensor, mean: Tensor, variance: Tensor, epsilon: Float)
        -> (dx: Tensor, dScale: Tensor, dBias: Tensor) {
        precondition(x.rank >= 2 && dy.shape == x.shape, "BatchNorm backward: \(dy.shape) vs \(x.shape)")
        let n = x.shape[0], c = x.shape[1], plane = x.count / max(1, n * c)
        let inverseStd = variance.scalars.map { 1 / ($0 + epsilon).squareRoot() }
        let scales = scale.scalars, means = mean.scalars
        precondition(scales.count == c && means.count == c && inverseStd.count == c, "BatchNorm: parameters must be [\(c)]")
        // Per (sample, channel) partial sums in Double; reduced over samples afterwards to avoid write races.
        var partialScale = [Double](repeating: 0, count: n * c), partialBias = [Double](repeating: 0, count: n * c)
        let dx = Tensor(shape: x.shape) { db in
            x.withUnsafeBufferPointer { xb in
                dy.withUnsafeBufferPointer { gb in
                    partialScale.withUnsafeMutableBufferPointer { ps in
                        partialBias.withUnsafeMutableBufferPointer { pb in
                            let xp = xb.baseAddress!, gp = gb.baseAddress!, dp = db.baseAddress!
                            let psp = ps.baseAddress!, pbp = pb.baseAddress!
                            parallelRanges(n * c, work: n * c * plane) { planes in
                                for k in planes {
                                    let ch = k % c, m = scales[ch] * inverseStd[ch], mu = means[ch]
                                    let xs = xp + k * plane, gs = gp + k * plane, ds = dp + k * plane
                                    var sumG = 0.0, sumGX = 0.0
                                    for i in 0..<plane {
                                        let g = gs[i]
                                        ds[i] = m * g
                                        sumG += Double(g)
                                        sumGX += Double(g * (xs[i] - mu))
                                    }
                                    pbp[k] = sumG
                                    psp[k] = sumGX * Double(inverseStd[ch])
                                }
                            }
                        }
                    }
                }
            }
        }
        var dScale = [Float](repeating: 0, count: c), dBias = [Float](repeating: 0, count: c)
        for ch in 0..<c {
            var s = 0.0, b = 0.0
            for sample in 0..<n { s += partialScale[sample * c + ch]; b += partialBias[sample * c + ch] }
            dScale[ch] = Float(s); dBias[ch] = Float(b)
        }
        return (dx, Tensor(shape: [c], scalars: dScale), Tensor(shape: [c], scalars: dBias))
    }

    /// scale/bias/mean/variance [C] -> per-channel (multiplier, offset) with BN(x) = multiplier[c]·x + offset[c].
    public static func affine(scale: Tensor, bias: Tensor, mean: Tensor, variance: Tensor, epsilon: Float) -> (multiplier: [Float], offset: [Float]) {
        let c = scale.count
        precondition(bias.count == c && mean.count == c && variance.count == c, "BatchNorm: parameter sizes differ")
        let s = scale.scalars, b = bias.scalars, m = mean.scalars, v = variance.scalars
        var multiplier = [Float](repeating: 0, count: c), offset = [Float](repeating: 0, count: c)
        for k in 0..<c {
            // Double keeps the fold bit-close to the unfolded layer even for tiny variances.
            let a = Double(s[k]) / (Double(v[k]) + Double(epsilon)).squareRoot()
            multiplier[k] = Float(a)
            offset[k] = Float(Double(b[k]) - Double(m[k]) * a)
        }
        return (multiplier, offset)
    }
}
