import Dreaming
import Foundation
import Models
import Network
import Tensors
import TestSupport
import XCTest

/// The whole network's backward pass against PyTorch autograd (../shared/golden/<model>/chelsea.grad.<layer>.npy),
/// on whatever GEMM kernels OpenBLAS picked for this CPU (`make test-kernels` runs it under every family the CPU has).
///
/// Where float32 rounding puts a ReLU input or a max-pool runner-up within a hair of a tie, a correct backward pass
/// may route the gradient differently from PyTorch's (see `RoundingTieComparison`). Those flips are identified,
/// counted and taken out; what remains is held to 1e-4, the float32 error of a correct backward pass: PyTorch and
/// we agree to 1e-6 where no flip occurs, and a length-K float32 dot product carries a relative error of order
/// sqrt(K)·2^-24 ≈ 4e-6 (K ≤ 4608), compounded over the ~20 layers between the dream layer and the input.
final class InputGradientTests: XCTestCase {
    static let residualLimit = 1e-4
    /// At most this many flips are accepted per layer: the shared photos have 0 or 1 on every kernel family measured
    /// (SSE3, AVX, AVX2, Zen); a wrong backward pass produces differences that no handful of flips explains.
    static let flipLimit = 3

    func checkGoldenGradients(model name: String) throws {
        let model = try LoadedModel(url: try SharedData.file("models/\(name).onnx"))
        let golden = try SharedData.file("golden/\(name)")
        let index = try SharedData.json(golden.appendingPathComponent("index.json"))
        let files = try XCTUnwrap((index["gradients"] as? [String: Any])?["files"] as? [String: [String: Any]])
        let x = try XCTUnwrap(NumPyFile.read(contentsOf: golden.appendingPathComponent("chelsea.input.npy")).floatTensor)
        XCTAssertFalse(files.isEmpty)
        for (layer, entry) in files.sorted(by: { $0.key < $1.key }) {
            let expected = try XCTUnwrap(NumPyFile.read(contentsOf: golden.appendingPathComponent(entry["file"] as! String)).floatTensor)
            let dream = try DeepDream(model: model, settings: DreamSettings(layers: [DreamLayer(name: layer)]))
            let (value, gradient) = try dream.objectiveAndGradient(networkInput: x)
            let reference = try XCTUnwrap(entry["objective_value"] as? Double)
            XCTAssertEqual(value, reference, accuracy: 1e-4 * reference, "\(name) \(layer): objective")
            XCTAssertEqual(gradient.shape, expected.shape)

            let comparison = try RoundingTieComparison.compare(model: model, layer: layer, x: x, reference: expected)
            XCTAssertEqual(comparison.rawError, gradient.relativeL2Error(to: expected), accuracy: 1e-9,
                           "\(name) \(layer): the comparison must see the gradient DeepDream computes")
            print("\(name) \(layer) [BLAS \(BLASCore.name)] [SIMD \(SIMDLevel.current)]: objective \(value) vs \(reference); input-gradient relative L2 error "
                  + "\(comparison.rawError), \(comparison.ambiguous.count) ambiguous units, \(comparison.flipped.count) flipped "
                  + "\(comparison.flipped), residual \(comparison.residualError)")
            XCTAssertLessThanOrEqual(comparison.residualError, Self.residualLimit,
                                     "\(name) \(layer): relative L2 error of the input gradient after rounding flips")
            XCTAssertLessThanOrEqual(comparison.flipped.count, Self.flipLimit, "\(name) \(layer): flips \(comparison.flipped)")
        }
    }

    func testGoogLeNetInputGradientsMatchPyTorch() throws { try checkGoldenGradients(model: "googlenet_bvlc") }

    func testSqueezeNetInputGradientsMatchPyTorch() throws { try checkGoldenGradients(model: "squeezenet1_1") }
}

/// The comparison must not explain away a wrong gradient: a reference that differs from ours by more than rounding
/// (one tenth of one channel's gradient changed by 1 %, or a tenth of the image's gradient left out) is no flip.
final class RoundingTieComparisonTests: XCTestCase {
    func testAWrongGradientIsNotExplainedByFlips() throws {
        let name = "googlenet_bvlc", layer = "inception_3b_output"
        let model = try LoadedModel(url: try SharedData.file("models/\(name).onnx"))
        let golden = try SharedData.file("golden/\(name)")
        let x = try XCTUnwrap(NumPyFile.read(contentsOf: golden.appendingPathComponent("chelsea.input.npy")).floatTensor)
        let dream = try DeepDream(model: model, settings: DreamSettings(layers: [DreamLayer(name: layer)]))
        let ours = try dream.objectiveAndGradient(networkInput: x).gradient
        let plane = ours.shape[2] * ours.shape[3]
        var scaled = ours.scalars, dropped = ours.scalars
        for i in 0..<(plane / 10) { scaled[plane + i] *= 1.01 }                     // green channel, top rows, +1 %
        for i in stride(from: 0, to: dropped.count, by: 10) { dropped[i] = 0 }    // every tenth value missing
        for corrupted in [scaled, dropped] {
            let reference = Tensor(shape: ours.shape, scalars: corrupted)
            let comparison = try RoundingTieComparison.compare(model: model, layer: layer, x: x, reference: reference)
            XCTAssertGreaterThan(comparison.residualError, InputGradientTests.residualLimit,
                                 "a wrong gradient passed as rounding: \(comparison.flipped)")
        }
        // And our own gradient as the reference needs no flip at all.
        let same = try RoundingTieComparison.compare(model: model, layer: layer, x: x, reference: ours)
        XCTAssertEqual(same.flipped.count, 0)
        XCTAssertLessThan(same.residualError, 1e-6)
    }
}
