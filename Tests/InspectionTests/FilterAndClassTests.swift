import Foundation
import Imaging
import Inspection
import Models
import Network
import Tensors
import TestSupport
import XCTest

final class FilterAndClassTests: XCTestCase {
    func googLeNet() throws -> LoadedModel { try LoadedModel(url: try SharedData.file("models/googlenet_bvlc.onnx")) }

    func testFirstLayerKernelsAreRGBPicturesScaledAroundGrey() throws {
        let model = try googLeNet()
        let filters = try ConvolutionFilters(model: model, layer: "conv1_7x7_s2")
        XCTAssertEqual(filters.node.opType, "Conv")
        XCTAssertEqual(filters.weight.shape, [64, 3, 7, 7])
        XCTAssertTrue(filters.isFirstLayer)
        let o = 5
        let tile = filters.colorKernel(o, pixel: 2, networkIsBGR: true)
        XCTAssertEqual([tile.width, tile.height], [14, 14])
        let w = filters.weight
        let top = (0..<(3 * 49)).map { abs(w.scalars[o * 147 + $0]) }.max()!
        // Pixel (1, 1) is weight (0, 0); red shows network channel 2 (BGR input), blue channel 0.
        XCTAssertEqual(tile[1, 1].r, 127.5 + 127.5 * w[o, 2, 0, 0] / top, accuracy: 1e-3)
        XCTAssertEqual(tile[1, 1].b, 127.5 + 127.5 * w[o, 0, 0, 0] / top, accuracy: 1e-3)
        XCTAssertTrue(tile.pixels.allSatisfy { $0 >= 0 && $0 <= 255 })
        XCTAssertTrue(tile.pixels.contains { $0 < 0.01 || $0 > 254.99 }, "the largest weight reaches an end of the scale")
    }

    func testDeeperLayersShowOneDivergingTilePerInputChannel() throws {
        let filters = try ConvolutionFilters(model: try googLeNet(), layer: "conv2_3x3")
        XCTAssertEqual(filters.weight.shape, [192, 64, 3, 3])
        let image = filters.channelKernels(0, pixel: 4, columns: 8)
        XCTAssertEqual([image.width, image.height], [8 * 13 - 1, 8 * 13 - 1])
        XCTAssertThrowsError(try ConvolutionFilters(model: try googLeNet(), layer: "pool5_7x7_s1"))
    }

    func testClassesAreFoundByIndexOrLabel() throws {
        let model = try googLeNet()
        XCTAssertEqual(try model.classIndex(for: "281"), 281)
        XCTAssertEqual(try model.classIndex(for: "tabby cat"), 281)
        XCTAssertEqual(try model.classIndex(for: "Tabby"), 281)
        XCTAssertEqual(try model.classIndex(for: "flamingo"), 130)
        XCTAssertThrowsError(try model.classIndex(for: "1000"))
        XCTAssertThrowsError(try model.classIndex(for: "no such animal"))
    }
}
