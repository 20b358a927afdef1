import Foundation
import Network
import Tensors
import XCTest

/// Which initializers are trainable parameters is decided by the operators themselves (`isParameterInput`):
/// Clip's bounds and BatchNormalization's statistics are not; weights, biases and scales are.
final class ParameterTraitsTests: XCTestCase {
    func testClipBoundsAndBatchNormStatisticsAreNotParameters() throws {
        let executor = try GraphExecutor(graph: GraphGradientTests.makeGraph())
        XCTAssertEqual(executor.parameterNames, [
            "bn1.bias", "bn1.scale", "bn2.bias", "bn2.scale", "conv1.b", "conv1.w", "dw.w", "fc.b", "fc.w", "pw.b", "pw.w",
        ], "initializer order is the sorted names for a graph built in code")
        let clip = try XCTUnwrap(executor.graph.nodes.firstIndex { $0.opType == "Clip" })
        XCTAssertEqual(executor.parameterInputIndices(node: clip), [0], "only the data input; min and max are bounds")
        let bn = try XCTUnwrap(executor.graph.nodes.firstIndex { $0.opType == "BatchNormalization" })
        XCTAssertEqual(executor.parameterInputIndices(node: bn), [0, 1, 2], "scale and bias; mean and var are statistics")
        XCTAssertTrue(executor.isActivation(node: clip))
        XCTAssertFalse(executor.isActivation(node: bn))
        XCTAssertEqual(executor.graph.nodes.indices.filter { executor.producesFeatureMaps(node: $0) }.map { executor.graph.nodes[$0].name },
                       ["conv1", "dw", "pw", "pool", "avg", "gap"])
    }

    func testFreezingByPrefixAndBeforeALayerCountsOnlyParameters() throws {
        let freezing = ParameterFreezing(executor: try GraphExecutor(graph: GraphGradientTests.makeGraph()))
        XCTAssertEqual(try freezing.frozen(prefixes: ["conv1", "bn2."]), ["conv1.w", "conv1.b", "bn2.scale", "bn2.bias"])
        // Before "dw": conv1, bn1 and the Clip; the Clip's bounds are not parameters, so they are not frozen either.
        XCTAssertEqual(try freezing.frozen(beforeLayer: "dw"), ["conv1.w", "conv1.b", "bn1.scale", "bn1.bias"])
        XCTAssertEqual(try freezing.frozen(beforeLayer: "logits").count, 9, "everything but the classifier's weight and bias")
        XCTAssertEqual(try freezing.frozen(prefixes: ["fc"], beforeLayer: "pw"),
                       ["conv1.w", "conv1.b", "bn1.scale", "bn1.bias", "dw.w", "bn2.scale", "bn2.bias", "fc.w", "fc.b"])
        XCTAssertThrowsError(try freezing.frozen(beforeLayer: "no_such_layer"))
    }

    func testTheSupportedListIsTheRegistry() throws {
        XCTAssertEqual(OperatorRegistry.supportedOperators, OperatorRegistry.supportedOperators.sorted())
        XCTAssertTrue(Set(["Conv", "Clip", "BatchNormalization", "Gemm", "LRN"]).isSubset(of: OperatorRegistry.supportedOperators))
        let unknown = Node(name: "mystery", opType: "Einsum", inputs: ["x"], outputs: ["y"])
        XCTAssertThrowsError(try GraphExecutor(graph: Graph(nodes: [unknown]))) { error in
            XCTAssertEqual(error as? ExecutionError, .unsupportedOperator(op: "Einsum", node: "mystery", domain: ""))
        }
    }
}
