import Foundation
import Imaging
import Inspection
import Models
import Network
import Tensors
import TestSupport
import XCTest

/// Attribution maps checked against central finite differences on a small network, completeness for integrated
/// gradients, and the deletion test on the shared photos with GoogLeNet.
final class AttributionTests: XCTestCase {
    /// conv 3x3 -> ReLU -> conv 3x3 stride 2 -> ReLU ("feat") -> conv 1x1 -> ReLU -> global pool -> Gemm -> logits,
    /// saved as an ONNX file with a BGR, mean-subtracted, std 2 description (so the pixel mapping is not trivial).
    static func smallModel(in dir: URL) throws -> LoadedModel {
        var parameters: [String: Value] = [:]
        var seed: UInt64 = 10
        func param(_ name: String, _ shape: [Int], _ range: ClosedRange<Float> = -0.5...0.5) -> String {
            seed += 1
            parameters[name] = .float(Tensor.random(shape: shape, in: range, seed: seed))
            return name
        }
        let nodes: [Node] = [
            Node(name: "c1", opType: "Conv", inputs: ["input", param("w1", [6, 3, 3, 3]), param("b1", [6])], outputs: ["c1"],
                 attributes: ["pads": .ints([1, 1, 1, 1])]),
            Node(name: "r1", opType: "Relu", inputs: ["c1"], outputs: ["r1"]),
            Node(name: "c2", opType: "Conv", inputs: ["r1", param("w2", [8, 6, 3, 3]), param("b2", [8], 0...0.5)], outputs: ["c2"],
                 attributes: ["pads": .ints([1, 1, 1, 1]), "strides": .ints([2, 2])]),
            Node(name: "feat", opType: "Relu", inputs: ["c2"], outputs: ["feat"]),
            Node(name: "c3", opType: "Conv", inputs: ["feat", param("w3", [8, 8, 1, 1]), param("b3", [8], 0...0.5)], outputs: ["c3"]),
            Node(name: "r3", opType: "Relu", inputs: ["c3"], outputs: ["r3"]),
            Node(name: "gap", opType: "GlobalAveragePool", inputs: ["r3"], outputs: ["gap"]),
            Node(name: "flat", opType: "Flatten", inputs: ["gap"], outputs: ["flat"]),
            Node(name: "fc", opType: "Gemm", inputs: ["flat", param("fc.w", [4, 8], -1...1), param("fc.b", [4])], outputs: ["logits"],
                 attributes: ["transB": .int(1)]),
        ]
        let graph = Graph(name: "small", nodes: nodes, initializers: parameters,
                          inputs: [ValueInfo(name: "input", shape: [1, 3, nil, nil])], outputs: [ValueInfo(name: "logits")])
        let url = dir.appendingPathComponent("small.onnx")
        try ONNXExporter.write(graph, to: url)
        let description = """
        {"input": {"channel_order": "BGR", "pixel_range": [0, 1], "mean": [0.4, 0.5, 0.6], "std": [0.2, 0.25, 0.3],
                   "default_size": [12, 12]},
         "outputs": {"logits": [1, 4]}}
        """
        try Data(description.utf8).write(to: dir.appendingPathComponent("small.json"))
        return try LoadedModel(url: url)
    }

    static func randomImage(width: Int, height: Int, seed: UInt64) -> RGBImage {
        RGBImage(width: width, height: height, pixels: Tensor.random(shape: [width * height * 3], in: 0...255, seed: seed).scalars)
    }

    func testDefaultGradCAMLayerIsTheLastSpatialValueBeforeGlobalPooling() throws {
        let model = try Self.smallModel(in: try SharedData.temporaryDirectory(for: self))
        XCTAssertEqual(try Attributor(model: model).defaultGradCAMLayer(size: [12, 12]), "r3")
    }

    /// w_k = mean over positions of d logit / d A_k, so d/dε logit(A + ε·1_k) = H·W·w_k: one central difference per
    /// channel, computed by feeding the layer's value straight into the rest of the graph.
    func testGradCAMChannelWeightsMatchFiniteDifferencesOfTheLogit() throws {
        let model = try Self.smallModel(in: try SharedData.temporaryDirectory(for: self))
        let attributor = try Attributor(model: model)
        let image = Self.randomImage(width: 12, height: 10, seed: 3)
        for c in 0..<4 {
            let cam = try attributor.gradCAM(image, classIndex: c, layer: "feat")
            XCTAssertEqual(cam.mapWidth, 6)
            XCTAssertEqual(cam.mapHeight, 5)
            XCTAssertEqual(cam.upsampled.count, 12 * 10)
            let a = try XCTUnwrap(model.executor.run(["input": .float(try model.inputTensor(for: image))], outputs: ["feat"])["feat"]?.floatTensor)
            func logit(_ act: Tensor) throws -> Double {
                Double(try XCTUnwrap(model.executor.run(["feat": .float(act)], outputs: ["logits"])["logits"]?.floatTensor)[0, c])
            }
            let plane = 30, eps: Float = 1e-2
            for k in 0..<8 {
                var plus = a, minus = a
                plus.withUnsafeMutableBufferPointer { p in for i in 0..<plane { p[k * plane + i] += eps } }
                minus.withUnsafeMutableBufferPointer { p in for i in 0..<plane { p[k * plane + i] -= eps } }
                let fd = (try logit(plus) - logit(minus)) / Double(2 * eps) / Double(plane)
                // float32 logits of size ~1 differ by ~1e-7 ulps over 2ε = 2e-2: 1e-5 absolute; ReLU kinks after
                // the layer could add more only when ε crosses one, which the tolerance would reveal.
                XCTAssertEqual(Double(cam.weights[k]), fd, accuracy: 2e-4 + 1e-3 * abs(fd), "class \(c) channel \(k)")
            }
            // map = ReLU(Σ_k w_k A_k) at the layer's resolution.
            for i in 0..<plane {
                var s: Float = 0
                for k in 0..<8 { s += cam.weights[k] * a[0, k, i / 6, i % 6] }
                XCTAssertEqual(cam.map[i], max(s, 0), accuracy: 1e-5)
            }
        }
    }

    /// The saliency gradient goes through the pixel mapping (BGR, scale, mean, std): central differences in pixels.
    func testPixelGradientMatchesFiniteDifferencesInPixelSpace() throws {
        let model = try Self.smallModel(in: try SharedData.temporaryDirectory(for: self))
        let attributor = try Attributor(model: model)
        let image = Self.randomImage(width: 9, height: 8, seed: 5)
        let (_, g) = try attributor.pixelGradient(image, classIndex: 2)
        func logit(_ img: RGBImage) throws -> Double {
            Double(try XCTUnwrap(model.executor.run(["input": .float(try model.inputTensor(for: img))], outputs: ["logits"])["logits"]?.floatTensor)[0, 2])
        }
        var rng = SplitMix64(seed: 9)
        let scale = Double(g.map(abs).max() ?? 1)
        func centralDifference(_ i: Int, _ h: Float) throws -> Double {
            var plus = image, minus = image
            plus.pixels[i] += h
            minus.pixels[i] -= h
            return (try logit(plus) - logit(minus)) / Double(2 * h)
        }
        // A ReLU whose input is within a step of zero makes the logit piecewise linear there: the two step sizes
        // then disagree and that pixel says nothing about the gradient; the rest must match, up to the float32
        // rounding of the two logits in the quotient: a few ulps of the logit over 2h (at logit 2.5, h = 0.25:
        // about 1e-6, more than 1e-3 of this model's largest pixel gradient, so it is added to the tolerance).
        let noise = 4 * Double(Float(try logit(image)).magnitude.ulp) / (2 * 0.25)
        var checked = 0
        for _ in 0..<40 {
            let i = Int(rng.next() % UInt64(g.count))
            let small = try centralDifference(i, 0.25), large = try centralDifference(i, 0.5)
            if abs(small - large) > 1e-3 * scale { continue }
            checked += 1
            XCTAssertEqual(Double(g[i]), small, accuracy: 1e-3 * scale + noise, "pixel value \(i)")
        }
        XCTAssertGreaterThanOrEqual(checked, 20, "too many pixels next to a ReLU kink")
        let saliency = try attributor.explain(image, method: .saliency, classIndex: 2)
        XCTAssertEqual(saliency.map[4], max(abs(g[12]), abs(g[13]), abs(g[14])))
    }

    /// Σ attributions = logit(x) − logit(black) up to the quadrature error, which falls as the steps grow.
    func testIntegratedGradientsAreComplete() throws {
        let model = try Self.smallModel(in: try SharedData.temporaryDirectory(for: self))
        let attributor = try Attributor(model: model)
        let image = Self.randomImage(width: 12, height: 12, seed: 7)
        let coarse = try attributor.integratedGradients(image, classIndex: 1, steps: 4)
        let fine = try attributor.integratedGradients(image, classIndex: 1, steps: 256)
        XCTAssertEqual(coarse.expected, fine.expected, accuracy: 1e-5)
        XCTAssertGreaterThan(abs(fine.expected), 0.05, "a meaningful difference to explain")
        XCTAssertEqual(fine.sum, fine.expected, accuracy: 0.01 * abs(fine.expected))
        XCTAssertLessThanOrEqual(abs(fine.sum - fine.expected), abs(coarse.sum - coarse.expected) + 1e-6)
        XCTAssertEqual(fine.attributions.reduce(0.0) { $0 + Double($1) }, fine.sum, accuracy: 1e-3 * max(1, abs(fine.sum)))
        for i in fine.map.indices {
            XCTAssertEqual(fine.map[i], (0..<3).map { abs(fine.attributions[3 * i + $0]) }.reduce(0, +), accuracy: 1e-6)
        }
    }

    /// Petsiuk et al.'s deletion test on the shared photos (GoogLeNet, classification crop): removing the 20% of
    /// pixels Grad-CAM ranks highest lowers the top class's probability more than removing the lowest 20%.
    func testRemovingGradCAMsTopPixelsHurtsMoreThanItsBottomOnNearlyEveryPhoto() throws {
        let model = try LoadedModel(url: try SharedData.file("models/googlenet_bvlc.onnx"))
        let attributor = try Attributor(model: model)
        let photos = try FileManager.default.contentsOfDirectory(atPath: try SharedData.file("images").path).sorted()
        var wins = 0, lines: [String] = []
        for name in photos {
            let image = try model.featureInput(image: try ImageFile.read(try SharedData.file("images/\(name)")), size: .modelDefault).image
            let result = try attributor.explain(image, method: .gradcam)
            let (top, bottom) = try DeletionCurve.topAndBottom(attributor, image: image, classIndex: result.classIndex, map: result.map)
            if top < bottom { wins += 1 }
            lines.append(String(format: "%@ %@ p=%.3f top20=%.3f bottom20=%.3f", name, result.label, result.probability, top, bottom))
        }
        print(lines.joined(separator: "\n"))
        XCTAssertGreaterThanOrEqual(wins, photos.count - 1, lines.joined(separator: "\n"))
    }
}
