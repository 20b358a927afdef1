import Foundation
import TestSupport
import XCTest

final class DreamCommandTests: XCTestCase {
    func testSameSeedGivesTheSameBytesAndTheSettingsAreRecorded() throws {
        let mirror = try SharedData.file("models")
        let home = try SharedData.temporaryDirectory(for: self)
        let out = try SharedData.temporaryDirectory(for: self)
        let image = try SharedData.file("images/chelsea.png").path
        let args = [image, "--layer", "inception_3b_output", "--octaves", "2", "--iterations", "2", "--seed", "7"]
        let a = try DreamExecutable.run(args + ["-o", out.appendingPathComponent("a.png").path], home: home, mirror: mirror)
        XCTAssertEqual(a.status, 0, a.stderr)
        XCTAssertTrue(a.stderr.contains("wrote"), a.stderr)
        let b = try DreamExecutable.run(args + ["-o", out.appendingPathComponent("b.png").path], home: home, mirror: mirror)
        XCTAssertEqual(b.status, 0, b.stderr)
        let bytesA = try Data(contentsOf: out.appendingPathComponent("a.png"))
        let bytesB = try Data(contentsOf: out.appendingPathComponent("b.png"))
        XCTAssertEqual(bytesA, bytesB, "same seed, same bytes")
        let text = String(decoding: bytesA, as: UTF8.self)
        XCTAssertTrue(text.contains("seed=7"), "the PNG text chunks record the seed")
        XCTAssertTrue(text.contains("inception_3b_output"))
    }

    func testDefaultOutputGoesBesideTheInputAndNeverOverwritesIt() throws {
        let mirror = try SharedData.file("models")
        let home = try SharedData.temporaryDirectory(for: self)
        let dir = try SharedData.temporaryDirectory(for: self)
        let input = dir.appendingPathComponent("cat.png")
        try FileManager.default.copyItem(at: try SharedData.file("images/chelsea.png"), to: input)
        let r = try DreamExecutable.run([input.path, "--model", "squeezenet", "--octaves", "1", "--iterations", "1"], home: home, mirror: mirror)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("cat-dream.png").path))
        let same = try DreamExecutable.run([input.path, "-o", input.path, "--iterations", "1"], home: home, mirror: mirror)
        XCTAssertEqual(same.status, 2, same.stderr)
    }
}
