import Foundation
import Imaging
import XCTest

final class JPEGCommentTests: XCTestCase {
    func picture() -> RGBImage {
        RGBImage(width: 40, height: 24, pixels: (0..<(40 * 24 * 3)).map { Float(($0 * 37) % 256) })
    }

    func testTextGoesIntoACommentAfterSOIAndComesBackWithTheSamePixels() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("jpeg-comment-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let plain = dir.appendingPathComponent("plain.jpg"), noted = dir.appendingPathComponent("noted.jpg")
        let text: [(key: String, value: String)] = [("dream:seed", "7"), ("dream:source", "caf\u{e9} \"quoted\"\nline"), ("dream:seed", "8")]
        try ImageFile.write(picture(), to: plain)
        try ImageFile.write(picture(), to: noted, text: text)
        let bytes = try Data(contentsOf: noted)
        XCTAssertEqual(Array(bytes.prefix(4)), [0xFF, 0xD8, 0xFF, 0xFE], "COM right after SOI")
        XCTAssertEqual(try ImageFile.readText(noted), ["dream:seed": "8", "dream:source": "caf\u{e9} \"quoted\"\nline"])
        XCTAssertEqual(try ImageFile.readText(plain), [:])
        XCTAssertEqual(try ImageFile.read(noted).pixels, try ImageFile.read(plain).pixels, "the comment leaves the picture alone")
    }

    func testPNGTextReadsThroughTheSameCall() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("png-text-\(UUID().uuidString).png")
        defer { try? FileManager.default.removeItem(at: url) }
        try ImageFile.write(picture(), to: url, text: [("dream:seed", "3")])
        XCTAssertEqual(try ImageFile.readText(url)["dream:seed"], "3")
    }

    func testCommentsOverTheSegmentLimitAreRefusedAndAtTheLimitFit() throws {
        let jpeg = try JPEGCodec.encode(picture())
        let fits = [UInt8](repeating: 0x41, count: JPEGCodec.maxCommentBytes)
        let with = try JPEGCodec.insertComment(fits, into: jpeg, name: "x.jpg")
        XCTAssertEqual(JPEGCodec.comments(in: with), [fits])
        XCTAssertEqual(try JPEGCodec.decode(with, name: "x.jpg", maxPixels: 1 << 20).pixels,
                       try JPEGCodec.decode(jpeg, name: "x.jpg", maxPixels: 1 << 20).pixels)
        XCTAssertThrowsError(try JPEGCodec.insertComment(fits + [0x41], into: jpeg, name: "x.jpg")) { error in
            XCTAssertTrue("\(error)".contains("65533"), "\(error)")
        }
    }

    func testMaxSideShrinksTheLongerSideOnly() {
        let wide = RGBImage(width: 300, height: 100, pixels: [Float](repeating: 9, count: 300 * 100 * 3))
        let small = wide.limitingLongerSide(to: 150)
        XCTAssertEqual(small?.width, 150)
        XCTAssertEqual(small?.height, 50)
        XCTAssertNil(wide.limitingLongerSide(to: 300), "already small enough")
    }
}
