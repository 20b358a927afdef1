/// Convolutions through our packed GEMM (`PackedGemm`): a pointwise convolution reads the image as its B matrix,
/// the others unfold it first (im2col, band by band as the OpenBLAS path does). Forward applies bias and activation
/// in the GEMM's store; backward computes the data gradient (Wᵀ·dy, then col2im) through the same kernel with a
/// transposed operand when its inner dimension (the output channels) is small enough, and the weight gradient
/// through OpenBLAS (its inner dimension, the positions, is long and its operands both transposed: measured
/// slower with ours on every layer of GoogLeNet, SqueezeNet and MobileNetV2 but GoogLeNet's 7x7 stem at 224).
///
/// Measured single-threaded (Zen 3, AVX2) against OpenBLAS on those networks' layers: ours is faster where the inner
/// dimension is short (16 to 64 channels: up to 1.4x; the 3-channel stems, im2col included: 1.1x), even at 128,
/// and a few percent slower from 144 on (1x1 convolutions from 192 to 960 channels).
extension Convolution {
    /// Inner dimension (C/g·kH·kW) up to which a convolution's forward GEMM runs packed: pointwise convolutions
    /// from at most 128 channels (from 144 to 256 OpenBLAS's kernel measured 3–9 % faster on GoogLeNet's 1x1s at
    /// 512 px), and im2col convolutions of at most 144 rows (3x3 convolutions of up to 16 channels, the 3-channel
    /// 3x3 stems; GoogLeNet's 7x7 stem, 147, measured 1.1x to 1.4x faster with OpenBLAS).
    static let largestPackedPointwiseDepth = 128, largestPackedDepth = 144
    /// Output channels per group (the data gradient's inner dimension) up to which that GEMM runs packed.
    static let largestPackedGradientDepth = 256

    /// Whether a layer of this shape runs packed (`kernel(for:)`; Winograd and the depthwise kernels come first).
    static func packedPays(_ g: Geometry) -> Bool {
        if g.isDepthwise { return false }
        return g.k <= (g.isPointwise ? largestPackedPointwiseDepth : largestPackedDepth)
    }

    /// x [N,C,H,W], weight [M, C/g, kH, kW], bias [M]? -> y [N,M,OH,OW] = epilogue(conv(x) + bias)
    static func packedForward(_ g: Geometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                              bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, epilogue: Activation?) {
        let band = g.isPointwise ? g.outH : bandRows(g)
        let buffer = g.isPointwise ? nil : ScratchPool.take(max(1, g.groups * g.k * band * g.outW))
        defer { buffer.map(ScratchPool.give) }
        for image in 0..<g.n {
            let xn = x + image * g.c * g.h * g.w, yn = y + image * g.m * g.p
            for r0 in stride(from: 0, to: g.outH, by: max(1, band)) {
                let rows = r0..<min(g.outH, r0 + band)
                let columns = rows.count * g.outW, first = r0 * g.outW
                var cols = xn + first, ldb = g.p
                if let scratch = buffer?.pointer {
                    Im2Col.forward(xn, channels: g.c, height: g.h, width: g.w, window: g.window, cols: scratch, outputRows: rows)
                    cols = UnsafePointer(scratch)
                    ldb = columns
                }
                for group in 0..<g.groups {
                    PackedGemm.multiply(m: g.mg, n: columns, k: g.k, a: .rows(weight + group * g.mg * g.k, ld: g.k),
                                        b: .rows(cols + group * g.k * ldb, ld: ldb),
                                        c: yn + group * g.mg * g.p + first, ldc: g.p,
                                        bias: bias.map { $0 + group * g.mg }, epilogue: epilogue)
                }
            }
        }
    }

    /// dy [N,M,OH,OW] -> dx [N,C,H,W] (overwritten when pointwise, else accumulated onto the caller's zeros) and
    /// dWeight [M,C/g,kH,kW] (accumulated onto the caller's zeros)
    static func packedBackward(_ g: Geometry, dy: UnsafePointer<Float>, x: UnsafePointer<Float>,
                               weight: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?,
                               dWeight: UnsafeMutablePointer<Float>?) {
        let packedInputGradient = g.mg <= largestPackedGradientDepth
        // The OpenBLAS paths for what does not run packed: sliced per core where that pays, else OpenBLAS's threads.
        let blasInputGradient = packedInputGradient ? nil : dx, blasWeightGradient = dWeight
        if blasInputGradient != nil || blasWeightGradient != nil {
            if PointwiseConvolution.pays(g) {
                PointwiseConvolution.backward(g, dy: dy, x: x, weight: weight, dx: blasInputGradient, dWeight: blasWeightGradient)
            } else {
                gemmBackward(g, dy: dy, x: x, weight: weight, dx: blasInputGradient, dWeight: blasWeightGradient)
            }
        }
        if packedInputGradient, let dx { packedInputGradientOnly(g, dy: dy, weight: weight, dx: dx) }
    }

    /// dy [N,M,OH,OW] -> dx [N,C,H,W] = col2im(Wᵀ·dy) (overwritten when pointwise, else accumulated onto the
    /// caller's zeros), band by band through the packed GEMM.
    static func packedInputGradientOnly(_ g: Geometry, dy: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                        dx: UnsafeMutablePointer<Float>) {
        let band = g.isPointwise ? g.outH : bandRows(g)
        let buffer = g.isPointwise ? nil : ScratchPool.take(max(1, g.groups * g.k * band * g.outW))
        defer { buffer.map(ScratchPool.give) }
        let scratch = buffer?.pointer
        for image in 0..<g.n {
            let dyn = dy + image * g.m * g.p, dxn = dx + image * g.c * g.h * g.w
            for r0 in stride(from: 0, to: g.outH, by: max(1, band)) {
                let rows = r0..<min(g.outH, r0 + band)
                let columns = rows.count * g.outW, first = r0 * g.outW
                let ld = scratch == nil ? g.p : columns
                let dcols = scratch ?? (dxn + first)  // pointwise: the column gradient is the input gradient
                for group in 0..<g.groups {
                    PackedGemm.multiply(m: g.k, n: columns, k: g.mg, a: .transposed(weight + group * g.mg * g.k, ld: g.k),
                                        b: .rows(dyn + group * g.mg * g.p + first, ld: g.p),
                                        c: dcols + group * g.k * ld, ldc: ld)
                }
                if let scratch {
                    Im2Col.backward(scratch, channels: g.c, height: g.h, width: g.w, window: g.window, image: dxn, outputRows: rows)
                }
            }
        }
    }
}
