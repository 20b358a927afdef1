import ArgumentParser
import Foundation
import Models
import Training

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Accuracy, per-class precision/recall/F1 and the confusion matrix of a classifier on labelled images.",
        usage: "dream evaluate [<options>] <folder>",
        discussion: """
        The folder holds one sub-folder per class, named as the model's labels (a model from dream finetune \
        carries them inside). Every image is classified as dream classify does (resize, centre crop).

        Examples:
          dream evaluate --model pets.onnx data/val/
          dream evaluate --model pets.onnx data/val/ --json
        """)

    @Argument(help: ArgumentHelp("Folder of class folders.", valueName: "folder"))
    var folder: String

    @OptionGroup var modelOptions: ModelOptions

    @Flag(name: .long, help: "Print the results as JSON.")
    var json = false

    func run() throws {
        let model = try modelOptions.load()
        let bar = ProgressLine(enabled: Console.stderrIsTerminal)
        let outcome = try Evaluation.run(model: model, folder: URL(fileURLWithPath: folder)) { done, total in
            bar.update("classifying \(done)/\(total)")
        }
        bar.finish()
        if !outcome.unreadable.isEmpty {
            Console.status("warning: " + DatasetError.unreadable(count: outcome.unreadable.count,
                                                                 examples: outcome.unreadable.prefix(3).map { "\($0.name): \($0.reason)" }).description)
        }
        if json {
            print(try Console.json(outcome.metrics))
        } else {
            print(outcome.metrics.rendered(), terminator: "")
        }
    }
}
