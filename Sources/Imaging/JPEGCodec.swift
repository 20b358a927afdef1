import CJPEG
import Foundation

/// JPEG through the TurboJPEG 2.1 API (`tj*`), which reports errors as return codes instead of exiting.
public enum JPEGCodec {
    /// Decodes baseline, progressive, greyscale and CMYK/YCCK JPEGs to RGB and applies the EXIF orientation.
    public static func decode(_ data: Data, name: String, maxPixels: Int) throws -> RGBImage {
        guard let handle = tjInitDecompress() else { throw ImageError(file: name, reason: "cannot start the JPEG decoder") }
        defer { tjDestroy(handle) }
        let markers = JPEGMarkers(data)
        return try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> RGBImage in
            let src = raw.bindMemory(to: UInt8.self).baseAddress!
            let size = UInt(raw.count)
            var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
            if tjDecompressHeader3(handle, src, size, &width, &height, &subsampling, &colorspace) != 0 {
                throw ImageError(file: name, reason: "corrupt JPEG header (\(errorText(handle)))")
            }
            let w = Int(width), h = Int(height)
            guard w > 0, h > 0 else { throw ImageError(file: name, reason: "truncated or corrupt JPEG (no frame header)") }
            try checkPixelLimit(width: w, height: h, maxPixels: maxPixels, name: name)
            let cmyk = colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue)
            let channels = cmyk ? 4 : 3
            var buffer = [UInt8](repeating: 0, count: w * h * channels)
            let format = cmyk ? Int32(TJPF_CMYK.rawValue) : Int32(TJPF_RGB.rawValue)
            let status = buffer.withUnsafeMutableBufferPointer { dst in
                tjDecompress2(handle, src, size, dst.baseAddress, width, 0, height, format, Int32(TJFLAG_ACCURATEDCT | TJFLAG_LIMITSCANS))
            }
            if status != 0 {
                let text = errorText(handle)
                let isWarning = tjGetErrorCode(handle) == Int32(TJERR_WARNING.rawValue)
                // Stray bytes before a marker are harmless and common in camera files; any other warning
                // (premature end of data, bad Huffman code) means part of the picture is missing.
                if !(isWarning && text.contains("extraneous bytes")) {
                    let truncated = text.contains("Premature end")
                    throw ImageError(file: name, reason: (truncated ? "truncated or corrupt JPEG" : "corrupt JPEG") + " (\(text))")
                }
            }
            var image: RGBImage
            if cmyk {
                image = cmykToRGB(buffer, width: w, height: h, adobeInverted: markers.hasAdobe)
            } else {
                image = buffer.withUnsafeBufferPointer { RGBImage(width: w, height: h, bytes: $0) }
            }
            if let orientation = markers.exifOrientation, orientation != 1 {
                image = image.applyingEXIFOrientation(orientation)
            }
            return image
        }
    }

    /// Encodes 8-bit RGB (values rounded and clamped) with 4:2:0 chroma subsampling; `progressive` writes a progressive JPEG.
    public static func encode(_ image: RGBImage, quality: Int = 92, progressive: Bool = false, name: String = "image.jpg") throws -> Data {
        guard image.width > 0, image.height > 0, image.width <= 65535, image.height <= 65535 else {
            throw ImageError(file: name, reason: "cannot write a \(image.width)x\(image.height) JPEG (1...65535 pixels per side)")
        }
        return try encodeRaw(image.bytes(), width: image.width, height: image.height, pixelFormat: Int32(TJPF_RGB.rawValue),
                             subsampling: Int32(TJSAMP_420.rawValue), quality: quality, progressive: progressive, name: name)
    }

    /// Encodes raw interleaved samples in any TurboJPEG pixel format (e.g. `TJPF_CMYK`), so tests can make unusual files.
    public static func encodeForTesting(_ bytes: [UInt8], width: Int, height: Int, pixelFormat: Int32, subsampling: Int32,
                                        quality: Int = 95, progressive: Bool = false) throws -> Data {
        try encodeRaw(bytes, width: width, height: height, pixelFormat: pixelFormat, subsampling: subsampling,
                      quality: quality, progressive: progressive, name: "test.jpg")
    }

    private static func encodeRaw(_ bytes: [UInt8], width: Int, height: Int, pixelFormat: Int32, subsampling: Int32,
                                  quality: Int, progressive: Bool, name: String) throws -> Data {
        guard let handle = tjInitCompress() else { throw ImageError(file: name, reason: "cannot start the JPEG encoder") }
        defer { tjDestroy(handle) }
        var jpeg: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        defer { if let jpeg { tjFree(jpeg) } }
        let flags = Int32(TJFLAG_ACCURATEDCT) | (progressive ? Int32(TJFLAG_PROGRESSIVE) : 0)
        let status = bytes.withUnsafeBufferPointer { src in
            tjCompress2(handle, src.baseAddress, Int32(width), 0, Int32(height), pixelFormat, &jpeg, &size,
                        subsampling, Int32(min(max(quality, 1), 100)), flags)
        }
        guard status == 0, let jpeg else { throw ImageError(file: name, reason: "JPEG encoding failed (\(errorText(handle)))") }
        return Data(bytes: jpeg, count: Int(size))
    }

    static func errorText(_ handle: tjhandle) -> String {
        guard let text = tjGetErrorStr2(handle) else { return "unknown TurboJPEG error" }
        return String(cString: text)
    }

    /// Adobe applications store CMYK inverted (0 = full ink); others store it plainly.
    static func cmykToRGB(_ cmyk: [UInt8], width: Int, height: Int, adobeInverted: Bool) -> RGBImage {
        var pixels = [Float](repeating: 0, count: width * height * 3)
        cmyk.withUnsafeBufferPointer { src in
            pixels.withUnsafeMutableBufferPointer { dst in
                for i in 0..<(width * height) {
                    var k = Float(src[4 * i + 3])
                    if !adobeInverted { k = 255 - k }
                    for c in 0..<3 {
                        var v = Float(src[4 * i + c])
                        if !adobeInverted { v = 255 - v }
                        dst[3 * i + c] = v * k / 255
                    }
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }
}

/// The few JPEG header facts the TurboJPEG API does not report: the EXIF orientation and the Adobe APP14 marker.
struct JPEGMarkers {
    var exifOrientation: Int?
    var hasAdobe = false

    init(_ data: Data) {
        let b = [UInt8](data.prefix(1 << 20))   // metadata lives before the first scan, near the start
        guard b.count >= 4, b[0] == 0xFF, b[1] == 0xD8 else { return }
        var pos = 2
        while pos + 4 <= b.count {
            guard b[pos] == 0xFF else { return }
            let marker = b[pos + 1]
            if marker == 0xFF { pos += 1; continue }   // fill byte
            if marker == 0xDA || marker == 0xD9 { return }   // start of scan / end of image
            if (0xD0...0xD7).contains(marker) || marker == 0x01 { pos += 2; continue }
            let length = Int(b[pos + 2]) << 8 | Int(b[pos + 3])
            guard length >= 2, pos + 2 + length <= b.count else { return }
            let body = b[(pos + 4)..<(pos + 2 + length)]
            if marker == 0xE1, exifOrientation == nil, body.starts(with: Array("Exif".utf8) + [0, 0]) {
                exifOrientation = JPEGMarkers.orientation(tiff: Array(body.dropFirst(6)))
            } else if marker == 0xEE, body.starts(with: Array("Adobe".utf8)) {
                hasAdobe = true
            }
            pos += 2 + length
        }
    }

    /// Tag 0x0112 of IFD0 in a TIFF block (either byte order); nil when absent or malformed.
    static func orientation(tiff t: [UInt8]) -> Int? {
        guard t.count >= 8 else { return nil }
        let little: Bool
        if t[0] == 0x49 && t[1] == 0x49 { little = true } else if t[0] == 0x4D && t[1] == 0x4D { little = false } else { return nil }
        func u16(_ i: Int) -> Int? {
            guard i >= 0, i + 2 <= t.count else { return nil }
            return little ? Int(t[i]) | Int(t[i + 1]) << 8 : Int(t[i]) << 8 | Int(t[i + 1])
        }
        func u32(_ i: Int) -> Int? {
            guard let a = u16(i), let b = u16(i + 2) else { return nil }
            return little ? a | b << 16 : a << 16 | b
        }
        guard u16(2) == 42, let ifd = u32(4), let count = u16(ifd) else { return nil }
        for e in 0..<count {
            let entry = ifd + 2 + 12 * e
            guard let tag = u16(entry) else { return nil }
            if tag == 0x0112, let value = u16(entry + 8), (1...8).contains(value) { return value }
        }
        return nil
    }
}
