import Foundation
import Imaging
import Network
import Tensors

/// One class and its probability.
public struct Prediction: Codable, Equatable {
    public var index: Int
    public var label: String
    public var probability: Float
}

extension LoadedModel {
    /// The value holding class scores and whether it is already a probability: logits when the description names
    /// them (softmax computed here), else a `prob`-like output, else the graph's first output.
    public var classifierOutput: (name: String, isProbability: Bool) {
        let outputs = graph.outputs.map(\.name)
        let declared = modelDescription?.outputs.map { Array($0.keys) } ?? []
        if let logits = declared.first(where: { $0.contains("logit") }) ?? outputs.first(where: { $0.contains("logit") }) {
            return (logits, false)
        }
        if let prob = declared.first(where: { $0.contains("prob") }) ?? outputs.first(where: { $0.contains("prob") }) {
            return (prob, true)
        }
        return (outputs.first ?? "", false)
    }

    /// Class probabilities for an image (resize shorter side, centre crop, normalise as the description says).
    public func classProbabilities(_ image: RGBImage) throws -> [Float] {
        let prepared = try preprocessing.prepareForClassification(image)
        let x = try inputTensor(for: prepared)
        // A sigmoid head (dream finetune --head sigmoid) gives independent probabilities: one output is the second
        // class's probability in a two-class model; several are one-vs-rest (multi-label) and stay as they are.
        if graph.metadata[MetadataKeys.head] == "sigmoid", let prob = graph.outputs.map(\.name).first(where: { $0.contains("prob") }),
           let p = try executor.run([try inputName: .float(x)], outputs: [prob])[prob]?.floatTensor {
            return p.count == 1 ? [1 - p.scalars[0], p.scalars[0]] : p.scalars
        }
        let (name, isProbability) = classifierOutput
        guard let scores = try executor.run([try inputName: .float(x)], outputs: [name])[name]?.floatTensor else {
            throw ExecutionError.unknownValue(name: name, suggestions: [])
        }
        guard scores.count > 0, scores.withUnsafeBufferPointer({ $0.allSatisfy(\.isFinite) }) else {
            throw ModelUseError.invalidGraph(model: url.path, detail: "the output '\(name)' holds \(scores.count == 0 ? "no values" : "NaN or infinite values"); the model's weights are broken")
        }
        let flat = scores.reshaped([1, scores.count])
        let looksLikeProbability = isProbability && flat.scalars.allSatisfy { $0 >= 0 } && abs(flat.sum() - 1) < 1e-3
        return looksLikeProbability ? flat.scalars : Softmax.forward(flat, axis: 1).scalars
    }

    /// The `top` most probable classes. Labels come from the description (or "class N" when there are none).
    public func classify(_ image: RGBImage, top: Int = 5) throws -> [Prediction] {
        let probabilities = try classProbabilities(image)
        if let labels, labels.count < probabilities.count {
            throw ModelUseError.labelsMismatch(model: displayName, labels: labels.count, classes: probabilities.count)
        }
        let order = probabilities.indices.sorted { probabilities[$0] > probabilities[$1] }
        return order.prefix(top).map { i in
            Prediction(index: i, label: labels.flatMap { i < $0.count ? $0[i] : nil } ?? "class \(i)", probability: probabilities[i])
        }
    }
}
