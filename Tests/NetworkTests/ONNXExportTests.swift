import Foundation
import Network
import Tensors
import TestSupport
import XCTest

/// Bitwise equality of values (NaN-safe, -0 distinct).
func valuesIdentical(_ a: Value, _ b: Value) -> Bool {
    switch (a, b) {
    case (.float(let x), .float(let y)):
        return x.shape == y.shape && x.withUnsafeBufferPointer { p in
            y.withUnsafeBufferPointer { q in p.count == 0 || memcmp(p.baseAddress!, q.baseAddress!, p.count * 4) == 0 }
        }
    case (.int(let x), .int(let y)): return x == y
    default: return false
    }
}

func attributesIdentical(_ a: AttributeValue, _ b: AttributeValue) -> Bool {
    switch (a, b) {
    case (.int(let x), .int(let y)): return x == y
    case (.float(let x), .float(let y)): return x.bitPattern == y.bitPattern
    case (.string(let x), .string(let y)): return x == y
    case (.ints(let x), .ints(let y)): return x == y
    case (.floats(let x), .floats(let y)): return x.map(\.bitPattern) == y.map(\.bitPattern)
    case (.strings(let x), .strings(let y)): return x == y
    case (.tensor(let x), .tensor(let y)): return valuesIdentical(x, y)
    default: return false
    }
}

/// Everything but producerName (export always says "dream").
func assertGraphsIdentical(_ a: Graph, _ b: Graph, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.name, b.name, file: file, line: line)
    XCTAssertEqual(a.opsetVersion, b.opsetVersion, file: file, line: line)
    XCTAssertEqual(a.metadata, b.metadata, file: file, line: line)
    XCTAssertEqual(a.initializerOrder, b.initializerOrder, file: file, line: line)
    XCTAssertEqual(Set(a.initializers.keys), Set(b.initializers.keys), file: file, line: line)
    for (name, value) in a.initializers {
        XCTAssertTrue(b.initializers[name].map { valuesIdentical(value, $0) } ?? false, "initializer \(name) differs", file: file, line: line)
    }
    for (x, y) in [(a.inputs, b.inputs), (a.outputs, b.outputs)] {
        XCTAssertEqual(x.map(\.name), y.map(\.name), file: file, line: line)
        XCTAssertEqual(x.map(\.elementType), y.map(\.elementType), file: file, line: line)
        XCTAssertEqual(x.map { $0.shape.map { "\($0)" } ?? "unranked" }, y.map { $0.shape.map { "\($0)" } ?? "unranked" }, file: file, line: line)
    }
    XCTAssertEqual(a.nodes.count, b.nodes.count, file: file, line: line)
    for (m, n) in zip(a.nodes, b.nodes) {
        XCTAssertEqual([m.name, m.opType, m.domain], [n.name, n.opType, n.domain], file: file, line: line)
        XCTAssertEqual(m.inputs, n.inputs, file: file, line: line)
        XCTAssertEqual(m.outputs, n.outputs, file: file, line: line)
        XCTAssertEqual(Set(m.attributes.keys), Set(n.attributes.keys), "node \(m.name)", file: file, line: line)
        for (key, value) in m.attributes {
            XCTAssertTrue(n.attributes[key].map { attributesIdentical(value, $0) } ?? false, "node \(m.name) attribute \(key)", file: file, line: line)
        }
    }
}

final class ONNXExportTests: XCTestCase {
    func syntheticGraph() -> Graph {
        let weights = Tensor.random(shape: [4, 3, 3, 3], in: -1...1, seed: 7)
        var special = Tensor(shape: [4], scalars: [.nan, -0.0, .infinity, .leastNormalMagnitude / 8])
        special[flat: 0] = Float(bitPattern: 0x7fc0_1234)  // NaN payload must survive
        return Graph(
            name: "synthetic",
            nodes: [
                Node(name: "conv", opType: "Conv", inputs: ["image", "w", ""], outputs: ["c"],
                     attributes: ["pads": .ints([1, 1, 1, 1]), "group": .int(1), "auto_pad": .string("NOTSET")]),
                Node(name: "shape", opType: "Reshape", inputs: ["c", "target"], outputs: ["r"],
                     attributes: ["allowzero": .int(0)]),
                Node(name: "custom", opType: "Fancy", domain: "com.example", inputs: ["r", "special"], outputs: ["out"],
                     attributes: ["alpha": .float(0.25), "scales": .floats([1, 0.5]), "tags": .strings(["ä", ""]),
                                  "value": .tensor(.float(Tensor(shape: [2], scalars: [1, 2]))),
                                  "index": .tensor(.int(IntTensor(shape: [], values: [-3])))]),
            ],
            initializers: ["w": .float(weights), "target": .int(IntTensor(shape: [2], values: [1, -1])), "special": .float(special)],
            initializerOrder: ["w", "target", "special"],
            inputs: [ValueInfo(name: "image", elementType: .float, shape: [nil, 3, nil, 8])],
            outputs: [ValueInfo(name: "out", elementType: .float, shape: nil), ValueInfo(name: "c", shape: [])],
            opsetVersion: 17,
            metadata: ["labels": "a\nb", "mean": "104,117,123"],
            producerName: "test")
    }

    func testSyntheticGraphSurvivesExportAndImportIdentically() throws {
        let graph = syntheticGraph()
        let data = try ONNXExporter.serialize(graph)
        let back = try ONNXImporter.graph(fromSerialized: data, baseDirectory: nil)
        assertGraphsIdentical(graph, back)
        XCTAssertEqual(back.producerName, "dream")
        // Export is deterministic (attribute and metadata dictionaries are written sorted).
        XCTAssertEqual(try ONNXExporter.serialize(back), data)
    }

    func testRealGoogLeNetSurvivesImportExportImport() throws {
        let url = try SharedData.file("models/googlenet_bvlc.onnx")
        let graph = try ONNXImporter.load(contentsOf: url)
        let back = try ONNXImporter.graph(fromSerialized: try ONNXExporter.serialize(graph), baseDirectory: nil)
        assertGraphsIdentical(graph, back)
    }

    func testWriteReplacesTheFileAtomicallyAndLeavesNoTemporaryFiles() throws {
        let dir = try SharedData.temporaryDirectory(for: self)
        let url = dir.appendingPathComponent("model.onnx")
        try Data("old".utf8).write(to: url)
        try ONNXExporter.write(syntheticGraph(), to: url)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["model.onnx"])
        assertGraphsIdentical(syntheticGraph(), try ONNXImporter.load(contentsOf: url))

        let unwritable = dir.appendingPathComponent("no/such/dir/model.onnx")
        XCTAssertThrowsError(try ONNXExporter.write(syntheticGraph(), to: unwritable)) { error in
            XCTAssertTrue("\(error)".hasPrefix(unwritable.path), "\(error)")
        }
    }
}
