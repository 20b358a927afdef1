import CJPEG
import CPNG
import Foundation
import Imaging
import TestSupport
import XCTest

/// A smooth, colourful test picture with some texture.
func pattern(_ width: Int, _ height: Int) -> RGBImage {
    var pixels = [Float](repeating: 0, count: width * height * 3)
    for y in 0..<height {
        for x in 0..<width {
            let i = 3 * (y * width + x)
            pixels[i] = Float(x * 255 / max(width - 1, 1))
            pixels[i + 1] = Float(y * 255 / max(height - 1, 1))
            pixels[i + 2] = Float((x * 7 + y * 13) % 256)
        }
    }
    return RGBImage(width: width, height: height, pixels: pixels)
}

final class CodecTests: XCTestCase {
    func testPNGRoundTripIsExact() throws {
        let dir = try SharedData.temporaryDirectory(for: self)
        let image = pattern(37, 23)
        let url = dir.appendingPathComponent("a.png")
        try ImageFile.writePNG(image, to: url)
        XCTAssertEqual(try ImageFile.read(url), image)
    }

    func testPNGWriteRoundsAndClampsValues() throws {
        let dir = try SharedData.temporaryDirectory(for: self)
        let image = RGBImage(width: 2, height: 1, pixels: [-5, 300, 10.4, 10.6, .nan, 254.5])
        let url = dir.appendingPathComponent("clamp.png")
        try ImageFile.write(image, to: url)
        XCTAssertEqual(try ImageFile.read(url).pixels, [0, 255, 10, 11, 0, 255])
    }

    func testJPEGRoundTripIsCloseToOriginal() throws {
        let dir = try SharedData.temporaryDirectory(for: self)
        // Smooth content: JPEG is lossy on sharp edges by design.
        var image = RGBImage(width: 64, height: 48)
        for y in 0..<48 { for x in 0..<64 { image[x, y] = (Float(x * 4), Float(y * 5), Float(100 + x + y)) } }
        let url = dir.appendingPathComponent("a.JPG")
        try ImageFile.write(image, to: url)
        let back = try ImageFile.read(url)
        XCTAssertEqual(back.width, 64); XCTAssertEqual(back.height, 48)
        let meanDiff = zip(back.pixels, image.pixels).map { abs($0 - $1) }.reduce(0, +) / Float(image.pixels.count)
        XCTAssertLessThan(meanDiff, 2)
    }

    func testProgressiveJPEGDecodesLikeBaseline() throws {
        let image = pattern(40, 30)
        let baseline = try ImageFile.decode(JPEGCodec.encode(image, quality: 95), name: "b.jpg")
        let progressive = try ImageFile.decode(JPEGCodec.encode(image, quality: 95, progressive: true), name: "p.jpg")
        let maxDiff = zip(baseline.pixels, progressive.pixels).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(maxDiff, 2)
    }

    func testGreyscaleJPEGDecodesToEqualChannels() throws {
        let grey = (0..<(16 * 8)).map { UInt8($0 * 2) }
        let jpeg = try JPEGCodec.encodeForTesting(grey, width: 16, height: 8, pixelFormat: Int32(TJPF_GRAY.rawValue),
                                                  subsampling: Int32(TJSAMP_GRAY.rawValue))
        let image = try ImageFile.decode(jpeg, name: "g.jpg")
        for i in 0..<(16 * 8) {
            XCTAssertEqual(image.pixels[3 * i], image.pixels[3 * i + 1])
            XCTAssertEqual(image.pixels[3 * i], image.pixels[3 * i + 2])
            XCTAssertEqual(image.pixels[3 * i], Float(grey[i]), accuracy: 3)
        }
    }

    func testCMYKJPEGIsConvertedToRGB() throws {
        // libjpeg writes an Adobe marker for CMYK, so the samples are read back as Adobe-inverted CMYK (255 = no ink).
        let colors: [[UInt8]] = [[200, 30, 90], [10, 240, 120]]
        var cmyk: [UInt8] = []
        for y in 0..<16 { for _ in 0..<16 { let c = colors[y / 8]; cmyk += [c[0], c[1], c[2], 255] } }
        let jpeg = try JPEGCodec.encodeForTesting(cmyk, width: 16, height: 16, pixelFormat: Int32(TJPF_CMYK.rawValue),
                                                  subsampling: Int32(TJSAMP_444.rawValue), quality: 100)
        let image = try ImageFile.decode(jpeg, name: "cmyk.jpg")
        let top = image[4, 2], bottom = image[4, 13]
        XCTAssertEqual(top.r, 200, accuracy: 4); XCTAssertEqual(top.g, 30, accuracy: 4); XCTAssertEqual(top.b, 90, accuracy: 4)
        XCTAssertEqual(bottom.r, 10, accuracy: 4); XCTAssertEqual(bottom.g, 240, accuracy: 4); XCTAssertEqual(bottom.b, 120, accuracy: 4)
    }

    func testEXIFOrientationSixIsRotatedClockwise() throws {
        // Left half red, right half blue, 32x16: after a clockwise quarter turn the top is red and the bottom blue.
        var image = RGBImage(width: 32, height: 16, fill: (0, 0, 255))
        image.fill(x: 0, y: 0, width: 16, height: 16, color: (255, 0, 0))
        let jpeg = [UInt8](try JPEGCodec.encode(image, quality: 95))
        // APP1 "Exif\0\0" + big-endian TIFF with one IFD0 entry: orientation (0x0112), SHORT, count 1, value 6.
        let tiff: [UInt8] = [0x4D, 0x4D, 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0]
        let payload = Array("Exif".utf8) + [0, 0] + tiff
        let length = payload.count + 2
        let app1: [UInt8] = [0xFF, 0xE1, UInt8(length >> 8), UInt8(length & 0xff)] + payload
        let rotated = try ImageFile.decode(Data(Array(jpeg[0..<2]) + app1 + Array(jpeg[2...])), name: "exif.jpg")
        XCTAssertEqual(rotated.width, 16); XCTAssertEqual(rotated.height, 32)
        XCTAssertGreaterThan(rotated[8, 4].r, 200); XCTAssertLessThan(rotated[8, 4].b, 60)
        XCTAssertGreaterThan(rotated[8, 28].b, 200); XCTAssertLessThan(rotated[8, 28].r, 60)
    }

    func testGreyscalePNGDecodesToEqualChannels() throws {
        let samples = (0..<12).map { $0 * 20 }
        let png = try PNGCodec.encodeForTesting(samples: samples, width: 4, height: 3, format: PNGFormat.gray)
        let image = try ImageFile.decode(png, name: "g.png")
        XCTAssertEqual(image.pixels, samples.flatMap { [Float($0), Float($0), Float($0)] })
    }

    func testRGBAPNGIsCompositedOverWhite() throws {
        // opaque red, transparent green, half-transparent black
        let samples = [255, 0, 0, 255, 0, 255, 0, 0, 0, 0, 0, 128]
        let png = try PNGCodec.encodeForTesting(samples: samples, width: 3, height: 1, format: PNGFormat.rgba)
        let image = try ImageFile.decode(png, name: "rgba.png")
        XCTAssertEqual(Array(image.pixels[0..<6]), [255, 0, 0, 255, 255, 255])
        for v in image.pixels[6..<9] { XCTAssertEqual(v, 127, accuracy: 1) }
    }

    func testGreyAlphaPNGIsCompositedOverWhite() throws {
        let png = try PNGCodec.encodeForTesting(samples: [0, 255, 0, 0], width: 2, height: 1, format: PNGFormat.grayAlpha)
        XCTAssertEqual(try ImageFile.decode(png, name: "ga.png").pixels, [0, 0, 0, 255, 255, 255])
    }

    func testSixteenBitPNGIsConvertedToEightBitSRGB() throws {
        // Linear 16-bit: 0 -> 0, 65535 -> 255, linear 0.2140 is sRGB 0.5 -> about 128.
        let samples = [0, 65535, 14025, 65535, 65535, 65535]
        let png = try PNGCodec.encodeForTesting(samples: samples, width: 2, height: 1, format: PNGFormat.linearRGB)
        let image = try ImageFile.decode(png, name: "16.png")
        XCTAssertEqual(image.pixels[0], 0)
        XCTAssertEqual(image.pixels[1], 255)
        XCTAssertEqual(image.pixels[2], 128, accuracy: 2)
        XCTAssertEqual(Array(image.pixels[3...]), [255, 255, 255])
    }

    func testPalettePNGIsExpanded() throws {
        let png = makePalettePNG(width: 3, height: 2, palette: [(10, 20, 30), (200, 100, 50)], indices: [0, 1, 0, 1, 1, 0])
        let image = try ImageFile.decode(png, name: "palette.png")
        XCTAssertEqual(Array(image.pixels[0..<6]), [10, 20, 30, 200, 100, 50])
        XCTAssertEqual(Array(image.pixels[15..<18]), [10, 20, 30])
    }

    func testTextChunksSurviveAndUnicodeUsesITXt() throws {
        let dir = try SharedData.temporaryDirectory(for: self)
        let url = dir.appendingPathComponent("meta.png")
        let text = [(key: "dream:seed", value: "42"), (key: "dream:command", value: "dream run --layer inception_4c café"),
                    (key: "Comment", value: "träume 夢")]
        try ImageFile.writePNG(pattern(8, 8), to: url, text: text)
        let read = try ImageFile.readPNGText(url)
        XCTAssertEqual(read["dream:seed"], "42")
        XCTAssertEqual(read["dream:command"], "dream run --layer inception_4c café")
        XCTAssertEqual(read["Comment"], "träume 夢")
        XCTAssertEqual(try ImageFile.read(url), pattern(8, 8))   // the image itself is untouched by the extra chunks
    }
}

/// A hand-built 8-bit palette PNG (IHDR, PLTE, IDAT, IEND), since the simplified writer needs a colour map to do it.
func makePalettePNG(width: Int, height: Int, palette: [(UInt8, UInt8, UInt8)], indices: [UInt8]) -> Data {
    func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let n = UInt32(data.count)
        let body = Array(type.utf8) + data
        let crc = body.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
        return [UInt8(n >> 24), UInt8(n >> 16 & 255), UInt8(n >> 8 & 255), UInt8(n & 255)] + body
            + [UInt8(crc >> 24), UInt8(crc >> 16 & 255), UInt8(crc >> 8 & 255), UInt8(crc & 255)]
    }
    let w = UInt32(width), h = UInt32(height)
    let ihdr: [UInt8] = [UInt8(w >> 24), UInt8(w >> 16 & 255), UInt8(w >> 8 & 255), UInt8(w & 255),
                         UInt8(h >> 24), UInt8(h >> 16 & 255), UInt8(h >> 8 & 255), UInt8(h & 255), 8, 3, 0, 0, 0]
    var raw: [UInt8] = []
    for y in 0..<height { raw.append(0); raw += indices[(y * width)..<((y + 1) * width)] }
    var compressedSize = compressBound(uLong(raw.count))
    var compressed = [UInt8](repeating: 0, count: Int(compressedSize))
    _ = compress2(&compressed, &compressedSize, raw, uLong(raw.count), 9)
    let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", ihdr)
        + chunk("PLTE", palette.flatMap { [$0.0, $0.1, $0.2] }) + chunk("IDAT", Array(compressed[0..<Int(compressedSize)]))
        + chunk("IEND", [])
    return Data(png)
}
