import Foundation
import Imaging
import Network
import Tensors
import TestSupport
import Training
import XCTest

final class DatasetTests: XCTestCase {
    func testHiddenFilesAndFoldersAreIgnoredAndExtensionsAreCaseInsensitive() throws {
        let dir = try SharedData.temporaryDirectory(for: self)
        let root = try TrainingFixtures.colourFolder(in: dir, count: 4)
        try TrainingFixtures.writeImage(root.appendingPathComponent(".hidden/img.png"), color: (0, 0, 0), seed: 1)
        try TrainingFixtures.writeImage(root.appendingPathComponent("red/.secret.png"), color: (0, 0, 0), seed: 2)
        try Data("x".utf8).write(to: root.appendingPathComponent("red/notes.txt"))
        try Data().write(to: root.appendingPathComponent(".DS_Store"))
        let data = try ImageDataset.classification(root, validationFraction: 0.25, seed: 1)
        XCTAssertEqual(data.classes, ["blue", "red"])
        let names = (data.train + data.validation).map(\.name)
        XCTAssertEqual(names.count, 8)
        XCTAssertFalse(names.contains { $0.contains(".secret") || $0.contains(".hidden") || $0.hasSuffix(".txt") })
        XCTAssertTrue(names.contains("red/img1.PNG") && names.contains("blue/img3.JPEG"))
    }

    func testStratifiedSplitIsSeededAndKeepsEveryClass() throws {
        let root = try TrainingFixtures.clipart4()
        let a = try ImageDataset.classification(root, validationFraction: 0.2, seed: 1)
        let b = try ImageDataset.classification(root, validationFraction: 0.2, seed: 1)
        let c = try ImageDataset.classification(root, validationFraction: 0.2, seed: 2)
        XCTAssertEqual(a.validation.count, 28, "7 of 34 per class")
        XCTAssertEqual(a.train.count, 108)
        for k in 0..<4 { XCTAssertEqual(a.validation.filter { $0.classIndex == k }.count, 7) }
        XCTAssertEqual(a.validation, b.validation)
        XCTAssertNotEqual(a.validation, c.validation)
        XCTAssertTrue(Set(a.train.map(\.name)).isDisjoint(with: a.validation.map(\.name)))
    }

    func testTrainAndValFoldersAreUsedWhenBothExist() throws {
        let dir = try SharedData.temporaryDirectory(for: self)
        _ = try TrainingFixtures.colourFolder(in: dir.appendingPathComponent("train"), count: 3)
        _ = try TrainingFixtures.colourFolder(in: dir.appendingPathComponent("val"), count: 2)
        // colourFolder writes <dir>/data; move them to the train/ and val/ layout.
        let root = dir.appendingPathComponent("set")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try FileManager.default.moveItem(at: dir.appendingPathComponent("train/data"), to: root.appendingPathComponent("train"))
        try FileManager.default.moveItem(at: dir.appendingPathComponent("val/data"), to: root.appendingPathComponent("val"))
        let data = try ImageDataset.classification(root, validationFraction: 0.2, seed: 1)
        XCTAssertTrue(data.presplit)
        XCTAssertEqual(data.train.count, 6)
        XCTAssertEqual(data.validation.count, 4)
        XCTAssertTrue(data.validation.allSatisfy { $0.name.hasPrefix("val/") })
    }

    func testBadFoldersAreClearErrorsBeforeTraining() throws {
        let dir = try SharedData.temporaryDirectory(for: self)
        func error(_ root: URL) -> String {
            do { _ = try ImageDataset.classification(root, validationFraction: 0.2, seed: 1); return "no error" } catch { return "\(error)" }
        }
        XCTAssertTrue(error(dir.appendingPathComponent("missing")).contains("is not a folder"))
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty.appendingPathComponent("a"), withIntermediateDirectories: true)
        XCTAssertTrue(error(empty).contains("has no .png, .jpg or .jpeg images"), error(empty))
        let one = dir.appendingPathComponent("one")
        try TrainingFixtures.writeImage(one.appendingPathComponent("cats/a.png"), color: (1, 2, 3), seed: 1)
        XCTAssertTrue(error(one).contains("1 class folder (cats)") && error(one).contains("at least 2"), error(one))
        try FileManager.default.createDirectory(at: one.appendingPathComponent("dogs"), withIntermediateDirectories: true)
        XCTAssertTrue(error(one).contains("class folder 'dogs'") && error(one).contains("has no"), error(one))
        let loose = dir.appendingPathComponent("loose")
        try TrainingFixtures.writeImage(loose.appendingPathComponent("a.png"), color: (1, 2, 3), seed: 1)
        XCTAssertTrue(error(loose).contains("0 class folders"), error(loose))
    }

    func testHeadAndLossTableRefusesPairsThatDoNotFit() throws {
        let auto = try HeadChoice(classes: 4, regression: false, head: nil, loss: nil)
        XCTAssertEqual(auto.activation, .softmax)
        XCTAssertEqual(auto.loss, .categoricalCrossEntropy)
        XCTAssertEqual(auto.outputs, 4)
        XCTAssertTrue(auto.explanation.contains("softmax") && auto.explanation.contains("cce"))
        let binary = try HeadChoice(classes: 2, regression: false, head: .sigmoid, loss: nil)
        XCTAssertEqual(binary.loss, .binaryCrossEntropy)
        XCTAssertEqual(binary.outputs, 1)
        XCTAssertEqual(try HeadChoice(classes: 5, regression: false, head: .sigmoid, loss: nil).outputs, 5, "multi-label: one output per class")
        XCTAssertEqual(try HeadChoice(classes: 3, regression: false, head: nil, loss: .klDivergence).activation, .softmax)
        let regression = try HeadChoice(classes: 0, regression: true, head: nil, loss: nil)
        XCTAssertEqual(regression.activation, .linear)
        XCTAssertEqual(regression.loss, .meanSquaredError)
        func refusal(_ classes: Int, _ regression: Bool, _ head: HeadActivation?, _ loss: Loss?, minimum: Float = 0) -> String {
            do { _ = try HeadChoice(classes: classes, regression: regression, head: head, loss: loss, minimumTarget: minimum); return "accepted" } catch { return "\(error)" }
        }
        XCTAssertTrue(refusal(4, false, .sigmoid, .meanSquaredLogError).contains("regression loss"))
        XCTAssertTrue(refusal(4, false, .linear, nil).contains("not class probabilities"))
        XCTAssertTrue(refusal(4, false, .softmax, .binaryCrossEntropy).contains("sum to 1"))
        XCTAssertTrue(refusal(4, false, .sigmoid, .categoricalCrossEntropy).contains("use bce"))
        XCTAssertTrue(refusal(0, true, .softmax, nil).contains("regression"))
        XCTAssertTrue(refusal(0, true, nil, .categoricalCrossEntropy).contains("mse, mae or msle"))
        XCTAssertTrue(refusal(0, true, nil, .meanSquaredLogError, minimum: -1).contains("logarithm"))
    }

    func testMetricsFromAKnownConfusion() {
        // truth/predicted: a a a b b c -> a a b b c c
        let m = ClassificationMetrics(labels: ["a", "b", "c"], pairs: [(0, 0), (0, 0), (0, 1), (1, 1), (1, 2), (2, 2)])
        XCTAssertEqual(m.confusion, [[2, 1, 0], [0, 1, 1], [0, 0, 1]])
        XCTAssertEqual(m.accuracy, 4.0 / 6, accuracy: 1e-12)
        XCTAssertEqual(m.perClass[0].precision, 1); XCTAssertEqual(m.perClass[0].recall, 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(m.perClass[1].precision, 0.5); XCTAssertEqual(m.perClass[1].recall, 0.5)
        XCTAssertEqual(m.perClass[2].precision, 0.5); XCTAssertEqual(m.perClass[2].f1, 2 * 0.5 / 1.5, accuracy: 1e-12)
        XCTAssertTrue(m.rendered().contains("confusion matrix"))
    }
}
