import Foundation
import Imaging

/// Any bytes after a JPEG SOI marker: the decoder must throw or return an image, never crash or hang.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJPEG(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    var bytes: [UInt8] = [0xFF, 0xD8, 0xFF]
    let input = UnsafeBufferPointer(start: start, count: count)
    bytes += input.starts(with: bytes) ? Array(input.dropFirst(3)) : Array(input)
    _ = try? ImageFile.decode(Data(bytes), name: "fuzz.jpg", maxPixels: 1 << 22)
    return 0
}
