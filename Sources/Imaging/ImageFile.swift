import Foundation
import SafeIO

/// Reading and writing image files: the format is sniffed from the first bytes on read, chosen by extension on write.
public enum ImageFile {
    /// Largest image accepted by default (decompression-bomb limit): 100 megapixels.
    public static var defaultMaxPixels: Int { 100_000_000 }

    /// Reads a PNG or JPEG file (whatever its extension) into RGB 0...255.
    public static func read(_ url: URL, maxPixels: Int = defaultMaxPixels) throws -> RGBImage {
        let data = try readData(url)
        return try decode(data, name: displayName(url), maxPixels: maxPixels)
    }

    /// Decodes PNG or JPEG bytes; `name` is used in error messages.
    public static func decode(_ data: Data, name: String, maxPixels: Int = defaultMaxPixels) throws -> RGBImage {
        switch sniff(data) {
        case .png: return try PNGCodec.decode(data, name: name, maxPixels: maxPixels)
        case .jpeg: return try JPEGCodec.decode(data, name: name, maxPixels: maxPixels)
        case .other(let what):
            if data.isEmpty { throw ImageError(file: name, reason: "empty file") }
            throw ImageError(file: name, reason: "not a PNG or JPEG file" + (what.map { " (looks like \($0))" } ?? ""))
        }
    }

    /// Writes an 8-bit RGB PNG atomically (values rounded and clamped), with optional `tEXt` metadata.
    public static func writePNG(_ image: RGBImage, to url: URL, text: [(key: String, value: String)] = []) throws {
        try atomically(url) { try AtomicFile.write(PNGCodec.encode(image, text: text, name: displayName(url)), to: url) }
    }

    /// SafeIO's problems as this module's error type (one error type for every image read and write).
    static func atomically(_ url: URL, _ body: () throws -> Void) throws {
        do { try body() } catch let problem as FileProblem { throw ImageError(file: displayName(url), reason: problem.reason) }
    }

    /// Writes a 4:2:0 JPEG atomically; `text` goes into a COM segment (see JPEGComment.swift).
    public static func writeJPEG(_ image: RGBImage, to url: URL, quality: Int = 92, text: [(key: String, value: String)] = []) throws {
        try atomically(url) {
            var data = try JPEGCodec.encode(image, quality: quality, name: displayName(url))
            if !text.isEmpty { data = try JPEGCodec.insertComment(JPEGCodec.textComment(text), into: data, name: displayName(url)) }
            try AtomicFile.write(data, to: url)
        }
    }

    /// Writes PNG or JPEG by the extension (.png, .jpg, .jpeg, any case); `text` goes into PNG text chunks or a JPEG comment.
    public static func write(_ image: RGBImage, to url: URL, text: [(key: String, value: String)] = [], quality: Int = 92) throws {
        switch url.pathExtension.lowercased() {
        case "png": try writePNG(image, to: url, text: text)
        case "jpg", "jpeg": try writeJPEG(image, to: url, quality: quality, text: text)
        case let ext:
            throw ImageError(url, ext.isEmpty ? "no file extension (use .png, .jpg or .jpeg)"
                                              : "unknown image extension '.\(ext)' (use .png, .jpg or .jpeg)")
        }
    }

    /// The text metadata (`tEXt`, uncompressed `iTXt`) of a PNG file.
    public static func readPNGText(_ url: URL) throws -> [String: String] {
        try PNGCodec.readText(readData(url), name: displayName(url))
    }

    /// The text metadata of a PNG (text chunks) or JPEG (JSON comment written by `write`), whatever the extension.
    public static func readText(_ url: URL) throws -> [String: String] {
        let data = try readData(url)
        switch sniff(data) {
        case .png: return try PNGCodec.readText(data, name: displayName(url))
        case .jpeg: return JPEGCodec.readText(data)
        case .other: throw ImageError(url, "not a PNG or JPEG file")
        }
    }

    enum Format: Equatable { case png, jpeg, other(String?) }

    static func sniff(_ data: Data) -> Format {
        let head = [UInt8](data.prefix(12))
        if head.starts(with: PNGCodec.signature) { return .png }
        if head.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        if head.starts(with: Array("GIF8".utf8)) { return .other("GIF") }
        if head.starts(with: Array("BM".utf8)) { return .other("BMP") }
        if head.starts(with: Array("RIFF".utf8)), head.count >= 12, Array(head[8..<12]) == Array("WEBP".utf8) { return .other("WebP") }
        if head.starts(with: [0x49, 0x49, 0x2A, 0x00]) || head.starts(with: [0x4D, 0x4D, 0x00, 0x2A]) { return .other("TIFF") }
        if head.count >= 12, Array(head[4..<8]) == Array("ftyp".utf8) { return .other("HEIF/AVIF or MP4") }
        return .other(nil)
    }

    static func displayName(_ url: URL) -> String { url.isFileURL ? url.relativePath : url.absoluteString }

    static func readData(_ url: URL) throws -> Data {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw ImageError(url, "no such file")
        }
        if isDirectory.boolValue { throw ImageError(url, "is a directory, not an image") }
        do {
            try InputFile.requireRegular(url.path, shown: displayName(url))
        } catch let problem as FileProblem {
            throw ImageError(url, problem.reason)
        }
        do {
            return try Data(contentsOf: url)
        } catch {
            throw ImageError(url, "cannot read (\(plainReason(error)))")
        }
    }
}
