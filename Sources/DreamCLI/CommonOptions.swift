import ArgumentParser
import Foundation
import Models
import Parallel
import Tensors

/// Options every model-using command shares.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Model: a path to an .onnx file or a known name (googlenet, squeezenet).", valueName: "name|path"))
    var model: String?

    @Option(name: .long, help: "Threads for the computation (default: all cores).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    /// Loads the model, telling the user on stderr when it is being fetched.
    func load() throws -> LoadedModel {
        Threading.configure(threads: threads)
        let store = ModelStore.fromEnvironment { message in Console.status(message) }
        return try LoadedModel.load(model, store: store)
    }
}

/// Output helpers: results on stdout, progress and notes on stderr.
enum Console {
    static var quiet = false

    static func status(_ message: String) {
        guard !quiet else { return }
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }

    static var stderrIsTerminal: Bool { isatty(STDERR_FILENO) != 0 }

    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
