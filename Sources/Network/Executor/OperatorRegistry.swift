import Foundation

/// The ONNX operators this engine implements: one line per operator type, naming the `GraphOperator` that runs it.
/// Adding an operator takes its kernel (Tensors), its operator type (Network/Operators) and one line here.
public enum OperatorRegistry {
    /// Builds the operator of a node from its attributes and the model's opset version.
    typealias Factory = (_ node: Node, _ opset: Int) throws -> GraphOperator

    static let factories: [String: Factory] = [
        "Add": { node, _ in try ElementwiseBinaryOperator(node) },
        "AveragePool": { node, _ in try AveragePoolOperator(node) },
        "BatchNormalization": { node, _ in try BatchNormOperator(node) },
        "Cast": { node, _ in try CastOperator(node) },
        "Clip": { node, opset in try ActivationOperator(node, opset: opset) },
        "Concat": { node, _ in try ConcatOperator(node) },
        "Constant": { node, _ in try ConstantOperator(node) },
        "Conv": { node, _ in try ConvolutionOperator(node) },
        "Div": { node, _ in try ElementwiseBinaryOperator(node) },
        "Dropout": { node, _ in IdentityOperator(node: node) },
        "Flatten": { node, _ in try ReshapeOperator(node) },
        "Gather": { node, _ in try GatherOperator(node) },
        "Gemm": { node, _ in try GemmOperator(node) },
        "GlobalAveragePool": { node, _ in GlobalPoolOperator(node) },
        "GlobalMaxPool": { node, _ in GlobalPoolOperator(node) },
        "HardSigmoid": { node, opset in try ActivationOperator(node, opset: opset) },
        "HardSwish": { node, opset in try ActivationOperator(node, opset: opset) },
        "Identity": { node, _ in IdentityOperator(node: node) },
        "LRN": { node, _ in try LocalResponseNormOperator(node) },
        "LeakyRelu": { node, opset in try ActivationOperator(node, opset: opset) },
        "MatMul": { node, _ in MatMulOperator(node: node) },
        "MaxPool": { node, _ in try MaxPoolOperator(node) },
        "Mul": { node, _ in try ElementwiseBinaryOperator(node) },
        "Pad": { node, opset in try PadOperator(node, opset: opset) },
        "ReduceMean": { node, opset in try ReduceMeanOperator(node, opset: opset) },
        "Relu": { node, opset in try ActivationOperator(node, opset: opset) },
        "Reshape": { node, _ in try ReshapeOperator(node) },
        "Shape": { node, _ in try ShapeOperator(node) },
        "Sigmoid": { node, opset in try ActivationOperator(node, opset: opset) },
        "Slice": { node, opset in try SliceOperator(node, opset: opset) },
        "Softmax": { node, opset in try SoftmaxOperator(node, opset: opset) },
        "Split": { node, opset in try SplitOperator(node, opset: opset) },
        "Squeeze": { node, opset in try UnsqueezeOperator(node, opset: opset) },
        "Sub": { node, _ in try ElementwiseBinaryOperator(node) },
        "Tanh": { node, opset in try ActivationOperator(node, opset: opset) },
        "Transpose": { node, _ in try TransposeOperator(node) },
        "Unsqueeze": { node, opset in try UnsqueezeOperator(node, opset: opset) },
    ]

    /// Every supported operator type, sorted.
    public static let supportedOperators: [String] = factories.keys.sorted()

    static func make(_ node: Node, opset: Int) throws -> GraphOperator {
        guard node.domain.isEmpty || node.domain == "ai.onnx", let factory = factories[node.opType] else {
            throw ExecutionError.unsupportedOperator(op: node.opType, node: node.name, domain: node.domain)
        }
        return try factory(node, opset)
    }
}
