import Imaging
import Inspection
import Tensors
import XCTest

/// Feature-map pictures without a model: colours, normalisation, upscaling, grid geometry, channel choice, names.
final class FeatureRenderingTests: XCTestCase {
    func acts(_ channels: [[Float]], width: Int, height: Int) throws -> LayerActivations {
        try LayerActivations(layer: "test", tensor: Tensor(shape: [1, channels.count, height, width], scalars: channels.flatMap { $0 }))
    }

    func assertColor(_ c: (r: Float, g: Float, b: Float), _ hex: UInt32, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(c.r, Float(hex >> 16), accuracy: 0.5, message, file: file, line: line)
        XCTAssertEqual(c.g, Float(hex >> 8 & 0xff), accuracy: 0.5, message, file: file, line: line)
        XCTAssertEqual(c.b, Float(hex & 0xff), accuracy: 0.5, message, file: file, line: line)
    }

    func testNonNegativeMapsUseViridisFromZeroToTheChannelMaximum() throws {
        let a = try acts([[0, 1, 2, 4]], width: 2, height: 2)
        XCTAssertFalse(a.isSigned)
        let image = FeatureRendering.renderChannel(a, channel: 0, normalization: .channel)
        assertColor(image[0, 0], 0x440154, "0 is viridis' dark purple end")
        assertColor(image[1, 1], 0xFDE725, "the maximum is viridis' yellow end")
    }

    func testSignedMapsUseTheDivergingMapWithZeroInTheMiddle() throws {
        let a = try acts([[-2, 0, 1, 2]], width: 2, height: 2)
        XCTAssertTrue(a.isSigned)
        let image = FeatureRendering.renderChannel(a, channel: 0, normalization: .channel)
        assertColor(image[0, 0], 0x053061, "-max is the blue end")
        let white = image[1, 0]
        XCTAssertTrue([white.r, white.g, white.b].allSatisfy { $0 >= 253 }, "0 is white (up to the 256-step colour table): \(white)")
        assertColor(image[1, 1], 0x67001F, "+max is the red end")
    }

    func testLayerNormalisationSharesOneScaleAcrossChannels() throws {
        let a = try acts([[0, 1, 0, 1], [0, 4, 0, 4]], width: 2, height: 2)
        let perChannel = FeatureRendering.renderChannel(a, channel: 0, normalization: .channel)
        let perLayer = FeatureRendering.renderChannel(a, channel: 0, normalization: .layer)
        assertColor(perChannel[1, 0], 0xFDE725, "per channel: 1 is channel 0's maximum")
        XCTAssertEqual(FeatureRendering.range(of: a, channel: 0, normalization: .layer), 0...4)
        XCTAssertLessThan(perLayer[1, 0].r, 100, "per layer: 1 of 4 is a quarter up viridis (blue), not yellow")
    }

    func testConstantMapNormalisesToAFlatMapWithoutNaN() throws {
        let flat = FeatureRendering.normalized([3, 3, 3, 3], range: 3...3)
        XCTAssertEqual(flat, [0.5, 0.5, 0.5, 0.5], "no division by zero: the middle of the scale")
        let grey = ColorMap.gray.render(values: flat, width: 2, height: 2, range: 0...1)
        XCTAssertTrue(grey.pixels.allSatisfy { abs($0 - 127.5) <= 1 }, "a flat grey map")
        for (values, name) in [([Float](repeating: 5, count: 9), "constant 5"), ([Float](repeating: 0, count: 9), "dead channel"),
                               ([Float](repeating: -1, count: 9), "constant negative")] {
            let a = try acts([values], width: 3, height: 3)
            for normalization in FeatureNormalization.allCases {
                let image = FeatureRendering.channelImage(a, channel: 0, normalization: normalization)
                XCTAssertTrue(image.pixels.allSatisfy { $0.isFinite }, "\(name): no NaN")
                let first = image[0, 0]
                XCTAssertTrue((0..<image.height).allSatisfy { y in (0..<image.width).allSatisfy { image[$0, y] == first } }, "\(name): flat")
            }
        }
        let dead = FeatureRendering.renderChannel(try acts([[0, 0, 0, 0]], width: 2, height: 2), channel: 0, normalization: .channel)
        assertColor(dead[0, 0], 0x440154, "a channel that never fires is the darkest colour")
    }

    func testNearestNeighbourUpscaleRepeatsEachPixel() {
        let image = RGBImage(width: 2, height: 1, pixels: [10, 20, 30, 40, 50, 60])
        let big = FeatureRendering.upscaleNearest(image, factor: 3)
        XCTAssertEqual(big.width, 6)
        XCTAssertEqual(big.height, 3)
        for y in 0..<3 {
            for x in 0..<6 { XCTAssertTrue(big[x, y] == (x < 3 ? (10, 20, 30) : (40, 50, 60)), "(\(x), \(y))") }
        }
        XCTAssertEqual(FeatureRendering.upscaleFactor(side: 28, target: 160), 6)
        XCTAssertEqual(FeatureRendering.upscaleFactor(side: 7, target: 160), 23)
        XCTAssertEqual(FeatureRendering.upscaleFactor(side: 500, target: 160), 1)
    }

    func testGridOf480ChannelsIs22By22TilesWithSeparatorsAndLabels() throws {
        // 480 maps of 28x28 (GoogLeNet inception_3b_output at 224): tiles of 56 (x2), ceil(sqrt(480)) = 22 columns,
        // ceil(480 / 22) = 22 rows; 2-pixel separators between and around tiles; an 11-pixel label band per row.
        let g = ImageGrid.layout(tileCount: 480, tileWidth: 56, tileHeight: 56, columns: nil, separator: 2,
                                 labelHeight: ImageGrid.labelHeight(tileWidth: 56, hasLabels: true))
        XCTAssertEqual(g.columns, 22)
        XCTAssertEqual(g.rows, 22)
        XCTAssertEqual(g.width, 22 * 56 + 23 * 2)
        XCTAssertEqual(g.height, 22 * (56 + 11) + 23 * 2)
        XCTAssertTrue(FeatureRendering.gridTileSize(width: 28, height: 28) == (56, 56))
        XCTAssertTrue(FeatureRendering.gridTileSize(width: 640, height: 320) == (160, 80), "large maps shrink to fit a tile")

        var rng = SplitMix64(seed: 3)
        let values = (0..<(480 * 28 * 28)).map { _ in Float(rng.next() % 100) }
        let a = try LayerActivations(layer: "mixed", tensor: Tensor(shape: [1, 480, 28, 28], scalars: values))
        let grid = FeatureRendering.grid(a, channels: Array(0..<480), normalization: .channel)
        XCTAssertEqual(grid.width, g.width)
        XCTAssertEqual(grid.height, g.height)
        let top = FeatureRendering.grid(a, channels: a.selectChannels(top: 16, sortByMean: true), normalization: .channel)
        XCTAssertEqual(top.width, 4 * 56 + 5 * 2, "16 channels: 4x4")
    }

    func testTopKPicksTheChannelsWithTheLargestMeans() throws {
        let means: [Float] = [0.5, 3, 0, 7, 2, 7, 1]
        let a = try acts(means.map { m in [m - 1, m + 1] }, width: 2, height: 1)
        XCTAssertEqual(a.means, means)
        XCTAssertEqual(a.topChannels(3), [3, 5, 1], "highest means first; ties in channel order")
        XCTAssertEqual(a.selectChannels(top: 3, sortByMean: false), [1, 3, 5], "unsorted: channel order")
        XCTAssertEqual(a.selectChannels(top: 3, sortByMean: true), [3, 5, 1])
        XCTAssertEqual(a.selectChannels(top: nil, sortByMean: true), [3, 5, 1, 4, 6, 0, 2])
        XCTAssertEqual(a.selectChannels(top: 100, sortByMean: false), Array(0..<7))
        let average = means.reduce(0, +) / 7
        for (got, expected) in zip(a.meanMap(), [average - 1, average + 1]) { XCTAssertEqual(got, expected, accuracy: 1e-5) }
    }

    func testLayerFolderNamesAreFileSystemSafeAndDistinct() {
        XCTAssertEqual(FeatureLayers.safeName("inception_3b_output"), "inception_3b_output")
        XCTAssertEqual(FeatureLayers.safeName("inception_3b/output:0"), "inception_3b_output_0")
        XCTAssertEqual(FeatureLayers.safeName(".."), "_..")
        XCTAssertEqual(FeatureLayers.safeName("a b\\c"), "a_b_c")
        let names = FeatureLayers.safeNames(["a/b", "a_b", "a:b"])
        XCTAssertEqual(Set(names.values).count, 3)
        XCTAssertEqual(names["a/b"], "a_b")
    }
}
