import Tensors
import XCTest

/// Winograd's transformed-weight cache against the uncached path: the same values bit for bit (the transform is the
/// same arithmetic, done once), one transform per direction while the weights stay the same, and never a stale one
/// when they change: new weight tensors, or an old one modified in place (copy-on-write must give it new storage).
final class WinogradWeightCacheTests: XCTestCase {
    typealias Case = ConvolutionTests.Case
    static let cases: [Case] = [
        Case(name: "pad 1 batch 2", x: [2, 5, 13, 11], m: 7, window: Window2D(kernel: 3, pad: 1), groups: 1),
        Case(name: "many channels", x: [1, 67, 12, 12], m: 33, window: Window2D(kernel: 3, pad: 1), groups: 1),
    ]

    /// y and dx through `kernel`, with the cache or without.
    static func run(_ c: Case, x: Tensor, weight: Tensor, bias: Tensor?, dy: Tensor, kernel: Convolution.Kernel,
                    cache: WinogradWeightCache?) -> (y: [Float], dx: [Float]) {
        let y = Convolution.forward(x, weight: weight, bias: bias, window: c.window, groups: 1, kernel: kernel,
                                    epilogue: .relu, winogradCache: cache)
        let dx = Convolution.backward(dy, x: x, weight: weight, window: c.window, groups: 1, needInputGradient: true,
                                      needParameterGradients: false, kernel: kernel, winogradCache: cache).dx!
        return (y.scalars, dx.scalars)
    }

    func testCachedTransformsGiveTheUncachedValuesAndAreMadeOnce() {
        for (index, c) in Self.cases.enumerated() {
            let (x, weight, bias) = ConvolutionTests.tensors(c, seed: UInt64(700 + 10 * index))
            let dy = Tensor.random(shape: [c.x[0], c.m, c.x[2], c.x[3]], seed: UInt64(701 + 10 * index))
            for kernel in WinogradConvolutionTests.variants {
                let plain = Self.run(c, x: x, weight: weight, bias: bias, dy: dy, kernel: kernel, cache: nil)
                let cache = WinogradWeightCache()
                for call in 1...3 {
                    let cached = Self.run(c, x: x, weight: weight, bias: bias, dy: dy, kernel: kernel, cache: cache)
                    XCTAssertEqual(cached.y, plain.y, "\(c.name), \(kernel), call \(call)")
                    XCTAssertEqual(cached.dx, plain.dx, "\(c.name), \(kernel), call \(call)")
                }
                XCTAssertEqual(cache.transformsComputed, 2, "one forward and one data-gradient transform, \(c.name), \(kernel)")
                let positions = kernel == .winograd4x4 ? 36 : 16
                XCTAssertEqual(cache.floats, 2 * positions * c.m * c.x[1], "\(c.name), \(kernel)")
            }
        }
    }

    func testNewWeightsAreTransformedAgain() {
        let c = Self.cases[0]
        let (x, weight, bias) = ConvolutionTests.tensors(c, seed: 710)
        let dy = Tensor.random(shape: [c.x[0], c.m, c.x[2], c.x[3]], seed: 711)
        let other = Tensor.random(shape: weight.shape, seed: 712)
        for kernel in WinogradConvolutionTests.variants {
            let cache = WinogradWeightCache()
            _ = Self.run(c, x: x, weight: weight, bias: bias, dy: dy, kernel: kernel, cache: cache)
            let cached = Self.run(c, x: x, weight: other, bias: bias, dy: dy, kernel: kernel, cache: cache)
            let plain = Self.run(c, x: x, weight: other, bias: bias, dy: dy, kernel: kernel, cache: nil)
            XCTAssertEqual(cached.y, plain.y, "\(kernel)")
            XCTAssertEqual(cached.dx, plain.dx, "\(kernel)")
            XCTAssertEqual(cache.transformsComputed, 4, "\(kernel)")
            // Back to the first weights: transformed again (the cache keeps the latest per direction), and right.
            let again = Self.run(c, x: x, weight: weight, bias: bias, dy: dy, kernel: kernel, cache: cache)
            XCTAssertEqual(again.y, Self.run(c, x: x, weight: weight, bias: bias, dy: dy, kernel: kernel, cache: nil).y, "\(kernel)")
        }
    }

    func testWeightsModifiedInPlaceAreNeverServedStale() {
        let c = Self.cases[0]
        let (x, _, bias) = ConvolutionTests.tensors(c, seed: 720)
        var weight = ConvolutionTests.tensors(c, seed: 720).weight  // held by this variable alone
        let dy = Tensor.random(shape: [c.x[0], c.m, c.x[2], c.x[3]], seed: 721)
        for kernel in WinogradConvolutionTests.variants {
            let cache = WinogradWeightCache()
            _ = Self.run(c, x: x, weight: weight, bias: bias, dy: dy, kernel: kernel, cache: cache)
            // The only variable holding these weights writes to them, as an optimiser's in-place update would.
            weight.withUnsafeMutableBufferPointer { w in for i in w.indices { w[i] *= -0.5 } }
            weight[flat: 0] = 3
            let cached = Self.run(c, x: x, weight: weight, bias: bias, dy: dy, kernel: kernel, cache: cache)
            let plain = Self.run(c, x: x, weight: weight, bias: bias, dy: dy, kernel: kernel, cache: nil)
            XCTAssertEqual(cached.y, plain.y, "\(kernel)")
            XCTAssertEqual(cached.dx, plain.dx, "\(kernel)")
        }
    }

    func testTheVariantIsPartOfTheKey() {
        let c = Self.cases[0]
        let (x, weight, bias) = ConvolutionTests.tensors(c, seed: 730)
        let dy = Tensor.random(shape: [c.x[0], c.m, c.x[2], c.x[3]], seed: 731)
        let cache = WinogradWeightCache()
        let f4 = Self.run(c, x: x, weight: weight, bias: bias, dy: dy, kernel: .winograd4x4, cache: cache)
        let f2 = Self.run(c, x: x, weight: weight, bias: bias, dy: dy, kernel: .winograd2x2, cache: cache)
        XCTAssertEqual(f2.y, Self.run(c, x: x, weight: weight, bias: bias, dy: dy, kernel: .winograd2x2, cache: nil).y)
        XCTAssertEqual(f2.dx, Self.run(c, x: x, weight: weight, bias: bias, dy: dy, kernel: .winograd2x2, cache: nil).dx)
        XCTAssertNotEqual(f2.y, f4.y, "the two variants round differently, so a wrong hit would show")
    }
}
