import Foundation
import Imaging
import Models
import Network
import Tensors

/// One epoch's numbers (accuracy is nil for a regression; `valMAE` only for one).
public struct EpochRecord: Codable, Equatable, Sendable {
    public var epoch: Int
    public var trainLoss: Double
    public var trainAccuracy: Double?
    public var valLoss: Double?
    public var valAccuracy: Double?
    public var valMAE: Double?
    public var seconds: Double
}

/// What the trainer reports while it works (the CLI prints it; tests ignore it).
public enum TrainingEvent {
    case preparing(done: Int, total: Int, cached: Int)
    case prepared(cached: Int, computed: Int, seconds: Double)
    case batch(epoch: Int, batch: Int, batches: Int, loss: Double)
    case epoch(EpochRecord)
    case earlyStop(epoch: Int, bestEpoch: Int)
}

public enum TrainingError: Error, LocalizedError, CustomStringConvertible {
    case diverged(epoch: Int, batch: Int, loss: Float, learningRate: Float, optimizer: String)
    case interrupted(checkpoint: URL?)
    case checkpointMismatch(String)
    case badCheckpoint(String)

    public var description: String {
        switch self {
        case let .diverged(epoch, batch, loss, lr, optimizer):
            return "training diverged at epoch \(epoch), batch \(batch) (loss \(loss)): the learning rate \(lr) is probably too high for \(optimizer); try --lr \(lr / 10)"
        case .interrupted(let url):
            return "interrupted" + (url.map { "; checkpoint written to \($0.path) (continue with --resume \($0.path))" } ?? "")
        case .checkpointMismatch(let what): return "the checkpoint does not match this run: \(what)"
        case .badCheckpoint(let why): return "cannot read the checkpoint: \(why)"
        }
    }
}

/// The outcome for one validation image (for the confusion matrix and the worst-misclassified thumbnails).
public struct ValidationPrediction: Codable, Sendable {
    public var sample: Sample
    public var predicted: Int
    /// Probability given to the true class (classification) or the predicted value (regression).
    public var score: Float
}

public struct TrainingResult {
    public var history: [EpochRecord]
    public var bestEpoch: Int
    public var trainSeconds: Double
    public var preparationSeconds: Double
    public var predictions: [ValidationPrediction]
    public var unreadable: [(name: String, reason: String)]
}

/// Trains a `TransferModel` on an `ImageDataset`: the frozen part runs once per image (features cached on disk
/// when possible), then mini-batches go forward and backward through the trainable part only; with augmentation
/// every batch runs from the (augmented) pixels. Every random choice derives from the seed, the epoch and the
/// position, so an interrupted run resumed from its checkpoint ends exactly where an uninterrupted one does.
public final class Trainer {
    public private(set) var model: TransferModel
    public let dataset: ImageDataset
    public let settings: TrainingSettings
    public let executor: GraphExecutor
    let cache: FeatureCache?
    var optimizer: Optimizer
    /// Boundary values per sample (train then validation, by sample name); nil entries were unreadable.
    var boundaryValues: [String: [Tensor]] = [:]
    public private(set) var unreadable: [(name: String, reason: String)] = []
    var train: [Sample] = []
    var validation: [Sample] = []
    /// Recompute the frozen part for every batch (augmentation, or boundary values too large to keep).
    private(set) var fullPath: Bool
    /// Position of each training image in the data set (the augmentation's random stream per image).
    lazy var trainPosition: [String: Int] = Dictionary(dataset.train.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
    /// Boundary values kept in memory at most (floats, 2 GB): beyond it every batch recomputes the frozen part.
    static let boundaryBudget = 1 << 29

    /// `cacheHome` nil: no disk cache. `modelDigest` identifies the model file for the cache.
    public init(model: TransferModel, dataset: ImageDataset, settings: TrainingSettings,
                cacheHome: URL?, modelDigest: String) throws {
        self.model = model
        self.dataset = dataset
        self.settings = settings
        executor = try GraphExecutor(graph: model.graph)
        optimizer = settings.makeOptimizer()
        // The boundary is the graph input when the first layer is trainable: nothing to precompute.
        fullPath = settings.augment || model.boundary == [model.inputName]
        cache = cacheHome.map { FeatureCache(home: $0, modelDigest: modelDigest, preprocessing: model.preprocessing, values: model.boundary) }
    }

    /// True when every batch runs the frozen part again (augmentation, or a trainable first layer).
    public var recomputesFrozenPart: Bool { fullPath }
    public var trainingCount: Int { train.count }
    public var validationCount: Int { validation.count }

    // MARK: preparation

    /// Reads every image once: unreadable ones are listed and dropped; the frozen part's values are computed (or
    /// loaded from the cache) for each, unless every batch recomputes them.
    public func prepare(shouldStop: () -> Bool = { false }, progress: (TrainingEvent) -> Void = { _ in }) throws {
        let start = Date()
        let all = dataset.train + dataset.validation
        let validationNames = Set(dataset.validation.map(\.name))
        var pending: [(Sample, Tensor, String?)] = []
        var cached = 0, computed = 0
        // A few images per forward: larger batches were no faster (clipart4: 1, 4, 16 images in 30.5, 31.5, 34.1 s)
        // and need activation memory in proportion.
        let chunk = max(1, min(settings.batchSize, 4))
        func flush() throws {
            guard !pending.isEmpty else { return }
            let batch = Trainer.stack(pending.map(\.1))
            let out = try executor.run([model.inputName: .float(batch)], outputs: model.boundary)
            let perImage = model.boundary.reduce(0) { $0 + out[$1]!.shape.dropFirst().reduce(1, *) }
            if !fullPath && perImage.multipliedReportingOverflow(by: all.count).partialValue > Trainer.boundaryBudget {
                // Too much to keep: training images go back to their pixels, validation keeps its values.
                fullPath = true
                for name in boundaryValues.keys where !validationNames.contains(name) { boundaryValues[name] = [] }
            }
            for (k, item) in pending.enumerated() {
                let values = model.boundary.map { Trainer.row(out[$0]!.floatTensor!, k) }
                boundaryValues[item.0.name] = fullPath && !validationNames.contains(item.0.name) ? [] : values
                if let key = item.2 { cache?.store(values, key: key) }
            }
            computed += pending.count
            pending = []
        }
        for (i, sample) in all.enumerated() {
            if shouldStop() { throw TrainingError.interrupted(checkpoint: nil) }
            progress(.preparing(done: i, total: all.count, cached: cached))
            let data: Data
            do { data = try Data(contentsOf: sample.url) } catch {
                unreadable.append((sample.name, "cannot read the file")); continue
            }
            let key = fullPath ? nil : cache?.key(imageData: data)
            if let key, let values = cache?.load(key), values.count == model.boundary.count {
                boundaryValues[sample.name] = values
                cached += 1
                continue
            }
            let image: RGBImage
            do { image = try ImageFile.decode(data, name: sample.name) } catch {
                unreadable.append((sample.name, String(describing: error))); continue
            }
            if fullPath {
                boundaryValues[sample.name] = []
                // Validation always uses the plain preprocessing: its frozen values are computed once all the same.
                if !validationNames.contains(sample.name) { continue }
            }
            pending.append((sample, try model.inputTensor(image), key))
            if pending.count == chunk { try flush() }
        }
        try flush()
        progress(.preparing(done: all.count, total: all.count, cached: cached))
        train = dataset.train.filter { boundaryValues[$0.name] != nil }
        validation = dataset.validation.filter { boundaryValues[$0.name] != nil }
        if !dataset.isRegression {
            for (index, name) in dataset.classes.enumerated() where !train.contains(where: { $0.classIndex == index }) {
                throw DatasetError.emptyAfterSkipping(dataset.root.path, name: name)
            }
        }
        if train.isEmpty { throw DatasetError.noImages(dataset.root.path) }
        progress(.prepared(cached: cached, computed: computed, seconds: Date().timeIntervalSince(start)))
    }

    /// [1, ...] tensors -> [n, ...].
    static func stack(_ rows: [Tensor]) -> Tensor {
        let per = rows[0].count
        return Tensor(shape: [rows.count] + rows[0].shape.dropFirst()) { dst in
            for (k, row) in rows.enumerated() {
                row.withUnsafeBufferPointer { (dst.baseAddress! + k * per).update(from: $0.baseAddress!, count: per) }
            }
        }
    }

    /// Row k of [n, ...] as [1, ...].
    static func row(_ t: Tensor, _ k: Int) -> Tensor {
        let per = t.count / t.shape[0]
        return Tensor(shape: [1] + t.shape.dropFirst()) { dst in
            t.withUnsafeBufferPointer { dst.baseAddress!.update(from: $0.baseAddress! + k * per, count: per) }
        }
    }

    // MARK: training

    /// The sample order of an epoch: a permutation drawn from (seed, epoch).
    func order(epoch: Int) -> [Int] {
        var rng = SplitMix64(seed: settings.seed &* 0x2545_F491_4F6C_DD1D &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
        return Array(train.indices).shuffled(using: &rng)
    }

    func targets(_ samples: [Sample]) -> Tensor {
        Tensor(shape: [samples.count, model.choice.outputs], scalars: samples.flatMap { model.choice.target(for: $0) })
    }

    /// Feeds for a batch: the stored boundary values, or (`fromPixels`) the images themselves, augmented when the
    /// settings say so; plus the trainable parameters.
    func feeds(_ samples: [Sample], epoch: Int, fromPixels: Bool) throws -> [String: Value] {
        var feeds = model.parameters.trainableValues
        if fromPixels {
            let h = model.inputSize[0], w = model.inputSize[1]
            let inputs = try samples.map { sample -> Tensor in
                let image = try ImageFile.read(sample.url)
                guard settings.augment else { return try model.inputTensor(image) }
                var rng = Augmentation.generator(seed: settings.seed, epoch: epoch, sample: trainPosition[sample.name] ?? 0)
                let base = image.resizedShorterSide(to: model.preprocessing.resizeShorter ?? min(h, w))
                let view = Augmentation().apply(base, width: w, height: h, using: &rng)
                return model.preprocessing.inputTensor(for: view)
            }
            feeds[model.inputName] = .float(Trainer.stack(inputs))
        } else {
            for (k, name) in model.boundary.enumerated() {
                feeds[name] = .float(Trainer.stack(samples.map { boundaryValues[$0.name]![k] }))
            }
        }
        return feeds
    }

    /// One optimisation step: forward, loss, backward to the trainable parameters, update.
    func step(_ samples: [Sample], epoch: Int) throws -> (loss: Float, correct: Int) {
        let wrt = Set(model.parameters.trainableNames)
        var tape = try executor.forward(try feeds(samples, epoch: epoch, fromPixels: fullPath), outputs: [model.head.scores], recordingFor: wrt)
        let z = tape.values[model.head.scores]!.floatTensor!
        let (loss, gradient) = model.choice.loss.evaluate(z, targets: targets(samples))
        let grads = try executor.backward(&tape, seeds: [model.head.scores: gradient])
        optimizer.step(&model.parameters, gradients: grads)
        return (loss, correctCount(z, samples))
    }

    func correctCount(_ z: Tensor, _ samples: [Sample]) -> Int {
        guard !dataset.isRegression else { return 0 }
        let k = model.choice.outputs, scores = z.scalars
        return samples.indices.filter { model.choice.predictedClass(scores[($0 * k)..<($0 * k + k)]) == samples[$0].classIndex }.count
    }

    /// Loss, accuracy (nil for regression), MAE (regression) and raw scores on a set, without gradients.
    func measure(_ samples: [Sample]) throws -> (loss: Double, accuracy: Double?, mae: Double?, scores: [Float]) {
        var lossSum = 0.0, correct = 0, absSum = 0.0
        var scores: [Float] = []
        for start in stride(from: 0, to: samples.count, by: max(settings.batchSize, 1)) {
            let batch = Array(samples[start..<min(start + settings.batchSize, samples.count)])
            // Validation never augments: it starts from the frozen values stored by `prepare`.
            let feeds = try self.feeds(batch, epoch: 0, fromPixels: false)
            let z = try executor.run(feeds, outputs: [model.head.scores])[model.head.scores]!.floatTensor!
            let t = targets(batch)
            lossSum += Double(model.choice.loss.evaluate(z, targets: t).loss) * Double(batch.count)
            correct += correctCount(z, batch)
            if dataset.isRegression { for (a, b) in zip(z.scalars, t.scalars) { absSum += Double(abs(a - b)) } }
            scores += z.scalars
        }
        let n = Double(max(samples.count, 1))
        return (lossSum / n, dataset.isRegression ? nil : Double(correct) / n, dataset.isRegression ? absSum / n : nil, scores)
    }

    /// Runs the epochs (from `state`, when resuming), keeps the best epoch's parameters by validation loss, and
    /// leaves them in `model`. Writes `checkpoint` after every epoch and when `shouldStop` says so.
    public func run(from resumed: TrainingState? = nil, checkpoint: URL?, shouldStop: () -> Bool = { false },
                    progress: (TrainingEvent) -> Void = { _ in }) throws -> TrainingResult {
        var state = resumed ?? TrainingState()
        if let resumed {
            try resumed.check(against: self)
            for (name, value) in resumed.parameters { model.parameters.set(name, value) }
            optimizer.restore(state: resumed.optimizerState, steps: resumed.optimizerSteps)
        }
        let batches = (train.count + settings.batchSize - 1) / settings.batchSize
        var firstLoss: Float?
        let started = Date().addingTimeInterval(-state.trainSeconds)
        while state.epoch < settings.epochs && !state.stopped {
            let epochStart = Date().addingTimeInterval(-state.epochSeconds)
            let order = self.order(epoch: state.epoch)
            while state.batch < batches {
                let indices = order[(state.batch * settings.batchSize)..<min((state.batch + 1) * settings.batchSize, train.count)]
                let samples = indices.map { train[$0] }
                let (loss, correct) = try step(samples, epoch: state.epoch)
                if firstLoss == nil { firstLoss = loss }
                if !loss.isFinite || (loss > 10 && loss > 50 * (firstLoss ?? loss)) {
                    throw TrainingError.diverged(epoch: state.epoch + 1, batch: state.batch + 1, loss: loss,
                                                 learningRate: settings.learningRate, optimizer: settings.optimizer.rawValue)
                }
                state.lossSum += Double(loss) * Double(samples.count)
                state.correct += correct
                state.seen += samples.count
                state.batch += 1
                progress(.batch(epoch: state.epoch + 1, batch: state.batch, batches: batches, loss: state.lossSum / Double(state.seen)))
                if shouldStop() && (state.batch < batches || state.epoch + 1 < settings.epochs) {
                    state.trainSeconds = Date().timeIntervalSince(started)
                    state.epochSeconds = Date().timeIntervalSince(epochStart)
                    if let checkpoint { try save(state, to: checkpoint) }
                    throw TrainingError.interrupted(checkpoint: checkpoint)
                }
            }
            let measured = validation.isEmpty ? nil : try measure(validation)
            var record = EpochRecord(epoch: state.epoch + 1, trainLoss: state.lossSum / Double(max(state.seen, 1)),
                                     trainAccuracy: dataset.isRegression ? nil : Double(state.correct) / Double(max(state.seen, 1)),
                                     valLoss: measured?.loss, valAccuracy: measured?.accuracy, valMAE: measured?.mae,
                                     seconds: Date().timeIntervalSince(epochStart))
            record.seconds = (record.seconds * 1000).rounded() / 1000
            state.history.append(record)
            progress(.epoch(record))
            let score = record.valLoss ?? record.trainLoss
            if state.bestEpoch == 0 || score < state.bestLoss {
                state.bestEpoch = record.epoch
                state.bestLoss = score
                state.best = model.parameters.trainableNames.map { ($0, model.parameters.values[$0]!) }
                state.sinceBest = 0
            } else {
                state.sinceBest += 1
                if let patience = settings.patience, state.sinceBest >= patience {
                    state.stopped = true
                    progress(.earlyStop(epoch: record.epoch, bestEpoch: state.bestEpoch))
                }
            }
            state.epoch += 1
            state.batch = 0
            state.lossSum = 0; state.correct = 0; state.seen = 0; state.epochSeconds = 0
            state.trainSeconds = Date().timeIntervalSince(started)
            if let checkpoint, state.epoch < settings.epochs && !state.stopped { try save(state, to: checkpoint) }
        }
        for (name, value) in state.best { model.parameters.set(name, value) }
        let final = validation.isEmpty ? nil : try measure(validation)
        var predictions: [ValidationPrediction] = []
        if let final {
            let k = model.choice.outputs
            for (i, sample) in validation.enumerated() {
                let row = Array(final.scores[(i * k)..<(i * k + k)])
                if dataset.isRegression {
                    predictions.append(ValidationPrediction(sample: sample, predicted: 0, score: row[0]))
                } else {
                    let predicted = model.choice.predictedClass(row[...])
                    predictions.append(ValidationPrediction(sample: sample, predicted: predicted,
                                                            score: Trainer.probability(of: sample.classIndex, scores: row, choice: model.choice)))
                }
            }
        }
        return TrainingResult(history: state.history, bestEpoch: state.bestEpoch, trainSeconds: state.trainSeconds,
                              preparationSeconds: 0, predictions: predictions, unreadable: unreadable)
    }

    /// The probability the head gives class `c` for one row of raw scores.
    static func probability(of c: Int, scores: [Float], choice: HeadChoice) -> Float {
        if choice.activation == .sigmoid {
            let s = logistic(scores[choice.outputs == 1 ? 0 : c])
            return choice.outputs == 1 && c == 0 ? 1 - s : s
        }
        return Softmax.forward(Tensor(shape: [1, scores.count], scalars: scores), axis: 1).scalars[c]
    }

    func save(_ state: TrainingState, to url: URL) throws {
        var s = state
        s.parameters = model.parameters.trainableNames.map { ($0, model.parameters.values[$0]!) }
        s.optimizerState = optimizer.state
        s.optimizerSteps = optimizer.steps
        s.settings = settings
        s.trainNames = train.map(\.name)
        try s.write(to: url)
    }
}

extension TrainingError {
    public var errorDescription: String? { description }
}
