import CBLAS
import Foundation
import Parallel

/// ONNX Gemm: y = alpha * op(a) * op(b) + beta * c, with c broadcast to [M, N].
public enum Gemm {
    /// a [M,K] (or [K,M] if transA), b [K,N] (or [N,K] if transB), c broadcastable to [M,N] -> y [M,N]
    public static func forward(_ a: Tensor, _ b: Tensor, c: Tensor?, transA: Bool, transB: Bool, alpha: Float, beta: Float) -> Tensor {
        precondition(a.rank == 2 && b.rank == 2, "Gemm: a \(a.shape) and b \(b.shape) must be 2-D")
        let (m, k) = transA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
        let (kb, n) = transB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
        precondition(k == kb, "Gemm: inner dimensions differ, op(a) [\(m),\(k)] x op(b) [\(kb),\(n)]")
        let bias = c.map { BiasLayout($0, m: m, n: n) }
        return Tensor(shape: [m, n]) { y in
            let out = y.baseAddress!
            var gemmBeta: Float = 0
            if let c, let bias, beta != 0 {
                // Broadcast beta*c into y first so that the GEMM can accumulate on top of it (beta = 1).
                c.withUnsafeBufferPointer { cp in
                    for i in 0..<m {
                        let row = out + i * n
                        for j in 0..<n { row[j] = beta * cp[i * bias.rowStride + j * bias.columnStride] }
                    }
                }
                gemmBeta = 1
            }
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                          a: ap.baseAddress!, lda: a.shape[1], b: bp.baseAddress!, ldb: b.shape[1],
                          beta: gemmBeta, c: out, ldc: n)
                }
            }
        }
    }

    /// dy [M,N] -> da (shape of a), db (shape of b), dc (shape of c: dy summed over c's broadcast axes, times beta)
    public static func backward(_ dy: Tensor, a: Tensor, b: Tensor, c: Tensor?, transA: Bool, transB: Bool, alpha: Float, beta: Float)
        -> (da: Tensor, db: Tensor, dc: Tensor?) {
        let (m, k) = transA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
        let n = transB ? b.shape[0] : b.shape[1]
        precondition(dy.shape == [m, n], "Gemm backward: dy \(dy.shape), expected [\(m), \(n)]")
        let lda = a.shape[1], ldb = b.shape[1]
        return dy.withUnsafeBufferPointer { gp in
            let g = gp.baseAddress!
            let da = b.withUnsafeBufferPointer { bp in
                Tensor(shape: a.shape) { out in
                    if transA { // da [K,M] = alpha * op(b) [K,N] * dy^T [N,M]
                        sgemm(transA: transB, transB: true, m: k, n: m, k: n, alpha: alpha,
                              a: bp.baseAddress!, lda: ldb, b: g, ldb: n, beta: 0, c: out.baseAddress!, ldc: m)
                    } else {    // da [M,K] = alpha * dy [M,N] * op(b)^T [N,K]
                        sgemm(transA: false, transB: !transB, m: m, n: k, k: n, alpha: alpha,
                              a: g, lda: n, b: bp.baseAddress!, ldb: ldb, beta: 0, c: out.baseAddress!, ldc: k)
                    }
                }
            }
            let db = a.withUnsafeBufferPointer { ap in
                Tensor(shape: b.shape) { out in
                    if transB { // db [N,K] = alpha * dy^T [N,M] * op(a) [M,K]
                        sgemm(transA: true, transB: transA, m: n, n: k, k: m, alpha: alpha,
                              a: g, lda: n, b: ap.baseAddress!, ldb: lda, beta: 0, c: out.baseAddress!, ldc: k)
                    } else {    // db [K,N] = alpha * op(a)^T [K,M] * dy [M,N]
                        sgemm(transA: !transA, transB: false, m: k, n: n, k: m, alpha: alpha,
                              a: ap.baseAddress!, lda: lda, b: g, ldb: n, beta: 0, c: out.baseAddress!, ldc: n)
                    }
                }
            }
            var dc: Tensor?
            if let c {
                let layout = BiasLayout(c, m: m, n: n)
                // Sum in Double: a scalar c gathers every element of dy.
                var sums = [Double](repeating: 0, count: c.count)
                for i in 0..<m {
                    for j in 0..<n { sums[i * layout.rowStride + j * layout.columnStride] += Double(g[i * n + j]) }
                }
                dc = Tensor(shape: c.shape, scalars: sums.map { Float(Double(beta) * $0) })
            }
            return (da, db, dc)
        }
    }

    /// How c maps onto [M,N] under ONNX unidirectional (numpy) broadcasting: element (i,j) is c[i*rowStride + j*columnStride].
    struct BiasLayout {
        let rowStride: Int, columnStride: Int
        init(_ c: Tensor, m: Int, n: Int) {
            precondition(c.rank <= 2, "Gemm: c \(c.shape) must have rank <= 2")
            let rows = c.rank == 2 ? c.shape[0] : 1
            let cols = c.rank >= 1 ? c.shape[c.rank - 1] : 1
            precondition((rows == 1 || rows == m) && (cols == 1 || cols == n),
                         "Gemm: c \(c.shape) does not broadcast to [\(m), \(n)]")
            columnStride = cols == 1 ? 0 : 1
            rowStride = rows == 1 ? 0 : cols
        }
    }

    /// Row-major C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C; lda/ldb/ldc are the row lengths as stored.
    /// Handles empty products, which BLAS rejects or leaves undefined.
    @inline(__always)
    static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                      a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            for i in 0..<m {
                for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] }
            }
            return
        }
        BLASThreads.followThreading()
        // A single row or column is a matrix-vector product. OpenBLAS (0.3.21) does not notice: its sgemm packs the
        // whole matrix into panels on every call, which for a classifier (y [1,1000] from 1280 features, 5 MB of
        // weights) costs six times the product itself. sgemv streams the matrix once.
        // BLAS leaves y's old contents to sgemv's scaling by beta, and some OpenBLAS versions multiply instead of
        // clearing when beta is 0 (uninitialised NaN would survive): a product that overwrites gets zeros first.
        if m == 1 {
            if beta == 0 { c.update(repeating: 0, count: n) }
            // y[0, j] = Σ_p op(A)[0, p] · op(B)[p, j]; op(A)'s row is A's row 0, or A's column 0 when transposed.
            cblas_sgemv(CblasRowMajor, transB ? CblasNoTrans : CblasTrans, blasint(transB ? n : k), blasint(transB ? k : n),
                        alpha, b, blasint(max(ldb, 1)), a, blasint(transA ? max(lda, 1) : 1), beta, c, 1)
            return
        }
        if n == 1 {
            if beta == 0 { for i in 0..<m { c[i * ldc] = 0 } }
            // y[i, 0] = Σ_p op(A)[i, p] · op(B)[p, 0]; op(B)'s column is B's column 0, or B's row 0 when transposed.
            cblas_sgemv(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, blasint(transA ? k : m), blasint(transA ? m : k),
                        alpha, a, blasint(max(lda, 1)), b, blasint(transB ? 1 : max(ldb, 1)), beta, c, blasint(max(ldc, 1)))
            return
        }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    blasint(m), blasint(n), blasint(k), alpha, a, blasint(max(lda, 1)), b, blasint(max(ldb, 1)),
                    beta, c, blasint(max(ldc, 1)))
    }
}

/// numpy matmul: (…,M,K) x (…,K,N) -> (…,M,N) with broadcast batch dimensions; a 1-D a is a row [1,K] and a
/// 1-D b a column [K,1], and the promoted axis is dropped from the result.
public enum MatMul {
    /// a [...,M,K], b [...,K,N] -> y [broadcast(...),M,N]
    public static func forward(_ a: Tensor, _ b: Tensor) -> Tensor {
        let plan = Plan(a.shape, b.shape)
        return Tensor(shape: plan.outputShape) { y in
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    let out = y.baseAddress!
                    if plan.bBatchCount == 1 && plan.aBatchCount == plan.batchCount {
                        // b is shared by every batch: one tall GEMM [batch*M, K] x [K, N].
                        Gemm.sgemm(transA: false, transB: false, m: plan.batchCount * plan.m, n: plan.n, k: plan.k, alpha: 1,
                                   a: ap.baseAddress!, lda: plan.k, b: bp.baseAddress!, ldb: plan.n, beta: 0, c: out, ldc: plan.n)
                        return
                    }
                    for batch in 0..<plan.batchCount {
                        Gemm.sgemm(transA: false, transB: false, m: plan.m, n: plan.n, k: plan.k, alpha: 1,
                                   a: ap.baseAddress! + plan.aIndex[batch] * plan.m * plan.k, lda: plan.k,
                                   b: bp.baseAddress! + plan.bIndex[batch] * plan.k * plan.n, ldb: plan.n,
                                   beta: 0, c: out + batch * plan.m * plan.n, ldc: plan.n)
                    }
                }
            }
        }
    }

    /// dy (shape of forward's output) -> da (shape of a), db (shape of b), summed over broadcast batch dimensions
    public static func backward(_ dy: Tensor, a: Tensor, b: Tensor) -> (da: Tensor, db: Tensor) {
        let plan = Plan(a.shape, b.shape)
        precondition(dy.count == plan.outputShape.reduce(1, *), "MatMul backward: dy \(dy.shape), expected \(plan.outputShape)")
        let (m, n, k) = (plan.m, plan.n, plan.k)
        return dy.withUnsafeBufferPointer { gp in
            let g = gp.baseAddress!
            // da[batch] [M,K] += dy [M,N] * b^T [N,K]; accumulation (beta 1) sums the batches a was broadcast over.
            var da = Tensor(shape: a.shape)
            da.withUnsafeMutableBufferPointer { dp in
                b.withUnsafeBufferPointer { bp in
                    if plan.bBatchCount == 1 && plan.aBatchCount == plan.batchCount {
                        Gemm.sgemm(transA: false, transB: true, m: plan.batchCount * m, n: k, k: n, alpha: 1,
                                   a: g, lda: n, b: bp.baseAddress!, ldb: n, beta: 0, c: dp.baseAddress!, ldc: k)
                        return
                    }
                    for batch in 0..<plan.batchCount {
                        Gemm.sgemm(transA: false, transB: true, m: m, n: k, k: n, alpha: 1,
                                   a: g + batch * m * n, lda: n, b: bp.baseAddress! + plan.bIndex[batch] * k * n, ldb: n,
                                   beta: 1, c: dp.baseAddress! + plan.aIndex[batch] * m * k, ldc: k)
                    }
                }
            }
            // db[batch] [K,N] += a^T [K,M] * dy [M,N]
            var db = Tensor(shape: b.shape)
            db.withUnsafeMutableBufferPointer { dp in
                a.withUnsafeBufferPointer { ap in
                    if plan.bBatchCount == 1 && plan.aBatchCount == plan.batchCount {
                        // Shared b: one GEMM over the stacked batches, [K, batch*M] x [batch*M, N].
                        Gemm.sgemm(transA: true, transB: false, m: k, n: n, k: plan.batchCount * m, alpha: 1,
                                   a: ap.baseAddress!, lda: k, b: g, ldb: n, beta: 0, c: dp.baseAddress!, ldc: n)
                        return
                    }
                    for batch in 0..<plan.batchCount {
                        Gemm.sgemm(transA: true, transB: false, m: k, n: n, k: m, alpha: 1,
                                   a: ap.baseAddress! + plan.aIndex[batch] * m * k, lda: k, b: g + batch * m * n, ldb: n,
                                   beta: 1, c: dp.baseAddress! + plan.bIndex[batch] * k * n, ldc: n)
                    }
                }
            }
            return (da, db)
        }
    }

    /// Shapes after numpy's 1-D promotion and batch broadcasting, with each output batch's a- and b-batch index.
    struct Plan {
        let m: Int, n: Int, k: Int
        let outputShape: [Int]
        let batchCount: Int, aBatchCount: Int, bBatchCount: Int
        let aIndex: [Int], bIndex: [Int]

        init(_ aShape: [Int], _ bShape: [Int]) {
            precondition(!aShape.isEmpty && !bShape.isEmpty, "MatMul: operands must have rank >= 1, got \(aShape) and \(bShape)")
            let a = aShape.count == 1 ? [1, aShape[0]] : aShape
            let b = bShape.count == 1 ? [bShape[0], 1] : bShape
            m = a[a.count - 2]; k = a[a.count - 1]; n = b[b.count - 1]
            precondition(b[b.count - 2] == k, "MatMul: inner dimensions differ in \(aShape) x \(bShape)")
            let aBatch = Array(a.dropLast(2)), bBatch = Array(b.dropLast(2))
            let rank = max(aBatch.count, bBatch.count)
            let aPad = [Int](repeating: 1, count: rank - aBatch.count) + aBatch
            let bPad = [Int](repeating: 1, count: rank - bBatch.count) + bBatch
            var batch = [Int]()
            for (x, y) in zip(aPad, bPad) {
                precondition(x == y || x == 1 || y == 1, "MatMul: batch dimensions of \(aShape) and \(bShape) do not broadcast")
                batch.append(x == 1 ? y : x)
            }
            batchCount = batch.reduce(1, *)
            aBatchCount = aPad.reduce(1, *)
            bBatchCount = bPad.reduce(1, *)
            // Walk the output batch index and map it to each operand, skipping axes where it was broadcast.
            let aStrides = strides(of: aPad), bStrides = strides(of: bPad)
            var ai = [Int](), bi = [Int]()
            ai.reserveCapacity(batchCount); bi.reserveCapacity(batchCount)
            var index = [Int](repeating: 0, count: rank)
            for _ in 0..<batchCount {
                var ao = 0, bo = 0
                for d in 0..<rank {
                    if aPad[d] != 1 { ao += index[d] * aStrides[d] }
                    if bPad[d] != 1 { bo += index[d] * bStrides[d] }
                }
                ai.append(ao); bi.append(bo)
                var d = rank - 1
                while d >= 0 {
                    index[d] += 1
                    if index[d] < batch[d] { break }
                    index[d] = 0
                    d -= 1
                }
            }
            aIndex = ai; bIndex = bi
            var shape = batch
            if aShape.count > 1 { shape.append(m) }
            if bShape.count > 1 { shape.append(n) }
            outputShape = shape
        }
    }
}
