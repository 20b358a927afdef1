import Foundation
import TestSupport
import XCTest

/// `dream explain`, `visualize`, `filters` and the receptive-field columns of `layers`, as a user runs them.
final class ExplainCommandTests: CommandTestCase {

    func testExplainJSONNamesTheTopClassAndWritesThePictureAndTheRawMap() throws {
        let image = try SharedData.file("images/chelsea.png").path
        let png = scratch.appendingPathComponent("why.png"), npy = scratch.appendingPathComponent("map.npy")
        let r = try DreamExecutable.run(["explain", image, "--json", "-o", png.path, "--npy", npy.path], home: home, mirror: mirror)
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(object["class"] as? Int, 285)
        XCTAssertEqual(object["label"] as? String, "Egyptian cat")
        XCTAssertEqual(try XCTUnwrap(object["probability"] as? Double), 0.4947, accuracy: 1e-3)
        XCTAssertEqual(object["method"] as? String, "gradcam")
        XCTAssertEqual(object["layer"] as? String, "inception_5b_output")
        XCTAssertTrue(FileManager.default.fileExists(atPath: png.path))
        // A float32 [224, 224] .npy: 128-byte header (numpy's alignment for this shape) + 224*224*4 bytes.
        let data = try Data(contentsOf: npy)
        XCTAssertEqual(data.count, 128 + 224 * 224 * 4)
        XCTAssertTrue(String(decoding: data.prefix(128), as: UTF8.self).contains("(224, 224)"))
    }

    func testExplainAChosenClassPrintsItWithItsProbability() throws {
        let image = try SharedData.file("images/chelsea.png").path
        let r = try DreamExecutable.run(["explain", image, "--class", "tabby cat", "--method", "saliency", "-o",
                                         scratch.appendingPathComponent("s.png").path], home: home, mirror: mirror)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.hasPrefix("class 281  tabby, tabby cat  probability"), r.stdout)
    }

    func testBadChoicesAreOneLineErrors() throws {
        let image = try SharedData.file("images/chelsea.png").path
        var r = try DreamExecutable.run(["explain", image, "--class", "no such animal", "-o", scratch.appendingPathComponent("x.png").path],
                                        home: home, mirror: mirror)
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("no class is called \"no such animal\""), r.stderr)
        r = try DreamExecutable.run(["explain", image, "--method", "guess"], home: home, mirror: mirror)
        XCTAssertEqual(r.status, 2)
        r = try DreamExecutable.run(["visualize", "--steps", "3"], home: home, mirror: mirror)
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("give either --layer"), r.stderr)
        r = try DreamExecutable.run(["filters", "--layer", "pool5_7x7_s1", "-o", scratch.appendingPathComponent("f.png").path],
                                    home: home, mirror: mirror)
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("not computed by a convolution"), r.stderr)
    }

    func testFiltersWritesTheConv1Grid() throws {
        let out = scratch.appendingPathComponent("conv1.png")
        let r = try DreamExecutable.run(["filters", "--layer", "conv1_7x7_s2", "-o", out.path], home: home, mirror: mirror)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("64 of 64 channels of conv1_7x7_s2_pre_relu, kernel 7x7"), r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.path))
    }

    func testLayersJSONHasReceptiveFields() throws {
        let r = try DreamExecutable.run(["layers", "--json"], home: home, mirror: mirror)
        XCTAssertEqual(r.status, 0, r.stderr)
        let table = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let rows = try XCTUnwrap(table["rows"] as? [[String: Any]])
        let conv2 = try XCTUnwrap(rows.first { $0["output"] as? String == "conv2_3x3" })
        XCTAssertEqual(conv2["receptive_field"] as? Int, 19)
        XCTAssertEqual(conv2["stride"] as? Int, 4)
    }
}
