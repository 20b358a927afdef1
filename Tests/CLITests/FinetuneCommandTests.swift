import Foundation
import TestSupport
import XCTest

final class FinetuneCommandTests: XCTestCase {
    var mirror: URL!
    /// The feature cache is shared with TrainingTests (same model bytes, same preprocessing: same keys), so the
    /// backbone runs once per image per machine, not once per test.
    let home = FileManager.default.temporaryDirectory.appendingPathComponent("dream-training-tests-home")

    override func setUpWithError() throws {
        mirror = try SharedData.file("models")
    }

    func testFinetuneWritesAModelThatClassifyEvaluateAndLayersUse() throws {
        let data = try SharedData.file("datasets/clipart4")
        let out = try SharedData.temporaryDirectory(for: self)
        let model = out.appendingPathComponent("clip.onnx")
        let r = try DreamExecutable.run(["finetune", data.path, "-o", model.path, "--epochs", "4", "--json"], home: home, mirror: mirror, directory: out)
        XCTAssertEqual(r.status, 0, r.stderr)
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
        for key in ["val_accuracy", "val_loss", "epochs", "best_epoch", "train_seconds", "classes", "output"] {
            XCTAssertNotNil(summary[key], key)
        }
        XCTAssertEqual(summary["classes"] as? [String], ["birds", "flowers", "fruit", "vehicles"])
        XCTAssertEqual(summary["epochs"] as? Int, 4)
        XCTAssertEqual(summary["output"] as? String, model.path)
        XCTAssertGreaterThan(summary["val_accuracy"] as? Double ?? 0, 0.5)
        // Progress went to stderr: the parameter table with totals and one line per epoch.
        XCTAssertTrue(r.stderr.contains("4,100 trainable"), r.stderr)
        XCTAssertTrue(r.stderr.contains("epoch 4/4"), r.stderr)
        let report = out.appendingPathComponent("clip-report")
        for file in ["index.html", "training.csv", "curves.png", "confusion.png", "confusion.txt", "per_class.csv"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: report.appendingPathComponent(file).path), file)
        }
        let csv = try String(contentsOf: report.appendingPathComponent("training.csv"), encoding: .utf8)
        XCTAssertEqual(csv.split(separator: "\n").count, 5, "header + 4 epochs")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("clip.checkpoint").path), "no checkpoint left after success")

        let image = data.appendingPathComponent("vehicles").path + "/" + (try FileManager.default.contentsOfDirectory(atPath: data.appendingPathComponent("vehicles").path).sorted().first!)
        let classify = try DreamExecutable.run(["classify", "--model", model.path, image, "--json", "--top", "4"], home: home, mirror: mirror)
        XCTAssertEqual(classify.status, 0, classify.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(classify.stdout.utf8)) as? [String: Any])
        let labels = (object["predictions"] as? [[String: Any]])?.compactMap { $0["label"] as? String }
        XCTAssertEqual(Set(labels ?? []), ["birds", "flowers", "fruit", "vehicles"])

        // evaluate on three images of each class (a copy, so that it stays quick).
        let small = out.appendingPathComponent("small")
        for name in ["birds", "flowers", "fruit", "vehicles"] {
            try FileManager.default.createDirectory(at: small.appendingPathComponent(name), withIntermediateDirectories: true)
            for file in try FileManager.default.contentsOfDirectory(atPath: data.appendingPathComponent(name).path).sorted().prefix(3) {
                try FileManager.default.copyItem(at: data.appendingPathComponent(name).appendingPathComponent(file),
                                                 to: small.appendingPathComponent(name).appendingPathComponent(file))
            }
        }
        let evaluate = try DreamExecutable.run(["evaluate", "--model", model.path, small.path], home: home, mirror: mirror)
        XCTAssertEqual(evaluate.status, 0, evaluate.stderr)
        XCTAssertTrue(evaluate.stdout.contains("confusion matrix"), evaluate.stdout)
        XCTAssertTrue(evaluate.stdout.contains("precision") && evaluate.stdout.contains("(12 images)"), evaluate.stdout)

        let layers = try DreamExecutable.run(["layers", "--model", model.path, "--parameters-only"], home: home, mirror: mirror)
        XCTAssertEqual(layers.status, 0, layers.stderr)
        XCTAssertTrue(layers.stdout.contains("head_gemm"))
        XCTAssertFalse(layers.stdout.contains("loss3_classifier"))
    }

    func testIncompatibleHeadAndLossAreRefusedWithTheReason() throws {
        let data = try SharedData.file("datasets/clipart4")
        let out = try SharedData.temporaryDirectory(for: self)
        let r = try DreamExecutable.run(["finetune", data.path, "--head", "sigmoid", "--loss", "msle"], home: home, mirror: mirror, directory: out)
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("--head sigmoid with --loss msle") && r.stderr.contains("regression loss"), r.stderr)
        let bad = try DreamExecutable.run(["finetune", data.path, "--loss", "hinge"], home: home, mirror: mirror, directory: out)
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("--loss must be auto, cce, bce, kl, mse, mae or msle"), bad.stderr)
        let zero = try DreamExecutable.run(["finetune", data.path, "--epochs", "0"], home: home, mirror: mirror, directory: out)
        XCTAssertEqual(zero.status, 2)
    }

    func testAFolderWithOneClassIsAClearErrorBeforeTraining() throws {
        let out = try SharedData.temporaryDirectory(for: self)
        let data = out.appendingPathComponent("data/cats")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: try SharedData.file("images/chelsea.png"), to: data.appendingPathComponent("a.png"))
        let r = try DreamExecutable.run(["finetune", out.appendingPathComponent("data").path], home: home, mirror: mirror, directory: out)
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("1 class folder (cats)") && r.stderr.contains("at least 2"), r.stderr)
        XCTAssertFalse(r.stderr.contains("epoch"))
    }
}
