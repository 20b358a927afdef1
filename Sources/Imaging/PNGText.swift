import CPNG
import Foundation

/// PNG text metadata (`tEXt`, `iTXt`), handled at the chunk level because the simplified API does not write text.
extension PNGCodec {
    /// Inserts one chunk per pair right after IHDR: `tEXt` when the text is Latin-1, uncompressed `iTXt` (UTF-8) otherwise.
    static func insertTextChunks(_ text: [(key: String, value: String)], into png: Data, name: String) throws -> Data {
        let bytes = [UInt8](png)
        // Signature (8) + IHDR (4 length + 4 type + 13 data + 4 CRC).
        let afterIHDR = 8 + 25
        guard bytes.count > afterIHDR, Array(bytes[12..<16]) == Array("IHDR".utf8) else {
            throw ImageError(file: name, reason: "PNG encoder produced no IHDR chunk")
        }
        var out = Array(bytes[0..<afterIHDR])
        for (key, value) in text {
            guard let keyword = key.data(using: .isoLatin1), (1...79).contains(keyword.count), !keyword.contains(0),
                  keyword.first != 0x20, keyword.last != 0x20 else {
                throw ImageError(file: name, reason: "invalid PNG text keyword '\(key)' (1-79 Latin-1 characters, no leading/trailing space)")
            }
            if let latin1 = value.data(using: .isoLatin1), !latin1.contains(0) {
                appendChunk("tEXt", [UInt8](keyword) + [0] + [UInt8](latin1), to: &out)
            } else {
                // keyword, 0, compression flag 0, method 0, empty language tag 0, empty translated keyword 0, UTF-8 text
                appendChunk("iTXt", [UInt8](keyword) + [0, 0, 0, 0, 0] + Array(value.utf8), to: &out)
            }
        }
        out.append(contentsOf: bytes[afterIHDR...])
        return Data(out)
    }

    static func appendChunk(_ type: String, _ payload: [UInt8], to out: inout [UInt8]) {
        let length = UInt32(payload.count)
        out += [UInt8(length >> 24), UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff)]
        let typeAndData = Array(type.utf8) + payload
        out += typeAndData
        let crc = typeAndData.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
        out += [UInt8(crc >> 24), UInt8(crc >> 16 & 0xff), UInt8(crc >> 8 & 0xff), UInt8(crc & 0xff)]
    }

    /// The `tEXt` and uncompressed `iTXt` entries of a PNG (later duplicates win); chunks with a bad CRC are ignored.
    public static func readText(_ data: Data, name: String) throws -> [String: String] {
        let bytes = [UInt8](data)
        guard bytes.count >= 8, Array(bytes[0..<8]) == signature else {
            throw ImageError(file: name, reason: "not a PNG file")
        }
        var result: [String: String] = [:]
        var pos = 8
        while pos + 12 <= bytes.count {
            let length = Int(bytes[pos]) << 24 | Int(bytes[pos + 1]) << 16 | Int(bytes[pos + 2]) << 8 | Int(bytes[pos + 3])
            guard length <= bytes.count - pos - 12 else { throw ImageError(file: name, reason: "truncated PNG data") }
            let type = String(decoding: bytes[(pos + 4)..<(pos + 8)], as: UTF8.self)
            let payload = Array(bytes[(pos + 8)..<(pos + 8 + length)])
            let stored = UInt32(bytes[pos + 8 + length]) << 24 | UInt32(bytes[pos + 9 + length]) << 16
                | UInt32(bytes[pos + 10 + length]) << 8 | UInt32(bytes[pos + 11 + length])
            let crc = bytes[(pos + 4)..<(pos + 8 + length)].withContiguousStorageIfAvailable {
                UInt32(crc32(0, $0.baseAddress, uInt($0.count)))
            } ?? 0
            pos += 12 + length
            if crc != stored { continue }
            if type == "IEND" { break }
            guard let zero = payload.firstIndex(of: 0) else { continue }
            let key = String(data: Data(payload[..<zero]), encoding: .isoLatin1) ?? ""
            if type == "tEXt" {
                let value = Data(payload[(zero + 1)...])
                result[key] = String(data: value, encoding: .isoLatin1) ?? ""
            } else if type == "iTXt" {
                // keyword 0 flag method language 0 translated 0 text; compressed iTXt is skipped.
                let rest = payload[(zero + 1)...]
                guard rest.count >= 2, rest[rest.startIndex] == 0 else { continue }
                var i = rest.startIndex + 2
                guard let langEnd = payload[i...].firstIndex(of: 0) else { continue }
                i = langEnd + 1
                guard let transEnd = payload[i...].firstIndex(of: 0) else { continue }
                result[key] = String(decoding: payload[(transEnd + 1)...], as: UTF8.self)
            }
        }
        return result
    }
}
