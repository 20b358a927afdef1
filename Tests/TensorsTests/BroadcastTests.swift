import XCTest
import Tensors

final class BroadcastTests: XCTestCase {
    private let pairs: [([Int], [Int])] = [
        ([3, 1, 5], [4, 1]), ([2, 3, 4, 5], [1, 3, 1, 1]), ([2, 3, 4, 5], [3, 1, 1]), ([2, 3], [2, 3]),
        ([5, 1], [1]), ([1], [2, 3]), ([], [2, 3]), ([4, 1, 3], [1, 5, 1]), ([2, 3, 4, 5], [2, 3, 1, 1]),
        ([1, 3, 1, 5], [2, 1, 4, 1]), ([7], [3, 1]),
    ]
    private let ops: [BinaryOperator] = [.add, .sub, .mul, .div]

    private func apply(_ op: BinaryOperator, _ a: Double, _ b: Double) -> Double {
        switch op { case .add: return a + b; case .sub: return a - b; case .mul: return a * b; case .div: return a / b }
    }

    /// The element of `t` read at output index `index` under broadcasting.
    private func element(_ t: Tensor, at index: [Int]) -> Double {
        let offset = index.count - t.rank
        let own = (0..<t.rank).map { t.shape[$0] == 1 ? 0 : index[$0 + offset] }
        return Double(t[flat: flatIndex(own, t.shape)])
    }

    private func naiveBinary(_ a: Tensor, _ b: Tensor, _ op: BinaryOperator, shape: [Int]) -> [Double] {
        allIndices(shape).map { apply(op, element(a, at: $0), element(b, at: $0)) }
    }

    private func naiveReduce(_ dy: Tensor, to shape: [Int]) -> [Double] {
        var out = [Double](repeating: 0, count: shape.reduce(1, *))
        let offset = dy.rank - shape.count
        for index in allIndices(dy.shape) {
            let own = (0..<shape.count).map { shape[$0] == 1 ? 0 : index[$0 + offset] }
            out[flatIndex(own, shape)] += Double(dy[flat: flatIndex(index, dy.shape)])
        }
        return out
    }

    private func operands(_ sa: [Int], _ sb: [Int], seed: UInt64) -> (Tensor, Tensor) {
        var b = Tensor.random(shape: sb, in: 0.5...2, seed: seed + 1)
        // Keep divisors away from zero but with both signs.
        for i in 0..<b.count where i % 2 == 1 { b[flat: i] = -b[flat: i] }
        return (Tensor.random(shape: sa, seed: seed), b)
    }

    func testShapeFollowsNumpyRules() {
        XCTAssertEqual(Broadcast.shape([3, 1, 5], [4, 1]), [3, 4, 5])
        XCTAssertEqual(Broadcast.shape([2, 3, 4, 5], [1, 3, 1, 1]), [2, 3, 4, 5])
        XCTAssertEqual(Broadcast.shape([], [2, 3]), [2, 3])
        XCTAssertEqual(Broadcast.shape([1], []), [1])
        XCTAssertEqual(Broadcast.shape([0, 1], [1, 4]), [0, 4])
        XCTAssertNil(Broadcast.shape([2, 3], [3, 2]))
        XCTAssertNil(Broadcast.shape([4], [3]))
    }

    func testBinaryMatchesNaiveReferenceOnMixedRankShapes() {
        for (k, (sa, sb)) in pairs.enumerated() {
            let (a, b) = operands(sa, sb, seed: UInt64(k * 10))
            let shape = Broadcast.shape(sa, sb)!
            for op in ops {
                for (x, y, name) in [(a, b, "a op b"), (b, a, "b op a")] {
                    let z = Broadcast.binary(x, y, op)
                    XCTAssertEqual(z.shape, shape, "\(sa) \(sb) \(op)")
                    let want = naiveBinary(x, y, op, shape: shape)
                    for i in 0..<want.count where op != .div || name == "a op b" {
                        XCTAssertEqual(Double(z[flat: i]), want[i], accuracy: 1e-5 * max(1, abs(want[i])), "\(sa) \(sb) \(op) \(name)")
                    }
                }
            }
        }
    }

    func testReduceSumsOverBroadcastAxesOnly() {
        for (k, (sa, sb)) in pairs.enumerated() {
            let shape = Broadcast.shape(sa, sb)!
            let dy = Tensor.random(shape: shape, seed: UInt64(500 + k))
            for target in [sa, sb] {
                let r = Broadcast.reduce(dy, to: target)
                XCTAssertEqual(r.shape, target)
                let want = naiveReduce(dy, to: target)
                for i in 0..<want.count { XCTAssertEqual(Double(r[flat: i]), want[i], accuracy: 1e-5, "\(shape) -> \(target)") }
            }
        }
    }

    func testBinaryBackwardMatchesFiniteDifferences() {
        for (k, (sa, sb)) in pairs.enumerated() {
            let (a, b) = operands(sa, sb, seed: UInt64(900 + k * 10))
            let dy = Tensor.random(shape: Broadcast.shape(sa, sb)!, seed: UInt64(77 + k))
            for op in ops {
                let (da, db) = Broadcast.binaryBackward(dy, a: a, b: b, op)
                FiniteDifference.checkSampled(da, of: { Broadcast.binary($0, b, op) }, at: a, upstream: dy, eps: 1e-2, "da \(sa) \(sb) \(op)")
                FiniteDifference.checkSampled(db, of: { Broadcast.binary(a, $0, op) }, at: b, upstream: dy, eps: 1e-3, "db \(sa) \(sb) \(op)")
            }
        }
    }

    func testLargePerChannelAndScalarBroadcastMatchReference() {
        let x = Tensor.random(shape: [2, 16, 48, 48], seed: 4)
        let perChannel = Tensor.random(shape: [1, 16, 1, 1], seed: 5)
        let y = Broadcast.binary(x, perChannel, .mul)
        let plane = 48 * 48
        for i in stride(from: 0, to: x.count, by: 61) {
            XCTAssertEqual(y[flat: i], x[flat: i] * perChannel[flat: (i / plane) % 16])
        }
        let s = Broadcast.binary(Tensor(2), x, .sub)
        for i in stride(from: 0, to: x.count, by: 61) { XCTAssertEqual(s[flat: i], 2 - x[flat: i]) }
        let bias = Broadcast.reduce(x, to: [1, 16, 1, 1])
        for c in 0..<16 {
            var want = 0.0
            for n in 0..<2 { for p in 0..<plane { want += Double(x[flat: (n * 16 + c) * plane + p]) } }
            XCTAssertEqual(Double(bias[flat: c]), want, accuracy: 1e-3)
        }
    }

    /// Mul's backward sums dy·x over each run without the product tensor when the other operand is broadcast per run
    /// (a squeeze-excitation gate [N,C,1,1] on [N,C,H,W]): the same bits as reducing the product tensor.
    func testMulBackwardWithAPerChannelGateEqualsReducingTheProductTensor() {
        for (shape, gate) in [([2, 16, 19, 23], [1, 16, 1, 1]), ([1, 40, 14, 14], [1, 40, 1, 1]), ([3, 5, 7], [3, 1, 1]),
                              ([2, 6, 5, 5], [2, 6, 1, 1])] {
            let x = Tensor.random(shape: shape, seed: 31), g = Tensor.random(shape: gate, seed: 32)
            let dy = Tensor.random(shape: shape, seed: 33)
            for (a, b) in [(x, g), (g, x)] {
                let (da, db) = Broadcast.binaryBackward(dy, a: a, b: b, .mul)
                XCTAssertEqual(da.scalars.map(\.bitPattern), Broadcast.reduce(Broadcast.binary(dy, b, .mul), to: a.shape).scalars.map(\.bitPattern))
                XCTAssertEqual(db.scalars.map(\.bitPattern), Broadcast.reduce(Broadcast.binary(dy, a, .mul), to: b.shape).scalars.map(\.bitPattern))
            }
        }
    }
}
