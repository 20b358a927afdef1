import Foundation
import Imaging

/// The models `--model NAME` knows. The shared mirror's files come first; public downloads are the fallback.
public enum KnownModels {
    /// The ONNX model zoo's googlenet-7.onnx (BVLC weights converted through Caffe2): input `data_0`, output `prob_0`
    /// (softmax only), Caffe2-style value names such as `inception_4c/output_1`. Dream layers are given by prefix and
    /// resolved against the file's own names when it is loaded. Untested offline: nobody here can download it.
    static let zooGoogLeNetDescription = ModelDescription(
        architecture: "GoogLeNet / Inception-v1 (BVLC weights, ONNX model zoo googlenet-7)",
        input: ModelDescription.Input(name: "data_0", defaultSize: [224, 224], minSize: [224, 224], preprocessing: .caffeBGR),
        outputs: ["prob_0": [1, 1000]],
        labels: "synset_labels.txt",
        deepdreamLayers: ["conv2/3x3", "inception_3a/output", "inception_3b/output", "inception_4a/output", "inception_4b/output",
                          "inception_4c/output", "inception_4d/output", "inception_4e/output", "inception_5a/output", "inception_5b/output"],
        featureVector: nil)

    public static let all: [KnownModel] = [
        KnownModel(
            name: "googlenet", aliases: ["googlenet_bvlc", "inception_v1", "bvlc_googlenet"],
            summary: "BVLC GoogLeNet (Inception-v1), the network of the original DeepDream; 7.0 M parameters",
            sources: [
                .init(fileName: "googlenet_bvlc.onnx", sha256: "b27e3dcc839276bed6e965731a682ad24566520fc364f9eea0adc1a820762901",
                      url: nil, builtInDescription: nil, labelsURL: nil),
                .init(fileName: "googlenet-7.onnx", sha256: "5725ccfd90845735ce5897faf7843c3f9b13acda3c4f3bff82cb21c9337c9de8",
                      url: URL(string: "https://github.com/onnx/models/raw/main/validated/vision/classification/inception_and_googlenet/googlenet/model/googlenet-7.onnx"),
                      builtInDescription: zooGoogLeNetDescription,
                      labelsURL: URL(string: "https://github.com/onnx/models/raw/main/validated/vision/classification/synset.txt")),
            ]),
        KnownModel(
            name: "squeezenet", aliases: ["squeezenet1_1", "squeezenet1.1"],
            summary: "SqueezeNet 1.1 (ONNX model zoo weights); 1.2 M parameters, fast",
            sources: [
                .init(fileName: "squeezenet1_1.onnx", sha256: "73fd08dacb49b5d78d6f70262f4ada173e6fdc456910fa59f98864e7b82c6454",
                      url: nil, builtInDescription: nil, labelsURL: nil),
            ]),
    ]

    public static func find(_ name: String) -> KnownModel? {
        let key = name.lowercased()
        return all.first { $0.name == key || $0.aliases.contains(key) }
    }

    /// The built-in description for a known file name, if one exists (used when no JSON sits beside the file).
    static func builtInDescription(forFileName fileName: String) -> ModelDescription? {
        for model in all { for source in model.sources where source.fileName == fileName { return source.builtInDescription } }
        return nil
    }
}
