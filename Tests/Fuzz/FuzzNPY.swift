import Foundation
import Network

/// Any bytes as a .npy file: the parser must throw or return a value, never crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNPY(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    _ = try? NumPyFile.decode(Data(bytes: start, count: count), file: "fuzz.npy")
    return 0
}
