import Foundation
import Inspection
import Models
import Network
import Tensors
import XCTest

/// The graphs `dream bench` builds in code have the published networks' layer shapes: their multiply-accumulates
/// and parameter counts at 224x224 match the papers' and torchvision's figures, and they run end to end.
final class BenchmarkModelTests: XCTestCase {
    func table(_ model: LoadedModel, size: Int) throws -> LayerTable {
        try LayerTable(model: model.displayName, graph: model.graph, executor: model.executor, inputName: try model.inputName,
                       inputShape: [1, 3, size, size], frozen: [])
    }

    func testShapesMatchThePublishedNetworks() throws {
        // (name, multiply-accumulates at 224², weights and biases of Conv and Gemm layers)
        // MobileNetV2 1.0: 300 M multiply-adds (Sandler et al. 2018, table 3); ResNet-18: 1.8 G (He et al. 2016,
        // table 1; torchvision counts 1.814 G). Convolution and classifier parameters: torchvision's totals
        // (3,504,872 and 11,689,512) minus BatchNormalization's scale and shift (2 per channel).
        for (name, macs, convParameters) in [("mobilenetv2-shapes", 300_774_272, 3_504_872 - 2 * 17_056),
                                             ("resnet18-shapes", 1_814_083_944, 11_689_512 - 2 * 4_800)] {
            let model = try LoadedModel.load(name)
            let table = try table(model, size: 224)
            XCTAssertEqual(Double(table.totalMACs), Double(macs), accuracy: Double(macs) * 0.005, name)
            let weights = table.rows.filter { $0.op == "Conv" || $0.op == "Gemm" }.reduce(0) { $0 + $1.parameters }
            XCTAssertEqual(weights, convParameters, name)
        }
    }

    func testTheyRunEndToEndAtAnySize() throws {
        for name in BenchmarkModels.names {
            let model = try LoadedModel.load(name)
            for size in [64, 97] {
                let x = Tensor.random(shape: [1, 3, size, size], in: -2...2, seed: 3)
                let out = try model.executor.run([try model.inputName: .float(x)], outputs: ["logits"])
                let logits = try XCTUnwrap(out["logits"]?.floatTensor)
                XCTAssertEqual(logits.shape, [1, 1000], name)
                XCTAssertTrue(logits.scalars.allSatisfy(\.isFinite), name)
            }
        }
    }
}
