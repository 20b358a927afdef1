import Foundation
import Tensors
import XCTest

/// The activations of the C kernels (Sigmoid, SiLU, HardSigmoid, HardSwish) at every SIMD level this CPU supports:
/// sigmoid within its stated ulp bound of a Double reference over the whole float range (infinities, NaN, huge
/// inputs, denormal results), in [0, 1] and monotone to within one ulp; the same bits at every level; the
/// selections and products of HardSigmoid and HardSwish equal to their scalar definitions bit for bit; SiLU's
/// backward equal to the unfused Mul → Sigmoid backward bit for bit.
final class SIMDActivationTests: XCTestCase {
    /// The spacing of floats in the binade of |r| (the denormal spacing below the smallest normal).
    static func spacing(_ r: Double) -> Double {
        let a = abs(r)
        guard a >= Double(Float.leastNormalMagnitude) else { return Double(Float.leastNonzeroMagnitude) }
        return Double(Float(sign: .plus, exponent: Int(floor(log2(a))), significand: 1).ulp)
    }

    static func ulps(_ got: Float, _ exact: Double) -> Double {
        if got.isNaN || exact.isNaN { return got.isNaN && exact.isNaN ? 0 : .infinity }
        if got.isInfinite || exact.isInfinite || abs(exact) > Double(Float.greatestFiniteMagnitude) {
            return Double(got) == exact || (got.isInfinite && abs(exact) > Double(Float.greatestFiniteMagnitude)
                                             && (got > 0) == (exact > 0)) ? 0 : .infinity
        }
        return abs(Double(got) - exact) / spacing(exact)
    }

    /// Every 4099th float bit pattern (a million, spread over every binade of both signs) and the special values.
    static let samples: [Float] = {
        var xs: [Float] = stride(from: UInt64(0), to: 1 << 32, by: 4099).map { Float(bitPattern: UInt32($0)) }
        xs += [0, -0, .infinity, -.infinity, .nan, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
               .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .leastNormalMagnitude, 88.72, 88.73, 89, 89.5, -87.3,
               -88.72, -103.27, -103.28, -103.97, -104, -104.5, 1e-8, -1e-8, 0.3465, -0.3466, 17, -17]
        return xs
    }()

    static func apply(_ a: Activation, _ xs: [Float]) -> [Float] { a.forward(Tensor(shape: [xs.count], scalars: xs)).scalars }

    func testSigmoidIsWithinTwoAndAHalfUlpOverTheWholeFloatRange() {
        var bits: [[UInt32]] = []
        forEachSIMDLevel { level in
            let y = Self.apply(.sigmoid, Self.samples)
            var worst = 0.0, at: Float = 0
            for (x, s) in zip(Self.samples, y) {
                if x.isNaN { XCTAssertTrue(s.isNaN, "\(level)"); continue }
                XCTAssertTrue(s >= 0 && s <= 1, "σ(\(x)) = \(s) at \(level)")
                let exact = 1 / (1 + exp(-Double(x)))
                let e = Self.ulps(s, exact)
                if e > worst { worst = e; at = x }
            }
            XCTAssertLessThanOrEqual(worst, 2.5, "worst \(worst) ulp at x = \(at), \(level)")
            XCTAssertGreaterThan(worst, 0.5, "a correctly rounded σ would be a surprise: is the reference exact?")
            bits.append(y.map(\.bitPattern))
        }
        for other in bits.dropFirst() { XCTAssertEqual(other, bits[0], "sigmoid differs between SIMD levels") }
        let ends = Self.apply(.sigmoid, [-.infinity, .infinity, -200, 200, 0, -0])
        XCTAssertEqual(ends, [0, 1, 0, 1, 0.5, 0.5])
    }

    /// SiLU = x·σ(x) rounds once more: within 3.5 ulp while σ(x) is a normal float (x > -87.3); below, σ(x) is
    /// denormal and its absolute error (half a denormal spacing, 2^-150, plus its own) is multiplied by |x|.
    func testSiLUIsXTimesSigmoidWithinItsBound() {
        forEachSIMDLevel { level in
            let y = Self.apply(.silu, Self.samples), s = Self.apply(.sigmoid, Self.samples)
            var worst = 0.0, at: Float = 0
            for ((x, v), sx) in zip(zip(Self.samples, y), s) {
                if x.isNaN { XCTAssertTrue(v.isNaN); continue }
                XCTAssertEqual(v.bitPattern, (x * sx).bitPattern, "x·σ(x) at \(x), \(level)")
                guard x.isFinite else { continue }
                let exact = Double(x) / (1 + exp(-Double(x)))
                if x > -87.3 {
                    let e = Self.ulps(v, exact)
                    if e > worst { worst = e; at = x }
                } else {
                    XCTAssertLessThanOrEqual(abs(Double(v) - exact), (abs(Double(x)) + 1) * 2 * Double(Float.leastNonzeroMagnitude),
                                             "x = \(x), \(level)")
                }
            }
            XCTAssertLessThanOrEqual(worst, 3.5, "worst \(worst) ulp at x = \(at), \(level)")
        }
    }

    /// The scalar `logistic` (Foundation.exp) and the kernel are each within 2.5 ulp of σ: within 5 of each other.
    func testScalarLogisticAgreesWithTheKernel() {
        let y = Self.apply(.sigmoid, Self.samples)
        var worst = 0.0
        for (x, s) in zip(Self.samples, y) where !x.isNaN {
            let exact = 1 / (1 + exp(-Double(x)))
            XCTAssertLessThanOrEqual(Self.ulps(logistic(x), exact), 2.5, "logistic(\(x))")
            worst = max(worst, abs(Double(logistic(x)) - Double(s)) / Self.spacing(exact))
        }
        XCTAssertLessThanOrEqual(worst, 5)
    }

    /// Consecutive floats never make σ fall by more than one ulp (where it falls at all: the polynomial's rounding);
    /// the gradient is computed analytically from y, so such a step never reaches a dream.
    func testSigmoidIsMonotoneToWithinOneUlp() {
        forEachSIMDLevel { level in
            for start: Float in [-87.5, -17, -4.2, -0.35, -1e-3, 0, 0.3466, 2.7, 15.9] {
                var xs: [Float] = [], x = start
                for _ in 0..<200_000 { xs.append(x); x = x.nextUp }
                let y = Self.apply(.sigmoid, xs)
                for i in 1..<y.count where y[i] < y[i - 1] {
                    XCTAssertEqual(y[i].nextUp, y[i - 1], "σ falls by more than an ulp at \(xs[i]), \(level)")
                }
            }
        }
    }

    /// HardSigmoid and HardSwish are selections, one product and one sum: the bits of the scalar definitions
    /// (Swift.min/Swift.max operand order: NaN passes through), kinks, infinities and signed zeros included.
    func testHardSigmoidAndHardSwishEqualTheirScalarDefinitionsBitForBit() {
        var xs = Self.samples.filter { abs($0) < 1e4 || !$0.isFinite }
        xs += [-3, 3, -2.5, 2.5, -3.0000002, 2.9999998, -0.0, 0]
        forEachSIMDLevel { level in
            for (alpha, beta) in [(Float(0.2), Float(0.5)), (Float(1) / 6, Float(0.5)), (Float(-0.75), Float(0.125))] {
                let y = Self.apply(.hardSigmoid(alpha: alpha, beta: beta), xs)
                for (x, v) in zip(xs, y) {
                    let want = Swift.min(Swift.max(alpha * x + beta, 0), 1)
                    XCTAssertEqual(v.bitPattern, want.bitPattern, "hardSigmoid(\(alpha), \(beta)) at \(x), \(level)")
                }
            }
            let y = Self.apply(.hardSwish, xs)
            for (x, v) in zip(xs, y) {
                let want = x * Swift.min(Swift.max(x * (1 / 6) + 0.5, 0), 1)
                XCTAssertEqual(v.bitPattern, want.bitPattern, "hardSwish at \(x), \(level)")
            }
        }
    }

    /// SiLU's backward kernel repeats the unfused Mul → Sigmoid backward: dy·σ + ((dy·x)·σ)·(1 − σ), the same bits.
    func testSiLUBackwardIsTheUnfusedMulAndSigmoidBackwardBitForBit() {
        let x = Tensor.random(shape: [3, 5, 7, 11], in: -12...12, seed: 5)
        let dy = Tensor.random(shape: x.shape, seed: 6)
        forEachSIMDLevel { level in
            let s = Activation.sigmoid.forward(x)
            let viaMul = Broadcast.binaryBackward(dy, a: x, b: s, .mul)
            let viaSigmoid = Activation.sigmoid.backward(viaMul.db, x: s, y: s)
            var expected = viaMul.da
            expected.add(viaSigmoid)
            let got = Activation.silu.backward(dy, x: x, y: x)
            XCTAssertEqual(got.scalars.map(\.bitPattern), expected.scalars.map(\.bitPattern), "\(level)")
            var inPlace = dy
            Activation.silu.gateBackward(&inPlace, x: x)
            XCTAssertEqual(inPlace.scalars.map(\.bitPattern), expected.scalars.map(\.bitPattern), "in place, \(level)")
            XCTAssertEqual(dy.scalars, Tensor.random(shape: x.shape, seed: 6).scalars, "the caller's copy of dy is untouched")
        }
    }

    /// HardSwish spelled HardSigmoid(1/6, 1/2) → Mul: the fused backward repeats the two nodes' backward,
    /// dy·h + (0 < t < 1 ? (1/6)·(dy·x) : 0), bit for bit, at the kinks ±3 (where t is exactly 0 or 1) and for NaN.
    func testHardSwishGateBackwardIsTheUnfusedMulAndHardSigmoidBackwardBitForBit() {
        var values = Tensor.random(shape: [3, 5, 7, 11], in: -5...5, seed: 7).scalars
        values[0] = -3; values[1] = 3; values[2] = .nan; values[3] = -.infinity; values[4] = .infinity; values[5] = -0.0
        values[6] = Float(-3).nextUp; values[7] = Float(3).nextDown
        let x = Tensor(shape: [3, 5, 7, 11], scalars: values)
        let dy = Tensor.random(shape: x.shape, seed: 8)
        let gate = Activation.hardSigmoid(alpha: Float(1) / 6, beta: 0.5)
        forEachSIMDLevel { level in
            let h = gate.forward(x)
            let viaMul = Broadcast.binaryBackward(dy, a: x, b: h, .mul)
            var expected = viaMul.da
            expected.add(gate.backward(viaMul.db, x: x, y: h))
            var got = dy
            Activation.hardSwish.gateBackward(&got, x: x)
            XCTAssertEqual(got.scalars.map(\.bitPattern), expected.scalars.map(\.bitPattern), "\(level)")
            XCTAssertEqual(Array(got.scalars[0..<2]), [dy[flat: 0] * 0, dy[flat: 1] * 1], "the two nodes' subgradients at ±3")
        }
    }
}
