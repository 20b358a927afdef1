import Foundation

/// The ONNX operators this engine implements, and how each is built from its node.
public enum OperatorRegistry {
    public static let supportedOperators: [String] = [
        "Add", "AveragePool", "BatchNormalization", "Clip", "Concat", "Constant", "Conv", "Div", "Dropout", "Flatten", "Gemm",
        "GlobalAveragePool", "GlobalMaxPool", "HardSigmoid", "HardSwish", "Identity", "LRN", "LeakyRelu", "MatMul", "MaxPool",
        "Mul", "Pad", "Relu", "Reshape", "Sigmoid", "Softmax", "Sub", "Tanh",
    ]

    static func make(_ node: Node, opset: Int) throws -> GraphOperator {
        guard node.domain.isEmpty || node.domain == "ai.onnx" else {
            throw ExecutionError.unsupportedOperator(op: node.opType, node: node.name, domain: node.domain)
        }
        switch node.opType {
        case "Conv": return try ConvolutionOperator(node)
        case "MaxPool": return try MaxPoolOperator(node)
        case "AveragePool": return try AveragePoolOperator(node)
        case "GlobalAveragePool", "GlobalMaxPool": return GlobalPoolOperator(node)
        case "Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh": return try ActivationOperator(node, opset: opset)
        case "Add", "Sub", "Mul", "Div": return try ElementwiseBinaryOperator(node)
        case "LRN": return try LocalResponseNormOperator(node)
        case "BatchNormalization": return try BatchNormOperator(node)
        case "Softmax": return try SoftmaxOperator(node, opset: opset)
        case "Gemm": return try GemmOperator(node)
        case "MatMul": return MatMulOperator(node: node)
        case "Identity", "Dropout": return IdentityOperator(node: node)
        case "Flatten", "Reshape": return try ReshapeOperator(node)
        case "Constant": return try ConstantOperator(node)
        case "Concat": return try ConcatOperator(node)
        case "Pad": return try PadOperator(node, opset: opset)
        default: throw ExecutionError.unsupportedOperator(op: node.opType, node: node.name, domain: node.domain)
        }
    }
}
