import CKernels
import Foundation
import Parallel

/// Pointwise activation functions (ONNX Relu, LeakyRelu, Clip, Sigmoid, HardSigmoid, HardSwish, Tanh).
public enum Activation: Equatable {
    case relu, leakyRelu(alpha: Float), clip(min: Float, max: Float), sigmoid, hardSigmoid(alpha: Float, beta: Float), hardSwish, tanh

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
    /// ReLU, LeakyReLU and Clip run in the C kernels at the machine's SIMD level (`registerEpilogue`): exact
    /// selections and one multiplication, so every level gives the bits of the scalar definitions
    /// x < 0 ? 0 : x, x > 0 ? x : alpha·x and Swift.min(Swift.max(x, lo), hi).
    @inline(__always)
    public func forward(_ xp: UnsafePointer<Float>, _ yp: UnsafeMutablePointer<Float>, _ r: Range<Int>) {
        if let registerEpilogue {
            dream_apply_epilogue(xp + r.lowerBound, yp + r.lowerBound, Int64(r.count), registerEpilogue)
            return
        }
        switch self {
        case .relu, .leakyRelu, .clip:
            preconditionFailure("handled by the C kernels above")
        case .sigmoid:
            for i in r { yp[i] = logistic(xp[i]) }
        case .hardSigmoid(let alpha, let beta):
            for i in r { yp[i] = Swift.min(Swift.max(alpha * xp[i] + beta, 0), 1) }
        case .hardSwish:
            for i in r { let v = xp[i]; yp[i] = v * Swift.min(Swift.max(v * (1 / 6) + 0.5, 0), 1) }
        case .tanh:
            for i in r { yp[i] = Foundation.tanh(xp[i]) }
        }
    }

    /// Whether `backward` reads x; when false (relu, sigmoid, tanh) it reads only y, and any tensor may be passed as x.
    public var backwardReadsInput: Bool {
        switch self {
        case .relu, .sigmoid, .tanh: return false
        default: return true
        }
    }

    /// dy *= f'(x) in place, with f'(x) read from y = f(x): relu, and leakyRelu with alpha >= 0 (y > 0 exactly where
    /// x > 0). The same values as `backward(dy, x: y, y: y)`, without a new tensor when dy's storage is not shared.
    public func backwardFromOutput(_ dy: inout Tensor, y: Tensor) {
        precondition(dy.count == y.count, "activation backward: \(dy.shape) vs \(y.shape)")
        switch self {
        case .relu: break
        case .leakyRelu(let alpha): precondition(alpha >= 0, "leakyRelu with alpha < 0 is not differentiable from its output")
        default: preconditionFailure("\(self) is not differentiable from its output")
        }
        y.withUnsafeBufferPointer { yb in
            dy.withUnsafeMutableBufferPointer { db in
                let yp = yb.baseAddress!, d = db.baseAddress!
                parallelRanges(db.count) { r in
                    switch self {
                    case .relu:
                        dream_relu_backward(d + r.lowerBound, yp + r.lowerBound, d + r.lowerBound, Int64(r.count))
                    case .leakyRelu(let alpha):
                        for i in r { d[i] = yp[i] > 0 ? d[i] : alpha * d[i] }
                    default:
                        break
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
@inlinable
public func logistic(_ x: Float) -> Float {
    let e = Foundation.exp(-Swift.abs(x))
    return x >= 0 ? 1 / (1 + e) : e / (1 + e)
}
