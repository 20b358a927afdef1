import Foundation

/// An image that cannot be read or written; prints as one line naming the file: `photo.jpg: truncated JPEG data`.
public struct ImageError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file as the user named it (a relative path stays relative).
    public var file: String
    /// What went wrong, without the file name.
    public var reason: String

    public init(file: String, reason: String) {
        self.file = file
        self.reason = reason
    }

    public init(_ url: URL, _ reason: String) {
        self.init(file: url.isFileURL ? url.relativePath : url.absoluteString, reason: reason)
    }

    public var description: String { "\(file): \(reason)" }
}

extension ImageError: LocalizedError {
    public var errorDescription: String? { description }
}
