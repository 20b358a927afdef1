import Foundation
import Imaging

/// Any bytes after the PNG signature: the decoder must throw or return an image, never crash or hang.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPNG(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    var bytes: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    let input = UnsafeBufferPointer(start: start, count: count)
    bytes += input.starts(with: bytes) ? Array(input.dropFirst(8)) : Array(input)
    _ = try? ImageFile.decode(Data(bytes), name: "fuzz.png", maxPixels: 1 << 22)
    return 0
}
