import Foundation
import Inspection
import Models
import Network
import Tensors
import TestSupport
import XCTest

/// Receptive fields against a hand computation on a small branching network, and GoogLeNet's published first layers.
final class ReceptiveFieldTests: XCTestCase {
    func testEveryLayerOfABranchingNetworkMatchesTheHandComputation() throws {
        func w(_ shape: [Int]) -> Value { .float(Tensor(shape: shape)) }
        let nodes: [Node] = [
            Node(name: "c1", opType: "Conv", inputs: ["x", "w1"], outputs: ["c1"], attributes: ["pads": .ints([1, 1, 1, 1])]),
            Node(name: "r1", opType: "Relu", inputs: ["c1"], outputs: ["r1"]),
            Node(name: "p1", opType: "MaxPool", inputs: ["r1"], outputs: ["p1"],
                 attributes: ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])]),
            // Branch a: 3x3 with dilation 2 (a 5x5 window); branch b: 1x1 (widens nothing).
            Node(name: "a", opType: "Conv", inputs: ["p1", "wa"], outputs: ["a"], attributes: ["dilations": .ints([2, 2])]),
            Node(name: "b", opType: "Conv", inputs: ["p1", "wb"], outputs: ["b"]),
            Node(name: "cat", opType: "Concat", inputs: ["a", "b"], outputs: ["cat"], attributes: ["axis": .int(1)]),
            // A 1x3 kernel without kernel_shape: read from the weight.
            Node(name: "h", opType: "Conv", inputs: ["cat", "wh"], outputs: ["h"]),
            Node(name: "avg", opType: "AveragePool", inputs: ["h"], outputs: ["avg"],
                 attributes: ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2])]),
            Node(name: "gap", opType: "GlobalAveragePool", inputs: ["avg"], outputs: ["gap"]),
            Node(name: "flat", opType: "Flatten", inputs: ["gap"], outputs: ["flat"]),
        ]
        let graph = Graph(nodes: nodes, initializers: ["w1": w([4, 3, 3, 3]), "wa": w([4, 4, 3, 3]), "wb": w([4, 4, 1, 1]),
                                                       "wh": w([4, 8, 1, 3])],
                          inputs: [ValueInfo(name: "x", shape: [1, 3, nil, nil])])
        let fields = ReceptiveField.compute(graph: graph, input: "x")
        // size r' = r + (k - 1) * j, jump j' = j * s, per axis [height, width].
        let expected: [String: ReceptiveField] = [
            "c1": .init(kernel: [3, 3], jump: [1, 1], size: [3, 3]),
            "r1": .init(jump: [1, 1], size: [3, 3]),
            "p1": .init(kernel: [2, 2], jump: [2, 2], size: [4, 4]),
            "a": .init(kernel: [5, 5], jump: [2, 2], size: [12, 12]),
            "b": .init(kernel: [1, 1], jump: [2, 2], size: [4, 4]),
            "cat": .init(jump: [2, 2], size: [12, 12]),
            "h": .init(kernel: [1, 3], jump: [2, 2], size: [12, 16]),
            "avg": .init(kernel: [3, 3], jump: [4, 4], size: [16, 20]),
        ]
        for (name, field) in expected { XCTAssertEqual(fields[name], field, name) }
        XCTAssertNil(fields["gap"], "global pooling sees everything: no field")
        XCTAssertNil(fields["flat"])
    }

    func testGoogLeNetLayerTableShowsConv1AndConv2Fields() throws {
        let model = try LoadedModel(url: try SharedData.file("models/googlenet_bvlc.onnx"))
        let table = try LayerTable(model: model.displayName, graph: model.graph, executor: model.executor,
                                   inputName: try model.inputName, inputShape: [1, 3, 224, 224], frozen: [])
        func row(_ name: String) throws -> LayerTable.Row { try XCTUnwrap(table.rows.first { $0.output == name }, name) }
        XCTAssertEqual(try row("conv1_7x7_s2").receptive_field, 7)
        XCTAssertEqual(try row("conv1_7x7_s2").stride, 2)
        XCTAssertEqual(try row("conv1_7x7_s2_pre_relu").kernel, 7)
        XCTAssertEqual(try row("conv2_3x3").receptive_field, 19)
        XCTAssertEqual(try row("conv2_3x3").stride, 4)
        XCTAssertEqual(try row("inception_5b_output").stride, 32)
        XCTAssertNil(try row("pool5_7x7_s1").receptive_field)
        let json = String(decoding: try JSONEncoder().encode(table), as: UTF8.self)
        XCTAssertTrue(json.contains("\"receptive_field\":7"), "the JSON key users read")
    }
}
