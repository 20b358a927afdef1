import Foundation
import SafeIO
import Imaging
import TestSupport
import XCTest

final class ErrorTests: XCTestCase {
    /// The error thrown by `body`, failing the test when nothing (or something other than an ImageError) is thrown.
    func imageError(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> ImageError? {
        do {
            try body()
            XCTFail("expected an ImageError", file: file, line: line)
        } catch let error as ImageError {
            return error
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
        return nil
    }

    func testMissingFileSaysNoSuchFile() throws {
        let dir = try SharedData.temporaryDirectory(for: self)
        let url = dir.appendingPathComponent("photo.jpg")
        let error = imageError { _ = try ImageFile.read(url) }
        XCTAssertEqual(error?.reason, "no such file")
        XCTAssertTrue(error?.description.hasSuffix("photo.jpg: no such file") ?? false)
    }

    func testEmptyFileIsAnError() throws {
        let dir = try SharedData.temporaryDirectory(for: self)
        let url = dir.appendingPathComponent("empty.png")
        try Data().write(to: url)
        XCTAssertEqual(imageError { _ = try ImageFile.read(url) }?.reason, "empty file")
    }

    func testUnknownFormatIsNamedWhateverTheExtension() throws {
        let dir = try SharedData.temporaryDirectory(for: self)
        let gif = dir.appendingPathComponent("x.gif")
        try Data("GIF89a\u{1}\u{0}\u{1}\u{0}".utf8).write(to: gif)
        XCTAssertEqual(imageError { _ = try ImageFile.read(gif) }?.reason, "not a PNG or JPEG file (looks like GIF)")
        // A PNG named .jpg is still read as a PNG: the bytes decide, not the name.
        let misnamed = dir.appendingPathComponent("really-a-png.jpg")
        try PNGCodec.encode(pattern(4, 4)).write(to: misnamed)
        XCTAssertEqual(try ImageFile.read(misnamed), pattern(4, 4))
    }

    func testRelativePathsStayRelativeInMessages() {
        let error = ImageError(URL(fileURLWithPath: "photos/cat.png", relativeTo: URL(fileURLWithPath: "/tmp")), "truncated PNG data")
        XCTAssertEqual(error.description, "photos/cat.png: truncated PNG data")
    }

    func testTruncatedPNGIsAnErrorAtEveryLength() throws {
        let png = try PNGCodec.encode(pattern(64, 64))
        for length in [4, 8, 20, 33, 60, png.count / 2, png.count - 30] {
            let error = imageError { _ = try ImageFile.decode(png.prefix(length), name: "cut.png") }
            XCTAssertEqual(error?.file, "cut.png", "length \(length)")
            if length > 8 { XCTAssertTrue(error?.reason.hasPrefix("truncated PNG data") ?? false, error?.description ?? "") }
        }
    }

    func testTruncatedJPEGIsAnError() throws {
        let jpeg = try JPEGCodec.encode(pattern(64, 64))
        for length in [3, 20, jpeg.count / 3, jpeg.count / 2, jpeg.count - 10] {
            let error = imageError { _ = try ImageFile.decode(jpeg.prefix(length), name: "cut.jpg") }
            XCTAssertEqual(error?.file, "cut.jpg", "length \(length)")
        }
        let error = imageError { _ = try ImageFile.decode(jpeg.prefix(jpeg.count / 2), name: "cut.jpg") }
        XCTAssertTrue(error?.reason.hasPrefix("truncated or corrupt JPEG") ?? false, error?.description ?? "")
    }

    func testCorruptPNGDataIsAnError() throws {
        var png = [UInt8](try PNGCodec.encode(pattern(32, 32)))
        for i in stride(from: 60, to: png.count - 20, by: 7) { png[i] ^= 0x5A }
        XCTAssertEqual(imageError { _ = try ImageFile.decode(Data(png), name: "bad.png") }?.file, "bad.png")
    }

    func testCorruptJPEGNeverCrashes() throws {
        let jpeg = [UInt8](try JPEGCodec.encode(pattern(48, 48)))
        for seed in 0..<20 {
            var bytes = jpeg
            var rng = UInt64(seed + 1)
            for _ in 0..<8 {
                rng = rng &* 6364136223846793005 &+ 1442695040888963407
                bytes[20 + Int(rng >> 33) % (bytes.count - 22)] = UInt8(truncatingIfNeeded: rng >> 13)
            }
            do {
                let image = try ImageFile.decode(Data(bytes), name: "noise.jpg")
                XCTAssertGreaterThan(image.width * image.height, 0)
            } catch let error as ImageError {
                XCTAssertEqual(error.file, "noise.jpg")
            }
        }
    }

    func testPixelLimitIsCheckedBeforeDecoding() throws {
        let dir = try SharedData.temporaryDirectory(for: self)
        for name in ["big.png", "big.jpg"] {
            let url = dir.appendingPathComponent(name)
            try ImageFile.write(RGBImage(width: 100, height: 80), to: url)
            let error = imageError { _ = try ImageFile.read(url, maxPixels: 5000) }
            XCTAssertTrue(error?.reason.hasPrefix("100x80 pixels is over the limit of 5000 pixels") ?? false, error?.description ?? "")
            XCTAssertEqual(try ImageFile.read(url, maxPixels: 8000).width, 100)
        }
    }

    func testHugeDeclaredPNGSizeIsRefused() throws {
        // A tiny file whose IHDR claims 20000x20000: refused from the header alone.
        var png = [UInt8](try PNGCodec.encode(pattern(2, 2)))
        png.replaceSubrange(16..<24, with: [0, 0, 0x4E, 0x20, 0, 0, 0x4E, 0x20])
        let crc = Data(png[12..<29]).withUnsafeBytes { crc32Of($0) }
        png.replaceSubrange(29..<33, with: [UInt8(crc >> 24), UInt8(crc >> 16 & 255), UInt8(crc >> 8 & 255), UInt8(crc & 255)])
        let error = imageError { _ = try ImageFile.decode(Data(png), name: "bomb.png") }
        XCTAssertEqual(error?.description, "bomb.png: 20000x20000 pixels is over the limit of 100 megapixels (a guard against decompression bombs); shrink the image first")
    }

    func testWritingAnUnknownExtensionIsAnError() throws {
        let dir = try SharedData.temporaryDirectory(for: self)
        let error = imageError { try ImageFile.write(pattern(2, 2), to: dir.appendingPathComponent("out.bmp")) }
        XCTAssertEqual(error?.reason, "unknown image extension '.bmp' (use .png, .jpg or .jpeg)")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
    }

    func testAtomicWriteLeavesNoTemporaryFiles() throws {
        let dir = try SharedData.temporaryDirectory(for: self)
        let url = dir.appendingPathComponent("out.png")
        for k in 1...3 { try ImageFile.writePNG(pattern(8 * k, 8), to: url) }
        try AtomicFile.write(Data("hello".utf8), to: dir.appendingPathComponent("note.txt"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), ["note.txt", "out.png"])
        XCTAssertEqual(try ImageFile.read(url).width, 24)
        // A directory that does not exist: an error naming the file, nothing left behind.
        let error = imageError { try ImageFile.writePNG(pattern(2, 2), to: dir.appendingPathComponent("missing/out.png")) }
        XCTAssertTrue(error?.reason.hasPrefix("cannot write") ?? false)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), ["note.txt", "out.png"])
    }
}

func crc32Of(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
    // Bitwise CRC-32 (PNG's polynomial), independent of the library under test.
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        crc ^= UInt32(b)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}
