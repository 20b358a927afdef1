import XCTest
import Tensors

/// Central finite differences of the scalar loss L(x) = sum(dy * f(x)), accumulated in Double,
/// to check analytic backward kernels.
enum NumericGradientB {
    static func loss(_ y: Tensor, _ dy: Tensor) -> Double {
        precondition(y.count == dy.count)
        var s = 0.0
        for i in 0..<y.count { s += Double(y[flat: i]) * Double(dy[flat: i]) }
        return s
    }

    /// dL/dx at flat index i, by central difference with step eps.
    static func derivative(_ f: (Tensor) -> Tensor, at x: Tensor, dy: Tensor, index i: Int, eps: Float) -> Double {
        var plus = x, minus = x
        plus[flat: i] += eps
        minus[flat: i] -= eps
        return (loss(f(plus), dy) - loss(f(minus), dy)) / Double(2 * eps)
    }

    /// Flat indices to probe: all of them for small tensors, a seeded sample of `limit` otherwise.
    static func indices(count: Int, limit: Int = 150, seed: UInt64 = 7) -> [Int] {
        if count <= limit { return Array(0..<count) }
        var rng = SplitMix64(seed: seed)
        return (0..<limit).map { _ in Int.random(in: 0..<count, using: &rng) }
    }

    /// Asserts max |numeric - analytic| <= tolerance * max(max |numeric|, floor) over the probed indices.
    static func assertGradient(_ analytic: Tensor, of f: (Tensor) -> Tensor, at x: Tensor, dy: Tensor,
                               eps: Float = 1e-2, tolerance: Double = 1e-2, floor: Double = 1e-3,
                               _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(analytic.shape, x.shape, "gradient shape \(message)", file: file, line: line)
        guard analytic.count == x.count else { return }
        var worst = 0.0, scale = floor, worstIndex = -1, worstPair = (0.0, 0.0)
        for i in indices(count: x.count) {
            let numeric = derivative(f, at: x, dy: dy, index: i, eps: eps)
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
func allIndicesB(_ shape: [Int]) -> [[Int]] {
    var result: [[Int]] = [[]]
    for d in shape {
        var next: [[Int]] = []
        for prefix in result { for i in 0..<d { next.append(prefix + [i]) } }
        result = next
    }
    return result
}

/// Flat row-major offset of a multi-index.
func flatIndexB(_ index: [Int], _ shape: [Int]) -> Int {
    var flat = 0
    for (i, d) in zip(index, shape) { flat = flat * d + i }
    return flat
}
