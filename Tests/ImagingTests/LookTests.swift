import Foundation
import Imaging
import TestSupport
import XCTest

/// Writes sample pictures for a human to look at when IMAGING_LOOK_DIR is set (e.g. /tmp/imaging-look).
final class LookTests: XCTestCase {
    func testWriteSamplePicturesForVisualInspection() throws {
        guard let dir = ProcessInfo.processInfo.environment["IMAGING_LOOK_DIR"] else {
            throw XCTSkip("set IMAGING_LOOK_DIR to write sample pictures")
        }
        let out = URL(fileURLWithPath: dir)
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        var tiles: [RGBImage] = []
        var labels: [String] = []
        for k in 0..<10 {
            var values = [Float](repeating: 0, count: 48 * 48)
            for y in 0..<48 { for x in 0..<48 {
                values[y * 48 + x] = sin(Float(x) * 0.1 * Float(k + 1)) * cos(Float(y) * 0.13 * Float(k + 1))
            } }
            let map: ColorMap = k % 3 == 0 ? .viridis : (k % 3 == 1 ? .diverging : .gray)
            tiles.append(map.render(values: values, width: 48, height: 48).resized(width: 96, height: 96))
            labels.append(k == 9 ? "inception_4c/output #9" : "ch \(k): 0.5%")
        }
        try ImageFile.writePNG(ImageGrid.compose(tiles, labels: labels), to: out.appendingPathComponent("grid.png"))
        try ImageFile.writePNG(ImageGrid.compose(tiles, columns: 5, separator: 3, labels: labels, background: (30, 30, 30),
                                                 separatorColor: (90, 90, 90)), to: out.appendingPathComponent("grid-dark.png"))
        var plot = LinePlot(title: "Training loss", xLabel: "epoch", yLabel: "loss (cross-entropy)",
                            series: [("train", (0..<30).map { 2.3 * exp(-Double($0) / 8) + 0.1 }),
                                     ("validation", (0..<30).map { 2.4 * exp(-Double($0) / 9) + 0.25 + 0.02 * sin(Double($0)) })])
        plot.xStart = 1
        try ImageFile.writePNG(plot.renderPNG(), to: out.appendingPathComponent("plot.png"))
        try plot.svg().write(to: out.appendingPathComponent("plot.svg"), atomically: true, encoding: .utf8)
        var text = RGBImage(width: 620, height: 60, fill: (255, 255, 255))
        BitmapFont.draw("ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789", on: &text, x: 4, y: 4, scale: 2, color: (0, 0, 0))
        BitmapFont.draw("abcdefghijklmnopqrstuvwxyz -_.:/%()=+!?[]<>*#,;'", on: &text, x: 4, y: 30, scale: 2, color: (0, 0, 0))
        try ImageFile.writePNG(text, to: out.appendingPathComponent("font.png"))
        let shared = try? SharedData.directory()
        if let shared {
            let photo = try ImageFile.read(shared.appendingPathComponent("images/chelsea.png"))
            var heat = [Float](repeating: 0, count: 14 * 14)
            for y in 0..<14 { for x in 0..<14 { heat[y * 14 + x] = -Float((x - 8) * (x - 8) + (y - 5) * (y - 5)) } }
            try ImageFile.writePNG(Overlay.blend(photo: photo, heat: heat, heatWidth: 14, heatHeight: 14, colorMap: .viridis, alpha: 0.5),
                                   to: out.appendingPathComponent("overlay.png"))
        }
    }
}
