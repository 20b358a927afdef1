import XCTest
import Tensors

/// Every loss against a double-precision reference of its definition: the value, and the gradient against central
/// differences of that reference (eps 1e-4 in Double: truncation error ~eps² and rounding ~1e-16/eps, both far
/// below the Float32 kernel's own rounding of ~1e-6 relative, so 1e-4 relative is a meaningful bar).
final class LossTests: XCTestCase {
    func reference(_ loss: Loss, _ z: [Double], _ t: [Double], rows: Int) -> Double {
        let k = z.count / rows
        switch loss {
        case .categoricalCrossEntropy, .klDivergence:
            var total = 0.0
            for r in 0..<rows {
                let zr = Array(z[(r * k)..<(r * k + k)]), tr = Array(t[(r * k)..<(r * k + k)])
                let sum = zr.map { Foundation.exp($0) }.reduce(0, +)
                for j in 0..<k where tr[j] > 0 {
                    let p = Foundation.exp(zr[j]) / sum
                    total += loss == .klDivergence ? tr[j] * (Foundation.log(tr[j]) - Foundation.log(p)) : -tr[j] * Foundation.log(p)
                }
            }
            return total / Double(rows)
        case .binaryCrossEntropy:
            return zip(z, t).map { x, y in
                let p = 1 / (1 + Foundation.exp(-x))
                return -(y * Foundation.log(p) + (1 - y) * Foundation.log(1 - p))
            }.reduce(0, +) / Double(z.count)
        case .meanSquaredError: return zip(z, t).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / Double(z.count)
        case .meanAbsoluteError: return zip(z, t).map { abs($0 - $1) }.reduce(0, +) / Double(z.count)
        case .meanSquaredLogError:
            return zip(z, t).map { let d = Foundation.log(1 + max($0, 0)) - Foundation.log(1 + $1); return d * d }.reduce(0, +) / Double(z.count)
        }
    }

    func targets(_ loss: Loss, rows: Int, k: Int, rng: inout SplitMix64) -> [Float] {
        var t = [Float](repeating: 0, count: rows * k)
        for r in 0..<rows {
            switch loss {
            case .categoricalCrossEntropy: t[r * k + Int.random(in: 0..<k, using: &rng)] = 1
            case .klDivergence:
                // Soft labels, one of them exactly 0 (the 0 · log 0 = 0 convention).
                var w = (0..<k).map { _ in Float.random(in: 0.1...1, using: &rng) }
                w[0] = 0
                let s = w.reduce(0, +)
                for j in 0..<k { t[r * k + j] = w[j] / s }
            case .binaryCrossEntropy: for j in 0..<k { t[r * k + j] = Float(Int.random(in: 0...1, using: &rng)) }
            case .meanSquaredError, .meanAbsoluteError: for j in 0..<k { t[r * k + j] = Float.random(in: -2...2, using: &rng) }
            case .meanSquaredLogError: for j in 0..<k { t[r * k + j] = Float.random(in: 0...3, using: &rng) }
            }
        }
        return t
    }

    func testEveryLossMatchesItsDefinitionAndFiniteDifferences() {
        var rng = SplitMix64(seed: 3)
        for loss in Loss.allCases {
            let rows = 5, k = 4
            // Predictions kept away from the kinks of MAE (|z - t|) and MSLE (z = 0) so differences are smooth there.
            let zValues = (0..<(rows * k)).map { _ in Float.random(in: 0.2...3, using: &rng) * (loss == .meanSquaredLogError ? 1 : Float([-1, 1].randomElement(using: &rng)!)) }
            let tValues = targets(loss, rows: rows, k: k, rng: &rng)
            let z = Tensor(shape: [rows, k], scalars: zValues), t = Tensor(shape: [rows, k], scalars: tValues)
            let (value, gradient) = loss.evaluate(z, targets: t)
            let zd = zValues.map(Double.init), td = tValues.map(Double.init)
            let expected = reference(loss, zd, td, rows: rows)
            XCTAssertEqual(Double(value), expected, accuracy: 1e-5 * max(1, abs(expected)), "\(loss) value")
            var worst = 0.0, scale = 0.0
            for i in 0..<zd.count {
                var plus = zd, minus = zd
                plus[i] += 1e-4; minus[i] -= 1e-4
                let numeric = (reference(loss, plus, td, rows: rows) - reference(loss, minus, td, rows: rows)) / 2e-4
                worst = max(worst, abs(numeric - Double(gradient[flat: i])))
                scale = max(scale, abs(numeric))
            }
            XCTAssertLessThan(worst, 1e-4 * max(scale, 1e-3), "\(loss) gradient vs central differences")
        }
    }

    func testSoftmaxCrossEntropyIsStableForHugeLogits() {
        // exp(1000) overflows Float; the fused kernel never forms it.
        let z = Tensor(shape: [1, 3], scalars: [1000, 0, -1000]), t = Tensor(shape: [1, 3], scalars: [0, 1, 0])
        let (value, gradient) = Loss.categoricalCrossEntropy.evaluate(z, targets: t)
        XCTAssertEqual(value, 1000, accuracy: 1e-3)
        XCTAssertEqual(gradient.scalars, [1, -1, 0])
        let (bce, g) = Loss.binaryCrossEntropy.evaluate(Tensor(shape: [1, 1], scalars: [-500]), targets: Tensor(shape: [1, 1], scalars: [1]))
        XCTAssertEqual(bce, 500, accuracy: 1e-3)
        XCTAssertEqual(g.scalars[0], -1, accuracy: 1e-6)
    }

    func testKLDivergenceEqualsCrossEntropyForOneHotTargets() {
        let z = Tensor(shape: [2, 3], scalars: [0.3, -1, 2, 1, 1, 0]), t = Tensor(shape: [2, 3], scalars: [0, 0, 1, 1, 0, 0])
        let a = Loss.categoricalCrossEntropy.evaluate(z, targets: t), b = Loss.klDivergence.evaluate(z, targets: t)
        XCTAssertEqual(a.loss, b.loss)
        XCTAssertEqual(a.gradient.scalars, b.gradient.scalars)
    }
}
