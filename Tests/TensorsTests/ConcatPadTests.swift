import XCTest
import Tensors

final class ConcatPadTests: XCTestCase {
    // MARK: Concat

    private func naiveConcat(_ xs: [Tensor], axis a: Int) -> (shape: [Int], values: [Float]) {
        var shape = xs[0].shape
        shape[a] = xs.reduce(0) { $0 + $1.shape[a] }
        let values: [Float] = allIndices(shape).map { index in
            var k = index[a], piece = 0
            while k >= xs[piece].shape[a] { k -= xs[piece].shape[a]; piece += 1 }
            var j = index
            j[a] = k
            return xs[piece][flat: flatIndex(j, xs[piece].shape)]
        }
        return (shape, values)
    }

    func testConcatMatchesNaiveReferenceOnEveryAxis() {
        let base = [2, 3, 5, 7]
        for axis in [0, 1, 2, 3, -1, -3] {
            let a = (axis + 4) % 4
            let xs: [Tensor] = [3, 1, 4, 0, 2].enumerated().map { k, d in
                var s = base
                s[a] = d
                return Tensor.random(shape: s, seed: UInt64(10 * axis + k + 50))
            }
            let y = Concat.forward(xs, axis: axis)
            let want = naiveConcat(xs, axis: a)
            XCTAssertEqual(y.shape, want.shape)
            XCTAssertEqual(y.scalars, want.values, "axis \(axis)")
        }
    }

    func testConcatBackwardSplitsGradientBackIntoPieces() {
        let shapes = [[2, 3, 4, 5], [2, 1, 4, 5], [2, 6, 4, 5]]
        let xs = shapes.enumerated().map { Tensor.random(shape: $1, seed: UInt64($0)) }
        let y = Concat.forward(xs, axis: 1)
        let pieces = Concat.backward(y, shapes: shapes, axis: 1)
        XCTAssertEqual(pieces.map(\.shape), shapes)
        for (p, x) in zip(pieces, xs) { XCTAssertEqual(p.scalars, x.scalars) }
        // Concat is linear, so its gradient is the split: check one piece by finite differences too.
        let dy = Tensor.random(shape: y.shape, seed: 9)
        let grads = Concat.backward(dy, shapes: shapes, axis: -3)
        FiniteDifference.checkSampled(grads[1], of: { Concat.forward([xs[0], $0, xs[2]], axis: 1) }, at: xs[1], upstream: dy)
    }

    // MARK: Pad

    /// Naive source index along one axis, bouncing off the ends for reflect.
    private func source(_ o: Int, begin: Int, n: Int, mode: PadMode) -> Int? {
        var i = o - begin
        if i >= 0 && i < n { return i }
        switch mode {
        case .constant: return nil
        case .edge: return min(max(i, 0), n - 1)
        case .reflect:
            if n == 1 { return 0 }
            while i < 0 || i >= n { i = i < 0 ? -i : 2 * (n - 1) - i }
            return i
        }
    }

    private func naivePad(_ x: Tensor, pads: [Int], mode: PadMode, value: Float) -> (shape: [Int], values: [Float]) {
        let r = x.rank
        let shape = (0..<r).map { x.shape[$0] + pads[$0] + pads[$0 + r] }
        let values: [Float] = allIndices(shape).map { index in
            var j: [Int] = []
            for d in 0..<r {
                guard let i = source(index[d], begin: pads[d], n: x.shape[d], mode: mode) else { return value }
                j.append(i)
            }
            return x[flat: flatIndex(j, x.shape)]
        }
        return (shape, values)
    }

    func testPadMatchesTheOnnxSpecificationExample() {
        let x = Tensor(shape: [3, 4], scalars: (1...12).map(Float.init))
        let pads = [0, 1, 2, 3]
        XCTAssertEqual(Pad.forward(x, pads: pads, mode: .constant, value: 0).scalars,
                       [0, 1, 2, 3, 4, 0, 0, 0, 0, 5, 6, 7, 8, 0, 0, 0, 0, 9, 10, 11, 12, 0, 0, 0,
                        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(Pad.forward(x, pads: pads, mode: .edge, value: 0).scalars,
                       [1, 1, 2, 3, 4, 4, 4, 4, 5, 5, 6, 7, 8, 8, 8, 8, 9, 9, 10, 11, 12, 12, 12, 12,
                        9, 9, 10, 11, 12, 12, 12, 12, 9, 9, 10, 11, 12, 12, 12, 12])
        XCTAssertEqual(Pad.forward(x, pads: pads, mode: .reflect, value: 0).scalars,
                       [2, 1, 2, 3, 4, 3, 2, 1, 6, 5, 6, 7, 8, 7, 6, 5, 10, 9, 10, 11, 12, 11, 10, 9,
                        6, 5, 6, 7, 8, 7, 6, 5, 2, 1, 2, 3, 4, 3, 2, 1])
    }

    private let padCases: [[Int]] = [
        [0, 1, 2, 0, 2, 1], [1, 0, 3, 2, 1, 0], [0, -1, 2, 0, 1, -2], [-1, 2, -1, 1, -2, 3], [0, 0, 0, 0, 0, 0],
        [0, 5, 7, 0, 6, 9],
    ]

    func testPadMatchesNaiveReferenceInEveryModeIncludingCrops() {
        let x = Tensor.random(shape: [3, 4, 5], seed: 5)
        for mode in [PadMode.constant, .reflect, .edge] {
            for pads in padCases {
                let y = Pad.forward(x, pads: pads, mode: mode, value: 0.75)
                let want = naivePad(x, pads: pads, mode: mode, value: 0.75)
                XCTAssertEqual(y.shape, want.shape, "\(mode) \(pads)")
                XCTAssertEqual(y.scalars, want.values, "\(mode) \(pads)")
            }
        }
    }

    func testPadBackwardMatchesFiniteDifferencesInEveryMode() {
        let x = Tensor.random(shape: [2, 3, 4], seed: 6)
        for mode in [PadMode.constant, .reflect, .edge] {
            for (k, pads) in padCases.enumerated() {
                let outShape = (0..<3).map { x.shape[$0] + pads[$0] + pads[$0 + 3] }
                let dy = Tensor.random(shape: outShape, seed: UInt64(20 + k))
                let dx = Pad.backward(dy, inputShape: x.shape, pads: pads, mode: mode)
                FiniteDifference.checkSampled(dx, of: { Pad.forward($0, pads: pads, mode: mode, value: 0.5) },
                                              at: x, upstream: dy, "\(mode) \(pads)")
            }
        }
    }

    func testPadOfLargeImageTakesParallelPathWithSameResult() {
        let x = Tensor.random(shape: [1, 3, 100, 120], seed: 8)
        let pads = [0, 0, 7, 5, 0, 0, 6, 9]
        let y = Pad.forward(x, pads: pads, mode: .reflect, value: 0)
        let want = naivePad(x, pads: pads, mode: .reflect, value: 0)
        XCTAssertEqual(y.shape, want.shape)
        XCTAssertEqual(y.scalars, want.values)
    }
}
