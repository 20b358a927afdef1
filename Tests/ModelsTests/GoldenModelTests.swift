import Foundation
import Imaging
import Models
import Network
import Tensors
import TestSupport
import XCTest

/// The shared pretrained models against reference outputs computed with onnxruntime (../shared/golden).
final class GoldenModelTests: XCTestCase {
    static let models = ["googlenet_bvlc", "squeezenet1_1"]

    func loadModel(_ name: String) throws -> LoadedModel {
        try LoadedModel(url: try SharedData.file("models/\(name).onnx"))
    }

    func topK(_ values: [Float], _ k: Int) -> [Int] {
        Array(values.indices.sorted { values[$0] > values[$1] }.prefix(k))
    }

    func testLogitsMatchOnnxruntimeOnTheExactInputsOfEveryPhoto() throws {
        for name in Self.models {
            let model = try loadModel(name)
            let golden = try SharedData.file("golden/\(name)")
            let inputs = try FileManager.default.contentsOfDirectory(atPath: golden.path).filter { $0.hasSuffix(".input.npy") }.sorted()
            XCTAssertGreaterThan(inputs.count, 5)
            for file in inputs {
                let photo = String(file.dropLast(".input.npy".count))
                let x = try NumPyFile.read(contentsOf: golden.appendingPathComponent(file))
                let expected = try XCTUnwrap(NumPyFile.read(contentsOf: golden.appendingPathComponent("\(photo).logits.npy")).floatTensor)
                let got = try XCTUnwrap(model.executor.run(["input": x], outputs: ["logits"])["logits"]?.floatTensor)
                XCTAssertEqual(got.shape, expected.shape)
                let diff = got.maxAbsDifference(expected)
                XCTAssertLessThanOrEqual(diff, 1e-3, "\(name) \(photo): max |logits - onnxruntime| = \(diff)")
                XCTAssertEqual(topK(got.scalars, 5), topK(expected.scalars, 5), "\(name) \(photo): top-5 order")
            }
        }
    }

    func testIntermediateActivationsMatchOnnxruntime() throws {
        for name in Self.models {
            let model = try loadModel(name)
            let golden = try SharedData.file("golden/\(name)")
            let index = try SharedData.json(golden.appendingPathComponent("index.json"))
            let layers = try XCTUnwrap(index["layers"] as? [String])
            for photo in ["chelsea", "dog"] {
                let x = try NumPyFile.read(contentsOf: golden.appendingPathComponent("\(photo).input.npy"))
                let available = layers.filter { FileManager.default.fileExists(atPath: golden.appendingPathComponent("\(photo).\($0).npy").path) }
                let values = try model.executor.run(["input": x], outputs: available)
                for layer in available {
                    let expected = try XCTUnwrap(NumPyFile.read(contentsOf: golden.appendingPathComponent("\(photo).\(layer).npy")).floatTensor)
                    let got = try XCTUnwrap(values[layer]?.floatTensor)
                    XCTAssertEqual(got.shape, expected.shape, "\(name) \(layer)")
                    let error = got.relativeL2Error(to: expected)
                    XCTAssertLessThan(error, 1e-4, "\(name) \(photo) \(layer): relative L2 error \(error)")
                }
            }
        }
    }

    /// Our own decoding + resizing + cropping, end to end, against the reference top-5 (near-ties may swap).
    func testClassifyingThePhotosAgreesWithTheReferenceTop5() throws {
        for name in Self.models {
            let model = try loadModel(name)
            let index = try SharedData.json(try SharedData.file("golden/\(name)/index.json"))
            let photos = try XCTUnwrap(index["photos"] as? [String: Any])
            for (photo, entry) in photos.sorted(by: { $0.key < $1.key }) {
                let reference = try XCTUnwrap((entry as? [String: Any])?["top5"] as? [[Any]])
                let referenceIndices = reference.compactMap { $0.first as? Int }
                let referenceProbabilities = reference.compactMap { ($0.count > 2 ? $0[2] as? Double : nil) }
                let image = try ImageFile.read(try SharedData.file("images/\(photo)"))
                let predictions = try model.classify(image, top: 5)
                // Top-1 must agree unless the reference's first two are a near-tie.
                let nearTie = referenceProbabilities.count > 1 && referenceProbabilities[0] - referenceProbabilities[1] < 0.05
                if !nearTie {
                    XCTAssertEqual(predictions.first?.index, referenceIndices.first, "\(name) \(photo): top-1")
                }
                XCTAssertTrue(referenceIndices.contains(predictions[0].index), "\(name) \(photo): our top-1 not in the reference top-5")
                let overlap = Set(predictions.map(\.index)).intersection(referenceIndices).count
                XCTAssertGreaterThanOrEqual(overlap, 4, "\(name) \(photo): top-5 overlap \(overlap)")
                for (p, q) in zip(predictions, referenceProbabilities) where !nearTie {
                    XCTAssertEqual(Double(p.probability), q, accuracy: 0.05, "\(name) \(photo) class \(p.index)")
                }
            }
        }
    }

    func testModelDescriptionGivesPreprocessingLabelsAndDreamLayers() throws {
        let model = try loadModel("googlenet_bvlc")
        XCTAssertEqual(model.labels?.count, 1000)
        XCTAssertEqual(model.labels?[281], "tabby, tabby cat")
        XCTAssertEqual(try model.preprocessing.channelOrder, .bgr)
        XCTAssertEqual(model.defaultDreamLayer, "inception_4c_output")
        XCTAssertEqual(try model.inputName, "input")
    }
}
