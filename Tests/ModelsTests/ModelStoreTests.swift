import Foundation
import Models
import TestSupport
import XCTest

final class ModelStoreTests: XCTestCase {
    func testKnownNameIsCopiedFromTheMirrorOnceAndThenServedFromTheCache() throws {
        let mirror = try SharedData.file("models")
        let home = try SharedData.temporaryDirectory(for: self)
        var log: [String] = []
        let store = ModelStore(home: home, mirror: mirror) { log.append($0) }
        let first = try store.resolve("squeezenet")
        XCTAssertEqual(first.lastPathComponent, "squeezenet1_1.onnx")
        XCTAssertTrue(FileManager.default.fileExists(atPath: home.appendingPathComponent("models/squeezenet1_1.json").path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: home.appendingPathComponent("models/imagenet_labels_1000.txt").path))
        XCTAssertEqual(log.count, 1)
        let second = try store.resolve("squeezenet")
        XCTAssertEqual(first, second)
        XCTAssertEqual(log.count, 1, "a cached model must not be fetched twice")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: home.appendingPathComponent("models").path).filter { $0.hasSuffix(".partial") }
        XCTAssertEqual(leftovers, [])
    }

    func testAMirrorFileWithTheWrongChecksumIsRefused() throws {
        let mirror = try SharedData.temporaryDirectory(for: self)
        try Data("not a model".utf8).write(to: mirror.appendingPathComponent("squeezenet1_1.onnx"))
        let store = ModelStore(home: try SharedData.temporaryDirectory(for: self), mirror: mirror)
        XCTAssertThrowsError(try store.resolve("squeezenet")) { error in
            XCTAssertTrue("\(error)".contains("SHA-256"), "\(error)")
        }
    }

    func testUnknownNamesListTheKnownOnes() throws {
        let store = ModelStore(home: try SharedData.temporaryDirectory(for: self), mirror: nil)
        XCTAssertThrowsError(try store.resolve("alexnet")) { error in
            XCTAssertTrue("\(error)".contains("googlenet"), "\(error)")
        }
        XCTAssertThrowsError(try store.resolve("/no/such/model.onnx"))
    }

    func testSHA256OfKnownVectors() {
        XCTAssertEqual(SHA256.hexDigest(of: Data()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hexDigest(of: Data("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = Data(repeating: 0x61, count: 1_000_000)
        XCTAssertEqual(SHA256.hexDigest(of: long), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}
