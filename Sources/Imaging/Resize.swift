import Dispatch
import Foundation
import Parallel

/// How `resized` computes each output pixel.
public enum ResizeFilter: String, Sendable, CaseIterable {
    /// Exact box average with fractional coverage: the right filter for shrinking.
    case area
    /// Triangle filter like PIL's BILINEAR: plain bilinear (half-pixel centres) when growing, antialiased when shrinking.
    case bilinear
    /// Keys cubic (a = -0.5) like PIL's BICUBIC, support scaled when shrinking.
    case bicubic
}

extension RGBImage {
    /// Resizes to `width`x`height`; `filter` nil picks area when shrinking and bilinear when growing, per axis.
    public func resized(width newWidth: Int, height newHeight: Int, filter: ResizeFilter? = nil) -> RGBImage {
        let out = Resampler.resize(pixels, width: width, height: height, channels: 3,
                                   toWidth: newWidth, toHeight: newHeight, filter: filter)
        return RGBImage(width: newWidth, height: newHeight, pixels: out)
    }

    /// Shrinks (area filter) so that the longer side is at most `maxSide`, keeping the aspect ratio; nil when the
    /// image is already small enough (`--max-side`).
    public func limitingLongerSide(to maxSide: Int) -> RGBImage? {
        let longer = max(width, height)
        guard maxSide > 0, longer > maxSide else { return nil }
        let scale = Double(maxSide) / Double(longer)
        let w = width >= height ? maxSide : max(1, Int((Double(width) * scale).rounded()))
        let h = height > width ? maxSide : max(1, Int((Double(height) * scale).rounded()))
        return resized(width: w, height: h)
    }

    /// Resizes so that the shorter side is `side`, keeping the aspect ratio (the longer side is rounded half-to-even like Python's round, as the golden inputs were made).
    public func resizedShorterSide(to side: Int, filter: ResizeFilter? = nil) -> RGBImage {
        let size = RGBImage.shorterSideSize(width: width, height: height, side: side)
        return resized(width: size.width, height: size.height, filter: filter)
    }

    static func shorterSideSize(width: Int, height: Int, side: Int) -> (width: Int, height: Int) {
        // Clamped far below Int.max so that a hostile aspect ratio cannot trap the conversion; callers check the size.
        func longer(_ ratio: Double) -> Int { max(1, Int(min((Double(side) * ratio).rounded(.toNearestOrEven), 1e15))) }
        if width <= height { return (side, longer(Double(height) / Double(max(width, 1)))) }
        return (longer(Double(width) / Double(max(height, 1))), side)
    }

    /// The centred `width`x`height` window (an odd margin leaves the extra pixel on the right/bottom).
    public func centerCropped(width cropWidth: Int, height cropHeight: Int) -> RGBImage {
        cropped(x: (width - cropWidth) / 2, y: (height - cropHeight) / 2, width: cropWidth, height: cropHeight)
    }

    /// The window at (x, y) of size `width`x`height`; it must lie inside the image.
    public func cropped(x: Int, y: Int, width cropWidth: Int, height cropHeight: Int) -> RGBImage {
        precondition(x >= 0 && y >= 0 && cropWidth >= 0 && cropHeight >= 0 && x + cropWidth <= width && y + cropHeight <= height,
                     "crop \(cropWidth)x\(cropHeight) at (\(x),\(y)) is outside the \(width)x\(height) image")
        var out = [Float](repeating: 0, count: cropWidth * cropHeight * 3)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for row in 0..<cropHeight {
                    let s = src.baseAddress! + 3 * ((y + row) * width + x)
                    (dst.baseAddress! + 3 * row * cropWidth).update(from: s, count: 3 * cropWidth)
                }
            }
        }
        return RGBImage(width: cropWidth, height: cropHeight, pixels: out)
    }
}

/// Separable resampling of interleaved images with any channel count: horizontal pass, then vertical (as PIL does).
enum Resampler {
    /// Per output index: the first input index and the normalised weights of the inputs it reads.
    struct AxisWeights {
        var starts: [Int]
        var counts: [Int]
        var offsets: [Int]   // into weights
        var weights: [Float]

        /// The four arrays as pointers, for the inner loops.
        func withPointers<R>(_ body: (_ starts: UnsafePointer<Int>, _ counts: UnsafePointer<Int>, _ offsets: UnsafePointer<Int>,
                                      _ weights: UnsafePointer<Float>) -> R) -> R {
            starts.withUnsafeBufferPointer { s in
                counts.withUnsafeBufferPointer { c in
                    offsets.withUnsafeBufferPointer { o in
                        weights.withUnsafeBufferPointer { w in body(s.baseAddress!, c.baseAddress!, o.baseAddress!, w.baseAddress!) }
                    }
                }
            }
        }
    }

    /// `roundToBytes` rounds and clamps after each pass, reproducing PIL's 8-bit pipeline exactly.
    static func resize(_ pixels: [Float], width: Int, height: Int, channels: Int, toWidth: Int, toHeight: Int,
                       filter: ResizeFilter?, roundToBytes: Bool = false) -> [Float] {
        precondition(toWidth > 0 && toHeight > 0 && width > 0 && height > 0, "cannot resize \(width)x\(height) to \(toWidth)x\(toHeight)")
        var current = pixels
        if toWidth != width {
            let f = filter ?? (toWidth < width ? .area : .bilinear)
            current = horizontal(current, width: width, height: height, channels: channels,
                                 axis: weights(inSize: width, outSize: toWidth, filter: f), outWidth: toWidth)
            if roundToBytes { roundAndClamp(&current) }
        }
        if toHeight != height {
            let f = filter ?? (toHeight < height ? .area : .bilinear)
            current = vertical(current, width: toWidth, height: height, channels: channels,
                               axis: weights(inSize: height, outSize: toHeight, filter: f), outHeight: toHeight)
            if roundToBytes { roundAndClamp(&current) }
        }
        return current
    }

    static func weights(inSize: Int, outSize: Int, filter: ResizeFilter) -> AxisWeights {
        var a = AxisWeights(starts: [], counts: [], offsets: [], weights: [])
        a.starts.reserveCapacity(outSize); a.counts.reserveCapacity(outSize); a.offsets.reserveCapacity(outSize)
        let scale = Double(inSize) / Double(outSize)
        for i in 0..<outSize {
            var start: Int
            var ws: [Double] = []
            switch filter {
            case .area:
                let lo = Double(i) * scale, hi = Double(i + 1) * scale
                start = min(Int(lo), inSize - 1)
                let end = min(Int(hi.rounded(.up)), inSize)
                for j in start..<max(end, start + 1) { ws.append(max(0, min(hi, Double(j + 1)) - max(lo, Double(j)))) }
            case .bilinear, .bicubic:
                // PIL's scheme: the kernel is stretched by the downscale factor so every input pixel contributes.
                let support = (filter == .bilinear ? 1.0 : 2.0) * max(scale, 1)
                let invStretch = 1 / max(scale, 1)
                let center = (Double(i) + 0.5) * scale
                start = max(Int(center - support + 0.5), 0)
                let end = min(Int(center + support + 0.5), inSize)
                for j in start..<max(end, start + 1) {
                    let x = (Double(j) - center + 0.5) * invStretch
                    ws.append(filter == .bilinear ? triangle(x) : cubic(x))
                }
            }
            let total = ws.reduce(0, +)
            a.starts.append(start)
            a.counts.append(ws.count)
            a.offsets.append(a.weights.count)
            for w in ws { a.weights.append(Float(total != 0 ? w / total : 0)) }
        }
        return a
    }

    static func triangle(_ x: Double) -> Double { max(0, 1 - abs(x)) }

    static func cubic(_ x: Double) -> Double {
        let a = -0.5, x = abs(x)
        if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
        if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
        return 0
    }

    // [height, width, C] -> [height, outWidth, C]
    static func horizontal(_ input: [Float], width: Int, height: Int, channels: Int, axis: AxisWeights, outWidth: Int) -> [Float] {
        var out = [Float](repeating: 0, count: outWidth * height * channels)
        input.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                axis.withPointers { starts, counts, offsets, weights in
                    let s = src.baseAddress!, d = dst.baseAddress!
                    parallelRanges(height, work: height * outWidth * channels * 4, minimumWorkPerThread: 200_000) { rows in
                        for y in rows {
                            let inRow = s + y * width * channels, outRow = d + y * outWidth * channels
                            for x in 0..<outWidth {
                                let first = inRow + starts[x] * channels, w = weights + offsets[x]
                                let o = outRow + x * channels
                                for k in 0..<counts[x] {
                                    let wk = w[k], p = first + k * channels
                                    for c in 0..<channels { o[c] += wk * p[c] }
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    // [height, width, C] -> [outHeight, width, C]
    static func vertical(_ input: [Float], width: Int, height: Int, channels: Int, axis: AxisWeights, outHeight: Int) -> [Float] {
        let rowLength = width * channels
        var out = [Float](repeating: 0, count: rowLength * outHeight)
        input.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                axis.withPointers { starts, counts, offsets, weights in
                    let s = src.baseAddress!, d = dst.baseAddress!
                    parallelRanges(outHeight, work: outHeight * rowLength * 4, minimumWorkPerThread: 200_000) { rows in
                        for y in rows {
                            let o = d + y * rowLength, w = weights + offsets[y]
                            for k in 0..<counts[y] {
                                let wk = w[k], p = s + (starts[y] + k) * rowLength
                                for i in 0..<rowLength { o[i] += wk * p[i] }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    static func roundAndClamp(_ values: inout [Float]) {
        values.withUnsafeMutableBufferPointer { p in
            for i in 0..<p.count { p[i] = min(max(p[i].rounded(), 0), 255) }
        }
    }
}

