/// Heat maps laid over photos (saliency, activation maps).
public enum Overlay {
    /// Blends a heat map (`heatWidth * heatHeight` values, normalised to their own min...max and upsampled bilinearly
    /// to the photo's size) over the photo: out = (1 - alpha) * photo + alpha * colour.
    public static func blend(photo: RGBImage, heat: [Float], heatWidth: Int, heatHeight: Int,
                             colorMap: ColorMap, alpha: Float) -> RGBImage {
        precondition(heat.count == heatWidth * heatHeight, "\(heat.count) values are not a \(heatWidth)x\(heatHeight) map")
        let values = Resampler.resize(heat, width: heatWidth, height: heatHeight, channels: 1,
                                      toWidth: photo.width, toHeight: photo.height, filter: .bilinear)
        var lo = Float.infinity, hi = -Float.infinity
        for v in heat where !v.isNaN { lo = min(lo, v); hi = max(hi, v) }
        let colors = colorMap.render(values: values, width: photo.width, height: photo.height, range: lo <= hi ? lo...hi : 0...0)
        let a = min(max(alpha, 0), 1)
        var out = photo.pixels
        out.withUnsafeMutableBufferPointer { dst in
            colors.pixels.withUnsafeBufferPointer { src in
                for i in 0..<dst.count { dst[i] = (1 - a) * dst[i] + a * src[i] }
            }
        }
        return RGBImage(width: photo.width, height: photo.height, pixels: out)
    }
}
