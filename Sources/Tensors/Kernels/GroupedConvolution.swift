import CKernels
import Parallel

/// Grouped convolutions with several channels per group (ResNeXt's 32 groups of 4 to 32 channels, RegNet's groups
/// of 16). Each group's GEMM is too small to thread (RegNetY-800MF's last stage: 49 groups of 16 channels on 7x7
/// maps, 16 × 49 × 144 each), so running them one after the other left a core idle; here one loop spreads tasks of
/// all groups over the threads. A task (group, band of output rows) copies the band of its group's channels,
/// zero-padded and split into stride phases (`ImplicitLayout`), into a scratch of its thread, and multiplies it in
/// registers (CKernels GroupedBodies.h: tiles of 6 output channels × 16 positions numbered on the copy's pitch, so
/// that every row of the implicit B is the copy itself at an offset, read with plain vector loads, no packing), with
/// bias and activation applied before the one store. Pointwise grouped layers run `PackedGemm`'s kernel per task.
///
/// The data gradient of a stride-1 layer is itself a grouped convolution of dy (kernel flipped, the two channel
/// axes of each group swapped, the complementary padding) and runs the same way; that of a strided layer is
/// col2im of every group's column gradients, computed by one loop over all groups' packed GEMMs. The weight
/// gradient keeps the packed backward's (OpenBLAS per group, `Convolution.packedBackward`).
///
/// Tasks are cut by shape only and each element's sum runs in the same order in any task (0 + bias, then the
/// products in increasing p, as in `PackedGemm`: the same bits as the `.packed` kernel), so the results do not
/// depend on the thread count.
enum GroupedConvolution {
    /// Whether this kernel can compute the convolution: several groups of several channels.
    static func handles(_ g: Convolution.Geometry) -> Bool { g.groups > 1 && g.cg > 1 }

    /// Whether a grouped layer runs here rather than on the per-group packed GEMMs or OpenBLAS (`kernel(for:)`):
    /// up to the implicit GEMM's largest depth (`Convolution.largestPackedDepth`, 1280: C/g·kH·kW), which covers
    /// every grouped layer of ResNeXt-50 32x4d (K = 36 to 288) and RegNetY-800MF (K = 144). Measured on one thread
    /// (Zen 3, AVX2; one 3x3 layer + ReLU after a 1x1 from 3 channels, min of 40 runs, load 2.5) against the
    /// previous paths (per group: the packed GEMM, OpenBLAS for ResNeXt's K = 288 on 7x7): ResNeXt's 128 ch at 56²
    /// 1.05 → 0.60 ms, 256 ch 56² → 28² 1.41 → 0.89, 512 ch at 14² 0.66 → 0.46, 1024 ch at 7² 1.08 → 0.50;
    /// RegNet's 64 ch 112² → 56² 1.44 → 1.15, 320 ch at 14² 0.42 → 0.29, 784 ch at 7² 0.45 → 0.24, 784 ch
    /// 14² → 7² 0.81 → 0.40. Deeper groups are rare and untested for speed; they keep the previous rule.
    static func pays(_ g: Convolution.Geometry) -> Bool {
        handles(g) && g.k <= Convolution.largestPackedDepth
    }

    /// Output columns per task of a pointwise layer: all of a map of at most 384 positions, else blocks of about 256
    /// (whole strips of 16). A block packs its own columns of B once for all M/g rows, so the split adds no work; it
    /// only has to make enough tasks for the threads.
    static func columnsPerBlock(_ p: Int) -> Int {
        if p <= 384 { return max(1, p) }
        let blocks = (p + 255) / 256
        return ((p + blocks - 1) / blocks + 15) / 16 * 16
    }

    /// Output rows per task of the direct kernel, whose columns are rows of `pitch` positions: all rows when they
    /// make at most 384 columns, else blocks of about 256 columns (RegNet's 4 groups at 56x56: 4 × 13 tasks), and
    /// never more than the scratch panel holds for M/g rows.
    static func rowsPerBlock(_ g: Convolution.Geometry, pitch: Int) -> Int {
        let columns = g.outH * pitch
        var rows = g.outH
        if columns > 384 {
            let blocks = (columns + 255) / 256
            rows = (g.outH + blocks - 1) / blocks
        }
        let fitting = (PackedGemm.panelFloats / max(1, g.mg) - 15) / max(1, pitch)
        return max(1, min(rows, fitting))
    }

    static func roundedToStrips(_ columns: Int) -> Int { (columns + 15) / 16 * 16 }

    /// Whether the direct kernel (`dream_grouped_block`) computes this layer: not pointwise (a pointwise layer's B is
    /// the caller's image, which the direct kernel would read past), and one row of pitch positions for all M/g
    /// output channels fits the scratch panel.
    static func runsDirect(_ g: Convolution.Geometry) -> Bool {
        guard !g.isPointwise else { return false }
        let pitch = g.outW + (g.window.kernelW - 1) * g.window.dilationW / g.window.strideW
        return g.mg * roundedToStrips(pitch) <= PackedGemm.panelFloats
    }

    /// x [N,C,H,W], weight [M, C/g, kH, kW], bias [M]? -> y [N,M,OH,OW] = epilogue(conv(x) + bias): one task per
    /// group and block of output positions, threaded by one loop over all groups.
    static func forward(_ g: Convolution.Geometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                        bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, epilogue: Activation?) {
        if g.p == 0 || g.m == 0 { return }
        if runsDirect(g) {
            directForward(g, x: x, weight: weight, bias: bias, y: y, epilogue: epilogue)
        } else {
            packedForward(g, x: x, weight: weight, bias: bias, y: y, epilogue: epilogue)
        }
    }

    /// The direct kernel, one task per (group, band of output rows): the band's zero-padded copy of the group's
    /// channels (`ImplicitLayout` of the band, its halo rows included) into a scratch of the task's thread, then
    /// `dream_grouped_block` into the thread's panel on the copy's pitch, and the valid columns copied to y (an
    /// activation the C kernel does not know applied on the way). The copy is made where it is read, while it is
    /// in L2: a whole-image copy made first (RegNet's 64 channels at 112x112, stride 2: 3.3 MB of phase planes)
    /// came back from L3 or memory in 144 interleaved streams.
    static func directForward(_ g: Convolution.Geometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                              bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, epilogue: Activation?) {
        let pitch = g.outW + (g.window.kernelW - 1) * g.window.dilationW / g.window.strideW
        let rows = rowsPerBlock(g, pitch: pitch), rowBlocks = (g.outH + rows - 1) / rows
        let band = ImplicitLayout(g, outputRows: rows)
        precondition(band.planeW == pitch, "grouped: pitch \(band.planeW) vs \(pitch)")
        let phases = band.rowPhases.count * band.columnPhases.count
        // A group's planes, then what the last strip reads past them: up to 15 columns beyond its rows, whose last
        // one runs to the pitch (from the furthest offset: one plane row and 16 floats), zeros.
        let copied = g.cg * band.channelFloats, floats = copied + pitch + 32
        let registerEpilogue = epilogue?.registerEpilogue
        let separateEpilogue = epilogue != nil && registerEpilogue == nil
        band.offsets.withUnsafeBufferPointer { offsets in
            precondition(Int(offsets.max() ?? 0) + rows * pitch + 16 <= floats, "grouped: offsets beyond the band's copy")
            for image in 0..<g.n {
                let xn = x + image * g.c * g.h * g.w, yn = y + image * g.m * g.p
                parallelRanges(g.groups * rowBlocks, work: g.m * g.p * g.k,
                               minimumWorkPerThread: PackedGemm.minimumWorkPerThread) { tasks in
                    let buffer = ScratchPool.take(floats)
                    defer { ScratchPool.give(buffer) }
                    let copy = buffer.pointer
                    (copy + copied).update(repeating: 0, count: floats - copied)
                    PackedGemm.withPanel { panel in
                        for task in tasks {
                            let group = task / rowBlocks
                            let r0 = task % rowBlocks * rows, r1 = min(g.outH, r0 + rows)
                            band.fillPlanes(g, image: xn + group * g.cg * g.h * g.w, firstOutputRow: r0,
                                            planes: 0..<(g.cg * phases), scratch: copy)
                            let columns = (r1 - r0) * pitch, ld = roundedToStrips(columns)
                            dream_grouped_block(weight + group * g.mg * g.k, Int64(g.mg), Int64(g.k), copy,
                                                offsets.baseAddress, panel, Int64(ld), Int64(columns),
                                                bias.map { $0 + group * g.mg },
                                                registerEpilogue ?? Activation.noEpilogue)
                            let first = yn + group * g.mg * g.p + r0 * g.outW
                            dream_grouped_store(panel, Int64(ld), Int64(pitch), Int64(g.mg), Int64(r1 - r0), Int64(g.outW),
                                                first, Int64(g.p))
                            if separateEpilogue, let epilogue {
                                for i in 0..<g.mg {
                                    let channel = yn + (group * g.mg + i) * g.p
                                    epilogue.forward(UnsafePointer(channel), channel, (r0 * g.outW)..<(r1 * g.outW))
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Layers the direct kernel does not take (pointwise, or very many channels per group): per task (group,
    /// column block) the packed GEMM's `dream_gemm_block` on the group's implicit B, or on the image for a pointwise
    /// layer.
    static func packedForward(_ g: Convolution.Geometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                              bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, epilogue: Activation?) {
        let layout = g.isPointwise ? nil : ImplicitLayout(g)
        let buffer = layout.map { ScratchPool.take($0.floats) }
        defer { buffer.map(ScratchPool.give) }
        let columns = columnsPerBlock(g.p), columnBlocks = (g.p + columns - 1) / columns
        let separateEpilogue = epilogue != nil && epilogue?.registerEpilogue == nil
        let offsets = layout?.offsets ?? []
        offsets.withUnsafeBufferPointer { offsets in
            for image in 0..<g.n {
                let xn = x + image * g.c * g.h * g.w, yn = y + image * g.m * g.p
                if let layout, let scratch = buffer?.pointer { layout.fill(g, image: xn, scratch: scratch) }
                let problems = (0..<g.groups).map { group -> dream_gemm_problem in
                    let b: PackedGemm.Operand
                    if let layout, let scratch = buffer?.pointer {
                        let first = group * g.cg * layout.channelFloats
                        b = .implicit(scratch + first, readable: layout.floats - first, offsets: offsets,
                                      width: g.outW, pitch: layout.planeW)
                    } else {
                        b = .rows(xn + group * g.cg * g.p, ld: g.p)
                    }
                    return PackedGemm.problem(m: g.mg, n: g.p, k: g.k, a: .rows(weight + group * g.mg * g.k, ld: g.k),
                                              b: b, c: yn + group * g.mg * g.p, ldc: g.p,
                                              bias: bias.map { $0 + group * g.mg }, accumulate: false, epilogue: epilogue)
                }
                problems.withUnsafeBufferPointer { problems in
                    parallelRanges(g.groups * columnBlocks, work: g.m * g.p * g.k,
                                   minimumWorkPerThread: PackedGemm.minimumWorkPerThread) { tasks in
                        PackedGemm.withPanel { panel in
                            for task in tasks {
                                let group = task / columnBlocks
                                let c0 = task % columnBlocks * columns, c1 = min(g.p, c0 + columns)
                                dream_gemm_block(problems.baseAddress! + group, 0, Int64(g.mg), Int64(c0), Int64(c1), panel)
                                if separateEpilogue, let epilogue {
                                    for channel in (group * g.mg)..<((group + 1) * g.mg) {
                                        let row = yn + channel * g.p
                                        epilogue.forward(UnsafePointer(row), row, c0..<c1)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The geometry and window of the data gradient as a forward convolution of dy, when that is one: stride 1 and
    /// a padding no larger than the dilated kernel's reach on every side (always so for the usual "same" padding).
    /// dx[c][iy][ix] = Σ_{m in c's group} Σ_{ky,kx} W[m][c][ky][kx] · dy[m][iy + pT - ky·d][ix + pL - kx·d]: the
    /// correlation of dy with the flipped kernel, padded by (kH-1)·d - pT on top (likewise the other sides).
    static func inputGradientWindow(_ g: Convolution.Geometry) -> Window2D? {
        let w = g.window
        guard handles(g), w.strideH == 1 && w.strideW == 1 else { return nil }
        let reachH = (w.kernelH - 1) * w.dilationH, reachW = (w.kernelW - 1) * w.dilationW
        let window = Window2D(kernelH: w.kernelH, kernelW: w.kernelW, strideH: 1, strideW: 1,
                              padTop: reachH - w.padTop, padLeft: reachW - w.padLeft,
                              padBottom: reachH - w.padBottom, padRight: reachW - w.padRight,
                              dilationH: w.dilationH, dilationW: w.dilationW)
        guard window.padTop >= 0 && window.padLeft >= 0 && window.padBottom >= 0 && window.padRight >= 0 else { return nil }
        return window
    }

    /// dy [N,M,OH,OW] -> dx [N,C,H,W] (every element overwritten) as the forward convolution of dy with weight
    /// W' [C, M/g, kH, kW], W'[group·C/g + c][m][ky][kx] = W[group·M/g + m][c][kH-1-ky][kW-1-kx], same groups.
    /// Only for layers with an `inputGradientWindow`.
    static func inputGradient(_ g: Convolution.Geometry, dy: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                              dx: UnsafeMutablePointer<Float>) {
        guard let window = inputGradientWindow(g) else { preconditionFailure("grouped dx: \(g.window) is not stride 1") }
        let transposed = Convolution.Geometry(x: [g.n, g.m, g.outH, g.outW], weight: [g.c, g.mg, g.window.kernelH, g.window.kernelW],
                                              window: window, groups: g.groups)
        precondition(transposed.outH == g.h && transposed.outW == g.w, "grouped dx: \(transposed.outH)x\(transposed.outW) for \(g.h)x\(g.w)")
        let kh = g.window.kernelH, kw = g.window.kernelW, taps = kh * kw
        let buffer = ScratchPool.take(max(1, g.c * g.mg * taps))
        defer { ScratchPool.give(buffer) }
        let flipped = buffer.pointer
        for group in 0..<g.groups {
            for c in 0..<g.cg {
                for m in 0..<g.mg {
                    let src = weight + ((group * g.mg + m) * g.cg + c) * taps
                    let dst = flipped + ((group * g.cg + c) * g.mg + m) * taps
                    for t in 0..<taps { dst[t] = src[taps - 1 - t] }
                }
            }
        }
        forward(transposed, x: dy, weight: flipped, bias: nil, y: dx, epilogue: nil)
    }

    /// dy [N,M,OH,OW] -> dx [N,C,H,W] accumulated onto the caller's zeros, for the layers without an
    /// `inputGradientWindow` (strided): per band of output rows, the column gradients of every group
    /// (W_gᵀ [K, M/g] · dy_g [M/g, band]) as one task per group and column block of the packed GEMM, then col2im.
    static func stridedInputGradient(_ g: Convolution.Geometry, dy: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                     dx: UnsafeMutablePointer<Float>) {
        if g.p == 0 || g.m == 0 { return }
        let band = max(1, Convolution.bandRows(g))
        let buffer = ScratchPool.take(max(1, g.groups * g.k * band * g.outW))
        defer { ScratchPool.give(buffer) }
        let scratch = buffer.pointer
        for image in 0..<g.n {
            let dyn = dy + image * g.m * g.p, dxn = dx + image * g.c * g.h * g.w
            for r0 in stride(from: 0, to: g.outH, by: band) {
                let rows = r0..<min(g.outH, r0 + band)
                let columns = rows.count * g.outW, first = r0 * g.outW
                let perBlock = columnsPerBlock(columns), columnBlocks = (columns + perBlock - 1) / perBlock
                let problems = (0..<g.groups).map { group in
                    PackedGemm.problem(m: g.k, n: columns, k: g.mg, a: .transposed(weight + group * g.mg * g.k, ld: g.k),
                                       b: .rows(dyn + group * g.mg * g.p + first, ld: g.p),
                                       c: scratch + group * g.k * columns, ldc: columns, bias: nil, accumulate: false,
                                       epilogue: nil)
                }
                problems.withUnsafeBufferPointer { problems in
                    parallelRanges(g.groups * columnBlocks, work: g.groups * g.k * columns * g.mg,
                                   minimumWorkPerThread: PackedGemm.minimumWorkPerThread) { tasks in
                        PackedGemm.withPanel { panel in
                            for task in tasks {
                                let group = task / columnBlocks
                                let c0 = task % columnBlocks * perBlock, c1 = min(columns, c0 + perBlock)
                                dream_gemm_block(problems.baseAddress! + group, 0, Int64(g.k), Int64(c0), Int64(c1), panel)
                            }
                        }
                    }
                }
                Im2Col.backward(scratch, channels: g.c, height: g.h, width: g.w, window: g.window, image: dxn, outputRows: rows)
            }
        }
    }
}
