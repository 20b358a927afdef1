import Foundation
import Imaging

/// What a model file does not say about itself: preprocessing, labels, good dream layers, the classifier's input.
/// Read from the JSON beside the model (the format of ../shared/models/*.json), from the ONNX `metadata_props`
/// key `dream.description`, or built in for known public files.
public struct ModelDescription: Codable, Equatable {
    /// The `input` object: the input's name and sizes, and (in the same flat object) the `Preprocessing` fields
    /// channel_order, pixel_range, mean, std, resize_shorter and crop.
    public struct Input: Codable, Equatable {
        public var name: String?
        public var defaultSize: [Int]?
        /// The classifier's smallest input [height, width]; kept so that descriptions round-trip.
        public var minSize: [Int]?
        public var preprocessing: Preprocessing

        enum CodingKeys: String, CodingKey {
            case name
            case defaultSize = "default_size", minSize = "min_size"
        }

        public init(name: String?, defaultSize: [Int]?, minSize: [Int]?, preprocessing: Preprocessing) {
            self.name = name; self.defaultSize = defaultSize; self.minSize = minSize; self.preprocessing = preprocessing
        }

        public init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            name = try container.decodeIfPresent(String.self, forKey: .name)
            defaultSize = try container.decodeIfPresent([Int].self, forKey: .defaultSize)
            minSize = try container.decodeIfPresent([Int].self, forKey: .minSize)
            preprocessing = try Preprocessing(from: decoder)
        }

        public func encode(to encoder: Encoder) throws {
            try preprocessing.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encodeIfPresent(name, forKey: .name)
            try container.encodeIfPresent(defaultSize, forKey: .defaultSize)
            try container.encodeIfPresent(minSize, forKey: .minSize)
        }
    }

    public struct FeatureVector: Codable, Equatable {
        public var tensor: String
        public init(tensor: String) { self.tensor = tensor }
    }

    public var architecture: String?
    public var input: Input
    /// Output names of the classifier: "logits" (pre-softmax) and/or "prob".
    public var outputs: [String: [Int]]?
    /// File name of the labels (one per line, class-index order), beside the description.
    public var labels: String?
    public var deepdreamLayers: [String]?
    public var featureVector: FeatureVector?

    enum CodingKeys: String, CodingKey {
        case architecture, input, outputs, labels
        case deepdreamLayers = "deepdream_layers"
        case featureVector = "feature_vector_for_transfer_learning"
    }

    public init(architecture: String?, input: Input, outputs: [String: [Int]]?, labels: String?,
                deepdreamLayers: [String]?, featureVector: FeatureVector?) {
        self.architecture = architecture; self.input = input; self.outputs = outputs; self.labels = labels
        self.deepdreamLayers = deepdreamLayers; self.featureVector = featureVector
    }

    public init(json: Data) throws {
        self = try JSONDecoder().decode(ModelDescription.self, from: json)
    }

    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    /// The classic dream layer: the middle of the listed ones (for GoogLeNet, inception_4c_output).
    public var defaultDreamLayer: String? {
        guard let layers = deepdreamLayers, !layers.isEmpty else { return nil }
        if let classic = layers.first(where: { $0.hasPrefix("inception_4c") || $0.hasPrefix("inception_4c/") }) { return classic }
        return layers[layers.count / 2]
    }
}

/// Keys of `metadata_props` in the ONNX files dream writes (self-describing models).
public enum MetadataKeys {
    public static let description = "dream.description"
    public static let labels = "dream.labels"
    /// The activation of a head trained by dream finetune: "softmax", "sigmoid" or "linear".
    public static let head = "dream.head"
}

/// A model description that breaks a rule dream relies on; names the file and the field.
public struct ModelDescriptionError: Error, LocalizedError, CustomStringConvertible, Equatable {
    public var file: String
    public var reason: String
    public var description: String { "\(file): invalid model description: \(reason)" }
    public var errorDescription: String? { description }
}

extension ModelDescription {
    /// Largest image side a description may ask for (resize, crop, default and minimum sizes).
    public static let maxSide = 16384

    /// The description if every field makes sense, else an error naming `file` and the field (the channel order is
    /// checked when the description is decoded): a finite increasing pixel range, 1 or 3 finite means and positive finite stds, sizes of 1...16384.
    /// A description read from a file is untrusted: without these checks a zero std gives "-nan%" and a size of
    /// 10^9 asks for exabytes.
    public func validated(file: String) throws -> ModelDescription {
        func bad(_ reason: String) -> ModelDescriptionError { ModelDescriptionError(file: file, reason: reason) }
        let p = input.preprocessing
        guard p.pixelRange.count == 2, p.pixelRange.allSatisfy(\.isFinite), p.pixelRange[0] < p.pixelRange[1] else {
            throw bad("input.pixel_range must be two finite numbers [low, high] with low < high, not \(p.pixelRange)")
        }
        guard p.mean.count == 3 || p.mean.count == 1, p.mean.allSatisfy(\.isFinite) else {
            throw bad("input.mean must hold 1 or 3 finite numbers (one per channel), not \(p.mean)")
        }
        guard p.std.count == 3 || p.std.count == 1, p.std.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw bad("input.std must hold 1 or 3 finite numbers greater than 0, not \(p.std)")
        }
        func side(_ v: Int, _ field: String) throws {
            guard v >= 1 && v <= Self.maxSide else { throw bad("\(field) must be from 1 to \(Self.maxSide) pixels, not \(v)") }
        }
        for (field, value) in [("input.default_size", input.defaultSize), ("input.min_size", input.minSize), ("input.crop", p.crop)] {
            guard let value else { continue }
            guard value.count == 2 else { throw bad("\(field) must be [height, width], not \(value)") }
            for v in value { try side(v, field) }
        }
        if let r = p.resizeShorter { try side(r, "input.resize_shorter") }
        if let labels, labels.isEmpty { throw bad("labels is empty") }
        return self
    }
}
