import Parallel
import Tensors
import XCTest

/// The implicit-GEMM convolution (`.packed` on a non-pointwise layer: B packed straight from a zero-padded,
/// phase-split copy of the image, PackedConvolution.swift and CKernels/GemmBodies.h) against the naive definition
/// (`ConvolutionTests.naiveConvolution`), element by element within the float32 summation bound, at every SIMD
/// level: strides 1 to 3, dilation, asymmetric padding, kernels from 1x3 to 7x7, groups, batches, maps narrower
/// than a strip of 16 down to one pixel (strips crossing 1 to 16 output rows), more than one slice of the inner
/// dimension and more than one panel of columns, and every epilogue the GEMM applies in registers.
final class ImplicitGemmConvolutionTests: XCTestCase {
    typealias Case = ConvolutionTests.Case

    static let cases: [Case] = [
        Case(name: "3x3 s1 p1 batch 2, width 13 (strips over 2-3 rows)", x: [2, 5, 13, 13], m: 7,
             window: Window2D(kernel: 3, pad: 1), groups: 1),
        Case(name: "3x3 s2 p1 stem, width 17", x: [1, 3, 33, 34], m: 8, window: Window2D(kernel: 3, stride: 2, pad: 1), groups: 1),
        Case(name: "3x3 s2 no pad, odd", x: [2, 3, 15, 13], m: 6, window: Window2D(kernel: 3, stride: 2), groups: 1, bias: false),
        Case(name: "3x3 s3 p1, width 7", x: [1, 4, 20, 21], m: 5, window: Window2D(kernel: 3, stride: 3, pad: 1), groups: 1),
        Case(name: "3x3 dilation 2 p2", x: [1, 3, 12, 19], m: 4, window: Window2D(kernel: 3, pad: 2, dilation: 2), groups: 1),
        Case(name: "3x3 s2 dilation 2 asymmetric pad", x: [1, 2, 17, 16], m: 3,
             window: Window2D(kernelH: 3, kernelW: 3, strideH: 2, strideW: 2, padTop: 3, padLeft: 0, padBottom: 1,
                              padRight: 2, dilationH: 2, dilationW: 2), groups: 1),
        Case(name: "1x3 asymmetric pad, stride 1x2", x: [1, 6, 9, 31], m: 5,
             window: Window2D(kernelH: 1, kernelW: 3, strideH: 1, strideW: 2, padTop: 0, padLeft: 2, padBottom: 0,
                              padRight: 1), groups: 1),
        Case(name: "5x5 p2 groups 2", x: [2, 4, 11, 18], m: 6, window: Window2D(kernel: 5, pad: 2), groups: 2),
        Case(name: "7x7 s2 p3 stem", x: [1, 3, 40, 37], m: 13, window: Window2D(kernel: 7, stride: 2, pad: 3), groups: 1),
        Case(name: "3x3 s2 p1 groups 2, width 3", x: [1, 6, 5, 6], m: 4, window: Window2D(kernel: 3, stride: 2, pad: 1), groups: 2),
        Case(name: "3x3 p1 width 5 (strips over 4-5 rows)", x: [1, 4, 9, 5], m: 3, window: Window2D(kernel: 3, pad: 1), groups: 1),
        Case(name: "3x3 to a 1-pixel map", x: [2, 5, 3, 3], m: 9, window: Window2D(kernel: 3), groups: 1),
        Case(name: "3x3 s2 p1 to 1-pixel-wide columns", x: [1, 3, 25, 2], m: 4, window: Window2D(kernel: 3, stride: 2, pad: 1),
             groups: 1),
        Case(name: "1x1 stride 2", x: [1, 5, 9, 11], m: 3, window: Window2D(kernel: 1, stride: 2), groups: 1),
        Case(name: "1x1 padded", x: [1, 3, 4, 5], m: 2, window: Window2D(kernel: 1, pad: 1), groups: 1),
        // K = 32·9 = 288: two slices of the inner dimension; 32x34 = 1088 positions: several panels of columns.
        Case(name: "3x3 p1, K beyond one slice", x: [1, 32, 32, 34], m: 19, window: Window2D(kernel: 3, pad: 1), groups: 1),
    ]

    static let epilogues: [Activation?] = [nil, .relu, .clip(min: 0, max: 6), .clip(min: -0.5, max: 0.25), .leakyRelu(alpha: 0.1)]

    static func absolute(_ t: Tensor) -> Tensor { Tensor(shape: t.shape, scalars: t.scalars.map { abs($0) }) }

    /// A case's tensors, its exact convolution, Σ|terms| of each output (the same definition on absolute values), and
    /// the factor of the summation bound: K products and the bias summed in float32 in some order, one or two roundings
    /// per step, are within γ(K+2)·Σ|terms| of the exact sum; the reference itself is the exact sum rounded once
    /// (2⁻²⁴ relative) and the magnitudes too. ReLU, Clip and LeakyReLU (α ≤ 1) move two values apart by at most as much.
    static func reference(_ c: Case, seed: UInt64)
        -> (x: Tensor, weight: Tensor, bias: Tensor?, exact: Tensor, magnitude: Tensor, factor: Double) {
        let (x, weight, bias) = ConvolutionTests.tensors(c, seed: seed)
        let exact = ConvolutionTests.naiveConvolution(x, weight, bias, c.window, groups: c.groups)
        let magnitude = ConvolutionTests.naiveConvolution(absolute(x), absolute(weight), bias.map(absolute), c.window, groups: c.groups)
        let k = c.x[1] / c.groups * c.window.kernelH * c.window.kernelW
        return (x, weight, bias, exact, magnitude, (SIMDKernelTests.gamma(k + 2) + 0x1p-24) * (1 + 0x1p-23))
    }

    func testForwardMatchesTheNaiveConvolutionWithinTheSummationBoundAtEveryLevel() {
        forEachSIMDLevel { level in
            for (index, c) in Self.cases.enumerated() {
                let (x, weight, bias, exact, magnitude, factor) = Self.reference(c, seed: UInt64(900 + index * 10))
                for epilogue in Self.epilogues {
                    let y = Convolution.forward(x, weight: weight, bias: bias, window: c.window, groups: c.groups,
                                                kernel: .packed, epilogue: epilogue)
                    XCTAssertEqual(y.shape, exact.shape, c.name)
                    guard y.shape == exact.shape else { continue }
                    let expected = epilogue.map { $0.forward(exact) } ?? exact
                    Self.assertWithinBound(y.scalars, expected.scalars, magnitude.scalars, factor: factor,
                                           "\(c.name), \(String(describing: epilogue)), \(level)")
                }
            }
        }
    }

    /// Fails where |got − want| > factor · bound, element by element (NaN fails), reporting the first three.
    static func assertWithinBound(_ got: [Float], _ want: [Float], _ bound: [Float], factor: Double, _ context: String,
                                  file: StaticString = #filePath, line: UInt = #line) {
        var failures = 0
        for i in got.indices where !(abs(Double(got[i]) - Double(want[i])) <= factor * Double(bound[i])) {
            failures += 1
            if failures <= 3 {
                XCTFail("\(context): y[\(i)] = \(got[i]), expected \(want[i]) ± \(factor * Double(bound[i]))", file: file, line: line)
            }
        }
    }

    /// The kernel chooses blocks by shape only and sums each element in a fixed order: the bytes do not depend on
    /// the thread count (the image copy is split by rows, each written once).
    func testResultsDoNotDependOnTheThreadCount() {
        let threads = Threading.threadCount
        defer { Threading.configure(threads: threads) }
        let c = Case(name: "stem", x: [1, 3, 61, 67], m: 16, window: Window2D(kernel: 3, stride: 2, pad: 1), groups: 1)
        let (x, weight, bias) = ConvolutionTests.tensors(c, seed: 77)
        func run() -> [UInt32] {
            Convolution.forward(x, weight: weight, bias: bias, window: c.window, groups: 1, kernel: .packed,
                                epilogue: .relu).scalars.map(\.bitPattern)
        }
        forEachSIMDLevel { level in
            Threading.configure(threads: 1)
            let one = run()
            for count in [2, 3] {
                Threading.configure(threads: count)
                XCTAssertEqual(run(), one, "\(count) threads vs 1, \(level)")
            }
        }
    }
}
