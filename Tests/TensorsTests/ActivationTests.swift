import XCTest
import Tensors

final class ActivationTests: XCTestCase {
    private let all: [Activation] = [
        .relu, .leakyRelu(alpha: 0.01), .leakyRelu(alpha: 0.3), .clip(min: -0.5, max: 1.25), .clip(min: 0, max: 6),
        .sigmoid, .hardSigmoid(alpha: 0.2, beta: 0.5), .hardSigmoid(alpha: 0.5, beta: 0.25), .hardSwish, .tanh,
        .silu,
    ]

    private func naive(_ a: Activation, _ x: Double) -> Double {
        switch a {
        case .relu: return x > 0 ? x : 0
        case .leakyRelu(let alpha): return x >= 0 ? x : Double(alpha) * x
        case .clip(let lo, let hi): return min(max(x, Double(lo)), Double(hi))
        case .sigmoid: return 1 / (1 + exp(-x))
        case .hardSigmoid(let alpha, let beta): return max(0, min(1, Double(alpha) * x + Double(beta)))
        case .hardSwish: return x * max(0, min(1, x / 6 + 0.5))
        case .tanh: return Foundation.tanh(x)
        case .silu: return x / (1 + exp(-x))
        }
    }

    /// Points where the activation is not differentiable.
    private func kinks(_ a: Activation) -> [Float] {
        switch a {
        case .relu, .leakyRelu: return [0]
        case .clip(let lo, let hi): return [lo, hi]
        case .hardSigmoid(let alpha, let beta): return [-beta / alpha, (1 - beta) / alpha]
        case .hardSwish: return [-3, 3]
        case .sigmoid, .tanh, .silu: return []
        }
    }

    func testForwardMatchesNaiveReferenceForEveryActivation() {
        let x = Tensor.random(shape: [2, 3, 5, 7], in: -8...8, seed: 1)
        for a in all {
            let y = a.forward(x)
            XCTAssertEqual(y.shape, x.shape)
            for i in 0..<x.count {
                let want = naive(a, Double(x[flat: i]))
                XCTAssertEqual(Double(y[flat: i]), want, accuracy: 1e-6 * max(1, abs(want)), "\(a) at x=\(x[flat: i])")
            }
        }
    }

    func testBackwardMatchesFiniteDifferencesAwayFromKinks() {
        for (k, a) in all.enumerated() {
            var x = Tensor.random(shape: [3, 5, 7], in: -7...7, seed: UInt64(10 + k))
            // Move samples off the kinks so that the central difference never straddles one.
            for i in 0..<x.count {
                for kink in kinks(a) where abs(x[flat: i] - kink) < 0.05 { x[flat: i] = kink + 0.1 }
            }
            let dy = Tensor.random(shape: x.shape, seed: UInt64(100 + k))
            let dx = a.backward(dy, x: x, y: a.forward(x))
            FiniteDifference.checkSampled(dx, of: { a.forward($0) }, at: x, upstream: dy, eps: 1e-2, "\(a)")
        }
    }

    func testSubgradientsAtKinksFollowPyTorch() {
        let dy = Tensor(shape: [2], repeating: 1)
        func grad(_ a: Activation, _ values: [Float]) -> [Float] {
            let x = Tensor(shape: [2], scalars: values)
            return a.backward(dy, x: x, y: a.forward(x)).scalars
        }
        XCTAssertEqual(grad(.relu, [0, 1]), [0, 1])
        XCTAssertEqual(grad(.leakyRelu(alpha: 0.1), [0, -1]), [0.1, 0.1])
        XCTAssertEqual(grad(.clip(min: -1, max: 2), [-1, 2]), [1, 1], "torch.clamp passes the gradient at its bounds")
        XCTAssertEqual(grad(.clip(min: -1, max: 2), [-1.5, 2.5]), [0, 0])
        XCTAssertEqual(grad(.hardSwish, [-3, 3]), [-0.5, 1.5], "PyTorch applies x/3 + 0.5 on the closed [-3, 3]")
        XCTAssertEqual(grad(.hardSwish, [-3.5, 3.5]), [0, 1])
        XCTAssertEqual(grad(.hardSigmoid(alpha: 0.2, beta: 0.5), [-2.5, 2.5]), [0, 0])
    }

    func testSigmoidAndTanhStayFiniteForLargeInputs() {
        let x = Tensor(shape: [4], scalars: [-1000, 1000, -90, 90])
        let s = Activation.sigmoid.forward(x).scalars, t = Activation.tanh.forward(x).scalars
        for (got, want) in zip(s + t, [0, 1, 0, 1, -1, 1, -1, 1] as [Float]) {
            XCTAssertTrue(got.isFinite)
            XCTAssertEqual(got, want, accuracy: 1e-30)
        }
    }

    func testLargeTensorTakesParallelPathWithSameResult() {
        let x = Tensor.random(shape: [4, 8, 64, 64], in: -4...4, seed: 3)
        let y = Activation.hardSwish.forward(x)
        for i in stride(from: 0, to: x.count, by: 97) {
            XCTAssertEqual(Double(y[flat: i]), naive(.hardSwish, Double(x[flat: i])), accuracy: 1e-6)
        }
        let dx = Activation.relu.backward(x, x: x, y: Activation.relu.forward(x))
        for i in stride(from: 0, to: x.count, by: 97) { XCTAssertEqual(dx[flat: i], max(x[flat: i], 0)) }
    }
}
