import XCTest
import Tensors

/// Central finite differences for checking a kernel's backward pass: with L(x) = sum(upstream * f(x)) accumulated in
/// Double, the numeric gradient is (L(x + eps) - L(x - eps)) / 2eps, one input element at a time (small shapes only).
enum FiniteDifference {
    static func loss(_ y: Tensor, _ upstream: Tensor) -> Double {
        precondition(y.count == upstream.count, "loss: output \(y.shape) vs upstream \(upstream.shape)")
        var s = 0.0
        for i in 0..<y.count { s += Double(y[flat: i]) * Double(upstream[flat: i]) }
        return s
    }

    /// d/dx sum(upstream * f(x)), by central differences.
    static func gradient(of f: (Tensor) -> Tensor, at x: Tensor, upstream: Tensor, eps: Float = 1e-2) -> Tensor {
        var grad = Tensor(shape: x.shape)
        for i in 0..<x.count {
            var plus = x, minus = x
            plus[flat: i] = x[flat: i] + eps
            minus[flat: i] = x[flat: i] - eps
            let difference = loss(f(plus), upstream) - loss(f(minus), upstream)
            grad[flat: i] = Float(difference / (2 * Double(eps)))
        }
        return grad
    }

    /// Asserts that `analytic` matches the numeric gradient of sum(upstream * f(x)) within a relative tolerance,
    /// both in L2 norm and element by element (relative to the largest numeric entry). For a kernel that is linear in
/// the perturbed argument the differences are exact up to rounding, so callers can pass a tighter tolerance (1e-3).
    static func check(_ analytic: Tensor?, of f: (Tensor) -> Tensor, at x: Tensor, upstream: Tensor,
                      eps: Float = 1e-2, tolerance: Double = 1e-2, _ message: @autoclosure () -> String = "",
                      file: StaticString = #filePath, line: UInt = #line) {
        guard let analytic else {
            XCTFail("missing analytic gradient \(message())", file: file, line: line)
            return
        }
        XCTAssertEqual(analytic.shape, x.shape, "gradient shape \(message())", file: file, line: line)
        let numeric = gradient(of: f, at: x, upstream: upstream, eps: eps)
        let scale = Double(numeric.scalars.map(abs).max() ?? 0)
        let relative = analytic.relativeL2Error(to: numeric)
        let worst = Double(analytic.maxAbsDifference(numeric))
        XCTAssertLessThan(relative, tolerance, "relative L2 error of gradient \(message())", file: file, line: line)
        XCTAssertLessThanOrEqual(worst, tolerance * max(scale, 1e-3), "max abs error of gradient \(message())", file: file, line: line)
    }
}
