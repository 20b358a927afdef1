import Foundation
import Imaging
import Models
import Network
import Tensors

/// A pretrained model with its head replaced: the graph that is trained and then exported, its parameters and
/// which are trainable, and where the frozen part ends (the values the trainable part starts from).
public struct TransferModel {
    public var graph: Graph
    public var parameters: Parameters
    public let choice: HeadChoice
    public let inputName: String
    public let preprocessing: Preprocessing
    /// [height, width] every image is brought to.
    public let inputSize: [Int]
    public let featureTensor: String
    public let head: NewHead
    /// Values computed by the frozen part and read by the trainable part (for a frozen backbone: the features).
    public let boundary: [String]
    /// The model's description carried into the exported file.
    let baseDescription: ModelDescription?

    public init(model: LoadedModel, choice: HeadChoice, settings: TrainingSettings) throws {
        let preprocessing = try model.preprocessing
        self.preprocessing = preprocessing
        inputName = try model.inputName
        inputSize = preprocessing.crop.flatMap { $0.count == 2 ? $0 : nil } ?? model.defaultInputSize
        let names = LayerNames(graph: model.graph)
        if let described = model.modelDescription?.featureVector?.tensor, let resolved = try? names.resolve(described) {
            featureTensor = resolved
        } else {
            featureTensor = try HeadSurgery.defaultFeatureTensor(of: model.graph)
        }
        let probe = try model.executor.run([inputName: .float(Tensor(shape: [1, 3] + inputSize))], outputs: [featureTensor])
        guard let featureShape = probe[featureTensor]?.shape, featureShape.count >= 2 else {
            throw SurgeryError.featureNotFound(featureTensor)
        }
        let width = featureShape[1]
        // PyTorch's nn.Linear start: weights and bias uniform in ±1/sqrt(fan_in), seeded. (Glorot's wider range
        // starts with larger logits and measured 0.77 against 0.83 mean validation accuracy on clipart4.)
        let limit = Float(1 / Double(width).squareRoot())
        let weight = Tensor.random(shape: [choice.outputs, width], in: -limit...limit, seed: settings.seed &* 0x9E37_79B9 &+ 17)
        let bias = Tensor.random(shape: [choice.outputs], in: -limit...limit, seed: settings.seed &* 0x9E37_79B9 &+ 29)
        head = try HeadSurgery.replaceHead(of: model.graph, feature: featureTensor, featureShape: featureShape,
                                           outputs: choice.outputs, activation: choice.activation,
                                           weight: weight, bias: bias)
        graph = head.graph
        self.choice = choice
        baseDescription = model.modelDescription

        let executor = try GraphExecutor(graph: graph)
        var parameters = Parameters(executor: executor)
        try parameters.unfreeze([head.weight, head.bias])
        if let layer = settings.trainFrom { try parameters.unfreeze(from: layer, in: executor) }
        for prefix in settings.trainablePrefixes where parameters.unfreeze(prefix: prefix) == 0 {
            throw RecipeError(message: "--trainable \(prefix): no parameter name starts with it (see dream layers --parameters-only)")
        }
        self.parameters = parameters
        boundary = TransferModel.boundary(of: graph, target: head.scores, trainable: parameters.trainable)
    }

    /// The values at the cut between the nodes that depend on a trainable parameter and those that do not.
    static func boundary(of graph: Graph, target: String, trainable: Set<String>) -> [String] {
        var producer: [String: Int] = [:]
        for (i, node) in graph.nodes.enumerated() { for o in node.outputs where !o.isEmpty { producer[o] = i } }
        var needed = Set<Int>(), stack = [target]
        while let name = stack.popLast() {
            guard let i = producer[name], needed.insert(i).inserted else { continue }
            stack.append(contentsOf: graph.nodes[i].inputs.filter { !$0.isEmpty })
        }
        var live = trainable, trainableNodes: [Int] = []
        for i in needed.sorted() where graph.nodes[i].inputs.contains(where: live.contains) {
            trainableNodes.append(i)
            live.formUnion(graph.nodes[i].outputs)
        }
        var cut: [String] = []
        for i in trainableNodes {
            for input in graph.nodes[i].inputs where !input.isEmpty && !live.contains(input) && graph.initializers[input] == nil && !cut.contains(input) {
                cut.append(input)
            }
        }
        return cut
    }

    /// The network input for one image: the model's classification preprocessing (resize, centre crop), then
    /// brought to `inputSize` if the crop left it smaller.
    public func inputTensor(_ image: RGBImage) throws -> Tensor {
        var prepared = try preprocessing.prepareForClassification(image)
        if prepared.height != inputSize[0] || prepared.width != inputSize[1] {
            prepared = prepared.resized(width: inputSize[1], height: inputSize[0])
        }
        return preprocessing.inputTensor(for: prepared)
    }

    /// The trained graph as a self-describing ONNX model: labels and preprocessing in metadata_props.
    public func exportGraph(labels: [String], extra: [String: String] = [:]) throws -> Graph {
        var g = graph
        parameters.write(into: &g)
        let input = ModelDescription.Input(name: inputName, defaultSize: inputSize,
                                           minSize: baseDescription?.input.minSize ?? inputSize, preprocessing: preprocessing)
        var outputs = [head.scores: [1, choice.outputs]]
        if let prob = head.probability { outputs[prob] = [1, choice.outputs] }
        let kept = LayerNames(graph: g)
        let description = ModelDescription(
            architecture: (baseDescription?.architecture.map { $0 + ", " } ?? "") + "new \(choice.activation.rawValue) head trained by dream finetune",
            input: input, outputs: outputs, labels: nil,
            deepdreamLayers: baseDescription?.deepdreamLayers?.filter { (try? kept.resolve($0)) != nil },
            featureVector: ModelDescription.FeatureVector(tensor: featureTensor))
        g.metadata = extra
        g.metadata[MetadataKeys.description] = String(decoding: try description.jsonData(), as: UTF8.self)
        if !labels.isEmpty { g.metadata[MetadataKeys.labels] = labels.joined(separator: "\n") }
        g.metadata[MetadataKeys.head] = choice.activation.rawValue
        g.metadata["dream.loss"] = choice.loss.rawValue
        g.producerName = "dream"
        return g
    }
}
