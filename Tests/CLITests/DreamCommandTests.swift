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
        XCTAssertTrue(text.contains("dream:blas") && text.contains(" kernels, "), "the PNG records the BLAS kernels and threads")
    }

    /// --portable runs OpenBLAS's SSE3 kernels whatever the CPU (and whatever OPENBLAS_CORETYPE says), and records it:
    /// the same bytes as a run told to use those kernels, with the same thread count.
    func testPortableUsesTheKernelsEveryCPURunsAndRecordsThem() throws {
        let mirror = try SharedData.file("models")
        let home = try SharedData.temporaryDirectory(for: self)
        let out = try SharedData.temporaryDirectory(for: self)
        let image = try SharedData.file("images/chelsea.png").path
        let args = [image, "--layer", "inception_3b_output", "--octaves", "2", "--iterations", "2", "--seed", "3", "--threads", "2"]
        let portable = try DreamExecutable.run(args + ["--portable", "-o", out.appendingPathComponent("p.png").path],
                                               home: home, mirror: mirror, environment: ["OPENBLAS_CORETYPE": "Haswell"])
        XCTAssertEqual(portable.status, 0, portable.stderr)
        let pinned = try DreamExecutable.run(args + ["-o", out.appendingPathComponent("q.png").path],
                                             home: home, mirror: mirror, environment: ["OPENBLAS_CORETYPE": "Prescott"])
        XCTAssertEqual(pinned.status, 0, pinned.stderr)
        let bytes = try Data(contentsOf: out.appendingPathComponent("p.png"))
        XCTAssertEqual(bytes, try Data(contentsOf: out.appendingPathComponent("q.png")))
        XCTAssertTrue(String(decoding: bytes, as: UTF8.self).contains("Prescott kernels, 2 threads"))
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
