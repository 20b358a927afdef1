import Parallel
import Tensors
import XCTest

/// The depthwise kh x kw kernel (`Convolution.Kernel.depthwiseKxK`: 5x5, 7x7 and the other sizes up to 11x11 but
/// 3x3) at every instruction-set level this CPU supports: the forward bit for bit against a float32 emulation of its
/// order of operations, every epilogue against the separate activation, both gradients against exact sums within the
/// float32 summation bound and against the loop kernel, and all three against central finite differences.
final class DepthwiseKxKTests: XCTestCase {
    typealias Case = ConvolutionTests.Case

    static func dw(_ name: String, _ x: [Int], _ window: Window2D, bias: Bool = true) -> Case {
        Case(name: name, x: x, m: x[1], window: window, groups: x[1], bias: bias)
    }

    static func window(_ kh: Int, _ kw: Int, stride: Int, top: Int, left: Int, bottom: Int, right: Int) -> Window2D {
        Window2D(kernelH: kh, kernelW: kw, strideH: stride, strideW: stride, padTop: top, padLeft: left, padBottom: bottom,
                 padRight: right)
    }

    /// 5x5 and 7x7 (the sizes compiled as constants) and other sizes (the general loop), strides 1 and 2, odd and
    /// even sizes, maps of 1x1 and 2x2 and smaller than the kernel, no, symmetric, asymmetric and wider-than-the-kernel
    /// padding, batch 2; rows narrower than a vector, wider than two AVX-512 vectors with tails, and planes of at
    /// least 8192 pixels (the ring of rows).
    static let cases: [Case] = [
        dw("5x5 s1 p2 batch 2", [2, 3, 9, 13], Window2D(kernel: 5, pad: 2)),
        dw("5x5 s2 p2", [1, 4, 17, 21], Window2D(kernel: 5, stride: 2, pad: 2)),
        dw("5x5 s2 p2 even", [1, 2, 16, 16], Window2D(kernel: 5, stride: 2, pad: 2)),
        dw("5x5 s1 no pad", [1, 2, 8, 7], Window2D(kernel: 5), bias: false),
        dw("7x7 s1 p3 batch 2", [2, 3, 11, 10], Window2D(kernel: 7, pad: 3)),
        dw("7x7 s2 p3", [1, 3, 15, 14], Window2D(kernel: 7, stride: 2, pad: 3)),
        dw("5x5 1x1 map", [2, 3, 1, 1], Window2D(kernel: 5, pad: 2)),
        dw("7x7 2x2 map s2", [1, 2, 2, 2], Window2D(kernel: 7, stride: 2, pad: 3)),
        dw("7x7 map 4x3 smaller than the kernel", [1, 2, 4, 3], Window2D(kernel: 7, pad: 3)),
        dw("5x5 map 3x4 s2", [2, 2, 3, 4], Window2D(kernel: 5, stride: 2, pad: 2)),
        dw("5x5 s1 asymmetric pad", [1, 3, 10, 12], window(5, 5, stride: 1, top: 0, left: 4, bottom: 3, right: 1)),
        dw("7x7 s2 asymmetric pad", [1, 2, 11, 19], window(7, 7, stride: 2, top: 5, left: 0, bottom: 1, right: 6), bias: false),
        dw("5x5 pad wider than the kernel", [1, 2, 3, 5], window(5, 5, stride: 1, top: 7, left: 6, bottom: 8, right: 9)),
        dw("5x5 s2 pad wider than the kernel", [1, 2, 4, 3], window(5, 5, stride: 2, top: 6, left: 7, bottom: 5, right: 8)),
        dw("5x5 s1 wide", [1, 2, 5, 37], Window2D(kernel: 5, pad: 2)),
        dw("7x7 s2 wide", [1, 2, 8, 75], Window2D(kernel: 7, stride: 2, pad: 3)),
        dw("5x3 rectangular s1", [1, 2, 9, 21], window(5, 3, stride: 1, top: 2, left: 1, bottom: 2, right: 1)),
        dw("1x7 s2", [1, 2, 7, 20], window(1, 7, stride: 2, top: 0, left: 3, bottom: 0, right: 3)),
        dw("4x4 even kernel s2", [1, 3, 10, 9], window(4, 4, stride: 2, top: 1, left: 2, bottom: 2, right: 1)),
        dw("9x9 s1", [1, 2, 12, 19], Window2D(kernel: 9, pad: 4)),
        dw("5x5 ring s1", [1, 2, 90, 93], Window2D(kernel: 5, pad: 2)),
        dw("7x7 ring s2 batch 2", [2, 2, 91, 92], Window2D(kernel: 7, stride: 2, pad: 3)),
        dw("5x5 ring s2 asymmetric pad", [1, 2, 93, 90], window(5, 5, stride: 2, top: 0, left: 3, bottom: 4, right: 1)),
    ]

    /// The cases small enough for central differences (each element costs two forward passes).
    static var smallCases: [Case] { cases.filter { $0.x.reduce(1, *) <= 600 } }

    /// y = b + Σ w·x over the taps in row-major order (padding as zeros), emulated in float32; `fused`: one rounding
    /// per multiply-add (AVX2 and AVX-512), else a rounded product then a rounded sum (the SSE2 baseline).
    static func emulated(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, _ win: Window2D, fused: Bool) -> Tensor {
        SIMDKernelTests.emulatedDepthwise(x, weight, bias, win, fused: fused)
    }

    /// The exact (Double) outputs and gradients of a case with the sums of magnitudes of their terms, for the
    /// summation bound: Σ over the same products the kernels sum.
    struct Exact {
        var y: [Double], yMagnitude: [Double], dx: [Double], dxMagnitude: [Double], dW: [Double], dWMagnitude: [Double]
    }

    static func exact(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, _ dy: Tensor, _ win: Window2D) -> Exact {
        let (n, ch, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = win.outputSize(inputH: h, inputW: w)
        let (kh, kw) = (win.kernelH, win.kernelW)
        var e = Exact(y: [Double](repeating: 0, count: dy.count), yMagnitude: [Double](repeating: 0, count: dy.count),
                      dx: [Double](repeating: 0, count: x.count), dxMagnitude: [Double](repeating: 0, count: x.count),
                      dW: [Double](repeating: 0, count: weight.count), dWMagnitude: [Double](repeating: 0, count: weight.count))
        for b in 0..<n {
            for k in 0..<ch {
                for i in 0..<oh {
                    for j in 0..<ow {
                        let yi = ((b * ch + k) * oh + i) * ow + j
                        let gradient = Double(dy[flat: yi])
                        e.y[yi] = Double(bias?[k] ?? 0)
                        e.yMagnitude[yi] = abs(e.y[yi])
                        for ki in 0..<kh {
                            for kj in 0..<kw {
                                let ih = i * win.strideH - win.padTop + ki, iw = j * win.strideW - win.padLeft + kj
                                guard ih >= 0 && ih < h && iw >= 0 && iw < w else { continue }
                                let xi = ((b * ch + k) * h + ih) * w + iw, wi = (k * kh + ki) * kw + kj
                                let (xv, wv) = (Double(x[flat: xi]), Double(weight[flat: wi]))
                                e.y[yi] += wv * xv
                                e.yMagnitude[yi] += abs(wv * xv)
                                e.dx[xi] += wv * gradient
                                e.dxMagnitude[xi] += abs(wv * gradient)
                                e.dW[wi] += xv * gradient
                                e.dWMagnitude[wi] += abs(xv * gradient)
                            }
                        }
                    }
                }
            }
        }
        return e
    }

    /// Higham's bound for a float32 sum of k terms in any order, one or two roundings per step: γ(k+1)·Σ|terms|.
    static func gamma(_ k: Int) -> Double { SIMDKernelTests.gamma(k) }

    func testEveryCaseIsComputedByTheKxKKernel() {
        for c in Self.cases {
            let weight = [c.m, 1, c.window.kernelH, c.window.kernelW]
            XCTAssertEqual(Convolution.kernel(x: c.x, weight: weight, window: c.window, groups: c.groups), .depthwiseKxK, c.name)
        }
        XCTAssertEqual(Convolution.kernel(x: [1, 8, 9, 9], weight: [8, 1, 3, 3], window: Window2D(kernel: 3, pad: 1), groups: 8),
                       .depthwise3x3, "3x3 keeps its own kernel")
        XCTAssertEqual(Convolution.kernel(x: [1, 8, 9, 9], weight: [16, 1, 5, 5], window: Window2D(kernel: 5, pad: 2), groups: 8),
                       .depthwiseLoop, "multiplier 2")
        XCTAssertEqual(Convolution.kernel(x: [1, 8, 9, 9], weight: [8, 1, 5, 5], window: Window2D(kernel: 5, stride: 3), groups: 8),
                       .depthwiseLoop, "stride 3")
        XCTAssertEqual(Convolution.kernel(x: [1, 8, 19, 19], weight: [8, 1, 5, 5], window: Window2D(kernel: 5, dilation: 2), groups: 8),
                       .depthwiseLoop, "dilation 2")
        XCTAssertEqual(Convolution.kernel(x: [1, 8, 19, 19], weight: [8, 1, 13, 13], window: Window2D(kernel: 13, pad: 6), groups: 8),
                       .depthwiseLoop, "13x13: beyond DREAM_DWK_MAX")
        XCTAssertEqual(Convolution.kernel(x: [1, 8, 19, 19], weight: [8, 1, 5, 5],
                                          window: Window2D(kernelH: 5, kernelW: 5, strideH: 1, strideW: 2), groups: 8),
                       .depthwiseLoop, "strides 1 and 2")
    }

    func testForwardIsTheFloat32EmulationOfItsLevelBitForBit() {
        // The two emulations must differ somewhere, or this test could not tell the levels apart.
        var differing = 0
        for (index, c) in Self.cases.enumerated() {
            let (x, weight, bias) = ConvolutionTests.tensors(c, seed: UInt64(1300 + index))
            let fused = Self.emulated(x, weight, bias, c.window, fused: true)
            let separate = Self.emulated(x, weight, bias, c.window, fused: false)
            differing += zip(fused.scalars, separate.scalars).filter { $0.bitPattern != $1.bitPattern }.count
        }
        XCTAssertGreaterThan(differing, 0)
        forEachSIMDLevel { level in
            for (index, c) in Self.cases.enumerated() {
                let (x, weight, bias) = ConvolutionTests.tensors(c, seed: UInt64(1300 + index))
                let y = Convolution.forward(x, weight: weight, bias: bias, window: c.window, groups: c.groups, kernel: .depthwiseKxK)
                let expected = Self.emulated(x, weight, bias, c.window, fused: level != .baseline)
                XCTAssertEqual(y.shape, expected.shape, c.name)
                XCTAssertEqual(y.scalars.map(\.bitPattern), expected.scalars.map(\.bitPattern), "\(c.name), \(level)")
            }
        }
    }

    func testEpilogueEqualsSeparateActivation() {
        let epilogues: [Activation] = ConvolutionEpilogueTests.epilogues
        forEachSIMDLevel { level in
            for (index, c) in Self.cases.enumerated() {
                let (x, weight, bias) = ConvolutionTests.tensors(c, seed: UInt64(1400 + index))
                let plain = Convolution.forward(x, weight: weight, bias: bias, window: c.window, groups: c.groups, kernel: .depthwiseKxK)
                for epilogue in epilogues {
                    let fused = Convolution.forward(x, weight: weight, bias: bias, window: c.window, groups: c.groups,
                                                    kernel: .depthwiseKxK, epilogue: epilogue)
                    XCTAssertEqual(fused.scalars.map(\.bitPattern), epilogue.forward(plain).scalars.map(\.bitPattern),
                                   "\(c.name), \(epilogue), \(level)")
                }
            }
        }
    }

    /// Forward, input and weight gradients of the KxK kernel and of the loop kernel, both within the summation bound
    /// of the exact sums: at most kh·kw + 1 terms per output and kh·kw per input element, N·OH·OW per weight.
    func testGradientsStayWithinTheSummationBoundAtEveryLevel() {
        forEachSIMDLevel { level in
            for (index, c) in Self.cases.enumerated() {
                let (x, weight, bias) = ConvolutionTests.tensors(c, seed: UInt64(1500 + index))
                let (n, h, w) = (c.x[0], c.x[2], c.x[3])
                let (oh, ow) = c.window.outputSize(inputH: h, inputW: w)
                let taps = c.window.kernelH * c.window.kernelW
                let dy = Tensor.random(shape: [n, c.m, oh, ow], seed: UInt64(1550 + index))
                let e = Self.exact(x, weight, bias, dy, c.window)
                for kernel in [Convolution.Kernel.depthwiseKxK, .depthwiseLoop] {
                    let y = Convolution.forward(x, weight: weight, bias: bias, window: c.window, groups: c.groups, kernel: kernel)
                    let g = Convolution.backward(dy, x: x, weight: weight, window: c.window, groups: c.groups,
                                                 needInputGradient: true, needParameterGradients: true, kernel: kernel)
                    for i in 0..<y.count {
                        XCTAssertLessThanOrEqual(abs(Double(y[flat: i]) - e.y[i]), Self.gamma(taps + 2) * e.yMagnitude[i],
                                                 "y[\(i)], \(c.name), \(kernel), \(level)")
                    }
                    for i in 0..<x.count {
                        XCTAssertLessThanOrEqual(abs(Double(g.dx![flat: i]) - e.dx[i]), Self.gamma(taps + 1) * e.dxMagnitude[i],
                                                 "dx[\(i)], \(c.name), \(kernel), \(level)")
                    }
                    for i in 0..<weight.count {
                        XCTAssertLessThanOrEqual(abs(Double(g.dWeight![flat: i]) - e.dW[i]),
                                                 Self.gamma(n * oh * ow + 1) * e.dWMagnitude[i],
                                                 "dWeight[\(i)], \(c.name), \(kernel), \(level)")
                    }
                }
            }
        }
    }

    /// Central differences of Σ dy·y. The convolution is linear in x and in the weights, so the difference
    /// quotient is exact up to the rounding of the two losses: with eps = 1e-2 and terms of order 1, about
    /// 1e-7·Σ|terms| / eps, far below the 1e-3 asked.
    func testGradientsMatchCentralFiniteDifferences() {
        forEachSIMDLevel { level in
            for (index, c) in Self.smallCases.enumerated() {
                let (x, weight, bias) = ConvolutionTests.tensors(c, seed: UInt64(1600 + index))
                let (oh, ow) = c.window.outputSize(inputH: c.x[2], inputW: c.x[3])
                let dy = Tensor.random(shape: [c.x[0], c.m, oh, ow], seed: UInt64(1650 + index))
                let g = Convolution.backward(dy, x: x, weight: weight, window: c.window, groups: c.groups,
                                             needInputGradient: true, needParameterGradients: true, kernel: .depthwiseKxK)
                FiniteDifference.check(g.dx, of: {
                    Convolution.forward($0, weight: weight, bias: bias, window: c.window, groups: c.groups, kernel: .depthwiseKxK)
                }, at: x, upstream: dy, tolerance: 1e-3, "dx, \(c.name), \(level)")
                FiniteDifference.check(g.dWeight, of: {
                    Convolution.forward(x, weight: $0, bias: bias, window: c.window, groups: c.groups, kernel: .depthwiseKxK)
                }, at: weight, upstream: dy, tolerance: 1e-3, "dWeight, \(c.name), \(level)")
                let inputOnly = Convolution.backward(dy, x: x, weight: weight, window: c.window, groups: c.groups,
                                                     needInputGradient: true, needParameterGradients: false, kernel: .depthwiseKxK)
                XCTAssertEqual(inputOnly.dx!.scalars.map(\.bitPattern), g.dx!.scalars.map(\.bitPattern), "dx alone, \(c.name)")
            }
        }
    }

    /// Planes are split over threads in ranges; a range's last row is stored exactly (the rows before it may store
    /// extra lanes into the next row), so the results are the same bits for any split.
    func testResultsDoNotDependOnTheThreadCount() {
        let threads = Threading.threadCount
        defer { Threading.configure(threads: threads) }
        let cases = [Self.dw("narrow planes", [2, 96, 7, 7], Window2D(kernel: 5, pad: 2)),
                     Self.dw("ring planes", [1, 4, 96, 90], Window2D(kernel: 7, stride: 2, pad: 3))]
        for c in cases {
            let (x, weight, bias) = ConvolutionTests.tensors(c, seed: 17)
            let (oh, ow) = c.window.outputSize(inputH: c.x[2], inputW: c.x[3])
            let dy = Tensor.random(shape: [c.x[0], c.m, oh, ow], seed: 18)
            var outputs: [[UInt32]] = []
            for count in [1, 2, 3] {
                Threading.configure(threads: count)
                let y = Convolution.forward(x, weight: weight, bias: bias, window: c.window, groups: c.groups,
                                            kernel: .depthwiseKxK, epilogue: .clip(min: 0, max: 6))
                let g = Convolution.backward(dy, x: x, weight: weight, window: c.window, groups: c.groups,
                                             needInputGradient: true, needParameterGradients: true, kernel: .depthwiseKxK)
                outputs.append((y.scalars + g.dx!.scalars + g.dWeight!.scalars).map(\.bitPattern))
            }
            XCTAssertEqual(outputs[0], outputs[1], "\(c.name): 1 vs 2 threads")
            XCTAssertEqual(outputs[0], outputs[2], "\(c.name): 1 vs 3 threads")
        }
    }
}
