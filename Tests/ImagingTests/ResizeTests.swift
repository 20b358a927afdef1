import Imaging
import XCTest

final class ResizeTests: XCTestCase {
    func testResizeOfConstantImageStaysConstant() {
        let image = RGBImage(width: 37, height: 23, fill: (12, 200, 99))
        for filter in [ResizeFilter.area, .bilinear, .bicubic, nil] {
            for (w, h) in [(10, 7), (80, 50), (37, 9), (100, 23)] {
                let out = image.resized(width: w, height: h, filter: filter)
                XCTAssertEqual(out.width, w); XCTAssertEqual(out.height, h)
                for i in 0..<(w * h) {
                    XCTAssertEqual(out.pixels[3 * i], 12, accuracy: 1e-3)
                    XCTAssertEqual(out.pixels[3 * i + 1], 200, accuracy: 1e-3)
                    XCTAssertEqual(out.pixels[3 * i + 2], 99, accuracy: 1e-3)
                }
            }
        }
    }

    func testAreaResizeByTwoEqualsTwoByTwoAverages() {
        let image = pattern(8, 6)
        let out = image.resized(width: 4, height: 3, filter: .area)
        for y in 0..<3 {
            for x in 0..<4 {
                for c in 0..<3 {
                    var sum: Float = 0
                    for dy in 0..<2 { for dx in 0..<2 { sum += image.pixels[3 * ((2 * y + dy) * 8 + 2 * x + dx) + c] } }
                    XCTAssertEqual(out.pixels[3 * (y * 4 + x) + c], sum / 4, accuracy: 1e-3)
                }
            }
        }
    }

    func testAreaResizeWeighsFractionalCoverage() {
        // 3 -> 2 pixels: each output covers 1.5 inputs.
        let image = RGBImage(width: 3, height: 1, pixels: [0, 0, 0, 30, 30, 30, 90, 90, 90])
        let out = image.resized(width: 2, height: 1, filter: .area)
        XCTAssertEqual(out.pixels[0], (0 + 0.5 * 30) / 1.5, accuracy: 1e-4)
        XCTAssertEqual(out.pixels[3], (0.5 * 30 + 90) / 1.5, accuracy: 1e-4)
    }

    func testBilinearUpscaleUsesHalfPixelCentres() {
        let image = RGBImage(width: 2, height: 1, pixels: [0, 0, 0, 100, 100, 100])
        let out = image.resized(width: 4, height: 1, filter: .bilinear)
        XCTAssertEqual(stride(from: 0, to: 12, by: 3).map { out.pixels[$0] }, [0, 25, 75, 100])
        XCTAssertEqual(image.resized(width: 4, height: 1).pixels, out.pixels)   // default when growing
    }

    func testBicubicUpscaleOvershootsAtEdgesLikeKeys() {
        let image = RGBImage(width: 4, height: 1, pixels: [0, 0, 0, 0, 0, 0, 100, 100, 100, 100, 100, 100])
        let out = image.resized(width: 8, height: 1, filter: .bicubic)
        let r = stride(from: 0, to: 24, by: 3).map { out.pixels[$0] }
        XCTAssertLessThan(r[2], 0)          // a = -0.5 rings slightly below 0 before the step
        XCTAssertGreaterThan(r[5], 100)     // and above 100 after it
        XCTAssertEqual(r[3] + r[4], 100, accuracy: 1e-3)   // symmetric around the step
    }

    func testBilinearDownscaleIsAntialiasedLikePIL() {
        // Alternating columns 0/100 halved: PIL's stretched triangle averages neighbours instead of sampling one.
        var image = RGBImage(width: 8, height: 1)
        for x in stride(from: 1, to: 8, by: 2) { image[x, 0] = (100, 100, 100) }
        let out = image.resized(width: 4, height: 1, filter: .bilinear)
        for x in 1..<3 { XCTAssertEqual(out[x, 0].r, 50, accuracy: 1e-3) }
    }

    func testShorterSideResizeAndCrops() {
        let image = pattern(451, 300)
        let r = image.resizedShorterSide(to: 256)
        XCTAssertEqual(r.width, 385); XCTAssertEqual(r.height, 256)
        let portrait = pattern(300, 773).resizedShorterSide(to: 256)
        XCTAssertEqual(portrait.width, 256); XCTAssertEqual(portrait.height, 660)   // 659.6 -> 660
        let crop = image.cropped(x: 5, y: 7, width: 3, height: 2)
        XCTAssertEqual(crop.width, 3); XCTAssertEqual(crop.height, 2)
        XCTAssertTrue(crop[0, 0] == image[5, 7] && crop[2, 1] == image[7, 8])
        let center = pattern(10, 7).centerCropped(width: 4, height: 4)
        XCTAssertTrue(center[0, 0] == pattern(10, 7)[3, 1])
    }

    func testEXIFOrientationsMapCornersAndInvert() {
        let image = pattern(5, 3)
        let cw = image.applyingEXIFOrientation(6)
        XCTAssertEqual(cw.width, 3); XCTAssertEqual(cw.height, 5)
        XCTAssertTrue(cw[0, 0] == image[0, 2] && cw[2, 0] == image[0, 0] && cw[2, 4] == image[4, 0])
        XCTAssertEqual(cw.applyingEXIFOrientation(8), image)
        XCTAssertEqual(image.applyingEXIFOrientation(3).applyingEXIFOrientation(3), image)
        XCTAssertEqual(image.applyingEXIFOrientation(5).applyingEXIFOrientation(5), image)
        XCTAssertEqual(image.applyingEXIFOrientation(7).applyingEXIFOrientation(7), image)
        XCTAssertTrue(image.flippedHorizontally()[0, 1] == image[4, 1])
    }
}
