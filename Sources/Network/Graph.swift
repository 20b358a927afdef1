import Foundation
import Tensors

/// Integer tensor (ONNX int64/int32/bool data): shapes, axes, pads and indices travel as these.
public struct IntTensor: Equatable {
    public var shape: [Int]
    public var values: [Int64]
    public init(shape: [Int], values: [Int64]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) needs \(shape.reduce(1, *)) values, got \(values.count)")
        self.shape = shape
        self.values = values
    }
}

/// A value flowing along a graph edge.
public enum Value {
    case float(Tensor)
    case int(IntTensor)

    public var shape: [Int] {
        switch self {
        case .float(let t): return t.shape
        case .int(let t): return t.shape
        }
    }

    public var floatTensor: Tensor? { if case .float(let t) = self { return t } else { return nil } }
    public var intTensor: IntTensor? { if case .int(let t) = self { return t } else { return nil } }

    /// Integer contents (ints as they are; floats truncated) — for shape-like inputs. A float that is no integer
    /// (NaN, infinite, beyond Int64) becomes Int64.min, which every shape and pad check refuses.
    public var integers: [Int64] {
        switch self {
        case .int(let t): return t.values
        case .float(let t): return t.scalars.map { $0.isFinite && abs($0) < 9.2e18 ? Int64($0) : .min }
        }
    }
}

/// An ONNX node attribute.
public enum AttributeValue {
    case int(Int)
    case float(Float)
    case string(String)
    case ints([Int])
    case floats([Float])
    case strings([String])
    case tensor(Value)
}

/// One operator application: `outputs = opType(inputs; attributes)`. An empty input name is an omitted optional input.
public struct Node {
    public var name: String
    public var opType: String
    public var domain: String
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [String: AttributeValue]

    public init(name: String, opType: String, domain: String = "", inputs: [String], outputs: [String],
                attributes: [String: AttributeValue] = [:]) {
        self.name = name
        self.opType = opType
        self.domain = domain
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
    }
}

/// ONNX element types we know by number (TensorProto.DataType).
public enum ElementType: Int {
    case undefined = 0, float = 1, uint8 = 2, int8 = 3, uint16 = 4, int16 = 5, int32 = 6, int64 = 7,
         string = 8, bool = 9, float16 = 10, double = 11, uint32 = 12, uint64 = 13
}

/// A declared graph input or output: name, element type and shape (nil = symbolic / unknown dimension).
public struct ValueInfo {
    public var name: String
    public var elementType: ElementType
    public var shape: [Int?]?
    public init(name: String, elementType: ElementType = .float, shape: [Int?]? = nil) {
        self.name = name
        self.elementType = elementType
        self.shape = shape
    }
}

/// A computation graph, as imported from (and exported to) ONNX.
/// `nodes` are in topological order; `initializers` are the parameters (and constants) by ONNX name.
public struct Graph {
    public var name: String
    public var nodes: [Node]
    public var initializers: [String: Value]
    /// Initializer names in file order (dictionaries have none; tables and exports keep this order).
    public var initializerOrder: [String]
    /// Inputs the caller must feed (initializers excluded).
    public var inputs: [ValueInfo]
    public var outputs: [ValueInfo]
    /// Opset version of the default ("" / "ai.onnx") domain.
    public var opsetVersion: Int
    /// ModelProto.metadata_props (labels, preprocessing … for self-describing files).
    public var metadata: [String: String]
    public var producerName: String

    public init(name: String = "graph", nodes: [Node] = [], initializers: [String: Value] = [:], initializerOrder: [String]? = nil,
                inputs: [ValueInfo] = [], outputs: [ValueInfo] = [], opsetVersion: Int = 13,
                metadata: [String: String] = [:], producerName: String = "") {
        self.name = name
        self.nodes = nodes
        self.initializers = initializers
        self.initializerOrder = initializerOrder ?? initializers.keys.sorted()
        self.inputs = inputs
        self.outputs = outputs
        self.opsetVersion = opsetVersion
        self.metadata = metadata
        self.producerName = producerName
    }
}
