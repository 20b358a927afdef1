import Foundation
import TestSupport
import XCTest

/// Bad input gives one clear line on stderr and exit code 1 (2 for usage errors), never a crash.
final class BadInputTests: CommandTestCase {

    func assertFails(_ arguments: [String], status: Int32 = 1, mentioning words: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try DreamExecutable.run(arguments, home: home, mirror: mirror)
        XCTAssertEqual(r.status, status, "\(arguments): \(r.stderr)", file: file, line: line)
        let lines = r.stderr.split(separator: "\n").filter { !$0.hasPrefix("copying") }
        if status == 1 { XCTAssertEqual(lines.count, 1, "one line expected, got: \(r.stderr)", file: file, line: line) }
        for word in words { XCTAssertTrue(r.stderr.contains(word), "'\(word)' not in: \(r.stderr)", file: file, line: line) }
    }

    func testMissingImage() throws {
        try assertFails(["classify", "/no/such/photo.jpg"], mentioning: ["photo.jpg"])
    }

    func testCorruptAndTruncatedImages() throws {
        let garbage = scratch.appendingPathComponent("garbage.png")
        try Data("this is not a picture".utf8).write(to: garbage)
        try assertFails(["classify", garbage.path], mentioning: ["garbage.png"])
        let original = try Data(contentsOf: try SharedData.file("images/dog.jpg"))
        let truncated = scratch.appendingPathComponent("truncated.jpg")
        try original.prefix(original.count / 3).write(to: truncated)
        try assertFails(["classify", truncated.path], mentioning: ["truncated.jpg"])
    }

    func testCorruptModel() throws {
        let model = scratch.appendingPathComponent("broken.onnx")
        try Data(repeating: 0xFF, count: 1000).write(to: model)
        try assertFails(["layers", "--model", model.path], mentioning: ["broken.onnx"])
        let real = try Data(contentsOf: try SharedData.file("models/squeezenet1_1.onnx"))
        let truncated = scratch.appendingPathComponent("half.onnx")
        try real.prefix(real.count / 2).write(to: truncated)
        try assertFails(["layers", "--model", truncated.path], mentioning: ["half.onnx"])
    }

    func testUnknownModelNameListsTheKnownOnes() throws {
        try assertFails(["layers", "--model", "alexnet"], mentioning: ["alexnet", "googlenet"])
    }

    func testUnknownLayerListsCloseMatches() throws {
        let image = try SharedData.file("images/chelsea.png").path
        try assertFails([image, "--layer", "inception_4x_output", "-o", scratch.appendingPathComponent("o.png").path],
                        mentioning: ["inception_4x_output", "inception_4c_output"])
    }

    func testUsageErrorsExitWith2() throws {
        let image = try SharedData.file("images/chelsea.png").path
        try assertFails(["classify", image, "--top", "0"], status: 2, mentioning: ["--top"])
        try assertFails(["classify", image, "--no-such-flag"], status: 2, mentioning: ["--no-such-flag"])
    }

    func testImageOverThePixelLimitIsRefused() throws {
        // A valid PNG header claiming 60000 x 60000 pixels: refused before decoding.
        var png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        func chunk(_ type: String, _ body: [UInt8]) {
            var be = UInt32(body.count).bigEndian
            png.append(Data(bytes: &be, count: 4))
            let typed = Array(type.utf8) + body
            png.append(contentsOf: typed)
            var crc = UInt32(0xFFFF_FFFF)
            for byte in typed {
                crc ^= UInt32(byte)
                for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
            }
            var c = (crc ^ 0xFFFF_FFFF).bigEndian
            png.append(Data(bytes: &c, count: 4))
        }
        let side: [UInt8] = [0x00, 0x00, 0xEA, 0x60]
        chunk("IHDR", side + side + [8, 2, 0, 0, 0])
        chunk("IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])
        chunk("IEND", [])
        let bomb = scratch.appendingPathComponent("bomb.png")
        try png.write(to: bomb)
        try assertFails(["classify", bomb.path], mentioning: ["bomb.png", "limit"])
    }
}
