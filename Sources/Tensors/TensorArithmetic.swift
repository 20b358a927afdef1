import Foundation

// Small whole-tensor helpers used by the executor and optimisers (gradient accumulation, scaling, reductions).
extension Tensor {
    /// self += other (same element count).
    public mutating func add(_ other: Tensor, scaledBy alpha: Float = 1) {
        precondition(other.count == count, "add: \(shape) vs \(other.shape)")
        other.withUnsafeBufferPointer { src in
            withUnsafeMutableBufferPointer { dst in
                for i in 0..<dst.count { dst[i] += alpha * src[i] }
            }
        }
    }

    public mutating func scale(by alpha: Float) {
        withUnsafeMutableBufferPointer { dst in
            for i in 0..<dst.count { dst[i] *= alpha }
        }
    }

    public func map(_ f: (Float) -> Float) -> Tensor {
        Tensor(shape: shape) { dst in
            withUnsafeBufferPointer { src in
                for i in 0..<src.count { dst[i] = f(src[i]) }
            }
        }
    }

    public func sum() -> Double {
        withUnsafeBufferPointer { p in
            var s = 0.0
            for v in p { s += Double(v) }
            return s
        }
    }

    public func mean() -> Double { count == 0 ? 0 : sum() / Double(count) }

    public func sumOfSquares() -> Double {
        withUnsafeBufferPointer { p in
            var s = 0.0
            for v in p { s += Double(v) * Double(v) }
            return s
        }
    }

    public func maxAbsDifference(_ other: Tensor) -> Float {
        precondition(other.count == count, "compare: \(shape) vs \(other.shape)")
        return withUnsafeBufferPointer { a in
            other.withUnsafeBufferPointer { b in
                var m: Float = 0
                for i in 0..<a.count { m = Swift.max(m, abs(a[i] - b[i])) }
                return m
            }
        }
    }

    /// ||self - other|| / ||other||
    public func relativeL2Error(to reference: Tensor) -> Double {
        precondition(reference.count == count, "compare: \(shape) vs \(reference.shape)")
        return withUnsafeBufferPointer { a in
            reference.withUnsafeBufferPointer { b in
                var num = 0.0, den = 0.0
                for i in 0..<a.count {
                    let d = Double(a[i]) - Double(b[i])
                    num += d * d
                    den += Double(b[i]) * Double(b[i])
                }
                return den == 0 ? num.squareRoot() : (num / den).squareRoot()
            }
        }
    }

    /// Uniform random values in [low, high) from a seeded generator.
    public static func random(shape: [Int], in range: ClosedRange<Float> = -1...1, seed: UInt64) -> Tensor {
        var rng = SplitMix64(seed: seed)
        return Tensor(shape: shape) { p in
            for i in 0..<p.count { p[i] = Float.random(in: range, using: &rng) }
        }
    }
}

/// Small, fast, reproducible generator (SplitMix64): same seed, same numbers, on every platform.
public struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
