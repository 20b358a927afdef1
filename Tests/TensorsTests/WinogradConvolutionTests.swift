import Parallel
import Tensors
import XCTest

/// The Winograd kernels (F(2x2,3x3) and F(4x4,3x3)) against the naive definition in Double, the im2col GEMM kernel
/// and central finite differences, forward and data gradient, on shapes that exercise every edge of the tiling:
/// odd sizes, maps smaller than a tile, pads 0, 1, 2 and asymmetric, batch 2, channel counts that are not multiples
/// of the vector width, maps of many blocks (threads take whole blocks) and of one (threads share its phases).
final class WinogradConvolutionTests: XCTestCase {
    typealias Case = ConvolutionTests.Case
    static let variants: [Convolution.Kernel] = [.winograd2x2, .winograd4x4]

    static func window(top: Int, left: Int, bottom: Int, right: Int) -> Window2D {
        Window2D(kernelH: 3, kernelW: 3, padTop: top, padLeft: left, padBottom: bottom, padRight: right)
    }

    static let cases: [Case] = [
        Case(name: "pad 1 odd sizes", x: [1, 3, 7, 9], m: 4, window: Window2D(kernel: 3, pad: 1), groups: 1),
        Case(name: "pad 1 batch 2", x: [2, 5, 13, 11], m: 7, window: Window2D(kernel: 3, pad: 1), groups: 1),
        Case(name: "no pad, no bias", x: [1, 9, 6, 5], m: 10, window: Window2D(kernel: 3), groups: 1, bias: false),
        Case(name: "map smaller than a tile", x: [1, 4, 3, 3], m: 3, window: Window2D(kernel: 3, pad: 1), groups: 1),
        Case(name: "2x2 map", x: [2, 2, 2, 2], m: 3, window: Window2D(kernel: 3, pad: 1), groups: 1),
        Case(name: "one output", x: [1, 3, 3, 3], m: 2, window: Window2D(kernel: 3), groups: 1),
        Case(name: "asymmetric pad", x: [1, 6, 10, 12], m: 5, window: window(top: 0, left: 2, bottom: 2, right: 1), groups: 1),
        Case(name: "pad 2", x: [1, 3, 5, 8], m: 4, window: Window2D(kernel: 3, pad: 2), groups: 1),
        Case(name: "pad 3: rows of padding only", x: [1, 2, 4, 4], m: 2, window: Window2D(kernel: 3, pad: 3), groups: 1),
        Case(name: "wide map, 17 channels", x: [1, 17, 9, 37], m: 19, window: Window2D(kernel: 3, pad: 1), groups: 1),
        Case(name: "many blocks, batch 2", x: [2, 8, 70, 66], m: 8, window: Window2D(kernel: 3, pad: 1), groups: 1),
        Case(name: "many channels", x: [1, 67, 12, 12], m: 33, window: window(top: 1, left: 0, bottom: 0, right: 1), groups: 1),
    ]

    /// Bound on the relative L2 error against the exact convolution of values in [-1, 1], with margin over the measured
    /// errors: F(2,3) stays within a few float32 roundings of the direct sum; F(4,3)'s transform coefficients (up to
    /// 8 in Aᵀ, 5 in Bᵀ, 1/6 and 1/24 in G) amplify them by about an order of magnitude (README, Winograd convolutions).
    static func tolerance(_ kernel: Convolution.Kernel) -> Double { kernel == .winograd4x4 ? 2e-5 : 2e-6 }

    func testForwardMatchesTheExactConvolutionAndTheGemmKernel() {
        for (index, c) in Self.cases.enumerated() {
            let (x, weight, bias) = ConvolutionTests.tensors(c, seed: UInt64(300 + index * 10))
            let expected = ConvolutionTests.naiveConvolution(x, weight, bias, c.window, groups: 1)
            let gemm = Convolution.forward(x, weight: weight, bias: bias, window: c.window, groups: 1, kernel: .gemm)
            for kernel in Self.variants {
                XCTAssertTrue(Convolution.kernels(x: x.shape, weight: weight.shape, window: c.window, groups: 1).contains(kernel))
                let y = Convolution.forward(x, weight: weight, bias: bias, window: c.window, groups: 1, kernel: kernel)
                XCTAssertEqual(y.shape, expected.shape, "\(c.name), \(kernel)")
                XCTAssertLessThan(y.relativeL2Error(to: expected), Self.tolerance(kernel), "\(c.name), \(kernel)")
                XCTAssertLessThan(y.relativeL2Error(to: gemm), Self.tolerance(kernel), "vs gemm, \(c.name), \(kernel)")
                XCTAssertLessThan(Double(y.maxAbsDifference(expected)), 10 * Self.tolerance(kernel) * Double(max(1, expected.maxAbs)),
                                  "\(c.name), \(kernel)")
            }
        }
    }

    func testEpilogueIsAppliedInTheOutputTransform() {
        let c = Self.cases[1]
        let (x, weight, bias) = ConvolutionTests.tensors(c, seed: 42)
        for kernel in Self.variants {
            let plain = Convolution.forward(x, weight: weight, bias: bias, window: c.window, groups: 1, kernel: kernel)
            for epilogue in [Activation.relu, .leakyRelu(alpha: 0.1), .clip(min: -0.25, max: 0.5)] {
                let fused = Convolution.forward(x, weight: weight, bias: bias, window: c.window, groups: 1, kernel: kernel,
                                                epilogue: epilogue)
                XCTAssertEqual(fused.scalars, epilogue.forward(plain).scalars, "\(kernel), \(epilogue)")
            }
        }
    }

    func testResultsDoNotDependOnTheThreadCount() {
        let threads = Threading.threadCount
        defer { Threading.configure(threads: threads) }
        for c in [Self.cases[10], Self.cases[9]] {  // many blocks (whole blocks per thread) and one block (shared phases)
            let (x, weight, bias) = ConvolutionTests.tensors(c, seed: 9)
            let dy = Tensor.random(shape: [c.x[0], c.m, c.x[2], c.x[3]], seed: 10)
            for kernel in Self.variants {
                var outputs: [[Float]] = []
                for count in [1, 2, 3] {
                    Threading.configure(threads: count)
                    let y = Convolution.forward(x, weight: weight, bias: bias, window: c.window, groups: 1, kernel: kernel)
                    let dx = Convolution.backward(dy, x: x, weight: weight, window: c.window, groups: 1, needInputGradient: true,
                                                  needParameterGradients: false, kernel: kernel).dx!
                    outputs.append(y.scalars + dx.scalars)
                }
                XCTAssertEqual(outputs[0], outputs[1], "\(c.name), \(kernel): 1 vs 2 threads")
                XCTAssertEqual(outputs[0], outputs[2], "\(c.name), \(kernel): 1 vs 3 threads")
            }
        }
    }

    func testInputGradientMatchesTheGemmPathAndFiniteDifferences() {
        for (index, c) in Self.cases.enumerated() {
            let (x, weight, bias) = ConvolutionTests.tensors(c, seed: UInt64(500 + index * 10))
            let (oh, ow) = c.window.outputSize(inputH: c.x[2], inputW: c.x[3])
            let dy = Tensor.random(shape: [c.x[0], c.m, oh, ow], seed: UInt64(500 + index * 10 + 7))
            let plain = Convolution.backward(dy, x: x, weight: weight, window: c.window, groups: 1,
                                             needInputGradient: true, needParameterGradients: true, kernel: .gemm)
            for kernel in Self.variants {
                let fast = Convolution.backward(dy, x: x, weight: weight, window: c.window, groups: 1,
                                                needInputGradient: true, needParameterGradients: true, kernel: kernel)
                XCTAssertLessThan(fast.dx!.relativeL2Error(to: plain.dx!), Self.tolerance(kernel), "dx vs gemm, \(c.name), \(kernel)")
                // The weight gradient is the GEMM path's own.
                XCTAssertEqual(fast.dWeight!.scalars, plain.dWeight!.scalars, "dWeight, \(c.name), \(kernel)")
                XCTAssertEqual(fast.dBias!.scalars, plain.dBias!.scalars, "dBias, \(c.name), \(kernel)")
                let alone = Convolution.backward(dy, x: x, weight: weight, window: c.window, groups: 1,
                                                 needInputGradient: true, needParameterGradients: false, kernel: kernel)
                XCTAssertEqual(alone.dx!.scalars, fast.dx!.scalars, "dx alone, \(c.name), \(kernel)")
                if x.count <= 600 {
                    FiniteDifference.check(fast.dx, of: {
                        Convolution.forward($0, weight: weight, bias: bias, window: c.window, groups: 1, kernel: kernel)
                    }, at: x, upstream: dy, tolerance: 1e-3, "dx, \(c.name), \(kernel)")
                }
            }
        }
    }
}

extension Tensor {
    var maxAbs: Float { scalars.map(abs).max() ?? 0 }
}

/// Which layers run Winograd, decided from the shape alone.
final class WinogradKernelChoiceTests: XCTestCase {
    func kernel(c: Int, m: Int, size: Int, pad: Int = 1, stride: Int = 1, dilation: Int = 1, groups: Int = 1) -> Convolution.Kernel {
        Convolution.kernel(x: [1, c, size, size], weight: [m, c / groups, 3, 3],
                           window: Window2D(kernel: 3, stride: stride, pad: pad, dilation: dilation), groups: groups)
    }

    func testLargeMapsRunF43SmallOnesF23TinyOnesTheGemm() {
        // GoogLeNet at 224 px: conv2 (56²) and inception 3a/3b (28²) F(4,3); 4a–4e (14²) F(2,3); 5a/5b (7²) GEMM.
        XCTAssertEqual(kernel(c: 64, m: 192, size: 56), .winograd4x4)
        XCTAssertEqual(kernel(c: 128, m: 192, size: 28), .winograd4x4)
        XCTAssertEqual(kernel(c: 112, m: 224, size: 14), .winograd2x2)
        XCTAssertEqual(kernel(c: 192, m: 384, size: 16), .winograd2x2)
        XCTAssertEqual(kernel(c: 192, m: 384, size: 7), .gemm)
        // SqueezeNet 1.1: 16 and 32 input channels run our implicit GEMM (PackedConvolution.swift) on small maps
        // (fire2/3; fire4/5 at 27²), Winograd on larger ones (fire4/5 at 63², fire6–9 at 31²); 13² maps pay for
        // neither (fire6–9 at 224 px: the implicit GEMM too).
        XCTAssertEqual(kernel(c: 16, m: 64, size: 55), .packed, "K = 144")
        XCTAssertEqual(kernel(c: 32, m: 128, size: 27), .packed, "C·M/(C+M) = 25 on 49 tiles")
        XCTAssertEqual(kernel(c: 32, m: 128, size: 63), .winograd4x4, "256 tiles")
        XCTAssertEqual(kernel(c: 48, m: 192, size: 31), .winograd4x4, "C·M/(C+M) = 38 on 64 tiles")
        XCTAssertEqual(kernel(c: 64, m: 256, size: 31), .winograd4x4, "C·M/(C+M) = 51")
        XCTAssertEqual(kernel(c: 64, m: 256, size: 13), .packed, "K = 576 on 169 positions")
        // DenseNet's narrowing 128 -> 32 at 28²: Winograd, although C·M/(C+M) = 25 on 49 tiles; at 14² and 7² the
        // implicit GEMM.
        XCTAssertEqual(kernel(c: 128, m: 32, size: 28), .winograd4x4, "M < C")
        XCTAssertEqual(kernel(c: 128, m: 32, size: 14), .packed, "M < C, 14²")
        XCTAssertEqual(kernel(c: 128, m: 32, size: 7), .packed, "M < C, 7²")
        // Padding does not matter; stride, dilation and groups leave Winograd out.
        XCTAssertEqual(kernel(c: 64, m: 64, size: 58, pad: 0), .winograd4x4)
        XCTAssertEqual(kernel(c: 64, m: 64, size: 56, stride: 2), .packed)
        XCTAssertEqual(kernel(c: 64, m: 64, size: 56, dilation: 2), .packed)
        XCTAssertEqual(kernel(c: 64, m: 64, size: 56, groups: 2), .grouped, "several channels per group")
        XCTAssertEqual(kernel(c: 192, m: 384, size: 56, stride: 2), .gemm, "K = 1728: OpenBLAS")
        XCTAssertFalse(Convolution.kernels(x: [1, 64, 56, 56], weight: [64, 1, 3, 3], window: Window2D(kernel: 3, pad: 1), groups: 64)
            .contains(.winograd4x4), "depthwise")
        XCTAssertFalse(Convolution.kernels(x: [1, 8, 9, 9], weight: [8, 8, 5, 5], window: Window2D(kernel: 5, pad: 2), groups: 1)
            .contains(.winograd2x2), "5x5")
    }

    /// The error rule: F(4,3) up to 4,444 summed channels, F(2,3) up to 160,000; beyond, the next more accurate path.
    /// Shapes only: nothing of this size is allocated.
    func testChannelCountsBeyondTheErrorBoundFallBack() {
        XCTAssertEqual(kernel(c: 4_400, m: 128, size: 64), .winograd4x4)
        XCTAssertEqual(kernel(c: 4_500, m: 128, size: 64), .winograd2x2, "F(4,3) bound exceeded: F(2,3)")
        XCTAssertEqual(kernel(c: 200_000, m: 128, size: 64), .gemm, "both bounds exceeded")
    }

    /// The data gradient sums over the M output channels: a layer whose forward pass may run F(4,3) (C small) but
    /// whose M exceeds the bound computes dx with F(2,3) — checked by its error against the exact result being F(2,3)'s.
    func testDataGradientFollowsTheErrorRuleForItsOwnSum() {
        let (c, m) = (48, 4_500)  // C·M/(C+M) = 47: Winograd, not the implicit GEMM (PackedConvolution.swift)
        let window = Window2D(kernel: 3, pad: 1)
        XCTAssertEqual(Convolution.kernel(x: [1, c, 24, 24], weight: [m, c, 3, 3], window: window, groups: 1), .winograd4x4)
        let x = Tensor.random(shape: [1, c, 24, 24], seed: 1)
        let weight = Tensor.random(shape: [m, c, 3, 3], seed: 2)
        let dy = Tensor.random(shape: [1, m, 24, 24], seed: 3)
        let f4 = Convolution.backward(dy, x: x, weight: weight, window: window, groups: 1, needInputGradient: true,
                                      needParameterGradients: false, kernel: .winograd4x4).dx!
        let f2 = Convolution.backward(dy, x: x, weight: weight, window: window, groups: 1, needInputGradient: true,
                                      needParameterGradients: false, kernel: .winograd2x2).dx!
        let gemm = Convolution.backward(dy, x: x, weight: weight, window: window, groups: 1, needInputGradient: true,
                                        needParameterGradients: false, kernel: .gemm).dx!
        XCTAssertEqual(f4.scalars, f2.scalars, "dx of an F(4,3) layer with 4,500 output channels runs F(2,3)")
        XCTAssertNotEqual(f2.scalars, gemm.scalars, "F(2,3) rounds otherwise than the GEMM path")
        XCTAssertLessThan(f2.relativeL2Error(to: gemm), 1e-5)
    }
}
