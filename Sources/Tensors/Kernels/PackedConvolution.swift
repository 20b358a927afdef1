/// Convolutions through our packed GEMM (`PackedGemm`): a pointwise convolution reads the image as its B matrix,
/// the others unfold it first (im2col, band by band as the OpenBLAS path does). Forward applies bias and activation
/// in the GEMM's store; backward computes the data gradient (Wᵀ·dy, then col2im) and the weight gradient (dy·colsᵀ,
/// accumulated over bands and images) through the same kernel with transposed operands.
extension Convolution {
    /// Multiply-adds per group up to which a pointwise convolution runs packed rather than through OpenBLAS.
    static let largestPackedPointwise = 1 << 26
    /// Rows of the unfolded matrix (C/g·kH·kW) up to which an im2col convolution runs packed: the stems (3 channels
    /// with a 3x3 to 7x7 kernel: K = 27 to 147), where OpenBLAS's packing costs as much as its few multiply-adds.
    static let largestPackedDepth = 160

    /// Whether a layer of this shape runs packed (`kernel(for:)`; Winograd and the depthwise kernels come first).
    static func packedPays(_ g: Geometry) -> Bool {
        if g.isDepthwise { return false }
        if g.isPointwise { return g.mg * g.k * g.p <= largestPackedPointwise }
        return g.k <= largestPackedDepth
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
        let band = g.isPointwise ? g.outH : bandRows(g)
        // One scratch band holds the image's columns (for dWeight), then the column gradients (for dx).
        let buffer = g.isPointwise ? nil : ScratchPool.take(max(1, g.groups * g.k * band * g.outW))
        defer { buffer.map(ScratchPool.give) }
        let scratch = buffer?.pointer
        for image in 0..<g.n {
            let xn = x + image * g.c * g.h * g.w, dyn = dy + image * g.m * g.p
            let dxn = dx.map { $0 + image * g.c * g.h * g.w }
            for r0 in stride(from: 0, to: g.outH, by: max(1, band)) {
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
                        PackedGemm.multiply(m: g.mg, n: g.k, k: columns, a: .rows(dyn + group * g.mg * g.p + first, ld: g.p),
                                            b: .transposed(cols + group * g.k * ld, ld: ld),
                                            c: dWeight + group * g.mg * g.k, ldc: g.k, accumulate: true)
                    }
                }
                if let dxn {
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
}
