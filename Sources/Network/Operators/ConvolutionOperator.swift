import Tensors

/// ONNX Conv: X [N,C,H,W] (or [N,C,L]), W [M,C/group,kH,kW], B [M]? -> Y [N,M,OH,OW]
struct ConvolutionOperator: GraphOperator {
    let node: Node
    let attributes: SpatialWindowAttributes
    let groups: Int
    /// Where Winograd keeps this layer's transformed weights between calls; set by the executor's planner for frozen
    /// weights (`GraphExecutor.plan`), nil: transform per call.
    var winogradCache: WinogradWeightCache?

    init(_ node: Node) throws {
        self.node = node
        attributes = try SpatialWindowAttributes(node, requireKernel: false)
        try attributes.validate(node, pooling: false)
        groups = try AttributeReader(node: node).int("group", default: 1)
        guard groups >= 1 else { throw node.badAttribute("group", "at least 1, not \(groups)") }
    }

    private init(node: Node, attributes: SpatialWindowAttributes, groups: Int) {
        self.node = node
        self.attributes = attributes
        self.groups = groups
    }

    /// This convolution reading the input before a zero Pad of [top, left, bottom, right] (see
    /// `PadOperator.zeroSpatialPads`): the pads join the window's own. `weightShape`: the weight's shape when known
    /// before the run (the kernel's rank, if the node does not give kernel_shape).
    func foldingZeroPadding(_ extra: [Int], weightShape: [Int]?) -> ConvolutionOperator? {
        guard let rank = attributes.kernel?.count ?? weightShape.map({ $0.count - 2 }),
              let widened = attributes.addingZeroPadding(extra, node: node, kernelRank: rank, pooling: false) else { return nil }
        return ConvolutionOperator(node: node, attributes: widened, groups: groups)
    }

    var backwardNeeds: BackwardNeeds { .inputs }
    var producesFeatureMaps: Bool { true }
    var ordinalKind: LayerOrdinalKind? { .conv }

    /// One product per output value and weight of its filter: |Y| · C/group · kH · kW.
    func multiplyAccumulates(inputShapes: [[Int]?], outputShapes: [[Int]?]) -> Int {
        guard let y = outputShapes.first ?? nil, inputShapes.count > 1, let w = inputShapes[1] else { return 0 }
        return y.reduce(1, *) * w.dropFirst().reduce(1, *)
    }

    /// Inputs checked against each other before any kernel runs: ranks, channels and groups, the kernel size against
    /// the weight, the bias length, and an output that can be allocated.
    private func prepared(_ inputs: [Value?]) throws -> (x: Tensor, w: Tensor, window: Window2D) {
        let xOriginal = try inputs.float(0, "Conv")
        let wOriginal = try inputs.float(1, "Conv")
        let x = try asNCHW(xOriginal, node: node)
        guard wOriginal.rank == xOriginal.rank else {
            throw node.invalid("the weight \(wOriginal.shape) must have the rank of the input \(xOriginal.shape)")
        }
        let w = try asNCHW(wOriginal, node: node)
        let kernel = attributes.kernel ?? Array(wOriginal.shape.dropFirst(2))
        guard kernel == Array(wOriginal.shape.dropFirst(2)) else {
            throw node.invalid("kernel_shape \(kernel) differs from the weight \(wOriginal.shape)")
        }
        guard w.shape.allSatisfy({ $0 >= 1 }), x.shape[1] == w.shape[1] * groups, w.shape[0] % groups == 0 else {
            throw ExecutionError.shapeMismatch(node: node.name, op: "Conv",
                detail: "input has \(x.shape[1]) channels but the weight \(wOriginal.shape) with group=\(groups) expects \(w.shape[1] * groups)")
        }
        guard kernel.allSatisfy({ $0 <= TensorLimits.maxWindowAttribute }) else { throw node.invalid("the kernel \(kernel) is too large") }
        if let bias = try inputs.optionalFloat(2, "Conv"), bias.shape != [w.shape[0]] {
            throw node.invalid("the bias \(bias.shape) should be [\(w.shape[0])], one value per output channel")
        }
        let window = try attributes.checkedWindow(node, kernel: kernel, input: xOriginal, channels: w.shape[0])
        // The im2col buffer of one image: (C/group · kH · kW) x (OH · OW).
        let out = window.outputSize(inputH: x.shape[2], inputW: x.shape[3])
        try node.requireAllocatable([w.shape[1], kernel.reduce(1, *), out.height, out.width], "the convolution's work buffer")
        return (x, w, window)
    }

    func forward(_ inputs: [Value?]) throws -> ForwardResult { try forward(inputs, epilogue: nil) }

    /// Y = epilogue(conv(X) + B): a fused step (`LayerFusion`) applies its activation where the kernel writes Y.
    func forward(_ inputs: [Value?], epilogue: Activation?) throws -> ForwardResult {
        let (x, w, window) = try prepared(inputs)
        let bias = try inputs.optionalFloat(2, "Conv")
        let y = Convolution.forward(x, weight: w, bias: bias, window: window, groups: groups, epilogue: epilogue,
                                    winogradCache: winogradCache)
        return ForwardResult(restoringRank(y, like: try inputs.float(0, "Conv").shape))
    }

    /// The same Y for one image (N = 1), written where `destination(shape of Y)` says (a slice of a Concat's output,
    /// `ConcatInPlace`) instead of into a tensor of its own. Returns Y's shape.
    func forward(_ inputs: [Value?], epilogue: Activation?,
                 into destination: ([Int]) throws -> UnsafeMutablePointer<Float>) throws -> [Int] {
        let (x, w, window) = try prepared(inputs)
        precondition(x.shape[0] == 1, "Conv: only one image is written into a destination")
        let bias = try inputs.optionalFloat(2, "Conv")
        let out = window.outputSize(inputH: x.shape[2], inputW: x.shape[3])
        let original = try inputs.float(0, "Conv").shape
        let shape = original.count == 3 ? [1, w.shape[0], out.width] : [1, w.shape[0], out.height, out.width]
        Convolution.forward(x, weight: w, bias: bias, window: window, groups: groups, epilogue: epilogue,
                            winogradCache: winogradCache, into: try destination(shape))
        return shape
    }

    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        guard let dyOriginal = outputGradients[0] else { return [nil, nil, nil] }
        let (x, w, window) = try prepared(inputs)
        let dy = try asNCHW(dyOriginal, node: node)
        let needParams = need.count > 1 && (need[1] || (need.count > 2 && need[2]))
        let g = Convolution.backward(dy, x: x, weight: w, window: window, groups: groups,
                                     needInputGradient: need[0], needParameterGradients: needParams,
                                     winogradCache: winogradCache)
        let xShape = try inputs.float(0, "Conv").shape
        let wShape = try inputs.float(1, "Conv").shape
        return [g.dx.map { $0.reshaped(xShape) }, g.dWeight.map { $0.reshaped(wShape) },
                inputs.count > 2 && inputs[2] != nil ? g.dBias : nil]
    }
}
