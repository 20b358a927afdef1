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
    ///
    /// Gathered by input row: each (channel, input row) the band reaches is one work item that adds, tap row ki by tap
    /// column kj, the column rows that land on it. Items write disjoint rows, so threads split them evenly whatever the
    /// channel count (a first layer has 3), and each element receives its terms in (ki, kj) order, as a scatter over
    /// (ki, kj, oh, ow) adds them: the sums are the same, bit for bit.
    public static func backward(_ cols: UnsafePointer<Float>, channels: Int, height: Int, width: Int,
                                window: Window2D, image: UnsafeMutablePointer<Float>, outputRows: Range<Int>? = nil) {
        let (outH, outW) = window.outputSize(inputH: height, inputW: width)
        let kH = window.kernelH, kW = window.kernelW, sH = window.strideH, sW = window.strideW
        let band = outputRows ?? 0..<outH
        guard !band.isEmpty, channels > 0 else { return }
        let planeOut = band.count * outW
        // Input rows the band's windows reach, clipped to the image.
        let firstRow = max(0, band.lowerBound * sH - window.padTop)
        let endRow = min(height, (band.upperBound - 1) * sH - window.padTop + (kH - 1) * window.dilationH + 1)
        guard endRow > firstRow else { return }
        let rowsPerChannel = endRow - firstRow
        // Per tap column: its offset and the output columns whose input column lies inside the image.
        let offsets = (0..<kW).map { $0 * window.dilationW - window.padLeft }
        let columnRanges = offsets.map { validOutputRange(offset: $0, stride: sW, input: width, output: outW) }
        parallelRanges(channels * rowsPerChannel, work: channels * kH * kW * planeOut) { items in
            for item in items {
                let c = item / rowsPerChannel, iy = firstRow + item % rowsPerChannel
                let dst = image + (c * height + iy) * width
                for ki in 0..<kH {
                    // The output row whose tap row ki lands on iy, if it is in the band.
                    let t = iy + window.padTop - ki * window.dilationH
                    guard t >= 0, t % sH == 0, band.contains(t / sH) else { continue }
                    let oh = t / sH
                    let row = cols + (c * kH + ki) * kW * planeOut + (oh - band.lowerBound) * outW
                    var kj = 0
                    while kj < kW {
                        let columns = columnRanges[kj]
                        let src = row + kj * planeOut, d = dst + offsets[kj]
                        // Stride 2, undilated: taps kj and kj + 1 land on alternate columns of the same span, so they
                        // are added together as one contiguous, interleaved run (each element still gets one term).
                        if sW == 2 && window.dilationW == 1 && kj + 1 < kW {
                            addInterleaved(src, src + planeOut, into: d, columns, columnRanges[kj + 1])
                            kj += 2
                            continue
                        }
                        if !columns.isEmpty {
                            if sW == 1 {
                                addRow(src, into: d, columns)
                            } else {
                                for ow in columns { d[ow * sW] += src[ow] }
                            }
                        }
                        kj += 1
                    }
                }
            }
        }
    }

    /// d[2i] += a[i] for i in `first`, d[2i + 1] += b[i] for i in `second`: four of each at a time, interleaved into
    /// eight consecutive elements, where both ranges hold i.
    @inline(__always)
    static func addInterleaved(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into d: UnsafeMutablePointer<Float>,
                               _ first: Range<Int>, _ second: Range<Int>) {
        let lower = max(first.lowerBound, second.lowerBound), upper = max(lower, min(first.upperBound, second.upperBound))
        // The ends where only one tap lands (image borders): a few elements each.
        for i in first.lowerBound..<max(first.lowerBound, min(first.upperBound, lower)) { d[2 * i] += a[i] }
        for i in min(first.upperBound, max(first.lowerBound, upper))..<first.upperBound { d[2 * i] += a[i] }
        for i in second.lowerBound..<max(second.lowerBound, min(second.upperBound, lower)) { d[2 * i + 1] += b[i] }
        for i in min(second.upperBound, max(second.lowerBound, upper))..<second.upperBound { d[2 * i + 1] += b[i] }
        var i = lower
        while i + 4 <= upper {
            let x = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD4<Float>.self)
            let y = UnsafeRawPointer(b + i).loadUnaligned(as: SIMD4<Float>.self)
            let pairs = SIMD8<Float>(x[0], y[0], x[1], y[1], x[2], y[2], x[3], y[3])
            let target = UnsafeMutableRawPointer(d + 2 * i)
            target.storeBytes(of: target.loadUnaligned(as: SIMD8<Float>.self) + pairs, as: SIMD8<Float>.self)
            i += 4
        }
        while i < upper { d[2 * i] += a[i]; d[2 * i + 1] += b[i]; i += 1 }
    }

    /// d[i] += src[i] for i in `range`, eight at a time.
    @inline(__always)
    static func addRow(_ src: UnsafePointer<Float>, into d: UnsafeMutablePointer<Float>, _ range: Range<Int>) {
        var i = range.lowerBound
        while i + 8 <= range.upperBound {
            let a = UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self)
            let b = UnsafeRawPointer(d + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(d + i).storeBytes(of: a + b, as: SIMD8<Float>.self)
            i += 8
        }
        while i < range.upperBound { d[i] += src[i]; i += 1 }
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
