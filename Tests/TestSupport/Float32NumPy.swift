import Foundation

/// A reader for the golden `.npy` files in tests that must not depend on Network (whose `NumPyFile` is the
/// program's full reader): little-endian float32, C order, format versions 1 to 3, nothing else.
public enum Float32NumPy {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public static func read(_ url: URL) throws -> (shape: [Int], values: [Float]) {
        let bytes = [UInt8](try Data(contentsOf: url))
        guard bytes.count > 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8) else {
            throw Failure(description: "\(url.lastPathComponent): not a .npy file")
        }
        let major = bytes[6]
        let headerLength: Int, headerStart: Int
        if major == 1 {
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8; headerStart = 10
        } else {
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24; headerStart = 12
        }
        guard bytes.count >= headerStart + headerLength else { throw Failure(description: "\(url.lastPathComponent): truncated header") }
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        guard header.contains("'<f4'"), header.contains("'fortran_order': False"),
              let shapeText = header.components(separatedBy: "'shape': (").dropFirst().first?.components(separatedBy: ")").first else {
            throw Failure(description: "\(url.lastPathComponent): unsupported .npy header \(header)")
        }
        let shape = shapeText.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let start = headerStart + headerLength
        let count = shape.reduce(1, *)
        guard bytes.count >= start + 4 * count else { throw Failure(description: "\(url.lastPathComponent): truncated data") }
        var values = [Float](repeating: 0, count: count)
        values.withUnsafeMutableBytes { dst in
            bytes.withUnsafeBytes { src in dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[start..<(start + 4 * count)])) }
        }
        return (shape, values)
    }
}
