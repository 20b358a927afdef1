import Tensors
import XCTest

/// Clip's and LeakyRelu's gradients, computed eight lanes at a time without branches, against their scalar
/// definitions bit for bit: d = lo <= x <= hi ? dy : 0 and d = x > 0 ? dy : alpha·dy, on the bounds themselves,
/// ±0, NaN, ±infinity, the largest and smallest floats, and lengths that leave every possible scalar tail.
final class ActivationGradientLaneTests: XCTestCase {
    static let special: [Float] = [0, -0.0, 1, -1, 6, 6.0000005, 5.9999995, -0.5, 1.25, .nan, .infinity, -.infinity,
                                   .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude, -.leastNonzeroMagnitude]

    static func scalar(_ a: Activation, x: Float, dy: Float) -> Float {
        switch a {
        case .clip(let lo, let hi): return (x >= lo && x <= hi) ? dy : 0
        case .leakyRelu(let alpha): return x > 0 ? dy : alpha * dy
        default: fatalError("not tested here")
        }
    }

    func testLanesGiveTheScalarDefinitionBitForBit() {
        let activations: [Activation] = [.clip(min: 0, max: 6), .clip(min: -0.5, max: 1.25), .clip(min: -.infinity, max: .infinity),
                                         .leakyRelu(alpha: 0.01), .leakyRelu(alpha: 0.3), .leakyRelu(alpha: 0)]
        var inputs: [[Float]] = (0...37).map { n in (0..<n).map { Self.special[($0 * 7) % Self.special.count] } }
        inputs.append(Tensor.random(shape: [1_003], in: -8...8, seed: 5).scalars)
        for a in activations {
            for x in inputs {
                let dy = Tensor.random(shape: [x.count], in: -3...3, seed: UInt64(x.count)).scalars.enumerated().map { i, v in
                    i % 11 == 5 ? Float.nan : (i % 13 == 6 ? -0.0 : v)
                }
                let got = a.backward(Tensor(shape: [x.count], scalars: dy), x: Tensor(shape: [x.count], scalars: x),
                                     y: Tensor(shape: [x.count], scalars: x)).scalars
                let expected = zip(x, dy).map { Self.scalar(a, x: $0, dy: $1) }
                XCTAssertEqual(got.map(\.bitPattern), expected.map(\.bitPattern), "\(a), length \(x.count)")
            }
        }
    }
}
