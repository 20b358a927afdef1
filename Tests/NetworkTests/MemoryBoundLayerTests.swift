import Foundation
import Network
import Tensors
import XCTest

/// The layers between the convolutions in a graph: an inception block (four branches, Concat, LRN, a ceil-mode
/// MaxPool) run fused and node by node, with a branch requested as a feature map and differentiated on its own, and
/// MaxPool's ceil_mode windows that overhang the input.
final class MemoryBoundLayerTests: XCTestCase {
    /// input [1,3,H,W] -> stem Conv 3x3 + Relu -> four branches (1x1; 1x1 -> 3x3; 1x1 -> 5x5; MaxPool 3x3 s1 p1 ->
    /// 1x1), each Conv + Relu -> Concat (axis 1) -> LRN -> MaxPool 3x3 s2 ceil -> Conv 1x1 "out".
    /// `activation`: "Relu" as in GoogLeNet, or "LeakyRelu" (alpha 0.2), which leaves no exact zeros for the pools
    /// to tie on (a tie is a kink where finite differences and the subgradient legitimately disagree).
    static func inception(stem: Int = 8, activation: String = "Relu") -> Graph {
        var parameters: [String: Value] = [:]
        var seed: UInt64 = 10
        var nodes: [Node] = []
        func conv(_ name: String, _ input: String, _ inChannels: Int, _ outChannels: Int, _ k: Int, relu: Bool = true) -> String {
            seed += 2
            parameters["\(name).w"] = .float(Tensor.random(shape: [outChannels, inChannels, k, k], in: -0.4...0.4, seed: seed))
            parameters["\(name).b"] = .float(Tensor.random(shape: [outChannels], in: -0.1...0.1, seed: seed + 1))
            let pad = (k - 1) / 2
            nodes.append(Node(name: name, opType: "Conv", inputs: [input, "\(name).w", "\(name).b"], outputs: ["\(name)_pre"],
                              attributes: ["pads": .ints([pad, pad, pad, pad])]))
            guard relu else { return "\(name)_pre" }
            nodes.append(Node(name: "\(name)_relu", opType: activation, inputs: ["\(name)_pre"], outputs: [name],
                              attributes: activation == "LeakyRelu" ? ["alpha": .float(0.2)] : [:]))
            return name
        }
        let stemOut = conv("stem", "input", 3, stem, 3)
        let b1 = conv("b1", stemOut, stem, 4, 1)
        let b2 = conv("b2", conv("b2_reduce", stemOut, stem, 3, 1), 3, 6, 3)
        let b3 = conv("b3", conv("b3_reduce", stemOut, stem, 2, 1), 2, 3, 5)
        nodes.append(Node(name: "b4_pool", opType: "MaxPool", inputs: [stemOut], outputs: ["b4_pool"],
                          attributes: ["kernel_shape": .ints([3, 3]), "pads": .ints([1, 1, 1, 1])]))
        let b4 = conv("b4", "b4_pool", stem, 5, 1)
        nodes.append(Node(name: "concat", opType: "Concat", inputs: [b1, b2, b3, b4], outputs: ["concat"], attributes: ["axis": .int(1)]))
        nodes.append(Node(name: "norm", opType: "LRN", inputs: ["concat"], outputs: ["norm"],
                          attributes: ["size": .int(5), "alpha": .float(0.5), "beta": .float(0.75), "bias": .float(1)]))
        nodes.append(Node(name: "pool", opType: "MaxPool", inputs: ["norm"], outputs: ["pool"],
                          attributes: ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "ceil_mode": .int(1)]))
        _ = conv("out", "pool", 18, 4, 1, relu: false)
        return Graph(name: "inception", nodes: nodes, initializers: parameters,
                     inputs: [ValueInfo(name: "input", shape: [1, 3, nil, nil])], outputs: [ValueInfo(name: "out_pre")], opsetVersion: 13)
    }

    static func executor(fused: Bool, activation: String = "Relu") throws -> GraphExecutor {
        let e = try GraphExecutor(graph: inception(activation: activation))
        e.fusesLayers = fused
        return e
    }

    static let x = Tensor.random(shape: [1, 3, 14, 16], in: -2...2, seed: 5)

    func testBranchesFusedOrNodeByNodeGiveTheSameConcatAndOutputBitForBit() throws {
        let feeds: [String: Value] = ["input": .float(Self.x)]
        let fused = try Self.executor(fused: true).run(feeds, outputs: ["concat", "out_pre"])
        let plain = try Self.executor(fused: false).run(feeds, outputs: ["concat", "out_pre"])
        for name in ["concat", "out_pre"] {
            XCTAssertEqual(fused[name]?.floatTensor?.scalars.map(\.bitPattern), plain[name]?.floatTensor?.scalars.map(\.bitPattern), name)
        }
        XCTAssertEqual(fused["concat"]?.shape, [1, 18, 14, 16])
        XCTAssertEqual(fused["out_pre"]?.shape, [1, 4, 7, 8])
    }

    /// A branch asked for as a feature map is the slice of the Concat that holds it, and asking for it changes
    /// nothing else.
    func testABranchRequestedAsAFeatureMapIsItsSliceOfTheConcat() throws {
        let feeds: [String: Value] = ["input": .float(Self.x)]
        let e = try Self.executor(fused: true)
        let values = try e.run(feeds, outputs: ["b2", "b4", "concat", "out_pre"])
        let concat = try XCTUnwrap(values["concat"]?.floatTensor).scalars
        let plane = 14 * 16
        for (name, first, channels) in [("b2", 4, 6), ("b4", 13, 5)] {
            let branch = try XCTUnwrap(values[name]?.floatTensor)
            XCTAssertEqual(branch.shape, [1, channels, 14, 16], name)
            XCTAssertEqual(branch.scalars.map(\.bitPattern), concat[(first * plane)..<((first + channels) * plane)].map(\.bitPattern), name)
        }
        let alone = try e.run(feeds, outputs: ["out_pre"])
        XCTAssertEqual(alone["out_pre"]?.floatTensor?.scalars.map(\.bitPattern), values["out_pre"]?.floatTensor?.scalars.map(\.bitPattern))
    }

    /// Gradients to the image through Concat, LRN and both pools: fused and node by node give the same bits, they
    /// match central finite differences, and a DeepDream-style objective on one branch equals the same seed placed in that
    /// branch's slice of the Concat.
    func testGradientsThroughTheBlockAgreeFusedUnfusedAndWithFiniteDifferences() throws {
        let feeds: [String: Value] = ["input": .float(Self.x)]
        let seed = Tensor.random(shape: [1, 4, 7, 8], seed: 77)
        func inputGradient(_ e: GraphExecutor, _ seeds: [String: Tensor], outputs: [String]) throws -> Tensor {
            var tape = try e.forward(feeds, outputs: outputs, recordingFor: ["input"])
            return try XCTUnwrap(try e.backward(&tape, seeds: seeds)["input"])
        }
        let fused = try Self.executor(fused: true), plain = try Self.executor(fused: false)
        let g = try inputGradient(fused, ["out_pre": seed], outputs: ["out_pre"])
        let gPlain = try inputGradient(plain, ["out_pre": seed], outputs: ["out_pre"])
        // The fused Conv+Relu differentiates the same products in the same order: the same bits.
        XCTAssertEqual(g.scalars.map(\.bitPattern), gPlain.scalars.map(\.bitPattern))

        // Central finite differences (in Double, of the float32 forward) on a sample of pixels, with LeakyRelu so that
        // no pool window ties on zeros. A pixel passes when the difference quotient at eps = 1e-2 or at 3e-3 is within
        // 2 % of the largest derivative: a pool's winner or an activation's sign that flips within one step is a kink
        // one of the two steps usually avoids; rounding noise is about 1e-6 / eps of the loss.
        let smooth = try Self.executor(fused: true, activation: "LeakyRelu")
        let gSmooth = try inputGradient(smooth, ["out_pre": seed], outputs: ["out_pre"])
        func loss(_ x: Tensor) throws -> Double {
            let y = try XCTUnwrap(try smooth.run(["input": .float(x)], outputs: ["out_pre"])["out_pre"]?.floatTensor)
            return zip(y.scalars, seed.scalars).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        func quotient(_ i: Int, _ eps: Float) throws -> Double {
            var plus = Self.x, minus = Self.x
            plus[flat: i] += eps
            minus[flat: i] -= eps
            return (try loss(plus) - loss(minus)) / (2 * Double(eps))
        }
        let scale = Double(gSmooth.scalars.map(abs).max() ?? 0)
        for i in stride(from: 3, to: Self.x.count, by: 37) {
            let analytic = Double(gSmooth[flat: i])
            let errors = try [1e-2, 3e-3].map { abs(try quotient(i, Float($0)) - analytic) }
            XCTAssertLessThan(errors.min()!, 0.02 * scale, "input gradient at \(i) vs finite differences \(errors)")
        }

        // An objective on branch b2 (channels 4..<10 of the Concat) = the same seed in that slice of the Concat.
        let branchSeed = Tensor.random(shape: [1, 6, 14, 16], seed: 78)
        var concatSeed = Tensor(shape: [1, 18, 14, 16])
        for i in 0..<branchSeed.count { concatSeed[flat: 4 * 14 * 16 + i] = branchSeed[flat: i] }
        let viaBranch = try inputGradient(fused, ["b2": branchSeed], outputs: ["b2"])
        let viaConcat = try inputGradient(fused, ["concat": concatSeed], outputs: ["concat"])
        XCTAssertLessThan(viaBranch.maxAbsDifference(viaConcat), 1e-5 * max(1, viaConcat.scalars.map(abs).max() ?? 0))
    }

    // MARK: MaxPool ceil_mode (ONNX: out = ceil((in + pads - kernel) / stride + 1), windows starting in the right padding dropped)

    static func maxPool(ceil: Bool, kernel: Int, stride: Int, pads: [Int] = [0, 0, 0, 0]) -> Graph {
        Graph(name: "pool", nodes: [Node(name: "pool", opType: "MaxPool", inputs: ["x"], outputs: ["y"],
                                         attributes: ["kernel_shape": .ints([kernel, kernel]), "strides": .ints([stride, stride]),
                                                      "pads": .ints(pads), "ceil_mode": .int(ceil ? 1 : 0)])],
              initializers: [:], inputs: [ValueInfo(name: "x", shape: [1, 2, nil, nil])], outputs: [ValueInfo(name: "y")], opsetVersion: 13)
    }

    /// onnxruntime 1.32 and PyTorch give one output for a 3x3 stride-2 ceil-mode window on a 2x2 input: the
    /// maximum of the whole input; its gradient goes to that element.
    func testCeilModeWindowLargerThanTheInputGivesOneOutputLikeOnnxruntime() throws {
        let x = Tensor(shape: [1, 2, 2, 2], scalars: [0, 3, 2, 1, -5, -4, -7, -6])
        let e = try GraphExecutor(graph: Self.maxPool(ceil: true, kernel: 3, stride: 2))
        var tape = try e.forward(["x": .float(x)], outputs: ["y"], recordingFor: ["x"])
        let y = try XCTUnwrap(tape.values["y"]?.floatTensor)
        XCTAssertEqual(y.shape, [1, 2, 1, 1])
        XCTAssertEqual(y.scalars, [3, -4])
        let dx = try XCTUnwrap(try e.backward(&tape, seeds: ["y": Tensor(shape: [1, 2, 1, 1], scalars: [1, 2])])["x"])
        XCTAssertEqual(dx.scalars, [0, 1, 0, 0, 0, 2, 0, 0])
        // A pad on the leading side too: the window [-1, 3) still starts inside the padded input.
        let padded = try GraphExecutor(graph: Self.maxPool(ceil: true, kernel: 4, stride: 3, pads: [1, 1, 0, 0]))
        XCTAssertEqual(try padded.run(["x": .float(x)], outputs: ["y"])["y"]?.floatTensor?.scalars, [3, -4])
    }

    /// Floor mode follows the ONNX formula (floor(-1/2 + 1) = 0 outputs) and refuses with the node named; so does
    /// ceil mode when even the first window would overhang by a whole stride.
    func testWindowsThatFitNowhereAreRefusedWithTheNodeNamed() throws {
        let x = Tensor(shape: [1, 2, 2, 2], repeating: 1)
        for graph in [Self.maxPool(ceil: false, kernel: 3, stride: 2), Self.maxPool(ceil: true, kernel: 4, stride: 2)] {
            let e = try GraphExecutor(graph: graph)
            XCTAssertThrowsError(try e.run(["x": .float(x)], outputs: ["y"])) { error in
                XCTAssertTrue("\(error)".contains("pool") && "\(error)".contains("too small"), "\(error)")
            }
        }
    }
}
