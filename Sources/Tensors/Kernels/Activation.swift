import CKernels
import Foundation
import Parallel

/// Pointwise activation functions (ONNX Relu, LeakyRelu, Clip, Sigmoid, HardSigmoid, HardSwish, Tanh), and SiLU
/// x·σ(x), which ONNX files spell as Sigmoid → Mul and a convolution applies as one epilogue (`LayerFusion`).
public enum Activation: Equatable {
    case relu, leakyRelu(alpha: Float), clip(min: Float, max: Float), sigmoid, hardSigmoid(alpha: Float, beta: Float), hardSwish, tanh
    case silu

    /// y = f(x); x any shape -> y same shape.
    public func forward(_ x: Tensor) -> Tensor {
        Tensor(shape: x.shape) { yb in
            x.withUnsafeBufferPointer { xb in
                let xp = xb.baseAddress!, yp = yb.baseAddress!
                parallelRanges(xb.count) { r in forward(xp, yp, r) }
            }
        }
    }

    /// y[i] = f(x[i]) over r; x and y may be the same buffer (a convolution applies its epilogue in place this way).
    /// Every activation but tanh runs in the C kernels at the machine's SIMD level (`registerEpilogue`), with the
    /// same bits at every level. ReLU, LeakyReLU, Clip, HardSigmoid and HardSwish are exact selections and the
    /// multiplications and additions of their scalar definitions (x < 0 ? 0 : x, x > 0 ? x : alpha·x,
    /// Swift.min(Swift.max(x, lo), hi), Swift.min(Swift.max(alpha·x + beta, 0), 1), x·hardSigmoid(x; 1/6, 1/2)), so
    /// they give those bits. Sigmoid uses the kernels' own vectorised e^x: within 2.5 ulp of the exact σ(x) for
    /// every float (the scalar `logistic`, through Foundation.exp, is within 2.5 ulp too, so the two differ by at
    /// most 5 ulp), always in [0, 1]; SiLU is x times that σ(x), one rounding more.
    @inline(__always)
    public func forward(_ xp: UnsafePointer<Float>, _ yp: UnsafeMutablePointer<Float>, _ r: Range<Int>) {
        if let registerEpilogue {
            dream_apply_epilogue(xp + r.lowerBound, yp + r.lowerBound, Int64(r.count), registerEpilogue)
            return
        }
        switch self {
        case .relu, .leakyRelu, .clip, .sigmoid, .silu, .hardSigmoid, .hardSwish:
            preconditionFailure("handled by the C kernels above")
        case .tanh:
            for i in r { yp[i] = Foundation.tanh(xp[i]) }
        }
    }

    /// Whether `backward` reads x; when false (relu, sigmoid, tanh) it reads only y, and any tensor may be passed as x.
    /// SiLU's backward reads only x (σ(x) is recomputed), and any tensor may be passed as y.
    public var backwardReadsInput: Bool {
        switch self {
        case .relu, .sigmoid, .tanh: return false
        default: return true
        }
    }

    /// Whether `backwardFromOutput` gives exactly what `backward` gives from x: relu, leakyRelu with alpha >= 0 (y > 0
    /// exactly where x > 0), sigmoid (whose backward reads only y anyway), and hardSigmoid, whose y lies strictly
    /// inside (0, 1) exactly where alpha·x + beta does (y is then that value; 0, 1 or NaN elsewhere, where both give 0).
    public var differentiableFromOutput: Bool {
        switch self {
        case .relu, .sigmoid, .hardSigmoid: return true
        case .leakyRelu(let alpha): return alpha >= 0
        default: return false
        }
    }

    /// dy *= f'(x) in place, with f'(x) read from y = f(x) (`differentiableFromOutput`). The same values as
    /// `backward(dy, x:, y:)`, without a new tensor when dy's storage is not shared.
    public func backwardFromOutput(_ dy: inout Tensor, y: Tensor) {
        precondition(dy.count == y.count, "activation backward: \(dy.shape) vs \(y.shape)")
        precondition(differentiableFromOutput, "\(self) is not differentiable from its output")
        y.withUnsafeBufferPointer { yb in
            dy.withUnsafeMutableBufferPointer { db in
                let yp = yb.baseAddress!, d = db.baseAddress!
                parallelRanges(db.count) { r in
                    switch self {
                    case .relu:
                        dream_relu_backward(d + r.lowerBound, yp + r.lowerBound, d + r.lowerBound, Int64(r.count))
                    case .leakyRelu(let alpha):
                        for i in r { d[i] = yp[i] > 0 ? d[i] : alpha * d[i] }
                    case .sigmoid:
                        for i in r { let s = yp[i]; d[i] = d[i] * s * (1 - s) }
                    case .hardSigmoid(let alpha, _):
                        for i in r { let s = yp[i]; d[i] = (s > 0 && s < 1) ? alpha * d[i] : 0 }
                    default:
                        break
                    }
                }
            }
        }
    }

    /// dy = the gradient of x·gate(x) in place, as the unfused gate and Mul nodes compute it, for the activations a
    /// file spells as two nodes: SiLU (Sigmoid → Mul: dy·σ + ((dy·x)·σ)·(1 − σ)) and HardSwish (HardSigmoid(1/6, 1/2)
    /// → Mul: dy·h + (0 < t < 1 ? (dy·x)/6 : 0), not HardSwish's own backward, whose subgradients at ±3 differ).
    /// Without a new tensor when dy's storage is not shared (a fused step's backward, `FusedConvolutionOperator`).
    public func gateBackward(_ dy: inout Tensor, x: Tensor) {
        precondition((self == .silu || self == .hardSwish) && dy.count == x.count, "gateBackward: \(self) \(dy.shape) vs \(x.shape)")
        x.withUnsafeBufferPointer { xb in
            dy.withUnsafeMutableBufferPointer { db in
                let xp = xb.baseAddress!, d = db.baseAddress!
                parallelRanges(db.count) { r in
                    let n = Int64(r.count), g = d + r.lowerBound, v = xp + r.lowerBound
                    if self == .silu {
                        dream_silu_backward(g, v, g, n)
                    } else {
                        dream_hard_sigmoid_gate_backward(g, v, g, n, Float(1) / 6, 0.5)
                    }
                }
            }
        }
    }

    /// dx = dy * f'(x); dy, x, y = f(x) all the same shape. Kinks take PyTorch's subgradients:
    /// relu'(0) = 0 (read from y: y > 0 exactly where x > 0), leakyRelu'(0) = alpha, clip passes where min <= x <= max (torch.clamp),
    /// hardSigmoid passes alpha only strictly inside (0, 1), hardSwish uses x/3 + 0.5 on the closed [-3, 3] (so -0.5 at -3, 1.5 at 3).
    public func backward(_ dy: Tensor, x: Tensor, y: Tensor) -> Tensor {
        precondition(dy.count == x.count && y.count == x.count, "activation backward: \(dy.shape) \(x.shape) \(y.shape)")
        return Tensor(shape: x.shape) { db in
            dy.withUnsafeBufferPointer { gb in
                x.withUnsafeBufferPointer { xb in
                    y.withUnsafeBufferPointer { yb in
                        let g = gb.baseAddress!, xp = xb.baseAddress!, yp = yb.baseAddress!, d = db.baseAddress!
                        parallelRanges(xb.count) { r in
                            switch self {
                            case .relu:
                                dream_relu_backward(g + r.lowerBound, yp + r.lowerBound, d + r.lowerBound, Int64(r.count))
                            case .leakyRelu(let alpha):
                                Self.leakyReluGradient(g, xp, d, r, alpha: alpha)
                            case .clip(let lo, let hi):
                                Self.clipGradient(g, xp, d, r, lo: lo, hi: hi)
                            case .sigmoid:
                                for i in r { let s = yp[i]; d[i] = g[i] * s * (1 - s) }
                            case .hardSigmoid(let alpha, let beta):
                                for i in r { let t = alpha * xp[i] + beta; d[i] = (t > 0 && t < 1) ? alpha * g[i] : 0 }
                            case .hardSwish:
                                for i in r {
                                    let v = xp[i]
                                    d[i] = v < -3 ? 0 : (v <= 3 ? g[i] * (v * (1 / 3) + 0.5) : g[i])
                                }
                            case .tanh:
                                for i in r { let t = yp[i]; d[i] = g[i] * (1 - t * t) }
                            case .silu:
                                dream_silu_backward(g + r.lowerBound, xp + r.lowerBound, d + r.lowerBound, Int64(r.count))
                            }
                        }
                    }
                }
            }
        }
    }
}

extension Activation {
    typealias Lanes = SIMD8<Float>

    /// d[i] = lo <= x[i] <= hi ? g[i] : 0 over r, eight lanes at a time without branches (a branch per element
    /// mispredicts on every other value of a ReLU6 input and made this pass cost as much as the convolutions around
    /// it). The same selection as the scalar definition, so the same bits: NaN selects 0.
    @inline(__always)
    static func clipGradient(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>,
                             _ r: Range<Int>, lo: Float, hi: Float) {
        var i = r.lowerBound
        let low = Lanes(repeating: lo), high = Lanes(repeating: hi), zero = Lanes(repeating: 0)
        while i + 8 <= r.upperBound {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: Lanes.self)
            let gradient = UnsafeRawPointer(g + i).loadUnaligned(as: Lanes.self)
            UnsafeMutableRawPointer(d + i).storeBytes(of: zero.replacing(with: gradient, where: (v .>= low) .& (v .<= high)),
                                                      as: Lanes.self)
            i += 8
        }
        while i < r.upperBound { let v = x[i]; d[i] = (v >= lo && v <= hi) ? g[i] : 0; i += 1 }
    }

    /// d[i] = x[i] > 0 ? g[i] : alpha·g[i] over r, eight lanes at a time without branches; the same bits as the
    /// scalar definition (alpha·g is the same single rounding either way).
    @inline(__always)
    static func leakyReluGradient(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>,
                                  _ r: Range<Int>, alpha: Float) {
        var i = r.lowerBound
        let zero = Lanes(repeating: 0)
        while i + 8 <= r.upperBound {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: Lanes.self)
            let gradient = UnsafeRawPointer(g + i).loadUnaligned(as: Lanes.self)
            UnsafeMutableRawPointer(d + i).storeBytes(of: (alpha * gradient).replacing(with: gradient, where: v .> zero),
                                                      as: Lanes.self)
            i += 8
        }
        while i < r.upperBound { d[i] = x[i] > 0 ? g[i] : alpha * g[i]; i += 1 }
    }
}

/// σ(x) = 1 / (1 + e^-x), the one sigmoid every module uses (the Sigmoid operator, the BCE loss, sigmoid heads,
/// feature visualisation's pixel squashing). exp(-|x|) never overflows; the two branches are the same function.
/// Tensors go through `Activation.sigmoid`, whose vectorised kernel agrees with this within 5 ulp (each is within
/// 2.5 ulp of the exact value; ActivationTests).
@inlinable
public func logistic(_ x: Float) -> Float {
    let e = Foundation.exp(-Swift.abs(x))
    return x >= 0 ? 1 / (1 + e) : e / (1 + e)
}
