import Foundation
import TestSupport
import XCTest

/// `dream info` and `dream --from`: the record in PNG and JPEG outputs is complete enough to rerun the dream.
final class RecordCommandTests: CommandTestCase {
    /// Where a test's outputs go.
    var out: URL { scratch }

    /// Dreams into `name` with a guide and more octaves than the image allows, then reruns with --from.
    func checkRerunReproducesTheBytes(_ name: String) throws {
        let image = try SharedData.file("images/chelsea.png").path
        let guide = try SharedData.file("images/dog.jpg").path
        let first = out.appendingPathComponent(name), second = out.appendingPathComponent("again-" + name)
        let a = try DreamExecutable.run([image, "--layer", "inception_3b_output", "--octaves", "9", "--iterations", "1", "--seed", "11",
                                         "--guide", guide, "-o", first.path], home: home, mirror: mirror)
        XCTAssertEqual(a.status, 0, a.stderr)
        let info = try DreamExecutable.run(["info", first.path], home: home, mirror: mirror)
        XCTAssertEqual(info.status, 0, info.stderr)
        for expected in ["googlenet_bvlc.onnx", "b27e3dcc839276bed6e965731a682ad24566520fc364f9eea0adc1a820762901",
                         "inception_3b_output", "of 9 requested", "seed", "11", "guide", "dog.jpg", "kernels", "threads", "tile"] {
            XCTAssertTrue(info.stdout.contains(expected), "\(expected) missing from:\n\(info.stdout)")
        }
        let json = try DreamExecutable.run(["info", "--json", first.path], home: home, mirror: mirror)
        let record = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(record["octavesRequested"] as? Int, 9)
        XCTAssertLessThan(try XCTUnwrap(record["octaves"] as? Int), 9, "the octaves that ran are recorded")
        XCTAssertNotNil(record["guideSHA256"] as? String)
        let b = try DreamExecutable.run(["--from", first.path, image, "-o", second.path], home: home, mirror: mirror)
        XCTAssertEqual(b.status, 0, b.stderr)
        XCTAssertEqual(try Data(contentsOf: first), try Data(contentsOf: second), "--from reproduces the bytes")
        let c = try DreamExecutable.run(["--from", first.path, image, "--seed", "12", "-o", second.path], home: home, mirror: mirror)
        XCTAssertEqual(c.status, 0, c.stderr)
        XCTAssertNotEqual(try Data(contentsOf: first), try Data(contentsOf: second), "options given override the record")
        let again = try DreamExecutable.run(["info", second.path], home: home, mirror: mirror)
        XCTAssertTrue(again.stdout.contains("12"), again.stdout)
    }

    func testPNGRecordRerunsToTheSameBytes() throws { try checkRerunReproducesTheBytes("dream.png") }

    func testJPEGRecordRerunsToTheSameBytes() throws { try checkRerunReproducesTheBytes("dream.jpg") }

    func testAnImageWithoutARecordSaysSo() throws {
        let r = try DreamExecutable.run(["info", try SharedData.file("images/chelsea.png").path], home: home, mirror: mirror)
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("holds no dream record"), r.stderr)
    }

    func testAChangedModelIsRefusedNamingBothDigests() throws {
        let image = try SharedData.file("images/chelsea.png").path
        let models = out.appendingPathComponent("m")
        try FileManager.default.createDirectory(at: models, withIntermediateDirectories: true)
        let model = models.appendingPathComponent("model.onnx")
        try FileManager.default.copyItem(at: mirror.appendingPathComponent("squeezenet1_1.onnx"), to: model)
        try FileManager.default.copyItem(at: mirror.appendingPathComponent("squeezenet1_1.json"), to: models.appendingPathComponent("model.json"))
        let first = out.appendingPathComponent("s.png")
        let a = try DreamExecutable.run([image, "--model", model.path, "--octaves", "1", "--iterations", "1", "-o", first.path],
                                        home: home, mirror: mirror)
        XCTAssertEqual(a.status, 0, a.stderr)
        try FileManager.default.removeItem(at: model)
        try FileManager.default.copyItem(at: mirror.appendingPathComponent("googlenet_bvlc.onnx"), to: model)
        let b = try DreamExecutable.run(["--from", first.path, image, "-o", out.appendingPathComponent("t.png").path], home: home, mirror: mirror)
        XCTAssertEqual(b.status, 1, b.stderr)
        XCTAssertTrue(b.stderr.contains("73fd08dacb49b5d78d6f70262f4ada173e6fdc456910fa59f98864e7b82c6454"), b.stderr)
        XCTAssertTrue(b.stderr.contains("b27e3dcc839276bed6e965731a682ad24566520fc364f9eea0adc1a820762901"), b.stderr)
    }

    func testFeaturesOfSeveralImagesAndLayersGoToOneArchiveWithABatchDimension() throws {
        let images = try ["images/chelsea.png", "images/dog.jpg"].map { try SharedData.file($0).path }
        let npz = out.appendingPathComponent("acts.npz")
        let r = try DreamExecutable.run(["features"] + images + ["--layer", "conv2_3x3", "--layer", "inception_3b_output",
                                         "--no-channel-images", "--npz", npz.path, "--npy", out.appendingPathComponent("npy").path,
                                         "-o", out.appendingPathComponent("maps").path], home: home, mirror: mirror)
        XCTAssertEqual(r.status, 0, r.stderr)
        for sub in ["maps/chelsea/conv2_3x3/grid.png", "maps/dog/inception_3b_output/grid.png", "npy/conv2_3x3.npy", "npy/inception_3b_output.npy"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(sub).path), sub)
        }
        XCTAssertTrue(r.stderr.contains("conv2_3x3 [2, 192, 56, 56]"), r.stderr)
        XCTAssertTrue(r.stderr.contains("inception_3b_output [2, 480, 28, 28]"), r.stderr)
    }

    func testFeaturesRefuseAHugeRunBeforeComputingAndNameTheOptionThatHelps() throws {
        let r = try DreamExecutable.run(["features", try SharedData.file("images/chelsea.png").path, "--size", "original",
                                         "--layer", "inception_3b_output", "--max-memory", "0.01", "-o", out.path], home: home, mirror: mirror)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("would need about") && r.stderr.contains("--max-side"), r.stderr)
    }
}
