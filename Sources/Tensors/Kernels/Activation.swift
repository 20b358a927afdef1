import Foundation
import Parallel

/// y[i] = max(x[i], 0) over r, sixteen lanes at a time (the scalar loop does not vectorise: x and y may alias).
@inline(__always)
func reluForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ r: Range<Int>) {
    var i = r.lowerBound
    while i + 16 <= r.upperBound {
        let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(y + i).storeBytes(of: v.replacing(with: 0, where: v .< 0), as: SIMD16<Float>.self)
        i += 16
    }
    while i < r.upperBound { let v = x[i]; y[i] = v < 0 ? 0 : v; i += 1 }
}

/// d[i] = y[i] > 0 ? g[i] : 0 over r; y = relu(x) is positive exactly where x is, so y alone decides.
@inline(__always)
func reluBackward(_ g: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>, _ r: Range<Int>) {
    var i = r.lowerBound
    while i + 16 <= r.upperBound {
        let v = UnsafeRawPointer(g + i).loadUnaligned(as: SIMD16<Float>.self)
        let s = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(d + i).storeBytes(of: v.replacing(with: 0, where: s .<= 0), as: SIMD16<Float>.self)
        i += 16
    }
    while i < r.upperBound { let v = g[i]; d[i] = y[i] > 0 ? v : 0; i += 1 }
}

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
    @inline(__always)
    public func forward(_ xp: UnsafePointer<Float>, _ yp: UnsafeMutablePointer<Float>, _ r: Range<Int>) {
        switch self {
        case .relu:
            reluForward(xp, yp, r)
        case .leakyRelu(let alpha):
            for i in r { let v = xp[i]; yp[i] = v > 0 ? v : alpha * v }
        case .clip(let lo, let hi):
            for i in r { yp[i] = Swift.min(Swift.max(xp[i], lo), hi) }
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
                        reluBackward(UnsafePointer(d), yp, d, r)
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
    /// relu'(0) = 0, leakyRelu'(0) = alpha, clip passes where min <= x <= max (torch.clamp),
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
                                reluBackward(g, yp, d, r)
                            case .leakyRelu(let alpha):
                                for i in r { d[i] = xp[i] > 0 ? g[i] : alpha * g[i] }
                            case .clip(let lo, let hi):
                                for i in r { let v = xp[i]; d[i] = (v >= lo && v <= hi) ? g[i] : 0 }
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

/// σ(x) = 1 / (1 + e^-x), the one sigmoid every module uses (the Sigmoid operator, the BCE loss, sigmoid heads,
/// feature visualisation's pixel squashing). exp(-|x|) never overflows; the two branches are the same function.
@inlinable
public func logistic(_ x: Float) -> Float {
    let e = Foundation.exp(-Swift.abs(x))
    return x >= 0 ? 1 / (1 + e) : e / (1 + e)
}
