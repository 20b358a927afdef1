import Foundation

/// A file that cannot be used or written, as one line naming it: `out/grid.png: cannot write (No space left on device)`.
public struct FileProblem: Error, CustomStringConvertible, Equatable, Sendable {
    /// The path as the user gave it (relative stays relative).
    public var file: String
    public var reason: String

    public init(_ file: String, _ reason: String) {
        self.file = file
        self.reason = reason
    }

    public var description: String { "\(TerminalText.escaped(file)): \(reason)" }
}

extension FileProblem: LocalizedError {
    public var errorDescription: String? { description }
}

/// The message of the current `errno`, in words.
public func systemErrorText(_ code: Int32 = errno) -> String {
    String(cString: strerror(code))
}

/// What a Foundation (Cocoa/POSIX) error means, without its domain and code: the underlying POSIX reason when there
/// is one ("No such file or directory"), else Foundation's own sentence with the file path when it names one.
public func plainReason(_ error: Error) -> String {
    let ns = error as NSError
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        return systemErrorText(Int32(underlying.code))
    }
    if ns.domain == NSPOSIXErrorDomain { return systemErrorText(Int32(ns.code)) }
    switch CocoaError.Code(rawValue: ns.code) {
    case .fileNoSuchFile, .fileReadNoSuchFile: return "no such file"
    case .fileReadNoPermission, .fileWriteNoPermission: return "permission denied"
    case .fileWriteOutOfSpace: return "no space left on the device"
    case .fileWriteFileExists: return "a file with that name already exists"
    case .fileReadCorruptFile, .fileReadInapplicableStringEncoding: return "not readable as text (wrong encoding or corrupt)"
    case .fileReadTooLarge: return "too large to read"
    case .fileWriteVolumeReadOnly: return "the volume is read-only"
    default: break
    }
    let text = ns.localizedDescription
    return text.contains("NSCocoaErrorDomain") || text.contains("error ") ? "input/output error" : text
}
