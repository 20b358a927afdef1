import ArgumentParser
import Foundation
import Models
import Parallel
import SafeIO
import Tensors

/// Options every model-using command shares.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Model: a path to an .onnx file or a known name (googlenet, squeezenet; for timing with random weights: mobilenetv2-shapes, resnet18-shapes).", valueName: "name|path"))
    var model: String?

    @Option(name: .long, parsing: .unconditional, help: "Threads for the computation (default: all cores).")
    var threads: Int?

    func validate() throws {
        if let threads { try OptionCheck.range(threads, "--threads", 1...1024) }
    }

    /// Loads the model, telling the user on stderr when it is being fetched.
    func load() throws -> LoadedModel {
        Threading.configure(threads: threads)
        let store = ModelStore.fromEnvironment { message in Console.status(message) }
        let loaded = try LoadedModel.load(model, store: store)
        Console.model = loaded.url.path
        return loaded
    }
}

/// Output helpers: results on stdout, progress and notes on stderr.
enum Console {
    static var quiet = false
    /// The model file in use, so that an error raised while running it can name it.
    static var model: String?

    static func status(_ message: String) {
        guard !quiet else { return }
        // Layer names and paths in notes come from files: control characters are shown escaped.
        FileHandle.standardError.write(Data((TerminalText.escaped(message) + "\n").utf8))
    }

    static var stderrIsTerminal: Bool { isatty(STDERR_FILENO) != 0 }

    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

/// Parse-time checks of numbers on the command line: each failure names the option and is a usage error (exit 2).
/// Numeric options parse with `.unconditional`, so that `--octaves -1` reaches these checks instead of being taken
/// for an option.
enum OptionCheck {
    static func range(_ value: Int, _ option: String, _ allowed: ClosedRange<Int>) throws {
        guard allowed.contains(value) else {
            if allowed.upperBound == Int.max { throw ValidationError("\(option) must be at least \(allowed.lowerBound), not \(value)") }
            throw ValidationError("\(option) must be from \(allowed.lowerBound) to \(allowed.upperBound), not \(value)")
        }
    }

    /// A finite number in `(above, atMost]` (or `[atLeast, atMost]`).
    static func number(_ value: Float, _ option: String, above: Float? = nil, atLeast: Float? = nil, atMost: Float) throws {
        guard value.isFinite else { throw ValidationError("\(option) must be a finite number, not \(value)") }
        if let above, !(value > above) { throw ValidationError("\(option) must be greater than \(above.cleanText), not \(value.cleanText)") }
        if let atLeast, !(value >= atLeast) { throw ValidationError("\(option) must be at least \(atLeast.cleanText), not \(value.cleanText)") }
        guard value <= atMost else { throw ValidationError("\(option) must be at most \(atMost.cleanText), not \(value.cleanText)") }
    }

    /// Early checks of an output file given by `option`: a folder that exists, never one of `inputs`; problems are
    /// usage errors, found before any work starts.
    static func outputFile(_ path: String, option: String, inputs: [String?], imageFormat: Bool) throws {
        if imageFormat {
            let ext = URL(fileURLWithPath: path).pathExtension.lowercased()
            guard ["png", "jpg", "jpeg"].contains(ext) else {
                throw ValidationError("\(option) \(TerminalText.escaped(path)): " + (ext.isEmpty ? "no file extension (use .png, .jpg or .jpeg)"
                                                           : "unknown image extension '.\(TerminalText.escaped(ext))' (use .png, .jpg or .jpeg)"))
            }
        }
        do {
            try OutputPath.checkOutputFile(path, inputs: inputs.compactMap { $0 }.filter { FileManager.default.fileExists(atPath: $0) },
                                           option: option)
        } catch let problem as FileProblem {
            throw ValidationError(problem.description)
        }
    }
}

extension Float {
    /// 1.5 -> "1.5", 2 -> "2", nan -> "nan".
    var cleanText: String { rounded() == self && abs(self) < 1e15 ? String(Int(self)) : "\(self)" }
}
