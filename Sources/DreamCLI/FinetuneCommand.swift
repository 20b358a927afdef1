import ArgumentParser
import Foundation
import Inspection
import Models
import Network
import Tensors
import Training

extension HeadActivation: ExpressibleByArgument {}
extension Loss: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}

/// Set by SIGINT: the trainer finishes its batch, writes a checkpoint and stops. A second Ctrl-C quits at once.
nonisolated(unsafe) private var interruptRequested: sig_atomic_t = 0

struct FinetuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune",
        abstract: "Train a new head (and optionally the last layers) on a folder of labelled images.",
        discussion: """
        The data folder holds one sub-folder per class (data/<class>/*.png|jpg|jpeg; hidden files are ignored), \
        or train/ and val/ folders that each hold the class folders. Without them, --val-split of every class is \
        held out for validation (stratified, chosen with --seed). For regression give --targets values.csv \
        (rows: file,value; files relative to the data folder).

        The model's classifier is cut at its feature vector (GoogLeNet: pool5_flat) and a new head is put on: \
        softmax + categorical cross-entropy for classes (auto), sigmoid + binary cross-entropy (2 classes, one \
        output), linear + mse/mae/msle for --targets; kl is softmax with KL divergence. Everything below the \
        head is frozen unless --train-from or --trainable unfreeze it. With a frozen backbone and no --augment \
        the features are computed once per image and cached ($DREAM_HOME/features), so a second run with other \
        settings skips the backbone.

        The best epoch by validation loss is saved as one ONNX file (labels and preprocessing inside), usable by \
        classify, evaluate, layers, features and dream, and by onnxruntime. A report (training.csv, curves.png, \
        confusion matrix, index.html) is written beside it. Ctrl-C finishes the batch, writes a checkpoint and \
        exits 130; --resume CHECKPOINT continues with the same result as an uninterrupted run.

        Examples:
          dream finetune data/ -o pets.onnx
          dream finetune data/ --epochs 20 --patience 4 --lr 3e-4
          dream finetune data/ --train-from inception_5a_output --augment
          dream finetune faces/ --targets ages.csv --loss mae -o age.onnx
          dream classify --model pets.onnx photo.jpg
        """)

    @Argument(help: ArgumentHelp("Folder of class folders (or train/ and val/).", valueName: "data"))
    var data: String

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: [.short, .long], help: ArgumentHelp("Output model (default: <data>-finetuned.onnx).", valueName: "file.onnx"))
    var output: String?

    @Option(name: .long, help: "Passes over the training images.")
    var epochs = 10

    @Option(name: .customLong("batch-size"), help: "Images per optimisation step.")
    var batchSize = 32

    @Option(name: .long, help: "Learning rate.")
    var lr: Float = 1e-3

    @Option(name: .long, help: "adam, adamw or sgd (with --momentum).")
    var optimizer: OptimizerKind = .adam

    @Option(name: .long, help: "Momentum of sgd.")
    var momentum: Float = 0.9

    @Option(name: .customLong("weight-decay"), help: "L2 penalty (adam, sgd) or decoupled decay (adamw).")
    var weightDecay: Float = 0

    @Option(name: .customLong("val-split"), help: "Share of each class held out for validation (without train/ + val/).")
    var valSplit = 0.2

    @Option(name: .long, help: "Seed of the split, the head's initial weights, the shuffling and the augmentation.")
    var seed: UInt64 = 1

    @Option(name: .customLong("train-from"), help: ArgumentHelp("Also train this layer and every layer after it (as dream layers --freeze-before).", valueName: "layer"))
    var trainFrom: String?

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("Also train parameters whose name starts with this (repeatable).", valueName: "prefix"))
    var trainable: [String] = []

    @Option(name: .long, help: "auto, softmax, sigmoid or linear.")
    var head = "auto"

    @Option(name: .long, help: "auto, cce, bce, kl, mse, mae or msle.")
    var loss = "auto"

    @Option(name: .long, help: ArgumentHelp("Regression targets: a CSV of file,value rows.", valueName: "values.csv"))
    var targets: String?

    @Flag(name: .long, help: "Random resized crops and horizontal flips (runs the whole network every batch).")
    var augment = false

    @Option(name: .long, help: "Stop after this many epochs without a lower validation loss.")
    var patience: Int?

    @Option(name: .long, help: ArgumentHelp("Continue from a checkpoint written by an interrupted run.", valueName: "checkpoint"))
    var resume: String?

    @Option(name: .long, help: ArgumentHelp("Report folder (default: <output>-report beside the output).", valueName: "dir"))
    var report: String?

    @Flag(name: .long, help: "Print one JSON object with the results on stdout (progress goes to stderr).")
    var json = false

    func validate() throws {
        if epochs < 1 { throw ValidationError("--epochs must be at least 1") }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
        if !(lr > 0) || !lr.isFinite { throw ValidationError("--lr must be a positive number") }
        if !(0..<1).contains(valSplit) { throw ValidationError("--val-split must be at least 0 and below 1") }
        if let patience, patience < 1 { throw ValidationError("--patience must be at least 1") }
        if head != "auto" && HeadActivation(rawValue: head) == nil { throw ValidationError("--head must be auto, softmax, sigmoid or linear, not '\(head)'") }
        if loss != "auto" && Loss(rawValue: loss) == nil { throw ValidationError("--loss must be auto, cce, bce, kl, mse, mae or msle, not '\(loss)'") }
        if weightDecay < 0 { throw ValidationError("--weight-decay cannot be negative") }
    }

    var settings: TrainingSettings {
        var s = TrainingSettings()
        s.epochs = epochs; s.batchSize = batchSize; s.learningRate = lr; s.optimizer = optimizer; s.momentum = momentum
        s.weightDecay = weightDecay; s.validationSplit = valSplit; s.seed = seed; s.trainFrom = trainFrom
        s.trainablePrefixes = trainable; s.head = HeadActivation(rawValue: head); s.loss = Loss(rawValue: loss)
        s.augment = augment; s.patience = patience
        return s
    }

    func run() throws {
        let out = json ? Console.status : { print($0) }
        let dataURL = URL(fileURLWithPath: data)
        let outputURL = URL(fileURLWithPath: output ?? dataURL.standardizedFileURL.lastPathComponent + "-finetuned.onnx")
        let stem = outputURL.deletingPathExtension()
        let reportURL = report.map { URL(fileURLWithPath: $0) } ?? URL(fileURLWithPath: stem.path + "-report")
        let checkpointURL = URL(fileURLWithPath: stem.path + ".checkpoint")

        let model = try modelOptions.load()
        guard outputURL.standardizedFileURL.path != model.url.standardizedFileURL.path else {
            throw ValidationError("-o \(outputURL.path) is the model being fine-tuned; choose another output file")
        }
        let home = ModelStore.fromEnvironment().home
        let job = try FineTuning(model: model, data: dataURL, targets: targets.map { URL(fileURLWithPath: $0) },
                                 settings: settings, cacheHome: home)
        let dataset = job.dataset
        out("data: \(dataset.isRegression ? "regression, " : "\(dataset.classes.count) classes (\(dataset.classes.joined(separator: ", "))), ")\(dataset.train.count) training and \(dataset.validation.count) validation images\(dataset.presplit ? " (train/ and val/)" : "")")
        if !job.choice.explanation.isEmpty { out(job.choice.explanation) }
        let transfer = job.model
        let frozen = Set(transfer.parameters.names).subtracting(transfer.parameters.trainable)
        let table = try LayerTable(model: model.displayName + " + new head", graph: transfer.graph, executor: job.trainer.executor,
                                   inputName: transfer.inputName, inputShape: [1, 3] + transfer.inputSize, frozen: frozen)
        out(table.rendered(showAll: false))
        out("features: \(transfer.boundary.joined(separator: ", "))\(job.trainer.recomputesFrozenPart ? " (recomputed every batch)" : " (computed once per image, cached)")")

        interruptRequested = 0
        // While training, Ctrl-C asks for a checkpoint; afterwards the disposition installed before (the one that
        // removes temporary files while the report is written, TemporaryFiles.installSignalHandlers) is back.
        let previousHandler = signal(SIGINT) { _ in
            if interruptRequested != 0 { _exit(130) }
            interruptRequested = 1
        }
        defer { signal(SIGINT, previousHandler) }
        let stop = { interruptRequested != 0 }
        let bar = ProgressLine(enabled: Console.stderrIsTerminal)
        let progress: (TrainingEvent) -> Void = { event in
            switch event {
            case let .preparing(done, total, _): bar.update("preparing images \(done)/\(total)")
            case let .prepared(cached, computed, seconds):
                bar.finish()
                out(String(format: "prepared %d images in %.1fs (%d from the feature cache, %d computed)", cached + computed, seconds, cached, computed))
            case let .batch(epoch, batch, batches, loss):
                let filled = batches > 0 ? batch * 20 / batches : 0
                bar.update("epoch \(epoch)/\(self.epochs) [\(String(repeating: "#", count: filled))\(String(repeating: ".", count: 20 - filled))] \(batch)/\(batches) loss \(String(format: "%.4f", loss))")
            case let .epoch(r):
                bar.finish()
                out(FinetuneCommand.epochLine(r, of: self.epochs))
            case let .earlyStop(epoch, best):
                out("early stop after epoch \(epoch): no lower validation loss for \(self.patience ?? 0) epochs (best: epoch \(best))")
            }
        }
        var state: TrainingState?
        if let resume {
            state = try TrainingState.read(from: URL(fileURLWithPath: resume))
            out("resuming from \(resume) at epoch \((state?.epoch ?? 0) + 1), batch \((state?.batch ?? 0) + 1)")
        }
        let result: TrainingResult
        do {
            try job.trainer.prepare(shouldStop: stop, progress: progress)
            if !job.trainer.unreadable.isEmpty {
                Console.status("warning: " + DatasetError.unreadable(count: job.trainer.unreadable.count,
                                                                     examples: job.trainer.unreadable.prefix(3).map { "\($0.name): \($0.reason)" }).description)
            }
            result = try job.trainer.run(from: state, checkpoint: checkpointURL, shouldStop: stop, progress: progress)
        } catch TrainingError.interrupted(let checkpoint) {
            bar.finish()
            Console.status("dream: " + TrainingError.interrupted(checkpoint: checkpoint).description)
            throw ExitCode(130)
        }
        try job.export(to: outputURL)
        try? FileManager.default.removeItem(at: checkpointURL)
        let best = result.history.first { $0.epoch == result.bestEpoch }
        let metrics = job.metrics(result)
        var summary: [(String, String)] = [("model", model.displayName), ("data", dataURL.path), ("output", outputURL.path),
                                           ("head", "\(job.choice.activation.rawValue) + \(job.choice.loss.rawValue), \(job.choice.outputs) output\(job.choice.outputs == 1 ? "" : "s")"),
                                           ("trainable parameters", "\(transfer.parameters.trainableCount) of \(transfer.parameters.totalCount)"),
                                           ("recipe", "\(optimizer.rawValue) lr \(lr), batch \(batchSize), seed \(seed)\(augment ? ", augment" : "")\(trainFrom.map { ", train from \($0)" } ?? "")"),
                                           ("best epoch", "\(result.bestEpoch) of \(result.history.count)")]
        if let acc = best?.valAccuracy { summary.append(("validation accuracy", String(format: "%.4f", acc))) }
        let written = try TrainingReport.write(to: reportURL, model: outputURL.lastPathComponent, history: result.history,
                                               bestEpoch: result.bestEpoch, metrics: metrics, predictions: result.predictions, summary: summary)
        if let metrics { out(metrics.rendered()) }
        out("wrote \(outputURL.path) (best epoch \(result.bestEpoch)\(best?.valAccuracy.map { String(format: ", validation accuracy %.4f", $0) } ?? "")); report in \(written.directory.path)/index.html")
        if json {
            let summaryJSON = FinetuneSummary(val_accuracy: best?.valAccuracy, val_loss: best?.valLoss, val_mae: best?.valMAE,
                                              epochs: result.history.count, best_epoch: result.bestEpoch,
                                              train_seconds: (result.trainSeconds * 1000).rounded() / 1000,
                                              classes: dataset.classes, output: outputURL.path, report: written.directory.path,
                                              head: job.choice.activation.rawValue, loss: job.choice.loss.rawValue,
                                              trainable_parameters: transfer.parameters.trainableCount,
                                              train_images: job.trainer.trainingCount, validation_images: job.trainer.validationCount,
                                              unreadable: job.trainer.unreadable.map(\.name), history: result.history)
            print(try Console.json(summaryJSON))
        }
    }

    static func epochLine(_ r: EpochRecord, of epochs: Int) -> String {
        func f(_ v: Double?, _ format: String) -> String { v.map { String(format: format, $0) } ?? "   -  " }
        var line = "epoch \(String(repeating: " ", count: String(epochs).count - String(r.epoch).count))\(r.epoch)/\(epochs)"
        line += "  train loss \(f(r.trainLoss, "%.4f"))"
        if r.trainAccuracy != nil { line += " acc \(f(r.trainAccuracy, "%.3f"))" }
        line += "  val loss \(f(r.valLoss, "%.4f"))"
        if r.valMAE != nil { line += " mae \(f(r.valMAE, "%.4g"))" } else { line += " acc \(f(r.valAccuracy, "%.3f"))" }
        // Epochs on cached features take milliseconds: say so rather than "0.00s".
        return line + (r.seconds < 0.1 ? String(format: "  %.1f ms", r.seconds * 1000) : String(format: "  %.2f s", r.seconds))
    }
}

struct FinetuneSummary: Encodable {
    var val_accuracy: Double?
    var val_loss: Double?
    var val_mae: Double?
    var epochs: Int
    var best_epoch: Int
    var train_seconds: Double
    var classes: [String]
    var output: String
    var report: String
    var head: String
    var loss: String
    var trainable_parameters: Int
    var train_images: Int
    var validation_images: Int
    var unreadable: [String]
    var history: [EpochRecord]

    enum CodingKeys: String, CodingKey {
        case val_accuracy, val_loss, val_mae, epochs, best_epoch, train_seconds, classes, output, report, head, loss
        case trainable_parameters, train_images, validation_images, unreadable, history
    }

    /// The validation numbers are always present: null when there is no validation set (or no accuracy, for a regression).
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(val_accuracy, forKey: .val_accuracy)
        try c.encode(val_loss, forKey: .val_loss)
        try c.encode(val_mae, forKey: .val_mae)
        try c.encode(epochs, forKey: .epochs)
        try c.encode(best_epoch, forKey: .best_epoch)
        try c.encode(train_seconds, forKey: .train_seconds)
        try c.encode(classes, forKey: .classes)
        try c.encode(output, forKey: .output)
        try c.encode(report, forKey: .report)
        try c.encode(head, forKey: .head)
        try c.encode(loss, forKey: .loss)
        try c.encode(trainable_parameters, forKey: .trainable_parameters)
        try c.encode(train_images, forKey: .train_images)
        try c.encode(validation_images, forKey: .validation_images)
        try c.encode(unreadable, forKey: .unreadable)
        try c.encode(history, forKey: .history)
    }
}
