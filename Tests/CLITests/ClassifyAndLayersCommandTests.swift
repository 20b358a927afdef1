import Foundation
import TestSupport
import XCTest

final class ClassifyAndLayersCommandTests: XCTestCase {
    var home: URL!
    var mirror: URL!

    override func setUpWithError() throws {
        mirror = try SharedData.file("models")
        home = try SharedData.temporaryDirectory(for: self)
    }

    func testClassifyJSONNamesTheCatInChelsea() throws {
        let image = try SharedData.file("images/chelsea.png").path
        let r = try DreamExecutable.run(["classify", image, "--json", "--top", "3"], home: home, mirror: mirror)
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(object["image"] as? String, image)
        let predictions = try XCTUnwrap(object["predictions"] as? [[String: Any]])
        XCTAssertEqual(predictions.count, 3)
        XCTAssertEqual(predictions.first?["index"] as? Int, 285)
        XCTAssertEqual(predictions.first?["label"] as? String, "Egyptian cat")
    }

    func testClassifyJSONOfSeveralImagesIsAList() throws {
        let images = try ["images/coffee.png", "images/dog.jpg"].map { try SharedData.file($0).path }
        let r = try DreamExecutable.run(["classify", "--model", "squeezenet", "--json"] + images, home: home, mirror: mirror)
        XCTAssertEqual(r.status, 0, r.stderr)
        let list = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(list.count, 2)
        XCTAssertEqual(((list[0]["predictions"] as? [[String: Any]])?.first)?["index"] as? Int, 967)
    }

    func testLayersTableHasTotalsAndFrozenCounts() throws {
        let r = try DreamExecutable.run(["layers", "--freeze-before", "logits", "--json"], home: home, mirror: mirror)
        XCTAssertEqual(r.status, 0, r.stderr)
        let table = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(table["totalParameters"] as? Int, 6_998_552)
        XCTAssertEqual(table["trainableParameters"] as? Int, 1_025_000, "only the classifier (1000x1024 + 1000) stays trainable")
        let text = try DreamExecutable.run(["layers"], home: home, mirror: mirror)
        XCTAssertTrue(text.stdout.contains("inception_4c_output"))
        XCTAssertTrue(text.stdout.contains("6,998,552 total"))
    }

    func testRunWritesRequestedIntermediateValuesAsNumPy() throws {
        let input = try SharedData.file("golden/squeezenet1_1/dog.input.npy").path
        let out = try SharedData.temporaryDirectory(for: self)
        let r = try DreamExecutable.run(["run", "--model", "squeezenet", "--input", "input=\(input)",
                                         "--output", "fire3_output=\(out.path)/f3.npy", "--output", "logits"],
                                        home: home, mirror: mirror, directory: out)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("f3.npy").path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("logits.npy").path))
    }

    func testBenchJSONReportsTheMedianForwardTime() throws {
        let r = try DreamExecutable.run(["bench", "--model", "squeezenet", "--runs", "2", "--warmup", "0", "--json"], home: home, mirror: mirror)
        XCTAssertEqual(r.status, 0, r.stderr)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertGreaterThan(report["forward_ms_median"] as? Double ?? 0, 0)
    }
}
