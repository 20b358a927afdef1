import CKernels
import Parallel

/// Convolutions through our packed GEMM (`PackedGemm`): a pointwise convolution reads the image as its B matrix,
/// the others are implicit GEMMs: the image is copied once into a zero-padded scratch (`ImplicitLayout`) and the
/// GEMM packs B's strips straight from it, with no im2col matrix and no separate unfolding pass (the packing runs
/// in the GEMM's parallel blocks, B stays in cache). Forward applies bias and activation in the GEMM's store;
/// backward computes the data gradient (Wᵀ·dy, then col2im) through the same kernel with a transposed operand when
/// its inner dimension (the output channels) is small enough, and the weight gradient
/// through OpenBLAS (its inner dimension, the positions, is long and its operands both transposed: measured
/// slower with ours on every layer of GoogLeNet, SqueezeNet and MobileNetV2 but GoogLeNet's 7x7 stem at 224).
///
/// Measured single-threaded (Zen 3, AVX2) against OpenBLAS on those networks' layers: ours is faster where the inner
/// dimension is short (16 to 64 channels: up to 1.4x; the 3-channel stems, im2col included: 1.1x), even at 128,
/// and a few percent slower from 144 on (1x1 convolutions from 192 to 960 channels).
extension Convolution {
    /// Inner dimension (C/g·kH·kW) up to which a convolution's forward GEMM runs packed: pointwise convolutions
    /// from at most 128 channels (from 144 to 256 OpenBLAS's kernel measured 3–9 % faster on GoogLeNet's 1x1s at
    /// 512 px), and implicit-GEMM convolutions of at most 1280 rows on maps of any size. Without im2col the implicit
    /// GEMM beat OpenBLAS's im2col GEMM per layer on the 3-channel stems (one thread: SqueezeNet's 3x3 stride 2 0.62
    /// vs 0.86 ms at 224 px, MobileNetV2's 0.38 vs 0.53; GoogLeNet's 7x7, K = 147: 2.9 vs 4.4 ms, 16.4 vs 22.1 at
    /// 512 px; two threads, machine quiet: 0.51 vs 0.56 and 0.22 vs 0.32 ms) and GoogLeNet's 5x5s on 28² maps and
    /// larger (K = 400 to 1200: 1.1x to 1.3x). Small maps (at most 384 output positions) were kept on OpenBLAS from
    /// K = 145 on until the copy into the zero-padded image became one C call per plane (`dream_implicit_plane`):
    /// since then the implicit GEMM is ahead there too, on every layer measured (machine quiet, 2 threads with
    /// OPENBLAS_THREAD_TIMEOUT=4 as the CLI sets it, min of 40; one thread in brackets): DenseNet's 128 → 32 3x3 at
    /// 7² 0.067 vs 0.086 ms (0.087 vs 0.123), at 14² 0.140 vs 0.197 (0.213 vs 0.317; Winograd F(2,3) 0.169), at 16²
    /// 0.161 vs 0.230; SqueezeNet's fire6/7 48 → 192 at 13² 0.174 vs 0.214 (0.321 vs 0.360) and fire8/9 64 → 256
    /// 0.306 vs 0.358 (0.566 vs 0.614); GoogLeNet's 5x5s at 14² (K = 400–800) 0.058–0.151 vs 0.089–0.198 and at 7²
    /// (K = 800, 1200) 0.091, 0.134 vs 0.122, 0.176; Inception-v3's 1x7 / 7x1 at 17² (K = 896, 1120) 0.433, 0.666
    /// vs 0.488, 0.702; a 3x3 stride 2 to 7² (K = 1152) 0.260 vs 0.276. Deeper layers stayed ahead too where
    /// measured (K = 1440 to 4608 at 7²–17²: 2–12 %), but OpenBLAS's AVX-512 kernels, which our GEMM does not have,
    /// would widen its lead on such layers on CPUs that run them at full width: they stay on OpenBLAS.
    static let largestPackedPointwiseDepth = 128, largestPackedDepth = 1280
    /// Output channels per group (the data gradient's inner dimension) up to which that GEMM runs packed.
    static let largestPackedGradientDepth = 256

    /// Whether a layer of this shape runs packed (`kernel(for:)`; Winograd and the depthwise kernels come first).
    static func packedPays(_ g: Geometry) -> Bool {
        if g.isDepthwise { return false }
        if g.isPointwise { return g.k <= largestPackedPointwiseDepth }
        return g.k <= largestPackedDepth
    }

    /// Whether a 3x3 stride-1 layer that Winograd F(4,3) or F(2,3) could compute runs faster as an implicit GEMM:
    /// few channels (C·M/(C+M) < 40, where Winograd's transforms weigh most against its 2.25x–4x fewer
    /// multiplications) on maps of fewer than 64 tiles of 4x4, too few for Winograd's loops to keep two threads
    /// busy: SqueezeNet's fire4/5 at 27² (32→128), Winograd F(4,3) 0.51 ms on one thread (transformed weights
    /// cached) and 0.42 ms on two (issue 12's profile), the implicit GEMM 0.64 and 0.35–0.37 ms (load 1.7). At 31²
    /// (fire6/7 at 512 px, 64 tiles: 1.13 vs 1.80 ms on one thread) and with more channels (fire8/9, C·M/(C+M) = 51;
    /// every 3x3 of GoogLeNet, 48 to 128) Winograd stays. So does a layer that narrows (M < C): the implicit GEMM
    /// packs a 9C-deep B for few output channels, and DenseNet's 128 → 32 at 28² takes 0.48 ms on two threads against
    /// Winograd F(4,3)'s 0.36 (1 thread: 0.83 vs 0.57; load 1.3).
    static func implicitBeatsWinograd(_ g: Geometry) -> Bool {
        guard !g.isPointwise && packedPays(g) && WinogradConvolution.handles(g) && g.m >= g.c else { return false }
        let harmonic = g.c * g.m / max(1, g.c + g.m), tiles4 = ((g.outH + 3) / 4) * ((g.outW + 3) / 4)
        return harmonic < 40 && tiles4 < 64
    }

    /// x [N,C,H,W], weight [M, C/g, kH, kW], bias [M]? -> y [N,M,OH,OW] = epilogue(conv(x) + bias): one GEMM per
    /// image and group, whose B is the image itself (pointwise) or its implicit unfolding (`ImplicitLayout`).
    static func packedForward(_ g: Geometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                              bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, epilogue: Activation?) {
        if g.p == 0 { return }
        let layout = g.isPointwise ? nil : ImplicitLayout(g)
        let buffer = layout.map { ScratchPool.take($0.floats) }
        defer { buffer.map(ScratchPool.give) }
        let offsets = layout?.offsets ?? []
        offsets.withUnsafeBufferPointer { offsets in
            for image in 0..<g.n {
                let xn = x + image * g.c * g.h * g.w, yn = y + image * g.m * g.p
                if let layout, let scratch = buffer?.pointer { layout.fill(g, image: xn, scratch: scratch) }
                for group in 0..<g.groups {
                    let b: PackedGemm.Operand
                    if let layout, let scratch = buffer?.pointer {
                        let first = group * g.cg * layout.channelFloats
                        b = .implicit(scratch + first, readable: layout.floats - first, offsets: offsets,
                                      width: g.outW, pitch: layout.planeW)
                    } else {
                        b = .rows(xn + group * g.cg * g.p, ld: g.p)
                    }
                    PackedGemm.multiply(m: g.mg, n: g.p, k: g.k, a: .rows(weight + group * g.mg * g.k, ld: g.k), b: b,
                                        c: yn + group * g.mg * g.p, ldc: g.p,
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

/// The zero-padded copy of one image that an implicit-GEMM convolution reads its B from, laid out so that every row
/// p = (c, ky, kx) of B is the copy read at a fixed offset, column q = (oy, ox) at oy·planeW + ox.
///
/// With stride s the padded image is split into phase planes, plane (ry, rx) holding padded pixels (i·sH + ry,
/// j·sW + rx): tap (ky, kx) of output (oy, ox) reads padded pixel (oy·sH + ky·dH, ox·sW + kx·dW), which is element
/// (oy + ky·dH / sH, ox + kx·dW / sW) of plane (ky·dH % sH, kx·dW % sW), so consecutive output positions read
/// consecutive floats whatever the stride and dilation. Only the phases some tap reads are stored (a 1x1 stride-2
/// convolution keeps one plane of four), each plane only as large as the taps reach (outH + the largest
/// ky·dH / sH rows, outW + the largest kx·dW / sW columns); pixels of the padding are zeros.
struct ImplicitLayout {
    let rowPhases: [Int], columnPhases: [Int]
    /// rowPhases then columnPhases, for `dream_implicit_planes`.
    let phaseTable: [Int64]
    let planeH: Int, planeW: Int
    /// Floats per plane, per channel (all its phase planes) and in all (every channel, then the packer's over-read).
    let planeFloats: Int, channelFloats: Int, floats: Int
    /// Row p = (c, ky, kx) of one group's B starts at offsets[p] from the group's first channel.
    let offsets: [Int64]

    /// `outputRows`: the planes of a band of that many output rows only (`GroupedConvolution`), else all of them.
    init(_ g: Convolution.Geometry, outputRows: Int? = nil) {
        let win = g.window
        rowPhases = Array(Set((0..<win.kernelH).map { $0 * win.dilationH % win.strideH })).sorted()
        columnPhases = Array(Set((0..<win.kernelW).map { $0 * win.dilationW % win.strideW })).sorted()
        phaseTable = (rowPhases + columnPhases).map { Int64($0) }
        planeH = (outputRows ?? g.outH) + (win.kernelH - 1) * win.dilationH / win.strideH
        planeW = g.outW + (win.kernelW - 1) * win.dilationW / win.strideW
        planeFloats = planeH * planeW
        channelFloats = rowPhases.count * columnPhases.count * planeFloats
        floats = g.c * channelFloats + PackedGemm.Implicit.overRead
        var offsets = [Int64]()
        offsets.reserveCapacity(g.k)
        for c in 0..<g.cg {
            for ky in 0..<win.kernelH {
                let ty = ky * win.dilationH, phaseY = rowPhases.firstIndex(of: ty % win.strideH)!
                for kx in 0..<win.kernelW {
                    let tx = kx * win.dilationW, phaseX = columnPhases.firstIndex(of: tx % win.strideW)!
                    let plane = c * channelFloats + (phaseY * columnPhases.count + phaseX) * planeFloats
                    offsets.append(Int64(plane + ty / win.strideH * planeW + tx / win.strideW))
                }
            }
        }
        self.offsets = offsets
    }

    /// image [C,H,W] -> scratch[0..<floats]: every phase plane of every channel (`dream_implicit_plane`), in parallel.
    func fill(_ g: Convolution.Geometry, image: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>) {
        let phases = rowPhases.count * columnPhases.count
        parallelRanges(g.c * phases, work: g.c * channelFloats, minimumWorkPerThread: 1 << 15) { planes in
            fillPlanes(g, image: image, firstOutputRow: 0, planes: planes, scratch: scratch)
        }
        (scratch + g.c * channelFloats).update(repeating: 0, count: PackedGemm.Implicit.overRead)
    }

    /// Planes `planes` (channel · phases + phase) of the copy of the band from output row `firstOutputRow` on, each
    /// planeH rows: row r, column t of plane (c, ry, rx) is input pixel ((firstOutputRow + r)·sH + ry - padTop,
    /// t·sW + rx - padLeft) of channel c, 0 outside the image.
    func fillPlanes(_ g: Convolution.Geometry, image: UnsafePointer<Float>, firstOutputRow: Int, planes: Range<Int>,
                    scratch: UnsafeMutablePointer<Float>) {
        let win = g.window
        phaseTable.withUnsafeBufferPointer { table in
            dream_implicit_planes(image, Int64(g.h), Int64(g.w), Int64(win.strideH), Int64(win.strideW),
                                  table.baseAddress!, Int64(rowPhases.count), table.baseAddress! + rowPhases.count,
                                  Int64(columnPhases.count), Int64(win.padTop), Int64(win.padLeft), Int64(firstOutputRow),
                                  Int64(planes.lowerBound), Int64(planes.upperBound), scratch, Int64(planeH), Int64(planeW))
        }
    }
}
