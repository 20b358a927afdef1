import Foundation
import Tensors
import XCTest

/// The C kernels of LRN (one pass down the channels per vector of pixels) against the Swift path they replaced,
/// bit for bit at every SIMD level, and against the Double definition and finite differences at every level.
final class LRNKernelTests: XCTestCase {
    /// Shapes that reach every branch of the kernels: a plane narrower than one vector (masked loads), planes that
    /// are not a multiple of the vector width (overlapping last vector), several samples, fewer channels than the
    /// window, and a plane split over threads.
    static let shapes: [[Int]] = [[1, 3, 1, 5], [2, 7, 3, 5], [1, 12, 9, 13], [3, 2, 4, 4], [1, 9, 41, 47], [2, 5, 17]]
    static let parameters: [LRNParameters] = [
        LRNParameters(size: 5), LRNParameters(size: 5, alpha: 0.8, beta: 0.75, bias: 1),
        LRNParameters(size: 4, alpha: 0.5, beta: 0.6, bias: 2), LRNParameters(size: 1, alpha: 0.3, beta: 0.5, bias: 1),
        LRNParameters(size: 3, alpha: 1, beta: 1, bias: 0.5), LRNParameters(size: 9, alpha: 0.7, beta: 0.75, bias: 1),
    ]

    func testForwardAndBackwardGiveTheBitsOfThePreviousSwiftPathAtEveryLevel() {
        for (k, shape) in Self.shapes.enumerated() {
            let x = Tensor.random(shape: shape, in: -3...3, seed: UInt64(300 + k))
            let dy = Tensor.random(shape: shape, seed: UInt64(400 + k))
            for p in Self.parameters {
                let y = PreviousLRN.forward(x, p).scalars.map(\.bitPattern)
                let dx = PreviousLRN.backward(dy, x: x, p).scalars.map(\.bitPattern)
                forEachSIMDLevel { level in
                    XCTAssertEqual(LocalResponseNorm.forward(x, p).scalars.map(\.bitPattern), y, "forward \(shape) \(p) \(level)")
                    XCTAssertEqual(LocalResponseNorm.backward(dy, x: x, p).scalars.map(\.bitPattern), dx, "backward \(shape) \(p) \(level)")
                }
            }
        }
    }

    /// Within a few float32 roundings of the definition: the relative error of s^-beta and of the product is a few
    /// ulps (≈ 1e-7 each); 1e-5 relative leaves a wide margin and still catches a wrong window by orders of magnitude.
    func testForwardMatchesTheDoubleDefinitionAtEveryLevel() {
        for (k, shape) in Self.shapes.enumerated() {
            let x = Tensor.random(shape: shape, in: -3...3, seed: UInt64(500 + k))
            for p in Self.parameters {
                let want = Self.definition(x, p)
                forEachSIMDLevel { level in
                    let y = LocalResponseNorm.forward(x, p)
                    var worst = 0.0
                    for i in 0..<want.count { worst = max(worst, abs(Double(y[flat: i]) - want[i]) / max(1e-3, abs(want[i]))) }
                    XCTAssertLessThan(worst, 1e-5, "\(shape) \(p) \(level)")
                }
            }
        }
    }

    func testBackwardMatchesFiniteDifferencesAtEveryLevel() {
        for (k, shape) in [[1, 6, 3, 7], [2, 9, 19], [1, 4, 2, 2]].enumerated() {
            let x = Tensor.random(shape: shape, in: -2...2, seed: UInt64(600 + k))
            let dy = Tensor.random(shape: shape, seed: UInt64(700 + k))
            for p in Self.parameters {
                forEachSIMDLevel { level in
                    let dx = LocalResponseNorm.backward(dy, x: x, p)
                    FiniteDifference.checkSampled(dx, of: { LocalResponseNorm.forward($0, p) }, at: x, upstream: dy, eps: 1e-2,
                                                  "\(shape) \(p) \(level)")
                }
            }
        }
    }

    /// y = x / (bias + alpha/size · Σ_window x²)^beta in Double.
    static func definition(_ x: Tensor, _ p: LRNParameters) -> [Double] {
        let n = x.shape[0], c = x.shape[1], plane = x.count / (n * c)
        let before = (p.size - 1) / 2, after = p.size - 1 - before
        var out = [Double](repeating: 0, count: x.count)
        for sample in 0..<n {
            for ch in 0..<c {
                for i in 0..<plane {
                    var sum = 0.0
                    for k in max(0, ch - before)...min(c - 1, ch + after) {
                        let v = Double(x[flat: (sample * c + k) * plane + i])
                        sum += v * v
                    }
                    let at = (sample * c + ch) * plane + i
                    out[at] = Double(x[flat: at]) / pow(Double(p.bias) + Double(p.alpha) / Double(p.size) * sum, Double(p.beta))
                }
            }
        }
        return out
    }
}

/// The Swift implementation the C kernels replaced (tiles of pixels, a running sum per pixel in memory), kept as the
/// reference the kernels must reproduce bit for bit: same operations, same order.
enum PreviousLRN {
    static func forward(_ x: Tensor, _ p: LRNParameters) -> Tensor {
        let n = x.shape[0], c = x.shape[1], plane = x.count / max(1, n * c)
        let coefficient = p.alpha / Float(p.size)
        let (before, after) = ((p.size - 1) / 2, p.size - 1 - (p.size - 1) / 2)
        var y = Tensor(shape: x.shape)
        let xs = x.scalars
        var running = [Float](repeating: 0, count: plane), scale = [Float](repeating: 0, count: plane)
        for sample in 0..<n {
            let base = sample * c * plane
            windowSums(xs, base: base, channels: c, plane: plane, before: before, after: after, running: &running) { channel, sum in
                for i in 0..<plane { scale[i] = p.bias + coefficient * sum[i] }
                powNegBeta(&scale, p.beta)
                for i in 0..<plane { y[flat: base + channel * plane + i] = xs[base + channel * plane + i] * scale[i] }
            }
        }
        return y
    }

    static func backward(_ dy: Tensor, x: Tensor, _ p: LRNParameters) -> Tensor {
        let n = x.shape[0], c = x.shape[1], plane = x.count / max(1, n * c)
        let coefficient = p.alpha / Float(p.size)
        let factor = 2 * p.alpha * p.beta / Float(p.size)
        let (before, after) = ((p.size - 1) / 2, p.size - 1 - (p.size - 1) / 2)
        let xs = x.scalars, gs = dy.scalars
        var dx = [Float](repeating: 0, count: x.count)
        var running = [Float](repeating: 0, count: plane), s = running, scale = running
        var t = [Float](repeating: 0, count: c * plane)
        for sample in 0..<n {
            let base = sample * c * plane
            windowSums(xs, base: base, channels: c, plane: plane, before: before, after: after, running: &running) { channel, sum in
                let o = base + channel * plane
                for i in 0..<plane { s[i] = p.bias + coefficient * sum[i]; scale[i] = s[i] }
                powNegBeta(&scale, p.beta)
                for i in 0..<plane {
                    dx[o + i] = gs[o + i] * scale[i]
                    t[channel * plane + i] = gs[o + i] * xs[o + i] * scale[i] / s[i]
                }
            }
            for i in 0..<plane { running[i] = 0 }
            for k in 0...min(before, c - 1) { for i in 0..<plane { running[i] += t[k * plane + i] } }
            for channel in 0..<c {
                let o = base + channel * plane
                for i in 0..<plane { dx[o + i] -= factor * xs[o + i] * running[i] }
                let entering = channel + 1 + before, leaving = channel - after
                if entering < c { for i in 0..<plane { running[i] += t[entering * plane + i] } }
                if leaving >= 0 { for i in 0..<plane { running[i] -= t[leaving * plane + i] } }
            }
        }
        return Tensor(shape: x.shape, scalars: dx)
    }

    static func windowSums(_ x: [Float], base: Int, channels c: Int, plane: Int, before: Int, after: Int,
                           running: inout [Float], _ body: (Int, [Float]) -> Void) {
        for i in 0..<plane { running[i] = 0 }
        for k in 0...min(after, c - 1) { for i in 0..<plane { running[i] += x[base + k * plane + i] * x[base + k * plane + i] } }
        for channel in 0..<c {
            body(channel, running)
            let entering = channel + 1 + after, leaving = channel - before
            if entering < c { for i in 0..<plane { running[i] += x[base + entering * plane + i] * x[base + entering * plane + i] } }
            if leaving >= 0 {
                for i in 0..<plane { running[i] = max(0, running[i] - x[base + leaving * plane + i] * x[base + leaving * plane + i]) }
            }
        }
    }

    static func powNegBeta(_ s: inout [Float], _ beta: Float) {
        for i in s.indices {
            if beta == 0.75 {
                let r = s[i].squareRoot()
                s[i] = 1 / (r * r.squareRoot())
            } else if beta == 0.5 {
                s[i] = 1 / s[i].squareRoot()
            } else if beta == 1 {
                s[i] = 1 / s[i]
            } else {
                s[i] = Foundation.exp(-beta * Foundation.log(s[i]))
            }
        }
    }
}
