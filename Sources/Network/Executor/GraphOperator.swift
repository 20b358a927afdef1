import Foundation
import Tensors

/// What an operator's forward returns: its outputs and whatever its backward needs beyond inputs/outputs.
public struct ForwardResult {
    public var outputs: [Value]
    public var saved: Saved?
    /// Shapes of outputs the step wrote into another step's output instead of returning them (a convolution writing
    /// its slice of a Concat, `ConcatInPlace`): they never exist as values.
    public var placed: [[Int]] = []

    /// What a forward keeps for its backward when the backward does not see the inputs (`backwardNeeds`).
    public enum Saved {
        /// The shape of the (first) input: Reshape, Flatten, global pools.
        case shape([Int])
        /// The shape of every input, nil for an omitted one: Concat.
        case shapes([[Int]?])
        /// A convolution's output before its fused activation (`FusedConvolutionOperator.savesPreActivation`).
        case preActivation(Tensor)
        /// The input shape and the resolved first index and step per axis: Slice.
        case slice(inputShape: [Int], starts: [Int], steps: [Int])
        /// The input shape and the axes reduced (in range, distinct): ReduceMean.
        case reduction(inputShape: [Int], axes: [Int])
    }

    public init(outputs: [Value], saved: Saved? = nil, placed: [[Int]] = []) {
        self.outputs = outputs
        self.saved = saved
        self.placed = placed
    }
    public init(_ output: Tensor, saved: Saved? = nil) { self.init(outputs: [.float(output)], saved: saved) }

    /// The input shape the forward saved; a missing one is an error, never a silently missing gradient.
    func savedShape(_ node: Node) throws -> [Int] {
        guard case .shape(let shape)? = saved else { throw ExecutionError.missingSavedValue(node: node.name, op: node.opType) }
        return shape
    }

    /// What a Slice forward saved.
    func savedSlice(_ node: Node) throws -> (inputShape: [Int], starts: [Int], steps: [Int]) {
        guard case .slice(let shape, let starts, let steps)? = saved else { throw ExecutionError.missingSavedValue(node: node.name, op: node.opType) }
        return (shape, starts, steps)
    }

    /// What a reduction's forward saved.
    func savedReduction(_ node: Node) throws -> (inputShape: [Int], axes: [Int]) {
        guard case .reduction(let shape, let axes)? = saved else { throw ExecutionError.missingSavedValue(node: node.name, op: node.opType) }
        return (shape, axes)
    }

    /// The input shapes the forward saved; a missing one is an error, never a silently missing gradient.
    func savedShapes(_ node: Node) throws -> [[Int]?] {
        guard case .shapes(let shapes)? = saved else { throw ExecutionError.missingSavedValue(node: node.name, op: node.opType) }
        return shapes
    }
}

/// Which of its forward values an operator's backward reads; lets the executor free the rest early.
public struct BackwardNeeds: OptionSet {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public static let inputs = BackwardNeeds(rawValue: 1)
    public static let outputs = BackwardNeeds(rawValue: 2)
}

/// One ONNX operator, configured from its node's attributes at load time (so bad attributes fail early).
/// Besides forward and backward it answers what the rest of the program needs to know about it (the traits below),
/// so that no other file keeps a list of operator names.
protocol GraphOperator {
    /// outputs = op(inputs); a nil input is an omitted optional one.
    func forward(_ inputs: [Value?]) throws -> ForwardResult
    /// Vector-Jacobian product: gradients for the inputs marked in `need` (nil elsewhere) from the outputs' gradients.
    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?]
    var backwardNeeds: BackwardNeeds { get }
    /// `backward`, free to reuse the storage of the output gradients it takes out of `outputGradients` (the executor
    /// passes gradients that only it holds; a tensor still shared elsewhere is copied on write, as always).
    /// Default: `backward`.
    func backward(consuming outputGradients: inout [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?]

    /// Whether an initializer at input `index` is a trainable parameter (a weight, bias or scale) rather than
    /// configuration (Clip's bounds, a shape, pads, a dropout ratio) or statistics (BatchNormalization's mean and
    /// variance). Default: every input is.
    func isParameterInput(_ index: Int) -> Bool
    /// Multiply-accumulates of one application at these shapes (nil: unknown); 0 for operators without products.
    func multiplyAccumulates(inputShapes: [[Int]?], outputShapes: [[Int]?]) -> Int
    /// An elementwise non-linearity (Relu, Clip, Sigmoid …): its output is what the next layer sees of the previous one.
    var isActivation: Bool { get }
    /// A stage whose output is a set of feature maps worth looking at: convolutions, pools, concatenated branches.
    var producesFeatureMaps: Bool { get }
    /// The kind of layer counted by the short ordinal names (`conv3`, `pool2`; see `LayerNames`), if any.
    var ordinalKind: LayerOrdinalKind? { get }
    /// Cheap and free of state, so that applied to values known before a pass (constants, shapes) it may run once
    /// per input shape instead of every pass (`ShapeFolding`): shape arithmetic and data movement on small tensors.
    var isFoldable: Bool { get }
    /// Reads only the shapes of its inputs, never their values (Shape): its output is known once the shapes are.
    var readsOnlyShapes: Bool { get }
}

extension GraphOperator {
    var backwardNeeds: BackwardNeeds { [.inputs, .outputs] }
    func backward(consuming outputGradients: inout [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        try backward(outputGradients, inputs: inputs, result: result, need: need)
    }
    func isParameterInput(_ index: Int) -> Bool { true }
    func multiplyAccumulates(inputShapes: [[Int]?], outputShapes: [[Int]?]) -> Int { 0 }
    var isActivation: Bool { false }
    var producesFeatureMaps: Bool { false }
    var ordinalKind: LayerOrdinalKind? { nil }
    var isFoldable: Bool { false }
    var readsOnlyShapes: Bool { false }
}

/// Reads a node's attributes with ONNX defaults, failing with the node's name on a wrong type.
struct AttributeReader {
    let node: Node

    func int(_ name: String, default value: Int) throws -> Int {
        switch node.attributes[name] {
        case nil: return value
        case .int(let v)?: return v
        default: throw ExecutionError.badAttribute(node: node.name, op: node.opType, attribute: name, expected: "an integer")
        }
    }

    func float(_ name: String, default value: Float) throws -> Float {
        switch node.attributes[name] {
        case nil: return value
        case .float(let v)?: return v
        case .int(let v)?: return Float(v)
        default: throw ExecutionError.badAttribute(node: node.name, op: node.opType, attribute: name, expected: "a float")
        }
    }

    func string(_ name: String, default value: String) throws -> String {
        switch node.attributes[name] {
        case nil: return value
        case .string(let v)?: return v
        default: throw ExecutionError.badAttribute(node: node.name, op: node.opType, attribute: name, expected: "a string")
        }
    }

    func ints(_ name: String) throws -> [Int]? {
        switch node.attributes[name] {
        case nil: return nil
        case .ints(let v)?: return v
        case .int(let v)?: return [v]
        default: throw ExecutionError.badAttribute(node: node.name, op: node.opType, attribute: name, expected: "a list of integers")
        }
    }

    func floats(_ name: String) throws -> [Float]? {
        switch node.attributes[name] {
        case nil: return nil
        case .floats(let v)?: return v
        case .float(let v)?: return [v]
        default: throw ExecutionError.badAttribute(node: node.name, op: node.opType, attribute: name, expected: "a list of floats")
        }
    }

    func tensor(_ name: String) throws -> Value? {
        switch node.attributes[name] {
        case nil: return nil
        case .tensor(let v)?: return v
        default: throw ExecutionError.badAttribute(node: node.name, op: node.opType, attribute: name, expected: "a tensor")
        }
    }
}

/// Input access with clear errors when a value has the wrong kind.
extension Array where Element == Value? {
    func float(_ index: Int, _ op: String) throws -> Tensor {
        guard index < count, let v = self[index] else { throw ExecutionError.missingInput(op: op, index: index) }
        switch v {
        case .float(let t): return t
        case .int(let t): return Tensor(shape: t.shape, scalars: t.values.map { Float($0) })
        }
    }

    func optionalFloat(_ index: Int, _ op: String) throws -> Tensor? {
        guard index < count, self[index] != nil else { return nil }
        return try float(index, op)
    }
}
