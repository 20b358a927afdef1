import Foundation

/// What a model file does not say about itself: preprocessing, labels, good dream layers, the classifier's input.
/// Read from the JSON beside the model (the format of ../shared/models/*.json), from the ONNX `metadata_props`
/// key `dream.description`, or built in for known public files.
public struct ModelDescription: Codable, Equatable {
    public struct Input: Codable, Equatable {
        public var name: String?
        public var defaultSize: [Int]?
        public var minSize: [Int]?
        public var resizeShorter: Int?
        public var crop: [Int]?
        public var channelOrder: String
        public var pixelRange: [Float]
        public var mean: [Float]
        public var std: [Float]

        enum CodingKeys: String, CodingKey {
            case name, crop, mean, std
            case defaultSize = "default_size", minSize = "min_size", resizeShorter = "resize_shorter"
            case channelOrder = "channel_order", pixelRange = "pixel_range"
        }

        public init(name: String?, defaultSize: [Int]?, minSize: [Int]?, resizeShorter: Int?, crop: [Int]?,
                    channelOrder: String, pixelRange: [Float], mean: [Float], std: [Float]) {
            self.name = name; self.defaultSize = defaultSize; self.minSize = minSize; self.resizeShorter = resizeShorter
            self.crop = crop; self.channelOrder = channelOrder; self.pixelRange = pixelRange; self.mean = mean; self.std = std
        }
    }

    public struct FeatureVector: Codable, Equatable {
        public var tensor: String
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
}

/// A model description that breaks a rule dream relies on; names the file and the field.
public struct ModelDescriptionError: Error, CustomStringConvertible, Equatable {
    public var file: String
    public var reason: String
    public var description: String { "\(file): invalid model description: \(reason)" }
}

extension ModelDescription {
    /// Largest image side a description may ask for (resize, crop, default and minimum sizes).
    public static let maxSide = 16384

    /// The description if every field makes sense, else an error naming `file` and the field: a channel order of RGB
    /// or BGR, a finite increasing pixel range, 1 or 3 finite means and positive finite stds, sizes of 1...16384.
    /// A description read from a file is untrusted: without these checks a zero std gives "-nan%" and a size of
    /// 10^9 asks for exabytes.
    public func validated(file: String) throws -> ModelDescription {
        func bad(_ reason: String) -> ModelDescriptionError { ModelDescriptionError(file: file, reason: reason) }
        let order = input.channelOrder.uppercased()
        guard order == "RGB" || order == "BGR" else { throw bad("input.channel_order is '\(input.channelOrder)'; it must be RGB or BGR") }
        guard input.pixelRange.count == 2, input.pixelRange.allSatisfy(\.isFinite), input.pixelRange[0] < input.pixelRange[1] else {
            throw bad("input.pixel_range must be two finite numbers [low, high] with low < high, not \(input.pixelRange)")
        }
        guard input.mean.count == 3 || input.mean.count == 1, input.mean.allSatisfy(\.isFinite) else {
            throw bad("input.mean must hold 1 or 3 finite numbers (one per channel), not \(input.mean)")
        }
        guard input.std.count == 3 || input.std.count == 1, input.std.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw bad("input.std must hold 1 or 3 finite numbers greater than 0, not \(input.std)")
        }
        func side(_ v: Int, _ field: String) throws {
            guard v >= 1 && v <= Self.maxSide else { throw bad("\(field) must be from 1 to \(Self.maxSide) pixels, not \(v)") }
        }
        for (field, value) in [("input.default_size", input.defaultSize), ("input.min_size", input.minSize), ("input.crop", input.crop)] {
            guard let value else { continue }
            guard value.count == 2 else { throw bad("\(field) must be [height, width], not \(value)") }
            for v in value { try side(v, field) }
        }
        if let r = input.resizeShorter { try side(r, "input.resize_shorter") }
        if let labels, labels.isEmpty { throw bad("labels is empty") }
        return self
    }
}
