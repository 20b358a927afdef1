import Foundation
import SwiftProtobuf
import Tensors

/// Writes a `Graph` as an ONNX ModelProto that ONNX tools (and `ONNXImporter`) read back unchanged.
public enum ONNXExporter {
    /// The serialized ModelProto of `graph` (producer "dream", parameters as raw_data).
    public static func serialize(_ graph: Graph, irVersion: Int = 8) throws -> Data {
        var model = Onnx_ModelProto()
        model.irVersion = Int64(irVersion)
        model.producerName = "dream"
        var defaultOpset = Onnx_OperatorSetIdProto()
        defaultOpset.domain = ""
        defaultOpset.version = Int64(graph.opsetVersion)
        model.opsetImport = [defaultOpset]
        // Every domain a node uses must be imported; custom domains carry no version of ours, so 1.
        for domain in Set(graph.nodes.map(\.domain)).subtracting(["", "ai.onnx"]).sorted() {
            var opset = Onnx_OperatorSetIdProto()
            opset.domain = domain
            opset.version = 1
            model.opsetImport.append(opset)
        }
        model.metadataProps = graph.metadata.keys.sorted().map { key in
            var entry = Onnx_StringStringEntryProto()
            entry.key = key
            entry.value = graph.metadata[key]!
            return entry
        }

        var proto = Onnx_GraphProto()
        proto.name = graph.name
        proto.node = graph.nodes.map(nodeProto)
        let listed = Set(graph.initializerOrder)
        let order = graph.initializerOrder.filter { graph.initializers[$0] != nil }
            + graph.initializers.keys.filter { !listed.contains($0) }.sorted()
        proto.initializer = order.map { tensorProto(named: $0, from: graph.initializers[$0]!) }
        proto.input = graph.inputs.map(valueInfoProto)
        proto.output = graph.outputs.map(valueInfoProto)
        model.graph = proto

        do {
            return try model.serializedBytes()
        } catch {
            throw ModelError.invalidModel(file: "<export of graph '\(graph.name)'>", reason: "protobuf encoding failed: \(error)")
        }
    }

    /// Serializes `graph` to `url` atomically (temporary file in the same directory, then rename).
    public static func write(_ graph: Graph, to url: URL) throws {
        try writeFileAtomically(try serialize(graph), to: url)
    }

    private static func nodeProto(_ node: Node) -> Onnx_NodeProto {
        var proto = Onnx_NodeProto()
        proto.name = node.name
        proto.opType = node.opType
        if !node.domain.isEmpty { proto.domain = node.domain }
        proto.input = node.inputs
        proto.output = node.outputs
        proto.attribute = node.attributes.keys.sorted().map { attributeProto(name: $0, value: node.attributes[$0]!, node: node.name) }
        return proto
    }

    private static func attributeProto(name: String, value: AttributeValue, node: String) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        switch value {
        case .int(let v): a.type = .int; a.i = Int64(v)
        case .float(let v): a.type = .float; a.f = v
        case .string(let v): a.type = .string; a.s = Data(v.utf8)
        case .ints(let v): a.type = .ints; a.ints = v.map { Int64($0) }
        case .floats(let v): a.type = .floats; a.floats = v
        case .strings(let v): a.type = .strings; a.strings = v.map { Data($0.utf8) }
        case .tensor(let v): a.type = .tensor; a.t = tensorProto(named: "", from: v)
        }
        return a
    }

    private static func valueInfoProto(_ info: ValueInfo) -> Onnx_ValueInfoProto {
        var proto = Onnx_ValueInfoProto()
        proto.name = info.name
        var tensorType = Onnx_TypeProto.Tensor()
        tensorType.elemType = Int32(info.elementType.rawValue)
        if let shape = info.shape {
            var shapeProto = Onnx_TensorShapeProto()
            shapeProto.dim = shape.enumerated().map { axis, size in
                var dim = Onnx_TensorShapeProto.Dimension()
                // A symbol per (value, axis): a shared name would claim two unknown sizes are equal.
                if let size { dim.dimValue = Int64(size) } else { dim.dimParam = "\(info.name)_dim\(axis)" }
                return dim
            }
            tensorType.shape = shapeProto
        }
        var type = Onnx_TypeProto()
        type.tensorType = tensorType
        proto.type = type
        return proto
    }
}
