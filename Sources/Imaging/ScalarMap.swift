/// Single-channel maps (heat maps, attributions) resized like images.
public enum ScalarMap {
    /// `values` (`width * height`, row-major) resampled to `toWidth x toHeight` with pixel-centre alignment
    /// (the convention of PIL and of PyTorch's `interpolate(align_corners=False)`).
    public static func resized(_ values: [Float], width: Int, height: Int, toWidth: Int, toHeight: Int,
                               filter: ResizeFilter = .bilinear) -> [Float] {
        if width == toWidth && height == toHeight { return values }
        return Resampler.resize(values, width: width, height: height, channels: 1, toWidth: toWidth, toHeight: toHeight, filter: filter)
    }
}
