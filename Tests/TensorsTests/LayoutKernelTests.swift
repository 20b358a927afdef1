import Tensors
import XCTest

/// Transpose, Slice, Gather (all `StridedCopy` or block copies) and ReduceMean against index-by-index references,
/// and their backward passes against central finite differences. The copies are exact, so forward results must be
/// equal bit for bit; the gradients of a linear map are exact up to the rounding of the finite difference itself.
final class LayoutKernelTests: XCTestCase {
    /// The row-major multi-index of flat index `flat` in `shape`.
    static func multiIndex(_ flat: Int, _ shape: [Int]) -> [Int] {
        var rest = flat
        var index = [Int](repeating: 0, count: shape.count)
        for k in shape.indices.reversed() { index[k] = rest % shape[k]; rest /= shape[k] }
        return index
    }

    static func flat(_ index: [Int], _ shape: [Int]) -> Int { zip(index, shape).reduce(0) { $0 * $1.1 + $1.0 } }

    static func naiveTranspose(_ x: Tensor, _ perm: [Int]) -> Tensor {
        let outShape = perm.map { x.shape[$0] }
        var y = Tensor(shape: outShape)
        for o in 0..<y.count {
            let out = multiIndex(o, outShape)
            var input = [Int](repeating: 0, count: x.rank)
            for (k, p) in perm.enumerated() { input[p] = out[k] }
            y[flat: o] = x[flat: flat(input, x.shape)]
        }
        return y
    }

    static func naiveSlice(_ x: Tensor, starts: [Int], steps: [Int], counts: [Int]) -> Tensor {
        var y = Tensor(shape: counts)
        for o in 0..<y.count {
            let out = multiIndex(o, counts)
            y[flat: o] = x[flat: flat(out.indices.map { starts[$0] + out[$0] * steps[$0] }, x.shape)]
        }
        return y
    }

    func testTransposeMatchesTheIndexDefinitionForEveryPathOfTheCopy() {
        let cases: [([Int], [Int])] = [
            ([1, 2, 58, 7, 9], [0, 2, 1, 3, 4]),    // channel shuffle: whole rows per copy
            ([2, 5, 6, 7], [0, 2, 3, 1]),           // NCHW -> NHWC: 16x16 tiles
            ([2, 6, 7, 5], [0, 3, 1, 2]),           // NHWC -> NCHW
            ([3, 37, 41], [0, 2, 1]),               // tiles with ragged edges
            ([4, 3, 2, 5], [3, 1, 0, 2]),           // neither side contiguous on the innermost axis together
            ([2, 3, 4], [2, 1, 0]),
            ([5], [0]), ([], []), ([2, 0, 3], [1, 2, 0]),
            ([1, 1, 6, 1], [3, 2, 1, 0]),
        ]
        for (seed, (shape, perm)) in cases.enumerated() {
            let x = Tensor.random(shape: shape, seed: UInt64(seed + 1))
            let y = Transpose.forward(x, perm: perm)
            let reference = Self.naiveTranspose(x, perm)
            XCTAssertEqual(y.shape, reference.shape, "\(shape) \(perm)")
            XCTAssertEqual(y.scalars, reference.scalars, "\(shape) \(perm)")
            XCTAssertEqual(Transpose.backward(y, perm: perm).scalars, x.scalars, "inverse of \(perm)")
        }
    }

    func testTransposeOfRandomPermutationsMatchesTheReference() {
        var rng = SplitMix64(seed: 99)
        for trial in 0..<40 {
            let rank = Int.random(in: 1...6, using: &rng)
            let shape = (0..<rank).map { _ in Int.random(in: 1...5, using: &rng) }
            let perm = Array(0..<rank).shuffled(using: &rng)
            let x = Tensor.random(shape: shape, seed: UInt64(trial))
            XCTAssertEqual(Transpose.forward(x, perm: perm).scalars, Self.naiveTranspose(x, perm).scalars, "\(shape) \(perm)")
        }
    }

    func testTransposeGradientIsTheInversePermutationByFiniteDifferences() {
        let x = Tensor.random(shape: [1, 2, 3, 2, 2], seed: 3)
        let perm = [0, 2, 1, 4, 3]
        let upstream = Tensor.random(shape: perm.map { x.shape[$0] }, seed: 4)
        FiniteDifference.check(Transpose.backward(upstream, perm: perm), of: { Transpose.forward($0, perm: perm) },
                               at: x, upstream: upstream, tolerance: 1e-3)
    }

    func testSliceMatchesTheIndexDefinitionWithBlocksStepsAndNegativeSteps() {
        let x = Tensor.random(shape: [2, 6, 5, 7], seed: 8)
        let cases: [(starts: [Int], steps: [Int], counts: [Int])] = [
            ([0, 3, 0, 0], [1, 1, 1, 1], [2, 3, 5, 7]),    // a channel chunk: one block per image
            ([1, 0, 0, 0], [1, 1, 1, 1], [1, 6, 5, 7]),
            ([0, 1, 1, 2], [1, 2, 2, 3], [2, 3, 2, 2]),
            ([1, 5, 4, 6], [-1, -2, -1, -3], [2, 3, 5, 3]), // backwards on every axis
            ([0, 0, 0, 0], [1, 1, 1, 1], [2, 6, 5, 0]),     // empty
        ]
        for c in cases {
            let y = Slice.forward(x, starts: c.starts, steps: c.steps, counts: c.counts)
            XCTAssertEqual(y.shape, c.counts)
            XCTAssertEqual(y.scalars, Self.naiveSlice(x, starts: c.starts, steps: c.steps, counts: c.counts).scalars, "\(c)")
        }
    }

    /// A channel chunk of one image is a view of the input (no copy) that behaves as a value: writing to the view or
    /// to the input copies first, so neither sees the other's change; a small piece is copied instead.
    func testContiguousSlicesAreViewsWithValueSemantics() {
        var x = Tensor.random(shape: [1, 8, 3, 2], seed: 5)
        let original = x.scalars
        var half = Slice.forward(x, starts: [0, 4, 0, 0], steps: [1, 1, 1, 1], counts: [1, 4, 3, 2])
        XCTAssertTrue(half.isView)
        XCTAssertEqual(half.scalars, Array(original[24...]))
        let quarterOfHalf = Slice.forward(half, starts: [0, 2, 0, 0], steps: [1, 1, 1, 1], counts: [1, 2, 3, 2])
        XCTAssertTrue(quarterOfHalf.isView)
        XCTAssertEqual(quarterOfHalf.scalars, Array(original[36...]))
        half[flat: 0] = 100
        XCTAssertFalse(half.isView)
        XCTAssertEqual(x.scalars, original)
        XCTAssertEqual(quarterOfHalf.scalars, Array(original[36...]))
        x[flat: 47] = -100
        XCTAssertEqual(quarterOfHalf.scalars, Array(original[36...]))
        XCTAssertFalse(Slice.forward(x, starts: [0, 7, 0, 0], steps: [1, 1, 1, 1], counts: [1, 1, 3, 2]).isView, "an eighth is copied")
        XCTAssertFalse(Slice.forward(Tensor.random(shape: [2, 8, 3], seed: 1), starts: [0, 4, 0], steps: [1, 1, 1], counts: [2, 4, 3]).isView,
                       "two images: two runs of memory")
        // Split (Concat's backward) hands out views the same way, each piece a value of its own.
        var pieces = Concat.backward(x, shapes: [[1, 3, 3, 2], [1, 5, 3, 2]], axis: 1)
        XCTAssertTrue(pieces[0].isView && pieces[1].isView)
        pieces[1].add(pieces[1])
        XCTAssertEqual(pieces[1][flat: 0], 2 * x[flat: 18])
        XCTAssertEqual(x[flat: 18], original[18])
    }

    /// Concatenating g tensors and shuffling the channels (view [N, g, c, H, W], swap axes 1 and 2) in one pass
    /// gives the two operations' result exactly.
    func testChannelShuffleInterleaveIsConcatThenTranspose() {
        for (g, shape) in [(2, [1, 5, 3, 4]), (3, [2, 4, 7, 1]), (4, [1, 1, 1, 1])] {
            let xs = (0..<g).map { Tensor.random(shape: shape, seed: UInt64(60 + $0)) }
            let joined = Concat.forward(xs, axis: 1)
            let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
            let reference = Self.naiveTranspose(joined.reshaped([n, g, c, h, w]), [0, 2, 1, 3, 4]).reshaped([n, g * c, h, w])
            let y = ChannelShuffle.interleave(xs)
            XCTAssertEqual(y.shape, reference.shape)
            XCTAssertEqual(y.scalars, reference.scalars, "g \(g) \(shape)")
        }
    }

    func testSliceGradientScattersIntoZerosByFiniteDifferences() {
        let x = Tensor.random(shape: [1, 4, 3, 5], seed: 11)
        for (starts, steps, counts) in [([0, 2, 0, 0], [1, 1, 1, 1], [1, 2, 3, 5]), ([0, 3, 2, 4], [1, -2, -1, -2], [1, 2, 3, 3])] {
            let upstream = Tensor.random(shape: counts, seed: 12)
            let dx = Slice.backward(upstream, inputShape: x.shape, starts: starts, steps: steps)
            FiniteDifference.check(dx, of: { Slice.forward($0, starts: starts, steps: steps, counts: counts) },
                                   at: x, upstream: upstream, tolerance: 1e-3, "\(starts) \(steps)")
        }
    }

    func testStridedCopyRunsOnIntegerArraysLikeOnFloats() {
        let shape = [2, 3, 4]
        let values = (0..<24).map { Int64($0) }
        let copied = Transpose.plan(inputShape: shape, perm: [2, 0, 1]).run(values, dstCount: 24, fill: -1)
        let reference = Self.naiveTranspose(Tensor(shape: shape, scalars: values.map { Float($0) }), [2, 0, 1])
        XCTAssertEqual(copied.map { Float($0) }, reference.scalars)
    }

    func testGatherMatchesTheDefinitionAndAddsGradientsOfRepeatedIndices() {
        let x = Tensor.random(shape: [2, 5, 3], seed: 21)
        let indices = [4, 0, 4, 2]
        let y = Gather.forward(x, axis: 1, indices: indices, indicesShape: [2, 2])
        XCTAssertEqual(y.shape, [2, 2, 2, 3])
        for a in 0..<2 { for j in 0..<4 { for b in 0..<3 {
            XCTAssertEqual(y[flat: (a * 4 + j) * 3 + b], x[a, indices[j], b])
        } } }
        let upstream = Tensor.random(shape: y.shape, seed: 22)
        FiniteDifference.check(Gather.backward(upstream, inputShape: x.shape, axis: 1, indices: indices),
                               of: { Gather.forward($0, axis: 1, indices: indices, indicesShape: [2, 2]) },
                               at: x, upstream: upstream, tolerance: 1e-3)
    }

    /// Float32 sums of n terms are within n·ulp of the Double mean; the shapes here average at most 42 terms.
    func testReduceMeanMatchesADoubleReferenceOverAnySetOfAxes() {
        let x = Tensor.random(shape: [2, 3, 6, 7], seed: 31)
        for axes in [[2, 3], [1], [0, 2], [1, 3], [0, 1, 2, 3], [3]] {
            let y = ReduceMean.forward(x, axes: axes)
            var outShape = x.shape
            for a in axes { outShape[a] = 1 }
            XCTAssertEqual(y.shape, outShape, "\(axes)")
            var sums = [Double](repeating: 0, count: outShape.reduce(1, *))
            for i in 0..<x.count {
                var index = Self.multiIndex(i, x.shape)
                for a in axes { index[a] = 0 }
                sums[Self.flat(index, outShape)] += Double(x[flat: i])
            }
            let n = Double(axes.map { x.shape[$0] }.reduce(1, *))
            for (k, s) in sums.enumerated() { XCTAssertEqual(Double(y[flat: k]), s / n, accuracy: 1e-6, "\(axes)") }
            let upstream = Tensor.random(shape: outShape, seed: 32)
            FiniteDifference.check(ReduceMean.backward(upstream, inputShape: x.shape, axes: axes),
                                   of: { ReduceMean.forward($0, axes: axes) }, at: x, upstream: upstream, tolerance: 1e-3, "\(axes)")
        }
    }
}
