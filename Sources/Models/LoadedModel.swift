import Foundation
import Imaging
import Network
import Tensors

public enum ModelUseError: Error, CustomStringConvertible, LocalizedError {
    case missingDescription(model: String, needed: String)
    case noImageInput(model: String)

    public var description: String {
        switch self {
        case let .missingDescription(model, needed):
            return "\(model) does not say \(needed): put a JSON description beside it (\((model as NSString).deletingPathExtension).json, the format of the shared models) or use a model exported by dream"
        case let .noImageInput(model):
            return "\(model) has no 4-D image input"
        }
    }

    public var errorDescription: String? { description }
}

/// A model ready to use: its graph, an executor, and what its description says (preprocessing, labels, dream layers).
public final class LoadedModel {
    public let url: URL
    public let graph: Graph
    public let executor: GraphExecutor
    public let modelDescription: ModelDescription?
    public let labels: [String]?

    public var displayName: String { url.lastPathComponent }

    /// Loads a model by name or path (nil: the default model) through the store.
    /// A benchmark model's name (`BenchmarkModels.names`) builds its graph in memory.
    public static func load(_ nameOrPath: String?, store: ModelStore = .fromEnvironment()) throws -> LoadedModel {
        if let nameOrPath, let graph = BenchmarkModels.graph(named: nameOrPath) { return try LoadedModel(graph: graph, name: nameOrPath) }
        return try LoadedModel(url: try store.resolve(nameOrPath))
    }

    /// A graph built in code (`BenchmarkModels`): no description, no labels; `name` is its display name.
    public init(graph: Graph, name: String) throws {
        url = URL(fileURLWithPath: name)
        self.graph = graph
        executor = try GraphExecutor(graph: graph)
        modelDescription = nil
        labels = nil
    }

    public init(url: URL) throws {
        self.url = url
        let graph = try ONNXImporter.load(contentsOf: url)
        self.graph = graph
        executor = try GraphExecutor(graph: graph)
        let directory = url.deletingLastPathComponent()
        let stem = url.deletingPathExtension().lastPathComponent
        var description: ModelDescription?
        if let data = try? Data(contentsOf: directory.appendingPathComponent(stem + ".json")) {
            description = try? ModelDescription(json: data)
        }
        if description == nil, let json = graph.metadata[MetadataKeys.description] {
            description = try? ModelDescription(json: Data(json.utf8))
        }
        if description == nil { description = KnownModels.builtInDescription(forFileName: url.lastPathComponent) }
        modelDescription = description
        if let text = graph.metadata[MetadataKeys.labels] {
            labels = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        } else if let file = description?.labels,
                  let text = try? String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8) {
            labels = text.split(separator: "\n").map { String($0).trimmingCharacters(in: .whitespaces) }
        } else {
            labels = nil
        }
    }

    /// The image input's name: the description's, else the only 4-D (or unknown-shape) graph input.
    public var inputName: String {
        get throws {
            if let name = modelDescription?.input.name, graph.inputs.contains(where: { $0.name == name }) { return name }
            if let input = graph.inputs.first(where: { $0.shape?.count == 4 }) ?? graph.inputs.first { return input.name }
            throw ModelUseError.noImageInput(model: displayName)
        }
    }

    public var preprocessing: Preprocessing {
        get throws {
            guard let input = modelDescription?.input else {
                throw ModelUseError.missingDescription(model: displayName, needed: "how to preprocess images (channel order, mean, std)")
            }
            return input.preprocessing
        }
    }

    /// Default working size [height, width]: the description's, else the declared input's, else 224x224.
    public var defaultInputSize: [Int] {
        if let size = modelDescription?.input.defaultSize, size.count == 2 { return size }
        if let shape = graph.inputs.first?.shape, shape.count == 4, let h = shape[2], let w = shape[3] { return [h, w] }
        return [224, 224]
    }

    /// The network input for an image already at its working size: [1, 3, H, W] in the model's preprocessing.
    public func inputTensor(for image: RGBImage) throws -> Tensor {
        try preprocessing.inputTensor(for: image)
    }

    /// Dream layers the description lists, resolved to this file's value names.
    public var dreamLayers: [String] {
        let names = LayerNames(graph: graph)
        return (modelDescription?.deepdreamLayers ?? []).compactMap { try? names.resolve($0) }
    }

    public var defaultDreamLayer: String? {
        guard let layer = modelDescription?.defaultDreamLayer else { return nil }
        return try? LayerNames(graph: graph).resolve(layer)
    }
}
