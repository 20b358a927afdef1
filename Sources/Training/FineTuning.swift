import Foundation
import SafeIO
import Imaging
import Models
import Network
import Tensors

/// A whole `dream finetune` run as a library call: read the folder, choose head and loss, cut the model, prepare
/// the frozen part (cached), train, export the ONNX file and write the report.
public final class FineTuning {
    public let dataset: ImageDataset
    public let choice: HeadChoice
    public let trainer: Trainer
    public let baseModel: LoadedModel

    public var model: TransferModel { trainer.model }

    /// `cacheHome` is $DREAM_HOME (features are cached under it); nil disables the cache.
    public init(model: LoadedModel, data: URL, targets: URL?, settings: TrainingSettings, cacheHome: URL?) throws {
        baseModel = model
        dataset = try targets.map { try ImageDataset.regression(data, targets: $0, validationFraction: settings.validationSplit, seed: settings.seed) }
            ?? ImageDataset.classification(data, validationFraction: settings.validationSplit, seed: settings.seed)
        let minimum = (dataset.train + dataset.validation).compactMap(\.value).min() ?? 0
        choice = try HeadChoice(classes: dataset.classes.count, regression: dataset.isRegression, head: settings.head,
                                loss: settings.loss, minimumTarget: minimum)
        let transfer = try TransferModel(model: model, choice: choice, settings: settings)
        let digest = try FineTuning.modelDigest(model.url, home: cacheHome)
        trainer = try Trainer(model: transfer, dataset: dataset, settings: settings, cacheHome: cacheHome, modelDigest: digest)
    }

    /// SHA-256 of the model file, remembered under `home` by path, size and modification time so that a second run
    /// does not hash 28 MB again.
    static func modelDigest(_ url: URL, home: URL?) throws -> String {
        let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
        let size = (attributes[.size] as? NSNumber)?.intValue ?? 0
        let mtime = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        let stamp = "\(url.standardizedFileURL.path)|\(size)|\(mtime)"
        var memo = SHA256()
        memo.update(Data(stamp.utf8))
        let memoURL = home?.appendingPathComponent("features/models/\(memo.finalize()).sha256")
        if let memoURL, let text = try? String(contentsOf: memoURL, encoding: .utf8), text.count == 64 { return text }
        let digest = try SHA256.hexDigest(ofFile: url)
        if let memoURL {
            try? FileManager.default.createDirectory(at: memoURL.deletingLastPathComponent(), withIntermediateDirectories: true)
            try? AtomicFile.write(Data(digest.utf8), to: memoURL)
        }
        return digest
    }

    /// The labels written into the exported file: class names, or the regression's output name.
    public var labels: [String] { dataset.isRegression ? ["value"] : dataset.classes }

    /// Writes the trained model (the best epoch's parameters) as one self-describing ONNX file.
    public func export(to url: URL) throws {
        let graph = try model.exportGraph(labels: labels, extra: ["dream.trained_on": dataset.root.lastPathComponent])
        try ONNXExporter.write(graph, to: url)
    }

    /// Validation metrics from the final predictions (nil for a regression or without a validation set).
    public func metrics(_ result: TrainingResult) -> ClassificationMetrics? {
        guard !dataset.isRegression, !result.predictions.isEmpty else { return nil }
        return ClassificationMetrics(labels: dataset.classes, pairs: result.predictions.map { ($0.sample.classIndex, $0.predicted) })
    }
}

/// `dream evaluate`: a trained classifier on a folder of class folders.
public enum Evaluation {
    public struct Outcome {
        public var metrics: ClassificationMetrics
        public var predictions: [ValidationPrediction]
        public var unreadable: [(name: String, reason: String)]
    }

    /// Every image of `folder/<class>/` classified by `model`; the folder names must be among the model's labels.
    public static func run(model: LoadedModel, folder: URL, progress: (Int, Int) -> Void = { _, _ in }) throws -> Outcome {
        guard let labels = model.labels, !labels.isEmpty else {
            throw ModelUseError.missingDescription(model: model.displayName, needed: "its class labels")
        }
        let classes = try ImageDataset.classFolders(folder)
        var samples: [Sample] = []
        for (name, files) in classes {
            guard let index = labels.firstIndex(of: name) ?? labels.firstIndex(where: { $0.lowercased() == name.lowercased() }) else {
                throw DatasetError.badTargets(folder.path, reason: "class folder '\(name)' is not one of the model's labels (\(labels.prefix(8).joined(separator: ", "))\(labels.count > 8 ? ", …" : ""))")
            }
            samples += files.map { Sample(url: $0, name: ImageDataset.relativeName($0, to: folder), classIndex: index, value: nil) }
        }
        var predictions: [ValidationPrediction] = [], unreadable: [(String, String)] = []
        for (i, sample) in samples.enumerated() {
            progress(i, samples.count)
            let image: RGBImage
            do { image = try ImageFile.read(sample.url) } catch { unreadable.append((sample.name, String(describing: error))); continue }
            let p = try model.classProbabilities(image)
            var best = 0
            for k in p.indices where p[k] > p[best] { best = k }
            predictions.append(ValidationPrediction(sample: sample, predicted: best, score: sample.classIndex < p.count ? p[sample.classIndex] : 0))
        }
        // The matrix covers the classes present in the folder or predicted, in label order.
        let used = Set(predictions.map(\.sample.classIndex)).union(predictions.map(\.predicted)).sorted()
        let position = Dictionary(uniqueKeysWithValues: used.enumerated().map { ($1, $0) })
        let metrics = ClassificationMetrics(labels: used.map { $0 < labels.count ? labels[$0] : "class \($0)" },
                                            pairs: predictions.map { (position[$0.sample.classIndex]!, position[$0.predicted]!) })
        return Outcome(metrics: metrics, predictions: predictions, unreadable: unreadable)
    }
}
