import Foundation
import TestSupport
import XCTest

final class ZoomCommandTests: XCTestCase {
    /// Frames are numbered, an interrupted sequence continues after the last frame on disk and gives the frames an
    /// uninterrupted run gives, and frames of other settings are never mixed in.
    func testFramesResumeAfterTheLastOneAndMatchAnUninterruptedRun() throws {
        let mirror = try SharedData.file("models")
        let home = try SharedData.temporaryDirectory(for: self)
        let out = try SharedData.temporaryDirectory(for: self)
        let frames = out.appendingPathComponent("frames")
        let image = try SharedData.file("images/chelsea.png").path
        let args = ["zoom", image, "--layer", "inception_3a_output", "--octaves", "1", "--iterations", "1", "--zoom", "1.1",
                    "--rotate", "1", "--seed", "5", "-o", frames.path]
        func frame(_ k: Int) -> URL { frames.appendingPathComponent(String(format: "frame-%05d.png", k)) }

        let first = try DreamExecutable.run(args + ["--frames", "3"], home: home, mirror: mirror)
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertTrue(first.stderr.contains("wrote 3 frames"), first.stderr)
        let third = try Data(contentsOf: frame(3))
        XCTAssertNotEqual(try Data(contentsOf: frame(2)), third, "each frame dreams on the zoomed previous one")

        // As if interrupted while dreaming frame 3: it is dreamt again, the same as before, then frame 4.
        try FileManager.default.removeItem(at: frame(3))
        let resumed = try DreamExecutable.run(args + ["--frames", "4"], home: home, mirror: mirror)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("resumed after frame 2"), resumed.stderr)
        XCTAssertFalse(resumed.stderr.contains("frame 1/4"), "frames on disk are not dreamt again: \(resumed.stderr)")
        XCTAssertEqual(try Data(contentsOf: frame(3)), third, "a resumed sequence is the uninterrupted one")
        XCTAssertTrue(FileManager.default.fileExists(atPath: frame(4).path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: frame(5).path))

        let other = try DreamExecutable.run(args.map { $0 == "1.1" ? "1.2" : $0 } + ["--frames", "5"], home: home, mirror: mirror)
        XCTAssertEqual(other.status, 1)
        XCTAssertTrue(other.stderr.contains("another sequence"), other.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: frame(5).path))
    }

    func testBadZoomSettingsAreUsageErrors() throws {
        let home = try SharedData.temporaryDirectory(for: self)
        for bad in [["--zoom", "1"], ["--zoom", "nan"], ["--frames", "0"], ["--rotate", "inf"]] {
            let result = try DreamExecutable.run(["zoom", "photo.png"] + bad, home: home)
            XCTAssertEqual(result.status, 2, "\(bad): \(result.stderr)")
        }
    }
}
