import Foundation
import Network
import TestSupport
import Tensors
import XCTest

/// Convolutions fused with Sigmoid, HardSigmoid and HardSwish, and with the activations ONNX files spell as a gate
/// and a Mul (SiLU: Sigmoid → Mul; HardSwish: HardSigmoid(1/6, 1/2) → Mul), against the same graphs run node by node:
/// the same outputs and gradients bit for bit, fusion only where the values in between stay invisible, and small
/// EfficientNet- and MobileNetV3-like blocks that give the same outputs and input gradients fused and unfused.
final class GatedLayerFusionTests: XCTestCase {
    typealias Plain = LayerFusionTests

    /// A graph built node by node with random parameters.
    struct Builder {
        var nodes: [Node] = []
        var parameters: [String: Value] = [:]
        var seed: UInt64

        init(seed: UInt64) { self.seed = seed }

        mutating func param(_ name: String, _ shape: [Int]) -> String {
            seed += 1
            let fanIn = shape.dropFirst().reduce(1, *)
            let r = Float(1.5 / Double(max(fanIn, 1)).squareRoot())
            parameters[name] = .float(Tensor.random(shape: shape, in: -r...r, seed: seed))
            return name
        }

        mutating func node(_ op: String, _ inputs: [String], _ output: String, _ attributes: [String: AttributeValue] = [:]) -> String {
            nodes.append(Node(name: output + "_node", opType: op, inputs: inputs, outputs: [output], attributes: attributes))
            return output
        }

        mutating func conv(_ x: String, _ name: String, from c: Int, to m: Int, kernel: Int = 1, groups: Int = 1) -> String {
            let pad = kernel / 2
            return node("Conv", [x, param(name + ".w", [m, c / groups, kernel, kernel]), param(name + ".b", [m])], name,
                        ["pads": .ints([pad, pad, pad, pad]), "group": .int(groups)])
        }

        mutating func silu(_ x: String, _ name: String, swapped: Bool = false) -> String {
            let s = node("Sigmoid", [x], name + ".sigmoid")
            return node("Mul", swapped ? [s, x] : [x, s], name)
        }

        mutating func hardSwishAsMul(_ x: String, _ name: String, alpha: Float = Float(1) / 6) -> String {
            let h = node("HardSigmoid", [x], name + ".gate", ["alpha": .float(alpha), "beta": .float(0.5)])
            return node("Mul", [x, h], name)
        }

        func graph(output: String, opset: Int = 14) -> Graph {
            Graph(name: "block", nodes: nodes, initializers: parameters,
                  inputs: [ValueInfo(name: "input", shape: [1, 3, nil, nil])], outputs: [ValueInfo(name: output)], opsetVersion: opset)
        }
    }

    /// EfficientNet's MBConv: 1x1 expansion + SiLU, depthwise 3x3 + SiLU (Mul operands swapped), squeeze-excitation
    /// (GlobalAveragePool → Conv → SiLU → Conv → Sigmoid → Mul with the [1,C,1,1] gate), 1x1 projection, residual.
    static func efficientNetBlock() -> Graph {
        var b = Builder(seed: 50)
        var v = b.silu(b.conv("input", "expand", from: 3, to: 12), "expand.act")
        v = b.silu(b.conv(v, "dw", from: 12, to: 12, kernel: 3, groups: 12), "dw.act", swapped: true)
        var gate = b.node("GlobalAveragePool", [v], "se.pool")
        gate = b.silu(b.conv(gate, "se.reduce", from: 12, to: 4), "se.act")
        gate = b.node("Sigmoid", [b.conv(gate, "se.expand", from: 4, to: 12)], "se.gate")
        v = b.node("Mul", [v, gate], "se.out")
        let out = b.node("Add", [b.conv(v, "project", from: 12, to: 3), "input"], "out")
        return b.graph(output: out)
    }

    /// MobileNetV3's block as torch exports it at opset 13 (Hardswish as HardSigmoid(1/6, 1/2) → Mul) with one
    /// HardSwish node, and its squeeze-excitation gate HardSigmoid → Mul.
    static func mobileNetV3Block() -> Graph {
        var b = Builder(seed: 80)
        var v = b.hardSwishAsMul(b.conv("input", "expand", from: 3, to: 12), "expand.act")
        v = b.node("HardSwish", [b.conv(v, "dw", from: 12, to: 12, kernel: 3, groups: 12)], "dw.act")
        var gate = b.node("GlobalAveragePool", [v], "se.pool")
        gate = b.node("Relu", [b.conv(gate, "se.reduce", from: 12, to: 4)], "se.act")
        gate = b.node("HardSigmoid", [b.conv(gate, "se.expand", from: 4, to: 12)], "se.gate",
                      ["alpha": .float(Float(1) / 6), "beta": .float(0.5)])
        v = b.node("Mul", [v, gate], "se.out")
        let out = b.node("Add", [b.conv(v, "project", from: 12, to: 3), "input"], "out")
        return b.graph(output: out)
    }

    static let feeds: [String: Value] = ["input": .float(Plain.x)]
    static let upstream = Tensor.random(shape: [1, 3, 7, 9], seed: 12)

    /// Forward outputs and, when `wrt` is not empty, the gradients of Σ upstream·out, fused and unfused.
    static func compare(_ graph: Graph, output: String = "out", wrt: Set<String>, _ what: String, file: StaticString = #filePath,
                        line: UInt = #line) throws {
        let fused = try Plain.executor(graph, fused: true), plain = try Plain.executor(graph, fused: false)
        var tapeA = try fused.forward(feeds, outputs: [output], recordingFor: wrt)
        var tapeB = try plain.forward(feeds, outputs: [output], recordingFor: wrt)
        XCTAssertEqual(tapeA.values[output]!.floatTensor!.scalars.map(\.bitPattern), tapeB.values[output]!.floatTensor!.scalars.map(\.bitPattern),
                       "\(what): \(output)", file: file, line: line)
        guard !wrt.isEmpty else { return }
        let a = try fused.backward(&tapeA, seeds: [output: upstream]), b = try plain.backward(&tapeB, seeds: [output: upstream])
        for name in wrt {
            XCTAssertEqual(try XCTUnwrap(a[name]).scalars.map(\.bitPattern), try XCTUnwrap(b[name]).scalars.map(\.bitPattern),
                           "\(what): gradient of \(name)", file: file, line: line)
        }
    }

    // MARK: single activations

    func testSigmoidHardSigmoidAndHardSwishFuseAndGiveTheUnfusedValuesAndGradientsBitForBit() throws {
        for activation in ["Sigmoid", "HardSigmoid", "HardSwish"] {
            let graph = Plain.chain(batchNorm: false, activation: activation, opset: 14)
            let fused = try Plain.executor(graph, fused: true)
            XCTAssertEqual(try Plain.steps(fused, Self.feeds, outputs: ["out"]), ["Conv+\(activation)", "Conv"])
            // HardSwish cannot be differentiated from its output: a recorded one stays its own step.
            XCTAssertEqual(try Plain.steps(fused, Self.feeds, outputs: ["out"], wrt: ["input"]),
                           activation == "HardSwish" ? ["Conv", "HardSwish", "Conv"] : ["Conv+\(activation)", "Conv"])
            try Self.compare(graph, wrt: [], activation)
            let upstream = Tensor.random(shape: [1, 4, 7, 9], seed: 6)
            let wrt: Set<String> = ["input", "conv.w", "conv.b", "head.w"]
            let plain = try Plain.executor(graph, fused: false)
            var tapeA = try fused.forward(Self.feeds, outputs: ["out"], recordingFor: wrt)
            var tapeB = try plain.forward(Self.feeds, outputs: ["out"], recordingFor: wrt)
            let a = try fused.backward(&tapeA, seeds: ["out": upstream]), b = try plain.backward(&tapeB, seeds: ["out": upstream])
            for name in wrt {
                XCTAssertEqual(try XCTUnwrap(a[name]).scalars.map(\.bitPattern), try XCTUnwrap(b[name]).scalars.map(\.bitPattern),
                               "\(activation): \(name)")
            }
        }
    }

    // MARK: gate and Mul

    func testSiLUAndHardSwishSpelledWithMulFuseIntoTheConvolution() throws {
        var b = Builder(seed: 1)
        _ = b.conv(b.silu(b.conv("input", "a", from: 3, to: 6), "a.act"), "b", from: 6, to: 3)
        let silu = b.graph(output: "b")
        var s = Builder(seed: 1)
        _ = s.conv(s.silu(s.conv("input", "a", from: 3, to: 6), "a.act", swapped: true), "b", from: 6, to: 3)
        let swapped = s.graph(output: "b")
        var h = Builder(seed: 1)
        _ = h.conv(h.hardSwishAsMul(h.conv("input", "a", from: 3, to: 6), "a.act"), "b", from: 6, to: 3)
        let hardSwish = h.graph(output: "b")
        for (graph, gate) in [(silu, "Sigmoid"), (swapped, "Sigmoid"), (hardSwish, "HardSigmoid")] {
            let fused = try Plain.executor(graph, fused: true), plain = try Plain.executor(graph, fused: false)
            XCTAssertEqual(try Plain.steps(fused, Self.feeds, outputs: ["b"]), ["Conv+\(gate)+Mul", "Conv"])
            XCTAssertEqual(try Plain.steps(plain, Self.feeds, outputs: ["b"]), ["Conv", gate, "Mul", "Conv"])
            for output in ["a.act", "b"] {
                XCTAssertEqual(try fused.run(Self.feeds, outputs: [output])[output]!.floatTensor!.scalars.map(\.bitPattern),
                               try plain.run(Self.feeds, outputs: [output])[output]!.floatTensor!.scalars.map(\.bitPattern), "\(gate): \(output)")
            }
            // A backward pass: the step keeps its pre-activation and stays fused, with the unfused gradients.
            XCTAssertEqual(try Plain.steps(fused, Self.feeds, outputs: ["b"], wrt: ["input"]), ["Conv+\(gate)+Mul", "Conv"])
            try Self.compare(graph, output: "b", wrt: ["input", "a.w", "a.b", "b.w"], gate)
        }
    }

    func testGateAndMulStayUnfusedWhereAValueInBetweenIsVisibleOrTheGateIsAnother() throws {
        var b = Builder(seed: 1)
        _ = b.conv(b.silu(b.conv("input", "a", from: 3, to: 6), "a.act"), "b", from: 6, to: 3)
        let graph = b.graph(output: "b")
        let fused = try Plain.executor(graph, fused: true)
        // The gate or the convolution's output requested, or differentiated with respect to.
        XCTAssertEqual(try Plain.steps(fused, Self.feeds, outputs: ["b", "a.act.sigmoid"]), ["Conv", "Sigmoid", "Mul", "Conv"])
        XCTAssertEqual(try Plain.steps(fused, Self.feeds, outputs: ["b", "a"]), ["Conv", "Sigmoid", "Mul", "Conv"])
        XCTAssertEqual(try Plain.steps(fused, Self.feeds, outputs: ["b"], wrt: ["a.act.sigmoid"]), ["Conv", "Sigmoid", "Mul", "Conv"])
        // A third consumer of the convolution's output.
        var third = graph
        third.nodes.append(Node(name: "extra", opType: "Relu", inputs: ["a"], outputs: ["r"]))
        third.outputs.append(ValueInfo(name: "r"))
        XCTAssertEqual(try Plain.steps(try Plain.executor(third, fused: true), Self.feeds, outputs: ["b", "r"]),
                       ["Conv", "Sigmoid", "Mul", "Conv", "Relu"])
        // A HardSigmoid that is not HardSwish's gate.
        var h = Builder(seed: 1)
        _ = h.conv(h.hardSwishAsMul(h.conv("input", "a", from: 3, to: 6), "a.act", alpha: 0.2), "b", from: 6, to: 3)
        XCTAssertEqual(try Plain.steps(try Plain.executor(h.graph(output: "b"), fused: true), Self.feeds, outputs: ["b"]),
                       ["Conv", "HardSigmoid", "Mul", "Conv"])
        // The gate multiplied with something else than its own input (squeeze-excitation) is not an activation.
        var m = Builder(seed: 1)
        let c = m.conv("input", "a", from: 3, to: 3)
        _ = m.node("Mul", ["input", m.node("Sigmoid", [c], "g")], "b")
        XCTAssertEqual(try Plain.steps(try Plain.executor(m.graph(output: "b"), fused: true), Self.feeds, outputs: ["b"]),
                       ["Conv+Sigmoid", "Mul"])
    }

    // MARK: blocks

    func testEfficientNetBlockFusesItsSiLUsAndGivesTheUnfusedOutputAndGradients() throws {
        let graph = Self.efficientNetBlock()
        let fused = try Plain.executor(graph, fused: true)
        let expected = ["Conv+Sigmoid+Mul", "Conv+Sigmoid+Mul", "GlobalAveragePool", "Conv+Sigmoid+Mul", "Conv+Sigmoid", "Mul", "Conv", "Add"]
        XCTAssertEqual(try Plain.steps(fused, Self.feeds, outputs: ["out"]), expected)
        XCTAssertEqual(try Plain.steps(fused, Self.feeds, outputs: ["out"], wrt: ["input"]), expected)
        try Self.compare(graph, wrt: [], "EfficientNet block")
        try Self.compare(graph, wrt: ["input"], "EfficientNet block")
        try Self.compare(graph, wrt: ["input", "expand.w", "dw.w", "se.reduce.b", "project.w"], "EfficientNet block")
        var tape = try fused.forward(Self.feeds, outputs: ["out"], recordingFor: ["input"])
        let dx = try XCTUnwrap(try fused.backward(&tape, seeds: ["out": Self.upstream])["input"])
        try Plain.checkInputGradient(dx, executor: fused, upstream: Self.upstream)
    }

    func testMobileNetV3BlockFusesItsHardSwishesAndGivesTheUnfusedOutputAndGradients() throws {
        let graph = Self.mobileNetV3Block()
        let fused = try Plain.executor(graph, fused: true)
        XCTAssertEqual(try Plain.steps(fused, Self.feeds, outputs: ["out"]),
                       ["Conv+HardSigmoid+Mul", "Conv+HardSwish", "GlobalAveragePool", "Conv+Relu", "Conv+HardSigmoid", "Mul", "Conv", "Add"])
        // A recorded HardSwish node stays its own step (its subgradients need x); the spelled-out one keeps z.
        XCTAssertEqual(try Plain.steps(fused, Self.feeds, outputs: ["out"], wrt: ["input"]),
                       ["Conv+HardSigmoid+Mul", "Conv", "HardSwish", "GlobalAveragePool", "Conv+Relu", "Conv+HardSigmoid",
                        "Mul", "Conv", "Add"])
        try Self.compare(graph, wrt: [], "MobileNetV3 block")
        try Self.compare(graph, wrt: ["input"], "MobileNetV3 block")
        try Self.compare(graph, wrt: ["input", "expand.w", "dw.b", "se.expand.w", "project.w"], "MobileNetV3 block")
        var tape = try fused.forward(Self.feeds, outputs: ["out"], recordingFor: ["input"])
        let dx = try XCTUnwrap(try fused.backward(&tape, seeds: ["out": Self.upstream])["input"])
        try Plain.checkInputGradient(dx, executor: fused, upstream: Self.upstream)
    }
}
