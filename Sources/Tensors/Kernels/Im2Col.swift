import Parallel

/// Unfolds the sliding windows of one image into columns so that a convolution becomes a single GEMM, and folds
/// column gradients back (col2im). Row (c, ki, kj) of the columns holds the pixel under kernel tap (ki, kj) of
/// channel c for every output position, 0 where the tap falls into padding.
public enum Im2Col {
    /// image [C,H,W] -> cols [C*kH*kW, OH*OW]; with `outputRows`, only those output rows: cols [C*kH*kW, rows*OW]
    public static func forward(_ image: UnsafePointer<Float>, channels: Int, height: Int, width: Int,
                               window: Window2D, cols: UnsafeMutablePointer<Float>, outputRows: Range<Int>? = nil) {
        let (outH, outW) = window.outputSize(inputH: height, inputW: width)
        let kH = window.kernelH, kW = window.kernelW, sH = window.strideH, sW = window.strideW
        let band = outputRows ?? 0..<outH
        let planeOut = band.count * outW
        // Rows (c, ki, *) are disjoint, so they can be unfolded in parallel (also for the 3 channels of a first layer).
        parallelFor(channels * kH) { ck in
            let c = ck / kH, ki = ck % kH
            let plane = image + c * height * width
            let offH = ki * window.dilationH - window.padTop
            let rows = validOutputRange(offset: offH, stride: sH, input: height, output: outH)
            for kj in 0..<kW {
                let offW = kj * window.dilationW - window.padLeft
                let columns = validOutputRange(offset: offW, stride: sW, input: width, output: outW)
                let row = cols + ((c * kH + ki) * kW + kj) * planeOut
                for oh in band {
                    let dst = row + (oh - band.lowerBound) * outW
                    guard rows.contains(oh), !columns.isEmpty else {
                        dst.update(repeating: 0, count: outW)
                        continue
                    }
                    let src = plane + (oh * sH + offH) * width + offW
                    dst.update(repeating: 0, count: columns.lowerBound)
                    if sW == 1 {
                        (dst + columns.lowerBound).update(from: src + columns.lowerBound, count: columns.count)
                    } else {
                        for ow in columns { dst[ow] = src[ow * sW] }
                    }
                    (dst + columns.upperBound).update(repeating: 0, count: outW - columns.upperBound)
                }
            }
        }
    }

    /// cols [C*kH*kW, OH*OW] -> image [C,H,W] += folded columns (overlapping windows add up; the caller zeroes image);
    /// with `outputRows`, cols holds only those output rows: [C*kH*kW, rows*OW]
    public static func backward(_ cols: UnsafePointer<Float>, channels: Int, height: Int, width: Int,
                                window: Window2D, image: UnsafeMutablePointer<Float>, outputRows: Range<Int>? = nil) {
        let (outH, outW) = window.outputSize(inputH: height, inputW: width)
        let kH = window.kernelH, kW = window.kernelW, sH = window.strideH, sW = window.strideW
        let band = outputRows ?? 0..<outH
        let planeOut = band.count * outW
        // Every row block of channel c lands only in plane c: channels are independent.
        parallelFor(channels) { c in
            let plane = image + c * height * width
            for ki in 0..<kH {
                let offH = ki * window.dilationH - window.padTop
                let rows = validOutputRange(offset: offH, stride: sH, input: height, output: outH)
                for kj in 0..<kW {
                    let offW = kj * window.dilationW - window.padLeft
                    let columns = validOutputRange(offset: offW, stride: sW, input: width, output: outW)
                    if columns.isEmpty { continue }
                    let row = cols + ((c * kH + ki) * kW + kj) * planeOut
                    let first = max(rows.lowerBound, band.lowerBound), end = max(first, min(rows.upperBound, band.upperBound))
                    for oh in first..<end {
                        let src = row + (oh - band.lowerBound) * outW
                        let dst = plane + (oh * sH + offH) * width + offW
                        if sW == 1 {
                            for ow in columns { dst[ow] += src[ow] }
                        } else {
                            for ow in columns { dst[ow * sW] += src[ow] }
                        }
                    }
                }
            }
        }
    }

    /// The output positions o in 0..<output whose input coordinate o*stride + offset lies inside 0..<input.
    @inline(__always)
    static func validOutputRange(offset: Int, stride: Int, input: Int, output: Int) -> Range<Int> {
        let first = offset >= 0 ? 0 : (-offset + stride - 1) / stride
        let lastInput = input - 1 - offset
        let end = lastInput < 0 ? 0 : min(output, lastInput / stride + 1)
        return first < end ? first..<end : first..<first
    }
}
