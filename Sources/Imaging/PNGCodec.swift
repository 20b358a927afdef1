import CPNG
import Foundation

/// PNG through libpng's simplified API (`png_image_*`), which reports errors as return codes instead of longjmp.
public enum PNGCodec {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Decodes any PNG (grey, palette, alpha, 16-bit) to RGB; alpha is composited over white.
    public static func decode(_ data: Data, name: String, maxPixels: Int) throws -> RGBImage {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        defer { png_image_free(&image) }
        let ok = data.withUnsafeBytes { raw in
            png_image_begin_read_from_memory(&image, raw.baseAddress, raw.count)
        }
        guard ok != 0 else { throw failure(&image, name: name) }
        let width = Int(image.width), height = Int(image.height)
        try checkPixelLimit(width: width, height: height, maxPixels: maxPixels, name: name)

        let hasAlpha = image.format & UInt32(PNG_FORMAT_FLAG_ALPHA) != 0
        let channels = hasAlpha ? 4 : 3
        image.format = hasAlpha ? PNGFormat.rgba : PNGFormat.rgb
        // 16-bit files without gAMA/sRGB are nearly always sRGB-encoded photos, not linear light.
        image.flags |= UInt32(PNG_IMAGE_FLAG_16BIT_sRGB)
        var buffer = [UInt8](repeating: 0, count: width * height * channels)
        let done = buffer.withUnsafeMutableBytes { raw in
            png_image_finish_read(&image, nil, raw.baseAddress, Int32(width * channels), nil)
        }
        guard done != 0, image.warning_or_error & 3 < 2 else {
            throw failure(&image, name: name)
        }
        if !hasAlpha {
            return buffer.withUnsafeBufferPointer { RGBImage(width: width, height: height, bytes: $0) }
        }
        // Composite over white in sRGB space, as viewers and PIL's paste-on-white do.
        var pixels = [Float](repeating: 0, count: width * height * 3)
        buffer.withUnsafeBufferPointer { src in
            pixels.withUnsafeMutableBufferPointer { dst in
                for i in 0..<(width * height) {
                    let a = Float(src[4 * i + 3]) / 255
                    for c in 0..<3 { dst[3 * i + c] = Float(src[4 * i + c]) * a + 255 * (1 - a) }
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    /// Encodes 8-bit RGB (values rounded and clamped) with optional text chunks placed right after IHDR.
    public static func encode(_ image: RGBImage, text: [(key: String, value: String)] = [], name: String = "image.png") throws -> Data {
        var bytes = image.bytes()
        var png = try encodeRaw(&bytes, width: image.width, height: image.height,
                                format: PNGFormat.rgb, bytesPerPixel: 3, name: name)
        if !text.isEmpty { png = try insertTextChunks(text, into: png, name: name) }
        return png
    }

    /// Writes other pixel formats (grey, RGBA, 16-bit linear…) through the simplified writer, so tests can make such files.
    /// `samples` holds `width * height * channels(format)` values, 0...255 for 8-bit formats, 0...65535 for linear ones.
    public static func encodeForTesting(samples: [Int], width: Int, height: Int, format: UInt32) throws -> Data {
        let channels = Int(format & UInt32(PNG_FORMAT_FLAG_ALPHA) != 0 ? 1 : 0) + (format & UInt32(PNG_FORMAT_FLAG_COLOR) != 0 ? 3 : 1)
        let linear = format & UInt32(PNG_FORMAT_FLAG_LINEAR) != 0
        precondition(samples.count == width * height * channels)
        if linear {
            var words = samples.map { UInt16(clamping: $0) }
            return try words.withUnsafeMutableBytes { raw in
                var b = [UInt8](raw)
                return try encodeRaw(&b, width: width, height: height, format: format, bytesPerPixel: 2 * channels, name: "test.png")
            }
        }
        var b = samples.map { UInt8(clamping: $0) }
        return try encodeRaw(&b, width: width, height: height, format: format, bytesPerPixel: channels, name: "test.png")
    }

    private static func encodeRaw(_ bytes: inout [UInt8], width: Int, height: Int, format: UInt32,
                                  bytesPerPixel: Int, name: String) throws -> Data {
        guard width > 0, height > 0, width <= 0x7fff_ffff / max(bytesPerPixel, 1), height <= 0x7fff_ffff else {
            throw ImageError(file: name, reason: "cannot write a \(width)x\(height) PNG")
        }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = format
        defer { png_image_free(&image) }
        // Row stride is in components (bytes for 8-bit formats, 16-bit words for linear ones).
        let componentBytes = format & UInt32(PNG_FORMAT_FLAG_LINEAR) != 0 ? 2 : 1
        let stride = Int32(width * bytesPerPixel / componentBytes)
        var size: png_alloc_size_t = 0
        let measured = bytes.withUnsafeBytes { src in
            png_image_write_to_memory(&image, nil, &size, 0, src.baseAddress, stride, nil)
        }
        guard measured != 0, size > 0 else { throw ImageError(file: name, reason: "PNG encoding failed (\(message(of: &image)))") }
        var out = Data(count: Int(size))
        let ok = out.withUnsafeMutableBytes { dst in
            bytes.withUnsafeBytes { src in
                png_image_write_to_memory(&image, dst.baseAddress, &size, 0, src.baseAddress, stride, nil)
            }
        }
        guard ok != 0 else { throw ImageError(file: name, reason: "PNG encoding failed (\(message(of: &image)))") }
        out.count = Int(size)
        return out
    }

    /// libpng's message, sorted into "truncated" (the data stops early) or "corrupt" (anything else).
    static func failure(_ image: inout png_image, name: String) -> ImageError {
        let text = message(of: &image)
        let truncated = text.contains("end of") || text.contains("EOF") || text.contains("Not enough")
        return ImageError(file: name, reason: (truncated ? "truncated PNG data" : "corrupt PNG") + " (\(text))")
    }

    static func message(of image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            let bytes = raw.prefix { $0 != 0 }
            let text = String(decoding: bytes, as: UTF8.self)
            return text.isEmpty ? "unknown libpng error" : text
        }
    }
}

/// libpng's simplified-API pixel formats (the compound `PNG_FORMAT_*` macros are not visible from Swift).
public enum PNGFormat {
    public static let gray = UInt32(0)
    public static let grayAlpha = UInt32(PNG_FORMAT_FLAG_ALPHA)
    public static let rgb = UInt32(PNG_FORMAT_FLAG_COLOR)
    public static let rgba = UInt32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA)
    /// 16-bit linear-light formats (written with a linear gAMA chunk).
    public static let linearGray = UInt32(PNG_FORMAT_FLAG_LINEAR)
    public static let linearRGB = UInt32(PNG_FORMAT_FLAG_LINEAR | PNG_FORMAT_FLAG_COLOR)
    public static let linearRGBA = UInt32(PNG_FORMAT_FLAG_LINEAR | PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA)
}

/// Refuses decompression bombs before any pixel memory is allocated.
func checkPixelLimit(width: Int, height: Int, maxPixels: Int, name: String) throws {
    guard width > 0, height > 0 else { throw ImageError(file: name, reason: "image has no pixels (\(width)x\(height))") }
    let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
    if overflow || pixels > maxPixels {
        let limit = maxPixels >= 1_000_000 ? "\(maxPixels / 1_000_000) megapixels" : "\(maxPixels) pixels"
        throw ImageError(file: name, reason: "\(width)x\(height) pixels is over the limit of \(limit) (a guard against decompression bombs); shrink the image first")
    }
}
