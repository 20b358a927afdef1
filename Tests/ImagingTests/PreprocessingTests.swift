import Foundation
import Imaging
import XCTest

final class PreprocessingTests: XCTestCase {
    func testGoogLeNetPreprocessingOfChelseaMatchesGoldenInput() throws {
        let shared = try sharedDirectory()
        let golden = try loadNpy(shared.appendingPathComponent("golden/googlenet_bvlc/chelsea.input.npy"))
        XCTAssertEqual(golden.shape, [1, 3, 224, 224])
        let photo = try ImageFile.read(shared.appendingPathComponent("images/chelsea.png"))
        let pre = Preprocessing(channelOrder: .bgr, pixelRange: [0, 255], mean: [104, 117, 123], std: [1, 1, 1],
                                resizeShorter: 256, crop: [224, 224])
        let prepared = pre.prepareForClassification(photo)
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
        let shared = try sharedDirectory()
        let goldenDir = shared.appendingPathComponent("golden/googlenet_bvlc")
        let pre = Preprocessing.caffeBGR
        let photos = try FileManager.default.contentsOfDirectory(atPath: shared.appendingPathComponent("images").path).sorted()
        var checked = 0
        for photo in photos {
            let stem = (photo as NSString).deletingPathExtension
            let npy = goldenDir.appendingPathComponent("\(stem).input.npy")
            guard FileManager.default.fileExists(atPath: npy.path) else { continue }
            let golden = try loadNpy(npy)
            let image = try ImageFile.read(shared.appendingPathComponent("images/\(photo)"))
            let x = pre.planarTensorData(from: pre.prepareForClassification(image))
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
