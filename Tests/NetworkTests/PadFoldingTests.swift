import Foundation
import Network
import TestSupport
import Tensors
import XCTest

/// A zero Pad of H and W before a Conv or an AveragePool is folded into that operator's window (Inception's branch
/// pools and TensorFlow exports pad explicitly): the same values and gradients as the two nodes run one after the
/// other, and no folding where the Pad is anything else or its output is wanted.
final class PadFoldingTests: XCTestCase {
    static let x = Tensor.random(shape: [1, 3, 7, 9], in: -2...2, seed: 7)
    /// [N, C, H, W] begins then ends: 1 row on top, 2 columns left, 2 rows below, 1 column right.
    static let pads: [Int64] = [0, 0, 1, 2, 0, 0, 2, 1]

    /// input -> Pad -> `consumer` (-> Relu for a Conv) -> out.
    static func graph(consumer: String, pads: [Int64] = pads, mode: String = "constant", value: Float? = nil,
                      poolAttributes: [String: AttributeValue] = [:]) -> Graph {
        var initializers: [String: Value] = ["pads": .int(IntTensor(shape: [pads.count], values: pads))]
        var padInputs = ["input", "pads"]
        if let value {
            initializers["value"] = .float(Tensor(value))
            padInputs.append("value")
        }
        var nodes = [Node(name: "pad", opType: "Pad", inputs: padInputs, outputs: ["p"], attributes: ["mode": .string(mode)])]
        if consumer == "Conv" {
            initializers["w"] = .float(Tensor.random(shape: [5, 3, 3, 3], in: -0.5...0.5, seed: 8))
            initializers["b"] = .float(Tensor.random(shape: [5], in: -0.5...0.5, seed: 9))
            nodes.append(Node(name: "conv", opType: "Conv", inputs: ["p", "w", "b"], outputs: ["c"],
                              attributes: ["kernel_shape": .ints([3, 3]), "strides": .ints([1, 2])]))
            nodes.append(Node(name: "relu", opType: "Relu", inputs: ["c"], outputs: ["out"]))
        } else {
            var attributes = poolAttributes
            attributes["kernel_shape"] = attributes["kernel_shape"] ?? .ints([3, 3])
            nodes.append(Node(name: "pool", opType: "AveragePool", inputs: ["p"], outputs: ["out"], attributes: attributes))
        }
        return Graph(name: "padded", nodes: nodes, initializers: initializers,
                     inputs: [ValueInfo(name: "input", shape: [1, 3, nil, nil])], outputs: [ValueInfo(name: "out")], opsetVersion: 13)
    }

    static func labels(_ graph: Graph, fused: Bool, outputs: [String] = ["out"]) throws -> [String] {
        let e = try GraphExecutor(graph: graph)
        e.fusesLayers = fused
        var labels: [String] = []
        _ = try e.forward(["input": .float(x)], outputs: outputs, recordingFor: [], onStep: { labels.append($0.label) })
        return labels
    }

    /// out and d(Σ upstream·out)/d input, fused or node by node.
    static func run(_ graph: Graph, fused: Bool) throws -> (out: Tensor, dx: Tensor) {
        let e = try GraphExecutor(graph: graph)
        e.fusesLayers = fused
        var tape = try e.forward(["input": .float(x)], outputs: ["out"], recordingFor: ["input"])
        let out = try XCTUnwrap(tape.values["out"]?.floatTensor)
        let upstream = Tensor.random(shape: out.shape, seed: 10)
        let dx = try XCTUnwrap(try e.backward(&tape, seeds: ["out": upstream])["input"])
        return (out, dx)
    }

    func testAZeroPadBeforeAConvJoinsItsWindow() throws {
        let graph = Self.graph(consumer: "Conv")
        XCTAssertEqual(try Self.labels(graph, fused: true), ["Pad+Conv+Relu"])
        XCTAssertEqual(try Self.labels(graph, fused: false), ["Pad", "Conv", "Relu"])
        let (a, dxA) = try Self.run(graph, fused: true), (b, dxB) = try Self.run(graph, fused: false)
        XCTAssertEqual(a.shape, [1, 5, 8, 5])
        // Both sum the same 27 products (the padded ones are zeros either way) in kernels that may order them
        // differently: each output within 2·γ(27)·Σ|w·x| + |b| of the other, Σ|w·x| <= 27 · 0.5 · 2.
        let bound: Double = 2 * 28 * Double(Float.ulpOfOne) / 2 * (27 * 0.5 * 2 + 0.5)
        XCTAssertLessThanOrEqual(a.maxAbsDifference(b), Float(bound))
        // dx: each input element gathers at most 5 channels × 9 taps of upstream·w (|·| <= 0.5 · 1 for the
        // uniform upstream in [-1, 1]) in either order.
        let gradientBound: Double = 2 * 46 * Double(Float.ulpOfOne) / 2 * (45 * 0.5)
        XCTAssertEqual(dxA.shape, Self.x.shape)
        XCTAssertLessThanOrEqual(dxA.maxAbsDifference(dxB), Float(gradientBound))
    }

    func testAZeroPadBeforeAnAveragePoolCountsItsZerosAsTheUnfoldedPoolDoes() throws {
        let variants: [[String: AttributeValue]] = [
            [:], ["count_include_pad": .int(1), "pads": .ints([1, 0, 0, 1])], ["strides": .ints([2, 1])],
        ]
        for poolAttributes in variants {
            let graph = Self.graph(consumer: "AveragePool", poolAttributes: poolAttributes)
            XCTAssertEqual(try Self.labels(graph, fused: true), ["Pad+AveragePool"], "\(poolAttributes)")
            let (a, dxA) = try Self.run(graph, fused: true), (b, dxB) = try Self.run(graph, fused: false)
            // The same real terms in the same order (the unfolded pool adds the Pad's zeros too, which changes no
            // sum but the sign of a zero), the same divisors.
            XCTAssertEqual(a.shape, b.shape)
            XCTAssertEqual(a.scalars, b.scalars, "\(poolAttributes)")
            // Each dx gathers at most 9 shares below 1/4 in magnitude.
            let gradientBound: Double = 2 * 10 * Double(Float.ulpOfOne) / 2 * 9 * 0.25
            XCTAssertLessThanOrEqual(dxA.maxAbsDifference(dxB), Float(gradientBound), "\(poolAttributes)")
        }
    }

    func testOtherPadsAndWantedPadOutputsAreNotFolded() throws {
        let cases: [(String, Graph, [String])] = [
            ("a non-zero value", Self.graph(consumer: "Conv", value: 0.5), ["out"]),
            ("reflect mode", Self.graph(consumer: "Conv", mode: "reflect"), ["out"]),
            ("channels padded", Self.graph(consumer: "AveragePool", pads: [0, 1, 1, 1, 0, 0, 1, 1]), ["out"]),
            ("a crop", Self.graph(consumer: "Conv", pads: [0, 0, -1, 1, 0, 0, 1, 1]), ["out"]),
            ("the Pad's output requested", Self.graph(consumer: "Conv"), ["out", "p"]),
            ("ceil_mode", Self.graph(consumer: "AveragePool", poolAttributes: ["ceil_mode": .int(1)]), ["out"]),
            ("own padding not counted", Self.graph(consumer: "AveragePool", poolAttributes: ["pads": .ints([1, 1, 1, 1])]), ["out"]),
            ("padding wider than the pool", Self.graph(consumer: "AveragePool", pads: [0, 0, 3, 0, 0, 0, 0, 0]), ["out"]),
        ]
        for (name, graph, outputs) in cases {
            let labels = try Self.labels(graph, fused: true, outputs: outputs)
            XCTAssertEqual(labels.first, "Pad", "\(name): \(labels)")
            // And what runs instead still gives the node-by-node values.
            let e = try GraphExecutor(graph: graph), plain = try GraphExecutor(graph: graph)
            plain.fusesLayers = false
            XCTAssertEqual(try e.run(["input": .float(Self.x)], outputs: ["out"])["out"]?.floatTensor?.scalars,
                           try plain.run(["input": .float(Self.x)], outputs: ["out"])["out"]?.floatTensor?.scalars, name)
        }
    }
}
