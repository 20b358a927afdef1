import Foundation
import Network
import TestSupport
import Tensors
import XCTest

/// Fused steps (a Conv with the BatchNormalization and activation after it) against the same graph run node by
/// node: the same values where the arithmetic is the same (bias + activation: bit for bit), within the rounding
/// bound of the fold where BatchNormalization is folded into the weights, the same gradients, and fusion only
/// where nothing a caller asked for, observes or differentiates disappears.
final class LayerFusionTests: XCTestCase {
    /// u = 2^-24, the unit roundoff of Float.
    static let unitRoundoff = Double(Float.ulpOfOne) / 2

    /// input -> Conv(3x3, pad 1, bias) -> [BatchNormalization] -> [activation] -> Conv(1x1) "head" -> out.
    /// Returns the graph and the names of (conv output, bn output, activation output).
    static func chain(batchNorm: Bool, activation: String?, opset: Int = 13, channels: Int = 6, seed: UInt64 = 1) -> Graph {
        var parameters: [String: Value] = [:]
        var seed = seed
        func param(_ name: String, _ shape: [Int], _ range: ClosedRange<Float> = -0.5...0.5) -> String {
            seed += 1
            parameters[name] = .float(Tensor.random(shape: shape, in: range, seed: seed))
            return name
        }
        var nodes = [Node(name: "conv", opType: "Conv", inputs: ["input", param("conv.w", [channels, 3, 3, 3]), param("conv.b", [channels])],
                          outputs: ["c"], attributes: ["pads": .ints([1, 1, 1, 1])])]
        var last = "c"
        if batchNorm {
            nodes.append(Node(name: "bn", opType: "BatchNormalization",
                              inputs: ["c", param("bn.scale", [channels], 0.5...1.5), param("bn.bias", [channels]),
                                       param("bn.mean", [channels]), param("bn.var", [channels], 0.2...1.5)],
                              outputs: ["b"], attributes: ["epsilon": .float(1e-5)]))
            last = "b"
        }
        if let activation {
            var inputs = [last]
            var attributes: [String: AttributeValue] = [:]
            switch activation {
            case "Clip":
                if opset >= 11 {
                    parameters["lo"] = .float(Tensor(-0.25)); parameters["hi"] = .float(Tensor(0.5))
                    inputs += ["lo", "hi"]
                } else {
                    attributes = ["min": .float(-0.25), "max": .float(0.5)]
                }
            case "LeakyRelu": attributes = ["alpha": .float(0.1)]
            default: break
            }
            nodes.append(Node(name: "act", opType: activation, inputs: inputs, outputs: ["a"], attributes: attributes))
            last = "a"
        }
        nodes.append(Node(name: "head", opType: "Conv", inputs: [last, param("head.w", [4, channels, 1, 1])], outputs: ["out"]))
        return Graph(name: "chain", nodes: nodes, initializers: parameters,
                     inputs: [ValueInfo(name: "input", shape: [1, 3, nil, nil])], outputs: [ValueInfo(name: "out")], opsetVersion: opset)
    }

    static func executor(_ graph: Graph, fused: Bool) throws -> GraphExecutor {
        let e = try GraphExecutor(graph: graph)
        e.fusesLayers = fused
        return e
    }

    /// The labels of the steps a forward pass ran.
    static func steps(_ e: GraphExecutor, _ feeds: [String: Value], outputs: [String], wrt: Set<String> = []) throws -> [String] {
        var labels: [String] = []
        _ = try e.forward(feeds, outputs: outputs, recordingFor: wrt, onStep: { labels.append($0.label) })
        return labels
    }

    static let x = Tensor.random(shape: [1, 3, 7, 9], in: -2...2, seed: 42)

    // MARK: forward

    func testBiasAndActivationFusedGiveTheUnfusedValuesBitForBit() throws {
        for (activation, opset) in [("Relu", 13), ("LeakyRelu", 13), ("Clip", 13), ("Clip", 6)] {
            let graph = Self.chain(batchNorm: false, activation: activation, opset: opset)
            let feeds: [String: Value] = ["input": .float(Self.x)]
            let fused = try Self.executor(graph, fused: true), plain = try Self.executor(graph, fused: false)
            XCTAssertEqual(try Self.steps(fused, feeds, outputs: ["out"]), ["Conv+\(activation)", "Conv"], activation)
            XCTAssertEqual(try Self.steps(plain, feeds, outputs: ["out"]), ["Conv", activation, "Conv"], activation)
            for output in ["a", "out"] {
                let a = try fused.run(feeds, outputs: [output])[output]!.floatTensor!
                let b = try plain.run(feeds, outputs: [output])[output]!.floatTensor!
                XCTAssertEqual(a.scalars, b.scalars, "\(activation) opset \(opset): \(output)")
            }
        }
    }

    /// DenseNet's pre-activation: input -> BatchNormalization -> activation -> Conv. Where no gradient flows, the
    /// normalisation and its activation are one pass with the same values bit for bit; a recorded pass keeps both,
    /// except a Relu: BatchNormalization+Relu has a backward of its own (the mask from the fused output), whose
    /// gradients equal the unfused ones bit for bit, to the input alone (a dream) and to trained scale and bias.
    func testPreActivationBatchNormAndActivationAreOnePassWhereNoGradientFlows() throws {
        var parameters: [String: Value] = [:]
        for (k, name) in ["scale", "bias", "mean", "var"].enumerated() {
            parameters[name] = .float(Tensor.random(shape: [3], in: name == "var" ? 0.2...1.5 : -0.5...1.5, seed: UInt64(70 + k)))
        }
        parameters["head.w"] = .float(Tensor.random(shape: [4, 3, 1, 1], seed: 75))
        for (activation, attributes) in [("Relu", [:]), ("LeakyRelu", ["alpha": AttributeValue.float(0.2)]), ("Sigmoid", [:])] as [(String, [String: AttributeValue])] {
            let nodes = [
                Node(name: "bn", opType: "BatchNormalization", inputs: ["input", "scale", "bias", "mean", "var"], outputs: ["b"]),
                Node(name: "act", opType: activation, inputs: ["b"], outputs: ["a"], attributes: attributes),
                Node(name: "head", opType: "Conv", inputs: ["a", "head.w"], outputs: ["out"]),
            ]
            let graph = Graph(name: "preactivation", nodes: nodes, initializers: parameters,
                              inputs: [ValueInfo(name: "input", shape: [1, 3, nil, nil])], outputs: [ValueInfo(name: "out")], opsetVersion: 13)
            let feeds: [String: Value] = ["input": .float(Self.x)]
            let fused = try Self.executor(graph, fused: true), plain = try Self.executor(graph, fused: false)
            XCTAssertEqual(try Self.steps(fused, feeds, outputs: ["out"]), ["BatchNormalization+\(activation)", "Conv"])
            XCTAssertEqual(try Self.steps(fused, feeds, outputs: ["out"], wrt: ["input"]),
                           activation == "Relu" ? ["BatchNormalization+Relu", "Conv"] : ["BatchNormalization", activation, "Conv"])
            XCTAssertEqual(try Self.steps(fused, feeds, outputs: ["out", "b"]), ["BatchNormalization", activation, "Conv"])
            for output in ["a", "out"] {
                XCTAssertEqual(try fused.run(feeds, outputs: [output])[output]!.floatTensor!.scalars,
                               try plain.run(feeds, outputs: [output])[output]!.floatTensor!.scalars, "\(activation): \(output)")
            }
            // Half the normalised values negative, so that the Relu's mask matters; upstream gradients of both signs.
            let upstream = Tensor.random(shape: [1, 4, 7, 9], seed: 77)
            for wrt in [["input"], ["input", "scale", "bias"], ["scale"]] as [Set<String>] {
                var trainedFeeds = feeds
                for name in wrt where name != "input" { trainedFeeds[name] = parameters[name] }
                var tapeA = try fused.forward(trainedFeeds, outputs: ["out"], recordingFor: wrt)
                var tapeB = try plain.forward(trainedFeeds, outputs: ["out"], recordingFor: wrt)
                let a = try fused.backward(&tapeA, seeds: ["out": upstream]), b = try plain.backward(&tapeB, seeds: ["out": upstream])
                XCTAssertEqual(Set(a.keys), wrt, "\(activation)")
                for name in wrt {
                    XCTAssertEqual(try XCTUnwrap(a[name]).scalars, try XCTUnwrap(b[name]).scalars, "\(activation): d\(name) wrt \(wrt)")
                }
            }
        }
    }

    /// The folded layer rounds differently from conv-then-normalise. Both compute y = s·(Σ w·x + b − mean) + beta in
    /// float32 with at most K + 4 roundings per term on either side (K = C·kH·kW products summed in any order, the
    /// fold's w·s and b', BatchNorm's multiplier and offset, its multiply-add), each at most u relative, so
    /// |y_fused − y_plain| <= (2K + 8)·u·(|s|·(Σ|w||x| + |b| + |mean|) + |beta|), per element; an activation after it
    /// (Relu, Clip: 1-Lipschitz) keeps the bound.
    func testFoldedBatchNormStaysWithinTheRoundingBoundOfTheUnfoldedLayer() throws {
        for activation in [nil, "Relu", "Clip"] as [String?] {
            let graph = Self.chain(batchNorm: true, activation: activation)
            let feeds: [String: Value] = ["input": .float(Self.x)]
            let fused = try Self.executor(graph, fused: true), plain = try Self.executor(graph, fused: false)
            let last = activation == nil ? "b" : "a"
            XCTAssertEqual(try Self.steps(fused, feeds, outputs: [last]),
                           ["Conv+BatchNormalization" + (activation.map { "+" + $0 } ?? "")])
            let a = try fused.run(feeds, outputs: [last])[last]!.floatTensor!
            let b = try plain.run(feeds, outputs: [last])[last]!.floatTensor!
            let bound = try Self.foldBound(graph, x: Self.x)
            var worst = 0.0, differing = 0
            for i in 0..<a.count {
                let d = abs(Double(a[flat: i]) - Double(b[flat: i]))
                XCTAssertLessThanOrEqual(d, bound[i], "\(activation ?? "none") element \(i)")
                worst = max(worst, d / bound[i]); if d > 0 { differing += 1 }
            }
            // The fold really ran (not the same arithmetic by accident): some element rounds differently.
            XCTAssertGreaterThan(differing, 0, "\(activation ?? "none")")
            print("folded BatchNorm (\(activation ?? "no activation")): \(differing) of \(a.count) elements differ, worst at \(worst) of the bound")
        }
    }

    /// The per-element bound of the test above, from the graph's parameters and |x|.
    static func foldBound(_ graph: Graph, x: Tensor) throws -> [Double] {
        func p(_ name: String) -> Tensor { graph.initializers[name]!.floatTensor! }
        let w = p("conv.w"), window = Window2D(kernel: 3, pad: 1)
        let absolute = { (t: Tensor) in Tensor(shape: t.shape, scalars: t.scalars.map { abs($0) }) }
        let sums = Convolution.forward(absolute(x), weight: absolute(w), bias: nil, window: window, groups: 1)
        let k = Double(w.count / w.shape[0])
        let c = w.shape[0], plane = sums.count / c
        return (0..<sums.count).map { i in
            let m = i / plane % c
            let s = Double(p("bn.scale")[flat: m]) / (Double(p("bn.var")[flat: m]) + 1e-5).squareRoot()
            let magnitude = abs(s) * (Double(sums[flat: i]) + abs(Double(p("conv.b")[flat: m])) + abs(Double(p("bn.mean")[flat: m])))
                + abs(Double(p("bn.bias")[flat: m]))
            return (2 * k + 8) * unitRoundoff * magnitude
        }
    }

    // MARK: what must not be fused

    func testRequestedAndObservedIntermediateValuesAreStillProduced() throws {
        let graph = Self.chain(batchNorm: true, activation: "Relu")
        let feeds: [String: Value] = ["input": .float(Self.x)]
        let fused = try Self.executor(graph, fused: true), plain = try Self.executor(graph, fused: false)
        // Requesting the convolution's output keeps it: only the normalisation and activation still fuse (one pass).
        XCTAssertEqual(try Self.steps(fused, feeds, outputs: ["c", "out"]), ["Conv", "BatchNormalization+Relu", "Conv"])
        XCTAssertEqual(try Self.steps(fused, feeds, outputs: ["b", "out"]), ["Conv+BatchNormalization", "Relu", "Conv"])
        let values = try fused.run(feeds, outputs: ["c", "b", "a", "out"])
        let reference = try plain.run(feeds, outputs: ["c", "b", "a", "out"])
        for name in ["c", "b", "a", "out"] {
            XCTAssertEqual(values[name]?.floatTensor?.scalars, reference[name]?.floatTensor?.scalars, name)
        }
        // An observer sees every node's outputs, as without fusion.
        var seen: [String] = []
        _ = try fused.forward(feeds, outputs: ["out"], recordingFor: [], observe: { i, _ in seen.append(graph.nodes[i].name) })
        XCTAssertEqual(seen, ["conv", "bn", "act", "head"])
        // A second consumer of the convolution's output keeps it too.
        var twoUsers = graph
        twoUsers.nodes.append(Node(name: "other", opType: "Relu", inputs: ["c"], outputs: ["o"]))
        XCTAssertEqual(try Self.steps(try Self.executor(twoUsers, fused: true), feeds, outputs: ["out", "o"]),
                       ["Conv", "BatchNormalization+Relu", "Conv", "Relu"])
    }

    func testFedOrComputedClipBoundsAreNotFused() throws {
        let graph = Self.chain(batchNorm: false, activation: "Clip", opset: 13)
        var feeds: [String: Value] = ["input": .float(Self.x)]
        feeds["hi"] = .float(Tensor(0.25))
        let fused = try Self.executor(graph, fused: true)
        XCTAssertEqual(try Self.steps(fused, feeds, outputs: ["out"]), ["Conv", "Clip", "Conv"])
        // A Constant node's value is known before the run: fused, with that bound.
        var constant = graph
        constant.initializers["hi"] = nil
        constant.nodes.insert(Node(name: "six", opType: "Constant", inputs: [], outputs: ["hi"], attributes: ["value_float": .float(0.3)]), at: 0)
        let f = try Self.executor(constant, fused: true), p = try Self.executor(constant, fused: false)
        let plainFeeds: [String: Value] = ["input": .float(Self.x)]
        XCTAssertEqual(try Self.steps(f, plainFeeds, outputs: ["out"]), ["Constant", "Conv+Clip", "Conv"])
        XCTAssertEqual(try f.run(plainFeeds, outputs: ["a"])["a"]!.floatTensor!.scalars,
                       try p.run(plainFeeds, outputs: ["a"])["a"]!.floatTensor!.scalars)
        XCTAssertEqual(try f.run(plainFeeds, outputs: ["a"])["a"]!.floatTensor!.scalars.max(), 0.3)
    }

    func testBatchNormWithTrainableParametersIsNotFolded() throws {
        let graph = Self.chain(batchNorm: true, activation: "Relu")
        let fused = try Self.executor(graph, fused: true), plain = try Self.executor(graph, fused: false)
        let upstream = Tensor.random(shape: [1, 4, 7, 9], seed: 5)
        // Training the normalisation (or the convolution before it), as `finetune --trainable` does: the parameters
        // arrive as feeds and are differentiated; no fold, and gradients for the file's parameter names.
        for trainable in [["bn.scale", "bn.bias"], ["conv.w"], ["head.w", "bn.bias"]] {
            var feeds: [String: Value] = ["input": .float(Self.x)]
            for name in trainable { feeds[name] = graph.initializers[name] }
            let steps = try Self.steps(fused, feeds, outputs: ["out"], wrt: Set(trainable))
            XCTAssertFalse(steps.contains { $0.hasPrefix("Conv+BatchNormalization") }, "\(trainable): \(steps)")
            var tapeA = try fused.forward(feeds, outputs: ["out"], recordingFor: Set(trainable))
            var tapeB = try plain.forward(feeds, outputs: ["out"], recordingFor: Set(trainable))
            let a = try fused.backward(&tapeA, seeds: ["out": upstream]), b = try plain.backward(&tapeB, seeds: ["out": upstream])
            XCTAssertEqual(Set(a.keys), Set(trainable))
            for name in trainable { XCTAssertEqual(a[name]?.scalars, b[name]?.scalars, "\(trainable): \(name)") }
        }
        // A frozen backbone (only the head trained, parameters fed) is folded.
        let feeds: [String: Value] = ["input": .float(Self.x), "head.w": graph.initializers["head.w"]!]
        XCTAssertEqual(try Self.steps(fused, feeds, outputs: ["out"], wrt: ["head.w"]), ["Conv+BatchNormalization+Relu", "Conv"])
        // A fed (e.g. updated) normalisation parameter is not folded either: the cached fold would be stale.
        let fedStatistics: [String: Value] = ["input": .float(Self.x), "bn.mean": .float(Tensor(shape: [6], repeating: 0.3))]
        XCTAssertEqual(try Self.steps(fused, fedStatistics, outputs: ["out"]), ["Conv", "BatchNormalization+Relu", "Conv"])
        XCTAssertEqual(try fused.run(fedStatistics, outputs: ["out"])["out"]!.floatTensor!.scalars,
                       try plain.run(fedStatistics, outputs: ["out"])["out"]!.floatTensor!.scalars)
    }

    func testClipIsNotFusedIntoAStepThatABackwardPassGoesThrough() throws {
        let graph = Self.chain(batchNorm: true, activation: "Clip")
        let feeds: [String: Value] = ["input": .float(Self.x)]
        let fused = try Self.executor(graph, fused: true)
        XCTAssertEqual(try Self.steps(fused, feeds, outputs: ["out"]), ["Conv+BatchNormalization+Clip", "Conv"])
        XCTAssertEqual(try Self.steps(fused, feeds, outputs: ["out"], wrt: ["input"]), ["Conv+BatchNormalization", "Clip", "Conv"])
        // LeakyRelu with a negative slope cannot be differentiated from its output either.
        var negative = Self.chain(batchNorm: false, activation: "LeakyRelu")
        negative.nodes[1].attributes["alpha"] = .float(-0.5)
        let e = try Self.executor(negative, fused: true)
        XCTAssertEqual(try Self.steps(e, feeds, outputs: ["out"]), ["Conv+LeakyRelu", "Conv"])
        XCTAssertEqual(try Self.steps(e, feeds, outputs: ["out"], wrt: ["input"]), ["Conv", "LeakyRelu", "Conv"])
    }

    func testAGradientSeededOnAFusedAwayValueIsRefused() throws {
        let graph = Self.chain(batchNorm: false, activation: "Relu")
        let fused = try Self.executor(graph, fused: true)
        var tape = try fused.forward(["input": .float(Self.x)], outputs: ["out"], recordingFor: ["input"])
        XCTAssertThrowsError(try fused.backward(&tape, seeds: ["c": Tensor(shape: [1, 6, 7, 9], repeating: 1)])) { error in
            XCTAssertTrue("\(error)".contains("'c'") && "\(error)".contains("request it as an output"), "\(error)")
        }
    }

    // MARK: backward

    /// Relu and LeakyRelu take their mask from the saved output; the convolution's backward is the unfused one:
    /// input and parameter gradients equal bit for bit.
    func testFusedActivationBackwardEqualsTheUnfusedGradientsBitForBit() throws {
        let upstream = Tensor.random(shape: [1, 4, 7, 9], seed: 6)
        for activation in ["Relu", "LeakyRelu"] {
            let graph = Self.chain(batchNorm: false, activation: activation)
            let fused = try Self.executor(graph, fused: true), plain = try Self.executor(graph, fused: false)
            let wrt: Set<String> = ["input", "conv.w", "conv.b", "head.w"]
            let feeds: [String: Value] = ["input": .float(Self.x)]
            XCTAssertEqual(try Self.steps(fused, feeds, outputs: ["out"], wrt: wrt), ["Conv+\(activation)", "Conv"])
            var tapeA = try fused.forward(feeds, outputs: ["out"], recordingFor: wrt)
            var tapeB = try plain.forward(feeds, outputs: ["out"], recordingFor: wrt)
            let a = try fused.backward(&tapeA, seeds: ["out": upstream]), b = try plain.backward(&tapeB, seeds: ["out": upstream])
            for name in wrt { XCTAssertEqual(try XCTUnwrap(a[name]).scalars, try XCTUnwrap(b[name]).scalars, "\(activation): \(name)") }
        }
    }

    /// The folded backward dx = convᵀ(W·s, dy) against the unfolded convᵀ(W, s·dy): each of the M·kH·kW terms of a
    /// dx element rounds up to (M·kH·kW + 3) times on either side, so |Δdx| <= (2·M·kH·kW + 6)·u·convᵀ(|W|, |s·dy|).
    func testFoldedBatchNormBackwardStaysWithinTheRoundingBoundAndMatchesFiniteDifferences() throws {
        let graph = Self.chain(batchNorm: true, activation: "Relu")
        let fused = try Self.executor(graph, fused: true), plain = try Self.executor(graph, fused: false)
        let upstream = Tensor.random(shape: [1, 4, 7, 9], seed: 8)
        let feeds: [String: Value] = ["input": .float(Self.x)]
        XCTAssertEqual(try Self.steps(fused, feeds, outputs: ["out"], wrt: ["input"]), ["Conv+BatchNormalization+Relu", "Conv"])
        var tapeA = try fused.forward(feeds, outputs: ["out", "a"], recordingFor: ["input"])
        var tapeB = try plain.forward(feeds, outputs: ["out", "a"], recordingFor: ["input"])
        // The masks agree (no pre-activation within rounding of 0 for this input), so the bound applies to every element.
        let yA = tapeA.values["a"]!.floatTensor!.scalars, yB = tapeB.values["a"]!.floatTensor!.scalars
        XCTAssertEqual(yA.map { $0 > 0 }, yB.map { $0 > 0 })
        let dxA = try XCTUnwrap(try fused.backward(&tapeA, seeds: ["out": upstream])["input"])
        let dxB = try XCTUnwrap(try plain.backward(&tapeB, seeds: ["out": upstream])["input"])

        // The gradient reaching the normalised values: head's backward, masked by the Relu, times |s|.
        func p(_ name: String) -> Tensor { graph.initializers[name]!.floatTensor! }
        let window = Window2D(kernel: 3, pad: 1)
        let pointwise = Window2D(kernel: 1)
        let da = Convolution.backward(upstream, x: tapeB.values["a"]!.floatTensor!, weight: p("head.w"), window: pointwise, groups: 1,
                                      needInputGradient: true, needParameterGradients: false).dx!
        let c = 6, plane = 7 * 9
        let scaled = Tensor(shape: da.shape, scalars: (0..<da.count).map { i in
            let m = i / plane % c
            let s = Double(p("bn.scale")[flat: m]) / (Double(p("bn.var")[flat: m]) + 1e-5).squareRoot()
            return yB[i] > 0 ? Float(abs(Double(da[flat: i]) * s)) : 0
        })
        let w = p("conv.w")
        let sums = Convolution.backward(scaled, x: Self.x, weight: Tensor(shape: w.shape, scalars: w.scalars.map { abs($0) }),
                                        window: window, groups: 1, needInputGradient: true, needParameterGradients: false).dx!
        let terms = Double(c * 9)
        var differing = 0
        for i in 0..<dxA.count {
            let d = abs(Double(dxA[flat: i]) - Double(dxB[flat: i]))
            XCTAssertLessThanOrEqual(d, (2 * terms + 6) * Self.unitRoundoff * Double(sums[flat: i]) * 1.0001 + 1e-30, "element \(i)")
            if d > 0 { differing += 1 }
        }
        XCTAssertGreaterThan(differing, 0)
        // And against central differences of the fused forward itself.
        try Self.checkInputGradient(dxA, executor: fused, upstream: upstream)
    }

    /// Central differences of loss = Σ upstream·out with respect to the input, on a sample of elements.
    static func checkInputGradient(_ analytic: Tensor, executor: GraphExecutor, upstream: Tensor, file: StaticString = #filePath, line: UInt = #line) throws {
        func loss(_ x: Tensor) throws -> Double {
            let y = try executor.run(["input": .float(x)], outputs: ["out"])["out"]!.floatTensor!
            return zip(y.scalars, upstream.scalars).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        var worst = 0.0
        for i in stride(from: 0, to: x.count, by: 5) {
            let eps: Float = 1e-2
            var plus = x, minus = x
            plus[flat: i] += eps
            minus[flat: i] -= eps
            let numeric = (try loss(plus) - loss(minus)) / Double(2 * eps)
            worst = max(worst, abs(numeric - Double(analytic[flat: i])) / max(1e-2, abs(numeric)))
        }
        XCTAssertLessThan(worst, 2e-2, "worst relative difference \(worst)", file: file, line: line)
    }

    func testFusedBackwardMatchesFiniteDifferences() throws {
        let upstream = Tensor.random(shape: [1, 4, 7, 9], seed: 9)
        for activation in ["Relu", "LeakyRelu"] {
            let fused = try Self.executor(Self.chain(batchNorm: false, activation: activation), fused: true)
            var tape = try fused.forward(["input": .float(Self.x)], outputs: ["out"], recordingFor: ["input"])
            let dx = try XCTUnwrap(try fused.backward(&tape, seeds: ["out": upstream])["input"])
            try Self.checkInputGradient(dx, executor: fused, upstream: upstream)
        }
    }

    // MARK: a whole network

    /// GoogLeNet has no BatchNormalization: fusing bias + Relu changes no arithmetic, so a DeepDream gradient (forward
    /// to inception_4c, backward to the image) is the same, bit for bit, fused or not.
    func testGoogLeNetDreamGradientIsBitIdenticalWithFusion() throws {
        let graph = try ONNXImporter.load(contentsOf: try SharedData.file("models/googlenet_bvlc.onnx"))
        let fused = try Self.executor(graph, fused: true), plain = try Self.executor(graph, fused: false)
        let input = graph.inputs[0].name, layer = "inception_4c_output"
        let x = Tensor.random(shape: [1, 3, 96, 80], in: -100...100, seed: 3)
        var stepsRun: [String] = []
        var tapeA = try fused.forward([input: .float(x)], outputs: [layer], recordingFor: [input], onStep: { stepsRun.append($0.label) })
        var tapeB = try plain.forward([input: .float(x)], outputs: [layer], recordingFor: [input])
        XCTAssertGreaterThan(stepsRun.filter { $0 == "Conv+Relu" }.count, 30)
        XCTAssertFalse(stepsRun.contains("Relu"))
        let a = tapeA.values[layer]!.floatTensor!, b = tapeB.values[layer]!.floatTensor!
        XCTAssertEqual(a.scalars, b.scalars)
        let gA = try fused.backward(&tapeA, seeds: [layer: a])[input]!, gB = try plain.backward(&tapeB, seeds: [layer: b])[input]!
        XCTAssertEqual(gA.scalars, gB.scalars)
    }
}
