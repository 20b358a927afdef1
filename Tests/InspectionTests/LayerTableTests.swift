import Foundation
import Inspection
import Network
import Tensors
import XCTest

/// The layer table's parameter counts and multiply-accumulates on a graph small enough to count by hand.
final class LayerTableTests: XCTestCase {
    /// Conv 3x3 (3 -> 4 channels, pad 1) -> Clip(min, max as initializers) -> BatchNormalization -> MaxPool 2x2
    /// -> GlobalAveragePool -> Flatten -> Gemm (4 -> 5) -> MatMul (5 -> 2).
    static func makeGraph() -> Graph {
        func t(_ shape: [Int], _ seed: UInt64) -> Value { .float(Tensor.random(shape: shape, in: 0.5...1, seed: seed)) }
        return Graph(
            name: "counted",
            nodes: [
                Node(name: "conv", opType: "Conv", inputs: ["x", "conv.w", "conv.b"], outputs: ["c"], attributes: ["pads": .ints([1, 1, 1, 1])]),
                Node(name: "relu6", opType: "Clip", inputs: ["c", "min", "max"], outputs: ["r"]),
                Node(name: "bn", opType: "BatchNormalization", inputs: ["r", "bn.scale", "bn.bias", "bn.mean", "bn.var"], outputs: ["b"]),
                Node(name: "pool", opType: "MaxPool", inputs: ["b"], outputs: ["p"], attributes: ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])]),
                Node(name: "gap", opType: "GlobalAveragePool", inputs: ["p"], outputs: ["g"]),
                Node(name: "flat", opType: "Flatten", inputs: ["g"], outputs: ["f"]),
                Node(name: "fc", opType: "Gemm", inputs: ["f", "fc.w", "fc.b"], outputs: ["h"], attributes: ["transB": .int(1)]),
                Node(name: "proj", opType: "MatMul", inputs: ["h", "proj.w"], outputs: ["y"]),
            ],
            initializers: [
                "conv.w": t([4, 3, 3, 3], 1), "conv.b": t([4], 2), "min": .float(Tensor(0)), "max": .float(Tensor(6)),
                "bn.scale": t([4], 3), "bn.bias": t([4], 4), "bn.mean": t([4], 5), "bn.var": t([4], 6),
                "fc.w": t([5, 4], 7), "fc.b": t([5], 8), "proj.w": t([5, 2], 9),
            ],
            inputs: [ValueInfo(name: "x", shape: [1, 3, nil, nil])], outputs: [ValueInfo(name: "y")])
    }

    func testParametersAndMultiplyAccumulatesAreCountedPerLayer() throws {
        let graph = Self.makeGraph()
        let executor = try GraphExecutor(graph: graph)
        let table = try LayerTable(model: "counted", graph: graph, executor: executor, inputName: "x", inputShape: [1, 3, 8, 10],
                                   frozen: ["conv.w", "conv.b", "bn.scale"])
        let rows = Dictionary(uniqueKeysWithValues: table.rows.map { ($0.layer, $0) })
        // Parameters: conv 4·3·3·3 + 4, bn scale and bias 4 + 4 (mean and var are statistics), fc 5·4 + 5, proj 5·2.
        XCTAssertEqual(rows["conv"]?.parameters, 112)
        XCTAssertEqual(rows["relu6"]?.parameters, 0, "Clip's min and max are bounds, not parameters")
        XCTAssertEqual(rows["relu6"]?.trainable, "")
        XCTAssertEqual(rows["bn"]?.parameters, 8)
        XCTAssertEqual(rows["bn"]?.trainable, "partly")
        XCTAssertEqual(rows["conv"]?.trainable, "no")
        XCTAssertEqual(rows["fc"]?.trainable, "yes")
        XCTAssertEqual(table.totalParameters, 112 + 8 + 25 + 10)
        XCTAssertEqual(table.frozenParameters, 112 + 4)
        XCTAssertEqual(table.trainableParameters, 8 + 25 + 10 - 4)
        // MACs: conv |Y| = 4·8·10 outputs of 3·3·3 products; Gemm 5 outputs of 4; MatMul 2 outputs of 5; the rest none.
        XCTAssertEqual(rows["conv"]?.macs, 320 * 27)
        XCTAssertEqual(rows["fc"]?.macs, 5 * 4)
        XCTAssertEqual(rows["proj"]?.macs, 2 * 5)
        for name in ["relu6", "bn", "pool", "gap", "flat"] { XCTAssertEqual(rows[name]?.macs, 0, name) }
        XCTAssertEqual(table.totalMACs, 320 * 27 + 20 + 10)
        XCTAssertEqual(rows["pool"]?.outputShape, [1, 4, 4, 5])
        let text = table.rendered()
        XCTAssertTrue(text.contains("parameters: 155 total, 39 trainable, 116 frozen"), text)
    }

    func testGemmWithTransposedAReadsTheInnerSizeFromTheFirstAxis() throws {
        let graph = Graph(
            nodes: [Node(name: "fc", opType: "Gemm", inputs: ["a", "w"], outputs: ["y"], attributes: ["transA": .int(1)])],
            initializers: ["w": .float(Tensor(shape: [6, 3], repeating: 1))],
            inputs: [ValueInfo(name: "a")], outputs: [ValueInfo(name: "y")])
        let table = try LayerTable(model: "t", graph: graph, executor: try GraphExecutor(graph: graph), inputName: "a",
                                   inputShape: [6, 2], frozen: [])
        XCTAssertEqual(table.rows[0].outputShape, [2, 3])
        XCTAssertEqual(table.rows[0].macs, 2 * 3 * 6)
    }

    func testCountsAreGroupedInThousands() {
        XCTAssertEqual(LayerTable.grouped(6_998_552), "6,998,552")
        XCTAssertEqual(LayerTable.grouped(999), "999")
        XCTAssertEqual(LayerTable.grouped(1000), "1,000")
        XCTAssertEqual(LayerTable.grouped(0), "0")
    }
}
