import Foundation
import Network
import Tensors
import TestSupport
import XCTest

/// A ShuffleNetV2 unit as PyTorch exports it with dynamic height and width: the channel split (`chunk`) as Slice with
/// bounds computed from Shape → Gather → Div → Unsqueeze, the channel shuffle (`view → transpose → reshape`) as
/// Reshape → Transpose → Reshape with target shapes computed the same way, then a Split and ReduceMean. Run at
/// several input sizes on one executor (the shape-only values are folded per size), checked against the same
/// computation written out index by index, and differentiated against finite differences.
final class ChannelShuffleGraphTests: XCTestCase {
    static let channels = 8

    static func graph() -> Graph {
        let c = channels
        var nodes: [Node] = []
        var initializers: [String: Value] = [
            "w0": .float(Tensor.random(shape: [c, c, 1, 1], in: -0.5...0.5, seed: 1)),
            "b0": .float(Tensor.random(shape: [c], in: -0.1...0.1, seed: 2)),
            "w1": .float(Tensor.random(shape: [c / 2, c / 2, 1, 1], in: -0.5...0.5, seed: 3)),
        ]
        func int(_ name: String, _ values: [Int64], shape: [Int]? = nil) -> String {
            initializers[name] = .int(IntTensor(shape: shape ?? [values.count], values: values))
            return name
        }
        func node(_ op: String, _ inputs: [String], _ name: String, _ attributes: [String: AttributeValue] = [:], outputs: [String]? = nil) -> String {
            nodes.append(Node(name: name, opType: op, inputs: inputs, outputs: outputs ?? [name], attributes: attributes))
            return name
        }
        /// Dimension `axis` of `value`'s shape as a 1-element list, the way the exporter computes it.
        func dim(_ value: String, _ axis: Int64, _ tag: String) -> String {
            let shape = node("Shape", [value], "\(tag)_shape\(axis)")
            let scalar = node("Gather", [shape, int("\(tag)_i\(axis)", [axis], shape: [])], "\(tag)_gather\(axis)", ["axis": .int(0)])
            return node("Unsqueeze", [scalar, int("\(tag)_u\(axis)", [0])], "\(tag)_dim\(axis)")
        }
        let x0 = node("Conv", ["x", "w0", "b0"], "conv0")
        // chunk(2, 1): half = (C + 1) / 2 as PyTorch writes it, then Slice [0, half) and [half, 2·half).
        let channelsNow = node("Gather", [node("Shape", [x0], "chunk_shape"), int("one", [1], shape: [])], "chunk_c", ["axis": .int(0)])
        let half = node("Div", [node("Add", [channelsNow, int("k1", [1], shape: [])], "chunk_add"), int("k2", [2], shape: [])], "chunk_div")
        let end1 = node("Unsqueeze", [node("Mul", [half, int("k1b", [1], shape: [])], "chunk_mul1"), int("ua", [0])], "chunk_end1")
        let end2 = node("Unsqueeze", [node("Mul", [half, int("k2b", [2], shape: [])], "chunk_mul2"), int("ub", [0])], "chunk_end2")
        let a = node("Slice", [x0, int("zero", [0]), end1, int("axis1", [1])], "slice_a")
        let b = node("Slice", [x0, end1, end2, int("axis1b", [1])], "slice_b")
        let b1 = node("Conv", [b, "w1"], "conv1")
        let joined = node("Concat", [a, b1], "concat", ["axis": .int(1)])
        // shuffle: view(n, 2, c/2, h, w) → transpose(1, 2) → reshape(n, c, h, w), c/2 through a Cast as exported.
        let groups = node("Cast", [node("Div", [node("Gather", [node("Shape", [joined], "shuffle_shape"), int("i1", [1], shape: [])], "shuffle_c", ["axis": .int(0)]),
                                                int("g", [2], shape: [])], "shuffle_div")], "shuffle_cast", ["to": .int(7)])
        let shape5 = node("Concat", [dim(joined, 0, "s5"), int("two", [2]), node("Unsqueeze", [groups, int("uc", [0])], "s5_c"),
                                     dim(joined, 2, "s5"), dim(joined, 3, "s5")], "shape5", ["axis": .int(0)])
        let shape4 = node("Concat", [dim(joined, 0, "s4"), dim(joined, 1, "s4"), dim(joined, 2, "s4"), dim(joined, 3, "s4")], "shape4", ["axis": .int(0)])
        let viewed = node("Reshape", [joined, shape5], "view5")
        let transposed = node("Transpose", [viewed], "transpose", ["perm": .ints([0, 2, 1, 3, 4])])
        let shuffled = node("Reshape", [transposed, shape4], "shuffled")
        _ = node("Split", [shuffled, int("split", [Int64(c / 2), Int64(c / 2)])], "split", ["axis": .int(1)], outputs: ["left", "right"])
        _ = node("Mul", ["left", "right"], "product")
        _ = node("ReduceMean", [shuffled], "pooled", ["axes": .ints([2, 3]), "keepdims": .int(0)])
        return Graph(name: "shuffle", nodes: nodes, initializers: initializers,
                     inputs: [ValueInfo(name: "x", shape: [1, c, nil, nil])],
                     outputs: [ValueInfo(name: "product"), ValueInfo(name: "pooled")], opsetVersion: 13)
    }

    /// The unit written out: 1x1 convolutions as sums, the shuffle as channel j <- (j % 2)·C/2 + j / 2.
    static func reference(_ x: Tensor, graph: Graph) -> (product: Tensor, pooled: Tensor, shuffled: Tensor) {
        let c = channels, h = x.shape[2], w = x.shape[3], plane = h * w
        let w0 = graph.initializers["w0"]!.floatTensor!, b0 = graph.initializers["b0"]!.floatTensor!, w1 = graph.initializers["w1"]!.floatTensor!
        var x0 = Tensor(shape: [1, c, h, w])
        for o in 0..<c { for p in 0..<plane {
            var s = Double(b0[flat: o])
            for i in 0..<c { s += Double(w0[flat: o * c + i]) * Double(x[flat: i * plane + p]) }
            x0[flat: o * plane + p] = Float(s)
        } }
        var joined = x0
        for o in 0..<(c / 2) { for p in 0..<plane {
            var s = 0.0
            for i in 0..<(c / 2) { s += Double(w1[flat: o * c / 2 + i]) * Double(x0[flat: (c / 2 + i) * plane + p]) }
            joined[flat: (c / 2 + o) * plane + p] = Float(s)
        } }
        var shuffled = joined
        for j in 0..<c { for p in 0..<plane { shuffled[flat: j * plane + p] = joined[flat: ((j % 2) * c / 2 + j / 2) * plane + p] } }
        var product = Tensor(shape: [1, c / 2, h, w]), pooled = Tensor(shape: [1, c])
        for j in 0..<(c / 2) { for p in 0..<plane { product[flat: j * plane + p] = shuffled[flat: j * plane + p] * shuffled[flat: (j + c / 2) * plane + p] } }
        for j in 0..<c { pooled[flat: j] = Float((0..<plane).reduce(0.0) { $0 + Double(shuffled[flat: j * plane + $1]) } / Double(plane)) }
        return (product, pooled, shuffled)
    }

    /// Float32 1x1 convolutions of 8 terms against a Double reference, then a product: within 1e-5 of values ~1.
    func testOneExecutorRunsTheUnitAtSeveralInputSizesLikeTheReference() throws {
        let graph = Self.graph()
        for fused in [true, false] {
            let executor = try GraphExecutor(graph: graph)
            executor.fusesLayers = fused
            for (k, size) in [[6, 5], [9, 7], [6, 5], [1, 1], [9, 7]].enumerated() {
                let x = Tensor.random(shape: [1, Self.channels] + size, seed: UInt64(40 + k))
                let out = try executor.run(["x": .float(x)], outputs: ["product", "pooled", "shuffled"])
                let want = Self.reference(x, graph: graph)
                for (name, expected) in [("product", want.product), ("pooled", want.pooled), ("shuffled", want.shuffled)] {
                    let got = try XCTUnwrap(out[name]?.floatTensor, name)
                    XCTAssertEqual(got.shape, expected.shape, "\(name) at \(size)")
                    XCTAssertLessThan(got.maxAbsDifference(expected), 1e-5, "\(name) at \(size), fused \(fused)")
                }
            }
        }
    }

    /// The shape arithmetic runs on the first pass at an input size and never again at that size; a new size runs it
    /// again (the values it computes are those of the new size: the test above checks the outputs).
    func testShapeArithmeticRunsOncePerInputSize() throws {
        let executor = try GraphExecutor(graph: Self.graph())
        func shapeSteps(_ size: [Int]) throws -> Int {
            var count = 0
            _ = try executor.forward(["x": .float(Tensor(shape: [1, Self.channels] + size))], outputs: ["pooled"], recordingFor: [],
                                     onStep: { step in if ["Shape", "Gather", "Unsqueeze", "Cast"].contains(step.label) { count += 1 } })
            return count
        }
        XCTAssertEqual(try shapeSteps([6, 5]), 29)
        XCTAssertEqual(try shapeSteps([6, 5]), 0)
        XCTAssertEqual(try shapeSteps([4, 4]), 29)
        XCTAssertEqual(try shapeSteps([6, 5]), 0)
    }

    /// Where nothing is differentiated, the Concat and the shuffle run as one step once the shape arithmetic is
    /// folded; with a view that is no channel
    /// shuffle of the concatenated inputs (4 groups of 2 channels, not 2 of 4) that step runs the four operators and
    /// gives what they give node by node.
    func testConcatAndShuffleRunAsOneStepOnlyWhenTheShapesAreAShuffle() throws {
        let x = Tensor.random(shape: [1, Self.channels, 5, 3], seed: 12)
        for groups: Int64 in [2, 4] {
            var graph = Self.graph()
            graph.initializers["two"] = .int(IntTensor(shape: [1], values: [groups]))
            graph.initializers["g"] = .int(IntTensor(shape: [], values: [groups]))
            let fused = try GraphExecutor(graph: graph), plain = try GraphExecutor(graph: graph)
            plain.fusesLayers = false
            var labels: [String] = []
            // The first pass at a size runs the shape arithmetic (which reads the Concat); the next ones fuse.
            _ = try fused.run(["x": .float(x)], outputs: ["product", "pooled"])
            let a = try fused.forward(["x": .float(x)], outputs: ["product", "pooled"], recordingFor: [], onStep: { labels.append($0.label) }).values
            let b = try plain.run(["x": .float(x)], outputs: ["product", "pooled"])
            XCTAssertTrue(labels.contains("Concat+Reshape+Transpose+Reshape"), "\(labels)")
            XCTAssertFalse(labels.contains("Transpose"))
            for name in ["product", "pooled"] {
                XCTAssertEqual(a[name]?.floatTensor?.scalars, b[name]?.floatTensor?.scalars, "\(name), \(groups) groups")
            }
            if groups == 2 {
                XCTAssertLessThan(try XCTUnwrap(a["pooled"]?.floatTensor).maxAbsDifference(Self.reference(x, graph: graph).pooled), 1e-5)
            }
            // A pass that differentiates runs the nodes apart (the fused step has no backward).
            var tape = try fused.forward(["x": .float(x)], outputs: ["pooled"], recordingFor: ["x"], onStep: { labels.append($0.label) })
            XCTAssertNotNil(try fused.backward(&tape, seeds: ["pooled": Tensor(shape: [1, Self.channels], repeating: 1)])["x"])
        }
    }

    /// A value folded from constants alone (a bias the exporter transposed and unsqueezed) is kept once for all sizes
    /// beside the per-size shape values; every size still gets the right result.
    func testValuesFoldedFromConstantsServeEveryInputSize() throws {
        let b = Tensor.random(shape: [1, 3], seed: 2)
        let int = { (values: [Int64]) in Value.int(IntTensor(shape: [values.count], values: values)) }
        // z = Reshape(x + Unsqueeze(Transpose(b)), [batch from Shape(y), -1])
        let g = Graph(nodes: [
            Node(name: "t", opType: "Transpose", inputs: ["b"], outputs: ["bt"], attributes: ["perm": .ints([1, 0])]),
            Node(name: "u", opType: "Unsqueeze", inputs: ["bt", "axes"], outputs: ["bu"]),
            Node(name: "add", opType: "Add", inputs: ["x", "bu"], outputs: ["y"]),
            Node(name: "shape", opType: "Shape", inputs: ["y"], outputs: ["s"]),
            Node(name: "first", opType: "Slice", inputs: ["s", "zero", "one"], outputs: ["first"]),
            Node(name: "s2", opType: "Concat", inputs: ["first", "minus1"], outputs: ["s2"], attributes: ["axis": .int(0)]),
            Node(name: "flat", opType: "Reshape", inputs: ["y", "s2"], outputs: ["z"]),
        ], initializers: ["b": .float(b), "axes": int([0, 3]), "minus1": int([-1]), "zero": int([0]), "one": int([1])],
        inputs: [ValueInfo(name: "x")], outputs: [ValueInfo(name: "z")])
        let executor = try GraphExecutor(graph: g)
        for size in [[2, 2], [3, 1], [2, 2], [1, 4]] {
            let x = Tensor.random(shape: [1, 3] + size, seed: 4)
            let z = try XCTUnwrap(try executor.run(["x": .float(x)], outputs: ["z"])["z"]?.floatTensor)
            XCTAssertEqual(z.shape, [1, 3 * size[0] * size[1]])
            let plane = size[0] * size[1]
            for i in 0..<x.count { XCTAssertEqual(z[flat: i], x[flat: i] + b[flat: i / plane], "\(size) \(i)") }
        }
    }

    /// Shape arithmetic is no layer: its nodes compute only shapes, and its Concats produce no feature maps.
    func testShapeArithmeticNodesAreNotLayers() throws {
        let graph = Self.graph()
        let executor = try GraphExecutor(graph: graph)
        func index(_ name: String) throws -> Int { try XCTUnwrap(graph.nodes.firstIndex { $0.name == name }, name) }
        for name in ["shape5", "shape4", "shuffle_cast", "chunk_div", "s5_dim0", "chunk_shape"] {
            XCTAssertTrue(executor.computesOnlyShapes(node: try index(name)), name)
        }
        for name in ["concat", "conv0", "slice_a", "view5", "transpose", "shuffled", "pooled"] {
            XCTAssertFalse(executor.computesOnlyShapes(node: try index(name)), name)
        }
        XCTAssertTrue(executor.producesFeatureMaps(node: try index("concat")))
        XCTAssertFalse(executor.producesFeatureMaps(node: try index("shape5")))
    }

    /// The graph is linear in x up to the product, so central differences are exact up to rounding.
    func testGradientThroughSliceConcatReshapeTransposeSplitAndReduceMeanMatchesFiniteDifferences() throws {
        let executor = try GraphExecutor(graph: Self.graph())
        for size in [[3, 4], [5, 2]] {
            let x = Tensor.random(shape: [1, Self.channels] + size, seed: 7)
            let up1 = Tensor.random(shape: [1, Self.channels / 2] + size, seed: 8), up2 = Tensor.random(shape: [1, Self.channels], seed: 9)
            var tape = try executor.forward(["x": .float(x)], outputs: ["product", "pooled"], recordingFor: ["x"])
            let dx = try XCTUnwrap(try executor.backward(&tape, seeds: ["product": up1, "pooled": up2])["x"])
            func dot(_ a: Tensor, _ b: Tensor) -> Double { (0..<a.count).reduce(0.0) { $0 + Double(a[flat: $1]) * Double(b[flat: $1]) } }
            func loss(_ x: Tensor) throws -> Double {
                let out = try executor.run(["x": .float(x)], outputs: ["product", "pooled"])
                return dot(out["product"]!.floatTensor!, up1) + dot(out["pooled"]!.floatTensor!, up2)
            }
            let eps: Float = 1e-2
            var worst = 0.0, scale = 0.0
            for i in 0..<x.count {
                var plus = x, minus = x
                plus[flat: i] += eps; minus[flat: i] -= eps
                let numeric = (try loss(plus) - loss(minus)) / Double(2 * eps)
                worst = max(worst, abs(numeric - Double(dx[flat: i])))
                scale = max(scale, abs(numeric))
            }
            XCTAssertLessThan(worst, 2e-3 * max(scale, 1), "at \(size)")
        }
    }

    /// The target shapes are recomputed for a new size: a graph whose Reshape had 6x5 written in would fail at 9x7
    /// with the node named, and this one does not.
    func testAReshapeWithAFixedSizeIsRefusedAtAnotherSizeWithTheNodeNamed() throws {
        var graph = Self.graph()
        graph.initializers["fixed"] = .int(IntTensor(shape: [5], values: [1, 2, 4, 6, 5]))
        let i = try XCTUnwrap(graph.nodes.firstIndex { $0.name == "view5" })
        graph.nodes[i].inputs[1] = "fixed"
        let executor = try GraphExecutor(graph: graph)
        XCTAssertNoThrow(try executor.run(["x": .float(Tensor(shape: [1, 8, 6, 5]))], outputs: ["pooled"]))
        XCTAssertThrowsError(try executor.run(["x": .float(Tensor(shape: [1, 8, 9, 7]))], outputs: ["pooled"])) { error in
            XCTAssertTrue("\(error)".contains("view5") && "\(error)".contains("element counts differ"), "\(error)")
        }
    }

    /// onnxruntime runs the same file at two sizes and gives the same outputs (skipped without python3/onnxruntime).
    func testOnnxruntimeGivesTheSameOutputsAtTwoSizes() throws {
        try PythonScript.require("onnxruntime, numpy", for: "the onnxruntime cross-check")
        let dir = try SharedData.temporaryDirectory(for: self)
        let graph = Self.graph()
        let model = dir.appendingPathComponent("shuffle.onnx")
        try ONNXExporter.write(graph, to: model)
        let executor = try GraphExecutor(graph: graph)
        for size in [[6, 5], [11, 4]] {
            let x = Tensor.random(shape: [1, Self.channels] + size, seed: 77)
            let input = dir.appendingPathComponent("x.npy")
            try NumPyFile.write(.float(x), to: input)
            let script = """
            import json, sys, numpy as np, onnxruntime as ort
            s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
            product, pooled = s.run(["product", "pooled"], {"x": np.load(sys.argv[2])})
            print(json.dumps({"product": product.ravel().tolist(), "pooled": pooled.ravel().tolist()}))
            """
            let data = try PythonScript.run(script, arguments: [model.path, input.path])
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
            let ours = try executor.run(["x": .float(x)], outputs: ["product", "pooled"])
            for name in ["product", "pooled"] {
                let theirs = try XCTUnwrap(object[name] as? [Double]), mine = ours[name]!.floatTensor!.scalars
                XCTAssertEqual(theirs.count, mine.count, name)
                for (t, m) in zip(theirs, mine) { XCTAssertEqual(t, Double(m), accuracy: 1e-5, "\(name) at \(size)") }
            }
        }
    }
}
