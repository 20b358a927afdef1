import Foundation
import TestSupport
import XCTest

final class FeaturesCommandTests: XCTestCase {
    var home: URL!
    var mirror: URL!

    override func setUpWithError() throws {
        mirror = try SharedData.file("models")
        home = try SharedData.temporaryDirectory(for: self)
    }

    func testUnknownLayerExitsWithOneAndListsCloseMatches() throws {
        let image = try SharedData.file("images/chelsea.png").path
        let out = try SharedData.temporaryDirectory(for: self)
        let r = try DreamExecutable.run(["features", image, "--layer", "inception_3b_outptu", "-o", out.path], home: home, mirror: mirror)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("inception_3b_outptu"), r.stderr)
        XCTAssertTrue(r.stderr.contains("inception_3b_output"), "close matches: \(r.stderr)")
        XCTAssertTrue(r.stderr.contains("dream layers"), r.stderr)
    }

    func testMissingLayerChoiceIsAUsageError() throws {
        let image = try SharedData.file("images/chelsea.png").path
        let r = try DreamExecutable.run(["features", image], home: home, mirror: mirror)
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("--all-layers"), r.stderr)
    }

    func testTopChannelsGridOverlayAndNpyOfOneLayer() throws {
        let image = try SharedData.file("images/chelsea.png").path
        let out = try SharedData.temporaryDirectory(for: self)
        let r = try DreamExecutable.run(["features", image, "--layer", "conv2_3x3", "--top", "8", "--sort", "--overlay",
                                         "--channel", "3", "--npy", out.appendingPathComponent("acts.npy").path,
                                         "-o", out.appendingPathComponent("maps").path], home: home, mirror: mirror)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("wrote"), r.stderr)
        let layer = out.appendingPathComponent("maps/conv2_3x3")
        let files = try FileManager.default.contentsOfDirectory(atPath: layer.path)
        XCTAssertEqual(files.filter { $0.hasPrefix("c") && $0.hasSuffix(".png") }.count, 8, "\(files)")
        XCTAssertTrue(files.contains("grid.png"))
        XCTAssertTrue(files.contains("overlay-c0003.png"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("acts.npy").path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("maps/index.html").path),
                       "the index is written with --all-layers")
    }
}
