import Tensors
import XCTest

/// A convolution's epilogue (the activation applied where the kernel writes its output) gives the very values of
/// the activation applied afterwards, for every kernel that can compute the layer: the operations and their order
/// are the same, so the bits are too.
final class ConvolutionEpilogueTests: XCTestCase {
    typealias Case = ConvolutionTests.Case

    static let cases: [Case] = ConvolutionTests.cases + SpecialisedConvolutionTests.depthwiseCases
        + SpecialisedConvolutionTests.depthwiseForwardPathCases + SpecialisedConvolutionTests.pointwiseCases

    static let epilogues: [Activation] = [.relu, .clip(min: 0, max: 6), .clip(min: -0.5, max: 0.25), .leakyRelu(alpha: 0.1),
                                          .sigmoid, .silu, .hardSigmoid(alpha: 0.2, beta: 0.5), .hardSwish]

    func testEpilogueEqualsSeparateActivation() {
        forEachSIMDLevel { level in
            for (index, c) in Self.cases.enumerated() {
                let (x, weight, bias) = ConvolutionTests.tensors(c, seed: UInt64(700 + index))
                for kernel in Convolution.kernels(x: x.shape, weight: weight.shape, window: c.window, groups: c.groups) {
                    let plain = Convolution.forward(x, weight: weight, bias: bias, window: c.window, groups: c.groups, kernel: kernel)
                    for epilogue in Self.epilogues {
                        let fused = Convolution.forward(x, weight: weight, bias: bias, window: c.window, groups: c.groups,
                                                        kernel: kernel, epilogue: epilogue)
                        XCTAssertEqual(fused.scalars, epilogue.forward(plain).scalars, "\(c.name), \(kernel), \(epilogue), \(level)")
                    }
                }
            }
        }
    }
}
