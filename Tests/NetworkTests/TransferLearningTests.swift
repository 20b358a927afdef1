import XCTest
import Network
import Tensors

/// Parameters, optimisers and head surgery on a small hand-built classifier:
/// input [N,2,5,5] → Conv(3 filters 3x3) → Relu → GlobalAveragePool → Flatten → Gemm(5 classes) → Softmax.
final class TransferLearningTests: XCTestCase {
    func smallClassifier() -> Graph {
        Graph(name: "small", nodes: [
            Node(name: "conv", opType: "Conv", inputs: ["input", "conv_W", "conv_B"], outputs: ["conv_out"], attributes: ["pads": .ints([1, 1, 1, 1])]),
            Node(name: "relu", opType: "Relu", inputs: ["conv_out"], outputs: ["relu_out"]),
            Node(name: "gap", opType: "GlobalAveragePool", inputs: ["relu_out"], outputs: ["pooled"]),
            Node(name: "flat", opType: "Flatten", inputs: ["pooled"], outputs: ["features"]),
            Node(name: "fc", opType: "Gemm", inputs: ["features", "fc_W", "fc_B"], outputs: ["old_logits"], attributes: ["transB": .int(1)]),
            Node(name: "softmax", opType: "Softmax", inputs: ["old_logits"], outputs: ["old_prob"], attributes: ["axis": .int(1)]),
        ], initializers: [
            "conv_W": .float(Tensor.random(shape: [3, 2, 3, 3], in: -0.5...0.5, seed: 1)),
            "conv_B": .float(Tensor.random(shape: [3], in: 0...0.2, seed: 2)),
            "fc_W": .float(Tensor.random(shape: [5, 3], seed: 3)),
            "fc_B": .float(Tensor.random(shape: [5], seed: 4)),
        ], initializerOrder: ["conv_W", "conv_B", "fc_W", "fc_B"],
        inputs: [ValueInfo(name: "input", shape: [nil, 2, 5, 5])], outputs: [ValueInfo(name: "old_prob")])
    }

    func newHead(_ graph: Graph, classes: Int = 4, activation: HeadActivation = .softmax) throws -> NewHead {
        try HeadSurgery.replaceHead(of: graph, feature: "features", featureShape: [1, 3], outputs: classes, activation: activation,
                                    weight: Tensor.random(shape: [classes, 3], seed: 9), bias: Tensor.random(shape: [classes], seed: 10))
    }

    func testDefaultFeatureTensorIsTheLastClassifiersInput() throws {
        XCTAssertEqual(try HeadSurgery.defaultFeatureTensor(of: smallClassifier()), "features")
    }

    func testReplacingTheHeadPrunesTheOldOneAndExportsLogitsAndProb() throws {
        let head = try newHead(smallClassifier())
        let g = head.graph
        XCTAssertNil(g.initializers["fc_W"], "old head weights pruned")
        XCTAssertNil(g.initializers["fc_B"])
        XCTAssertFalse(g.nodes.contains { $0.name == "fc" || $0.name == "softmax" })
        XCTAssertEqual(g.outputs.map(\.name), ["logits", "prob"])
        XCTAssertEqual(head.weight, "head_W")
        // Round trip through ONNX: same outputs.
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("head-\(UUID().uuidString).onnx")
        defer { try? FileManager.default.removeItem(at: url) }
        try ONNXExporter.write(g, to: url)
        let back = try ONNXImporter.load(contentsOf: url)
        let x = Tensor.random(shape: [2, 2, 5, 5], seed: 5)
        let a = try GraphExecutor(graph: g).run(["input": .float(x)], outputs: ["prob"])["prob"]!.floatTensor!
        let b = try GraphExecutor(graph: back).run(["input": .float(x)], outputs: ["prob"])["prob"]!.floatTensor!
        XCTAssertEqual(a.shape, [2, 4])
        XCTAssertEqual(a.scalars, b.scalars)
        for r in 0..<2 { XCTAssertEqual((0..<4).map { Double(a[r, $0]) }.reduce(0, +), 1, accuracy: 1e-6) }
    }

    func testSpatialFeaturesGetPooledAndFlattened() throws {
        let head = try HeadSurgery.replaceHead(of: smallClassifier(), feature: "relu_out", featureShape: [1, 3, 5, 5], outputs: 2,
                                               activation: .sigmoid, weight: Tensor(shape: [2, 3]), bias: Tensor(shape: [2]))
        XCTAssertEqual(head.graph.nodes.suffix(4).map(\.opType), ["GlobalAveragePool", "Flatten", "Gemm", "Sigmoid"])
        let y = try GraphExecutor(graph: head.graph).run(["input": .float(Tensor.random(shape: [1, 2, 5, 5], seed: 1))], outputs: ["prob"])
        XCTAssertEqual(y["prob"]!.floatTensor!.scalars, [0.5, 0.5])
    }

    /// The head's gradients through the executor (Gemm backward + the fused loss) against central differences of the
    /// loss in the head weights, the bias, and, with the last conv unfrozen, the conv weights.
    func testHeadAndBackboneGradientsMatchFiniteDifferences() throws {
        // Positive inputs and conv weights: every ReLU input is positive, so no perturbation crosses the kink.
        var graph = smallClassifier()
        graph.initializers["conv_W"] = .float(Tensor.random(shape: [3, 2, 3, 3], in: 0.05...0.5, seed: 1))
        let head = try newHead(graph)
        let executor = try GraphExecutor(graph: head.graph)
        let x = Tensor.random(shape: [3, 2, 5, 5], in: 0...1, seed: 7)
        let targets = Tensor(shape: [3, 4], scalars: [1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1])
        var parameters = Parameters(executor: executor)
        try parameters.unfreeze([head.weight, head.bias, "conv_W"])
        func loss(_ values: [String: Tensor]) throws -> Double {
            var feeds: [String: Value] = ["input": .float(x)]
            for (k, v) in values { feeds[k] = .float(v) }
            let z = try executor.run(feeds, outputs: ["logits"])["logits"]!.floatTensor!
            return Double(Loss.categoricalCrossEntropy.evaluate(z, targets: targets).loss)
        }
        var feeds = parameters.trainableValues
        feeds["input"] = .float(x)
        var tape = try executor.forward(feeds, outputs: ["logits"], recordingFor: Set(parameters.trainableNames))
        let z = tape.values["logits"]!.floatTensor!
        let grads = try executor.backward(&tape, seeds: ["logits": Loss.categoricalCrossEntropy.evaluate(z, targets: targets).gradient])
        for name in parameters.trainableNames {
            let g = try XCTUnwrap(grads[name], name)
            let base = parameters.values[name]!
            var worst = 0.0, scale = 0.0
            for i in 0..<base.count {
                var plus = base, minus = base
                plus[flat: i] += 1e-3; minus[flat: i] -= 1e-3
                var vp = parameters.values.filter { parameters.trainable.contains($0.key) }, vm = vp
                vp[name] = plus; vm[name] = minus
                let numeric = (try loss(vp) - loss(vm)) / 2e-3
                worst = max(worst, abs(numeric - Double(g[flat: i])))
                scale = max(scale, abs(numeric))
            }
            // The Float32 loss (~1.4, rounding ~1e-7) differenced over 2e-3 is good to ~1e-4 absolute, and the
            // curvature term is ~eps²: 2 % of the largest entry (~0.05) covers both.
            XCTAssertLessThan(worst, 2e-2 * scale, "\(name)")
        }
    }

    func testParametersFollowParameterFreezingAndUnfreezeFromALayer() throws {
        let g = try newHead(smallClassifier()).graph
        let executor = try GraphExecutor(graph: g)
        var p = Parameters(executor: executor)
        XCTAssertEqual(p.names, ParameterFreezing(executor: executor).parameterNames)
        XCTAssertTrue(p.trainable.isEmpty)
        try p.unfreeze(from: "relu_out", in: executor)
        let frozen = try ParameterFreezing(executor: executor).frozen(beforeLayer: "relu_out")
        XCTAssertEqual(p.trainable, Set(p.names).subtracting(frozen))
        XCTAssertEqual(p.trainable, ["head_W", "head_B"])
        XCTAssertEqual(p.unfreeze(prefix: "conv"), 2)
        XCTAssertEqual(p.trainableCount, p.totalCount)
        XCTAssertThrowsError(try p.unfreeze(["no_such"]))
    }

    func testOptimizersMatchHandComputedSteps() throws {
        let g = Graph(nodes: [Node(name: "n", opType: "Mul", inputs: ["x", "w"], outputs: ["y"])],
                      initializers: ["w": .float(Tensor(shape: [2], scalars: [1, -2])), "frozen": .float(Tensor(shape: [1], scalars: [3]))],
                      inputs: [ValueInfo(name: "x")], outputs: [ValueInfo(name: "y")])
        var p = Parameters(executor: try GraphExecutor(graph: g))
        try p.unfreeze(["w"])
        let grad = ["w": Tensor(shape: [2], scalars: [0.5, -1])]
        // SGD, momentum 0.9, weight decay 0.1: v1 = g + λw; w1 = w - lr v1; v2 = 0.9 v1 + g + λw1.
        var sgd = SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 0.1)
        var q = p
        sgd.step(&q, gradients: grad)
        sgd.step(&q, gradients: grad)
        var w: [Double] = [1, -2], v: [Double] = [0, 0]
        for _ in 0..<2 { for i in 0..<2 { v[i] = 0.9 * v[i] + [0.5, -1][i] + 0.1 * w[i]; w[i] -= 0.1 * v[i] } }
        for i in 0..<2 { XCTAssertEqual(Double(q.values["w"]![flat: i]), w[i], accuracy: 1e-6) }
        // Adam's first step moves every coordinate by lr·sign(g) (bias-corrected m/sqrt(v) = g/|g|).
        var adam = Adam(learningRate: 0.01)
        q = p
        adam.step(&q, gradients: grad)
        XCTAssertEqual(q.values["w"]!.scalars[0], 1 - 0.01, accuracy: 1e-6)
        XCTAssertEqual(q.values["w"]!.scalars[1], -2 + 0.01, accuracy: 1e-6)
        // AdamW: the decay is applied outside the adaptive step: w -= lr (sign(g) + λ w).
        var adamw = Adam(learningRate: 0.01, weightDecay: 0.5, decoupled: true)
        q = p
        adamw.step(&q, gradients: grad)
        XCTAssertEqual(q.values["w"]!.scalars[0], 1 - 0.01 * (1 + 0.5 * 1), accuracy: 1e-6)
        XCTAssertEqual(q.values["w"]!.scalars[1], -2 - 0.01 * (-1 + 0.5 * -2), accuracy: 1e-6)
        // State is keyed by name and restores exactly.
        var restored = Adam(learningRate: 0.01, weightDecay: 0.5, decoupled: true)
        restored.restore(state: adamw.state, steps: adamw.steps)
        var r1 = q, r2 = q
        adamw.step(&r1, gradients: grad)
        restored.step(&r2, gradients: grad)
        XCTAssertEqual(r1.values["w"]!.scalars, r2.values["w"]!.scalars)
        XCTAssertEqual(Set(adamw.state.keys), ["w/m", "w/v"])
    }
}
