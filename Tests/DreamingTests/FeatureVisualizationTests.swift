import Dreaming
import Foundation
import Imaging
import Models
import Network
import Tensors
import TestSupport
import XCTest

/// The pieces of feature visualisation against finite differences and adjoint identities, then whole runs on GoogLeNet.
final class FeatureVisualizationTests: XCTestCase {
    func googLeNet() throws -> LoadedModel { try LoadedModel(url: try SharedData.file("models/googlenet_bvlc.onnx")) }

    /// L = Σ r · rgb(parameters) for a fixed random r: backward(r) against central differences of L.
    func testFourierImageGradientMatchesFiniteDifferences() throws {
        var image = FourierImage(width: 10, height: 8, seed: 1, standardDeviation: 0.3)
        let (rgb, _) = image.render()
        XCTAssertEqual(rgb.count, 10 * 8 * 3)
        XCTAssertTrue(rgb.allSatisfy { $0 > 0 && $0 < 1 }, "sigmoid keeps colours inside 0…1")
        let r = Tensor.random(shape: [rgb.count], in: -1...1, seed: 2).scalars
        let g = image.backward(r, rgb: rgb)
        func loss(_ img: FourierImage) -> Double { zip(img.render().rgb, r).reduce(0.0) { $0 + Double($1.0 * $1.1) } }
        var rng = SplitMix64(seed: 3)
        let scale = Double(g.map(abs).max() ?? 1)
        for _ in 0..<30 {
            let i = Int(rng.next() % UInt64(g.count))
            let saved = image.parameters[i]
            image.parameters[i] = saved + 0.01
            let plus = loss(image)
            image.parameters[i] = saved - 0.01
            let minus = loss(image)
            image.parameters[i] = saved
            // Smooth (sigmoid of a linear map): O(ε²) truncation, ~1e-6 float32 rounding over 240 terms.
            XCTAssertEqual(Double(g[i]), (plus - minus) / 0.02, accuracy: 2e-3 * scale, "parameter \(i)")
        }
    }

    /// The warp is affine (grey outside the image): its linear part W satisfies ⟨W x, y⟩ = ⟨x, Wᵀ y⟩.
    func testRandomWarpBackwardIsTheAdjointOfItsLinearPart() throws {
        var rng = SplitMix64(seed: 4)
        for _ in 0..<5 {
            let warp = RandomWarp(width: 20, height: 16, rng: &rng)
            XCTAssertGreaterThan(warp.outWidth, 20, "padding 12 and jitter 8+4 leave a larger view")
            let x = Tensor.random(shape: [20 * 16 * 3], in: 0...1, seed: rng.next()).scalars
            let zero = [Float](repeating: 0, count: x.count)
            let wx = zip(warp.apply(x), warp.apply(zero)).map { $0 - $1 }
            let y = Tensor.random(shape: [wx.count], in: -1...1, seed: rng.next()).scalars
            let lhs = zip(wx, y).reduce(0.0) { $0 + Double($1.0 * $1.1) }
            let rhs = zip(x, warp.backward(y)).reduce(0.0) { $0 + Double($1.0 * $1.1) }
            XCTAssertEqual(lhs, rhs, accuracy: 1e-4 * max(1, abs(lhs)))
        }
        // The identity warp changes nothing.
        let x = Tensor.random(shape: [6 * 5 * 3], in: 0...1, seed: 9).scalars
        XCTAssertEqual(RandomWarp(identityFor: 6, height: 5).apply(x), x)
    }

    func testAConcatChannelIsOptimisedBeforeTheReLUOfTheBranchThatHoldsIt() throws {
        let model = try googLeNet()
        var settings = VisualizationSettings()
        settings.steps = 1
        let v97 = try FeatureVisualization(model: model, target: .channel(layer: "inception_4c_output", channel: 97), settings: settings)
        XCTAssertEqual(v97.objectiveValue, "inception_4c_1x1_pre_relu")
        XCTAssertEqual(v97.objectiveChannel, 97)
        // 4c: 1x1 has 128 channels, then 3x3 256: channel 300 is 3x3's 172.
        let v300 = try FeatureVisualization(model: model, target: .channel(layer: "inception_4c_output", channel: 300), settings: settings)
        XCTAssertEqual(v300.objectiveValue, "inception_4c_3x3_pre_relu")
        XCTAssertEqual(v300.objectiveChannel, 172)
        settings.preReLU = false
        let post = try FeatureVisualization(model: model, target: .channel(layer: "inception_4c_output", channel: 97), settings: settings)
        XCTAssertEqual(post.objectiveValue, "inception_4c_output")
        XCTAssertThrowsError(try FeatureVisualization(model: model, target: .channel(layer: "inception_4c_output", channel: 512), settings: settings))
    }

    /// A short class visualisation is already seen as that class by the same network (through `classify`'s
    /// resize and crop), and is not the fine speckle of a dream from noise.
    func testClassVisualisationIsClassifiedAsTheClass() throws {
        let model = try googLeNet()
        var settings = VisualizationSettings()
        settings.steps = 32
        let flamingo = try model.classIndex(for: "flamingo")
        let picture = try FeatureVisualization(model: model, target: .classScore(flamingo), settings: settings).run()
        let top = try XCTUnwrap(model.classify(picture, top: 1).first)
        XCTAssertEqual(top.index, flamingo, "classified as \(top.label) \(top.probability)")
        XCTAssertGreaterThanOrEqual(top.probability, 0.5)
        let high = SpectralPower.fractionAbove(picture)
        XCTAssertLessThan(high, 0.40, "spectral power above half Nyquist: \(high)")
    }

    func testSpectralPowerSeparatesSmoothFromSpeckle() throws {
        let n = 32
        var smooth = RGBImage(width: n, height: n), speckle = RGBImage(width: n, height: n)
        for y in 0..<n {
            for x in 0..<n {
                let s = 128 + 100 * Float(sin(2 * Double.pi * Double(x) / Double(n)))
                let checker: Float = (x + y) % 2 == 0 ? 200 : 50
                for c in 0..<3 {
                    smooth.pixels[3 * (y * n + x) + c] = s
                    speckle.pixels[3 * (y * n + x) + c] = checker
                }
            }
        }
        XCTAssertLessThan(SpectralPower.fractionAbove(smooth), 1e-6, "one cycle per image is far below 0.25")
        XCTAssertGreaterThan(SpectralPower.fractionAbove(speckle), 0.999, "a checkerboard is all Nyquist")
    }

    func testMeanObjectiveIsLinearInTheChannel() throws {
        let t = Tensor(shape: [1, 2, 1, 2], scalars: [1, 2, -3, -5])
        let objective = DreamObjective(layers: [DreamLayer(name: "a", channel: 1, reduction: .mean)])
        let (value, gradients) = try objective.evaluate(["a": t])
        XCTAssertEqual(value, -4)
        XCTAssertEqual(gradients["a"]?.scalars, [0, 0, 0.5, 0.5], "ascent raises a negative channel instead of deepening it")
        let square = try DreamObjective(layers: [DreamLayer(name: "a", channel: 1)]).evaluate(["a": t])
        XCTAssertEqual(square.value, 17)
        XCTAssertEqual(square.gradients["a"]?.scalars, [0, 0, -3, -5])
    }
}
