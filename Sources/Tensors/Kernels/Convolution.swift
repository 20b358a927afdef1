import Parallel

/// 2-D convolution (ONNX Conv, NCHW) with groups: im2col + sgemm, a direct GEMM for pointwise (1x1, stride 1,
/// no padding) convolutions, a kernel of its own for grouped convolutions with several channels per group
/// (`GroupedConvolution`), and direct loop kernels for depthwise convolutions (one input channel per group).
public enum Convolution {
    /// The implementations of a convolution. Each layer's is chosen from its shape alone (`kernel(for:)`), so the
    /// same layer always runs the same code; tests name one to compare it with the others.
    public enum Kernel: String, CaseIterable, Sendable {
        /// im2col + sgemm per group (a pointwise convolution reads the image as its columns).
        case gemm
        /// Pointwise (1x1) convolution as one single-threaded GEMM per core on a slice of the output.
        case pointwiseSliced
        /// Our packed GEMM (`PackedGemm`) with bias and activation applied in its store: pointwise convolutions read
        /// the image directly, the others are implicit GEMMs packing B from a zero-padded copy of the image.
        case packed
        /// Grouped convolutions with several channels per group (`GroupedConvolution`): every group's implicit GEMM
        /// cut into column blocks, all groups' blocks threaded by one loop; the data gradient of stride-1 layers too.
        case grouped
        /// Loops over windows for any depthwise convolution.
        case depthwiseLoop
        /// The direct SIMD kernel for depthwise 3x3 with stride 1 or 2.
        case depthwise3x3
        /// The direct SIMD kernel for the other depthwise sizes up to 11x11 (5x5, 7x7 …) with stride 1 or 2.
        case depthwiseKxK
        /// Winograd F(2x2,3x3) for 3x3, stride-1, ungrouped convolutions: 2.25x fewer multiplications (small maps).
        case winograd2x2
        /// Winograd F(4x4,3x3) for the same layers: 4x fewer multiplications.
        case winograd4x4

        /// Whether this kernel can compute that convolution.
        func handles(_ g: Geometry) -> Bool {
            switch self {
            case .gemm: return !g.isDepthwise
            case .pointwiseSliced: return PointwiseConvolution.handles(g)
            case .packed: return !g.isDepthwise
            case .grouped: return GroupedConvolution.handles(g)
            case .depthwiseLoop: return g.isDepthwise
            case .depthwise3x3: return DepthwiseConvolution3x3.handles(g)
            case .depthwiseKxK: return DepthwiseConvolutionKxK.handles(g)
            case .winograd2x2, .winograd4x4: return WinogradConvolution.handles(g)
            }
        }
    }

    /// The kernel for a layer of this shape: x [N,C,H,W], weight [M, C/groups, kH, kW].
    public static func kernel(x: [Int], weight: [Int], window: Window2D, groups: Int) -> Kernel {
        kernel(for: Geometry(x: x, weight: weight, window: window, groups: groups))
    }

    /// Every kernel that can compute a layer of this shape (tests compare them).
    public static func kernels(x: [Int], weight: [Int], window: Window2D, groups: Int) -> [Kernel] {
        let g = Geometry(x: x, weight: weight, window: window, groups: groups)
        return Kernel.allCases.filter { $0.handles(g) }
    }

    static func kernel(for g: Geometry) -> Kernel {
        if Kernel.depthwise3x3.handles(g) { return .depthwise3x3 }
        if Kernel.depthwiseKxK.handles(g) { return .depthwiseKxK }
        if g.isDepthwise { return .depthwiseLoop }
        // Several groups of several channels (ResNeXt, RegNet) with C/g·kH·kW up to 1280: all groups' tasks in one
        // threaded loop (`GroupedConvolution.pays` has the measurements); deeper groups keep the rules below.
        if GroupedConvolution.pays(g) { return .grouped }
        if g.isPointwise && packedPays(g) { return .packed }
        if PointwiseConvolution.pays(g) { return .pointwiseSliced }
        if implicitBeatsWinograd(g) { return .packed }
        switch WinogradConvolution.variant(for: g) {
        case .f2: return .winograd2x2
        case .f4: return .winograd4x4
        case nil: return packedPays(g) ? .packed : .gemm
        }
    }

    /// x [N,C,H,W], weight [M, C/groups, kH, kW], bias [M]? -> y [N, M, OH, OW] = epilogue(conv(x) + bias)
    /// `kernel`: nil chooses by shape; a kernel that cannot compute this convolution is a programming error.
    /// `epilogue`: an activation applied to every output value (nil: none), the same values as `Activation.forward`
    /// applied afterwards.
    /// `winogradCache`: where a Winograd kernel keeps its transformed weights between calls (nil: transform per call).
    public static func forward(_ x: Tensor, weight: Tensor, bias: Tensor?, window: Window2D, groups: Int,
                               kernel: Kernel? = nil, epilogue: Activation? = nil,
                               winogradCache: WinogradWeightCache? = nil) -> Tensor {
        let g = Geometry(x: x.shape, weight: weight.shape, window: window, groups: groups)
        return Tensor(shape: [g.n, g.m, g.outH, g.outW]) { y in
            forward(x, weight: weight, bias: bias, window: window, groups: groups, kernel: kernel, epilogue: epilogue,
                    winogradCache: winogradCache, into: y.baseAddress!)
        }
    }

    /// The same convolution written to `y`, which must hold N·M·OH·OW floats (e.g. a slice of a larger tensor: a
    /// branch's channels inside the output of the Concat that joins it with others, for N = 1). Every element of y is
    /// written; nothing else is.
    public static func forward(_ x: Tensor, weight: Tensor, bias: Tensor?, window: Window2D, groups: Int,
                               kernel: Kernel? = nil, epilogue: Activation? = nil,
                               winogradCache: WinogradWeightCache? = nil, into y: UnsafeMutablePointer<Float>) {
        let g = Geometry(x: x.shape, weight: weight.shape, window: window, groups: groups)
        if let bias { precondition(bias.count == g.m, "Conv: bias \(bias.shape) for \(g.m) output channels") }
        let chosen = kernel ?? Self.kernel(for: g)
        precondition(chosen.handles(g), "Conv: the \(chosen) kernel cannot compute x \(x.shape), weight \(weight.shape), \(window)")
        x.withUnsafeBufferPointer { xp in
            weight.withUnsafeBufferPointer { wp in
                let biasPointer = bias?.storage.pointer
                let (x, w) = (xp.baseAddress!, wp.baseAddress!)
                var epilogueApplied = false
                switch chosen {
                case .gemm:
                    gemmForward(g, x: x, weight: w, bias: biasPointer, y: y, epilogue: epilogue)
                    epilogueApplied = true
                case .pointwiseSliced:
                    PointwiseConvolution.forward(g, x: x, weight: w, bias: biasPointer, y: y, epilogue: epilogue)
                    epilogueApplied = true
                case .packed:
                    packedForward(g, x: x, weight: w, bias: biasPointer, y: y, epilogue: epilogue)
                    epilogueApplied = true
                case .grouped:
                    GroupedConvolution.forward(g, x: x, weight: w, bias: biasPointer, y: y, epilogue: epilogue)
                    epilogueApplied = true
                case .depthwiseLoop:
                    depthwiseForward(g, x: x, weight: w, bias: biasPointer, y: y, epilogue: epilogue)
                    epilogueApplied = true
                case .depthwise3x3:
                    epilogueApplied = DepthwiseConvolution3x3.forward(g, x: x, weight: w, bias: biasPointer, y: y, epilogue: epilogue)
                case .depthwiseKxK:
                    epilogueApplied = DepthwiseConvolutionKxK.forward(g, x: x, weight: w, bias: biasPointer, y: y, epilogue: epilogue)
                case .winograd2x2, .winograd4x4:
                    WinogradConvolution.forward(g, variant: chosen == .winograd2x2 ? .f2 : .f4, x: x, weight: weight,
                                                bias: biasPointer, epilogue: epilogue, y: y, cache: winogradCache)
                    epilogueApplied = true
                }
                // A kernel that does not apply the epilogue where it writes its output gets it as a separate pass.
                if let epilogue, !epilogueApplied {
                    let count = g.n * g.m * g.p
                    parallelRanges(count) { r in epilogue.forward(UnsafePointer(y), y, r) }
                }
            }
        }
    }

    /// dy [N,M,OH,OW] -> dx [N,C,H,W] (if needInputGradient), dWeight [M,C/g,kH,kW] and dBias [M] (if needParameterGradients)
    /// `winogradCache`: as in `forward`.
    public static func backward(_ dy: Tensor, x: Tensor, weight: Tensor, window: Window2D, groups: Int,
                                needInputGradient: Bool, needParameterGradients: Bool,
                                kernel: Kernel? = nil, winogradCache: WinogradWeightCache? = nil) -> (dx: Tensor?, dWeight: Tensor?, dBias: Tensor?) {
        let g = Geometry(x: x.shape, weight: weight.shape, window: window, groups: groups)
        let chosen = kernel ?? Self.kernel(for: g)
        precondition(chosen.handles(g), "Conv: the \(chosen) kernel cannot compute x \(x.shape), weight \(weight.shape), \(window)")
        precondition(dy.shape == [g.n, g.m, g.outH, g.outW], "Conv backward: dy \(dy.shape), expected \([g.n, g.m, g.outH, g.outW])")
        let winogradGradient = chosen == .winograd2x2 || chosen == .winograd4x4
            ? WinogradConvolution.inputGradientVariant(g, forward: chosen == .winograd2x2 ? .f2 : .f4) : nil
        let groupedGradient = chosen == .grouped && GroupedConvolution.inputGradientWindow(g) != nil
        // A pointwise convolution's GEMM, Winograd and the grouped kernel's stride-1 data gradient overwrite every
        // element of dx; the other paths accumulate into zeros.
        var dx: Tensor? = !needInputGradient ? nil
            : (g.isPointwise && !g.isDepthwise) || chosen == .depthwise3x3 || chosen == .depthwiseKxK || winogradGradient != nil
                || groupedGradient
                ? Tensor(shape: x.shape, unsafeUninitialized: { _ in })
            : Tensor(shape: x.shape)
        var dWeight: Tensor? = needParameterGradients ? Tensor(shape: weight.shape) : nil
        let dBias: Tensor? = needParameterGradients ? biasGradient(dy, g) : nil
        if !needInputGradient && !needParameterGradients { return (nil, nil, nil) }
        dy.withUnsafeBufferPointer { gp in
            x.withUnsafeBufferPointer { xp in
                weight.withUnsafeBufferPointer { wp in
                    // Both gradients are fresh, uniquely owned tensors: their storage pointers stay valid and unshared.
                    let dxPointer = dx?.withUnsafeMutableBufferPointer { $0.baseAddress! }
                    let dwPointer = dWeight?.withUnsafeMutableBufferPointer { $0.baseAddress! }
                    let (dy, x, w) = (gp.baseAddress!, xp.baseAddress!, wp.baseAddress!)
                    switch chosen {
                    case .gemm: gemmBackward(g, dy: dy, x: x, weight: w, dx: dxPointer, dWeight: dwPointer)
                    case .pointwiseSliced: PointwiseConvolution.backward(g, dy: dy, x: x, weight: w, dx: dxPointer, dWeight: dwPointer)
                    case .packed: packedBackward(g, dy: dy, x: x, weight: w, dx: dxPointer, dWeight: dwPointer)
                    case .grouped:
                        // dx as a grouped convolution of dy where it is one, else col2im of all groups' column
                        // gradients; dWeight as the packed path computes it.
                        if let dxPointer {
                            if groupedGradient {
                                GroupedConvolution.inputGradient(g, dy: dy, weight: w, dx: dxPointer)
                            } else {
                                GroupedConvolution.stridedInputGradient(g, dy: dy, weight: w, dx: dxPointer)
                            }
                        }
                        if dwPointer != nil { packedBackward(g, dy: dy, x: x, weight: w, dx: nil, dWeight: dwPointer) }
                    case .depthwiseLoop:
                        if let dxPointer { depthwiseInputGradient(g, dy: dy, weight: w, dx: dxPointer) }
                        if let dwPointer { depthwiseWeightGradient(g, dy: dy, x: x, dWeight: dwPointer) }
                    case .depthwise3x3:
                        if let dxPointer { DepthwiseConvolution3x3.inputGradient(g, dy: dy, weight: w, dx: dxPointer) }
                        if let dwPointer { DepthwiseConvolution3x3.weightGradient(g, dy: dy, x: x, dWeight: dwPointer) }
                    case .depthwiseKxK:
                        if let dxPointer { DepthwiseConvolutionKxK.inputGradient(g, dy: dy, weight: w, dx: dxPointer) }
                        if let dwPointer { DepthwiseConvolutionKxK.weightGradient(g, dy: dy, x: x, dWeight: dwPointer) }
                    case .winograd2x2, .winograd4x4:
                        // dx is itself a 3x3 stride-1 convolution (of dy); dWeight stays a GEMM.
                        if let dxPointer {
                            if let variant = winogradGradient {
                                WinogradConvolution.inputGradient(g, variant: variant, dy: dy, weight: weight, dx: dxPointer,
                                                                  cache: winogradCache)
                            } else {
                                gemmBackward(g, dy: dy, x: x, weight: w, dx: dxPointer, dWeight: nil)
                            }
                        }
                        if let dwPointer { gemmBackward(g, dy: dy, x: x, weight: w, dx: nil, dWeight: dwPointer) }
                    }
                }
            }
        }
        return (dx, dWeight, dBias)
    }

    /// Sizes of one convolution, checked once.
    struct Geometry {
        let n: Int, c: Int, h: Int, w: Int, m: Int
        let groups: Int, cg: Int, mg: Int
        let window: Window2D
        let outH: Int, outW: Int
        /// Rows of one group's im2col matrix (C/g * kH * kW) and output positions per image (OH * OW).
        let k: Int, p: Int
        let isPointwise: Bool, isDepthwise: Bool

        init(x: [Int], weight: [Int], window: Window2D, groups: Int) {
            precondition(x.count == 4 && weight.count == 4, "Conv: x \(x) and weight \(weight) must be 4-D")
            precondition(groups >= 1 && x[1] % groups == 0 && weight[0] % groups == 0,
                         "Conv: groups \(groups) must divide channels \(x[1]) and filters \(weight[0])")
            precondition(weight[1] == x[1] / groups, "Conv: weight \(weight) expects \(weight[1] * groups) input channels, x has \(x[1])")
            precondition(weight[2] == window.kernelH && weight[3] == window.kernelW, "Conv: weight \(weight) vs window \(window)")
            n = x[0]; c = x[1]; h = x[2]; w = x[3]; m = weight[0]
            self.groups = groups; cg = c / groups; mg = m / groups
            self.window = window
            (outH, outW) = window.outputSize(inputH: h, inputW: w)
            k = cg * window.kernelH * window.kernelW
            p = outH * outW
            isPointwise = window.kernelH == 1 && window.kernelW == 1 && window.strideH == 1 && window.strideW == 1
                && window.padTop == 0 && window.padLeft == 0 && window.padBottom == 0 && window.padRight == 0
            isDepthwise = groups > 1 && cg == 1
        }
    }

    // MARK: - GEMM path (groups == 1 or grouped with several channels per group)

    /// Output rows per im2col band: the band's columns (and column gradients) stay in L2 between the unfolding and
    /// the GEMM instead of streaming the whole matrix (tens of MB on large images) through memory twice.
    /// Matrices up to 16 MB stay whole: each band costs a GEMM call (and a thread hand-off), which only pays off once
    /// the matrix no longer fits in the last-level cache (GoogLeNet's first layers at 512 px and up).
    static func bandRows(_ g: Geometry) -> Int {
        let floats = g.groups * g.k * g.outW
        if floats * g.outH <= 1 << 22 { return g.outH }
        // About 1 MB of columns per band, and never a GEMM narrower than a few hundred columns (its packing would dominate).
        return min(g.outH, max((1 << 18) / max(1, floats), (256 + g.outW - 1) / g.outW, 1))
    }

    /// x [N,C,H,W] -> y [N,M,OH,OW]: per image, band of output rows and group, y_g [M/g, band] = W_g [M/g, K] * cols_g [K, band],
    /// then epilogue(y) on the band's rows of every channel while they are in cache.
    static func gemmForward(_ g: Geometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                            bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, epilogue: Activation? = nil) {
        let band = g.isPointwise ? g.outH : bandRows(g)
        // One scratch band for all images; a pointwise convolution reads the image itself as its columns.
        let buffer = g.isPointwise ? nil : ScratchPool.take(max(1, g.groups * g.k * band * g.outW))
        defer { buffer.map(ScratchPool.give) }
        let scratch = buffer?.pointer
        for image in 0..<g.n {
            let xn = x + image * g.c * g.h * g.w
            let yn = y + image * g.m * g.p
            // The bias is laid down first and the GEMM accumulates onto it (beta = 1).
            if let bias {
                for channel in 0..<g.m { (yn + channel * g.p).update(repeating: bias[channel], count: g.p) }
            }
            for r0 in stride(from: 0, to: g.outH, by: band) {
                let rows = r0..<min(g.outH, r0 + band)
                let columns = rows.count * g.outW, first = r0 * g.outW
                var cols = xn + first
                var ldb = g.p
                if let scratch {
                    Im2Col.forward(xn, channels: g.c, height: g.h, width: g.w, window: g.window, cols: scratch, outputRows: rows)
                    cols = UnsafePointer(scratch)
                    ldb = columns
                }
                for group in 0..<g.groups {
                    Gemm.sgemm(transA: false, transB: false, m: g.mg, n: columns, k: g.k, alpha: 1,
                               a: weight + group * g.mg * g.k, lda: g.k, b: cols + group * g.k * ldb, ldb: ldb,
                               beta: bias == nil ? 0 : 1, c: yn + group * g.mg * g.p + first, ldc: g.p)
                }
                if let epilogue {
                    parallelRanges(g.m, work: g.m * columns) { channels in
                        for channel in channels {
                            let row = yn + channel * g.p + first
                            epilogue.forward(UnsafePointer(row), row, 0..<columns)
                        }
                    }
                }
            }
        }
    }

    /// dy -> dWeight += dy_g [M/g,P] * cols_g^T [P,K] ; dx = col2im(W_g^T [K,M/g] * dy_g [M/g,P]), band by band
    static func gemmBackward(_ g: Geometry, dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                             dx: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>?) {
        let band = g.isPointwise ? g.outH : bandRows(g)
        // The same scratch band holds the image's columns (for dWeight) and then the column gradients (for dx).
        let buffer = g.isPointwise ? nil : ScratchPool.take(max(1, g.groups * g.k * band * g.outW))
        defer { buffer.map(ScratchPool.give) }
        let scratch = buffer?.pointer
        for image in 0..<g.n {
            let xn = x + image * g.c * g.h * g.w
            let dyn = dy + image * g.m * g.p
            let dxn = dx.map { $0 + image * g.c * g.h * g.w }
            for r0 in stride(from: 0, to: g.outH, by: band) {
                let rows = r0..<min(g.outH, r0 + band)
                let columns = rows.count * g.outW, first = r0 * g.outW
                let ld = scratch == nil ? g.p : columns
                if let dWeight {
                    var cols = xn + first
                    if let scratch {
                        Im2Col.forward(xn, channels: g.c, height: g.h, width: g.w, window: g.window, cols: scratch, outputRows: rows)
                        cols = UnsafePointer(scratch)
                    }
                    for group in 0..<g.groups {
                        Gemm.sgemm(transA: false, transB: true, m: g.mg, n: g.k, k: columns, alpha: 1,
                                   a: dyn + group * g.mg * g.p + first, lda: g.p, b: cols + group * g.k * ld, ldb: ld,
                                   beta: 1, c: dWeight + group * g.mg * g.k, ldc: g.k)
                    }
                }
                if let dxn {
                    let dcols = scratch ?? (dxn + first) // pointwise: the column gradient is the input gradient
                    for group in 0..<g.groups {
                        Gemm.sgemm(transA: true, transB: false, m: g.k, n: columns, k: g.mg, alpha: 1,
                                   a: weight + group * g.mg * g.k, lda: g.k, b: dyn + group * g.mg * g.p + first, ldb: g.p,
                                   beta: 0, c: dcols + group * g.k * ld, ldc: ld)
                    }
                    if let scratch {
                        Im2Col.backward(scratch, channels: g.c, height: g.h, width: g.w, window: g.window, image: dxn, outputRows: rows)
                    }
                }
            }
        }
    }

    /// dy [N,M,OH,OW] -> dBias [M] (sum over images and positions)
    static func biasGradient(_ dy: Tensor, _ g: Geometry) -> Tensor {
        Tensor(shape: [g.m]) { db in
            dy.withUnsafeBufferPointer { gp in
                for channel in 0..<g.m {
                    var total = 0.0
                    for image in 0..<g.n {
                        let row = gp.baseAddress! + (image * g.m + channel) * g.p
                        var s: Float = 0
                        for i in 0..<g.p { s += row[i] }
                        total += Double(s)
                    }
                    db[channel] = Float(total)
                }
            }
        }
    }

    // MARK: - Depthwise path (one input channel per group, M/g output channels per input channel)

    /// Calls body(tap, ih, offW, columns) for each kernel tap (ki, kj) of output row `oh` whose input row ih lies
    /// inside the image: tap = ki·kW + kj, input column of output column ow is ow·sW + offW, and `columns` are the
    /// output columns whose input column lies inside the image. The three depthwise kernels walk windows this way.
    @inline(__always)
    static func forEachDepthwiseTap(_ g: Geometry, outputRow oh: Int,
                                    _ body: (_ tap: Int, _ ih: Int, _ offW: Int, _ columns: Range<Int>) -> Void) {
        let win = g.window
        for ki in 0..<win.kernelH {
            let ih = oh * win.strideH + ki * win.dilationH - win.padTop
            if ih < 0 || ih >= g.h { continue }
            for kj in 0..<win.kernelW {
                let offW = kj * win.dilationW - win.padLeft
                body(ki * win.kernelW + kj, ih, offW,
                     Im2Col.validOutputRange(offset: offW, stride: win.strideW, input: g.w, output: g.outW))
            }
        }
    }

    /// x [N,C,H,W], weight [M,1,kH,kW] -> y [N,M,OH,OW]; output channel m reads input channel m / (M/g).
    /// The epilogue goes over each output row once its taps are summed, while the row is in L1.
    static func depthwiseForward(_ g: Geometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                 bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, epilogue: Activation? = nil) {
        let taps = g.window.kernelH * g.window.kernelW, sW = g.window.strideW
        parallelFor(g.n * g.m) { plane in
            let image = plane / g.m, channel = plane % g.m
            let src = x + (image * g.c + channel / g.mg) * g.h * g.w
            let dst = y + plane * g.p
            let weights = weight + channel * taps
            let b = bias?[channel] ?? 0
            for oh in 0..<g.outH {
                // Accumulating a whole output row per tap keeps the row in L1 and the inner loop contiguous.
                let out = dst + oh * g.outW
                out.update(repeating: b, count: g.outW)
                forEachDepthwiseTap(g, outputRow: oh) { tap, ih, offW, columns in
                    let t = weights[tap], row = src + ih * g.w + offW
                    if sW == 1 {
                        for ow in columns { out[ow] += t * row[ow] }
                    } else {
                        for ow in columns { out[ow] += t * row[ow * sW] }
                    }
                }
                epilogue?.forward(UnsafePointer(out), out, 0..<g.outW)
            }
        }
    }

    /// dy [N,M,OH,OW] -> dx [N,C,H,W] (dx zeroed by the caller)
    static func depthwiseInputGradient(_ g: Geometry, dy: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                       dx: UnsafeMutablePointer<Float>) {
        let taps = g.window.kernelH * g.window.kernelW, sW = g.window.strideW
        // Each input plane gathers from its own M/g output channels only, so planes are independent.
        parallelFor(g.n * g.c) { plane in
            let image = plane / g.c, inputChannel = plane % g.c
            let dst = dx + plane * g.h * g.w
            for channel in (inputChannel * g.mg)..<((inputChannel + 1) * g.mg) {
                let grad = dy + (image * g.m + channel) * g.p
                let weights = weight + channel * taps
                for oh in 0..<g.outH {
                    let gradRow = grad + oh * g.outW
                    forEachDepthwiseTap(g, outputRow: oh) { tap, ih, offW, columns in
                        let t = weights[tap], row = dst + ih * g.w + offW
                        if sW == 1 {
                            for ow in columns { row[ow] += t * gradRow[ow] }
                        } else {
                            for ow in columns { row[ow * sW] += t * gradRow[ow] }
                        }
                    }
                }
            }
        }
    }

    /// dy [N,M,OH,OW], x [N,C,H,W] -> dWeight [M,1,kH,kW] (dWeight zeroed by the caller)
    static func depthwiseWeightGradient(_ g: Geometry, dy: UnsafePointer<Float>, x: UnsafePointer<Float>,
                                        dWeight: UnsafeMutablePointer<Float>) {
        let taps = g.window.kernelH * g.window.kernelW, sW = g.window.strideW
        parallelFor(g.m) { channel in
            let gradients = dWeight + channel * taps
            for image in 0..<g.n {
                let grad = dy + (image * g.m + channel) * g.p
                let src = x + (image * g.c + channel / g.mg) * g.h * g.w
                for oh in 0..<g.outH {
                    let gradRow = grad + oh * g.outW
                    forEachDepthwiseTap(g, outputRow: oh) { tap, ih, offW, columns in
                        let row = src + ih * g.w + offW
                        var s: Float = 0
                        if sW == 1 {
                            for ow in columns { s += gradRow[ow] * row[ow] }
                        } else {
                            for ow in columns { s += gradRow[ow] * row[ow * sW] }
                        }
                        gradients[tap] += s
                    }
                }
            }
        }
    }
}
