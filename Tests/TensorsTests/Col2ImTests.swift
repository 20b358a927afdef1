import Parallel
import Tensors
import XCTest

/// col2im (the fold behind every im2col convolution's data gradient) against the plain scatter that defines it:
/// image[c][oh·sH + ki·dH − top][ow·sW + kj·dW − left] += cols[(c, ki, kj)][oh, ow], visiting (ki, kj, oh, ow) in
/// that order. The gathered kernel adds each element's terms in the same order, so the results must agree bit for
/// bit, on whole images and on bands of output rows, for strides, dilations and pads that leave taps outside the image.
final class Col2ImTests: XCTestCase {
    struct Case {
        let channels: Int, height: Int, width: Int
        let window: Window2D
    }

    static let cases: [Case] = [
        Case(channels: 3, height: 11, width: 13, window: Window2D(kernel: 7, stride: 2, pad: 3)),  // a first layer
        Case(channels: 4, height: 9, width: 21, window: Window2D(kernel: 5, pad: 2)),
        Case(channels: 2, height: 8, width: 8, window: Window2D(kernel: 3, stride: 3, pad: 1)),
        Case(channels: 2, height: 10, width: 12, window: Window2D(kernel: 3, pad: 2, dilation: 2)),
        Case(channels: 5, height: 6, width: 7, window: Window2D(kernelH: 3, kernelW: 2, strideH: 1, strideW: 2,
                                                                 padTop: 0, padLeft: 1, padBottom: 2, padRight: 0)),
        Case(channels: 1, height: 4, width: 4, window: Window2D(kernel: 3, pad: 4)),  // rows of padding only
        Case(channels: 3, height: 17, width: 35, window: Window2D(kernel: 1)),
        Case(channels: 2, height: 9, width: 40, window: Window2D(kernel: 5, stride: 2, pad: 2)),  // odd tap left alone
        Case(channels: 2, height: 9, width: 41, window: Window2D(kernel: 4, stride: 2, pad: 1)),
        Case(channels: 2, height: 11, width: 30, window: Window2D(kernel: 3, stride: 2, pad: 1, dilation: 2)),
    ]

    /// The scatter col2im, in Double-free Float arithmetic and the defining order.
    static func naive(_ cols: [Float], _ c: Case, band: Range<Int>, into image: inout [Float]) {
        let w = c.window
        let (_, outW) = w.outputSize(inputH: c.height, inputW: c.width)
        let planeOut = band.count * outW
        for channel in 0..<c.channels {
            for ki in 0..<w.kernelH {
                for kj in 0..<w.kernelW {
                    for oh in band {
                        for ow in 0..<outW {
                            let iy = oh * w.strideH + ki * w.dilationH - w.padTop, ix = ow * w.strideW + kj * w.dilationW - w.padLeft
                            guard iy >= 0, iy < c.height, ix >= 0, ix < c.width else { continue }
                            image[(channel * c.height + iy) * c.width + ix] +=
                                cols[((channel * w.kernelH + ki) * w.kernelW + kj) * planeOut + (oh - band.lowerBound) * outW + ow]
                        }
                    }
                }
            }
        }
    }

    func testFoldMatchesTheScatterDefinitionBitForBit() {
        let threads = Threading.threadCount
        defer { Threading.configure(threads: threads) }
        for (index, c) in Self.cases.enumerated() {
            let (outH, outW) = c.window.outputSize(inputH: c.height, inputW: c.width)
            let taps = c.channels * c.window.kernelH * c.window.kernelW
            let start = Tensor.random(shape: [c.channels * c.height * c.width], seed: UInt64(index * 10 + 1)).scalars
            // The whole image at once, then in bands of 1, 2 and 3 output rows (as the convolution's GEMM path runs).
            for bandRows in [outH, 1, 2, 3] where bandRows > 0 {
                for threadCount in [1, 2, 3] {
                    Threading.configure(threads: threadCount)
                    var expected = start, folded = start
                    for r0 in stride(from: 0, to: outH, by: bandRows) {
                        let band = r0..<min(outH, r0 + bandRows)
                        let cols = Tensor.random(shape: [taps * band.count * outW], seed: UInt64(index * 1000 + r0 + 7)).scalars
                        Self.naive(cols, c, band: band, into: &expected)
                        cols.withUnsafeBufferPointer { colsPointer in
                            folded.withUnsafeMutableBufferPointer {
                                Im2Col.backward(colsPointer.baseAddress!, channels: c.channels, height: c.height, width: c.width,
                                                window: c.window, image: $0.baseAddress!, outputRows: band)
                            }
                        }
                    }
                    XCTAssertEqual(folded, expected, "case \(index), bands of \(bandRows), \(threadCount) threads")
                }
            }
        }
    }
}
