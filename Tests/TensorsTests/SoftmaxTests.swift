import XCTest
import Tensors

final class SoftmaxTests: XCTestCase {
    /// Naive softmax (or log-softmax) along axis a (non-negative), in Double.
    private func naive(_ x: Tensor, axis a: Int, log: Bool = false) -> [Double] {
        allIndices(x.shape).map { index in
            var values: [Double] = []
            for k in 0..<x.shape[a] {
                var j = index
                j[a] = k
                values.append(Double(x[flat: flatIndex(j, x.shape)]))
            }
            let m = values.max()!
            let sum = values.reduce(0) { $0 + exp($1 - m) }
            let v = Double(x[flat: flatIndex(index, x.shape)])
            return log ? v - m - Foundation.log(sum) : exp(v - m) / sum
        }
    }

    func testForwardAndLogForwardMatchNaiveReferenceOnEveryAxis() {
        let x = Tensor.random(shape: [3, 4, 5], in: -5...5, seed: 1)
        for axis in [-3, -2, -1, 0, 1, 2] {
            let a = (axis + 3) % 3
            let y = Softmax.forward(x, axis: axis), l = Softmax.logForward(x, axis: axis)
            let want = naive(x, axis: a), wantLog = naive(x, axis: a, log: true)
            for i in 0..<x.count {
                XCTAssertEqual(Double(y[flat: i]), want[i], accuracy: 1e-6, "axis \(axis)")
                XCTAssertEqual(Double(l[flat: i]), wantLog[i], accuracy: 1e-5, "log axis \(axis)")
            }
        }
    }

    func testRowsSumToOne() {
        let x = Tensor.random(shape: [6, 1000], in: -10...10, seed: 2)
        let y = Softmax.forward(x, axis: 1)
        for r in 0..<6 {
            var s = 0.0
            for k in 0..<1000 { s += Double(y[r, k]) }
            XCTAssertEqual(s, 1, accuracy: 1e-5)
        }
    }

    func testLargeInputsDoNotOverflow() {
        let x = Tensor(shape: [2, 3], scalars: [1000, 1000, 1000, -1000, 0, 1000])
        let y = Softmax.forward(x, axis: -1)
        XCTAssertTrue(y.scalars.allSatisfy { $0.isFinite })
        XCTAssertEqual(y[0, 0], 1.0 / 3, accuracy: 1e-6)
        XCTAssertEqual(y[1, 2], 1, accuracy: 1e-6)
        let l = Softmax.logForward(x, axis: -1)
        XCTAssertTrue(l.scalars.allSatisfy { $0.isFinite })
        XCTAssertEqual(l[0, 1], -Float(log(3.0)), accuracy: 1e-5)
        XCTAssertEqual(l[1, 0], -2000, accuracy: 1e-3)
    }

    func testBackwardMatchesFiniteDifferencesOnEveryAxis() {
        let x = Tensor.random(shape: [3, 4, 5], in: -2...2, seed: 3)
        let dy = Tensor.random(shape: x.shape, seed: 4)
        for axis in [0, 1, -1] {
            let dx = Softmax.backward(dy, y: Softmax.forward(x, axis: axis), axis: axis)
            FiniteDifference.checkSampled(dx, of: { Softmax.forward($0, axis: axis) }, at: x, upstream: dy, eps: 1e-2, "axis \(axis)")
        }
    }
}
