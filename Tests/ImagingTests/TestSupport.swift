import Foundation
import TestSupport
import XCTest

/// A little-endian float32 .npy file: (shape, values). Only what NumPy writes for '<f4' C-order arrays.
func loadNpy(_ url: URL) throws -> (shape: [Int], values: [Float]) {
    let bytes = [UInt8](try Data(contentsOf: url))
    guard bytes.count > 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8) else {
        throw NSError(domain: "npy", code: 1, userInfo: [NSLocalizedDescriptionKey: "\(url.lastPathComponent): not a .npy file"])
    }
    let major = bytes[6]
    let headerLength: Int, headerStart: Int
    if major == 1 {
        headerLength = Int(bytes[8]) | Int(bytes[9]) << 8; headerStart = 10
    } else {
        headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24; headerStart = 12
    }
    let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
    guard header.contains("'<f4'"), header.contains("'fortran_order': False") else {
        throw NSError(domain: "npy", code: 2, userInfo: [NSLocalizedDescriptionKey: "unsupported .npy header \(header)"])
    }
    let shapeText = header.components(separatedBy: "'shape': (")[1].components(separatedBy: ")")[0]
    let shape = shapeText.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    let start = headerStart + headerLength
    let count = shape.reduce(1, *)
    var values = [Float](repeating: 0, count: count)
    values.withUnsafeMutableBytes { dst in
        bytes.withUnsafeBytes { src in dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[start..<(start + 4 * count)])) }
    }
    return (shape, values)
}

/// A smooth, colourful test picture with some texture.
func testPattern(width: Int, height: Int) -> RGBImageBox {
    var pixels = [Float](repeating: 0, count: width * height * 3)
    for y in 0..<height {
        for x in 0..<width {
            let i = 3 * (y * width + x)
            pixels[i] = Float(x * 255 / max(width - 1, 1))
            pixels[i + 1] = Float(y * 255 / max(height - 1, 1))
            pixels[i + 2] = Float((x * 7 + y * 13) % 256)
        }
    }
    return RGBImageBox(width: width, height: height, pixels: pixels)
}

struct RGBImageBox { var width: Int; var height: Int; var pixels: [Float] }
