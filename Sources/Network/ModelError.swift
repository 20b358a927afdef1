import Foundation
import SafeIO

/// Why a model, tensor or array file could not be read or written; every message names the file.
public enum ModelError: Error, CustomStringConvertible, LocalizedError {
    /// The file does not exist.
    case fileNotFound(file: String)
    /// The file exists but could not be read or written (permissions, I/O error …).
    case ioFailed(file: String, reason: String)
    /// The bytes are not a protobuf message of the expected kind.
    case invalidProtobuf(file: String, what: String, reason: String)
    /// The file decodes but breaks an ONNX rule (missing graph, dangling value, bad tensor …).
    case invalidModel(file: String, reason: String)
    /// The file is valid ONNX but uses something dream does not support.
    case unsupported(file: String, reason: String)
    /// An external-data location that is absolute or leaves the model's directory.
    case unsafeExternalDataLocation(file: String, tensor: String, location: String, reason: String)
    /// A malformed .npy file.
    case invalidNumPy(file: String, reason: String)
    /// A valid .npy file whose layout or dtype dream does not read.
    case unsupportedNumPy(file: String, reason: String)

    public var description: String {
        switch self {
        case .fileNotFound(let file):
            return "\(file): no such file"
        case .ioFailed(let file, let reason):
            return "\(file): \(reason)"
        case .invalidProtobuf(let file, let what, let reason):
            return "\(file): not a valid \(what) file (protobuf decoding failed: \(reason))"
        case .invalidModel(let file, let reason):
            return "\(file): invalid ONNX model: \(reason)"
        case .unsupported(let file, let reason):
            return "\(file): unsupported: \(reason)"
        case .unsafeExternalDataLocation(let file, let tensor, let location, let reason):
            return "\(file): refusing external data location '\(location)' of tensor '\(tensor)': \(reason)"
        case .invalidNumPy(let file, let reason):
            return "\(file): not a valid .npy file: \(reason)"
        case .unsupportedNumPy(let file, let reason):
            return "\(file): unsupported .npy file: \(reason)"
        }
    }

    public var errorDescription: String? { description }
}

/// Reads a whole file, turning Foundation's errors into `ModelError`s that name the file.
func readFile(_ url: URL, mapped: Bool = false) throws -> Data {
    guard FileManager.default.fileExists(atPath: url.path) else { throw ModelError.fileNotFound(file: url.path) }
    do {
        try InputFile.requireRegular(url.path, shown: url.path)
    } catch let problem as FileProblem {
        throw ModelError.ioFailed(file: url.path, reason: problem.reason)
    }
    do {
        return try Data(contentsOf: url, options: mapped ? [.alwaysMapped] : [])
    } catch {
        throw ModelError.ioFailed(file: url.path, reason: "cannot read (\(plainReason(error)))")
    }
}

/// Writes `data` to a temporary file beside `url`, then renames it over `url`, so readers never see half a file
/// (SafeIO's writer: the temporary file disappears on error, disk full and Ctrl-C).
func writeFileAtomically(_ data: Data, to url: URL) throws {
    do {
        try AtomicFile.write(data, to: url)
    } catch let problem as FileProblem {
        throw ModelError.ioFailed(file: problem.file, reason: problem.reason)
    }
}
