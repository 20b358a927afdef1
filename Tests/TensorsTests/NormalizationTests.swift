import XCTest
import Tensors

final class NormalizationTests: XCTestCase {
    // MARK: Local response normalisation

    private func naiveLRN(_ x: Tensor, _ p: LRNParameters) -> [Double] {
        let c = x.shape[1]
        return allIndices(x.shape).map { index in
            let lo = max(0, index[1] - (p.size - 1) / 2)
            let hi = min(c - 1, index[1] + Int((Double(p.size - 1) / 2).rounded(.up)))
            var sum = 0.0
            for k in lo...hi {
                var j = index
                j[1] = k
                let v = Double(x[flat: flatIndex(j, x.shape)])
                sum += v * v
            }
            let v = Double(x[flat: flatIndex(index, x.shape)])
            return v / pow(Double(p.bias) + Double(p.alpha) / Double(p.size) * sum, Double(p.beta))
        }
    }

    private let lrnCases: [LRNParameters] = [
        LRNParameters(size: 5), LRNParameters(size: 5, alpha: 0.8, beta: 0.75, bias: 1),
        LRNParameters(size: 4, alpha: 0.5, beta: 0.6, bias: 2), LRNParameters(size: 1, alpha: 0.3, beta: 0.5, bias: 1),
        LRNParameters(size: 3, alpha: 1, beta: 1, bias: 0.5), LRNParameters(size: 9, alpha: 0.7, beta: 0.75, bias: 1),
    ]

    func testLRNForwardMatchesNaiveReferenceForOddAndEvenWindows() {
        let x = Tensor.random(shape: [2, 7, 3, 5], in: -2...2, seed: 11)
        for p in lrnCases {
            let y = LocalResponseNorm.forward(x, p)
            let want = naiveLRN(x, p)
            for i in 0..<want.count { XCTAssertEqual(Double(y[flat: i]), want[i], accuracy: 1e-5, "\(p)") }
        }
    }

    func testLRNForwardOnLargeInputMatchesNaiveReference() {
        let x = Tensor.random(shape: [1, 24, 48, 48], in: -3...3, seed: 12)
        let p = LRNParameters(size: 5, alpha: 0.5)
        let y = LocalResponseNorm.forward(x, p)
        let want = naiveLRN(x, p)
        var worst = 0.0
        for i in 0..<want.count { worst = max(worst, abs(Double(y[flat: i]) - want[i])) }
        XCTAssertLessThan(worst, 1e-5)
    }

    func testLRNBackwardMatchesFiniteDifferences() {
        for (k, p) in lrnCases.enumerated() {
            let x = Tensor.random(shape: [2, 6, 3, 3], in: -2...2, seed: UInt64(20 + k))
            let dy = Tensor.random(shape: x.shape, seed: UInt64(40 + k))
            let dx = LocalResponseNorm.backward(dy, x: x, p)
            FiniteDifference.checkSampled(dx, of: { LocalResponseNorm.forward($0, p) }, at: x, upstream: dy, eps: 1e-2, "\(p)")
        }
    }

    func testLRNBackwardOverSeveralPixelTilesMatchesFiniteDifferences() {
        let x = Tensor.random(shape: [1, 6, 33, 33], in: -2...2, seed: 30)
        let dy = Tensor.random(shape: x.shape, seed: 31)
        let p = LRNParameters(size: 5, alpha: 0.9)
        let dx = LocalResponseNorm.backward(dy, x: x, p)
        FiniteDifference.checkSampled(dx, of: { LocalResponseNorm.forward($0, p) }, at: x, upstream: dy, eps: 1e-2, "tiled")
    }

    // MARK: Batch normalisation

    private struct BNParameters { var scale, bias, mean, variance: Tensor }

    private func bnParameters(_ c: Int, seed: UInt64) -> BNParameters {
        BNParameters(scale: .random(shape: [c], in: -2...2, seed: seed), bias: .random(shape: [c], seed: seed + 1),
                     mean: .random(shape: [c], seed: seed + 2), variance: .random(shape: [c], in: 0.1...3, seed: seed + 3))
    }

    private func naiveBN(_ x: Tensor, _ p: BNParameters, epsilon: Float) -> [Double] {
        allIndices(x.shape).map { index in
            let c = index[1]
            let v = Double(x[flat: flatIndex(index, x.shape)])
            return Double(p.scale[flat: c]) * (v - Double(p.mean[flat: c])) / (Double(p.variance[flat: c]) + Double(epsilon)).squareRoot()
                + Double(p.bias[flat: c])
        }
    }

    func testBatchNormForwardMatchesNaiveReferenceForRanks2To4() {
        for (k, shape) in [[3, 5], [2, 5, 7], [2, 5, 3, 7], [3, 4, 64, 64]].enumerated() {
            let x = Tensor.random(shape: shape, in: -3...3, seed: UInt64(60 + k))
            let p = bnParameters(shape[1], seed: UInt64(70 + k * 4))
            let y = BatchNorm.forward(x, scale: p.scale, bias: p.bias, mean: p.mean, variance: p.variance, epsilon: 1e-5)
            let want = naiveBN(x, p, epsilon: 1e-5)
            var worst = 0.0
            for i in 0..<want.count { worst = max(worst, abs(Double(y[flat: i]) - want[i])) }
            XCTAssertLessThan(worst, 1e-4, "\(shape)")
        }
    }

    func testBatchNormBackwardMatchesFiniteDifferencesForInputScaleAndBias() {
        let x = Tensor.random(shape: [3, 4, 3, 5], seed: 80)
        let p = bnParameters(4, seed: 81)
        let dy = Tensor.random(shape: x.shape, seed: 82)
        let eps: Float = 1e-3
        let g = BatchNorm.backward(dy, x: x, scale: p.scale, mean: p.mean, variance: p.variance, epsilon: eps)
        FiniteDifference.checkSampled(g.dx, of: {
            BatchNorm.forward($0, scale: p.scale, bias: p.bias, mean: p.mean, variance: p.variance, epsilon: eps)
        }, at: x, upstream: dy, "dx")
        FiniteDifference.checkSampled(g.dScale, of: {
            BatchNorm.forward(x, scale: $0, bias: p.bias, mean: p.mean, variance: p.variance, epsilon: eps)
        }, at: p.scale, upstream: dy, "dScale")
        FiniteDifference.checkSampled(g.dBias, of: {
            BatchNorm.forward(x, scale: p.scale, bias: $0, mean: p.mean, variance: p.variance, epsilon: eps)
        }, at: p.bias, upstream: dy, "dBias")
    }

    /// The input's gradient alone is `backward`'s dx bit for bit, and with a Relu's output it is the Relu's backward
    /// followed by this one (including where dy or y is zero, NaN or infinite, and the sign of zero products).
    func testBatchNormInputGradientIsBackwardsDxBitForBit() {
        let x = Tensor.random(shape: [2, 5, 9, 11], in: -3...3, seed: 83)
        var p = bnParameters(5, seed: 84)
        p.scale = Tensor(shape: [5], scalars: [0.7, -1.3, 0, 2.5, -0.01])  // negative and zero multipliers: signed zeros
        var dyScalars = Tensor.random(shape: x.shape, seed: 85).scalars
        dyScalars[3] = .nan; dyScalars[17] = .infinity; dyScalars[40] = -0.0; dyScalars[41] = 0
        let dy = Tensor(shape: x.shape, scalars: dyScalars)
        let full = BatchNorm.backward(dy, x: x, scale: p.scale, mean: p.mean, variance: p.variance, epsilon: 1e-3)
        let alone = BatchNorm.inputGradient(dy, scale: p.scale, variance: p.variance, epsilon: 1e-3)
        XCTAssertEqual(alone.scalars.map(\.bitPattern), full.dx.scalars.map(\.bitPattern))
        let y = Activation.relu.forward(BatchNorm.forward(x, scale: p.scale, bias: p.bias, mean: p.mean, variance: p.variance, epsilon: 1e-3))
        let masked = Activation.relu.backward(dy, x: y, y: y)
        let reference = BatchNorm.backward(masked, x: x, scale: p.scale, mean: p.mean, variance: p.variance, epsilon: 1e-3).dx
        let fused = BatchNorm.inputGradient(dy, scale: p.scale, variance: p.variance, epsilon: 1e-3, reluOutput: y)
        XCTAssertEqual(fused.scalars.map(\.bitPattern), reference.scalars.map(\.bitPattern))
        XCTAssertTrue(y.scalars.contains(0) && y.scalars.contains { $0 > 0 }, "the mask must matter")
    }

    func testBatchNormFoldedAffineGivesTheSameOutputAsForward() {
        let x = Tensor.random(shape: [2, 6, 5, 5], in: -3...3, seed: 90)
        let p = bnParameters(6, seed: 91)
        let y = BatchNorm.forward(x, scale: p.scale, bias: p.bias, mean: p.mean, variance: p.variance, epsilon: 1e-3)
        let (a, b) = BatchNorm.affine(scale: p.scale, bias: p.bias, mean: p.mean, variance: p.variance, epsilon: 1e-3)
        XCTAssertEqual(a.count, 6)
        XCTAssertEqual(b.count, 6)
        for i in 0..<x.count {
            let c = (i / 25) % 6
            XCTAssertEqual(y[flat: i], a[c] * x[flat: i] + b[c], accuracy: 1e-5)
        }
    }
}
