import Foundation

/// Text metadata in JPEG files: the key/value pairs PNGs keep in text chunks, kept in one COM segment as a JSON object
/// (escaped by JSON, readable by any tool that shows JPEG comments). TurboJPEG writes no COM, so the segment is
/// inserted right after SOI in the encoded bytes.
extension JPEGCodec {
    /// Largest COM payload: the 16-bit segment length counts itself (2 bytes).
    public static let maxCommentBytes = 65533

    /// The pairs as a JSON object (later duplicates win, as when reading PNG text).
    static func textComment(_ text: [(key: String, value: String)]) -> [UInt8] {
        var object: [String: String] = [:]
        for (key, value) in text { object[key] = value }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(object)) ?? Data("{}".utf8))
    }

    /// Inserts a COM segment holding `comment` after the SOI marker.
    public static func insertComment(_ comment: [UInt8], into jpeg: Data, name: String) throws -> Data {
        guard comment.count <= maxCommentBytes else {
            throw ImageError(file: name, reason: "metadata too long for a JPEG comment (\(comment.count) bytes, at most \(maxCommentBytes)); write a PNG instead")
        }
        guard jpeg.count >= 4, jpeg[jpeg.startIndex] == 0xFF, jpeg[jpeg.startIndex + 1] == 0xD8 else {
            throw ImageError(file: name, reason: "JPEG encoder produced no SOI marker")
        }
        let length = comment.count + 2
        var out = Data(capacity: jpeg.count + length + 2)
        out.append(contentsOf: [0xFF, 0xD8, 0xFF, 0xFE, UInt8(length >> 8), UInt8(length & 0xFF)])
        out.append(contentsOf: comment)
        out.append(jpeg.dropFirst(2))
        return out
    }

    /// The payloads of the COM segments before the first scan.
    public static func comments(in jpeg: Data) -> [[UInt8]] {
        let b = [UInt8](jpeg.prefix(1 << 20))
        guard b.count >= 4, b[0] == 0xFF, b[1] == 0xD8 else { return [] }
        var result: [[UInt8]] = []
        var pos = 2
        while pos + 4 <= b.count {
            guard b[pos] == 0xFF else { break }
            let marker = b[pos + 1]
            if marker == 0xFF { pos += 1; continue }
            if marker == 0xDA || marker == 0xD9 { break }
            if (0xD0...0xD7).contains(marker) || marker == 0x01 { pos += 2; continue }
            let length = Int(b[pos + 2]) << 8 | Int(b[pos + 3])
            guard length >= 2, pos + 2 + length <= b.count else { break }
            if marker == 0xFE { result.append(Array(b[(pos + 4)..<(pos + 2 + length)])) }
            pos += 2 + length
        }
        return result
    }

    /// The key/value pairs of every COM segment that holds a JSON object of strings (others are ignored).
    public static func readText(_ jpeg: Data) -> [String: String] {
        var result: [String: String] = [:]
        for comment in comments(in: jpeg) {
            guard let object = try? JSONDecoder().decode([String: String].self, from: Data(comment)) else { continue }
            result.merge(object) { $1 }
        }
        return result
    }
}
