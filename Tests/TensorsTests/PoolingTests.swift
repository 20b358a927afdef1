import XCTest
import Tensors

final class PoolingTests: XCTestCase {
    static let windows: [(name: String, x: [Int], window: Window2D)] = [
        ("3x3 stride 2 ceil, odd input", [2, 3, 7, 7], Window2D(kernel: 3, stride: 2, ceilMode: true)),
        ("3x3 stride 2 ceil, even input, pad 1", [1, 2, 8, 8], Window2D(kernel: 3, stride: 2, pad: 1, ceilMode: true)),
        ("3x3 stride 1 pad 1", [2, 2, 5, 6], Window2D(kernel: 3, pad: 1)),
        ("2x3 stride 2x1 asymmetric pads", [1, 3, 7, 5],
         Window2D(kernelH: 2, kernelW: 3, strideH: 2, strideW: 1, padTop: 0, padLeft: 1, padBottom: 1, padRight: 2)),
        ("2x2 stride 2 dilation 2 pad 1", [1, 2, 9, 8], Window2D(kernel: 2, stride: 2, pad: 1, dilation: 2)),
        ("2x2 stride 2 ceil, odd input", [2, 1, 5, 7], Window2D(kernel: 2, stride: 2, ceilMode: true)),
        // ceil_mode with a window that overhangs the (padded) input by less than a stride: one output per axis.
        ("3x3 stride 2 ceil, window larger than the 2x2 input", [1, 2, 2, 2], Window2D(kernel: 3, stride: 2, ceilMode: true)),
        ("4x4 stride 3 pad 1 ceil, window past the padded 2x3 input", [2, 1, 2, 3],
         Window2D(kernelH: 4, kernelW: 4, strideH: 3, strideW: 3, padTop: 1, padLeft: 1, padBottom: 0, padRight: 0, ceilMode: true)),
    ]

    /// ONNX: out = floor(span / stride + 1), or ceil(span / stride + 1) with ceil_mode, span = input + pads -
    /// effective kernel (negative spans included); with ceil_mode a window that would start in the right padding is
    /// dropped. Written in Double to be independent of the integer arithmetic under test.
    static func onnxOutputLength(input: Int, kernel: Int, stride: Int, padBegin: Int, padEnd: Int, ceil: Bool) -> Int {
        let ratio = Double(input + padBegin + padEnd - kernel) / Double(stride) + 1
        var out = max(0, Int(ceil ? ratio.rounded(.up) : ratio.rounded(.down)))
        if ceil && out > 0 && (out - 1) * stride >= input + padBegin { out -= 1 }
        return out
    }

    func testOutputSizeFollowsTheONNXFormulaIncludingWindowsLargerThanTheInput() {
        for input in 1...9 {
            for kernel in 1...6 {
                for stride in 1...4 {
                    for padBegin in 0..<kernel {
                        for padEnd in [0, padBegin, kernel - 1] {
                            for ceil in [false, true] {
                                let window = Window2D(kernelH: 1, kernelW: kernel, strideW: stride, padLeft: padBegin, padRight: padEnd, ceilMode: ceil)
                                XCTAssertEqual(window.outputSize(inputH: 1, inputW: input).width,
                                               Self.onnxOutputLength(input: input, kernel: kernel, stride: stride, padBegin: padBegin, padEnd: padEnd, ceil: ceil),
                                               "input \(input), \(window)")
                            }
                        }
                    }
                }
            }
        }
    }

    /// Sizes onnxruntime 1.32 gives for MaxPool with ceil_mode=1 on an H x W input (checked by running it).
    func testCeilModeOutputSizesAreThoseOfOnnxruntime() {
        let cases: [(h: Int, w: Int, window: Window2D, expected: Int)] = [
            (2, 2, Window2D(kernel: 3, stride: 2, ceilMode: true), 1),
            (1, 1, Window2D(kernel: 2, stride: 2, ceilMode: true), 1),
            (1, 1, Window2D(kernel: 3, stride: 2, ceilMode: true), 0),
            (2, 2, Window2D(kernel: 3, stride: 3, ceilMode: true), 1),
            (2, 2, Window2D(kernelH: 4, kernelW: 4, strideH: 3, strideW: 3, padTop: 1, padLeft: 1, padBottom: 0, padRight: 0, ceilMode: true), 1),
            (112, 112, Window2D(kernel: 3, stride: 2, ceilMode: true), 56),
            (55, 55, Window2D(kernel: 3, stride: 2, ceilMode: true), 27),
        ]
        for c in cases {
            let size = c.window.outputSize(inputH: c.h, inputW: c.w)
            XCTAssertEqual(size.height, c.expected, "\(c.h)x\(c.w) \(c.window)")
            XCTAssertEqual(size.width, c.expected, "\(c.h)x\(c.w) \(c.window)")
        }
    }

    /// Distinct values spaced 0.05 apart in random order, so that a max never ties even after a finite-difference nudge.
    static func distinctValues(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = SplitMix64(seed: seed)
        let count = shape.reduce(1, *)
        let order = Array(0..<count).shuffled(using: &rng)
        return Tensor(shape: shape, scalars: order.map { (Float($0) - Float(count) / 2) * 0.05 })
    }

    static func naiveMaxPool(_ x: Tensor, _ win: Window2D) -> (Tensor, [Int32]) {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = win.outputSize(inputH: h, inputW: w)
        var y = Tensor(shape: [n, c, oh, ow])
        var argmax = [Int32]()
        for b in 0..<n {
            for ch in 0..<c {
                for i in 0..<oh {
                    for j in 0..<ow {
                        var best = -Float.infinity, arg = -1
                        for ki in 0..<win.kernelH {
                            for kj in 0..<win.kernelW {
                                let ih = i * win.strideH - win.padTop + ki * win.dilationH
                                let iw = j * win.strideW - win.padLeft + kj * win.dilationW
                                if ih < 0 || ih >= h || iw < 0 || iw >= w { continue }
                                if x[b, ch, ih, iw] > best { best = x[b, ch, ih, iw]; arg = ((b * c + ch) * h + ih) * w + iw }
                            }
                        }
                        y[b, ch, i, j] = best
                        argmax.append(Int32(arg))
                    }
                }
            }
        }
        return (y, argmax)
    }

    static func naiveAveragePool(_ x: Tensor, _ win: Window2D, countIncludePad: Bool) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = win.outputSize(inputH: h, inputW: w)
        var y = Tensor(shape: [n, c, oh, ow])
        for b in 0..<n {
            for ch in 0..<c {
                for i in 0..<oh {
                    for j in 0..<ow {
                        var s = 0.0, real = 0, padded = 0
                        for ki in 0..<win.kernelH {
                            for kj in 0..<win.kernelW {
                                let ih = i * win.strideH - win.padTop + ki * win.dilationH
                                let iw = j * win.strideW - win.padLeft + kj * win.dilationW
                                if ih >= -win.padTop && ih < h + win.padBottom && iw >= -win.padLeft && iw < w + win.padRight { padded += 1 }
                                if ih < 0 || ih >= h || iw < 0 || iw >= w { continue }
                                s += Double(x[b, ch, ih, iw])
                                real += 1
                            }
                        }
                        y[b, ch, i, j] = Float(s / Double(countIncludePad ? padded : real))
                    }
                }
            }
        }
        return y
    }

    /// dx that routes every dy to the naive reference's argmax (the first maximum in scan order).
    static func naiveMaxPoolGradient(_ dy: Tensor, argmax: [Int32], inputShape: [Int]) -> Tensor {
        var dx = Tensor(shape: inputShape)
        for (i, winner) in argmax.enumerated() where winner >= 0 { dx[flat: Int(winner)] += dy[flat: i] }
        return dx
    }

    func testMaxPoolMatchesNaiveReferenceAndRoutesGradientsToTheNaiveArgmax() {
        forEachSIMDLevel { _ in
            var windows = Self.windows
            windows.append(("3x3 stride 2 ceil, large enough to run in parallel", [2, 16, 32, 32], Window2D(kernel: 3, stride: 2, ceilMode: true)))
            // Rows longer than the widest vector (16 floats) with a partial tail, stride 1 and 2.
            windows.append(("3x3 stride 1 pad 1, 37 wide", [1, 2, 5, 37], Window2D(kernel: 3, pad: 1)))
            windows.append(("3x3 stride 2 pad 1, 45 wide", [1, 2, 6, 45], Window2D(kernel: 3, stride: 2, pad: 1)))
            // Stride 2 splits columns into phases while taking the column max: an even left pad, and SqueezeNet's
            // pool1 width (several 2·VL blocks, then a partial one).
            windows.append(("3x3 stride 2 pad 2 ceil, 50 wide", [1, 2, 7, 50], Window2D(kernel: 3, stride: 2, pad: 2, ceilMode: true)))
            windows.append(("3x3 stride 2 ceil, 111 wide", [1, 2, 9, 111], Window2D(kernel: 3, stride: 2, ceilMode: true)))
            windows += Self.widthKeepingWindows
            for (index, c) in windows.enumerated() {
                let x = Tensor.random(shape: c.x, seed: UInt64(index + 1))
                let y = MaxPool.forward(x, window: c.window)
                let (expected, expectedArgmax) = Self.naiveMaxPool(x, c.window)
                XCTAssertEqual(y.shape, expected.shape, c.name)
                XCTAssertEqual(y.maxAbsDifference(expected), 0, c.name)
                let dy = Tensor.random(shape: y.shape, seed: UInt64(index + 81))
                let dx = MaxPool.backward(dy, x: x, y: y, window: c.window)
                // Outputs sharing a winner add up in another order than the reference: allow rounding.
                XCTAssertLessThan(dx.maxAbsDifference(Self.naiveMaxPoolGradient(dy, argmax: expectedArgmax, inputShape: x.shape)), 1e-5, c.name)
            }
        }
    }

    func testMaxPoolNeverLetsPaddingWinOverNegativeInputs() {
        forEachSIMDLevel { _ in
            let x = Tensor.random(shape: [1, 2, 5, 5], in: -3 ... -1, seed: 5)
            let window = Window2D(kernel: 3, stride: 2, pad: 1)
            let y = MaxPool.forward(x, window: window)
            XCTAssertTrue(y.scalars.allSatisfy { $0 < -0.99 }, "padding value leaked into \(y)")
            // Every output's gradient reaches a real input.
            let dx = MaxPool.backward(Tensor(shape: y.shape, repeating: 1), x: x, y: y, window: window)
            XCTAssertEqual(dx.sum(), Double(y.count))
        }
    }

    func testMaxPoolOfMinusInfinityInputsReturnsMinusInfinityAndRoutesToTheFirstRealElement() {
        forEachSIMDLevel { _ in
            let x = Tensor(shape: [1, 1, 4, 4], repeating: -.infinity)
            let window = Window2D(kernel: 2, stride: 2, pad: 1)
            let y = MaxPool.forward(x, window: window)
            XCTAssertTrue(y.scalars.allSatisfy { $0 == -.infinity })
            let dy = Tensor(shape: y.shape, scalars: (1...9).map(Float.init))
            let dx = MaxPool.backward(dy, x: x, y: y, window: window)
            var expected = [Float](repeating: 0, count: 16)
            for (i, winner) in [0, 1, 3, 4, 5, 7, 12, 13, 15].enumerated() { expected[winner] = Float(i + 1) }
            XCTAssertEqual(dx.scalars, expected)
        }
    }

    func testMaxPoolTiesGoToTheFirstMaximumInScanOrder() {
        forEachSIMDLevel { _ in
            // Ones with a few repeated twos: windows holding several equal maxima must pick the first, row by row.
            var x = Tensor(shape: [1, 1, 5, 6], repeating: 1)
            for (i, j) in [(0, 1), (0, 2), (1, 0), (2, 3), (3, 2), (3, 3), (4, 5)] { x[0, 0, i, j] = 2 }
            for window in [Window2D(kernel: 3, pad: 1), Window2D(kernel: 3, stride: 2, ceilMode: true), Window2D(kernel: 2, stride: 1)] {
                let y = MaxPool.forward(x, window: window)
                let (expected, argmax) = Self.naiveMaxPool(x, window)
                XCTAssertEqual(y.scalars, expected.scalars, "\(window)")
                let dy = Tensor.random(shape: y.shape, seed: 91)
                let dx = MaxPool.backward(dy, x: x, y: y, window: window)
                XCTAssertLessThan(dx.maxAbsDifference(Self.naiveMaxPoolGradient(dy, argmax: argmax, inputShape: x.shape)), 1e-5, "\(window)")
            }
        }
    }

    func testMaxPoolWindowOfPaddingOnlyYieldsZeroAndNoGradient() {
        forEachSIMDLevel { _ in
            // A 1x1 window with pad 1: the border outputs see only padding.
            let x = Tensor.random(shape: [1, 1, 2, 2], in: -3 ... -1, seed: 7)
            let window = Window2D(kernel: 1, pad: 1)
            let y = MaxPool.forward(x, window: window)
            XCTAssertEqual(y.shape, [1, 1, 4, 4])
            for i in 0..<4 {
                for j in 0..<4 {
                    let inside = (1...2).contains(i) && (1...2).contains(j)
                    XCTAssertEqual(y[0, 0, i, j], inside ? x[0, 0, i - 1, j - 1] : 0)
                }
            }
            let dx = MaxPool.backward(Tensor(shape: y.shape, repeating: 1), x: x, y: y, window: window)
            XCTAssertEqual(dx.scalars, [1, 1, 1, 1])
        }
    }

    func testMaxPoolBackwardMatchesFiniteDifferences() {
        forEachSIMDLevel { _ in
            for (index, c) in (Self.windows + Self.widthKeepingWindows).enumerated() {
                let x = Self.distinctValues(c.x, seed: UInt64(index + 11))
                let y = MaxPool.forward(x, window: c.window)
                let dy = Tensor.random(shape: y.shape, seed: UInt64(index + 21))
                let dx = MaxPool.backward(dy, x: x, y: y, window: c.window)
                FiniteDifference.check(dx, of: { MaxPool.forward($0, window: c.window) }, at: x, upstream: dy, tolerance: 1e-3, c.name)
            }
        }
    }

    /// Stride-1 windows that keep the width (pad_left + pad_right = kernel_w - 1), which the kernel runs as flat
    /// passes over bands of rows: planes taller than one band (2048 floats), asymmetric pads, no left pad, a
    /// one-column kernel, and planes narrower than a vector.
    static let widthKeepingWindows: [(name: String, x: [Int], window: Window2D)] = [
        ("3x3 stride 1 pad 1, 150 rows (several bands)", [1, 2, 150, 20], Window2D(kernel: 3, pad: 1)),
        ("4x4 stride 1 pads 2,1,1,2", [2, 2, 9, 11],
         Window2D(kernelH: 4, kernelW: 4, padTop: 2, padLeft: 1, padBottom: 1, padRight: 2)),
        ("2x2 stride 1 pads 0,0,1,1", [1, 3, 6, 17], Window2D(kernelH: 2, kernelW: 2, padBottom: 1, padRight: 1)),
        ("3x1 stride 1 pad 1 rows only", [1, 2, 7, 9], Window2D(kernelH: 3, kernelW: 1, padTop: 1, padBottom: 1)),
        ("3x3 stride 1 pad 1, 3 wide", [2, 3, 4, 3], Window2D(kernel: 3, pad: 1)),
        ("5x5 stride 1 pad 2, 2x2 input", [1, 2, 2, 2], Window2D(kernel: 5, pad: 2)),
        ("3x3 stride 1 no pad (narrows: the general path)", [1, 2, 6, 19], Window2D(kernel: 3)),
    ]

    /// The scan order the kernels promise, written out: per window, the column maximum over its input rows in
    /// order, then the row maximum over the taps in order with padding as -inf, each step `v > m ? v : m`; a window
    /// without input is 0. With NaN, infinities and signed zeros the result depends on that order, and every path
    /// (flat bands for width-keeping windows, padded rows otherwise) must keep it.
    static func scanOrderMaxPool(_ x: Tensor, _ win: Window2D) -> [UInt32] {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = win.outputSize(inputH: h, inputW: w)
        func step(_ v: Float, _ m: Float) -> Float { v > m ? v : m }
        var out: [UInt32] = []
        for plane in 0..<(n * c) {
            for i in 0..<oh {
                let rows = (0..<win.kernelH).map { i * win.strideH - win.padTop + $0 * win.dilationH }.filter { $0 >= 0 && $0 < h }
                for j in 0..<ow {
                    let taps = (0..<win.kernelW).map { j * win.strideW - win.padLeft + $0 * win.dilationW }
                    if rows.isEmpty || !taps.contains(where: { $0 >= 0 && $0 < w }) { out.append(Float(0).bitPattern); continue }
                    func column(_ col: Int) -> Float {
                        guard col >= 0 && col < w else { return -.infinity }
                        var m = x[flat: (plane * h + rows[0]) * w + col]
                        for r in rows.dropFirst() { m = step(x[flat: (plane * h + r) * w + col], m) }
                        return m
                    }
                    var m = column(taps[0])
                    for t in taps.dropFirst() { m = step(column(t), m) }
                    out.append(m.bitPattern)
                }
            }
        }
        return out
    }

    func testMaxPoolKeepsItsScanOrderWithNaNInfinitiesAndSignedZerosAtEveryLevel() {
        let specials: [Float] = [.nan, .infinity, -.infinity, 0, -0.0, 1, -1]
        var windows = Self.windows + Self.widthKeepingWindows
        windows.append(("3x3 stride 2 ceil, 28 wide", [1, 2, 9, 28], Window2D(kernel: 3, stride: 2, ceilMode: true)))
        // 3x3 stride 2 gathers each input's gradient from its outputs' winning taps: narrow to wide rows, pads 0-2.
        for width in [1, 2, 5, 16, 33, 45] {
            windows.append(("3x3 stride 2 pad \(width % 3), \(width) wide", [2, 2, width % 4 + 3, width],
                            Window2D(kernel: 3, stride: 2, pad: width % 3, ceilMode: width % 2 == 1)))
        }
        for (index, c) in windows.enumerated() {
            var rng = SplitMix64(seed: UInt64(900 + index))
            let count = c.x.reduce(1, *)
            let x = Tensor(shape: c.x, scalars: (0..<count).map { _ in specials[Int(rng.next() % UInt64(specials.count))] })
            let want = Self.scanOrderMaxPool(x, c.window)
            forEachSIMDLevel { level in
                XCTAssertEqual(MaxPool.forward(x, window: c.window).scalars.map(\.bitPattern), want, "\(c.name) \(level)")
            }
        }
    }

    /// The backward the kernels promise, written out: outputs in row-major order, each dy added to the first input
    /// element of its window (row-major window order, padding skipped) that equals y; no element equal, no gradient.
    static func scanOrderMaxPoolGradient(_ dy: Tensor, x: Tensor, y: Tensor, _ win: Window2D) -> [UInt32] {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = win.outputSize(inputH: h, inputW: w)
        var dx = [Float](repeating: 0, count: x.count)
        for plane in 0..<(n * c) {
            for i in 0..<oh {
                for j in 0..<ow {
                    let o = (plane * oh + i) * ow + j
                    search: for ki in 0..<win.kernelH {
                        for kj in 0..<win.kernelW {
                            let ih = i * win.strideH - win.padTop + ki * win.dilationH
                            let iw = j * win.strideW - win.padLeft + kj * win.dilationW
                            guard ih >= 0 && ih < h && iw >= 0 && iw < w else { continue }
                            let e = (plane * h + ih) * w + iw
                            if x[flat: e] == y[flat: o] { dx[e] += dy[flat: o]; break search }
                        }
                    }
                }
            }
        }
        return dx.map(\.bitPattern)
    }

    /// Ties everywhere (a handful of values), NaN, infinities and signed zeros in x and dy (dy without NaN, whose
    /// payloads would depend on operand order), on every window shape and on GoogLeNet's inception pools (3x3
    /// stride 1 pad 1) at widths around the vector widths: the gradient's bits are the scan order's at every level.
    func testMaxPoolBackwardKeepsItsScanOrderWithTiesNaNInfinitiesAndSignedZerosAtEveryLevel() {
        let specials: [Float] = [.nan, .infinity, -.infinity, 0, -0.0, 1, -1, 1, 2]
        let upstream: [Float] = [0, -0.0, .infinity, -.infinity, 0.1, -0.3, 1e-8, 3e7, 1, 0.7]
        var windows = Self.windows + Self.widthKeepingWindows
        windows.append(("3x3 stride 2 ceil, 28 wide", [1, 2, 9, 28], Window2D(kernel: 3, stride: 2, ceilMode: true)))
        for width in [1, 2, 3, 4, 7, 8, 9, 14, 15, 16, 17, 28, 31, 33] {
            windows.append(("3x3 stride 1 pad 1, \(width) wide", [1, 3, width % 5 + 3, width], Window2D(kernel: 3, pad: 1)))
        }
        windows.append(("3x3 stride 1 pad 1, 14x14, 20 planes", [2, 10, 14, 14], Window2D(kernel: 3, pad: 1)))
        windows.append(("5x5 stride 1 pads 1,3,3,1", [1, 2, 6, 13],
                        Window2D(kernelH: 5, kernelW: 5, padTop: 1, padLeft: 3, padBottom: 3, padRight: 1)))
        windows.append(("3x2 stride 1 pads 2,0,0,1, taller output", [1, 2, 4, 9],
                        Window2D(kernelH: 3, kernelW: 2, padTop: 2, padLeft: 0, padBottom: 2, padRight: 1)))
        for (index, c) in windows.enumerated() {
            var rng = SplitMix64(seed: UInt64(1900 + index))
            let count = c.x.reduce(1, *)
            let x = Tensor(shape: c.x, scalars: (0..<count).map { _ in specials[Int(rng.next() % UInt64(specials.count))] })
            let y = MaxPool.forward(x, window: c.window)
            let dy = Tensor(shape: y.shape, scalars: (0..<y.count).map { _ in upstream[Int(rng.next() % UInt64(upstream.count))] })
            let want = Self.scanOrderMaxPoolGradient(dy, x: x, y: y, c.window)
            forEachSIMDLevel { level in
                let dx = MaxPool.backward(dy, x: x, y: y, window: c.window)
                XCTAssertEqual(dx.scalars.map(\.bitPattern), want, "\(c.name) \(level)")
            }
        }
    }

    func testAveragePoolMatchesNaiveReferenceBothPaddingCounts() {
        var windows = Self.windows
        windows.append(("3x3 stride 2 pad 1 dilation 2 ceil", [1, 2, 9, 10], Window2D(kernel: 3, stride: 2, pad: 1, dilation: 2, ceilMode: true)))
        for (index, c) in windows.enumerated() {
            for includePad in [false, true] {
                let x = Tensor.random(shape: c.x, seed: UInt64(index + 31))
                let y = AveragePool.forward(x, window: c.window, countIncludePad: includePad)
                let expected = Self.naiveAveragePool(x, c.window, countIncludePad: includePad)
                XCTAssertEqual(y.shape, expected.shape, c.name)
                XCTAssertLessThan(y.maxAbsDifference(expected), 1e-5, "\(c.name), countIncludePad \(includePad)")
            }
        }
    }

    /// Wide rows take the eight-at-once paths: their sums run in the same order as one output at a time (the real
    /// rows added column by column, top to bottom, then the real taps across, left to right), so the result is bit
    /// for bit a Float sum in that order divided by the divisor.
    func testAveragePoolVectorRowsGiveTheBitsOfAWindowOrderFloatSum() {
        let cases: [(String, [Int], Window2D)] = [
            ("3x3 stride 1 pad 1 (Inception's branch pool)", [1, 3, 6, 37], Window2D(kernel: 3, pad: 1)),
            ("3x3 stride 1 no pad", [2, 2, 5, 27], Window2D(kernel: 3)),
            ("5x5 stride 2x1 pad 2", [1, 2, 9, 33], Window2D(kernelH: 5, kernelW: 5, strideH: 2, strideW: 1, padTop: 2, padLeft: 2, padBottom: 2, padRight: 2)),
            ("1x7 stride 1 pad 0x3", [1, 2, 4, 40], Window2D(kernelH: 1, kernelW: 7, padTop: 0, padLeft: 3, padBottom: 0, padRight: 3)),
            ("3x3 dilation 2 pad 1, asymmetric", [1, 1, 7, 29], Window2D(kernelH: 3, kernelW: 3, padTop: 1, padLeft: 0, padBottom: 2, padRight: 3, dilationH: 2, dilationW: 2)),
            ("2x2 stride 1 ceil", [1, 1, 3, 19], Window2D(kernel: 2, ceilMode: true)),
        ]
        for (index, (name, shape, win)) in cases.enumerated() {
            let x = Tensor.random(shape: shape, seed: UInt64(index + 71))
            let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
            let (oh, ow) = win.outputSize(inputH: h, inputW: w)
            for includePad in [false, true] {
                var want: [UInt32] = []
                for plane in 0..<(n * c) {
                    for i in 0..<oh {
                        for j in 0..<ow {
                            var s: Float = 0
                            var real = 0, padded = 0
                            for kj in 0..<win.kernelW {
                                let iw = j * win.strideW - win.padLeft + kj * win.dilationW
                                var column: Float? = nil
                                for ki in 0..<win.kernelH {
                                    let ih = i * win.strideH - win.padTop + ki * win.dilationH
                                    if ih >= -win.padTop && ih < h + win.padBottom && iw >= -win.padLeft && iw < w + win.padRight { padded += 1 }
                                    guard ih >= 0 && ih < h && iw >= 0 && iw < w else { continue }
                                    let v = x.scalars[(plane * h + ih) * w + iw]
                                    column = column.map { $0 + v } ?? v
                                    real += 1
                                }
                                if let column { s += column }
                            }
                            let divisor = includePad ? padded : real
                            want.append((divisor == 0 ? 0 : s / Float(divisor)).bitPattern)
                        }
                    }
                }
                let y = AveragePool.forward(x, window: win, countIncludePad: includePad)
                XCTAssertEqual(y.shape, [n, c, oh, ow], name)
                XCTAssertEqual(y.scalars.map(\.bitPattern), want, "\(name), countIncludePad \(includePad)")

                // The backward (vector rows too) against the adjoint of the naive forward, in Double.
                let dy = Tensor.random(shape: y.shape, seed: UInt64(index + 81))
                let dx = AveragePool.backward(dy, inputShape: shape, window: win, countIncludePad: includePad)
                var expected = [Double](repeating: 0, count: x.count)
                for plane in 0..<(n * c) {
                    for i in 0..<oh {
                        for j in 0..<ow {
                            var taps: [Int] = []
                            var padded = 0
                            for ki in 0..<win.kernelH {
                                for kj in 0..<win.kernelW {
                                    let ih = i * win.strideH - win.padTop + ki * win.dilationH
                                    let iw = j * win.strideW - win.padLeft + kj * win.dilationW
                                    if ih >= -win.padTop && ih < h + win.padBottom && iw >= -win.padLeft && iw < w + win.padRight { padded += 1 }
                                    if ih >= 0 && ih < h && iw >= 0 && iw < w { taps.append((plane * h + ih) * w + iw) }
                                }
                            }
                            let divisor = includePad ? padded : taps.count
                            guard divisor > 0 else { continue }
                            for t in taps { expected[t] += Double(dy.scalars[(plane * oh + i) * ow + j]) / Double(divisor) }
                        }
                    }
                }
                // Each dx is a sum of at most kH·kW shares below 1 in magnitude: float rounding of that sum stays far below 1e-5.
                let worst = zip(dx.scalars, expected).map { abs(Double($0) - $1) }.max() ?? 0
                XCTAssertLessThan(worst, 1e-5, "\(name) backward, countIncludePad \(includePad)")
            }
        }
    }

    func testAveragePoolCountIncludePadIgnoresCeilModeOverhang() {
        // 1x1x3x3 of ones, 2x2 stride 2 ceil, pad 0: the last window hangs over the edge and holds one real element.
        let x = Tensor(shape: [1, 1, 3, 3], repeating: 1)
        let window = Window2D(kernel: 2, stride: 2, ceilMode: true)
        XCTAssertEqual(AveragePool.forward(x, window: window, countIncludePad: true).scalars, [1, 1, 1, 1])
        let padded = Window2D(kernel: 3, stride: 2, pad: 1)
        // Corner window with pad 1: 4 real ones of 9 taps, all inside the padded input.
        XCTAssertEqual(AveragePool.forward(x, window: padded, countIncludePad: true)[0, 0, 0, 0], 4.0 / 9.0, accuracy: 1e-6)
        XCTAssertEqual(AveragePool.forward(x, window: padded, countIncludePad: false)[0, 0, 0, 0], 1, accuracy: 1e-6)
    }

    func testAveragePoolBackwardMatchesFiniteDifferences() {
        for (index, c) in Self.windows.enumerated() {
            for includePad in [false, true] {
                let x = Tensor.random(shape: c.x, seed: UInt64(index + 41))
                let y = AveragePool.forward(x, window: c.window, countIncludePad: includePad)
                let dy = Tensor.random(shape: y.shape, seed: UInt64(index + 51))
                let dx = AveragePool.backward(dy, inputShape: x.shape, window: c.window, countIncludePad: includePad)
                FiniteDifference.check(dx, of: { AveragePool.forward($0, window: c.window, countIncludePad: includePad) },
                                       at: x, upstream: dy, tolerance: 1e-3, "\(c.name), countIncludePad \(includePad)")
            }
        }
    }

    func testGlobalAveragePoolForwardAndBackward() {
        // The kernel sums 32 interleaved partials of at most ⌈n/32⌉ terms, then folds them in 5 pairwise steps:
        // within γ(⌈n/32⌉ + 5)·Σ|x| of the exact sum (SIMDKernelTests.gamma), and the division adds one rounding.
        for (index, shape) in [[2, 3, 5, 7], [1, 2, 1, 1], [2, 3, 2, 2], [1, 4, 13, 13], [1, 2, 31, 31]].enumerated() {
            let x = Tensor.random(shape: shape, seed: UInt64(61 + index))
            let y = GlobalAveragePool.forward(x)
            XCTAssertEqual(y.shape, [shape[0], shape[1], 1, 1])
            let n = shape[2] * shape[3]
            for plane in 0..<(shape[0] * shape[1]) {
                let values = (0..<n).map { Double(x[flat: plane * n + $0]) }
                let mean = values.reduce(0, +) / Double(n), magnitude = values.map(abs).reduce(0, +) / Double(n)
                let sumError = SIMDKernelTests.gamma((n + 31) / 32 + 5) * magnitude
                let bound = sumError + (abs(mean) + sumError) * 0x1p-24
                XCTAssertLessThanOrEqual(abs(Double(y[flat: plane]) - mean), bound, "\(shape), plane \(plane)")
            }
        }
        let x = Tensor.random(shape: [2, 3, 5, 7], seed: 61), y = GlobalAveragePool.forward(x)
        let dy = Tensor.random(shape: y.shape, seed: 62)
        FiniteDifference.check(GlobalAveragePool.backward(dy, inputShape: x.shape), of: { GlobalAveragePool.forward($0) },
                               at: x, upstream: dy, tolerance: 1e-3, "GlobalAveragePool")
    }

    func testGlobalMaxPoolForwardAndBackward() {
        let x = Self.distinctValues([2, 3, 4, 5], seed: 71)
        let y = GlobalMaxPool.forward(x)
        XCTAssertEqual(y.shape, [2, 3, 1, 1])
        for plane in 0..<6 {
            let values = (0..<20).map { x[flat: plane * 20 + $0] }
            XCTAssertEqual(y[flat: plane], values.max()!)
        }
        let dy = Tensor.random(shape: y.shape, seed: 72)
        FiniteDifference.check(GlobalMaxPool.backward(dy, x: x, y: y), of: { GlobalMaxPool.forward($0) },
                               at: x, upstream: dy, tolerance: 1e-3, "GlobalMaxPool")
    }

    func testGlobalMaxPoolTiesGoToTheFirstMaximum() {
        let x = Tensor(shape: [1, 2, 2, 2], scalars: [1, 3, 3, 0, -.infinity, -.infinity, -.infinity, -.infinity])
        let y = GlobalMaxPool.forward(x)
        XCTAssertEqual(y.scalars, [3, -.infinity])
        XCTAssertEqual(GlobalMaxPool.backward(Tensor(shape: [1, 2, 1, 1], scalars: [5, 7]), x: x, y: y).scalars, [0, 5, 0, 0, 7, 0, 0, 0])
    }
}
