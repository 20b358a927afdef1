import Dreaming
import Foundation
import Tensors
import XCTest

/// The dream objectives and their gradients with respect to the activations, against hand values and central
/// finite differences (the objectives are quadratic or piecewise linear, so the differences are exact but for rounding).
final class DreamObjectiveTests: XCTestCase {
    func numericGradient(_ objective: DreamObjective, layer: String, at a: Tensor, eps: Float = 1e-2) throws -> [Double] {
        try (0..<a.count).map { i in
            var plus = a, minus = a
            plus[flat: i] += eps
            minus[flat: i] -= eps
            return (try objective.evaluate([layer: plus]).value - objective.evaluate([layer: minus]).value) / Double(2 * eps)
        }
    }

    func testMeanSquareWithWeightsAndChannelsMatchesHandValuesAndFiniteDifferences() throws {
        let a = Tensor(shape: [1, 2, 1, 2], scalars: [1, -2, 3, 4])
        let plain = DreamObjective(layers: [DreamLayer(name: "x")])
        XCTAssertEqual(try plain.evaluate(["x": a]).value, 7.5, accuracy: 1e-9, "(1 + 4 + 9 + 16) / 4")
        let weighted = DreamObjective(layers: [DreamLayer(name: "x", weight: 0.5), DreamLayer(name: "x", weight: 2, channel: 1)])
        let (value, gradients) = try weighted.evaluate(["x": a])
        let expected: Double = 0.5 * 7.5 + 2 * 12.5   // 0.5 · mean(a²) + 2 · mean(channel 1²)
        XCTAssertEqual(value, expected, accuracy: 1e-9)
        let plainGradient: [Float] = try XCTUnwrap(plain.evaluate(["x": a]).gradients["x"]).scalars
        XCTAssertEqual(plainGradient, [0.5, -1, 1.5, 2], "2a/n")
        let weightedGradient: [Float] = try XCTUnwrap(gradients["x"]).scalars
        let checks: [(DreamObjective, [Float])] = [(plain, plainGradient), (weighted, weightedGradient)]
        for (objective, g) in checks {
            let numeric = try numericGradient(objective, layer: "x", at: a)
            for i in g.indices { XCTAssertEqual(Double(g[i]), numeric[i], accuracy: 1e-4) }
        }
    }

    func testGuidedObjectiveMatchesEachPositionToItsBestGuideFeature() throws {
        var objective = DreamObjective(layers: [DreamLayer(name: "x")])
        objective.guideFeatures["x"] = Tensor(shape: [2, 2], scalars: [1, 0, 0, 1])   // guide positions (1, 0) and (0, 1)
        let a = Tensor(shape: [1, 2, 1, 2], scalars: [3, 0.5, 1, 2])                 // positions (3, 1) and (0.5, 2)
        let (value, gradients) = try objective.evaluate(["x": a])
        XCTAssertEqual(value, 2.5, accuracy: 1e-9, "each position's best dot product, averaged")
        let g = try XCTUnwrap(gradients["x"]).scalars
        XCTAssertEqual(g, [0.5, 0, 0, 0.5])
        for (n, e) in zip(try numericGradient(objective, layer: "x", at: a, eps: 1e-3), g) { XCTAssertEqual(Double(e), n, accuracy: 1e-3) }
    }

    func testAChannelTheLayerDoesNotHaveIsADreamError() {
        let objective = DreamObjective(layers: [DreamLayer(name: "x", channel: 5)])
        XCTAssertThrowsError(try objective.evaluate(["x": Tensor(shape: [1, 2, 1, 1])])) { error in
            XCTAssertEqual(error as? DreamError, .channelOutOfRange(layer: "x", channel: 5, channels: 2))
            XCTAssertEqual((error as? LocalizedError)?.errorDescription, "channel 5 is out of range: x has 2 channels (0…1)")
        }
    }
}

/// Channel lists per layer and per-layer normalisation.
extension DreamObjectiveTests {
    func testLayerSpecsParseWeightsAndChannelLists() throws {
        XCTAssertEqual(try DreamLayer(parsing: "inception_4c_output:1:97,130"), DreamLayer(name: "inception_4c_output", channels: [97, 130]))
        XCTAssertEqual(try DreamLayer(parsing: "conv2_3x3:0.5"), DreamLayer(name: "conv2_3x3", weight: 0.5))
        XCTAssertEqual(try DreamLayer(parsing: "a::3"), DreamLayer(name: "a", channels: [3]))
        XCTAssertEqual(try DreamLayer(parsing: "scope:x:0.5"), DreamLayer(name: "scope:x", weight: 0.5), "colons in names survive")
        XCTAssertEqual(try DreamLayer(parsing: "a:2:5"), DreamLayer(name: "a", weight: 2, channels: [5]))
        XCTAssertThrowsError(try DreamLayer(parsing: "a:1:97,x")) { error in
            XCTAssertTrue("\(error)".contains("layer[:weight[:channels]]"), "\(error)")
        }
        XCTAssertThrowsError(try DreamLayer(parsing: "a:1:-3,4"))
        XCTAssertEqual(DreamLayer(name: "a", channels: [97, 130]).description, "a[channels 97,130]:1.0")
    }

    func testAChannelListAveragesOverTheUnionOfItsChannels() throws {
        let a = Tensor(shape: [1, 3, 1, 2], scalars: [1, -2, 3, 4, 5, -6])
        let objective = DreamObjective(layers: [DreamLayer(name: "x", channels: [2, 0])])
        let (value, gradients) = try objective.evaluate(["x": a])
        XCTAssertEqual(value, (1 + 4 + 25 + 36) / 4, accuracy: 1e-9, "mean of the squares of channels 0 and 2")
        let g = try XCTUnwrap(gradients["x"]).scalars
        let numeric = try numericGradient(objective, layer: "x", at: a)
        for i in g.indices { XCTAssertEqual(Double(g[i]), numeric[i], accuracy: 1e-4) }
        XCTAssertEqual(g[2], 0)
        XCTAssertEqual(g[3], 0, "channel 1 is not chosen")
    }

    func testNormalizersDivideEachLayersTermAndItsGradient() throws {
        let a = Tensor(shape: [1, 2, 1, 2], scalars: [1, -2, 3, 4])
        let b = Tensor(shape: [1, 1, 1, 2], scalars: [10, 20])
        var objective = DreamObjective(layers: [DreamLayer(name: "a"), DreamLayer(name: "b", weight: 0.5)])
        let raw = try objective.evaluateLayers(["a": a, "b": b])
        XCTAssertEqual(raw.layerValues[0], 7.5, accuracy: 1e-9)
        XCTAssertEqual(raw.layerValues[1], 250, accuracy: 1e-9)
        objective.normalizers = raw.layerValues
        let normalised = try objective.evaluateLayers(["a": a, "b": b])
        XCTAssertEqual(normalised.value, 1 + 0.5, accuracy: 1e-9, "on the reference itself each term is 1 · its weight")
        XCTAssertEqual(normalised.layerValues, raw.layerValues, "layer values stay unnormalised")
        let ga = try XCTUnwrap(normalised.gradients["a"]).scalars, gb = try XCTUnwrap(normalised.gradients["b"]).scalars
        let rawA = try XCTUnwrap(raw.gradients["a"]).scalars, rawB = try XCTUnwrap(raw.gradients["b"]).scalars
        for i in ga.indices { XCTAssertEqual(ga[i], rawA[i] / 7.5, accuracy: 1e-6) }
        for i in gb.indices { XCTAssertEqual(gb[i], rawB[i] / 250, accuracy: 1e-6) }
        let numeric = try numericGradient(objective, layer: "b", at: b)
        for i in gb.indices { XCTAssertEqual(Double(gb[i]), numeric[i], accuracy: 1e-4) }
    }
}
