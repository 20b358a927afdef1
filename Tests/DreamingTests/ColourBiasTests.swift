import Dreaming
import Foundation
import Imaging
import Models
import Network
import Tensors
import TestSupport
import XCTest

/// A dream must not favour a colour that the model does not favour. The model here treats its three input channels
/// alike (the same weights for each), so with a one-value mean and std the true pixel gradient is the same for R, G
/// and B at every pixel, and a grey picture must stay grey however long it dreams.
final class ColourBiasTests: XCTestCase {
    /// Conv 3x3 (weights equal across the input channels) -> Relu, described as a TensorFlow-style export:
    /// pixels onto [-1, 1], a one-value mean and std.
    func makeChannelSymmetricModel(in directory: URL, channelOrder: String) throws -> LoadedModel {
        let filters = 4
        let perChannel = Tensor.random(shape: [filters, 1, 3, 3], in: -1...1, seed: 3)
        let weight = Tensor(shape: [filters, 3, 3, 3], scalars: (0..<filters).flatMap { m in
            (0..<3).flatMap { _ in perChannel.scalars[(m * 9)..<(m * 9 + 9)] }
        })
        let graph = Graph(
            name: "symmetric",
            nodes: [
                Node(name: "conv", opType: "Conv", inputs: ["input", "w", "b"], outputs: ["conv_pre_relu"],
                     attributes: ["kernel_shape": .ints([3, 3]), "pads": .ints([1, 1, 1, 1])]),
                Node(name: "relu", opType: "Relu", inputs: ["conv_pre_relu"], outputs: ["features"]),
            ],
            initializers: ["w": .float(weight), "b": .float(Tensor(shape: [filters], repeating: 0.1))],
            inputs: [ValueInfo(name: "input", shape: [1, 3, nil, nil])],
            outputs: [ValueInfo(name: "features")])
        let url = directory.appendingPathComponent("symmetric.onnx")
        try ONNXExporter.write(graph, to: url)
        let description = """
        {"input": {"name": "input", "channel_order": "\(channelOrder)", "pixel_range": [-1, 1], "mean": [0], "std": [0.5]},
         "deepdream_layers": ["features"]}
        """
        try Data(description.utf8).write(to: directory.appendingPathComponent("symmetric.json"))
        return try LoadedModel(url: url)
    }

    func testDreamOfAMinusOneToOneOneValueStdModelKeepsAGreyPictureGrey() throws {
        for order in ["RGB", "BGR"] {
            let model = try makeChannelSymmetricModel(in: try SharedData.temporaryDirectory(for: self), channelOrder: order)
            XCTAssertEqual(try model.preprocessing.pixelRange, [-1, 1])
            var settings = DreamSettings(layers: [DreamLayer(name: "features")])
            settings.octaves = 2
            settings.iterations = 3
            let dream = try DeepDream(model: model, settings: settings)
            var rng = SplitMix64(seed: 5)
            let side = 64
            let grey = (0..<(side * side)).flatMap { _ -> [Float] in let v = Float(40 + rng.next() % 170); return [v, v, v] }
            let picture = RGBImage(width: side, height: side, pixels: grey)

            let gradient = try dream.objectiveAndPixelGradient(picture).gradient
            var largest: Float = 0, spread: Float = 0
            for i in stride(from: 0, to: gradient.count, by: 3) {
                let rgb = gradient[i..<(i + 3)]
                largest = max(largest, rgb.map(abs).max()!)
                spread = max(spread, rgb.max()! - rgb.min()!)
            }
            XCTAssertGreaterThan(largest, 0, "the objective depends on the pixels")
            XCTAssertLessThanOrEqual(spread, 1e-6 * largest, "\(order): R, G and B get the same gradient")

            let result = try dream.dream(picture)
            XCTAssertNotEqual(result.pixels, picture.pixels, "the dream changes the picture")
            var colour: Float = 0
            for i in stride(from: 0, to: result.pixels.count, by: 3) {
                let rgb = result.pixels[i..<(i + 3)]
                colour = max(colour, rgb.max()! - rgb.min()!)
            }
            XCTAssertLessThan(colour, 1e-3, "\(order): the dream of a grey picture stays grey (largest R/G/B difference \(colour))")
        }
    }
}
