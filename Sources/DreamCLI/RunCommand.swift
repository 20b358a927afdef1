import ArgumentParser
import Foundation
import Models
import Network
import SafeIO

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run any ONNX graph on NumPy (.npy) inputs and save the values you ask for, intermediate ones included.",
        usage: "dream run [<options>]",
        discussion: """
        Inputs are float32 (or int64 where an operator needs integers) .npy files. Outputs may be graph outputs or any \
        intermediate value (a layer name from `dream layers`, its output value, or a unique abbreviation).

        Examples:
          dream run --model googlenet --input input=x.npy --output logits=logits.npy
          dream run --model m.onnx --input x.npy \\
                --output inception_3b_output=acts.npy --output prob=p.npy
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("An input: NAME=file.npy, or just file.npy for a graph with one input (repeatable).", valueName: "name=file"))
    var input: [String] = []

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("A value to save: NAME=file.npy, or NAME (saved as NAME.npy) (repeatable; default: every graph output).", valueName: "name=file"))
    var output: [String] = []

    func validate() throws {
        if input.isEmpty { throw ValidationError("give at least one --input NAME=file.npy") }
    }

    static func split(_ spec: String) -> (name: String?, file: String) {
        guard let eq = spec.lastIndex(of: "=") else { return (nil, spec) }
        return (String(spec[..<eq]), String(spec[spec.index(after: eq)...]))
    }

    func run() throws {
        let model = try modelOptions.load()
        let graph = model.graph
        var feeds: [String: Value] = [:]
        for spec in input {
            var (name, file) = Self.split(spec)
            if name == nil {
                guard graph.inputs.count == 1 else {
                    throw ValidationError("the model has \(graph.inputs.count) inputs (\(graph.inputs.map(\.name).joined(separator: ", "))): name each, NAME=file.npy")
                }
                name = graph.inputs[0].name
            }
            guard graph.inputs.contains(where: { $0.name == name }) || graph.initializers[name!] != nil else {
                throw ValidationError("the model has no input '\(name!)'; its inputs: \(graph.inputs.map(\.name).joined(separator: ", "))")
            }
            feeds[name!] = try NumPyFile.read(contentsOf: URL(fileURLWithPath: file))
        }
        let names = LayerNames(graph: graph)
        let requested: [(value: String, file: String)] = try (output.isEmpty ? graph.outputs.map(\.name) : output).map { spec in
            let (name, file) = Self.split(spec)
            let typed = name ?? file
            let value = try names.resolve(typed)
            let safe = value.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" }
            return (value, name == nil ? String(safe) + ".npy" : file)
        }
        // Outputs are checked before the run: none may be an input (.npy or model), and no two may share a file.
        let inputFiles = input.map { Self.split($0).file } + [modelOptions.model, model.url.path].compactMap { $0 }
        for (n, (_, file)) in requested.enumerated() {
            try OptionCheck.outputFile(file, option: "--output", inputs: inputFiles, imageFormat: false)
            if requested[..<n].contains(where: { OutputPath.resolved($0.file) == OutputPath.resolved(file) }) {
                throw ValidationError("--output \(TerminalText.escaped(file)) is given twice")
            }
        }
        let values = try model.executor.run(feeds, outputs: requested.map(\.value))
        for (value, file) in requested {
            guard let v = values[value] else { continue }
            try NumPyFile.write(v, to: URL(fileURLWithPath: file))
            Console.status("wrote \(file)  \(value) \(v.shape)")
        }
    }
}
