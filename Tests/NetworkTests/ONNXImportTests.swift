import Foundation
import Network
import Tensors
import TestSupport
import XCTest

/// Minimal protobuf writer for hand-made ONNX files (the generated types are internal to Network).
struct ProtoWriter {
    var bytes: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 { bytes.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }
    mutating func tag(_ field: Int, _ wireType: Int) { varint(UInt64(field << 3 | wireType)) }
    mutating func int(_ field: Int, _ value: Int64) { tag(field, 0); varint(UInt64(bitPattern: value)) }
    mutating func float(_ field: Int, _ value: Float) {
        tag(field, 5)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }
    mutating func data(_ field: Int, _ payload: [UInt8]) { tag(field, 2); varint(UInt64(payload.count)); bytes.append(contentsOf: payload) }
    mutating func string(_ field: Int, _ s: String) { data(field, Array(s.utf8)) }
    mutating func message(_ field: Int, _ build: (inout ProtoWriter) -> Void) {
        var inner = ProtoWriter()
        build(&inner)
        data(field, inner.bytes)
    }
    mutating func packedFloats(_ field: Int, _ values: [Float]) {
        data(field, values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } })
    }
    mutating func packedVarints(_ field: Int, _ values: [Int64]) {
        var inner = ProtoWriter()
        for v in values { inner.varint(UInt64(bitPattern: v)) }
        data(field, inner.bytes)
    }

    // ONNX-shaped helpers (field numbers from onnx.proto).
    mutating func entry(_ field: Int, _ key: String, _ value: String) {
        message(field) { $0.string(1, key); $0.string(2, value) }
    }
    mutating func valueInfo(_ field: Int, name: String, elemType: Int64 = 1, dims: [Any]) {
        message(field) { v in
            v.string(1, name)
            v.message(2) { type in
                type.message(1) { tensor in
                    tensor.int(1, elemType)
                    tensor.message(2) { shape in
                        for d in dims {
                            shape.message(1) { dim in
                                if let n = d as? Int { dim.int(1, Int64(n)) } else { dim.string(2, d as! String) }
                            }
                        }
                    }
                }
            }
        }
    }
}

func rawBytes(_ floats: [Float]) -> [UInt8] { floats.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } } }

/// A model with one Relu over `x` plus an initializer `w` whose TensorProto body is `tensor`.
func modelWithInitializer(_ tensor: (inout ProtoWriter) -> Void) -> Data {
    var model = ProtoWriter()
    model.int(1, 8)
    model.message(8) { $0.string(1, ""); $0.int(2, 13) }
    model.message(7) { g in
        g.message(1) { n in n.string(1, "x"); n.string(2, "y"); n.string(4, "Relu") }
        g.string(2, "g")
        g.message(5) { t in t.string(8, "w"); tensor(&t) }
        g.valueInfo(11, name: "x", dims: [2])
        g.valueInfo(12, name: "y", dims: [2])
    }
    return Data(model.bytes)
}

final class ONNXImportTests: XCTestCase {
    func testRealGoogLeNetImportsWithOpset13InputAndLogitsProbOutputs() throws {
        let url = try SharedData.file("models/googlenet_bvlc.onnx")
        let graph = try ONNXImporter.load(contentsOf: url)
        XCTAssertEqual(graph.nodes.count, 142)
        XCTAssertEqual(graph.initializers.count, 116)
        XCTAssertEqual(Array(graph.initializerOrder.prefix(2)), ["conv1_7x7_s2_W", "conv1_7x7_s2_B"])
        XCTAssertEqual(graph.initializers["conv1_7x7_s2_W"]?.shape, [64, 3, 7, 7])
        XCTAssertEqual(graph.initializers["loss3_classifier_W"]?.shape, [1000, 1024])
        XCTAssertEqual(graph.opsetVersion, 13)
        XCTAssertEqual(graph.inputs.map(\.name), ["input"])
        XCTAssertEqual(graph.inputs[0].shape, [1, 3, nil, nil])
        XCTAssertEqual(graph.outputs.map(\.name), ["logits", "prob"])
        XCTAssertEqual(graph.outputs[0].shape, [1, 1000])
        let first = graph.nodes[0]
        XCTAssertEqual(first.opType, "Conv")
        XCTAssertEqual(first.inputs, ["input", "conv1_7x7_s2_W", "conv1_7x7_s2_B"])
        guard case .ints(let pads)? = first.attributes["pads"] else { return XCTFail("pads missing") }
        XCTAssertEqual(pads, [3, 3, 3, 3])
        XCTAssertEqual(Set(graph.nodes.map(\.opType)),
                       ["Concat", "Conv", "Flatten", "Gemm", "GlobalAveragePool", "LRN", "MaxPool", "Relu", "Softmax"])
    }

    func testHandEncodedModelDecodesTypedFieldsAttributesShapesAndMetadata() throws {
        var model = ProtoWriter()
        model.int(1, 3)
        model.string(2, "handmade")
        model.message(8) { $0.string(1, "com.example"); $0.int(2, 2) }
        model.message(8) { $0.string(1, "ai.onnx"); $0.int(2, 11) }
        model.entry(14, "labels", "cat,dog")
        model.message(7) { g in
            g.message(1) { n in  // unnamed node, attributes of every kind; IR-1 style (no type field) for "alpha"
                n.string(1, "x"); n.string(1, "w"); n.string(1, ""); n.string(2, "y"); n.string(4, "Custom")
                n.message(5) { a in a.string(1, "alpha"); a.float(2, 0.5) }
                n.message(5) { a in a.string(1, "axis"); a.int(20, 2); a.int(3, -1) }
                n.message(5) { a in a.string(1, "mode"); a.int(20, 3); a.string(4, "reflect") }
                n.message(5) { a in a.string(1, "pads"); a.int(20, 7); a.int(8, 1); a.int(8, 2) }
                n.message(5) { a in a.string(1, "scales"); a.int(20, 6); a.packedFloats(7, [1.5, 2]) }
                n.message(5) { a in a.string(1, "names"); a.int(20, 8); a.string(9, "a"); a.string(9, "b") }
                n.message(5) { a in
                    a.string(1, "value"); a.int(20, 4)
                    a.message(5) { t in t.int(1, 2); t.int(2, 7); t.packedVarints(7, [4, -5]) }
                }
            }
            g.message(1) { n in n.string(1, "y"); n.string(2, "z"); n.string(3, "last"); n.string(4, "Relu") }
            g.string(2, "hand")
            g.message(5) { t in t.string(8, "w"); t.int(1, 2); t.int(2, 1); t.packedFloats(4, [1, -2]) }
            g.message(5) { t in t.string(8, "d"); t.int(1, 1); t.int(2, 11); t.data(10, withUnsafeBytes(of: (2.25).bitPattern.littleEndian) { Array($0) }) }
            g.message(5) { t in t.string(8, "h"); t.int(1, 2); t.int(2, 10); t.data(9, [0x00, 0x3c, 0x00, 0xc0]) }  // 1, -2 in half
            g.message(5) { t in t.string(8, "i32"); t.int(1, 3); t.int(2, 6); t.data(9, [1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 7, 0, 0, 0]) }
            g.message(5) { t in t.string(8, "b"); t.int(1, 2); t.int(2, 9); t.packedVarints(5, [1, 0]) }
            g.valueInfo(11, name: "x", dims: [1, "N", 4])
            g.valueInfo(11, name: "w", dims: [2])  // an initializer listed as input (IR < 4): not fed by the caller
            g.valueInfo(12, name: "z", dims: ["N"])
        }
        let graph = try ONNXImporter.graph(fromSerialized: Data(model.bytes), baseDirectory: nil)

        XCTAssertEqual(graph.name, "hand")
        XCTAssertEqual(graph.producerName, "handmade")
        XCTAssertEqual(graph.opsetVersion, 11)
        XCTAssertEqual(graph.metadata, ["labels": "cat,dog"])
        XCTAssertEqual(graph.inputs.map(\.name), ["x"])
        XCTAssertEqual(graph.inputs[0].shape, [1, nil, 4])
        XCTAssertEqual(graph.outputs[0].shape, [nil])
        XCTAssertEqual(graph.nodes.map(\.name), ["Custom_0", "last"])
        XCTAssertEqual(graph.nodes[0].inputs, ["x", "w", ""])
        XCTAssertEqual(graph.initializerOrder, ["w", "d", "h", "i32", "b"])
        XCTAssertEqual(graph.initializers["w"]?.floatTensor?.scalars, [1, -2])
        XCTAssertEqual(graph.initializers["d"]?.floatTensor?.scalars, [2.25])
        XCTAssertEqual(graph.initializers["h"]?.floatTensor?.scalars, [1, -2])
        XCTAssertEqual(graph.initializers["i32"]?.intTensor, IntTensor(shape: [3], values: [1, -1, 7]))
        XCTAssertEqual(graph.initializers["b"]?.intTensor, IntTensor(shape: [2], values: [1, 0]))

        let a = graph.nodes[0].attributes
        guard case .float(let alpha)? = a["alpha"], case .int(let axis)? = a["axis"], case .string(let mode)? = a["mode"],
              case .ints(let pads)? = a["pads"], case .floats(let scales)? = a["scales"], case .strings(let names)? = a["names"],
              case .tensor(let value)? = a["value"] else { return XCTFail("attributes decoded wrongly: \(a)") }
        XCTAssertEqual(alpha, 0.5)
        XCTAssertEqual(axis, -1)
        XCTAssertEqual(mode, "reflect")
        XCTAssertEqual(pads, [1, 2])
        XCTAssertEqual(scales, [1.5, 2])
        XCTAssertEqual(names, ["a", "b"])
        XCTAssertEqual(value.intTensor, IntTensor(shape: [2], values: [4, -5]))
    }

    func testExternalDataIsReadFromSideFileAtOffsetAndLength() throws {
        let dir = try SharedData.temporaryDirectory(for: self)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("weights"), withIntermediateDirectories: true)
        try Data([0xAA, 0xBB, 0xCC, 0xDD] + rawBytes([3.5, -1]) + [0xEE]).write(to: dir.appendingPathComponent("weights/w.bin"))
        let model = modelWithInitializer { t in
            t.int(1, 2); t.int(2, 1); t.int(14, 1)
            t.entry(13, "location", "weights/./w.bin"); t.entry(13, "offset", "4"); t.entry(13, "length", "8")
        }
        let url = dir.appendingPathComponent("model.onnx")
        try model.write(to: url)
        let graph = try ONNXImporter.load(contentsOf: url)
        XCTAssertEqual(graph.initializers["w"]?.floatTensor?.scalars, [3.5, -1])

        // Without a directory there is nowhere to look.
        XCTAssertThrowsError(try ONNXImporter.graph(fromSerialized: model, baseDirectory: nil))
        // Length beyond the file.
        let tooLong = modelWithInitializer { t in
            t.int(1, 2); t.int(2, 1); t.int(14, 1)
            t.entry(13, "location", "weights/w.bin"); t.entry(13, "offset", "8"); t.entry(13, "length", "8")
        }
        XCTAssertThrowsError(try ONNXImporter.graph(fromSerialized: tooLong, baseDirectory: dir)) { error in
            XCTAssertTrue("\(error)".contains("w.bin"), "\(error)")
        }
    }

    func testExternalDataLocationsOutsideTheModelDirectoryAreRefused() throws {
        let root = try SharedData.temporaryDirectory(for: self)
        let dir = root.appendingPathComponent("model")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Data(rawBytes([1, 2])).write(to: root.appendingPathComponent("escape.bin"))
        try FileManager.default.createSymbolicLink(at: dir.appendingPathComponent("link.bin"), withDestinationURL: root.appendingPathComponent("escape.bin"))

        for location in ["../escape.bin", "/etc/passwd", "sub/../../escape.bin", "link.bin"] {
            let model = modelWithInitializer { t in
                t.int(1, 2); t.int(2, 1); t.int(14, 1); t.entry(13, "location", location)
            }
            XCTAssertThrowsError(try ONNXImporter.graph(fromSerialized: model, baseDirectory: dir), location) { error in
                guard case ModelError.unsafeExternalDataLocation = error else { return XCTFail("\(location): wrong error \(error)") }
                XCTAssertTrue("\(error)".contains("refusing external data location '\(location)'"), "\(error)")
            }
        }
    }

    func testNodeUsingAValueNobodyProducesIsRejected() throws {
        var model = ProtoWriter()
        model.message(8) { $0.int(2, 13) }
        model.message(7) { g in
            g.message(1) { n in n.string(1, "y"); n.string(2, "z"); n.string(3, "second"); n.string(4, "Relu") }
            g.message(1) { n in n.string(1, "x"); n.string(2, "y"); n.string(3, "first"); n.string(4, "Relu") }
            g.valueInfo(11, name: "x", dims: [1])
            g.valueInfo(12, name: "z", dims: [1])
        }
        XCTAssertThrowsError(try ONNXImporter.graph(fromSerialized: Data(model.bytes), baseDirectory: nil)) { error in
            XCTAssertTrue("\(error)".contains("node 'second' (Relu) uses 'y'"), "\(error)")
        }
    }

    func testTruncatedGarbageAndMissingFilesThrowModelErrorsNamingTheFile() throws {
        let dir = try SharedData.temporaryDirectory(for: self)
        let model = modelWithInitializer { t in t.int(1, 2); t.int(2, 1); t.data(9, rawBytes([1, 2])) }
        XCTAssertNoThrow(try ONNXImporter.graph(fromSerialized: model, baseDirectory: nil))

        let truncated = dir.appendingPathComponent("truncated.onnx")
        try model.prefix(model.count - 5).write(to: truncated)
        XCTAssertThrowsError(try ONNXImporter.load(contentsOf: truncated)) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(truncated.path): not a valid ONNX file (protobuf decoding failed"), "\(error)")
        }
        let text = dir.appendingPathComponent("notes.onnx")
        try Data("hello, this is not a model\n".utf8).write(to: text)
        XCTAssertThrowsError(try ONNXImporter.load(contentsOf: text)) { error in
            XCTAssertTrue("\(error)".hasPrefix(text.path), "\(error)")
        }
        let missing = dir.appendingPathComponent("missing.onnx")
        XCTAssertThrowsError(try ONNXImporter.load(contentsOf: missing)) { error in
            guard case ModelError.fileNotFound(let file) = error else { return XCTFail("wrong error \(error)") }
            XCTAssertEqual(file, missing.path)
        }
    }

    func testRawDataOfTheWrongLengthIsRejected() throws {
        let model = modelWithInitializer { t in t.int(1, 3); t.int(2, 1); t.data(9, rawBytes([1, 2])) }
        XCTAssertThrowsError(try ONNXImporter.graph(fromSerialized: model, baseDirectory: nil)) { error in
            XCTAssertTrue("\(error)".contains("tensor 'w': raw data has 8 bytes, but shape [3] of float needs 12"), "\(error)")
        }
        let strings = modelWithInitializer { t in t.int(1, 1); t.int(2, 8); t.data(6, Array("s".utf8)) }
        XCTAssertThrowsError(try ONNXImporter.graph(fromSerialized: strings, baseDirectory: nil))
    }

    func testONNXReluTestDataLoadsAndOutputIsReluOfInput() throws {
        let dir = URL(fileURLWithPath: "/usr/share/libonnx-testdata/data/node/test_relu")
        guard FileManager.default.fileExists(atPath: dir.path) else { throw XCTSkip("libonnx-testdata is not installed") }
        let graph = try ONNXImporter.load(contentsOf: dir.appendingPathComponent("model.onnx"))
        XCTAssertEqual(graph.nodes.map(\.opType), ["Relu"])
        let input = try TensorProtoFile.read(contentsOf: dir.appendingPathComponent("test_data_set_0/input_0.pb"))
        let output = try TensorProtoFile.read(contentsOf: dir.appendingPathComponent("test_data_set_0/output_0.pb"))
        XCTAssertEqual(input.name, graph.inputs[0].name)
        XCTAssertEqual(input.value.shape, [3, 4, 5])
        let x = try XCTUnwrap(input.value.floatTensor), y = try XCTUnwrap(output.value.floatTensor)
        XCTAssertEqual(y.scalars, x.scalars.map { max($0, 0) })
        XCTAssertTrue(x.scalars.contains { $0 < 0 })
    }
}
