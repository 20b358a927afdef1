import ArgumentParser
import Foundation
import Network
import SafeIO
import Tensors

/// `dream`: look inside CNNs, dream with them, reuse them.
struct DreamTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dream",
        abstract: "Look inside convolutional networks, dream with them, reuse them.",
        discussion: """
        Models are ONNX files. --model takes a path or a known name (googlenet, squeezenet); known names are kept in \
        the cache ($DREAM_HOME, default ~/.cache/dream) and copied from $DREAM_MODEL_MIRROR when it is set.

        Examples:
          dream photo.jpg                           DeepDream (writes photo-dream.png)
          dream photo.jpg --layer inception_3b_output --octaves 5 --seed 7 -o out.png
          dream noise --layer inception_4c_output   dream from noise
          dream zoom photo.jpg --frames 60 -o frames/   a zoom sequence
          dream classify photo.jpg --top 5          what the network sees
          dream layers --model squeezenet           layer / parameter table
          dream features photo.jpg --all-layers -o maps/   what every layer sees
          dream finetune data/ -o mymodel.onnx     new head on data/<class>/*.jpg
          dream evaluate --model mymodel.onnx data/val/   accuracy, confusion matrix
          dream run --model m.onnx --input input=x.npy --output logits=y.npy
          dream bench --size 512                    forward-pass speed
          dream info photo-dream.png               the settings a dream recorded
          dream --from photo-dream.png other.jpg   the same settings on another image
        """,
        subcommands: [DreamCommand.self, NoiseCommand.self, ZoomCommand.self, ClassifyCommand.self, LayersCommand.self, FeaturesCommand.self,
                      ExplainCommand.self, VisualizeCommand.self, FiltersCommand.self, FinetuneCommand.self, EvaluateCommand.self,
                      RunCommand.self, BenchCommand.self, InfoCommand.self],
        defaultSubcommand: DreamCommand.self
    )
}

@main
enum Main {
    static func main() {
        selectBLASKernels()
        if let problem = SIMDLevel.environmentProblem {
            FileHandle.standardError.write(Data("dream: error: \(problem)\n".utf8))
            Foundation.exit(2)
        }
        // `dream classify … | head -1`: a closed pipe is a failed write, not a death by SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        // Ctrl-C and SIGTERM remove every temporary file and folder (half-written outputs), then exit 130 / 143.
        TemporaryFiles.installSignalHandlers { signal in
            signal == SIGINT ? "dream: interrupted; nothing was written" : "dream: stopped by signal \(signal); nothing was written"
        }
        if let problem = dashArgumentProblem(Array(CommandLine.arguments.dropFirst())) {
            FileHandle.standardError.write(Data("dream: error: \(TerminalText.escaped(problem))\n".utf8))
            Foundation.exit(2)
        }
        do {
            var command = try DreamTool.parseAsRoot()
            try command.run()
        } catch {
            // After Ctrl-C, the cleanup may have removed a folder the work was writing into: that error is not the
            // user's; the cleanup exits with 130.
            TemporaryFiles.parkIfTerminating()
            // Help and version requests exit 0; parse and validation errors are usage errors (exit 2) with
            // ArgumentParser's message and usage line; anything else is a failure of the work itself (exit 1).
            let code = DreamTool.exitCode(for: error)
            if code == .success { DreamTool.exit(withError: error) }
            if let exit = error as? ExitCode { Foundation.exit(exit.rawValue) }
            TemporaryFiles.removeAll()
            if code == .validationFailure || error is ValidationError {
                // One line: the problem and where help is; the full usage block would bury it.
                let message = DreamTool.message(for: error).replacingOccurrences(of: "\n", with: " ")
                FileHandle.standardError.write(Data("dream: error: \(TerminalText.escaped(message)) (see 'dream --help')\n".utf8))
                Foundation.exit(2)
            }
            // A node's error (shapes found while running) names the node; the model file is added so that the line
            // says which file it is about.
            let prefix = error is ExecutionError ? Console.model.map { $0 + ": " } ?? "" : ""
            FileHandle.standardError.write(Data("dream: error: \(TerminalText.escaped(prefix + describe(error)))\n".utf8))
            Foundation.exit(1)
        }
    }
}

/// A file name that starts with '-' (`-dash.png`) would be read as a cluster of short options, and the `h` in it as
/// a request for help; such an argument is refused with the way out (`--` ends the options).
func dashArgumentProblem(_ arguments: [String]) -> String? {
    for argument in arguments {
        if argument == "--" { return nil }
        guard argument.hasPrefix("-"), !argument.hasPrefix("--"), argument.count > 2, Double(argument) == nil else { continue }
        if argument.dropFirst().allSatisfy({ "hoq".contains($0) }) { continue }
        return "'\(argument)' is not an option; to name a file that starts with '-', put -- before it (dream -- \(argument)) or write ./\(argument)"
    }
    return nil
}

/// Restarts the process once with OPENBLAS_CORETYPE set when OpenBLAS did not recognise the CPU (see BLASCore), or
/// with the portable kernels when `--portable` is among the options, and with OPENBLAS_THREAD_TIMEOUT set on a
/// multi-core machine unless the user set it (`BLASCore.recommendedThreadTimeout`): both are only read when the library
/// loads, so this looks at the raw arguments before they are parsed. DREAM_BLAS_CORE_CHOSEN prevents a second restart.
/// `--portable` also pins our own C kernels to the baseline SIMD level (no FMA), here and in the restarted process.
func selectBLASKernels() {
    let environment = ProcessInfo.processInfo.environment
    let options = CommandLine.arguments.dropFirst().prefix { $0 != "--" }
    let portable = options.contains("--portable")
    if portable {
        setenv("DREAM_SIMD", SIMDLevel.portable.description, 1)
        SIMDLevel.pin(.portable)
    }
    guard environment["DREAM_BLAS_CORE_CHOSEN"] == nil else { return }
    let core = BLASCore.recommendedOverride(environment: environment, portable: portable)
    let timeout = BLASCore.recommendedThreadTimeout(environment: environment)
    guard core != nil || timeout != nil else { return }
    if let core { setenv("OPENBLAS_CORETYPE", core, 1) }
    if let timeout { setenv("OPENBLAS_THREAD_TIMEOUT", timeout, 1) }
    setenv("DREAM_BLAS_CORE_CHOSEN", "1", 1)
    execv("/proc/self/exe", CommandLine.unsafeArgv)
    // execv returns only on failure: carry on with the kernels we have.
}

/// One line for any error: ours describe themselves; Foundation's (file system) are put in words with the file they
/// name, never as a domain and code.
func describe(_ error: Error) -> String {
    let ns = error as NSError
    if [NSCocoaErrorDomain, NSPOSIXErrorDomain, NSURLErrorDomain].contains(ns.domain) {
        let file = (ns.userInfo[NSFilePathErrorKey] as? String) ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path
        return (file.map { $0 + ": " } ?? "") + plainReason(error)
    }
    if let localized = (error as? LocalizedError)?.errorDescription { return localized.replacingOccurrences(of: "\n", with: " ") }
    return String(describing: error).replacingOccurrences(of: "\n", with: " ")
}
