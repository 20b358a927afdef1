import Foundation
import Network
import Tensors
import XCTest

/// The executor's Winograd weight transforms kept between passes (for frozen weights of passes with a backward) and
/// its step callback in the backward pass: gradients identical bit for bit with and without the cache, no transforms
/// kept where they could go stale or only cost memory (fed or differentiated weights, forward-only passes), and
/// backward steps reported with the gradients they computed.
final class ExecutorWeightCacheTests: XCTestCase {
    /// input [1,3,32,32] -> Conv 3x3 3→48 (too few channels for Winograd) -> Relu -> Conv 3x3 48→48 (Winograd F(4,3):
    /// 64 tiles, enough for its threads) -> Relu -> out.
    static func graph() -> Graph {
        let parameters: [String: Value] = [
            "conv1.w": .float(Tensor.random(shape: [48, 3, 3, 3], in: -0.5...0.5, seed: 1)),
            "conv1.b": .float(Tensor.random(shape: [48], in: -0.1...0.1, seed: 2)),
            "conv2.w": .float(Tensor.random(shape: [48, 48, 3, 3], in: -0.1...0.1, seed: 3)),
        ]
        let pads: [String: AttributeValue] = ["pads": .ints([1, 1, 1, 1])]
        let nodes = [
            Node(name: "conv1", opType: "Conv", inputs: ["input", "conv1.w", "conv1.b"], outputs: ["c1"], attributes: pads),
            Node(name: "relu1", opType: "Relu", inputs: ["c1"], outputs: ["r1"]),
            Node(name: "conv2", opType: "Conv", inputs: ["r1", "conv2.w"], outputs: ["c2"], attributes: pads),
            Node(name: "relu2", opType: "Relu", inputs: ["c2"], outputs: ["out"]),
        ]
        return Graph(name: "winograd", nodes: nodes, initializers: parameters,
                     inputs: [ValueInfo(name: "input", shape: [1, 3, nil, nil])], outputs: [ValueInfo(name: "out")], opsetVersion: 13)
    }

    static let x = Tensor.random(shape: [1, 3, 32, 32], in: -2...2, seed: 4)
    static let upstream = Tensor.random(shape: [1, 48, 32, 32], seed: 5)

    /// Gradients of <out, upstream> for `wrt`, with `feeds` beside the input.
    static func gradients(_ e: GraphExecutor, wrt: Set<String>, feeds: [String: Value] = [:],
                          onStep: ((ExecutedStep) -> Void)? = nil) throws -> [String: Tensor] {
        var all = feeds
        all["input"] = .float(x)
        var tape = try e.forward(all, outputs: ["out"], recordingFor: wrt, onStep: onStep)
        return try e.backward(&tape, seeds: ["out": upstream], onStep: onStep)
    }

    func testTheTestLayerRunsWinograd() {
        XCTAssertEqual(Convolution.kernel(x: [1, 48, 32, 32], weight: [48, 48, 3, 3], window: Window2D(kernel: 3, pad: 1), groups: 1),
                       .winograd4x4)
    }

    func testCachedTransformsGiveTheSameGradientsBitForBit() throws {
        let cached = try GraphExecutor(graph: Self.graph()), plain = try GraphExecutor(graph: Self.graph())
        plain.keepsTransformedWeights = false
        let expected = try XCTUnwrap(try Self.gradients(plain, wrt: ["input"])["input"])
        XCTAssertEqual(plain.cachedTransformFloats, 0)
        for pass in 1...3 {
            let dx = try XCTUnwrap(try Self.gradients(cached, wrt: ["input"])["input"])
            XCTAssertEqual(dx.scalars, expected.scalars, "pass \(pass)")
            // conv2's forward and data-gradient transforms: 36 positions of 48x48 each.
            XCTAssertEqual(cached.cachedTransformFloats, 2 * 36 * 48 * 48, "pass \(pass)")
        }
        // The forward values too.
        let a = try cached.run(["input": .float(Self.x)], outputs: ["out"])["out"]?.floatTensor
        let b = try plain.run(["input": .float(Self.x)], outputs: ["out"])["out"]?.floatTensor
        XCTAssertEqual(a?.scalars, b?.scalars)
    }

    func testForwardOnlyPassesKeepNoTransforms() throws {
        let e = try GraphExecutor(graph: Self.graph())
        _ = try e.run(["input": .float(Self.x)], outputs: ["out"])
        XCTAssertEqual(e.cachedTransformFloats, 0)
    }

    func testFedOrDifferentiatedWeightsAreNotCached() throws {
        let e = try GraphExecutor(graph: Self.graph()), plain = try GraphExecutor(graph: Self.graph())
        plain.keepsTransformedWeights = false
        // Fed weights (a trainer's): new values every call, so the gradient must follow them.
        for seed in [UInt64(10), 11] {
            let w: [String: Value] = ["conv2.w": .float(Tensor.random(shape: [48, 48, 3, 3], in: -0.1...0.1, seed: seed))]
            let dx = try XCTUnwrap(try Self.gradients(e, wrt: ["input"], feeds: w)["input"])
            let expected = try XCTUnwrap(try Self.gradients(plain, wrt: ["input"], feeds: w)["input"])
            XCTAssertEqual(dx.scalars, expected.scalars, "seed \(seed)")
        }
        XCTAssertEqual(e.cachedTransformFloats, 0)
        let g = try Self.gradients(e, wrt: ["input", "conv2.w"])
        let expected = try Self.gradients(plain, wrt: ["input", "conv2.w"])
        XCTAssertEqual(g["input"]?.scalars, expected["input"]?.scalars)
        XCTAssertEqual(g["conv2.w"]?.scalars, expected["conv2.w"]?.scalars)
        XCTAssertEqual(e.cachedTransformFloats, 0)
    }

    func testBackwardStepsAreReportedWithTheGradientsTheyCompute() throws {
        let e = try GraphExecutor(graph: Self.graph())
        var forward: [String] = [], backward: [String] = []
        var backwardShapes: [[Int]] = []
        _ = try Self.gradients(e, wrt: ["input"]) { step in
            if step.pass == .forward { forward.append(step.label) } else {
                backward.append(step.label)
                backwardShapes.append(step.outputs.first?.shape ?? [])
            }
        }
        XCTAssertEqual(forward, ["Conv+Relu", "Conv+Relu"])
        // A dream differentiates no parameter: no step computes a weight gradient.
        XCTAssertEqual(backward, ["Conv+Relu backward (dx)", "Conv+Relu backward (dx)"])
        XCTAssertEqual(backwardShapes, [[1, 48, 32, 32], [1, 3, 32, 32]])

        backward = []
        _ = try Self.gradients(e, wrt: ["conv2.w"]) { if $0.pass == .backward { backward.append($0.label) } }
        // Only conv2 is on a path from conv2.w: conv1's step records nothing and runs no backward.
        XCTAssertEqual(backward, ["Conv+Relu backward (dW)"])

        backward = []
        e.fusesLayers = false
        _ = try Self.gradients(e, wrt: ["input", "conv1.w"]) { if $0.pass == .backward { backward.append($0.label) } }
        XCTAssertEqual(backward, ["Relu backward", "Conv backward (dx)", "Relu backward", "Conv backward (dx, dW)"])
    }
}
