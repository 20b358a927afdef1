import Foundation
import Imaging

/// How activations are scaled onto the colour map: one scale per channel (default) or one for the whole layer.
public enum FeatureNormalization: String, CaseIterable, Sendable {
    case channel, layer
}

/// Feature maps as pictures: colour map choice, normalisation, nearest-neighbour upscaling and channel grids.
public enum FeatureRendering {
    /// Smallest side (pixels) a channel PNG is upscaled to.
    public static let channelImageTarget = 160
    /// Smallest side (pixels) of a grid tile.
    public static let gridTileTarget = 56
    /// Largest side of a grid tile: bigger maps (large inputs) are shrunk so grids stay openable.
    public static let gridTileMaximum = 160
    public static let gridBackground: (r: Float, g: Float, b: Float) = (24, 24, 24)

    /// Viridis for non-negative maps (post-ReLU), the blue-white-red diverging map centred on 0 for signed ones.
    public static func colorMap(signed: Bool) -> ColorMap { signed ? .diverging : .viridis }

    /// The value range drawn from the first to the last colour for channel `c`: 0...max of the channel (or layer) for
    /// non-negative maps, so that 0 ("does not fire") is always the darkest colour and a dead channel is flat dark;
    /// -a...a with a the largest magnitude when the layer is signed, so that 0 stays in the middle (white).
    public static func range(of acts: LayerActivations, channel c: Int, normalization: FeatureNormalization) -> ClosedRange<Float> {
        // A 1x1 map (after global pooling) compared with itself says nothing: such layers share one scale.
        let perChannel = normalization == .channel && acts.width * acts.height > 1
        let lo = perChannel ? acts.minima[c] : (acts.minima.min() ?? 0)
        let hi = perChannel ? acts.maxima[c] : (acts.maxima.max() ?? 0)
        if acts.isSigned {
            let a = max(abs(lo), abs(hi))
            return -a...a
        }
        return hi > 0 && hi.isFinite ? 0...hi : 0...1
    }

    /// Values mapped onto 0...1 by `range`, clamped; a flat range (constant map) gives 0.5 everywhere, never NaN.
    public static func normalized(_ values: [Float], range: ClosedRange<Float>) -> [Float] {
        let span = range.upperBound - range.lowerBound
        guard span > 0, span.isFinite else { return [Float](repeating: 0.5, count: values.count) }
        let lo = range.lowerBound, inv = 1 / span
        var out = [Float](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<src.count {
                    let t = (src[i] - lo) * inv
                    dst[i] = t.isNaN ? 0.5 : (t < 0 ? 0 : (t > 1 ? 1 : t))
                }
            }
        }
        return out
    }

    /// The integer factor that brings a map whose longer side is `side` to at least `target` pixels (1 or more).
    public static func upscaleFactor(side: Int, target: Int) -> Int {
        side <= 0 ? 1 : max(1, (target + side - 1) / side)
    }

    /// Each pixel repeated `factor` times in both directions: blocky on purpose, so single activations stay visible.
    public static func upscaleNearest(_ image: RGBImage, factor: Int) -> RGBImage {
        guard factor > 1 else { return image }
        let w = image.width, h = image.height, ow = w * factor, oh = h * factor
        var out = [Float](repeating: 0, count: ow * oh * 3)
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<h {
                    // Build one output row, then copy it to the factor - 1 rows below.
                    let row = dst.baseAddress! + 3 * (y * factor) * ow
                    for x in 0..<w {
                        let s = src.baseAddress! + 3 * (y * w + x)
                        let d = row + 3 * x * factor
                        for k in 0..<factor { d[3 * k] = s[0]; d[3 * k + 1] = s[1]; d[3 * k + 2] = s[2] }
                    }
                    for k in 1..<factor { (row + 3 * k * ow).update(from: row, count: 3 * ow) }
                }
            }
        }
        return RGBImage(width: ow, height: oh, pixels: out)
    }

    /// Channel `c` coloured at the map's own resolution.
    public static func renderChannel(_ acts: LayerActivations, channel c: Int, normalization: FeatureNormalization) -> RGBImage {
        colorMap(signed: acts.isSigned).render(values: acts.channel(c), width: acts.width, height: acts.height,
                                               range: range(of: acts, channel: c, normalization: normalization))
    }

    /// Channel `c` upscaled (nearest neighbour) to at least `target` pixels on its longer side.
    public static func channelImage(_ acts: LayerActivations, channel c: Int, normalization: FeatureNormalization,
                                    target: Int = channelImageTarget) -> RGBImage {
        upscaleNearest(renderChannel(acts, channel: c, normalization: normalization),
                       factor: upscaleFactor(side: max(acts.width, acts.height), target: target))
    }

    /// Tile size (width, height) the grid uses for this layer's maps.
    public static func gridTileSize(width: Int, height: Int, target: Int = gridTileTarget,
                                    maximum: Int = gridTileMaximum) -> (width: Int, height: Int) {
        let side = max(width, height, 1)
        if side > maximum {
            let s = Double(maximum) / Double(side)
            return (max(1, Int((Double(width) * s).rounded())), max(1, Int((Double(height) * s).rounded())))
        }
        let f = upscaleFactor(side: side, target: target)
        return (width * f, height * f)
    }

    /// The chosen channels tiled in a grid with thin separators and the channel number under each tile.
    public static func grid(_ acts: LayerActivations, channels: [Int], normalization: FeatureNormalization,
                            columns: Int? = nil) -> RGBImage {
        let tile = gridTileSize(width: acts.width, height: acts.height)
        let tiles = channels.map { c -> RGBImage in
            let image = renderChannel(acts, channel: c, normalization: normalization)
            if tile.width >= image.width && tile.width % image.width == 0 && tile.height == image.height * (tile.width / image.width) {
                return upscaleNearest(image, factor: tile.width / image.width)
            }
            return image.resized(width: tile.width, height: tile.height, filter: .area)
        }
        return ImageGrid.compose(tiles, columns: columns, separator: 2, labels: channels.map(String.init),
                                 background: gridBackground)
    }

    /// The layer's mean activation (or channel `c`) blended over the photo, upsampled bilinearly to its size.
    public static func overlay(_ acts: LayerActivations, channel c: Int?, photo: RGBImage, alpha: Float = 0.55) -> RGBImage {
        let heat = c.map { acts.channel($0) } ?? acts.meanMap()
        return Overlay.blend(photo: photo, heat: heat, heatWidth: acts.width, heatHeight: acts.height,
                             colorMap: .viridis, alpha: alpha)
    }
}
