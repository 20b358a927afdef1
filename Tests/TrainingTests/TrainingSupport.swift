import Foundation
import Imaging
import Models
import Network
import Tensors
import TestSupport
import Training
import XCTest

/// Shared pieces of the training tests: the GoogLeNet model and a feature cache kept across tests (so the
/// backbone runs once per image per test run), a tiny synthetic model for fast tests, and synthetic image folders.
enum TrainingFixtures {
    /// A cache home shared by every test of a run (and the next run: entries are keyed by content).
    static let cacheHome = FileManager.default.temporaryDirectory.appendingPathComponent("dream-training-tests-home")

    static func googlenet() throws -> LoadedModel { try LoadedModel(url: try SharedData.file("models/googlenet_bvlc.onnx")) }
    static func clipart4() throws -> URL { try SharedData.file("datasets/clipart4") }

    /// input [1,3,16,16] → Conv 4x3x3x3 → Relu → GlobalAveragePool → Flatten (features) → Gemm 10 → Softmax, with
    /// a description beside it (RGB 0..1, resize 16, crop 16). Its features are mean colours, which separates
    /// red images from blue ones.
    static func tinyModel(in directory: URL) throws -> LoadedModel {
        var w = Tensor(shape: [4, 3, 3, 3])
        for o in 0..<4 { for i in 0..<3 { for k in 0..<9 { w[flat: ((o * 3 + i) * 9) + k] = o == i ? 1.0 / 9 : (o == 3 ? 0.05 : 0) } } }
        let graph = Graph(name: "tiny", nodes: [
            Node(name: "conv", opType: "Conv", inputs: ["input", "conv_W", "conv_B"], outputs: ["conv"], attributes: ["pads": .ints([1, 1, 1, 1])]),
            Node(name: "relu", opType: "Relu", inputs: ["conv"], outputs: ["relu"]),
            Node(name: "gap", opType: "GlobalAveragePool", inputs: ["relu"], outputs: ["gap"]),
            Node(name: "flat", opType: "Flatten", inputs: ["gap"], outputs: ["features"]),
            Node(name: "fc", opType: "Gemm", inputs: ["features", "fc_W", "fc_B"], outputs: ["logits"], attributes: ["transB": .int(1)]),
            Node(name: "sm", opType: "Softmax", inputs: ["logits"], outputs: ["prob"], attributes: ["axis": .int(1)]),
        ], initializers: ["conv_W": .float(w), "conv_B": .float(Tensor(shape: [4], repeating: 0.01)),
                          "fc_W": .float(Tensor.random(shape: [10, 4], seed: 1)), "fc_B": .float(Tensor(shape: [10]))],
        initializerOrder: ["conv_W", "conv_B", "fc_W", "fc_B"],
        inputs: [ValueInfo(name: "input", shape: [1, 3, nil, nil])], outputs: [ValueInfo(name: "logits"), ValueInfo(name: "prob")])
        let url = directory.appendingPathComponent("tiny.onnx")
        try ONNXExporter.write(graph, to: url)
        let json = """
        {"input": {"name": "input", "default_size": [16, 16], "min_size": [16, 16], "resize_shorter": 16, "crop": [16, 16],
          "channel_order": "RGB", "pixel_range": [0, 1], "mean": [0, 0, 0], "std": [1, 1, 1]},
         "outputs": {"logits": [1, 10], "prob": [1, 10]},
         "feature_vector_for_transfer_learning": {"tensor": "features"}}
        """
        try Data(json.utf8).write(to: directory.appendingPathComponent("tiny.json"))
        return try LoadedModel(url: url)
    }

    /// A PNG of one colour with a little seeded noise.
    static func writeImage(_ url: URL, color: (Float, Float, Float), seed: UInt64, size: Int = 20) throws {
        var rng = SplitMix64(seed: seed)
        var pixels: [Float] = []
        for _ in 0..<(size * size) {
            for c in [color.0, color.1, color.2] { pixels.append(min(255, max(0, c + Float.random(in: -30...30, using: &rng)))) }
        }
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try ImageFile.write(RGBImage(width: size, height: size, pixels: pixels), to: url)
    }

    /// data/red and data/blue with `count` images each (alternating .png / .PNG / .jpg names).
    static func colourFolder(in directory: URL, count: Int = 10) throws -> URL {
        let root = directory.appendingPathComponent("data")
        for (name, color) in [("red", (Float(220), Float(30), Float(30))), ("blue", (Float(30), Float(40), Float(220)))] {
            for i in 0..<count {
                let ext = ["png", "PNG", "jpg", "JPEG"][i % 4]
                try writeImage(root.appendingPathComponent("\(name)/img\(i).\(ext)"), color: color, seed: UInt64(i) + (name == "red" ? 0 : 100))
            }
        }
        return root
    }

    static func settings(_ change: (inout TrainingSettings) -> Void = { _ in }) -> TrainingSettings {
        var s = TrainingSettings()
        change(&s)
        return s
    }
}
