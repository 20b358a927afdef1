import Foundation
import Imaging
import Models
import Network
import Tensors
import TestSupport
import XCTest

/// The public fallback for the default model is the ONNX model zoo's googlenet-7.onnx, which nobody here can download.
/// This checks the path with a synthetic file of the same shape: `data_0` in, `prob_0` (softmax) out, Caffe2-style names.
final class ZooStyleModelTests: XCTestCase {
    func makeZooStyleFile(in directory: URL) throws -> URL {
        let graph = Graph(
            name: "zoo-style",
            nodes: [
                Node(name: "", opType: "Conv", inputs: ["data_0", "conv_w_0", "conv_b_0"], outputs: ["inception_4c/output_1"]),
                Node(name: "", opType: "Relu", inputs: ["inception_4c/output_1"], outputs: ["inception_4c/output_2"]),
                Node(name: "", opType: "GlobalAveragePool", inputs: ["inception_4c/output_2"], outputs: ["pool5/7x7_s1_1"]),
                Node(name: "", opType: "Flatten", inputs: ["pool5/7x7_s1_1"], outputs: ["pool5/7x7_s1_2"]),
                Node(name: "", opType: "Gemm", inputs: ["pool5/7x7_s1_2", "fc_w_0", "fc_b_0"], outputs: ["loss3/classifier_1"],
                     attributes: ["transB": .int(1)]),
                Node(name: "", opType: "Softmax", inputs: ["loss3/classifier_1"], outputs: ["prob_0"]),
            ],
            initializers: [
                "conv_w_0": .float(Tensor.random(shape: [4, 3, 1, 1], in: -0.01...0.01, seed: 1)),
                "conv_b_0": .float(Tensor(shape: [4], repeating: 0.1)),
                "fc_w_0": .float(Tensor.random(shape: [10, 4], seed: 2)),
                "fc_b_0": .float(Tensor(shape: [10])),
            ],
            inputs: [ValueInfo(name: "data_0", shape: [1, 3, 224, 224])],
            outputs: [ValueInfo(name: "prob_0", shape: [1, 10])], opsetVersion: 7)
        let url = directory.appendingPathComponent("googlenet-7.onnx")
        try ONNXExporter.write(graph, to: url)
        return url
    }

    func testZooStyleFileGetsTheBuiltInDescriptionAndClassifiesWithItsOwnNames() throws {
        let directory = try SharedData.temporaryDirectory(for: self)
        let model = try LoadedModel(url: try makeZooStyleFile(in: directory))
        XCTAssertEqual(try model.inputName, "data_0")
        XCTAssertEqual(try model.preprocessing.channelOrder, .bgr)
        XCTAssertEqual(model.defaultDreamLayer, "inception_4c/output_2", "dream layers resolve to the names in the file (the last version)")
        // Declared 224x224, but the engine derives shapes from the actual input.
        let predictions = try model.classify(RGBImage(width: 300, height: 260, fill: (120, 80, 40)), top: 3)
        XCTAssertEqual(predictions.count, 3)
        XCTAssertEqual(predictions.first?.label, "class \(predictions.first!.index)", "no labels file: classes by number")
        let x = Tensor(shape: [1, 3, 64, 96])
        XCTAssertEqual(try model.executor.run(["data_0": .float(x)], outputs: ["inception_4c/output_2"])["inception_4c/output_2"]?.shape,
                       [1, 4, 64, 96])
    }

    func testAMirrorCopyOfTheZooFileIsCheckedAgainstItsPublishedSHA256() throws {
        let mirror = try SharedData.temporaryDirectory(for: self)
        _ = try makeZooStyleFile(in: mirror)
        let store = ModelStore(home: try SharedData.temporaryDirectory(for: self), mirror: mirror)
        XCTAssertThrowsError(try store.resolve("googlenet")) { error in
            XCTAssertTrue("\(error)".contains("5725ccfd"), "the synthetic file is not the published one: \(error)")
        }
    }
}
