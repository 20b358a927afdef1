import Foundation
import Models
import TestSupport
import XCTest

/// The model cache verifies what it serves and stays consistent when several processes fill it at once.
final class ModelCacheSafetyTests: XCTestCase {
    func testACorruptOrTruncatedCachedFileIsReplacedFromTheMirrorWithANote() throws {
        let mirror = try SharedData.file("models")
        let home = try SharedData.temporaryDirectory(for: self)
        var log: [String] = []
        let store = ModelStore(home: home, mirror: mirror) { log.append($0) }
        let cached = try store.resolve("squeezenet")
        let good = try Data(contentsOf: cached)
        // Truncated (a crash during an old copy), then one flipped byte of the same size.
        for bad in [good.prefix(good.count / 2), { var d = good; d[d.count / 2] ^= 0xFF; return d }()] {
            try bad.write(to: cached)
            log = []
            XCTAssertEqual(try store.resolve("squeezenet"), cached)
            XCTAssertEqual(try Data(contentsOf: cached), good, "the bad file was not replaced")
            XCTAssertTrue(log.contains { $0.hasPrefix("note: ") && $0.contains("SHA-256") && $0.contains(cached.path) }, "\(log)")
        }
    }

    func testACorruptCachedFileWithNoWayToReplaceItIsRefusedNamingTheFile() throws {
        let home = try SharedData.temporaryDirectory(for: self)
        let models = home.appendingPathComponent("models")
        try FileManager.default.createDirectory(at: models, withIntermediateDirectories: true)
        try Data("half a model".utf8).write(to: models.appendingPathComponent("squeezenet1_1.onnx"))
        let store = ModelStore(home: home, mirror: nil)
        XCTAssertThrowsError(try store.resolve("squeezenet")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(models.appendingPathComponent("squeezenet1_1.onnx").path) && text.contains("delete"), text)
        }
    }

    func testAMirrorDescriptionCannotCopyLabelsFromOrToOutsideItsFolder() throws {
        let root = try SharedData.temporaryDirectory(for: self)
        let mirror = root.appendingPathComponent("mirror"), home = root.appendingPathComponent("home")
        try FileManager.default.createDirectory(at: mirror, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: try SharedData.file("models/squeezenet1_1.onnx"), to: mirror.appendingPathComponent("squeezenet1_1.onnx"))
        try Data("secret".utf8).write(to: root.appendingPathComponent("outside.txt"))
        try Data(#"{"input": {"channel_order": "RGB", "pixel_range": [0, 1], "mean": [0], "std": [1]}, "labels": "../outside.txt"}"#.utf8)
            .write(to: mirror.appendingPathComponent("squeezenet1_1.json"))
        XCTAssertThrowsError(try ModelStore(home: home, mirror: mirror).resolve("squeezenet")) { error in
            XCTAssertTrue("\(error)".contains("../outside.txt"), "\(error)")
        }
        let written = (try? FileManager.default.contentsOfDirectory(atPath: home.appendingPathComponent("models").path)) ?? []
        XCTAssertEqual(written, [], "nothing may be copied when the description is refused")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root.path).sorted(), ["home", "mirror", "outside.txt"].filter {
            FileManager.default.fileExists(atPath: root.appendingPathComponent($0).path) })
    }

    func testAVerifiedStampSkipsRehashingUntilTheFileChanges() throws {
        let mirror = try SharedData.file("models")
        let home = try SharedData.temporaryDirectory(for: self)
        let store = ModelStore(home: home, mirror: mirror)
        let cached = try store.resolve("squeezenet")
        let stamp = home.appendingPathComponent("models/.squeezenet1_1.onnx.verified")
        let text = try String(contentsOf: stamp, encoding: .utf8)
        XCTAssertTrue(text.contains("sha256=73fd08dacb49b5d78d6f70262f4ada173e6fdc456910fa59f98864e7b82c6454"), text)
        // Same size, new content, new modification time: the stamp no longer matches, so the file is hashed again.
        var data = try Data(contentsOf: cached)
        data[100] ^= 1
        try data.write(to: cached)
        _ = try store.resolve("squeezenet")
        XCTAssertNotEqual(try Data(contentsOf: cached), data)
    }

    func testEightProcessesFillingAnEmptyCacheAtOnceAllSucceed() throws {
        let mirror = try SharedData.file("models")
        for _ in 0..<2 {
            let home = try SharedData.temporaryDirectory(for: self)
            var results: [CommandResult?] = Array(repeating: nil, count: 8)
            let lock = NSLock()
            DispatchQueue.concurrentPerform(iterations: 8) { i in
                let r = try? DreamExecutable.run(["layers", "--model", "squeezenet", "--parameters-only"], home: home, mirror: mirror)
                lock.lock(); results[i] = r; lock.unlock()
            }
            for r in results {
                XCTAssertEqual(r?.status, 0, r?.stderr ?? "did not run")
            }
            let left = try FileManager.default.contentsOfDirectory(atPath: home.appendingPathComponent("models").path)
                .filter { $0.hasPrefix(".dream-") || $0.hasSuffix(".partial") }
            XCTAssertEqual(left, [], "temporary files left in the cache")
        }
    }
}
