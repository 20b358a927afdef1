import Foundation
import Network
import Tensors
import XCTest

/// A small MobileNet/ResNet-style graph (depthwise Conv, BatchNormalization, Clip, residual Add, HardSwish, pools,
/// Gemm, Softmax), run through ONNX export + import, checked end to end: the executor's backward against central
/// finite differences of its own forward, for the input and for parameters.
final class GraphGradientTests: XCTestCase {
    static func makeGraph() -> Graph {
        var parameters: [String: Value] = [:]
        var seed: UInt64 = 1
        func param(_ name: String, _ shape: [Int], _ range: ClosedRange<Float> = -0.5...0.5) -> String {
            seed += 1
            parameters[name] = .float(Tensor.random(shape: shape, in: range, seed: seed))
            return name
        }
        func bn(_ prefix: String, _ c: Int) -> [String] {
            [param("\(prefix).scale", [c], 0.5...1.5), param("\(prefix).bias", [c]), param("\(prefix).mean", [c]),
             param("\(prefix).var", [c], 0.5...1.5)]
        }
        let nodes: [Node] = [
            Node(name: "conv1", opType: "Conv", inputs: ["input", param("conv1.w", [8, 3, 3, 3]), param("conv1.b", [8])],
                 outputs: ["c1"], attributes: ["pads": .ints([1, 1, 1, 1])]),
            Node(name: "bn1", opType: "BatchNormalization", inputs: ["c1"] + bn("bn1", 8), outputs: ["b1"]),
            Node(name: "relu6", opType: "Clip", inputs: ["b1", param("zero", []), param("six", [])], outputs: ["r1"]),
            Node(name: "dw", opType: "Conv", inputs: ["r1", param("dw.w", [8, 1, 3, 3])], outputs: ["d1"],
                 attributes: ["group": .int(8), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])]),
            Node(name: "bn2", opType: "BatchNormalization", inputs: ["d1"] + bn("bn2", 8), outputs: ["b2"]),
            Node(name: "relu", opType: "Relu", inputs: ["b2"], outputs: ["r2"]),
            Node(name: "pw", opType: "Conv", inputs: ["r2", param("pw.w", [8, 8, 1, 1]), param("pw.b", [8])], outputs: ["p1"]),
            Node(name: "residual", opType: "Add", inputs: ["p1", "d1"], outputs: ["s1"]),
            Node(name: "hswish", opType: "HardSwish", inputs: ["s1"], outputs: ["h1"]),
            Node(name: "pool", opType: "MaxPool", inputs: ["h1"], outputs: ["m1"],
                 attributes: ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2]), "ceil_mode": .int(1)]),
            Node(name: "avg", opType: "AveragePool", inputs: ["h1"], outputs: ["a1"],
                 attributes: ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])]),
            Node(name: "mix", opType: "Mul", inputs: ["m1", "a1"], outputs: ["x1"]),
            Node(name: "gap", opType: "GlobalAveragePool", inputs: ["x1"], outputs: ["g1"]),
            Node(name: "flat", opType: "Flatten", inputs: ["g1"], outputs: ["f1"]),
            Node(name: "fc", opType: "Gemm", inputs: ["f1", param("fc.w", [5, 8]), param("fc.b", [5])], outputs: ["logits"],
                 attributes: ["transB": .int(1)]),
            Node(name: "softmax", opType: "Softmax", inputs: ["logits"], outputs: ["prob"]),
        ]
        parameters["zero"] = .float(Tensor(0))
        parameters["six"] = .float(Tensor(6))
        return Graph(name: "tiny", nodes: nodes, initializers: parameters,
                     inputs: [ValueInfo(name: "input", shape: [1, 3, nil, nil])],
                     outputs: [ValueInfo(name: "prob"), ValueInfo(name: "logits")], opsetVersion: 13)
    }

    func testExportedGraphRunsTheSameAfterImport() throws {
        let graph = Self.makeGraph()
        let reimported = try ONNXImporter.graph(fromSerialized: try ONNXExporter.serialize(graph), baseDirectory: nil)
        let x = Tensor.random(shape: [1, 3, 9, 11], in: -2...2, seed: 7)
        let a = try GraphExecutor(graph: graph).run(["input": .float(x)], outputs: ["prob"])["prob"]!.floatTensor!
        let b = try GraphExecutor(graph: reimported).run(["input": .float(x)], outputs: ["prob"])["prob"]!.floatTensor!
        XCTAssertEqual(a.scalars, b.scalars)
        XCTAssertEqual(a.sum(), 1, accuracy: 1e-5)
    }

    func testBackwardMatchesFiniteDifferencesForInputAndParameters() throws {
        let graph = Self.makeGraph()
        let executor = try GraphExecutor(graph: graph)
        let x = Tensor.random(shape: [1, 3, 9, 11], in: -2...2, seed: 3)
        let upstream = Tensor.random(shape: [1, 5], in: -1...1, seed: 4)
        // loss = Σ upstream · logits, with its gradient by the executor …
        var tape = try executor.forward(["input": .float(x)], outputs: ["logits"], recordingFor: ["input", "conv1.w", "dw.w", "bn2.scale", "fc.w"])
        let gradients = try executor.backward(&tape, seeds: ["logits": upstream])
        func loss(_ feeds: [String: Value], graph: Graph) throws -> Double {
            let y = try GraphExecutor(graph: graph).run(feeds, outputs: ["logits"])["logits"]!.floatTensor!
            return zip(y.scalars, upstream.scalars).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        // … and by central differences, element by element (probing a sample of elements for each tensor).
        for name in ["input", "conv1.w", "dw.w", "bn2.scale", "fc.w"] {
            let analytic = try XCTUnwrap(gradients[name], name)
            let base = name == "input" ? x : graph.initializers[name]!.floatTensor!
            var worst: Double = 0
            for i in stride(from: 0, to: base.count, by: max(1, base.count / 25)) {
                let eps: Float = 2e-3
                var plus = base, minus = base
                plus[flat: i] += eps
                minus[flat: i] -= eps
                var gPlus = graph, gMinus = graph
                var feedsPlus: [String: Value] = ["input": .float(x)], feedsMinus = feedsPlus
                if name == "input" { feedsPlus["input"] = .float(plus); feedsMinus["input"] = .float(minus) }
                else { gPlus.initializers[name] = .float(plus); gMinus.initializers[name] = .float(minus) }
                let numeric = (try loss(feedsPlus, graph: gPlus) - loss(feedsMinus, graph: gMinus)) / Double(2 * eps)
                worst = max(worst, abs(numeric - Double(analytic[flat: i])) / max(1e-2, abs(numeric)))
            }
            XCTAssertLessThan(worst, 3e-2, "\(name): worst relative difference \(worst)")
        }
    }

    func testUnsupportedOperatorsFailAtLoadNamingOperatorAndNode() throws {
        var graph = Self.makeGraph()
        graph.nodes.insert(Node(name: "mystery_node", opType: "Einsum", inputs: ["input"], outputs: ["e"]), at: 0)
        XCTAssertThrowsError(try GraphExecutor(graph: graph)) { error in
            XCTAssertTrue("\(error)".contains("Einsum") && "\(error)".contains("mystery_node"), "\(error)")
        }
    }

    func testForwardToAnIntermediateValueSkipsTheRest() throws {
        var graph = Self.makeGraph()
        // A node after the requested value that would fail if it ran.
        graph.nodes.append(Node(name: "broken", opType: "Reshape", inputs: ["prob", "input"], outputs: ["never"]))
        let x = Tensor.random(shape: [1, 3, 9, 11], in: -2...2, seed: 7)
        let values = try GraphExecutor(graph: graph).run(["input": .float(x)], outputs: ["s1"])
        XCTAssertEqual(values["s1"]?.shape, [1, 8, 5, 6])
    }

    func testLayerNamesResolveNodeNamesOutputsAndAbbreviations() throws {
        let names = LayerNames(graph: Self.makeGraph())
        XCTAssertEqual(try names.resolve("residual"), "s1")
        XCTAssertEqual(try names.resolve("s1"), "s1")
        XCTAssertEqual(try names.resolve("hswi"), "h1")
        XCTAssertThrowsError(try names.resolve("resdual")) { error in XCTAssertTrue("\(error)".contains("residual"), "\(error)") }
    }
}
