import CKernels
import Foundation
import Parallel

/// Our packed SGEMM (CKernels: GemmBodies.h) for the products OpenBLAS runs far from peak: a convolution's GEMM
/// with few input channels (K) or few positions, where OpenBLAS's packing and threading cost as much as the
/// arithmetic, and where its output (larger than L2) would otherwise be passed over three times (bias, product,
/// activation). Here the bias and the activation are applied in registers before the single store.
///
/// The output is cut into blocks by its shape alone and the blocks are spread over the threads of our own loop;
/// each element's sum over K runs in the same order in whichever block computes it, so results do not depend on
/// the thread count (only on the instruction-set level: fused multiply-adds from AVX2 up).
public enum PackedGemm {
    /// A matrix operand: element (i, p) is at pointer[i·rowStride + p·columnStride].
    public struct Operand {
        public let pointer: UnsafePointer<Float>
        public let rowStride: Int, columnStride: Int

        public init(pointer: UnsafePointer<Float>, rowStride: Int, columnStride: Int) {
            self.pointer = pointer
            self.rowStride = rowStride
            self.columnStride = columnStride
        }

        /// A row-major matrix whose rows are `ld` floats apart.
        public static func rows(_ pointer: UnsafePointer<Float>, ld: Int) -> Operand {
            Operand(pointer: pointer, rowStride: ld, columnStride: 1)
        }

        /// The transpose of a row-major matrix whose rows are `ld` floats apart.
        public static func transposed(_ pointer: UnsafePointer<Float>, ld: Int) -> Operand {
            Operand(pointer: pointer, rowStride: 1, columnStride: ld)
        }

        /// Set for an implicit B (`implicit(_:readable:offsets:width:pitch:)`).
        var implicit: Implicit?

        /// Element (p, q) = pointer[offsets[p] + (q / width)·pitch + q % width]: the B of an implicit-GEMM
        /// convolution, row p = (channel, tap) an offset into a zero-padded copy of the image and column q = (oy, ox)
        /// an output position, the GEMM packing B's strips straight from that copy (no im2col matrix). Only B can be
        /// implicit. `readable`: floats readable from `pointer`; `multiply` checks once per call that every read,
        /// including the packer's over-reads, stays inside them.
        public static func implicit(_ pointer: UnsafePointer<Float>, readable: Int, offsets: UnsafeBufferPointer<Int64>,
                                    width: Int, pitch: Int) -> Operand {
            var operand = Operand(pointer: pointer, rowStride: 0, columnStride: 0)
            operand.implicit = Implicit(offsets: offsets, width: width, pitch: pitch, readable: readable)
            return operand
        }
    }

    struct Implicit {
        let offsets: UnsafeBufferPointer<Int64>
        let width: Int, pitch: Int, readable: Int

        /// Floats the packer may read past the last element it needs (GemmBodies.h: up to a vector less one).
        static let overRead = 16

        /// Every float the packer reads for a B of k rows and n columns lies in pointer[0 ..< readable].
        func check(k: Int, n: Int) {
            precondition(offsets.count >= k, "implicit B: \(offsets.count) row offsets for \(k) rows")
            precondition(width >= 1 && pitch >= width, "implicit B: width \(width), pitch \(pitch)")
            guard k > 0, n > 0 else { return }
            var low = Int64.max, high = Int64.min
            for p in 0..<k { low = min(low, offsets[p]); high = max(high, offsets[p]) }
            let (rows, _) = (n - 1).quotientAndRemainder(dividingBy: width)
            let (span, o1) = rows.multipliedReportingOverflow(by: pitch)
            let (last, o2) = Int(high).addingReportingOverflow(span)
            precondition(low >= 0 && !o1 && !o2 && last <= readable - Self.overRead - min(width, n),
                         "implicit B: offsets \(low)...\(high), \(rows + 1) rows of pitch \(pitch) read past \(readable) floats")
        }
    }

    /// The block of the output one task computes: whole rows and about 256 columns (a multiple of 16, the
    /// micro-kernel's width, with the number of blocks a multiple of 8 so that 2, 4 or 8 threads get equal
    /// shares). When the columns make fewer than 4 blocks, rows are cut as well, in whole tiles of the
    /// micro-kernel's 6 rows, so that the threads' shares of tiles are as even as whole blocks allow (`rowBlock`);
    /// each block packs its own columns of B, used once per row, so among splits as even, the fewest blocks win.
    /// The split does not change the results (each element's sum runs in the same order in any block).
    static func blockSize(m: Int, n: Int, threads: Int) -> (rows: Int, columns: Int) {
        var columns = max(1, n)
        if n > 384 {
            let blocks = ((n + 255) / 256 + 7) / 8 * 8
            columns = ((n + blocks - 1) / blocks + 15) / 16 * 16
        }
        let columnBlocks = (n + columns - 1) / columns
        if columnBlocks >= 4 { return (max(1, m), columns) }
        return (rowBlock(m: m, columnBlocks: columnBlocks, threads: threads), columns)
    }

    /// Rows per block (a multiple of 6, or all m) for which the slowest of `threads` contiguous shares of the
    /// blocks (`parallelRanges`' split) has the fewest 6-row tiles; ties go to the taller block. m = 64 on 2
    /// threads: 36 + 28 rows (6 and 5 tiles), where 24-row blocks gave one thread 7 tiles and the other 4.
    public static func rowBlock(m: Int, columnBlocks: Int, threads: Int) -> Int {
        let m = max(1, m), tiles = (m + 5) / 6
        if threads <= 1 || tiles <= 1 { return m }
        var best = (slowest: Int.max, rows: m)
        for target in 1...min(tiles, 8 * threads) {
            let rows = (tiles + target - 1) / target * 6, rowBlocks = (m + rows - 1) / rows
            let blocks = rowBlocks * columnBlocks, workers = min(threads, blocks)
            var slowest = 0
            for w in 0..<workers {
                var share = 0
                for block in (blocks * w / workers)..<(blocks * (w + 1) / workers) {
                    let r0 = block / columnBlocks * rows
                    share += (min(m, r0 + rows) - r0 + 5) / 6
                }
                slowest = max(slowest, share)
            }
            if slowest < best.slowest { best = (slowest, min(rows, m)) }
        }
        return best.rows
    }

    /// The threads `multiply` runs a product on: as many as its multiply-adds pay for (`parallelRanges`).
    static func threadsPaidFor(m: Int, n: Int, k: Int) -> Int {
        min(Threading.threadCount, max(1, m * n * max(1, k) / minimumWorkPerThread))
    }

    static let minimumWorkPerThread = 1 << 18

    /// Free scratch panels (B packed, `dream_gemm_scratch_floats` each, 512 KB), one per thread that is running a
    /// product: kept apart from `ScratchPool`, whose few large im2col buffers these small, frequent ones would
    /// otherwise displace (a displaced buffer is allocated again, page by page).
    nonisolated(unsafe) private static var panels: [UnsafeMutablePointer<Float>] = []
    private static let panelLock = NSLock()
    static let panelFloats = Int(dream_gemm_scratch_floats())

    /// Runs `body` with a scratch panel for `dream_gemm_block` (one per running thread).
    static func withPanel<R>(_ body: (UnsafeMutablePointer<Float>) -> R) -> R {
        let panel = takePanel()
        defer { givePanel(panel) }
        return body(panel)
    }

    private static func takePanel() -> UnsafeMutablePointer<Float> {
        panelLock.lock()
        defer { panelLock.unlock() }
        return panels.popLast() ?? .allocate(capacity: panelFloats)
    }

    private static func givePanel(_ panel: UnsafeMutablePointer<Float>) {
        panelLock.lock()
        defer { panelLock.unlock() }
        // More than one per core only when several products run at once.
        if panels.count < 2 * Threading.threadCount { panels.append(panel) } else { panel.deallocate() }
    }

    /// The C kernel's description of `multiply`'s product (B's implicit reads checked here); an activation the kernel
    /// does not apply in registers (`Activation.registerEpilogue` nil) is left for the caller.
    static func problem(m: Int, n: Int, k: Int, a: Operand, b: Operand, c: UnsafeMutablePointer<Float>, ldc: Int,
                        bias: UnsafePointer<Float>?, accumulate: Bool, epilogue: Activation?) -> dream_gemm_problem {
        precondition(a.implicit == nil, "PackedGemm: only B can be implicit")
        b.implicit?.check(k: k, n: n)
        return dream_gemm_problem(
            m: Int64(m), n: Int64(n), k: Int64(k),
            a: a.pointer, a_row_stride: Int64(a.rowStride), a_column_stride: Int64(a.columnStride),
            b: b.pointer, b_row_stride: Int64(b.rowStride), b_column_stride: Int64(b.columnStride),
            c: c, c_row_stride: Int64(ldc), bias: bias, accumulate: accumulate ? 1 : 0,
            epilogue: epilogue?.registerEpilogue ?? Activation.noEpilogue,
            b_offsets: b.implicit?.offsets.baseAddress, b_width: Int64(b.implicit?.width ?? 0),
            b_pitch: Int64(b.implicit?.pitch ?? 0))
    }

    /// C [m, n] (rows ldc apart) = epilogue(C₀ + A [m, k] · B [k, n] + bias), where C₀ is C's previous value when
    /// `accumulate`, else 0, and bias [m] (one value per row) may be nil. Runs on up to `Threading.threadCount`
    /// threads, as many as the m·n·k multiply-adds pay for.
    public static func multiply(m: Int, n: Int, k: Int, a: Operand, b: Operand, c: UnsafeMutablePointer<Float>, ldc: Int,
                         bias: UnsafePointer<Float>? = nil, accumulate: Bool = false, epilogue: Activation? = nil) {
        if m == 0 || n == 0 { return }
        let separateEpilogue = epilogue != nil && epilogue?.registerEpilogue == nil
        var problem = Self.problem(m: m, n: n, k: k, a: a, b: b, c: c, ldc: ldc, bias: bias, accumulate: accumulate,
                                   epilogue: epilogue)
        let (rows, columns) = blockSize(m: m, n: n, threads: threadsPaidFor(m: m, n: n, k: k))
        let rowBlocks = (m + rows - 1) / rows, columnBlocks = (n + columns - 1) / columns
        withUnsafePointer(to: &problem) { problem in
            parallelRanges(rowBlocks * columnBlocks, work: m * n * max(1, k), minimumWorkPerThread: minimumWorkPerThread) { blocks in
                withPanel { scratch in
                    for block in blocks {
                        let r0 = block / columnBlocks * rows, c0 = block % columnBlocks * columns
                        let r1 = min(m, r0 + rows), c1 = min(n, c0 + columns)
                        dream_gemm_block(problem, Int64(r0), Int64(r1), Int64(c0), Int64(c1), scratch)
                        // An activation the kernel does not know goes over the block while it is in this core's cache.
                        if separateEpilogue, let epilogue {
                            for row in r0..<r1 { epilogue.forward(UnsafePointer(c + row * ldc), c + row * ldc, c0..<c1) }
                        }
                    }
                }
            }
        }
    }
}
