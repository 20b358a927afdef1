import Foundation
import Models

/// Any bytes as a model description (JSON): decoding and validation must throw or succeed, never crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDescription(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    if let description = try? ModelDescription(json: Data(bytes: start, count: count)) {
        _ = try? description.validated(file: "fuzz.json")
    }
    return 0
}
