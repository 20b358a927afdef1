import ArgumentParser
import Dreaming
import Foundation
import Imaging
import Models
import Tensors

/// `dream --from out.png new.jpg [options]`: the recorded options, then the ones typed now (which replace recorded
/// options of the same name), parsed again as one `dream` command line.
struct Rerun {
    var recordFile: String

    /// Options that go together: typing any of them replaces all the recorded ones.
    static let objectiveGroup: Set<String> = ["--layer", "--channel", "--class", "--objective"]

    static func readRecord(_ path: String) throws -> DreamRecord {
        let url = URL(fileURLWithPath: path)
        guard let record = try DreamRecord(text: try ImageFile.readText(url), file: path) else {
            throw RecordError(message: "\(path) holds no dream record (not written by `dream IMAGE`, or its metadata was stripped)")
        }
        return record
    }

    func run() throws {
        let record = try Self.readRecord(recordFile)
        let typed = Self.typedArguments()
        let typedNames = Set(Self.optionNames(typed))
        var recorded: [String] = []
        var i = 0
        let args = record.arguments
        while i < args.count {
            let name = args[i]
            let takesValue = i + 1 < args.count && !args[i + 1].hasPrefix("--")
            let group = Self.objectiveGroup.contains(name) ? Self.objectiveGroup : [name]
            if typedNames.isDisjoint(with: group) { recorded += takesValue ? [name, args[i + 1]] : [name] }
            i += takesValue ? 2 : 1
        }
        let merged = recorded + typed
        if merged.contains("--portable") {
            setenv("DREAM_SIMD", SIMDLevel.portable.description, 1)
            SIMDLevel.pin(.portable)
        }
        if merged.contains("--portable"), !typedNames.contains("--portable"),
           let core = BLASCore.recommendedOverride(portable: true) {
            // The kernels are chosen when OpenBLAS loads: start again with the portable ones, as --portable does.
            setenv("OPENBLAS_CORETYPE", core, 1)
            setenv("DREAM_BLAS_CORE_CHOSEN", "1", 1)
            let argv = (CommandLine.arguments + ["--portable"]).map { strdup($0) } + [nil]
            execv("/proc/self/exe", argv)
            throw RecordError(message: "cannot restart with the portable OpenBLAS kernels the record asks for")
        }
        let command = try DreamCommand.parse(merged)
        try check(record, command: command, typedNames: typedNames)
        Console.quiet = command.options.quiet
        Console.status("rerunning \(recordFile): " + merged.map(Self.shellQuoted).joined(separator: " "))
        try command.run()
    }

    /// The recorded model and guide must be the files resolved now (unless the command line names others).
    func check(_ record: DreamRecord, command: DreamCommand, typedNames: Set<String>) throws {
        let store = ModelStore.fromEnvironment { Console.status($0) }
        let modelURL = try store.resolve(command.modelOptions.model)
        let sha = try SHA256.hexDigest(ofFile: modelURL)
        if sha != record.modelSHA256 {
            if typedNames.contains("--model") {
                Console.status("note: \(modelURL.lastPathComponent) (SHA-256 \(sha)) is not the recorded model \(record.model) (SHA-256 \(record.modelSHA256))")
            } else {
                throw RecordError(message: "\(recordFile) was dreamt with \(record.model) (SHA-256 \(record.modelSHA256)), but the model resolved now is \(modelURL.path) (SHA-256 \(sha)): give the recorded file with --model, or --model to use this one anyway")
            }
        }
        if !record.blas.contains("\(BLASCore.name) kernels") || !record.blas.hasSuffix(BLASCore.simdSummary) {
            Console.status("note: \(recordFile) was dreamt with \(record.blas); this run uses \(BLASCore.name) kernels and \(BLASCore.simdSummary), so the bytes may differ slightly (--portable avoids this)")
        }
        if let guide = command.options.guide, guide == record.guide, !typedNames.contains("--guide"), let recordedSHA = record.guideSHA256 {
            let now = try SHA256.hexDigest(ofFile: URL(fileURLWithPath: guide))
            if now != recordedSHA {
                throw RecordError(message: "the guide \(guide) has changed since \(recordFile) was dreamt (SHA-256 \(now), recorded \(recordedSHA)): give --guide")
            }
        }
    }

    /// The arguments typed after `dream` (and an explicit `dream` subcommand), without --from and its value.
    static func typedArguments() -> [String] {
        var args = Array(CommandLine.arguments.dropFirst())
        if args.first == DreamCommand.configuration.commandName { args.removeFirst() }
        var out: [String] = []
        var i = 0
        while i < args.count {
            if args[i] == "--" { out += args[i...]; break }
            if args[i] == "--from" { i += 2; continue }
            if args[i].hasPrefix("--from=") { i += 1; continue }
            out.append(args[i])
            i += 1
        }
        return out
    }

    /// Long names of the options among `args` (short -o / -q as --output / --quiet).
    static func optionNames(_ args: [String]) -> [String] {
        var names: [String] = []
        for arg in args {
            if arg == "--" { break }
            if arg == "-o" { names.append("--output") } else if arg == "-q" { names.append("--quiet") } else if arg.hasPrefix("--") {
                names.append(String(arg.split(separator: "=", maxSplits: 1)[0]))
            }
        }
        return names
    }

    static func shellQuoted(_ s: String) -> String {
        let safe = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.,:/=+@%")
        if !s.isEmpty, s.unicodeScalars.allSatisfy({ safe.contains($0) }) { return s }
        return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

struct RecordError: Error, CustomStringConvertible, LocalizedError {
    var message: String
    var description: String { message }
    var errorDescription: String? { message }
}
