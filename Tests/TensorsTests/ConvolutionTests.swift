import XCTest
import Tensors

final class ConvolutionTests: XCTestCase {
    /// One test configuration: input [n,c,h,w], m filters, a window and a group count.
    struct Case {
        var name: String
        var x: [Int], m: Int, window: Window2D, groups: Int, bias = true
    }

    static let cases: [Case] = [
        Case(name: "3x3 pad 1 batch 2", x: [2, 3, 7, 9], m: 4, window: Window2D(kernel: 3, pad: 1), groups: 1),
        Case(name: "asymmetric pad, stride 2, dilation 2x1, 3x2 kernel", x: [1, 2, 9, 8], m: 3,
             window: Window2D(kernelH: 3, kernelW: 2, strideH: 2, strideW: 2, padTop: 1, padLeft: 0, padBottom: 2, padRight: 1,
                              dilationH: 2, dilationW: 1), groups: 1),
        Case(name: "stride 3x1 no bias", x: [1, 3, 11, 6], m: 2, window: Window2D(kernelH: 2, kernelW: 3, strideH: 3, strideW: 1),
             groups: 1, bias: false),
        Case(name: "groups 2, stride 2, pad 1", x: [2, 4, 7, 7], m: 6, window: Window2D(kernel: 3, stride: 2, pad: 1), groups: 2),
        Case(name: "depthwise 3x3 stride 2 pad 1", x: [2, 5, 9, 7], m: 5, window: Window2D(kernel: 3, stride: 2, pad: 1), groups: 5),
        Case(name: "depthwise dilation 2 asymmetric pad", x: [1, 3, 8, 9], m: 3,
             window: Window2D(kernelH: 3, kernelW: 3, padTop: 2, padLeft: 1, padBottom: 0, padRight: 2, dilationH: 2, dilationW: 2),
             groups: 3),
        Case(name: "depthwise multiplier 2, stride 1x2", x: [1, 2, 6, 7], m: 4,
             window: Window2D(kernelH: 3, kernelW: 3, strideH: 1, strideW: 2, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1), groups: 2),
        Case(name: "pointwise batch 2", x: [2, 5, 5, 7], m: 3, window: Window2D(kernel: 1), groups: 1),
        Case(name: "pointwise groups 2 no bias", x: [2, 4, 3, 5], m: 6, window: Window2D(kernel: 1), groups: 2, bias: false),
        Case(name: "1x1 stride 2 (im2col path)", x: [1, 3, 7, 7], m: 2, window: Window2D(kernel: 1, stride: 2), groups: 1),
        Case(name: "1x1 padded", x: [1, 2, 4, 5], m: 3, window: Window2D(kernel: 1, pad: 1), groups: 1),
    ]

    static func tensors(_ c: Case, seed: UInt64) -> (x: Tensor, weight: Tensor, bias: Tensor?) {
        let x = Tensor.random(shape: c.x, seed: seed)
        let weight = Tensor.random(shape: [c.m, c.x[1] / c.groups, c.window.kernelH, c.window.kernelW], seed: seed + 1)
        let bias = c.bias ? Tensor.random(shape: [c.m], seed: seed + 2) : nil
        return (x, weight, bias)
    }

    /// Convolution straight from the definition, accumulated in Double.
    static func naiveConvolution(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, _ win: Window2D, groups: Int) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let m = weight.shape[0], cg = c / groups, mg = m / groups
        let (oh, ow) = win.outputSize(inputH: h, inputW: w)
        var y = Tensor(shape: [n, m, oh, ow])
        for b in 0..<n {
            for o in 0..<m {
                let group = o / mg
                for i in 0..<oh {
                    for j in 0..<ow {
                        var s = Double(bias?[o] ?? 0)
                        for ci in 0..<cg {
                            for ki in 0..<win.kernelH {
                                for kj in 0..<win.kernelW {
                                    let ih = i * win.strideH - win.padTop + ki * win.dilationH
                                    let iw = j * win.strideW - win.padLeft + kj * win.dilationW
                                    if ih < 0 || ih >= h || iw < 0 || iw >= w { continue }
                                    s += Double(x[b, group * cg + ci, ih, iw]) * Double(weight[o, ci, ki, kj])
                                }
                            }
                        }
                        y[b, o, i, j] = Float(s)
                    }
                }
            }
        }
        return y
    }

    func testForwardMatchesNaiveReferenceForAllConfigurations() {
        for (index, c) in Self.cases.enumerated() {
            let (x, weight, bias) = Self.tensors(c, seed: UInt64(index * 10 + 1))
            let y = Convolution.forward(x, weight: weight, bias: bias, window: c.window, groups: c.groups)
            let expected = Self.naiveConvolution(x, weight, bias, c.window, groups: c.groups)
            XCTAssertEqual(y.shape, expected.shape, c.name)
            XCTAssertLessThan(y.relativeL2Error(to: expected), 1e-5, c.name)
            XCTAssertLessThan(y.maxAbsDifference(expected), 1e-4, c.name)
        }
    }

    func testBackwardMatchesFiniteDifferencesForAllConfigurations() {
        for (index, c) in Self.cases.enumerated() {
            let (x, weight, bias) = Self.tensors(c, seed: UInt64(index * 10 + 3))
            let y = Convolution.forward(x, weight: weight, bias: bias, window: c.window, groups: c.groups)
            let dy = Tensor.random(shape: y.shape, seed: UInt64(index * 10 + 7))
            let grads = Convolution.backward(dy, x: x, weight: weight, window: c.window, groups: c.groups,
                                             needInputGradient: true, needParameterGradients: true)
            FiniteDifference.check(grads.dx, of: { Convolution.forward($0, weight: weight, bias: bias, window: c.window, groups: c.groups) },
                                   at: x, upstream: dy, tolerance: 1e-3, "dx, \(c.name)")
            FiniteDifference.check(grads.dWeight, of: { Convolution.forward(x, weight: $0, bias: bias, window: c.window, groups: c.groups) },
                                   at: weight, upstream: dy, tolerance: 1e-3, "dWeight, \(c.name)")
            let b = bias ?? Tensor(shape: [c.m])
            FiniteDifference.check(grads.dBias, of: { Convolution.forward(x, weight: weight, bias: $0, window: c.window, groups: c.groups) },
                                   at: b, upstream: dy, tolerance: 1e-3, "dBias, \(c.name)")
        }
    }

    func testBackwardComputesOnlyTheRequestedGradients() {
        let c = Self.cases[0]
        let (x, weight, bias) = Self.tensors(c, seed: 99)
        let dy = Tensor.random(shape: Convolution.forward(x, weight: weight, bias: bias, window: c.window, groups: 1).shape, seed: 98)
        let inputOnly = Convolution.backward(dy, x: x, weight: weight, window: c.window, groups: 1,
                                             needInputGradient: true, needParameterGradients: false)
        XCTAssertNotNil(inputOnly.dx)
        XCTAssertNil(inputOnly.dWeight)
        XCTAssertNil(inputOnly.dBias)
        let parametersOnly = Convolution.backward(dy, x: x, weight: weight, window: c.window, groups: 1,
                                                  needInputGradient: false, needParameterGradients: true)
        XCTAssertNil(parametersOnly.dx)
        XCTAssertNotNil(parametersOnly.dWeight)
        XCTAssertNotNil(parametersOnly.dBias)
        let both = Convolution.backward(dy, x: x, weight: weight, window: c.window, groups: 1,
                                        needInputGradient: true, needParameterGradients: true)
        XCTAssertEqual(inputOnly.dx!.maxAbsDifference(both.dx!), 0)
        XCTAssertEqual(parametersOnly.dWeight!.maxAbsDifference(both.dWeight!), 0)
    }

    func testIm2ColThenCol2ImMultipliesEachPixelByItsWindowCount() {
        // Folding the unfolded image of ones counts how many windows cover each pixel.
        let window = Window2D(kernel: 3, stride: 2, pad: 1)
        let (c, h, w) = (2, 5, 6)
        let (oh, ow) = window.outputSize(inputH: h, inputW: w)
        let ones = [Float](repeating: 1, count: c * h * w)
        var cols = [Float](repeating: -1, count: c * 9 * oh * ow)
        var folded = [Float](repeating: 0, count: c * h * w)
        ones.withUnsafeBufferPointer { image in
            cols.withUnsafeMutableBufferPointer { Im2Col.forward(image.baseAddress!, channels: c, height: h, width: w, window: window, cols: $0.baseAddress!) }
        }
        XCTAssertEqual(cols.filter { $0 != 0 && $0 != 1 }.count, 0, "every column entry is a pixel or padding")
        cols.withUnsafeBufferPointer { colsPointer in
            folded.withUnsafeMutableBufferPointer { Im2Col.backward(colsPointer.baseAddress!, channels: c, height: h, width: w, window: window, image: $0.baseAddress!) }
        }
        for y in 0..<h {
            for x in 0..<w {
                let rows = (0..<oh).filter { $0 * 2 - 1 <= y && y <= $0 * 2 + 1 }.count
                let columns = (0..<ow).filter { $0 * 2 - 1 <= x && x <= $0 * 2 + 1 }.count
                XCTAssertEqual(folded[h * w + y * w + x], Float(rows * columns), "pixel (\(y), \(x))")
            }
        }
    }
}
