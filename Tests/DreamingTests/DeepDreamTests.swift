import Dreaming
import Foundation
import Imaging
import Models
import Network
import Tensors
import TestSupport
import XCTest

final class DeepDreamTests: XCTestCase {
    func googLeNet() throws -> LoadedModel { try LoadedModel(url: try SharedData.file("models/googlenet_bvlc.onnx")) }

    func chelsea() throws -> RGBImage { try ImageFile.read(try SharedData.file("images/chelsea.png")) }

    func testDreamRaisesTheObjectiveKeepsTheSizeAndChangesThePixels() throws {
        var settings = DreamSettings(layers: [DreamLayer(name: "inception_4c_output")])
        settings.octaves = 2
        settings.iterations = 4
        let dream = try DeepDream(model: try googLeNet(), settings: settings)
        let photo = try chelsea()
        let result = try dream.dream(photo)
        XCTAssertEqual([result.width, result.height], [photo.width, photo.height])
        let before = try dream.objectiveAndPixelGradient(photo).value
        let after = try dream.objectiveAndPixelGradient(result).value
        XCTAssertGreaterThan(after, 2 * before, "objective \(before) -> \(after)")
        let changed = zip(photo.pixels, result.pixels).filter { abs($0 - $1) > 8 }.count
        XCTAssertGreaterThan(changed, photo.pixels.count / 10, "the pixels should visibly change")
        XCTAssertTrue(result.pixels.allSatisfy { $0 >= 0 && $0 <= 255 }, "values are clipped to the valid range")
    }

    func testTheSameSeedGivesTheSamePictureAndAnotherSeedAnother() throws {
        var settings = DreamSettings(layers: [DreamLayer(name: "inception_3b_output")])
        settings.octaves = 1
        settings.iterations = 2
        let photo = try chelsea().resized(width: 160, height: 120)
        let model = try googLeNet()
        let a = try DeepDream(model: model, settings: settings).dream(photo)
        let b = try DeepDream(model: model, settings: settings).dream(photo)
        settings.seed = 1
        let c = try DeepDream(model: model, settings: settings).dream(photo)
        XCTAssertEqual(a.pixels, b.pixels)
        XCTAssertNotEqual(a.pixels, c.pixels)
    }

    func testSmallImagesGetFewerOctavesWithANoteInsteadOfACrash() throws {
        var settings = DreamSettings(layers: [DreamLayer(name: "inception_4c_output")])
        settings.iterations = 1
        let dream = try DeepDream(model: try googLeNet(), settings: settings)
        let small = try chelsea().resized(width: 90, height: 60)
        let result = try dream.dream(small)
        XCTAssertEqual([result.width, result.height], [90, 60])
        XCTAssertTrue(dream.notes.contains { $0.contains("octave") }, "\(dream.notes)")
        let tiny = try chelsea().resized(width: 20, height: 14)
        XCTAssertThrowsError(try dream.dream(tiny)) { error in XCTAssertTrue("\(error)".contains("smaller than"), "\(error)") }
    }

    func testTiledDreamOfAnImageLargerThanATileRaisesTheObjective() throws {
        var settings = DreamSettings(layers: [DreamLayer(name: "inception_3b_output")])
        settings.octaves = 1
        settings.iterations = 3
        settings.tileSize = 128
        let dream = try DeepDream(model: try googLeNet(), settings: settings)
        let photo = try chelsea().resized(width: 300, height: 200)
        let result = try dream.dream(photo)
        XCTAssertEqual([result.width, result.height], [300, 200])
        XCTAssertGreaterThan(try dream.objectiveAndPixelGradient(result).value, 1.5 * (try dream.objectiveAndPixelGradient(photo).value))
    }

    func testChannelAndGuideObjectivesRunAndAnOutOfRangeChannelIsAClearError() throws {
        let model = try googLeNet()
        let photo = try chelsea().resized(width: 160, height: 120)
        var settings = DreamSettings(layers: [DreamLayer(name: "inception_4c_output", channel: 97)])
        settings.octaves = 1
        settings.iterations = 2
        let channelDream = try DeepDream(model: model, settings: settings)
        let before = try channelDream.objectiveAndPixelGradient(photo).value
        XCTAssertGreaterThan(try channelDream.objectiveAndPixelGradient(try channelDream.dream(photo)).value, before)

        settings.layers = [DreamLayer(name: "inception_4c_output")]
        let guided = try DeepDream(model: model, settings: settings)
        try guided.setGuide(try ImageFile.read(try SharedData.file("images/coffee.png")))
        let guidedBefore = try guided.objectiveAndPixelGradient(photo).value
        XCTAssertGreaterThan(try guided.objectiveAndPixelGradient(try guided.dream(photo)).value, guidedBefore)

        settings.layers = [DreamLayer(name: "inception_4c_output", channel: 9999)]
        XCTAssertThrowsError(try DeepDream(model: model, settings: settings).dream(photo)) { error in
            XCTAssertTrue("\(error)".contains("channel 9999"), "\(error)")
        }
    }

    /// Tiles bound memory: none is larger than the tile size (a 731-pixel octave with 512-pixel tiles once ran as one
    /// 731-pixel tile, twice the area), they cover the side exactly once and differ by at most one pixel.
    func testTilesNeverExceedTheTileSizeAndCoverTheImage() {
        for (length, tile) in [(731, 512), (1024, 512), (513, 512), (512, 512), (300, 128), (5000, 512), (7, 3)] {
            let spans = DeepDream.spans(length, tile: tile)
            XCTAssertEqual(spans.first?.0, 0)
            XCTAssertEqual(spans.last?.1, length)
            XCTAssertTrue(zip(spans, spans.dropFirst()).allSatisfy { $0.1 == $1.0 }, "\(spans)")
            let sizes = spans.map { $0.1 - $0.0 }
            XCTAssertLessThanOrEqual(sizes.max()!, tile, "\(length)/\(tile): \(sizes)")
            XCTAssertLessThanOrEqual(sizes.max()! - sizes.min()!, 1, "\(length)/\(tile): \(sizes)")
            XCTAssertEqual(spans.count, (length + tile - 1) / tile)
        }
    }

    /// The shifted tiles a step reads and the gradients it writes back, against the definition pixel by pixel: tile
    /// pixel (col, row) is image pixel ((x + col - dx) mod w, (y + row - dy) mod h), for shifts of either sign, beyond
    /// a whole image, and tiles that wrap around the right or bottom edge or not at all.
    func testShiftedTilesReadAndWriteTheWrappedPixels() {
        let w = 13, h = 7
        let image = RGBImage(width: w, height: h, pixels: (0..<(w * h * 3)).map { Float($0) })
        func source(_ i: Int, _ shift: Int, _ length: Int) -> Int { ((i - shift) % length + length) % length }
        for (dx, dy) in [(0, 0), (5, -3), (-12, 6), (13, 7), (-27, 15), (1, 1)] {
            for (x, y, width, height) in [(0, 0, 13, 7), (6, 3, 7, 4), (0, 4, 6, 3), (12, 0, 1, 7), (3, 2, 9, 5)] {
                let tile = DeepDream.shiftedCrop(image, dx: dx, dy: dy, x: x, y: y, width: width, height: height)
                XCTAssertEqual(tile.width, width); XCTAssertEqual(tile.height, height)
                var expected: [Float] = []
                for row in 0..<height {
                    for col in 0..<width {
                        let s = (source(y + row, dy, h) * w + source(x + col, dx, w)) * 3
                        expected += image.pixels[s..<(s + 3)]
                    }
                }
                XCTAssertEqual(tile.pixels, expected, "shift (\(dx), \(dy)), tile (\(x), \(y), \(width), \(height))")
                // Writing the tile back puts every value where it was read from, and nothing elsewhere.
                var gradient = [Float](repeating: -1, count: w * h * 3)
                DeepDream.scatterShifted(tile.pixels, into: &gradient, imageWidth: w, imageHeight: h, dx: dx, dy: dy,
                                         x: x, y: y, width: width, height: height)
                for i in 0..<(w * h * 3) where gradient[i] != -1 { XCTAssertEqual(gradient[i], image.pixels[i]) }
                XCTAssertEqual(gradient.filter { $0 != -1 }.count, width * height * 3,
                               "shift (\(dx), \(dy)), tile (\(x), \(y), \(width), \(height))")
            }
        }
    }

    func testLayerSpecificationsParseNamesAndWeights() throws {
        XCTAssertEqual(try DreamLayer(parsing: "inception_4c_output:0.5"), DreamLayer(name: "inception_4c_output", weight: 0.5))
        XCTAssertEqual(try DreamLayer(parsing: "conv2/3x3"), DreamLayer(name: "conv2/3x3"))
    }
}
