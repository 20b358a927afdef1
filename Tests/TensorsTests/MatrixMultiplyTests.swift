import XCTest
import Tensors

final class MatrixMultiplyTests: XCTestCase {
    static let transposes = [(false, false), (true, false), (false, true), (true, true)]

    /// op(a) * op(b) * alpha + beta * c (c broadcast numpy-style), accumulated in Double.
    static func naiveGemm(_ a: Tensor, _ b: Tensor, _ c: Tensor?, transA: Bool, transB: Bool, alpha: Float, beta: Float) -> Tensor {
        let (m, k) = transA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
        let n = transB ? b.shape[0] : b.shape[1]
        var y = Tensor(shape: [m, n])
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    s += Double(transA ? a[p, i] : a[i, p]) * Double(transB ? b[j, p] : b[p, j])
                }
                var bias = 0.0
                if let c {
                    switch c.rank {
                    case 0: bias = Double(c[flat: 0])
                    case 1: bias = Double(c[c.shape[0] == 1 ? 0 : j])
                    default: bias = Double(c[c.shape[0] == 1 ? 0 : i, c.shape[1] == 1 ? 0 : j])
                    }
                }
                y[i, j] = Float(Double(alpha) * s + Double(beta) * bias)
            }
        }
        return y
    }

    static func biasShapes(m: Int, n: Int) -> [[Int]?] { [nil, [], [1], [n], [1, n], [m, 1], [m, n], [1, 1]] }

    /// A general product, and the matrix-vector shapes (one row: a classifier on one image; one column; a dot
    /// product) that take sgemv instead of sgemm.
    static let productShapes = [(5, 7, 3), (1, 37, 29), (23, 37, 1), (1, 9, 1)]

    func testGemmMatchesNaiveReferenceForAllTransposesAndBiasShapes() {
        var seed: UInt64 = 1
        for (m, k, n) in Self.productShapes {
            for (transA, transB) in Self.transposes {
                for cShape in Self.biasShapes(m: m, n: n) {
                    for (alpha, beta) in [(Float(1), Float(1)), (0.7, -1.3), (2, 0)] {
                        seed += 3
                        let a = Tensor.random(shape: transA ? [k, m] : [m, k], seed: seed)
                        let b = Tensor.random(shape: transB ? [n, k] : [k, n], seed: seed + 1)
                        let c = cShape.map { Tensor.random(shape: $0, seed: seed + 2) }
                        let y = Gemm.forward(a, b, c: c, transA: transA, transB: transB, alpha: alpha, beta: beta)
                        let expected = Self.naiveGemm(a, b, c, transA: transA, transB: transB, alpha: alpha, beta: beta)
                        XCTAssertEqual(y.shape, [m, n])
                        XCTAssertLessThan(y.maxAbsDifference(expected), 1e-4,
                                          "[\(m),\(k)]x[\(k),\(n)] transA \(transA) transB \(transB) c \(String(describing: cShape)) alpha \(alpha) beta \(beta)")
                    }
                }
            }
        }
    }

    func testGemmBackwardMatchesFiniteDifferences() {
        var seed: UInt64 = 100
        let (alpha, beta): (Float, Float) = (0.8, 1.5)
        for (m, k, n) in [(4, 3, 5), (1, 6, 5), (4, 6, 1)] {
            for (transA, transB) in Self.transposes {
                for cShape in Self.biasShapes(m: m, n: n) {
                    seed += 5
                    let a = Tensor.random(shape: transA ? [k, m] : [m, k], seed: seed)
                    let b = Tensor.random(shape: transB ? [n, k] : [k, n], seed: seed + 1)
                    let c = cShape.map { Tensor.random(shape: $0, seed: seed + 2) }
                    let dy = Tensor.random(shape: [m, n], seed: seed + 3)
                    let label = "[\(m),\(k)]x[\(k),\(n)] transA \(transA) transB \(transB) c \(String(describing: cShape))"
                    let grads = Gemm.backward(dy, a: a, b: b, c: c, transA: transA, transB: transB, alpha: alpha, beta: beta)
                    FiniteDifference.check(grads.da, of: { Gemm.forward($0, b, c: c, transA: transA, transB: transB, alpha: alpha, beta: beta) },
                                           at: a, upstream: dy, tolerance: 1e-3, "da, \(label)")
                    FiniteDifference.check(grads.db, of: { Gemm.forward(a, $0, c: c, transA: transA, transB: transB, alpha: alpha, beta: beta) },
                                           at: b, upstream: dy, tolerance: 1e-3, "db, \(label)")
                    if let c {
                        FiniteDifference.check(grads.dc, of: { Gemm.forward(a, b, c: $0, transA: transA, transB: transB, alpha: alpha, beta: beta) },
                                               at: c, upstream: dy, tolerance: 1e-3, "dc, \(label)")
                    } else {
                        XCTAssertNil(grads.dc, label)
                    }
                }
            }
        }
    }

    /// numpy matmul written out: promote 1-D operands, broadcast batch axes, multiply, drop promoted axes.
    static func naiveMatMul(_ a: Tensor, _ b: Tensor) -> Tensor {
        let aShape = a.rank == 1 ? [1, a.shape[0]] : a.shape
        let bShape = b.rank == 1 ? [b.shape[0], 1] : b.shape
        let (m, k, n) = (aShape[aShape.count - 2], aShape[aShape.count - 1], bShape[bShape.count - 1])
        let rank = max(aShape.count, bShape.count) - 2
        let aBatch = [Int](repeating: 1, count: rank - (aShape.count - 2)) + aShape.dropLast(2)
        let bBatch = [Int](repeating: 1, count: rank - (bShape.count - 2)) + bShape.dropLast(2)
        let batch = zip(aBatch, bBatch).map { max($0, $1) }
        var result = [Float]()
        for flat in 0..<batch.reduce(1, *) {
            var index = [Int](), rest = flat
            for d in batch.reversed() { index.insert(rest % d, at: 0); rest /= d }
            var aOffset = 0, bOffset = 0
            for d in 0..<rank {
                aOffset = aOffset * aBatch[d] + (aBatch[d] == 1 ? 0 : index[d])
                bOffset = bOffset * bBatch[d] + (bBatch[d] == 1 ? 0 : index[d])
            }
            for i in 0..<m {
                for j in 0..<n {
                    var s = 0.0
                    for p in 0..<k {
                        s += Double(a[flat: aOffset * m * k + i * k + p]) * Double(b[flat: bOffset * k * n + p * n + j])
                    }
                    result.append(Float(s))
                }
            }
        }
        var shape = batch
        if a.rank > 1 { shape.append(m) }
        if b.rank > 1 { shape.append(n) }
        return Tensor(shape: shape, scalars: result)
    }

    static let matMulShapes: [(a: [Int], b: [Int], y: [Int])] = [
        ([3, 4], [4, 5], [3, 5]),
        ([2, 3, 4], [2, 4, 5], [2, 3, 5]),
        ([2, 3, 4], [4, 5], [2, 3, 5]),
        ([3, 4], [2, 4, 5], [2, 3, 5]),
        ([2, 1, 3, 4], [3, 4, 2], [2, 3, 3, 2]),
        ([4], [4, 5], [5]),
        ([2, 3, 4], [4], [2, 3]),
        ([4], [2, 4, 3], [2, 3]),
        ([4], [4], []),
    ]

    func testMatMulMatchesNaiveReferenceWithBatchesBroadcastAndVectors() {
        for (index, s) in Self.matMulShapes.enumerated() {
            let a = Tensor.random(shape: s.a, seed: UInt64(index * 4 + 1))
            let b = Tensor.random(shape: s.b, seed: UInt64(index * 4 + 2))
            let y = MatMul.forward(a, b)
            let expected = Self.naiveMatMul(a, b)
            XCTAssertEqual(y.shape, s.y, "\(s.a) x \(s.b)")
            XCTAssertEqual(expected.shape, s.y, "reference shape for \(s.a) x \(s.b)")
            XCTAssertLessThan(y.maxAbsDifference(expected), 1e-5, "\(s.a) x \(s.b)")
        }
    }

    func testMatMulBackwardMatchesFiniteDifferencesIncludingBroadcastSums() {
        for (index, s) in Self.matMulShapes.enumerated() {
            let a = Tensor.random(shape: s.a, seed: UInt64(index * 4 + 51))
            let b = Tensor.random(shape: s.b, seed: UInt64(index * 4 + 52))
            let dy = Tensor.random(shape: s.y, seed: UInt64(index * 4 + 53))
            let grads = MatMul.backward(dy, a: a, b: b)
            FiniteDifference.check(grads.da, of: { MatMul.forward($0, b) }, at: a, upstream: dy, tolerance: 1e-3, "da, \(s.a) x \(s.b)")
            FiniteDifference.check(grads.db, of: { MatMul.forward(a, $0) }, at: b, upstream: dy, tolerance: 1e-3, "db, \(s.a) x \(s.b)")
        }
    }
}
