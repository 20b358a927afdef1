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
