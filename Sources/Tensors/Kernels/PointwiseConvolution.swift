import CBLAS
import Parallel

/// Pointwise (1x1, stride 1, unpadded, one group) convolutions too small for OpenBLAS's own threading to pay:
/// y [M, P] = W [M, C] · x [C, P] per image, as one single-threaded GEMM per core, each on a slice of the output's
/// columns (or of its channels when there are more channels than columns). OpenBLAS splits such a product into
/// pieces whose hand-off and synchronisation cost as much as the arithmetic; contiguous slices of our own do not.
enum PointwiseConvolution {
    /// Whether the sliced kernel can compute this convolution.
    static func handles(_ g: Convolution.Geometry) -> Bool { g.isPointwise && g.groups == 1 }

    /// Products of at most this many multiply-accumulates per image run sliced; larger ones keep OpenBLAS's threads.
    /// Measured with `dream bench` on SqueezeNet 1.1, GoogLeNet and the MobileNetV2-shapes model: 2^24 on a 2-core
    /// AVX-512 machine; raised to 2^27 once our loops ran on the spinning pool (2-core Zen 3, 3 interleaved rounds,
    /// medians: MobileNetV2 224 6.47 → 6.28 ms, 512 29.4 → 27.3; SqueezeNet 224 5.88 → 5.51 (its conv10, 1000 × 512
    /// on 13², now sliced), 512 27.4 → 27.5; GoogLeNet 224 22.2 → 22.2, 512 85.8 → 87.9 (within its spread)).
    static let largestSlicedProduct = 1 << 27

    /// Whether this layer runs sliced: handled, more than one thread, and small enough.
    static func pays(_ g: Convolution.Geometry) -> Bool {
        handles(g) && Threading.threadCount > 1 && g.m * g.c * g.p <= largestSlicedProduct
    }

    /// Runs body(range) on slices of 0..<count, at least `quantum` wide (but the last), one per thread, with OpenBLAS
    /// on one thread meanwhile (the next `Gemm.sgemm` restores its thread count).
    static func sliced(_ count: Int, quantum: Int, _ body: (Range<Int>) -> Void) {
        let workers = max(1, min(Threading.threadCount, count / max(1, quantum)))
        BLASThreads.useSingleThread()
        parallelFor(workers) { w in
            // Slice boundaries on multiples of the quantum keep each GEMM's panels whole.
            let start = min(count, (count / workers * w) / quantum * quantum)
            let end = w == workers - 1 ? count : min(count, (count / workers * (w + 1)) / quantum * quantum)
            if end > start { body(start..<end) }
        }
    }

    /// One GEMM on the calling thread (OpenBLAS already on one thread), row-major.
    @inline(__always)
    static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                     b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    blasint(m), blasint(n), blasint(k), 1, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }

    /// Whether to slice the columns (positions) rather than the output channels.
    static func slicesColumns(_ g: Convolution.Geometry) -> Bool { g.p >= g.m }

    /// x [N,C,H,W], weight [M,C,1,1], bias [M]? -> y [N,M,H,W] = epilogue(W x + bias); each thread applies the
    /// epilogue to the slice it has just computed, while it is in that core's cache.
    static func forward(_ g: Convolution.Geometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                        bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, epilogue: Activation? = nil) {
        for image in 0..<g.n {
            let xn = x + image * g.c * g.p, yn = y + image * g.m * g.p
            if g.c == 0 {
                for channel in 0..<g.m {
                    let row = yn + channel * g.p
                    row.update(repeating: bias?[channel] ?? 0, count: g.p)
                    epilogue?.forward(UnsafePointer(row), row, 0..<g.p)
                }
                continue
            }
            if slicesColumns(g) {
                sliced(g.p, quantum: 16) { columns in
                    if let bias { for channel in 0..<g.m { (yn + channel * g.p + columns.lowerBound).update(repeating: bias[channel], count: columns.count) } }
                    gemm(transA: false, transB: false, m: g.m, n: columns.count, k: g.c, a: weight, lda: g.c,
                         b: xn + columns.lowerBound, ldb: g.p, beta: bias == nil ? 0 : 1, c: yn + columns.lowerBound, ldc: g.p)
                    if let epilogue {
                        for channel in 0..<g.m { let row = yn + channel * g.p; epilogue.forward(UnsafePointer(row), row, columns) }
                    }
                }
            } else {
                sliced(g.m, quantum: 4) { channels in
                    if let bias { for channel in channels { (yn + channel * g.p).update(repeating: bias[channel], count: g.p) } }
                    gemm(transA: false, transB: false, m: channels.count, n: g.p, k: g.c, a: weight + channels.lowerBound * g.c, lda: g.c,
                         b: xn, ldb: g.p, beta: bias == nil ? 0 : 1, c: yn + channels.lowerBound * g.p, ldc: g.p)
                    if let epilogue {
                        let rows = yn + channels.lowerBound * g.p
                        epilogue.forward(UnsafePointer(rows), rows, 0..<(channels.count * g.p))
                    }
                }
            }
        }
    }

    /// dy [N,M,H,W] -> dx [N,C,H,W] = W^T dy (overwritten), dWeight [M,C] += dy x^T (accumulated onto zeros)
    static func backward(_ g: Convolution.Geometry, dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>?) {
        for image in 0..<g.n {
            let xn = x + image * g.c * g.p, dyn = dy + image * g.m * g.p
            if let dWeight, g.c > 0 {
                // A reduction over positions: slice the output channels (rows of dWeight) instead.
                sliced(g.m, quantum: 4) { channels in
                    gemm(transA: false, transB: true, m: channels.count, n: g.c, k: g.p, a: dyn + channels.lowerBound * g.p, lda: g.p,
                         b: xn, ldb: g.p, beta: 1, c: dWeight + channels.lowerBound * g.c, ldc: g.c)
                }
            }
            if let dx {
                let dxn = dx + image * g.c * g.p
                if g.m == 0 { dxn.update(repeating: 0, count: g.c * g.p); continue }
                if g.c == 0 { continue }
                if g.p >= g.c {
                    sliced(g.p, quantum: 16) { columns in
                        gemm(transA: true, transB: false, m: g.c, n: columns.count, k: g.m, a: weight, lda: g.c,
                             b: dyn + columns.lowerBound, ldb: g.p, beta: 0, c: dxn + columns.lowerBound, ldc: g.p)
                    }
                } else {
                    sliced(g.c, quantum: 4) { channels in
                        gemm(transA: true, transB: false, m: channels.count, n: g.p, k: g.m, a: weight + channels.lowerBound, lda: g.c,
                             b: dyn, ldb: g.p, beta: 0, c: dxn + channels.lowerBound * g.p, ldc: g.p)
                    }
                }
            }
        }
    }
}
