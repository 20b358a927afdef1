import Parallel
import Tensors
import XCTest

/// Our packed GEMM (`PackedGemm`, CKernels/GemmBodies.h) at every instruction-set level this CPU supports, against
/// a double-precision reference, for shapes below, at and beyond its register tile (6 × 8 or 16), its packed blocks
/// (96 rows, 256 of the inner dimension, 512 columns) and the blocks the threads share, with plain and transposed
/// operands, with and without bias, overwriting and accumulating, and with every activation.
final class PackedGemmTests: XCTestCase {
    /// One operand, stored row-major or as the transpose of a row-major matrix, rows `pad` floats longer than needed.
    struct Stored {
        var values: [Float]
        var rowStride: Int, columnStride: Int
        func at(_ i: Int, _ p: Int) -> Float { values[i * rowStride + p * columnStride] }
    }

    static func stored(rows: Int, columns: Int, transposed: Bool, seed: UInt64) -> Stored {
        let pad = 3
        let ld = (transposed ? rows : columns) + pad
        let count = max(1, (transposed ? columns : rows) * ld)
        let values = Tensor.random(shape: [count], seed: seed).scalars
        return transposed ? Stored(values: values, rowStride: 1, columnStride: ld)
            : Stored(values: values, rowStride: ld, columnStride: 1)
    }

    static let activations: [Activation?] = [nil, .relu, .clip(min: -0.25, max: 0.5), .leakyRelu(alpha: 0.1), .sigmoid]

    /// Runs one product and checks every element, and that C's padding columns are untouched.
    func check(m: Int, n: Int, k: Int, transA: Bool, transB: Bool, bias useBias: Bool, accumulate: Bool,
               epilogue: Activation?, seed: UInt64, _ message: String) {
        let a = Self.stored(rows: m, columns: k, transposed: transA, seed: seed)
        let b = Self.stored(rows: k, columns: n, transposed: transB, seed: seed + 1)
        let bias = Tensor.random(shape: [max(1, m)], seed: seed + 2).scalars
        let ldc = n + 5
        let initial = Tensor.random(shape: [max(1, m * ldc)], seed: seed + 3).scalars
        var c = initial
        a.values.withUnsafeBufferPointer { ap in
            b.values.withUnsafeBufferPointer { bp in
                bias.withUnsafeBufferPointer { biasPointer in
                    c.withUnsafeMutableBufferPointer { cp in
                        PackedGemm.multiply(m: m, n: n, k: k,
                                            a: .init(pointer: ap.baseAddress!, rowStride: a.rowStride, columnStride: a.columnStride),
                                            b: .init(pointer: bp.baseAddress!, rowStride: b.rowStride, columnStride: b.columnStride),
                                            c: cp.baseAddress!, ldc: ldc, bias: useBias ? biasPointer.baseAddress! : nil,
                                            accumulate: accumulate, epilogue: epilogue)
                    }
                }
            }
        }
        var failures = 0
        for i in 0..<m {
            for j in 0..<ldc {
                let got = c[i * ldc + j]
                if j >= n {
                    if got.bitPattern != initial[i * ldc + j].bitPattern, failures < 3 {
                        XCTFail("\(message): padding (\(i), \(j)) written"); failures += 1
                    }
                    continue
                }
                var exact = accumulate ? Double(initial[i * ldc + j]) : 0, magnitude = abs(exact)
                if useBias { exact += Double(bias[i]); magnitude += abs(Double(bias[i])) }
                for p in 0..<k {
                    let t = Double(a.at(i, p)) * Double(b.at(p, j))
                    exact += t
                    magnitude += abs(t)
                }
                // k products and two more terms summed in float32, one or two roundings per step, any order: within
                // γ(k+3)·Σ|terms| of the exact sum (SIMDKernelTests.gamma). ReLU, Clip and LeakyReLU (α ≤ 1) move
                // values by at most that much; the logistic function by a quarter of it, plus its own rounding.
                var bound = SIMDKernelTests.gamma(k + 3) * magnitude
                var expected = exact
                switch epilogue {
                case .relu: expected = exact < 0 ? 0 : exact
                case .clip(let lo, let hi): expected = min(max(exact, Double(lo)), Double(hi))
                case .leakyRelu(let alpha): expected = exact > 0 ? exact : Double(alpha) * exact
                case .sigmoid: expected = 1 / (1 + Foundation.exp(-exact)); bound = bound / 4 + 4 * 0x1p-24
                default: break
                }
                if !(abs(Double(got) - expected) <= bound), failures < 3 {
                    XCTFail("\(message): C[\(i), \(j)] = \(got), expected \(expected) ± \(bound)")
                    failures += 1
                }
            }
        }
    }

    func testProductsMatchTheDoubleReferenceAtEveryLevel() {
        let rows = [1, 5, 6, 7, 97, 130], columns = [1, 15, 16, 17, 300, 530], depths = [0, 1, 16, 27, 257]
        forEachSIMDLevel { level in
            var index = 0
            for m in rows {
                for n in columns {
                    for k in depths {
                        // Skip the largest combinations but for a few: the reference is a triple loop.
                        if m * n * k > 4_000_000 && index % 5 != 0 { index += 1; continue }
                        let transA = index % 2 == 1, transB = index / 2 % 2 == 1
                        let bias = index % 3 != 0, accumulate = index % 4 == 3
                        let epilogue = Self.activations[index % Self.activations.count]
                        check(m: m, n: n, k: k, transA: transA, transB: transB, bias: bias, accumulate: accumulate,
                              epilogue: epilogue, seed: UInt64(1000 + index * 4),
                              "\(level) m \(m) n \(n) k \(k) transA \(transA) transB \(transB) bias \(bias) accumulate \(accumulate) \(String(describing: epilogue))")
                        index += 1
                    }
                }
            }
        }
    }

    func testEveryOptionOnOneShapeBeyondEveryBlock() {
        forEachSIMDLevel { level in
            var seed: UInt64 = 5000
            for transA in [false, true] {
                for transB in [false, true] {
                    for accumulate in [false, true] {
                        for (e, epilogue) in Self.activations.enumerated() {
                            seed += 4
                            check(m: 103, n: 521, k: 263, transA: transA, transB: transB, bias: e % 2 == 0,
                                  accumulate: accumulate, epilogue: epilogue, seed: seed,
                                  "\(level) transA \(transA) transB \(transB) accumulate \(accumulate) \(String(describing: epilogue))")
                        }
                    }
                }
            }
        }
    }

    /// Each element sums in a fixed order whatever block computes it: the bytes do not depend on how many threads
    /// share the product, nor on how that count cuts the rows into blocks (n <= 384: one block of columns).
    func testResultsDoNotDependOnTheThreadCount() {
        let threads = Threading.threadCount
        defer { Threading.configure(threads: threads) }
        for (m, n, k) in [(70, 3001, 45), (70, 196, 45), (1000, 49, 40)] {
            let a = Tensor.random(shape: [m, k], seed: 1).scalars, b = Tensor.random(shape: [k, n], seed: 2).scalars
            let bias = Tensor.random(shape: [m], seed: 3).scalars
            func run() -> [Float] {
                var c = [Float](repeating: 0, count: m * n)
                a.withUnsafeBufferPointer { ap in
                    b.withUnsafeBufferPointer { bp in
                        bias.withUnsafeBufferPointer { biasPointer in
                            c.withUnsafeMutableBufferPointer { cp in
                                PackedGemm.multiply(m: m, n: n, k: k, a: .rows(ap.baseAddress!, ld: k), b: .rows(bp.baseAddress!, ld: n),
                                                    c: cp.baseAddress!, ldc: n, bias: biasPointer.baseAddress!, epilogue: .relu)
                            }
                        }
                    }
                }
                return c
            }
            forEachSIMDLevel { level in
                Threading.configure(threads: 1)
                let one = run()
                for count in [2, 3, 5] {
                    Threading.configure(threads: count)
                    XCTAssertEqual(run().map(\.bitPattern), one.map(\.bitPattern), "\(m)x\(n)x\(k): \(count) threads vs 1, \(level)")
                }
            }
        }
    }

    /// Rows are cut so that the threads' shares of 6-row tiles are as even as whole blocks allow, checked against
    /// every possible cut: the slowest share is the smallest any multiple of 6 gives.
    func testRowBlocksBalanceTheThreads() {
        func slowest(m: Int, rows: Int, threads: Int) -> Int {
            let blocks = (m + rows - 1) / rows, workers = min(threads, blocks)
            return (0..<workers).map { w in
                ((blocks * w / workers)..<(blocks * (w + 1) / workers)).reduce(0) { sum, block in
                    sum + (min(m, block * rows + rows) - block * rows + 5) / 6
                }
            }.max()!
        }
        XCTAssertEqual(PackedGemm.rowBlock(m: 64, columnBlocks: 1, threads: 2), 36)  // 6 + 5 tiles, not 24-row blocks' 4 + 7
        XCTAssertEqual(PackedGemm.rowBlock(m: 64, columnBlocks: 1, threads: 1), 64)
        for threads in [2, 3, 4, 8] {
            for m in [1, 5, 6, 7, 16, 24, 32, 64, 96, 100, 144, 160, 320, 1000, 1280] {
                let rows = PackedGemm.rowBlock(m: m, columnBlocks: 1, threads: threads)
                XCTAssertTrue(rows == m || (rows % 6 == 0 && rows < m), "m \(m): \(rows) rows")
                let best = stride(from: 6, through: max(6, m), by: 6).map { slowest(m: m, rows: $0, threads: threads) }.min()!
                XCTAssertLessThanOrEqual(slowest(m: m, rows: rows, threads: threads), best, "m \(m), \(threads) threads: \(rows) rows")
            }
        }
    }
}
