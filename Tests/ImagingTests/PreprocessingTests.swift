import Foundation
import Imaging
import TestSupport
import XCTest

final class PreprocessingTests: XCTestCase {
    func testGoogLeNetPreprocessingOfChelseaMatchesGoldenInput() throws {
        let shared = try SharedData.directory()
        let golden = try Float32NumPy.read(shared.appendingPathComponent("golden/googlenet_bvlc/chelsea.input.npy"))
        XCTAssertEqual(golden.shape, [1, 3, 224, 224])
        let photo = try ImageFile.read(shared.appendingPathComponent("images/chelsea.png"))
        let pre = Preprocessing(channelOrder: .bgr, pixelRange: [0, 255], mean: [104, 117, 123], std: [1, 1, 1],
                                resizeShorter: 256, crop: [224, 224])
        let prepared = try pre.prepareForClassification(photo)
        XCTAssertEqual(prepared.width, 224)
        XCTAssertEqual(prepared.height, 224)
        let x = pre.planarTensorData(from: prepared)
        var maxDiff: Float = 0, sumDiff: Float = 0
        for i in 0..<x.count {
            let d = abs(x[i] - golden.values[i])
            maxDiff = max(maxDiff, d); sumDiff += d
        }
        let meanDiff = sumDiff / Float(x.count)
        print("chelsea preprocessing vs golden: max abs diff \(maxDiff), mean abs diff \(meanDiff)")
        XCTAssertLessThan(maxDiff, 2)
        XCTAssertLessThan(meanDiff, 0.5)
    }
}

extension PreprocessingTests {
    func testGoogLeNetPreprocessingOfEveryGoldenPhotoMatchesGoldenInput() throws {
        let shared = try SharedData.directory()
        let goldenDir = shared.appendingPathComponent("golden/googlenet_bvlc")
        let pre = Preprocessing.caffeBGR
        let photos = try FileManager.default.contentsOfDirectory(atPath: shared.appendingPathComponent("images").path).sorted()
        var checked = 0
        for photo in photos {
            let stem = (photo as NSString).deletingPathExtension
            let npy = goldenDir.appendingPathComponent("\(stem).input.npy")
            guard FileManager.default.fileExists(atPath: npy.path) else { continue }
            let golden = try Float32NumPy.read(npy)
            let image = try ImageFile.read(shared.appendingPathComponent("images/\(photo)"))
            let x = pre.planarTensorData(from: try pre.prepareForClassification(image))
            XCTAssertEqual(x.count, golden.values.count, photo)
            guard x.count == golden.values.count else { continue }
            var maxDiff: Float = 0, sum: Float = 0
            for i in 0..<x.count { let d = abs(x[i] - golden.values[i]); maxDiff = max(maxDiff, d); sum += d }
            print("\(photo): max abs diff \(maxDiff), mean abs diff \(sum / Float(x.count))")
            XCTAssertLessThanOrEqual(maxDiff, 1, photo)   // PIL rounds its fixed-point weights differently in rare pixels
            XCTAssertLessThan(sum / Float(x.count), 0.01, photo)
            checked += 1
        }
        XCTAssertGreaterThan(checked, 0)
    }
}

extension PreprocessingTests {
    func testPlanarDataFollowsTheModelFormulaAndInverts() {
        let image = RGBImage(width: 2, height: 1, pixels: [255, 128, 0, 10, 20, 30])
        let caffe = Preprocessing.caffeBGR.planarTensorData(from: image)
        let expected: [Float] = [-104, -74, 11, -97, 132, -113]   // B plane (0, 30) - 104, G (128, 20) - 117, R (255, 10) - 123
        XCTAssertEqual(caffe, expected)
        let torch = Preprocessing.imagenetRGB.planarTensorData(from: image)
        XCTAssertEqual(torch[0], (1 - 0.485) / 0.229, accuracy: 1e-5)
        XCTAssertEqual(torch[5], (30 / 255 - 0.406) / 0.225, accuracy: 1e-5)
        for pre in [Preprocessing.caffeBGR, .imagenetRGB] {
            let back = pre.image(fromPlanar: pre.planarTensorData(from: image), width: 2, height: 1)
            for (a, b) in zip(back.pixels, image.pixels) { XCTAssertEqual(a, b, accuracy: 1e-3) }
        }
        let unclamped = Preprocessing.caffeBGR.image(fromPlanar: [-200, 0, 0, 0, 200, 0], width: 2, height: 1, clamp: false)
        XCTAssertEqual(unclamped.pixels[2], -96)
        XCTAssertEqual(Preprocessing.caffeBGR.image(fromPlanar: [-200, 0, 0, 0, 200, 0], width: 2, height: 1).pixels[2], 0)
    }

    func testPixelsZeroAndFullScaleMapToTheEndsOfEachChannelsRange() {
        let black = RGBImage(width: 1, height: 1, pixels: [0, 0, 0]), white = RGBImage(width: 1, height: 1, pixels: [255, 255, 255])
        let caffeBlack = Preprocessing.caffeBGR.planarTensorData(from: black), caffeWhite = Preprocessing.caffeBGR.planarTensorData(from: white)
        XCTAssertEqual([caffeBlack[0], caffeWhite[0]], [-104, 151])
        XCTAssertEqual([caffeBlack[2], caffeWhite[2]], [-123, 132])
        let torchBlack = Preprocessing.imagenetRGB.planarTensorData(from: black), torchWhite = Preprocessing.imagenetRGB.planarTensorData(from: white)
        XCTAssertEqual(torchBlack[1], -0.456 / 0.224, accuracy: 1e-5)
        XCTAssertEqual(torchWhite[1], (1 - 0.456) / 0.224, accuracy: 1e-5)
    }

    func testDecodesTheInputObjectOfAModelJSON() throws {
        let json = """
        {"name": "input", "shape": [1, 3, "height", "width"], "resize_shorter": 256, "crop": [224, 224],
         "channel_order": "BGR", "pixel_range": [0, 255], "mean": [104.0, 117.0, 123.0], "std": [1.0, 1.0, 1.0]}
        """
        let pre = try JSONDecoder().decode(Preprocessing.self, from: Data(json.utf8))
        XCTAssertEqual(pre, .caffeBGR)
        let again = try JSONDecoder().decode(Preprocessing.self, from: JSONEncoder().encode(pre))
        XCTAssertEqual(again, pre)
    }

    func testModelJSONFilesInSharedDecode() throws {
        let shared = try SharedData.directory()
        for name in ["googlenet_bvlc", "squeezenet1_1"] {
            let data = try Data(contentsOf: shared.appendingPathComponent("models/\(name).json"))
            struct Model: Decodable { var input: Preprocessing }
            let pre = try JSONDecoder().decode(Model.self, from: data).input
            XCTAssertEqual(pre, name == "googlenet_bvlc" ? .caffeBGR : .imagenetRGB)
        }
    }
}
