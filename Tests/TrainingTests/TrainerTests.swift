import Foundation
import Imaging
import Models
import Network
import Tensors
import TestSupport
import Training
import XCTest

final class TrainerTests: XCTestCase {
    func fineTuning(_ model: LoadedModel, _ data: URL, targets: URL? = nil, _ change: (inout TrainingSettings) -> Void = { _ in }) throws -> FineTuning {
        try FineTuning(model: model, data: data, targets: targets, settings: TrainingFixtures.settings(change), cacheHome: TrainingFixtures.cacheHome)
    }

    /// The plain recipe (frozen GoogLeNet, softmax head on pool5_flat, Adam 1e-3, batch 32, 10 epochs, 80/20)
    /// reaches 0.82–0.86 on clipart4; one validation image is 0.036, so the bar is the mean over three seeds.
    func testDefaultRecipeReachesEightyPercentOnClipart4() throws {
        let model = try TrainingFixtures.googlenet(), data = try TrainingFixtures.clipart4()
        var accuracies: [Double] = []
        for seed: UInt64 in [1, 2, 3] {
            let job = try fineTuning(model, data) { $0.seed = seed }
            try job.trainer.prepare()
            let result = try job.trainer.run(checkpoint: nil)
            XCTAssertEqual(result.history.count, 10)
            let best = try XCTUnwrap(result.history.first { $0.epoch == result.bestEpoch })
            XCTAssertEqual(best.valLoss!, result.history.compactMap(\.valLoss).min()!, "the kept epoch has the lowest validation loss")
            accuracies.append(try XCTUnwrap(best.valAccuracy))
            XCTAssertEqual(job.metrics(result)?.accuracy ?? -1, best.valAccuracy!, accuracy: 1e-9, "final predictions are the best epoch's")
        }
        let mean = accuracies.reduce(0, +) / 3
        XCTAssertGreaterThanOrEqual(mean, 0.80, "validation accuracies \(accuracies)")
    }

    /// Export, reload and classify: the file carries labels and preprocessing, every backbone parameter is the
    /// original bit for bit, and `classify` agrees with the trainer's own validation predictions.
    func testExportedModelIsSelfDescribingAndFrozenParametersAreBitIdentical() throws {
        let dir = try SharedData.temporaryDirectory(for: self)
        let model = try TrainingFixtures.googlenet(), data = try TrainingFixtures.clipart4()
        let job = try fineTuning(model, data) { $0.epochs = 3 }
        try job.trainer.prepare()
        let result = try job.trainer.run(checkpoint: nil)
        let url = dir.appendingPathComponent("clipart.onnx")
        try job.export(to: url)
        let loaded = try LoadedModel(url: url)
        XCTAssertEqual(loaded.labels, ["birds", "flowers", "fruit", "vehicles"])
        XCTAssertEqual(try loaded.preprocessing, try model.preprocessing)
        XCTAssertEqual(loaded.graph.outputs.map(\.name), ["logits", "prob"])
        XCTAssertNil(loaded.graph.initializers["loss3_classifier_W"], "old head pruned")
        var compared = 0
        for (name, value) in loaded.graph.initializers where !name.hasPrefix("head_") {
            let original = try XCTUnwrap(model.graph.initializers[name]?.floatTensor, name)
            XCTAssertEqual(value.floatTensor!.scalars.map(\.bitPattern), original.scalars.map(\.bitPattern), name)
            compared += 1
        }
        XCTAssertGreaterThan(compared, 100)
        XCTAssertNotEqual(loaded.graph.initializers["head_W"]!.floatTensor!.scalars, job.model.graph.initializers["head_W"]!.floatTensor!.scalars,
                          "the head was trained (the training graph still holds its starting weights)")
        for p in result.predictions.prefix(6) {
            let top = try loaded.classify(try ImageFile.read(p.sample.url), top: 1)[0]
            XCTAssertEqual(top.index, p.predicted, p.sample.name)
        }
        // The layer names users type still resolve: the new model can be dreamed with.
        XCTAssertEqual(loaded.defaultDreamLayer, "inception_4c_output")
    }

    func testTrainFromTrainsOnlyThatLayerOnwardAndFreezesTheRestBitForBit() throws {
        let model = try TrainingFixtures.googlenet(), data = try TrainingFixtures.clipart4()
        let job = try fineTuning(model, data) { $0.epochs = 1; $0.trainFrom = "inception_5a_output"; $0.batchSize = 54 }
        // The frozen part ends where training starts (plus inception_5b's parameter-free max-pool branch).
        XCTAssertEqual(job.model.boundary.first, "inception_5a_output")
        XCTAssertLessThanOrEqual(job.model.boundary.count, 2)
        let frozenRule = try ParameterFreezing(executor: try GraphExecutor(graph: job.model.graph)).frozen(beforeLayer: "inception_5a_output")
        XCTAssertEqual(job.model.parameters.trainable, Set(job.model.parameters.names).subtracting(frozenRule))
        XCTAssertEqual(job.model.parameters.trainableCount, 1_444_080 + 4 * 1024 + 4)
        let before = job.model.parameters.values
        try job.trainer.prepare()
        _ = try job.trainer.run(checkpoint: nil)
        let after = job.trainer.model.parameters
        for name in after.names {
            let same = after.values[name]!.scalars.map(\.bitPattern) == before[name]!.scalars.map(\.bitPattern)
            XCTAssertEqual(same, !after.trainable.contains(name), name)
        }
    }

    /// Stop after the 5th batch (as Ctrl-C does), resume from the checkpoint: the same parameters, bit for bit,
    /// and the same history as a run that was never interrupted.
    func testResumeGivesTheSameResultAsAnUninterruptedRun() throws {
        let dir = try SharedData.temporaryDirectory(for: self)
        let model = try TrainingFixtures.googlenet(), data = try TrainingFixtures.clipart4()
        let change: (inout TrainingSettings) -> Void = { $0.epochs = 3; $0.batchSize = 16; $0.seed = 5; $0.optimizer = .adamw; $0.weightDecay = 0.01 }
        let straight = try fineTuning(model, data, change)
        try straight.trainer.prepare()
        let expected = try straight.trainer.run(checkpoint: nil)

        let checkpoint = dir.appendingPathComponent("run.checkpoint")
        let first = try fineTuning(model, data, change)
        try first.trainer.prepare()
        var batches = 0
        XCTAssertThrowsError(try first.trainer.run(checkpoint: checkpoint, shouldStop: { batches += 1; return batches >= 9 })) { error in
            guard case TrainingError.interrupted(let url) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(url, checkpoint)
        }
        let state = try TrainingState.read(from: checkpoint)
        XCTAssertEqual(state.epoch, 1, "interrupted in the second epoch (7 batches per epoch)")
        XCTAssertEqual(state.batch, 2)
        let second = try fineTuning(model, data, change)
        try second.trainer.prepare()
        let resumed = try second.trainer.run(from: state, checkpoint: checkpoint)
        XCTAssertEqual(resumed.bestEpoch, expected.bestEpoch)
        XCTAssertEqual(resumed.history.map(\.trainLoss), expected.history.map(\.trainLoss))
        XCTAssertEqual(resumed.history.map(\.valLoss), expected.history.map(\.valLoss))
        for name in ["head_W", "head_B"] {
            XCTAssertEqual(second.trainer.model.parameters.values[name]!.scalars.map(\.bitPattern),
                           straight.trainer.model.parameters.values[name]!.scalars.map(\.bitPattern), name)
        }
        // Other settings: refused with what differs.
        let other = try fineTuning(model, data) { $0.epochs = 3; $0.batchSize = 8; $0.seed = 5; $0.optimizer = .adamw; $0.weightDecay = 0.01 }
        try other.trainer.prepare()
        XCTAssertThrowsError(try other.trainer.run(from: state, checkpoint: nil)) { error in
            XCTAssertTrue("\(error)".contains("batchSize"), "\(error)")
        }
    }

    func testSecondRunReadsEveryFeatureFromTheCache() throws {
        let dir = try SharedData.temporaryDirectory(for: self)
        let model = try TrainingFixtures.tinyModel(in: dir), data = try TrainingFixtures.colourFolder(in: dir, count: 6)
        let home = dir.appendingPathComponent("home")
        func prepareCounts() throws -> (cached: Int, computed: Int) {
            let job = try FineTuning(model: model, data: data, targets: nil, settings: TrainingSettings(), cacheHome: home)
            var counts = (0, 0)
            try job.trainer.prepare { if case let .prepared(cached, computed, _) = $0 { counts = (cached, computed) } }
            return counts
        }
        XCTAssertEqual(try prepareCounts().computed, 12)
        XCTAssertEqual(try prepareCounts().cached, 12)
    }

    func testUnreadableImagesAreListedAndSkipped() throws {
        let dir = try SharedData.temporaryDirectory(for: self)
        let model = try TrainingFixtures.tinyModel(in: dir), data = try TrainingFixtures.colourFolder(in: dir, count: 6)
        try Data("not an image".utf8).write(to: data.appendingPathComponent("red/broken.png"))
        try Data().write(to: data.appendingPathComponent("blue/empty.jpg"))
        let job = try FineTuning(model: model, data: data, targets: nil, settings: TrainingFixtures.settings { $0.epochs = 30; $0.learningRate = 0.05 }, cacheHome: nil)
        try job.trainer.prepare()
        XCTAssertEqual(Set(job.trainer.unreadable.map(\.name)), ["red/broken.png", "blue/empty.jpg"])
        XCTAssertEqual(job.trainer.trainingCount + job.trainer.validationCount, 12)
        let result = try job.trainer.run(checkpoint: nil)
        XCTAssertEqual(result.history.last?.trainAccuracy, 1, "red and blue separate on mean colour")
        // A class whose every image is unreadable is an error before training.
        for name in try FileManager.default.contentsOfDirectory(atPath: data.appendingPathComponent("blue").path) {
            try Data("junk".utf8).write(to: data.appendingPathComponent("blue/" + name))
        }
        let broken = try FineTuning(model: model, data: data, targets: nil, settings: TrainingSettings(), cacheHome: nil)
        XCTAssertThrowsError(try broken.trainer.prepare()) { XCTAssertTrue("\($0)".contains("class 'blue'"), "\($0)") }
    }

    func testRegressionFromACSVWithQuotedNames() throws {
        let dir = try SharedData.temporaryDirectory(for: self)
        let model = try TrainingFixtures.tinyModel(in: dir)
        let root = dir.appendingPathComponent("shades")
        var csv = "file,value\n"
        for i in 0..<16 {
            let red = Float(i) * 15
            let name = i == 3 ? "odd, name \"3\".png" : "img\(i).png"
            try TrainingFixtures.writeImage(root.appendingPathComponent(name), color: (red, 20, 20), seed: UInt64(i))
            csv += "\"\(name.replacingOccurrences(of: "\"", with: "\"\""))\",\(red / 100)\n"
        }
        let targets = dir.appendingPathComponent("values.csv")
        try Data(csv.utf8).write(to: targets)
        let job = try FineTuning(model: model, data: root, targets: targets, settings: TrainingFixtures.settings { $0.epochs = 200; $0.learningRate = 0.05; $0.batchSize = 4 }, cacheHome: nil)
        XCTAssertEqual(job.choice.activation, .linear)
        XCTAssertTrue((job.dataset.train + job.dataset.validation).contains { $0.name == "odd, name \"3\".png" })
        try job.trainer.prepare()
        let result = try job.trainer.run(checkpoint: nil)
        XCTAssertNil(result.history.last?.trainAccuracy)
        // Targets span 0...2.25; the mean colour predicts them well after training.
        XCTAssertLessThan(result.history.last!.valMAE!, 0.25)
        XCTAssertLessThan(result.history.last!.trainLoss, result.history.first!.trainLoss / 4)
    }

    func testDivergenceStopsWithAMessageAboutTheLearningRate() throws {
        let dir = try SharedData.temporaryDirectory(for: self)
        let model = try TrainingFixtures.tinyModel(in: dir), data = try TrainingFixtures.colourFolder(in: dir, count: 6)
        let job = try FineTuning(model: model, data: data, targets: nil,
                                 settings: TrainingFixtures.settings { $0.learningRate = 1e6; $0.optimizer = .sgd; $0.epochs = 20; $0.batchSize = 2 }, cacheHome: nil)
        try job.trainer.prepare()
        XCTAssertThrowsError(try job.trainer.run(checkpoint: nil)) { error in
            XCTAssertTrue("\(error)".contains("learning rate 1000000.0 is probably too high"), "\(error)")
        }
    }

    /// --trainable conv: the first layer trains, so there is nothing to precompute and every batch runs from the
    /// pixels; with --augment the crops and flips come from the seed, so two runs give the same parameters.
    func testTrainingFromThePixelsAndAugmentationAreReproducible() throws {
        let dir = try SharedData.temporaryDirectory(for: self)
        let model = try TrainingFixtures.tinyModel(in: dir), data = try TrainingFixtures.colourFolder(in: dir, count: 6)
        func train(_ change: @escaping (inout TrainingSettings) -> Void) throws -> (Trainer, TrainingResult) {
            let job = try FineTuning(model: model, data: data, targets: nil, settings: TrainingFixtures.settings {
                $0.epochs = 15; $0.learningRate = 0.05; $0.batchSize = 4; change(&$0)
            }, cacheHome: nil)
            try job.trainer.prepare()
            return (job.trainer, try job.trainer.run(checkpoint: nil))
        }
        let (plain, plainResult) = try train { $0.trainablePrefixes = ["conv"] }
        XCTAssertTrue(plain.recomputesFrozenPart)
        XCTAssertEqual(plain.model.parameters.trainable, ["conv_W", "conv_B", "head_W", "head_B"])
        XCTAssertEqual(plainResult.history.last?.trainAccuracy, 1)
        let (a, _) = try train { $0.augment = true; $0.seed = 4 }
        let (b, _) = try train { $0.augment = true; $0.seed = 4 }
        let (c, _) = try train { $0.augment = true; $0.seed = 5 }
        XCTAssertTrue(a.recomputesFrozenPart)
        XCTAssertEqual(a.model.parameters.values["head_W"]!.scalars, b.model.parameters.values["head_W"]!.scalars)
        XCTAssertNotEqual(a.model.parameters.values["head_W"]!.scalars, c.model.parameters.values["head_W"]!.scalars)
        XCTAssertThrowsError(try FineTuning(model: model, data: data, targets: nil,
                                            settings: TrainingFixtures.settings { $0.trainablePrefixes = ["nope"] }, cacheHome: nil)) {
            XCTAssertTrue("\($0)".contains("--trainable nope: no parameter name starts with it"), "\($0)")
        }
    }
}
