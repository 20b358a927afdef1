import Foundation
import Network
import TestSupport
import Tensors
import XCTest

/// Convolutions writing their slices of the Concat that joins them (`ConcatInPlace`) against the same graph run node
/// by node: the same bits, for one image (written in place) and a batch (copied), and in place only where nothing a
/// caller asks for, observes or differentiates disappears.
final class ConcatInPlaceTests: XCTestCase {
    /// input -> squeeze Conv 1x1 + Relu -> three branches (1x1 + Relu, 3x3 pad 1 + Relu, 3x3 pad 1 without
    /// activation, `branchPad` for the last) -> Concat(axis 1) "cat" -> head Conv 1x1 -> "out".
    static func fire(branchPad: Int = 1, axis: Int = 1) -> Graph {
        var parameters: [String: Value] = [:]
        var seed: UInt64 = 10
        func param(_ name: String, _ shape: [Int]) -> String {
            seed += 1
            parameters[name] = .float(Tensor.random(shape: shape, in: -0.5...0.5, seed: seed))
            return name
        }
        let pads: [String: AttributeValue] = ["pads": .ints([1, 1, 1, 1])]
        let nodes = [
            Node(name: "squeeze", opType: "Conv", inputs: ["input", param("s.w", [4, 3, 1, 1]), param("s.b", [4])], outputs: ["s0"]),
            Node(name: "squeeze_relu", opType: "Relu", inputs: ["s0"], outputs: ["s"]),
            Node(name: "e1", opType: "Conv", inputs: ["s", param("e1.w", [5, 4, 1, 1]), param("e1.b", [5])], outputs: ["e1_0"]),
            Node(name: "e1_relu", opType: "Relu", inputs: ["e1_0"], outputs: ["e1"]),
            Node(name: "e3", opType: "Conv", inputs: ["s", param("e3.w", [6, 4, 3, 3]), param("e3.b", [6])], outputs: ["e3_0"],
                 attributes: pads),
            Node(name: "e3_relu", opType: "Relu", inputs: ["e3_0"], outputs: ["e3"]),
            Node(name: "e5", opType: "Conv", inputs: ["s", param("e5.w", [3, 4, 3, 3])], outputs: ["e5"],
                 attributes: ["pads": .ints(Array(repeating: branchPad, count: 4))]),
            Node(name: "cat", opType: "Concat", inputs: ["e1", "e3", "e5"], outputs: ["cat"], attributes: ["axis": .int(axis)]),
            Node(name: "head", opType: "Conv", inputs: ["cat", param("h.w", [2, 14, 1, 1])], outputs: ["out"]),
        ]
        return Graph(name: "fire", nodes: nodes, initializers: parameters,
                     inputs: [ValueInfo(name: "input", shape: [nil, 3, nil, nil])], outputs: [ValueInfo(name: "out")], opsetVersion: 13)
    }

    static func executor(_ graph: Graph, fused: Bool) throws -> GraphExecutor {
        let e = try GraphExecutor(graph: graph)
        e.fusesLayers = fused
        return e
    }

    /// The values of `outputs` and, per step, (label, whether its output was written in place, the output shapes).
    static func run(_ e: GraphExecutor, _ x: Tensor, outputs: [String], wrt: Set<String> = [])
        throws -> (values: [String: [UInt32]], steps: [(String, Bool, [[Int]])]) {
        var steps: [(String, Bool, [[Int]])] = []
        let tape = try e.forward(["input": .float(x)], outputs: outputs, recordingFor: wrt, onStep: { step in
            steps.append((step.label, step.outputs.isEmpty && !step.outputShapes.isEmpty, step.outputShapes))
        })
        var values: [String: [UInt32]] = [:]
        for name in outputs { values[name] = tape.values[name]?.floatTensor?.scalars.map(\.bitPattern) }
        return (values, steps)
    }

    func testBranchesWrittenInPlaceGiveTheNodeByNodeBitsForOneImageAndABatch() throws {
        let graph = Self.fire()
        let fused = try Self.executor(graph, fused: true), plain = try Self.executor(graph, fused: false)
        for batch in [1, 2] {
            let x = Tensor.random(shape: [batch, 3, 9, 7], in: -2...2, seed: 5)
            let ours = try Self.run(fused, x, outputs: ["out", "cat"]), reference = try Self.run(plain, x, outputs: ["out", "cat"])
            XCTAssertEqual(ours.values["cat"], reference.values["cat"], "batch \(batch)")
            XCTAssertEqual(ours.values["out"], reference.values["out"], "batch \(batch)")
            XCTAssertNotNil(ours.values["cat"] ?? nil)
            // The three branches return nothing of their own and report the shapes they wrote.
            let placed = ours.steps.filter { $0.1 }
            XCTAssertEqual(placed.map(\.0), ["Conv+Relu", "Conv+Relu", "Conv"], "batch \(batch)")
            XCTAssertEqual(placed.map(\.2), [[[batch, 5, 9, 7]], [[batch, 6, 9, 7]], [[batch, 3, 9, 7]]])
            XCTAssertEqual(ours.steps.first { $0.0 == "Concat" }?.2, [[batch, 14, 9, 7]])
        }
        // The executor plans each pass afresh: a second pass gives the same bits.
        let x = Tensor.random(shape: [1, 3, 9, 7], in: -2...2, seed: 6)
        XCTAssertEqual(try Self.run(fused, x, outputs: ["out"]).values, try Self.run(fused, x, outputs: ["out"]).values)
        XCTAssertEqual(try Self.run(fused, x, outputs: ["out"]).values, try Self.run(plain, x, outputs: ["out"]).values)
    }

    func testABranchThatIsRequestedObservedOrDifferentiatedIsNotWrittenInPlace() throws {
        let graph = Self.fire()
        let fused = try Self.executor(graph, fused: true), plain = try Self.executor(graph, fused: false)
        let x = Tensor.random(shape: [1, 3, 8, 8], in: -2...2, seed: 7)
        // Requested: that branch's value exists, and then its Concat copies every branch.
        let requested = try Self.run(fused, x, outputs: ["out", "e3"])
        XCTAssertFalse(requested.steps.contains { $0.1 })
        XCTAssertEqual(requested.values, try Self.run(plain, x, outputs: ["out", "e3"]).values)
        // A pass a gradient flows through keeps every branch for the backward, and differentiates as before.
        let recorded = try Self.run(fused, x, outputs: ["out"], wrt: ["input"])
        XCTAssertFalse(recorded.steps.contains { $0.1 })
        var fusedTape = try fused.forward(["input": .float(x)], outputs: ["out"], recordingFor: ["input"])
        var plainTape = try plain.forward(["input": .float(x)], outputs: ["out"], recordingFor: ["input"])
        let seed = Tensor.random(shape: [1, 2, 8, 8], in: -1...1, seed: 8)
        let g1 = try fused.backward(&fusedTape, seeds: ["out": seed])["input"]
        let g2 = try plain.backward(&plainTape, seeds: ["out": seed])["input"]
        XCTAssertEqual(g1?.scalars.map(\.bitPattern), g2?.scalars.map(\.bitPattern))
        // Observed passes run node by node.
        var seen = 0
        _ = try fused.forward(["input": .float(x)], outputs: ["out"], recordingFor: [], observe: { _, _ in seen += 1 })
        XCTAssertEqual(seen, graph.nodes.count)
        // A Concat on another axis is left alone.
        let other = try Self.executor(Self.fire(axis: -3), fused: true)
        let negative = try Self.run(other, x, outputs: ["out"])
        XCTAssertFalse(negative.steps.contains { $0.1 })
        XCTAssertEqual(negative.values, try Self.run(plain, x, outputs: ["out"]).values)
    }

    func testBranchesOfDifferentSizesAreRefusedAsConcatRefusesThem() throws {
        let graph = Self.fire(branchPad: 0)
        let x = Tensor.random(shape: [1, 3, 8, 8], in: -2...2, seed: 9)
        for fusedLayers in [true, false] {
            let e = try Self.executor(graph, fused: fusedLayers)
            XCTAssertThrowsError(try e.run(["input": .float(x)], outputs: ["out"]), "fused: \(fusedLayers)") { error in
                guard case ExecutionError.shapeMismatch(let node, let op, let detail) = error else {
                    return XCTFail("\(error)")
                }
                XCTAssertEqual(node, "cat")
                XCTAssertEqual(op, "Concat")
                XCTAssertTrue(detail.contains("cannot concatenate"), detail)
            }
        }
    }
}
