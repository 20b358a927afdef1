import Foundation
import SwiftProtobuf
import Tensors

/// Reads an ONNX ModelProto into a `Graph`, checking the parts of the ONNX rules the runtime relies on.
public enum ONNXImporter {
    /// Loads a .onnx file; external tensor data is read from files beside it (never from outside its directory).
    public static func load(contentsOf url: URL) throws -> Graph {
        let data = try readFile(url, mapped: true)
        return try importModel(data, file: url.path, baseDirectory: url.deletingLastPathComponent())
    }

    /// Decodes serialized ModelProto bytes; `baseDirectory` is where external data lives (nil: none allowed).
    public static func graph(fromSerialized data: Data, baseDirectory: URL?) throws -> Graph {
        try importModel(data, file: "<serialized model>", baseDirectory: baseDirectory)
    }

    static func importModel(_ data: Data, file: String, baseDirectory: URL?) throws -> Graph {
        let model: Onnx_ModelProto
        do {
            var options = BinaryDecodingOptions()
            options.discardUnknownFields = true  // training info, sparse initializers, docs: not needed, not kept
            model = try Onnx_ModelProto(serializedBytes: data, options: options)
        } catch {
            throw ModelError.invalidProtobuf(file: file, what: "ONNX", reason: "\(error)")
        }
        guard model.hasGraph else {
            throw ModelError.invalidModel(file: file, reason: "it has no graph (is this really an .onnx file?)")
        }
        let external = ExternalDataReader(file: file, baseDirectory: baseDirectory)
        let proto = model.graph

        // Models older than IR 3 have no opset_import and mean opset 1.
        let opset = model.opsetImport.first { $0.domain == "" || $0.domain == "ai.onnx" }.map { Int($0.version) } ?? 1

        var initializers: [String: Value] = [:]
        var initializerOrder: [String] = []
        initializers.reserveCapacity(proto.initializer.count)
        for tensor in proto.initializer {
            guard !tensor.name.isEmpty else { throw ModelError.invalidModel(file: file, reason: "an initializer has no name") }
            guard initializers[tensor.name] == nil else {
                throw ModelError.invalidModel(file: file, reason: "initializer '\(tensor.name)' appears twice")
            }
            initializers[tensor.name] = try value(from: tensor, file: file, external: external)
            initializerOrder.append(tensor.name)
        }

        // Since IR 4 initializers need not be listed as inputs; older files list them, and they are not fed.
        let inputs = try proto.input.filter { initializers[$0.name] == nil }.map { try valueInfo($0, file: file) }
        let outputs = try proto.output.map { try valueInfo($0, file: file) }

        var available = Set(initializerOrder)
        for input in proto.input { available.insert(input.name) }
        var nodes: [Node] = []
        nodes.reserveCapacity(proto.node.count)
        for (index, nodeProto) in proto.node.enumerated() {
            let name = nodeProto.name.isEmpty ? "\(nodeProto.opType)_\(index)" : nodeProto.name
            guard !nodeProto.opType.isEmpty else {
                throw ModelError.invalidModel(file: file, reason: "node \(index) ('\(name)') has no op_type")
            }
            for input in nodeProto.input where !input.isEmpty && !available.contains(input) {
                throw ModelError.invalidModel(file: file, reason: "node '\(name)' (\(nodeProto.opType)) uses '\(input)', which is "
                                              + "not a graph input or initializer and no earlier node produces (nodes must be in topological order)")
            }
            var attributes: [String: AttributeValue] = [:]
            for attribute in nodeProto.attribute {
                attributes[attribute.name] = try attributeValue(attribute, node: name, file: file, external: external)
            }
            for output in nodeProto.output where !output.isEmpty { available.insert(output) }
            nodes.append(Node(name: name, opType: nodeProto.opType, domain: nodeProto.domain == "ai.onnx" ? "" : nodeProto.domain,
                              inputs: nodeProto.input, outputs: nodeProto.output, attributes: attributes))
        }
        for output in outputs where !available.contains(output.name) {
            throw ModelError.invalidModel(file: file, reason: "graph output '\(output.name)' is produced by no node")
        }

        var metadata: [String: String] = [:]
        for entry in model.metadataProps { metadata[entry.key] = entry.value }

        return Graph(name: proto.name, nodes: nodes, initializers: initializers, initializerOrder: initializerOrder,
                     inputs: inputs, outputs: outputs, opsetVersion: opset, metadata: metadata, producerName: model.producerName)
    }

    private static func valueInfo(_ proto: Onnx_ValueInfoProto, file: String) throws -> ValueInfo {
        guard !proto.name.isEmpty else { throw ModelError.invalidModel(file: file, reason: "a graph input or output has no name") }
        guard case .tensorType(let tensorType)? = proto.type.value else {
            return ValueInfo(name: proto.name, elementType: .undefined, shape: nil)
        }
        let shape: [Int?]? = tensorType.hasShape ? tensorType.shape.dim.map { dim in
            if case .dimValue(let v)? = dim.value, v >= 0 { return Int(v) }
            return nil  // symbolic (dim_param) or unknown
        } : nil
        return ValueInfo(name: proto.name, elementType: ElementType(rawValue: Int(tensorType.elemType)) ?? .undefined, shape: shape)
    }

    private static func attributeValue(_ a: Onnx_AttributeProto, node: String, file: String,
                                       external: ExternalDataReader) throws -> AttributeValue {
        if a.hasRefAttrName {
            throw ModelError.invalidModel(file: file, reason: "attribute '\(a.name)' of node '\(node)' refers to a function attribute")
        }
        // IR 1 files have no type discriminator: infer it from the field that is set.
        let type: Onnx_AttributeProto.AttributeType
        if a.hasType {
            type = a.type
        } else if a.hasF { type = .float
        } else if a.hasI { type = .int
        } else if a.hasS { type = .string
        } else if a.hasT { type = .tensor
        } else if a.hasG { type = .graph
        } else if !a.floats.isEmpty { type = .floats
        } else if !a.ints.isEmpty { type = .ints
        } else if !a.strings.isEmpty { type = .strings
        } else if !a.tensors.isEmpty { type = .tensors
        } else { type = .ints }  // an empty list
        switch type {
        case .float: return .float(a.f)
        case .int: return .int(Int(a.i))
        case .string: return .string(String(decoding: a.s, as: UTF8.self))
        case .floats: return .floats(a.floats)
        case .ints: return .ints(a.ints.map { Int($0) })
        case .strings: return .strings(a.strings.map { String(decoding: $0, as: UTF8.self) })
        case .tensor:
            var t = a.t
            if t.name.isEmpty { t.name = "\(node).\(a.name)" }  // so errors say which tensor
            return .tensor(try value(from: t, file: file, external: external))
        default:
            throw ModelError.unsupported(file: file, reason: "attribute '\(a.name)' of node '\(node)' has type \(type), "
                                         + "but dream only reads int, float, string, their lists, and tensor attributes")
        }
    }
}
