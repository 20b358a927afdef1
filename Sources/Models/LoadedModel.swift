import Foundation
import Imaging
import Network
import SafeIO
import Tensors

public enum ModelUseError: Error, CustomStringConvertible, LocalizedError {
    case missingDescription(model: String, needed: String)
    case noImageInput(model: String)
    case labelsMismatch(model: String, labels: Int, classes: Int)
    case invalidGraph(model: String, detail: String)

    public var description: String {
        switch self {
        case let .missingDescription(model, needed):
            return "\(model) does not say \(needed): put a JSON description beside it (\((model as NSString).deletingPathExtension).json, the format of the shared models) or use a model exported by dream"
        case let .noImageInput(model):
            return "\(model) has no 4-D image input"
        case let .invalidGraph(model, detail):
            return "\(model): \(detail)"
        case let .labelsMismatch(model, labels, classes):
            return "\(model): its labels name \(labels) classes but the network has \(classes) outputs; fix or remove the labels file"
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

    /// A graph built in code (`BenchmarkModels`): the benchmark's description if it has one, no labels; `name` is its
    /// display name.
    public init(graph: Graph, name: String) throws {
        url = URL(fileURLWithPath: name)
        self.graph = graph
        executor = try GraphExecutor(graph: graph)
        modelDescription = BenchmarkModels.description(named: name)
        labels = nil
    }

    public init(url: URL) throws {
        self.url = url
        let graph = try ONNXImporter.load(contentsOf: url)
        self.graph = graph
        do {
            executor = try GraphExecutor(graph: graph)
        } catch let error as ExecutionError {
            // Every operator checks its attributes here: the message says which file it is about.
            throw ModelUseError.invalidGraph(model: url.path, detail: error.description)
        }
        let directory = url.deletingLastPathComponent()
        let stem = url.deletingPathExtension().lastPathComponent
        // The description beside the file, else in the file's metadata, else built in. A description that exists but
        // does not decode or makes no sense is an error naming it, never silently ignored.
        var description: ModelDescription?
        let jsonURL = directory.appendingPathComponent(stem + ".json")
        if FileManager.default.fileExists(atPath: jsonURL.path) {
            try InputFile.requireRegular(jsonURL.path, shown: jsonURL.path)
            let data: Data
            do { data = try Data(contentsOf: jsonURL) } catch {
                throw FileProblem(jsonURL.path, "cannot read (\(plainReason(error)))")
            }
            description = try Self.decodeDescription(data, file: jsonURL.path)
        }
        if description == nil, let json = graph.metadata[MetadataKeys.description] {
            description = try Self.decodeDescription(Data(json.utf8), file: "\(url.path) (metadata \(MetadataKeys.description))")
        }
        if description == nil { description = KnownModels.builtInDescription(forFileName: url.lastPathComponent) }
        modelDescription = description
        if let text = graph.metadata[MetadataKeys.labels] {
            labels = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        } else if let file = description?.labels {
            // The labels path comes from a file: it must name a file inside the model's folder.
            let labelsURL = try ContainedPath.resolve(file, inside: directory, what: "labels file")
            if FileManager.default.fileExists(atPath: labelsURL.path) {
                try InputFile.requireRegular(labelsURL.path, shown: labelsURL.path)
                guard let text = try? String(contentsOf: labelsURL, encoding: .utf8) else {
                    throw FileProblem(labelsURL.path, "the labels file is not UTF-8 text")
                }
                labels = text.split(separator: "\n").map { String($0).trimmingCharacters(in: .whitespaces) }
            } else {
                labels = nil
            }
        } else {
            labels = nil
        }
    }

    /// Decodes and validates a JSON model description; errors name `file`.
    static func decodeDescription(_ data: Data, file: String) throws -> ModelDescription {
        let decoded: ModelDescription
        do {
            decoded = try ModelDescription(json: data)
        } catch let error as DecodingError {
            throw ModelDescriptionError(file: file, reason: Self.explain(error))
        } catch {
            throw ModelDescriptionError(file: file, reason: "not valid JSON")
        }
        return try decoded.validated(file: file)
    }

    static func explain(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .dataCorrupted(let c): return "not valid JSON" + (c.codingPath.isEmpty ? "" : " at \(path(c))")
        case .keyNotFound(let key, let c): return "missing field '\((c.codingPath.map(\.stringValue) + [key.stringValue]).joined(separator: "."))'"
        case .typeMismatch(_, let c), .valueNotFound(_, let c): return "field '\(path(c))' has the wrong type"
        @unknown default: return "not a model description"
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
        // A declared size is only a hint from the file: one beyond any real image (10^9) is ignored.
        if let shape = graph.inputs.first?.shape, shape.count == 4, let h = shape[2], let w = shape[3],
           (1...ModelDescription.maxSide).contains(h), (1...ModelDescription.maxSide).contains(w) { return [h, w] }
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
