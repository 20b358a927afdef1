import Parallel
import Tensors
import XCTest

/// The grouped kernel (`Convolution.Kernel.grouped`, GroupedConvolution.swift and CKernels/GroupedBodies.h: all
/// groups' GEMMs in one threaded loop, read straight from a zero-padded copy on its pitch) against the naive
/// definition within the float32 summation bound, bit for bit against the per-group packed GEMM (the same products
/// summed in the same order), across thread counts, and its data gradient (the flipped grouped convolution of dy at
/// stride 1) against exact sums and central finite differences, at every SIMD level: 2 to 32 channels per group,
/// 1 to 32 output channels per group (every remainder of the 6-row tiles), strides 1 and 2, dilation, asymmetric
/// padding, 5x5 and 1x1 kernels, inner dimensions beyond one slice of 256, maps from 1 to 31 pixels wide, batches.
final class GroupedConvolutionTests: XCTestCase {
    typealias Case = ConvolutionTests.Case

    static let cases: [Case] = [
        Case(name: "2 per group, 3 groups, odd map", x: [1, 6, 9, 11], m: 9, window: Window2D(kernel: 3, pad: 1), groups: 3),
        Case(name: "4 per group, s2 p1, batch 2", x: [2, 8, 13, 10], m: 8, window: Window2D(kernel: 3, stride: 2, pad: 1), groups: 2),
        Case(name: "16 per group on 7x7 (RegNet's last stage)", x: [1, 32, 7, 7], m: 32, window: Window2D(kernel: 3, pad: 1),
             groups: 2),
        Case(name: "16 per group, s2 to 7x7", x: [1, 48, 14, 14], m: 48, window: Window2D(kernel: 3, stride: 2, pad: 1), groups: 3),
        Case(name: "32 per group (K = 288: two slices), no bias", x: [1, 64, 5, 6], m: 64, window: Window2D(kernel: 3, pad: 1),
             groups: 2, bias: false),
        Case(name: "4 per group, 930 positions (several row blocks)", x: [1, 8, 30, 31], m: 8, window: Window2D(kernel: 3, pad: 1),
             groups: 2),
        Case(name: "7 outputs per group (6 + 1 rows)", x: [1, 6, 6, 5], m: 14, window: Window2D(kernel: 3, pad: 1), groups: 2),
        Case(name: "5 outputs per group, 3 per group", x: [2, 9, 8, 9], m: 15, window: Window2D(kernel: 3, stride: 2, pad: 1), groups: 3),
        Case(name: "one output per group of 2", x: [1, 8, 6, 7], m: 4, window: Window2D(kernel: 3, pad: 1), groups: 4),
        Case(name: "1-pixel-wide map", x: [1, 4, 9, 1], m: 4, window: Window2D(kernel: 3, pad: 1), groups: 2),
        Case(name: "dilation 2, asymmetric pad", x: [1, 6, 11, 12], m: 6,
             window: Window2D(kernelH: 3, kernelW: 3, padTop: 2, padLeft: 1, padBottom: 0, padRight: 2, dilationH: 2,
                              dilationW: 2), groups: 3),
        Case(name: "5x5 p2, 3 per group", x: [1, 6, 10, 9], m: 4, window: Window2D(kernel: 5, pad: 2), groups: 2),
        Case(name: "3x3 unpadded (dx pads by 2)", x: [1, 8, 9, 8], m: 8, window: Window2D(kernel: 3), groups: 4),
        Case(name: "pointwise, 2 per group, batch 2", x: [2, 8, 5, 7], m: 12, window: Window2D(kernel: 1), groups: 4),
        Case(name: "1x1 stride 2", x: [1, 8, 9, 9], m: 6, window: Window2D(kernel: 1, stride: 2), groups: 2),
        Case(name: "pad beyond the kernel's reach (dx on the packed path)", x: [1, 4, 5, 6], m: 4,
             window: Window2D(kernelH: 3, kernelW: 3, padTop: 3, padLeft: 1, padBottom: 1, padRight: 1), groups: 2),
    ]

    static let epilogues: [Activation?] = [nil] + ConvolutionEpilogueTests.epilogues.map { Optional($0) } + [.tanh]


    func testGroupedLayersOfResNeXtAndRegNetChooseTheGroupedKernel() {
        func chosen(_ c: Int, _ size: Int, stride: Int, groups: Int) -> Convolution.Kernel {
            Convolution.kernel(x: [1, c, size, size], weight: [c, c / groups, 3, 3], window: Window2D(kernel: 3, stride: stride, pad: 1),
                               groups: groups)
        }
        // ResNeXt-50 32x4d: 4, 8, 16, 32 channels per group; RegNetY-800MF: 16 per group, 4 to 49 groups.
        XCTAssertEqual(chosen(128, 56, stride: 1, groups: 32), .grouped)
        XCTAssertEqual(chosen(256, 56, stride: 2, groups: 32), .grouped)
        XCTAssertEqual(chosen(512, 14, stride: 1, groups: 32), .grouped)
        XCTAssertEqual(chosen(1024, 7, stride: 1, groups: 32), .grouped)
        XCTAssertEqual(chosen(64, 112, stride: 2, groups: 4), .grouped)
        XCTAssertEqual(chosen(784, 7, stride: 1, groups: 49), .grouped)
        // Depthwise layers keep their own kernels, ungrouped ones theirs, and very deep groups (K > 1280) OpenBLAS.
        XCTAssertEqual(chosen(32, 56, stride: 1, groups: 32), .depthwise3x3)
        XCTAssertNotEqual(chosen(64, 56, stride: 1, groups: 1), .grouped)
        XCTAssertEqual(chosen(512, 14, stride: 1, groups: 2), .gemm)
        for c in Self.cases {
            let weight = [c.m, c.x[1] / c.groups, c.window.kernelH, c.window.kernelW]
            XCTAssertEqual(Convolution.kernel(x: c.x, weight: weight, window: c.window, groups: c.groups), .grouped, c.name)
        }
    }

    /// Within γ(K+2)·Σ|terms| of the exact sum (as `ImplicitGemmConvolutionTests`), and the same bits as the
    /// per-group packed GEMM, for every epilogue (tanh applied after the kernel).
    func testForwardMatchesTheNaiveConvolutionAndThePackedKernelBitForBitAtEveryLevel() {
        forEachSIMDLevel { level in
            for (index, c) in Self.cases.enumerated() {
                let (x, weight, bias, exact, magnitude, factor) = ImplicitGemmConvolutionTests.reference(c, seed: UInt64(2100 + index * 10))
                for epilogue in Self.epilogues {
                    let y = Convolution.forward(x, weight: weight, bias: bias, window: c.window, groups: c.groups,
                                                kernel: .grouped, epilogue: epilogue)
                    let packed = Convolution.forward(x, weight: weight, bias: bias, window: c.window, groups: c.groups,
                                                     kernel: .packed, epilogue: epilogue)
                    XCTAssertEqual(y.shape, exact.shape, c.name)
                    guard y.shape == exact.shape else { continue }
                    XCTAssertEqual(y.scalars.map(\.bitPattern), packed.scalars.map(\.bitPattern),
                                   "\(c.name), \(String(describing: epilogue)), \(level): grouped vs packed")
                    // Only the epilogues that move values apart by no more than their inputs keep the bound.
                    let contracting: [Activation] = [.relu, .clip(min: 0, max: 6), .clip(min: -0.5, max: 0.25), .leakyRelu(alpha: 0.1)]
                    if let epilogue, !contracting.contains(epilogue) { continue }
                    let expected = epilogue.map { $0.forward(exact) } ?? exact
                    ImplicitGemmConvolutionTests.assertWithinBound(y.scalars, expected.scalars, magnitude.scalars, factor: factor,
                                                                   "\(c.name), \(String(describing: epilogue)), \(level)")
                }
            }
        }
    }

    /// Tasks are cut by shape only and each element is summed in a fixed order: the same bytes on 1, 2 and 3 threads,
    /// forward (direct and pointwise paths) and data gradient.
    func testResultsDoNotDependOnTheThreadCount() {
        let threads = Threading.threadCount
        defer { Threading.configure(threads: threads) }
        let shapes = [Case(name: "RegNet-like 56x56 s2", x: [1, 32, 45, 47], m: 32, window: Window2D(kernel: 3, stride: 2, pad: 1), groups: 2),
                      Case(name: "ResNeXt-like 4 per group", x: [1, 64, 29, 30], m: 64, window: Window2D(kernel: 3, pad: 1), groups: 16),
                      Case(name: "pointwise", x: [1, 32, 23, 21], m: 48, window: Window2D(kernel: 1), groups: 4)]
        for (index, c) in shapes.enumerated() {
            let (x, weight, bias) = ConvolutionTests.tensors(c, seed: UInt64(2300 + index))
            let (oh, ow) = c.window.outputSize(inputH: c.x[2], inputW: c.x[3])
            let dy = Tensor.random(shape: [c.x[0], c.m, oh, ow], seed: UInt64(2350 + index))
            func run() -> [UInt32] {
                let y = Convolution.forward(x, weight: weight, bias: bias, window: c.window, groups: c.groups, kernel: .grouped,
                                            epilogue: .relu)
                let dx = Convolution.backward(dy, x: x, weight: weight, window: c.window, groups: c.groups,
                                              needInputGradient: true, needParameterGradients: false, kernel: .grouped).dx!
                return (y.scalars + dx.scalars).map(\.bitPattern)
            }
            forEachSIMDLevel { level in
                Threading.configure(threads: 1)
                let one = run()
                for count in [2, 3] {
                    Threading.configure(threads: count)
                    XCTAssertEqual(run(), one, "\(c.name): \(count) threads vs 1, \(level)")
                }
            }
        }
    }

    /// Exact (Double) gradients of Σ dy·y with the sums of magnitudes of their terms.
    static func exactGradients(_ x: Tensor, _ weight: Tensor, _ dy: Tensor, _ c: Case)
        -> (dx: [Double], dxMagnitude: [Double], dW: [Double], dWMagnitude: [Double]) {
        let (n, ch, h, w) = (c.x[0], c.x[1], c.x[2], c.x[3])
        let win = c.window, cg = ch / c.groups, mg = c.m / c.groups
        let (oh, ow) = win.outputSize(inputH: h, inputW: w)
        var dx = [Double](repeating: 0, count: x.count), dxMagnitude = dx
        var dW = [Double](repeating: 0, count: weight.count), dWMagnitude = dW
        for b in 0..<n {
            for o in 0..<c.m {
                let group = o / mg
                for i in 0..<oh {
                    for j in 0..<ow {
                        let gradient = Double(dy[b, o, i, j])
                        for ci in 0..<cg {
                            for ki in 0..<win.kernelH {
                                for kj in 0..<win.kernelW {
                                    let ih = i * win.strideH - win.padTop + ki * win.dilationH
                                    let iw = j * win.strideW - win.padLeft + kj * win.dilationW
                                    if ih < 0 || ih >= h || iw < 0 || iw >= w { continue }
                                    let xi = ((b * ch + group * cg + ci) * h + ih) * w + iw
                                    let wi = ((o * cg + ci) * win.kernelH + ki) * win.kernelW + kj
                                    let (xv, wv) = (Double(x[flat: xi]), Double(weight[flat: wi]))
                                    dx[xi] += wv * gradient
                                    dxMagnitude[xi] += abs(wv * gradient)
                                    dW[wi] += xv * gradient
                                    dWMagnitude[wi] += abs(xv * gradient)
                                }
                            }
                        }
                    }
                }
            }
        }
        return (dx, dxMagnitude, dW, dWMagnitude)
    }

    /// dx within γ(M/g·kH·kW + 1)·Σ|terms| of the exact sums, dWeight within γ(N·OH·OW + 1)·Σ|terms| (summed in
    /// float32 by any order), dBias within the same bound over its N·OH·OW terms.
    func testGradientsStayWithinTheSummationBoundAtEveryLevel() {
        forEachSIMDLevel { level in
            for (index, c) in Self.cases.enumerated() {
                let (x, weight, bias) = ConvolutionTests.tensors(c, seed: UInt64(2500 + index * 10))
                let (oh, ow) = c.window.outputSize(inputH: c.x[2], inputW: c.x[3])
                let dy = Tensor.random(shape: [c.x[0], c.m, oh, ow], seed: UInt64(2505 + index * 10))
                let e = Self.exactGradients(x, weight, dy, c)
                let g = Convolution.backward(dy, x: x, weight: weight, window: c.window, groups: c.groups,
                                             needInputGradient: true, needParameterGradients: bias != nil, kernel: .grouped)
                let taps = c.window.kernelH * c.window.kernelW, positions = c.x[0] * oh * ow
                let dxBound = SIMDKernelTests.gamma(c.m / c.groups * taps + 1) * (1 + 0x1p-23)
                for i in 0..<x.count where !(abs(Double(g.dx![flat: i]) - e.dx[i]) <= dxBound * e.dxMagnitude[i] + 1e-30) {
                    XCTFail("\(c.name), \(level): dx[\(i)] = \(g.dx![flat: i]), expected \(e.dx[i]) ± \(dxBound * e.dxMagnitude[i])")
                    break
                }
                guard bias != nil else { continue }
                let dWBound = SIMDKernelTests.gamma(positions + 1) * (1 + 0x1p-23)
                for i in 0..<weight.count where !(abs(Double(g.dWeight![flat: i]) - e.dW[i]) <= dWBound * e.dWMagnitude[i] + 1e-30) {
                    XCTFail("\(c.name), \(level): dW[\(i)] = \(g.dWeight![flat: i]), expected \(e.dW[i]) ± \(dWBound * e.dWMagnitude[i])")
                    break
                }
                for o in 0..<c.m {
                    var sum = 0.0, magnitude = 0.0
                    for b in 0..<c.x[0] { for i in 0..<oh { for j in 0..<ow { sum += Double(dy[b, o, i, j]); magnitude += abs(Double(dy[b, o, i, j])) } } }
                    XCTAssertLessThanOrEqual(abs(Double(g.dBias![o]) - sum), dWBound * magnitude + 1e-30, "\(c.name), \(level): dBias[\(o)]")
                }
            }
        }
    }

    /// Central differences of Σ dy·y in x and in the weights. The convolution is linear in each, so the quotient is
    /// exact up to the rounding of the two losses (about 1e-7·Σ|terms| / eps with eps = 1e-2): 1e-3 is ample.
    func testGradientsMatchCentralFiniteDifferences() {
        let small = Self.cases.filter { $0.x.reduce(1, *) <= 800 && $0.x[1] / $0.groups <= 16 }
        XCTAssertGreaterThanOrEqual(small.count, 6)
        forEachSIMDLevel { level in
            for (index, c) in small.enumerated() {
                let (x, weight, bias) = ConvolutionTests.tensors(c, seed: UInt64(2700 + index * 10))
                let (oh, ow) = c.window.outputSize(inputH: c.x[2], inputW: c.x[3])
                let dy = Tensor.random(shape: [c.x[0], c.m, oh, ow], seed: UInt64(2705 + index * 10))
                let g = Convolution.backward(dy, x: x, weight: weight, window: c.window, groups: c.groups,
                                             needInputGradient: true, needParameterGradients: true, kernel: .grouped)
                FiniteDifference.check(g.dx, of: { Convolution.forward($0, weight: weight, bias: bias, window: c.window,
                                                                       groups: c.groups, kernel: .grouped) },
                                       at: x, upstream: dy, tolerance: 1e-3, "dx, \(c.name), \(level)")
                FiniteDifference.check(g.dWeight, of: { Convolution.forward(x, weight: $0, bias: bias, window: c.window,
                                                                            groups: c.groups, kernel: .grouped) },
                                       at: weight, upstream: dy, tolerance: 1e-3, "dW, \(c.name), \(level)")
            }
        }
    }
}
