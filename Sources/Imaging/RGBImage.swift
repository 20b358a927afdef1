/// Interleaved RGB, Float 0...255, row-major (y, x, channel): `width * height * 3` values.
public struct RGBImage: Equatable, Sendable {
    public var width: Int
    public var height: Int
    public var pixels: [Float]

    /// Wraps existing interleaved RGB values; `pixels.count` must be `width * height * 3`.
    public init(width: Int, height: Int, pixels: [Float]) {
        precondition(width >= 0 && height >= 0 && pixels.count == width * height * 3,
                     "RGBImage: \(pixels.count) values do not make a \(width)x\(height) RGB image")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// An image filled with one colour.
    public init(width: Int, height: Int, fill: (r: Float, g: Float, b: Float) = (0, 0, 0)) {
        precondition(width >= 0 && height >= 0, "RGBImage: negative size \(width)x\(height)")
        var pixels = [Float](repeating: 0, count: width * height * 3)
        if fill.r != 0 || fill.g != 0 || fill.b != 0 {
            pixels.withUnsafeMutableBufferPointer { p in
                for i in 0..<(width * height) {
                    p[3 * i] = fill.r; p[3 * i + 1] = fill.g; p[3 * i + 2] = fill.b
                }
            }
        }
        self.init(width: width, height: height, pixels: pixels)
    }

    /// The colour at (x, y); no bounds check beyond the array's.
    public subscript(x: Int, y: Int) -> (r: Float, g: Float, b: Float) {
        get {
            let i = 3 * (y * width + x)
            return (pixels[i], pixels[i + 1], pixels[i + 2])
        }
        set {
            let i = 3 * (y * width + x)
            pixels[i] = newValue.r; pixels[i + 1] = newValue.g; pixels[i + 2] = newValue.b
        }
    }

    /// Pixel values rounded and clamped to 0...255 (NaN becomes 0), as written to 8-bit files.
    public func bytes() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: pixels.count)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<src.count {
                    let v = src[i]
                    dst[i] = v >= 255 ? 255 : (v > 0 ? UInt8(v + 0.5) : 0)   // NaN fails both tests -> 0
                }
            }
        }
        return out
    }

    /// An image from 8-bit interleaved RGB bytes.
    public init(width: Int, height: Int, bytes: UnsafeBufferPointer<UInt8>) {
        precondition(bytes.count == width * height * 3)
        let pixels = [Float](unsafeUninitializedCapacity: bytes.count) { p, n in
            for i in 0..<bytes.count { p[i] = Float(bytes[i]) }
            n = bytes.count
        }
        self.init(width: width, height: height, pixels: pixels)
    }
}
