/// A colour scale: evenly spaced stops, linearly interpolated in sRGB.
public struct ColorMap: Sendable {
    /// Stops as 0...255 RGB triples, first at t = 0 and last at t = 1.
    public let stops: [(r: Float, g: Float, b: Float)]

    public init(stops: [(r: Float, g: Float, b: Float)]) {
        precondition(stops.count >= 2, "a colour map needs at least two stops")
        self.stops = stops
    }

    private init(hex: [UInt32]) {
        self.init(stops: hex.map { (Float($0 >> 16), Float($0 >> 8 & 0xff), Float($0 & 0xff)) })
    }

    /// Matplotlib's perceptually uniform viridis (dark purple -> blue -> green -> yellow), sampled at tenths of its range.
    public static let viridis = ColorMap(hex: [0x440154, 0x482878, 0x3E4989, 0x31688E, 0x26828E,
                                              0x1F9E89, 0x35B779, 0x6ECE58, 0xB5DE2B, 0xFDE725])
    /// Blue -> white -> red, white at 0.5: for signed quantities such as gradients (0.5 = zero).
    public static let diverging = ColorMap(hex: [0x053061, 0x2166AC, 0x4393C3, 0x92C5DE, 0xD1E5F0, 0xFFFFFF,
                                                 0xFDDBC7, 0xF4A582, 0xD6604D, 0xB2182B, 0x67001F])
    /// Black -> white.
    public static let gray = ColorMap(stops: [(0, 0, 0), (255, 255, 255)])

    /// The colour at `t` (clamped to 0...1; NaN gives the middle), 0...255 per channel.
    public func color(at t: Float) -> (r: Float, g: Float, b: Float) {
        let t = t.isNaN ? 0.5 : min(max(t, 0), 1)
        let position = t * Float(stops.count - 1)
        let i = min(Int(position), stops.count - 2)
        let f = position - Float(i)
        let a = stops[i], b = stops[i + 1]
        return (a.r + (b.r - a.r) * f, a.g + (b.g - a.g) * f, a.b + (b.b - a.b) * f)
    }

    /// Colours a single-channel map (`width * height` values) with `range` mapped onto 0...1; a flat range gives the middle colour.
    public func render(values: [Float], width: Int, height: Int, range: ClosedRange<Float>) -> RGBImage {
        precondition(values.count == width * height, "\(values.count) values are not a \(width)x\(height) map")
        // A 256-entry table keeps the per-pixel work to one multiply and one lookup.
        var table = [Float](repeating: 0, count: 256 * 3)
        for i in 0..<256 {
            let c = color(at: Float(i) / 255)
            table[3 * i] = c.r; table[3 * i + 1] = c.g; table[3 * i + 2] = c.b
        }
        let span = range.upperBound - range.lowerBound
        let flat = !(span > 0) || !span.isFinite
        let scale = flat ? 0 : 255 / span, lo = range.lowerBound
        var pixels = [Float](repeating: 0, count: width * height * 3)
        values.withUnsafeBufferPointer { src in
            table.withUnsafeBufferPointer { lut in
                pixels.withUnsafeMutableBufferPointer { dst in
                    for i in 0..<src.count {
                        let v = src[i]
                        var index = 128
                        if !flat && !v.isNaN {
                            let s = (v - lo) * scale
                            index = s <= 0 ? 0 : (s >= 255 ? 255 : Int(s + 0.5))
                        }
                        dst[3 * i] = lut[3 * index]; dst[3 * i + 1] = lut[3 * index + 1]; dst[3 * i + 2] = lut[3 * index + 2]
                    }
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    /// `render` over the values' own minimum...maximum (NaN ignored).
    public func render(values: [Float], width: Int, height: Int) -> RGBImage {
        var lo = Float.infinity, hi = -Float.infinity
        for v in values where !v.isNaN { lo = min(lo, v); hi = max(hi, v) }
        return render(values: values, width: width, height: height, range: lo <= hi ? lo...hi : 0...0)
    }
}
