import XCTest
import Tensors

/// Central finite differences for checking a kernel's backward pass: with L(x) = sum(upstream * f(x)) accumulated in
/// Double, the numeric derivative at element i is (L(x + eps·e_i) - L(x - eps·e_i)) / 2eps.
enum FiniteDifference {
    static func loss(_ y: Tensor, _ upstream: Tensor) -> Double {
        precondition(y.count == upstream.count, "loss: output \(y.shape) vs upstream \(upstream.shape)")
        var s = 0.0
        for i in 0..<y.count { s += Double(y[flat: i]) * Double(upstream[flat: i]) }
        return s
    }

    /// dL/dx at flat index i.
    static func derivative(of f: (Tensor) -> Tensor, at x: Tensor, upstream: Tensor, index i: Int, eps: Float) -> Double {
        var plus = x, minus = x
        plus[flat: i] = x[flat: i] + eps
        minus[flat: i] = x[flat: i] - eps
        return (loss(f(plus), upstream) - loss(f(minus), upstream)) / (2 * Double(eps))
    }

    /// d/dx sum(upstream * f(x)) at every element.
    static func gradient(of f: (Tensor) -> Tensor, at x: Tensor, upstream: Tensor, eps: Float = 1e-2) -> Tensor {
        var grad = Tensor(shape: x.shape)
        for i in 0..<x.count { grad[flat: i] = Float(derivative(of: f, at: x, upstream: upstream, index: i, eps: eps)) }
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

    /// Flat indices to probe: all of them for small tensors, a seeded sample of `limit` otherwise.
    static func sampledIndices(count: Int, limit: Int = 150, seed: UInt64 = 7) -> [Int] {
        if count <= limit { return Array(0..<count) }
        var rng = SplitMix64(seed: seed)
        return (0..<limit).map { _ in Int.random(in: 0..<count, using: &rng) }
    }

    /// For larger tensors: asserts max |numeric - analytic| <= tolerance * max(max |numeric|, floor) over a seeded
    /// sample of elements (every element when there are at most 150).
    static func checkSampled(_ analytic: Tensor, of f: (Tensor) -> Tensor, at x: Tensor, upstream: Tensor,
                             eps: Float = 1e-2, tolerance: Double = 1e-2, floor: Double = 1e-3,
                             _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(analytic.shape, x.shape, "gradient shape \(message)", file: file, line: line)
        guard analytic.count == x.count else { return }
        var worst = 0.0, scale = floor, worstIndex = -1, worstPair = (0.0, 0.0)
        for i in sampledIndices(count: x.count) {
            let numeric = derivative(of: f, at: x, upstream: upstream, index: i, eps: eps)
            let a = Double(analytic[flat: i])
            scale = max(scale, abs(numeric))
            if abs(numeric - a) > worst { worst = abs(numeric - a); worstIndex = i; worstPair = (numeric, a) }
        }
        XCTAssertLessThanOrEqual(worst / scale, tolerance,
                                 "\(message): at flat \(worstIndex) numeric \(worstPair.0) vs analytic \(worstPair.1)",
                                 file: file, line: line)
    }
}

/// Row-major multi-indices of a shape, for the naive references.
func allIndices(_ shape: [Int]) -> [[Int]] {
    var result: [[Int]] = [[]]
    for d in shape {
        var next: [[Int]] = []
        for prefix in result { for i in 0..<d { next.append(prefix + [i]) } }
        result = next
    }
    return result
}

/// Flat row-major offset of a multi-index.
func flatIndex(_ index: [Int], _ shape: [Int]) -> Int {
    var flat = 0
    for (i, d) in zip(index, shape) { flat = flat * d + i }
    return flat
}
