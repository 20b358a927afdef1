import Foundation
import Tensors
import XCTest

/// The kernels behind fused layers: epilogues applied inside the convolution kernels (also when the GEMM path works
/// band by band), the range loops of Clip, LeakyRelu and BatchNormalization that epilogues and unfused layers share
/// (vectorised by the compiler; they must keep the values of their scalar definitions, bit for bit, including signed
/// zeros, NaN and tails shorter than a vector), and LRN over pixel tiles whose widths are no multiple of a vector.
final class FusedKernelTests: XCTestCase {
    /// A convolution whose im2col matrix is larger than 16 MB, so that the GEMM path works in bands of output rows
    /// and applies the epilogue band by band.
    func testEpilogueInsideABandedGemmEqualsTheActivationAfterwards() {
        let x = Tensor.random(shape: [1, 16, 470, 70], seed: 3)
        let weight = Tensor.random(shape: [4, 16, 3, 3], seed: 4), bias = Tensor.random(shape: [4], seed: 5)
        let window = Window2D(kernel: 3)
        let plain = Convolution.forward(x, weight: weight, bias: bias, window: window, groups: 1, kernel: .gemm)
        for epilogue in [Activation.relu, .clip(min: -0.1, max: 0.2), .leakyRelu(alpha: 0.2)] {
            let fused = Convolution.forward(x, weight: weight, bias: bias, window: window, groups: 1, kernel: .gemm, epilogue: epilogue)
            XCTAssertEqual(fused.scalars, epilogue.forward(plain).scalars, "\(epilogue)")
        }
    }

    /// Values that test the edges: both zeros, the bounds themselves, NaN, infinities, and tails (37 is not a
    /// multiple of 16).
    static let edgeValues: [Float] = {
        var v: [Float] = [0, -0.0, .nan, .infinity, -.infinity, 6, -0.5, 1.25, 0.25, -1e-40, 1e-40]
        v += (0..<26).map { Float($0) * 0.37 - 4 }
        return v
    }()

    func testClipAndLeakyReluLanesEqualTheScalarDefinitionsBitForBit() {
        let x = Tensor(shape: [Self.edgeValues.count], scalars: Self.edgeValues)
        for (lo, hi) in [(Float(0), Float(6)), (-0.5, 1.25), (-0.0, 0.25)] {
            let y = Activation.clip(min: lo, max: hi).forward(x)
            for i in 0..<x.count {
                let want = Swift.min(Swift.max(x[flat: i], lo), hi)
                XCTAssertEqual(y[flat: i].bitPattern, want.bitPattern, "clip(\(lo), \(hi)) of \(x[flat: i])")
            }
        }
        for alpha in [Float(0.01), 0, 0.3] {
            let y = Activation.leakyRelu(alpha: alpha).forward(x)
            for i in 0..<x.count {
                let v = x[flat: i], want = v > 0 ? v : alpha * v
                XCTAssertEqual(y[flat: i].bitPattern, want.bitPattern, "leakyRelu(\(alpha)) of \(v)")
            }
        }
    }

    func testBatchNormPassIsTheAffineMapOfEachChannelBitForBit() {
        // Planes of 37 values: two full vectors and a tail per channel.
        let x = Tensor.random(shape: [2, 3, 37], in: -3...3, seed: 8)
        let scale = Tensor.random(shape: [3], in: 0.5...1.5, seed: 9), bias = Tensor.random(shape: [3], seed: 10)
        let mean = Tensor.random(shape: [3], seed: 11), variance = Tensor.random(shape: [3], in: 0.1...2, seed: 12)
        let y = BatchNorm.forward(x, scale: scale, bias: bias, mean: mean, variance: variance, epsilon: 1e-5)
        let (m, o) = BatchNorm.affine(scale: scale, bias: bias, mean: mean, variance: variance, epsilon: 1e-5)
        for i in 0..<x.count {
            let c = i / 37 % 3
            XCTAssertEqual(y[flat: i].bitPattern, (m[c] * x[flat: i] + o[c]).bitPattern, "element \(i)")
        }
    }

    /// LRN's running window sum against the definition in Double: planes that split into tiles whose widths are
    /// not multiples of 16, windows wider than the channel count, and an exponent without a special path.
    func testLRNForwardOverTilesWithTailsMatchesTheDefinition() {
        let x = Tensor.random(shape: [1, 7, 37, 29], in: -3...3, seed: 13)
        for p in [LRNParameters(size: 5, alpha: 0.5), LRNParameters(size: 9, alpha: 0.7, beta: 0.6, bias: 2),
                  LRNParameters(size: 2, alpha: 1, beta: 1, bias: 0.5)] {
            let y = LocalResponseNorm.forward(x, p)
            let plane = 37 * 29
            var worst = 0.0
            for i in 0..<x.count {
                let c = i / plane, pixel = i % plane
                let lo = max(0, c - (p.size - 1) / 2), hi = min(6, c + p.size - 1 - (p.size - 1) / 2)
                let sum = (lo...hi).reduce(0.0) { $0 + pow(Double(x[flat: $1 * plane + pixel]), 2) }
                let want = Double(x[flat: i]) / pow(Double(p.bias) + Double(p.alpha) / Double(p.size) * sum, Double(p.beta))
                worst = max(worst, abs(Double(y[flat: i]) - want))
            }
            // Float rounding of a handful of operations on values of order 1.
            XCTAssertLessThan(worst, 1e-5, "\(p)")
        }
    }

    func testLRNBackwardOverTilesWithTailsMatchesFiniteDifferences() {
        let x = Tensor.random(shape: [1, 6, 37, 29], in: -2...2, seed: 14)
        let dy = Tensor.random(shape: x.shape, seed: 15)
        for p in [LRNParameters(size: 5, alpha: 0.8), LRNParameters(size: 4, alpha: 0.5, beta: 0.6, bias: 2)] {
            let dx = LocalResponseNorm.backward(dy, x: x, p)
            FiniteDifference.checkSampled(dx, of: { LocalResponseNorm.forward($0, p) }, at: x, upstream: dy, eps: 1e-2, "\(p)")
        }
    }

    /// A fused step's backward masks dy in place from the saved output: the values of the activation's backward,
    /// in dy's own storage when nothing else holds it (a backward pass then allocates no extra gradient), and in a
    /// copy when it is shared.
    func testBackwardFromOutputEqualsBackwardAndReusesUnsharedStorage() {
        let x = Tensor(shape: [Self.edgeValues.count], scalars: Self.edgeValues.map { $0.isNaN ? 1 : $0 })
        for activation in [Activation.relu, .leakyRelu(alpha: 0.1), .leakyRelu(alpha: 0)] {
            let y = activation.forward(x)
            let want = activation.backward(Tensor.random(shape: x.shape, seed: 16), x: x, y: y)
            var dy = Tensor.random(shape: x.shape, seed: 16)
            let storage = dy.storage.pointer
            activation.backwardFromOutput(&dy, y: y)
            XCTAssertEqual(dy.scalars.map(\.bitPattern), want.scalars.map(\.bitPattern), "\(activation)")
            XCTAssertEqual(dy.storage.pointer, storage, "\(activation): unshared dy is overwritten in place")
            let held = Tensor.random(shape: x.shape, seed: 16)
            var shared = held
            activation.backwardFromOutput(&shared, y: y)
            XCTAssertEqual(shared.scalars, dy.scalars)
            XCTAssertEqual(held.scalars, Tensor.random(shape: x.shape, seed: 16).scalars, "a shared gradient is not modified")
        }
    }
}
