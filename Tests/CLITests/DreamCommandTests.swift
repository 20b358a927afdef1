import Foundation
import TestSupport
import Tensors
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

    /// --portable runs OpenBLAS's SSE3 kernels and our baseline SIMD kernels whatever the CPU (and whatever
    /// OPENBLAS_CORETYPE and DREAM_SIMD say), and records them: the same bytes as a run told to use those kernels,
    /// with the same thread count.
    func testPortableUsesTheKernelsEveryCPURunsAndRecordsThem() throws {
        let mirror = try SharedData.file("models")
        let home = try SharedData.temporaryDirectory(for: self)
        let out = try SharedData.temporaryDirectory(for: self)
        let image = try SharedData.file("images/chelsea.png").path
        let args = [image, "--layer", "inception_3b_output", "--octaves", "2", "--iterations", "2", "--seed", "3", "--threads", "2"]
        let portable = try DreamExecutable.run(args + ["--portable", "-o", out.appendingPathComponent("p.png").path],
                                               home: home, mirror: mirror,
                                               environment: ["OPENBLAS_CORETYPE": "Haswell", "DREAM_SIMD": "avx512"])
        XCTAssertEqual(portable.status, 0, portable.stderr)
        let pinned = try DreamExecutable.run(args + ["-o", out.appendingPathComponent("q.png").path],
                                             home: home, mirror: mirror,
                                             environment: ["OPENBLAS_CORETYPE": "Prescott", "DREAM_SIMD": "baseline"])
        XCTAssertEqual(pinned.status, 0, pinned.stderr)
        let bytes = try Data(contentsOf: out.appendingPathComponent("p.png"))
        XCTAssertEqual(bytes, try Data(contentsOf: out.appendingPathComponent("q.png")))
        XCTAssertTrue(String(decoding: bytes, as: UTF8.self).contains("Prescott kernels, 2 threads, baseline SIMD"))
        // Without --portable, the record names the level the kernels ran with: the best one unless DREAM_SIMD (inherited
        // from this process, like our own level) lowers it.
        let native = try DreamExecutable.run(args + ["--iterations", "1", "-o", out.appendingPathComponent("n.png").path],
                                             home: home, mirror: mirror, environment: ["OPENBLAS_CORETYPE": "Prescott"])
        XCTAssertEqual(native.status, 0, native.stderr)
        let nativeText = String(decoding: try Data(contentsOf: out.appendingPathComponent("n.png")), as: UTF8.self)
        XCTAssertTrue(nativeText.contains("Prescott kernels, 2 threads, \(SIMDLevel.current) SIMD"), "record names \(SIMDLevel.current)")
    }

    func testUnknownSIMDLevelInTheEnvironmentIsAUsageError() throws {
        let r = try DreamExecutable.run(["layers"], home: try SharedData.temporaryDirectory(for: self),
                                        mirror: try SharedData.file("models"), environment: ["DREAM_SIMD": "sse9"])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("DREAM_SIMD must be baseline, avx2 or avx512"), r.stderr)
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
