import Tensors
import XCTest

/// The C kernels at every instruction-set level this CPU supports (`SIMDLevel`), against exact float32 emulations
/// and error bounds derived from the arithmetic.
///
/// Within a level every output of the depthwise forward is computed by the same operations in the same order
/// (bias, then the nine taps row by row, zeros for padding), whatever its position in a vector, so a scalar loop
/// with the same order reproduces it bit for bit: with separate multiply and add (two roundings) at the baseline,
/// with fused multiply-adds (`addingProduct`, one rounding) from AVX2 up. That pins down what "the same bytes on any
/// x86-64" means for `--portable`.
final class SIMDKernelTests: XCTestCase {
    typealias Case = ConvolutionTests.Case

    /// y = b + Σ w·x over the window's taps in row-major order (the depthwise kernels' order, any kernel size),
    /// emulated in float32; `fused`: one rounding per multiply-add.
    static func emulatedDepthwise(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, _ win: Window2D, fused: Bool) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = win.outputSize(inputH: h, inputW: w)
        var y = Tensor(shape: [n, c, oh, ow])
        for b in 0..<n {
            for ch in 0..<c {
                for i in 0..<oh {
                    for j in 0..<ow {
                        var acc = bias?[ch] ?? 0
                        for ki in 0..<win.kernelH {
                            for kj in 0..<win.kernelW {
                                let ih = i * win.strideH - win.padTop + ki, iw = j * win.strideW - win.padLeft + kj
                                let v: Float = ih < 0 || ih >= h || iw < 0 || iw >= w ? 0 : x[b, ch, ih, iw]
                                let t = weight[ch, 0, ki, kj]
                                if fused { acc.addProduct(t, v) } else { let p = t * v; acc = acc + p }
                            }
                        }
                        y[b, ch, i, j] = acc
                    }
                }
            }
        }
        return y
    }

    static var cases: [Case] { SpecialisedConvolutionTests.depthwiseCases }

    func testDepthwiseForwardIsTheFloat32EmulationOfItsLevelBitForBit() {
        let cases = Self.cases + SpecialisedConvolutionTests.depthwiseForwardPathCases
        // The two emulations must differ somewhere, or this test could not tell the levels apart.
        var differing = 0
        for (index, c) in cases.enumerated() {
            let (x, weight, bias) = ConvolutionTests.tensors(c, seed: UInt64(300 + index))
            let fused = Self.emulatedDepthwise(x, weight, bias, c.window, fused: true)
            let separate = Self.emulatedDepthwise(x, weight, bias, c.window, fused: false)
            differing += zip(fused.scalars, separate.scalars).filter { $0.bitPattern != $1.bitPattern }.count
        }
        XCTAssertGreaterThan(differing, 0)
        forEachSIMDLevel { level in
            for (index, c) in cases.enumerated() {
                let (x, weight, bias) = ConvolutionTests.tensors(c, seed: UInt64(300 + index))
                let y = Convolution.forward(x, weight: weight, bias: bias, window: c.window, groups: c.groups, kernel: .depthwise3x3)
                let expected = Self.emulatedDepthwise(x, weight, bias, c.window, fused: level != .baseline)
                XCTAssertEqual(y.scalars.map(\.bitPattern), expected.scalars.map(\.bitPattern), "\(c.name), \(level)")
            }
        }
    }

    /// The gradients sum in another order than any simple loop, so they are held to the classic bound of recursive
    /// float32 summation (Higham, Accuracy and Stability of Numerical Algorithms, 2002, §3.1): a sum of k products
    /// computed with one or two roundings per step is within γ(k+1)·Σ|terms| of the exact sum, γ(k) = k·u / (1 - k·u),
    /// u = 2^-24. Fused or separate multiply-adds, any vector width and any order of the partial sums stay inside it.
    static func gamma(_ k: Int) -> Double { let ku = Double(k) * 0x1p-24; return ku / (1 - ku) }

    func testDepthwiseGradientsStayWithinTheSummationBoundAtEveryLevel() {
        forEachSIMDLevel { level in
            for (index, c) in Self.cases.enumerated() {
                let (x, weight, _) = ConvolutionTests.tensors(c, seed: UInt64(400 + index))
                let (n, ch, h, w) = (c.x[0], c.x[1], c.x[2], c.x[3])
                let (oh, ow) = c.window.outputSize(inputH: h, inputW: w)
                let dy = Tensor.random(shape: [n, ch, oh, ow], seed: UInt64(450 + index))
                let g = Convolution.backward(dy, x: x, weight: weight, window: c.window, groups: c.groups,
                                             needInputGradient: true, needParameterGradients: true, kernel: .depthwise3x3)
                // Exact sums and sums of magnitudes, in Double (exact enough: 53-bit products of 24-bit values).
                var dx = [Double](repeating: 0, count: x.count), dxMagnitude = dx
                var dW = [Double](repeating: 0, count: weight.count), dWMagnitude = dW
                for b in 0..<n {
                    for k in 0..<ch {
                        for i in 0..<oh {
                            for j in 0..<ow {
                                let gradient = Double(dy[b, k, i, j])
                                for ki in 0..<3 {
                                    for kj in 0..<3 {
                                        let ih = i * c.window.strideH - c.window.padTop + ki, iw = j * c.window.strideW - c.window.padLeft + kj
                                        guard ih >= 0 && ih < h && iw >= 0 && iw < w else { continue }
                                        let xi = ((b * ch + k) * h + ih) * w + iw, wi = k * 9 + ki * 3 + kj
                                        dx[xi] += Double(weight[flat: wi]) * gradient
                                        dxMagnitude[xi] += abs(Double(weight[flat: wi]) * gradient)
                                        dW[wi] += Double(x[flat: xi]) * gradient
                                        dWMagnitude[wi] += abs(Double(x[flat: xi]) * gradient)
                                    }
                                }
                            }
                        }
                    }
                }
                // dx: at most 9 products per element; dWeight: at most N·OH·OW per tap.
                for i in 0..<x.count {
                    XCTAssertLessThanOrEqual(abs(Double(g.dx![flat: i]) - dx[i]), Self.gamma(10) * dxMagnitude[i],
                                             "dx[\(i)], \(c.name), \(level)")
                }
                for i in 0..<weight.count {
                    XCTAssertLessThanOrEqual(abs(Double(g.dWeight![flat: i]) - dW[i]), Self.gamma(n * oh * ow + 1) * dWMagnitude[i],
                                             "dWeight[\(i)], \(c.name), \(level)")
                }
            }
        }
    }

    /// NaN, infinities and signed zeros go through the register epilogue exactly as through `Activation.forward`.
    func testEpilogueTreatsNaNInfinityAndSignedZeroLikeTheActivation() {
        // Centre tap only, others zero: y = x where the neighbours are finite. Channel 0 holds NaN and ±∞ (their
        // neighbours become NaN through 0·∞, also a value worth checking); channel 1 is all zeros with negative
        // weights and bias -0, so every output is -0 (−0 + −0 = −0), where Clip(0, …) must give +0.
        var x = Tensor.random(shape: [1, 2, 6, 21], in: -8...8, seed: 12)
        x[0, 0, 1, 3] = .nan; x[0, 0, 4, 10] = .infinity; x[0, 0, 2, 17] = -.infinity
        for i in 0..<6 { for j in 0..<21 { x[0, 1, i, j] = 0 } }
        var weight = Tensor(shape: [2, 1, 3, 3])
        weight[0, 0, 1, 1] = 1
        for i in 0..<3 { for j in 0..<3 { weight[1, 0, i, j] = -0.5 } }
        let bias = Tensor(shape: [2], scalars: [0, -0.0])
        let window = Window2D(kernel: 3, pad: 1)
        forEachSIMDLevel { level in
            let plain = Convolution.forward(x, weight: weight, bias: bias, window: window, groups: 2, kernel: .depthwise3x3)
            XCTAssertTrue(plain.scalars.contains { $0.isNaN } && plain.scalars.contains { $0 == .infinity }, "\(level)")
            XCTAssertTrue(plain.scalars[(6 * 21)...].allSatisfy { $0 == 0 && $0.sign == .minus }, "channel 1 is -0, \(level)")
            for epilogue in ConvolutionEpilogueTests.epilogues {
                let fused = Convolution.forward(x, weight: weight, bias: bias, window: window, groups: 2,
                                                kernel: .depthwise3x3, epilogue: epilogue)
                XCTAssertEqual(fused.scalars.map(\.bitPattern), epilogue.forward(plain).scalars.map(\.bitPattern), "\(epilogue), \(level)")
            }
        }
    }

    /// ReLU, LeakyReLU and Clip (forward) and the ReLU's gradient run in the C kernels; at every level they give
    /// the bits of their scalar definitions, NaN, infinities, signed zeros and subnormals included.
    func testActivationsGiveTheBitsOfTheirScalarDefinitionsAtEveryLevel() {
        var values: [Float] = [.nan, .infinity, -.infinity, 0, -0.0, 1e-40, -1e-40, 6, 6.5, -0.5, 0.25, -0.75,
                               .greatestFiniteMagnitude, -.greatestFiniteMagnitude]
        values += Tensor.random(shape: [45], in: -8...8, seed: 3).scalars  // not a multiple of any vector width
        let x = Tensor(shape: [values.count], scalars: values)
        let definitions: [(Activation, (Float) -> Float)] = [
            (.relu, { $0 < 0 ? 0 : $0 }),
            (.leakyRelu(alpha: 0.1), { $0 > 0 ? $0 : 0.1 * $0 }),
            (.clip(min: 0, max: 6), { Swift.min(Swift.max($0, 0), 6) }),
            (.clip(min: -0.5, max: 0.25), { Swift.min(Swift.max($0, -0.5), 0.25) }),
        ]
        let dy = Tensor.random(shape: x.shape, seed: 4)
        forEachSIMDLevel { level in
            for (activation, definition) in definitions {
                XCTAssertEqual(activation.forward(x).scalars.map(\.bitPattern), values.map(definition).map(\.bitPattern),
                               "\(activation), \(level)")
            }
            let y = Activation.relu.forward(x)
            let expected = zip(dy.scalars, y.scalars).map { gradient, output in output > 0 ? gradient : 0 }
            XCTAssertEqual(Activation.relu.backward(dy, x: x, y: y).scalars.map(\.bitPattern), expected.map(\.bitPattern), "\(level)")
        }
    }

    /// Max and equality are exact: every level gives the same bits, forward and backward (the gradient is added in
    /// the same order too).
    func testMaxPoolGivesTheSameBitsAtEveryLevel() {
        let x = Tensor.random(shape: [2, 5, 29, 43], seed: 77)
        for window in [Window2D(kernel: 3, stride: 2, ceilMode: true), Window2D(kernel: 3, pad: 1), Window2D(kernel: 2, stride: 2, dilation: 2)] {
            var results: [(SIMDLevel, [UInt32], [UInt32])] = []
            forEachSIMDLevel { level in
                let y = MaxPool.forward(x, window: window)
                let dy = Tensor.random(shape: y.shape, seed: 78)
                let dx = MaxPool.backward(dy, x: x, y: y, window: window)
                results.append((level, y.scalars.map(\.bitPattern), dx.scalars.map(\.bitPattern)))
            }
            for (level, y, dx) in results.dropFirst() {
                XCTAssertEqual(y, results[0].1, "forward, \(level) vs \(results[0].0), \(window)")
                XCTAssertEqual(dx, results[0].2, "backward, \(level) vs \(results[0].0), \(window)")
            }
        }
    }

    /// GlobalAveragePool's mean of a plane in the kernel's order, emulated in float32: 32 interleaved partial sums
    /// (partial k takes elements i ≡ k mod 32, in order), folded pairwise (k += k + 16, then 8, 4, 2, 1), then / size.
    static func emulatedPlaneMean(_ values: ArraySlice<Float>) -> Float {
        var parts = [Float](repeating: 0, count: 32)
        for (i, v) in values.enumerated() { parts[i % 32] = parts[i % 32] + v }
        var width = 16
        while width >= 1 {
            for k in 0..<width { parts[k] = parts[k] + parts[k + width] }
            width /= 2
        }
        return values.isEmpty ? 0 : parts[0] / Float(values.count)
    }

    /// Every level (vectors of 4, 8 or 16 lanes) computes the same 32 partial sums: the emulation's bits, whatever
    /// the plane size (below, at and above one block of 32, with a partial tail).
    func testGlobalAveragePoolIsItsPartialSumEmulationBitForBitAtEveryLevel() {
        for (index, shape) in [[1, 3, 1, 1], [2, 5, 2, 2], [1, 4, 7, 7], [2, 3, 13, 13], [1, 2, 31, 31], [1, 3, 5, 7], [1, 2, 1, 32]].enumerated() {
            let x = Tensor.random(shape: shape, seed: UInt64(500 + index))
            let size = shape[2] * shape[3]
            let expected = (0..<(shape[0] * shape[1])).map {
                Self.emulatedPlaneMean(x.scalars[($0 * size)..<(($0 + 1) * size)]).bitPattern
            }
            forEachSIMDLevel { level in
                XCTAssertEqual(GlobalAveragePool.forward(x).scalars.map(\.bitPattern), expected, "\(shape), \(level)")
            }
        }
    }

    func testPinningNeverGoesAboveWhatTheCPUSupports() {
        let before = SIMDLevel.current
        defer { SIMDLevel.pin(before) }
        XCTAssertEqual(SIMDLevel.supported.first, .baseline)
        XCTAssertEqual(SIMDLevel.supported.last, SIMDLevel.detected)
        XCTAssertEqual(SIMDLevel.pin(.avx512), SIMDLevel.detected)
        XCTAssertEqual(SIMDLevel.current, SIMDLevel.detected)
        XCTAssertEqual(SIMDLevel.pin(.baseline), .baseline)
        XCTAssertEqual(SIMDLevel.current, .baseline)
        XCTAssertEqual(SIMDLevel(name: "AVX2"), .avx2)
        XCTAssertNil(SIMDLevel(name: "sse9"))
        print("SIMD levels: detected \(SIMDLevel.detected), supported \(SIMDLevel.supported.map(\.description)), [SIMD \(before)] from the environment")
    }
}
