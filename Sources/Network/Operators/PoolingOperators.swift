import Tensors

/// ONNX MaxPool: X [N,C,H,W] -> Y [N,C,OH,OW] (the optional Indices output is not produced)
struct MaxPoolOperator: GraphOperator {
    let node: Node
    let attributes: SpatialWindowAttributes

    init(_ node: Node) throws {
        self.node = node
        attributes = try SpatialWindowAttributes(node, requireKernel: true)
        try attributes.validate(node, pooling: true)
        if try AttributeReader(node: node).int("storage_order", default: 0) != 0 {
            throw ExecutionError.unsupportedAttribute(node: node.name, op: "MaxPool", detail: "storage_order=1")
        }
        if node.outputs.count > 1 && !node.outputs[1].isEmpty {
            throw ExecutionError.unsupportedAttribute(node: node.name, op: "MaxPool", detail: "the Indices output")
        }
    }

    var backwardNeeds: BackwardNeeds { [.inputs, .outputs] }
    var producesFeatureMaps: Bool { true }
    var ordinalKind: LayerOrdinalKind? { .pool }

    /// The window for `original` (rank 3 or 4), checked against it before any kernel runs.
    private func window(for original: Tensor) throws -> Window2D {
        try attributes.checkedWindow(node, kernel: attributes.kernel!, input: original, channels: original.shape[1])
    }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        let original = try inputs.float(0, "MaxPool")
        let x = try asNCHW(original, node: node)
        return ForwardResult(restoringRank(MaxPool.forward(x, window: try window(for: original)), like: original.shape))
    }

    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        guard let dy = outputGradients[0], case .float(let y)? = result.outputs.first else { return [nil] }
        let original = try inputs.float(0, "MaxPool")
        let x = try asNCHW(original, node: node)
        let dx = MaxPool.backward(try asNCHW(dy, node: node), x: x, y: try asNCHW(y, node: node), window: try window(for: original))
        return [dx.reshaped(original.shape)]
    }
}

/// ONNX AveragePool: X [N,C,H,W] -> Y [N,C,OH,OW]
struct AveragePoolOperator: GraphOperator {
    let node: Node
    let attributes: SpatialWindowAttributes
    let countIncludePad: Bool

    init(_ node: Node) throws {
        self.node = node
        attributes = try SpatialWindowAttributes(node, requireKernel: true)
        try attributes.validate(node, pooling: true)
        countIncludePad = try AttributeReader(node: node).int("count_include_pad", default: 0) != 0
    }

    private init(node: Node, attributes: SpatialWindowAttributes, countIncludePad: Bool) {
        self.node = node
        self.attributes = attributes
        self.countIncludePad = countIncludePad
    }

    /// This pool reading the input before a zero Pad of [top, left, bottom, right] (see
    /// `PadOperator.zeroSpatialPads`). The Pad's zeros are input the divisor counts, so the folded pool counts its
    /// padding; that is the same computation when the pool counted its own padding already, or had none.
    func foldingZeroPadding(_ extra: [Int]) -> AveragePoolOperator? {
        // ceil_mode drops a last window that would start in the end padding: the Pad's zeros are not padding to it.
        guard !attributes.ceilMode, countIncludePad || attributes.pads.allSatisfy({ $0 == 0 }), let kernel = attributes.kernel,
              let widened = attributes.addingZeroPadding(extra, node: node, kernelRank: kernel.count, pooling: true) else { return nil }
        return AveragePoolOperator(node: node, attributes: widened, countIncludePad: true)
    }

    var backwardNeeds: BackwardNeeds { .inputs }
    var producesFeatureMaps: Bool { true }
    var ordinalKind: LayerOrdinalKind? { .pool }

    /// The window for `original` (rank 3 or 4), checked against it before any kernel runs.
    private func window(for original: Tensor) throws -> Window2D {
        try attributes.checkedWindow(node, kernel: attributes.kernel!, input: original, channels: original.shape[1])
    }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        let original = try inputs.float(0, "AveragePool")
        let x = try asNCHW(original, node: node)
        let y = AveragePool.forward(x, window: try window(for: original), countIncludePad: countIncludePad)
        return ForwardResult(restoringRank(y, like: original.shape))
    }

    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        guard let dy = outputGradients[0] else { return [nil] }
        let original = try inputs.float(0, "AveragePool")
        let x = try asNCHW(original, node: node)
        let dx = AveragePool.backward(try asNCHW(dy, node: node), inputShape: x.shape, window: try window(for: original), countIncludePad: countIncludePad)
        return [dx.reshaped(original.shape)]
    }
}

/// ONNX GlobalAveragePool / GlobalMaxPool: X [N,C,H,W] -> Y [N,C,1,1]
struct GlobalPoolOperator: GraphOperator {
    let node: Node
    let isMax: Bool

    init(_ node: Node) {
        self.node = node
        isMax = node.opType == "GlobalMaxPool"
    }

    var backwardNeeds: BackwardNeeds { isMax ? [.inputs, .outputs] : [] }
    var producesFeatureMaps: Bool { true }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        let original = try inputs.float(0, node.opType)
        let x = try asNCHW(original, node: node)
        guard x.shape[2] * x.shape[3] > 0 else { throw node.invalid("the input \(original.shape) has no spatial elements to pool") }
        let outShape = Array(original.shape.prefix(2)) + Array(repeating: 1, count: original.rank - 2)
        let y = isMax ? GlobalMaxPool.forward(x) : GlobalAveragePool.forward(x)
        return ForwardResult(y.reshaped(outShape), saved: .shape(original.shape))
    }

    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        guard let dy = outputGradients[0] else { return [nil] }
        let shape = try result.savedShape(node)
        let x4 = shape.count == 3 ? [shape[0], shape[1], 1, shape[2]] : shape
        let dy4 = dy.reshaped([x4[0], x4[1], 1, 1])
        if isMax, case .float(let y)? = result.outputs.first {
            let x = try inputs.float(0, node.opType).reshaped(x4)
            return [GlobalMaxPool.backward(dy4, x: x, y: y.reshaped(dy4.shape)).reshaped(shape)]
        }
        return [GlobalAveragePool.backward(dy4, inputShape: x4).reshaped(shape)]
    }
}
