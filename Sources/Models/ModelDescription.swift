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
