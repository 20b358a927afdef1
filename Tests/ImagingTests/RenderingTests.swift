import Foundation
import Imaging
import XCTest

final class RenderingTests: XCTestCase {
    func testViridisEndpointsAndDivergingCentre() {
        let v0 = ColorMap.viridis.color(at: 0), v1 = ColorMap.viridis.color(at: 1)
        XCTAssertEqual(v0.r, 68, accuracy: 1); XCTAssertEqual(v0.g, 1, accuracy: 1); XCTAssertEqual(v0.b, 84, accuracy: 1)
        XCTAssertEqual(v1.r, 253, accuracy: 1); XCTAssertEqual(v1.g, 231, accuracy: 1); XCTAssertEqual(v1.b, 37, accuracy: 1)
        let mid = ColorMap.viridis.color(at: 0.5)   // matplotlib: (33, 145, 140)
        XCTAssertEqual(mid.r, 33, accuracy: 3); XCTAssertEqual(mid.g, 145, accuracy: 3); XCTAssertEqual(mid.b, 140, accuracy: 3)
        let white = ColorMap.diverging.color(at: 0.5)
        XCTAssertTrue(white == (255, 255, 255))
        let cold = ColorMap.diverging.color(at: 0), hot = ColorMap.diverging.color(at: 1)
        XCTAssertGreaterThan(cold.b, cold.r); XCTAssertGreaterThan(hot.r, hot.b)
        XCTAssertTrue(ColorMap.gray.color(at: 2) == (255, 255, 255))   // clamped
        XCTAssertTrue(ColorMap.gray.color(at: -1) == (0, 0, 0))
    }

    func testFlatAndNaNMapsGiveNoNaN() {
        let flat = ColorMap.viridis.render(values: [3, 3, 3, 3], width: 2, height: 2, range: 3...3)
        XCTAssertFalse(flat.pixels.contains { $0.isNaN })
        XCTAssertEqual(Set(flat.pixels).count, 3)   // one colour
        let withNaN = ColorMap.diverging.render(values: [.nan, 1, -1, .infinity], width: 2, height: 2)
        XCTAssertFalse(withNaN.pixels.contains { $0.isNaN })
        let ramp = ColorMap.gray.render(values: [0, 5, 10, 20], width: 4, height: 1, range: 0...10)
        XCTAssertEqual(stride(from: 0, to: 12, by: 3).map { ramp.pixels[$0] }, [0, 128, 255, 255])
    }

    func testGridLayoutArithmetic() {
        let g = ImageGrid.layout(tileCount: 10, tileWidth: 32, tileHeight: 24, columns: nil, separator: 2, labelHeight: 0)
        XCTAssertEqual(g.columns, 4); XCTAssertEqual(g.rows, 3)
        XCTAssertEqual(g.width, 4 * 32 + 5 * 2); XCTAssertEqual(g.height, 3 * 24 + 4 * 2)
        let labelled = ImageGrid.layout(tileCount: 7, tileWidth: 10, tileHeight: 10, columns: 7, separator: 1, labelHeight: 11)
        XCTAssertTrue(labelled == (7, 1, 78, 23))
        XCTAssertTrue(ImageGrid.layout(tileCount: 3, tileWidth: 5, tileHeight: 5, columns: 10, separator: 0, labelHeight: 0) == (3, 1, 15, 5))
        XCTAssertEqual(ImageGrid.layout(tileCount: 16, tileWidth: 1, tileHeight: 1, columns: nil, separator: 0, labelHeight: 0).columns, 4)
    }

    func testGridPlacesTilesAndLabels() {
        let tiles = (0..<5).map { RGBImage(width: 20, height: 10, fill: (Float($0 * 40), 0, 0)) }
        let grid = ImageGrid.compose(tiles, columns: 3, separator: 2, labels: ["a", "b", "c", "d", "e"])
        let band = ImageGrid.labelHeight(tileWidth: 20, hasLabels: true)
        let g = ImageGrid.layout(tileCount: 5, tileWidth: 20, tileHeight: 10, columns: 3, separator: 2, labelHeight: band)
        XCTAssertEqual(grid.width, g.width); XCTAssertEqual(grid.height, g.height)
        XCTAssertTrue(grid[0, 0] == (255, 255, 255))                       // border
        XCTAssertTrue(grid[2 + 22 * 2, 2] == (80, 0, 0))                   // tile 2, top-left
        XCTAssertTrue(grid[2 + 22 + 19, 2 + 10 + band + 2 + 9] == (160, 0, 0))   // tile 4, bottom-right
        // Some ink in the label band under the first tile.
        var dark = 0
        for y in 12..<(12 + band) { for x in 2..<22 where grid[x, y].r == 0 { dark += 1 } }
        XCTAssertGreaterThan(dark, 3)
        XCTAssertEqual(ImageGrid.compose([]).width, 1)
    }

    func testBitmapFontWidthsAndClipping() {
        XCTAssertEqual(BitmapFont.textWidth("", scale: 3), 0)
        XCTAssertEqual(BitmapFont.textWidth("ab", scale: 1), 11)
        XCTAssertEqual(BitmapFont.textWidth("abc", scale: 2), 34)
        var image = RGBImage(width: 30, height: 12, fill: (255, 255, 255))
        BitmapFont.draw("Hi 42%", on: &image, x: -3, y: 2, scale: 1, color: (0, 0, 0))
        BitmapFont.draw("clipped", on: &image, x: 25, y: 8, scale: 3, color: (0, 0, 0))   // mostly outside: must not crash
        XCTAssertTrue(image.pixels.contains(0))
        XCTAssertEqual(BitmapFont.fitting("inception_4c", width: 35, scale: 1), "incept")   // 6 * 6 - 1 = 35
    }

    func testLinePlotDrawsSeriesAndWritesSVG() {
        let plot = LinePlot(title: "loss", xLabel: "epoch", yLabel: "value", series: [
            ("train <1>", [2.0, 1.5, .nan, 0.7, 0.5]), ("val", [2.1, 1.8, 1.2, 1.0, 0.9]),
        ])
        let image = plot.renderPNG(width: 320, height: 200)
        XCTAssertEqual(image.width, 320); XCTAssertEqual(image.height, 200)
        let blue = (0..<(320 * 200)).filter { i in image.pixels[3 * i + 2] > 150 && image.pixels[3 * i] < 80 }.count
        XCTAssertGreaterThan(blue, 40)   // the first series is drawn in tab10 blue
        let svg = plot.svg()
        XCTAssertTrue(svg.hasPrefix("<svg"))
        XCTAssertTrue(svg.contains("train &lt;1&gt;"))
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 3)   // NaN splits the first series in two
        // Degenerate inputs render without trapping.
        _ = LinePlot(title: "", xLabel: "", yLabel: "", series: []).renderPNG(width: 100, height: 80)
        _ = LinePlot(title: "one", xLabel: "", yLabel: "", series: [("x", [3])]).renderPNG(width: 100, height: 80)
        _ = LinePlot(title: "flat", xLabel: "x", yLabel: "y", series: [("x", [0, 0, 0])]).svg()
    }

    func testOverlayBlendsHeatOverPhoto() {
        let photo = RGBImage(width: 8, height: 8, fill: (100, 100, 100))
        let heat: [Float] = [0, 1, 2, 3]
        XCTAssertEqual(Overlay.blend(photo: photo, heat: heat, heatWidth: 2, heatHeight: 2, colorMap: .gray, alpha: 0), photo)
        let full = Overlay.blend(photo: photo, heat: heat, heatWidth: 2, heatHeight: 2, colorMap: .gray, alpha: 1)
        XCTAssertEqual(full[0, 0].r, 0, accuracy: 1)
        XCTAssertEqual(full[7, 7].r, 255, accuracy: 1)
    }
}
