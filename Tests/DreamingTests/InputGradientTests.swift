import Dreaming
import Foundation
import Models
import Network
import Tensors
import TestSupport
import XCTest

/// The whole network's backward pass against PyTorch autograd (../shared/golden/<model>/chelsea.grad.<layer>.npy).
final class InputGradientTests: XCTestCase {
    func checkGoldenGradients(model name: String) throws {
        let model = try LoadedModel(url: try SharedData.file("models/\(name).onnx"))
        let golden = try SharedData.file("golden/\(name)")
        let index = try SharedData.json(golden.appendingPathComponent("index.json"))
        let files = try XCTUnwrap((index["gradients"] as? [String: Any])?["files"] as? [String: [String: Any]])
        let x = try XCTUnwrap(NumPyFile.read(contentsOf: golden.appendingPathComponent("chelsea.input.npy")).floatTensor)
        XCTAssertFalse(files.isEmpty)
        for (layer, entry) in files.sorted(by: { $0.key < $1.key }) {
            let expected = try XCTUnwrap(NumPyFile.read(contentsOf: golden.appendingPathComponent(entry["file"] as! String)).floatTensor)
            let dream = try DeepDream(model: model, settings: DreamSettings(layers: [DreamLayer(name: layer)]))
            let (value, gradient) = try dream.objectiveAndGradient(networkInput: x)
            let reference = try XCTUnwrap(entry["objective_value"] as? Double)
            XCTAssertEqual(value, reference, accuracy: 1e-4 * reference, "\(name) \(layer): objective")
            XCTAssertEqual(gradient.shape, expected.shape)
            let error = gradient.relativeL2Error(to: expected)
            print("\(name) \(layer): objective \(value) vs \(reference), input-gradient relative L2 error \(error)")
            XCTAssertLessThanOrEqual(error, 1e-3, "\(name) \(layer): relative L2 error of the input gradient \(error)")
        }
    }

    func testGoogLeNetInputGradientsMatchPyTorch() throws { try checkGoldenGradients(model: "googlenet_bvlc") }

    func testSqueezeNetInputGradientsMatchPyTorch() throws { try checkGoldenGradients(model: "squeezenet1_1") }
}
