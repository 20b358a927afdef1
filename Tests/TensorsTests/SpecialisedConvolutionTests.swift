import Parallel
import Tensors
import XCTest

/// The specialised convolution kernels (depthwise 3x3, sliced pointwise GEMMs) against the naive definition, the
/// general kernels and central finite differences, forward and backward. `make test-kernels` runs them again under
/// each OpenBLAS kernel family.
final class SpecialisedConvolutionTests: XCTestCase {
    typealias Case = ConvolutionTests.Case

    /// Widths below, at and above the 8-lane vector, odd sizes, strides 1 and 2, no, symmetric and asymmetric pads.
    static let depthwiseCases: [Case] = [
        Case(name: "dw 3x3 s1 p1 batch 2", x: [2, 3, 9, 13], m: 3, window: Window2D(kernel: 3, pad: 1), groups: 3),
        Case(name: "dw 3x3 s2 p1", x: [1, 4, 17, 21], m: 4, window: Window2D(kernel: 3, stride: 2, pad: 1), groups: 4),
        Case(name: "dw 3x3 s2 p1 even", x: [1, 2, 16, 16], m: 2, window: Window2D(kernel: 3, stride: 2, pad: 1), groups: 2),
        Case(name: "dw 3x3 s1 no pad, narrow", x: [1, 2, 6, 5], m: 2, window: Window2D(kernel: 3), groups: 2, bias: false),
        Case(name: "dw 3x3 s2 narrow", x: [2, 3, 7, 7], m: 3, window: Window2D(kernel: 3, stride: 2, pad: 1), groups: 3),
        Case(name: "dw 3x3 s1 asymmetric pad", x: [1, 3, 10, 12], m: 3,
             window: Window2D(kernelH: 3, kernelW: 3, padTop: 0, padLeft: 2, padBottom: 2, padRight: 0), groups: 3),
        Case(name: "dw 3x3 s2 asymmetric pad", x: [1, 2, 11, 19], m: 2,
             window: Window2D(kernelH: 3, kernelW: 3, strideH: 2, strideW: 2, padTop: 2, padLeft: 0, padBottom: 0, padRight: 1),
             groups: 2, bias: false),
        // Wider than two AVX-512 vectors, with a partial tail: every level's full and partial paths.
        Case(name: "dw 3x3 s1 p1 wide", x: [1, 2, 5, 37], m: 2, window: Window2D(kernel: 3, pad: 1), groups: 2),
        Case(name: "dw 3x3 s2 p1 wide", x: [1, 2, 6, 71], m: 2, window: Window2D(kernel: 3, stride: 2, pad: 1), groups: 2),
    ]

    /// The forward's three paths and their edges, checked bit for bit (SIMDKernelTests) and with every epilogue
    /// (ConvolutionEpilogueTests): rows narrower than a vector (one flat run per plane; out_w 1, 7 and 15, one lane
    /// short of AVX2's and AVX-512's vectors), wide rows of a small plane, and planes of at least 8192 pixels, which
    /// go through a ring of rows (strides 1 and 2, no, symmetric and asymmetric padding).
    static let depthwiseForwardPathCases: [Case] = [
        Case(name: "dw 1x1 input p1", x: [2, 3, 1, 1], m: 3, window: Window2D(kernel: 3, pad: 1), groups: 3),
        Case(name: "dw 2x2 s2 p1", x: [1, 2, 2, 2], m: 2, window: Window2D(kernel: 3, stride: 2, pad: 1), groups: 2),
        Case(name: "dw 3x3 to 1x1", x: [1, 2, 3, 3], m: 2, window: Window2D(kernel: 3), groups: 2, bias: false),
        Case(name: "dw 7x7 p1 batch 2", x: [2, 5, 7, 7], m: 5, window: Window2D(kernel: 3, pad: 1), groups: 5),
        Case(name: "dw 14x14 s2 p1", x: [1, 4, 14, 14], m: 4, window: Window2D(kernel: 3, stride: 2, pad: 1), groups: 4),
        Case(name: "dw out_w 15", x: [1, 3, 6, 15], m: 3, window: Window2D(kernel: 3, pad: 1), groups: 3),
        Case(name: "dw s2 out_w 17", x: [1, 3, 20, 33], m: 3, window: Window2D(kernel: 3, stride: 2, pad: 1), groups: 3),
        Case(name: "dw ring s1 p1", x: [1, 2, 90, 93], m: 2, window: Window2D(kernel: 3, pad: 1), groups: 2),
        Case(name: "dw ring s1 no pad", x: [1, 2, 96, 90], m: 2, window: Window2D(kernel: 3), groups: 2, bias: false),
        Case(name: "dw ring s2 p1 batch 2", x: [2, 2, 91, 92], m: 2, window: Window2D(kernel: 3, stride: 2, pad: 1), groups: 2),
        Case(name: "dw ring s2 asymmetric pad", x: [1, 2, 93, 90], m: 2,
             window: Window2D(kernelH: 3, kernelW: 3, strideH: 2, strideW: 2, padTop: 0, padLeft: 2, padBottom: 2, padRight: 1),
             groups: 2),
    ]

    /// Column slices (positions ≥ channels) and channel slices, with and without bias, batch 1 and 2.
    static let pointwiseCases: [Case] = [
        Case(name: "pw columns batch 2", x: [2, 6, 9, 11], m: 5, window: Window2D(kernel: 1), groups: 1),
        Case(name: "pw channels", x: [1, 7, 3, 3], m: 40, window: Window2D(kernel: 1), groups: 1),
        Case(name: "pw columns no bias", x: [1, 20, 8, 8], m: 12, window: Window2D(kernel: 1), groups: 1, bias: false),
        Case(name: "pw tiny", x: [1, 3, 2, 2], m: 2, window: Window2D(kernel: 1), groups: 1),
    ]

    /// Small-K im2col convolutions (stems: 3 channels, 3x3 stride 2 and 7x7 stride 2), grouped and padded 1x1.
    static let packedCases: [Case] = [
        Case(name: "stem 3x3 s2 p1", x: [2, 3, 17, 15], m: 8, window: Window2D(kernel: 3, stride: 2, pad: 1), groups: 1),
        Case(name: "stem 7x7 s2 p3 no bias", x: [1, 3, 19, 23], m: 7, window: Window2D(kernel: 7, stride: 2, pad: 3), groups: 1,
             bias: false),
        Case(name: "3x3 s1 p1 wide", x: [1, 4, 6, 41], m: 13, window: Window2D(kernel: 3, pad: 1), groups: 1),
        Case(name: "pw groups 2", x: [2, 4, 5, 7], m: 6, window: Window2D(kernel: 1), groups: 2),
        Case(name: "1x1 padded stride 2", x: [1, 5, 9, 8], m: 3, window: Window2D(kernel: 1, stride: 2, pad: 1), groups: 1),
        Case(name: "grouped 3x3 s2", x: [1, 6, 9, 9], m: 4, window: Window2D(kernel: 3, stride: 2, pad: 1), groups: 2),
    ]

    /// `chosen`: whether `Convolution.kernel` picks `kernel` for every case (nil: not checked).
    func check(_ cases: [Case], kernel: Convolution.Kernel, reference: Convolution.Kernel, chosen: Bool? = nil) {
        for (index, c) in cases.enumerated() {
            let (x, weight, bias) = ConvolutionTests.tensors(c, seed: UInt64(100 + index * 10))
            if let chosen {
                XCTAssertEqual(Convolution.kernel(x: x.shape, weight: weight.shape, window: c.window, groups: c.groups) == kernel,
                               chosen, "kernel choice, \(c.name)")
            }
            let y = Convolution.forward(x, weight: weight, bias: bias, window: c.window, groups: c.groups, kernel: kernel)
            let expected = ConvolutionTests.naiveConvolution(x, weight, bias, c.window, groups: c.groups)
            XCTAssertEqual(y.shape, expected.shape, c.name)
            // Float32 sums of at most C·9 products of values in [-1, 1]: a few ulps relative.
            XCTAssertLessThan(y.relativeL2Error(to: expected), 1e-6, c.name)
            XCTAssertLessThan(y.maxAbsDifference(expected), 1e-5, c.name)

            let dy = Tensor.random(shape: y.shape, seed: UInt64(100 + index * 10 + 7))
            let fast = Convolution.backward(dy, x: x, weight: weight, window: c.window, groups: c.groups,
                                            needInputGradient: true, needParameterGradients: true, kernel: kernel)
            let plain = Convolution.backward(dy, x: x, weight: weight, window: c.window, groups: c.groups,
                                             needInputGradient: true, needParameterGradients: true, kernel: reference)
            // Same products, summed in another order: float32 rounding of sums over at most N·OH·OW terms.
            XCTAssertLessThan(fast.dx!.relativeL2Error(to: plain.dx!), 1e-6, "dx vs \(reference), \(c.name)")
            XCTAssertLessThan(fast.dWeight!.relativeL2Error(to: plain.dWeight!), 1e-5, "dWeight vs \(reference), \(c.name)")
            XCTAssertEqual(fast.dBias!.maxAbsDifference(plain.dBias!), 0, "dBias, \(c.name)")
            FiniteDifference.check(fast.dx, of: {
                Convolution.forward($0, weight: weight, bias: bias, window: c.window, groups: c.groups, kernel: kernel)
            }, at: x, upstream: dy, tolerance: 1e-3, "dx, \(c.name)")
            FiniteDifference.check(fast.dWeight, of: {
                Convolution.forward(x, weight: $0, bias: bias, window: c.window, groups: c.groups, kernel: kernel)
            }, at: weight, upstream: dy, tolerance: 1e-3, "dWeight, \(c.name)")
            let inputOnly = Convolution.backward(dy, x: x, weight: weight, window: c.window, groups: c.groups,
                                                 needInputGradient: true, needParameterGradients: false, kernel: kernel)
            XCTAssertEqual(inputOnly.dx!.maxAbsDifference(fast.dx!), 0, "dx alone, \(c.name)")
        }
    }

    func testDepthwise3x3MatchesNaiveLoopKernelAndFiniteDifferences() {
        forEachSIMDLevel { _ in check(Self.depthwiseCases, kernel: .depthwise3x3, reference: .depthwiseLoop, chosen: true) }
    }

    func testDepthwiseForwardPathsMatchTheNaiveConvolution() {
        for (index, c) in Self.depthwiseForwardPathCases.enumerated() {
            let (x, weight, bias) = ConvolutionTests.tensors(c, seed: UInt64(900 + index))
            let y = Convolution.forward(x, weight: weight, bias: bias, window: c.window, groups: c.groups, kernel: .depthwise3x3)
            let expected = ConvolutionTests.naiveConvolution(x, weight, bias, c.window, groups: c.groups)
            XCTAssertEqual(y.shape, expected.shape, c.name)
            XCTAssertLessThan(y.relativeL2Error(to: expected), 1e-6, c.name)
            XCTAssertLessThan(y.maxAbsDifference(expected), 1e-5, c.name)
        }
    }

    /// Planes are split over threads in ranges; a range's last row is stored exactly (the rows before it may store
    /// extra lanes into the next row), so the results are the same bits for any split.
    func testDepthwiseForwardDoesNotDependOnTheThreadCount() {
        let threads = Threading.threadCount
        defer { Threading.configure(threads: threads) }
        let cases = [Case(name: "narrow planes", x: [2, 128, 7, 7], m: 128, window: Window2D(kernel: 3, pad: 1), groups: 128),
                     Case(name: "ring planes", x: [1, 4, 96, 90], m: 4, window: Window2D(kernel: 3, stride: 2, pad: 1), groups: 4)]
        for c in cases {
            let (x, weight, bias) = ConvolutionTests.tensors(c, seed: 11)
            var outputs: [[UInt32]] = []
            for count in [1, 2, 3] {
                Threading.configure(threads: count)
                let y = Convolution.forward(x, weight: weight, bias: bias, window: c.window, groups: c.groups,
                                            kernel: .depthwise3x3, epilogue: .clip(min: 0, max: 6))
                outputs.append(y.scalars.map(\.bitPattern))
            }
            XCTAssertEqual(outputs[0], outputs[1], "\(c.name): 1 vs 2 threads")
            XCTAssertEqual(outputs[0], outputs[2], "\(c.name): 1 vs 3 threads")
        }
    }

    func testSlicedPointwiseMatchesNaiveGemmAndFiniteDifferences() {
        check(Self.pointwiseCases, kernel: .pointwiseSliced, reference: .gemm)
    }

    func testPackedGemmConvolutionsMatchNaiveGemmAndFiniteDifferences() {
        forEachSIMDLevel { _ in
            check(Self.pointwiseCases, kernel: .packed, reference: .gemm, chosen: true)
            check(Array(Self.packedCases[0...0]), kernel: .packed, reference: .gemm, chosen: true)
            check(Array(Self.packedCases[1...]), kernel: .packed, reference: .gemm)
        }
    }

    func testSlicedPointwiseOnOneThreadMatchesTheGemm() {
        let threads = Threading.threadCount
        defer { Threading.configure(threads: threads) }
        Threading.configure(threads: 1)
        let c = Self.pointwiseCases[0]
        let (x, weight, bias) = ConvolutionTests.tensors(c, seed: 5)
        let y = Convolution.forward(x, weight: weight, bias: bias, window: c.window, groups: 1, kernel: .pointwiseSliced)
        let g = Convolution.forward(x, weight: weight, bias: bias, window: c.window, groups: 1, kernel: .gemm)
        XCTAssertLessThan(y.relativeL2Error(to: g), 1e-6)
        XCTAssertEqual(Convolution.kernel(x: x.shape, weight: weight.shape, window: c.window, groups: 1), .packed,
                       "one thread: the packed GEMM, chosen by shape alone")
    }

    func testKernelChoiceFollowsTheShape() {
        XCTAssertEqual(Convolution.kernel(x: [1, 8, 9, 9], weight: [8, 1, 3, 3], window: Window2D(kernel: 3, stride: 2, pad: 1), groups: 8),
                       .depthwise3x3)
        XCTAssertEqual(Convolution.kernel(x: [1, 8, 9, 9], weight: [16, 1, 3, 3], window: Window2D(kernel: 3, pad: 1), groups: 8),
                       .depthwiseLoop, "multiplier 2")
        XCTAssertEqual(Convolution.kernel(x: [1, 8, 9, 9], weight: [8, 1, 5, 5], window: Window2D(kernel: 5, pad: 2), groups: 8),
                       .depthwiseKxK, "5x5")
        XCTAssertEqual(Convolution.kernel(x: [1, 8, 9, 9], weight: [8, 1, 3, 3], window: Window2D(kernel: 3, stride: 3), groups: 8),
                       .depthwiseLoop, "stride 3")
        XCTAssertEqual(Convolution.kernel(x: [1, 64, 41, 41], weight: [64, 64, 3, 3], window: Window2D(kernel: 3, stride: 2, pad: 1),
                                          groups: 1), .packed, "implicit GEMM up to K = 1280")
        XCTAssertEqual(Convolution.kernel(x: [1, 160, 41, 41], weight: [64, 160, 3, 3], window: Window2D(kernel: 3, stride: 2, pad: 1),
                                          groups: 1), .gemm, "K = 1440: OpenBLAS")
        XCTAssertEqual(Convolution.kernel(x: [1, 3, 224, 224], weight: [64, 3, 7, 7], window: Window2D(kernel: 7, stride: 2, pad: 3),
                                          groups: 1), .packed, "7x7 stem")
        XCTAssertEqual(Convolution.kernel(x: [1, 48, 19, 19], weight: [128, 48, 5, 5], window: Window2D(kernel: 5, pad: 2),
                                          groups: 1), .packed, "K = 1200 on 361 positions: small maps too")
        XCTAssertEqual(Convolution.kernel(x: [1, 192, 7, 7], weight: [384, 192, 3, 3], window: Window2D(kernel: 3, pad: 1),
                                          groups: 1), .gemm, "K = 1728 on a small map: OpenBLAS")
        XCTAssertEqual(Convolution.kernel(x: [1, 48, 20, 20], weight: [128, 48, 5, 5], window: Window2D(kernel: 5, pad: 2),
                                          groups: 1), .packed, "K = 1200 on 400 positions")
        XCTAssertEqual(Convolution.kernel(x: [1, 16, 7, 7], weight: [32, 16, 3, 3], window: Window2D(kernel: 3, stride: 2, pad: 1),
                                          groups: 1), .packed, "K = 144 on a small map")
        XCTAssertEqual(Convolution.kernel(x: [1, 3, 224, 224], weight: [32, 3, 3, 3], window: Window2D(kernel: 3, stride: 2, pad: 1),
                                          groups: 1), .packed, "stem")
        XCTAssertEqual(Convolution.kernel(x: [1, 16, 112, 112], weight: [96, 16, 1, 1], window: Window2D(kernel: 1), groups: 1),
                       .packed, "small pointwise")
        XCTAssertNotEqual(Convolution.kernel(x: [1, 256, 64, 64], weight: [128, 256, 1, 1], window: Window2D(kernel: 1), groups: 1),
                          .packed, "pointwise from 256 channels: OpenBLAS")
        XCTAssertEqual(Convolution.kernel(x: [1, 1024, 64, 64], weight: [1024, 1024, 1, 1], window: Window2D(kernel: 1), groups: 1),
                       .gemm, "large enough for OpenBLAS's threads")
    }
}
