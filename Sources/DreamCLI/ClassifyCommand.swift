import ArgumentParser
import Foundation
import Imaging
import Models
import SafeIO

struct ClassifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Say what the network sees in images (top-k classes with probabilities).",
        usage: "dream classify [<options>] <image> ...",
        discussion: """
        Each image is resized (shorter side) and centre-cropped as the model's description says, then classified.

        Examples:
          dream classify photo.jpg
          dream classify a.png b.jpg --top 3 --json
          dream classify --model mymodel.onnx photo.jpg
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, parsing: .unconditional, help: "How many classes to show per image.")
    var top: Int = 5

    @Flag(name: .long, help: "Print JSON on stdout: one object per image (a list when several).")
    var json = false

    @Argument(help: ArgumentHelp("Images (PNG or JPEG).", valueName: "image"))
    var images: [String]

    func validate() throws {
        if images.isEmpty { throw ValidationError("give at least one image") }
        try OptionCheck.range(top, "--top", 1...Int.max)
    }

    struct Result: Encodable {
        var image: String
        var predictions: [Prediction]
    }

    func run() throws {
        let model = try modelOptions.load()
        var results: [Result] = []
        for path in images {
            let image = try ImageFile.read(URL(fileURLWithPath: path))
            do {
                results.append(Result(image: path, predictions: try model.classify(image, top: top)))
            } catch let error as PreprocessingError {
                throw FileProblem(path, error.reason)
            }
        }
        if json {
            print(results.count == 1 ? try Console.json(results[0]) : try Console.json(results))
            return
        }
        for (n, result) in results.enumerated() {
            if n > 0 { print("") }
            print("\(TerminalText.escaped(result.image))  (\(TerminalText.escaped(model.displayName)))")
            for (rank, p) in result.predictions.enumerated() {
                print(String(format: "%3d. %6.2f%%  ", rank + 1, p.probability * 100) + "\(TerminalText.escaped(p.label))  [\(p.index)]")
            }
        }
    }
}
