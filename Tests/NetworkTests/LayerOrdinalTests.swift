import Foundation
import Network
import Tensors
import XCTest

/// Ordinal layer names (`conv1`, `pool1` …) from the operators' traits, their precedence, and close matches.
final class LayerOrdinalTests: XCTestCase {
    /// stem (Conv) -> act (Relu) -> p (MaxPool) -> branch (Conv) -> {conv1 (Relu), sum (Add)} -> gap (GlobalAveragePool)
    static func makeGraph() -> Graph {
        let parameters: [String: Value] = [
            "stem.w": .float(Tensor.random(shape: [4, 3, 3, 3], in: -1...1, seed: 1)),
            "branch.w": .float(Tensor.random(shape: [4, 4, 1, 1], in: -1...1, seed: 2)),
        ]
        let nodes: [Node] = [
            Node(name: "stem", opType: "Conv", inputs: ["input", "stem.w"], outputs: ["a"]),
            Node(name: "act", opType: "Relu", inputs: ["a"], outputs: ["b"]),
            Node(name: "p", opType: "MaxPool", inputs: ["b"], outputs: ["c"], attributes: ["kernel_shape": .ints([2, 2])]),
            Node(name: "branch", opType: "Conv", inputs: ["c", "branch.w"], outputs: ["d"]),
            // A real node that happens to be called like an ordinal: its name must win.
            Node(name: "conv1", opType: "Relu", inputs: ["d"], outputs: ["e"]),
            Node(name: "sum", opType: "Add", inputs: ["d", "e"], outputs: ["f"]),
            Node(name: "gap", opType: "GlobalAveragePool", inputs: ["f"], outputs: ["g"]),
        ]
        return Graph(name: "ordinals", nodes: nodes, initializers: parameters,
                     inputs: [ValueInfo(name: "input", shape: [1, 3, nil, nil])], outputs: [ValueInfo(name: "g")], opsetVersion: 13)
    }

    func testConvolutionsAndWindowedPoolsAreNumberedInGraphOrder() {
        let names = LayerNames(graph: Self.makeGraph())
        XCTAssertEqual(names.ordinals.map(\.name), ["conv1", "pool1", "conv2"], "global pools are not counted")
        XCTAssertEqual(names.ordinals.map(\.node), [0, 2, 3])
        XCTAssertEqual(names.ordinal(ofNode: 3), "conv2")
        XCTAssertNil(names.ordinal(ofNode: 6))
    }

    func testAConvolutionWhoseOnlyConsumerIsAnActivationStandsForTheActivation() throws {
        let names = LayerNames(graph: Self.makeGraph())
        XCTAssertEqual(names.ordinals[0].value, "b", "stem feeds only the ReLU: conv1 is the ReLU's output")
        XCTAssertEqual(try names.resolve("pool1"), "c")
        XCTAssertEqual(try names.resolve("CONV2"), "d", "branch has two consumers: conv2 is its own output")
    }

    func testARealNameWinsOverAnOrdinal() throws {
        let names = LayerNames(graph: Self.makeGraph())
        XCTAssertEqual(try names.resolve("conv1"), "e", "the node named conv1, not the first convolution")
    }

    func testUnknownNamesAlwaysListCloseMatchesOrdinalsIncluded() throws {
        let names = LayerNames(graph: Self.makeGraph())
        XCTAssertThrowsError(try names.resolve("pool2")) { error in
            guard case let ExecutionError.unknownValue(_, suggestions) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(suggestions.contains("pool1"), "\(suggestions)")
        }
        XCTAssertFalse(names.closeMatches(to: "zzzzzzzzzzzzzzzzzzzz").isEmpty, "nothing close: the nearest are listed all the same")
        XCTAssertEqual(names.closeMatches(to: "conv7").first.map { ["conv1", "conv2"].contains($0) }, true)
    }

    func testTheExecutorAndTheGraphLevelTraitsAgree() throws {
        let graph = Self.makeGraph()
        let executor = try GraphExecutor(graph: graph)
        let traits = GraphTraits(graph: graph)
        XCTAssertEqual(traits.isActivation, graph.nodes.indices.map { executor.isActivation(node: $0) })
    }
}
