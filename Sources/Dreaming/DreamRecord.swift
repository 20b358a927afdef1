import Foundation
import Models

/// The version of dream that writes records (bump with releases).
public enum DreamVersion {
    public static let current = "0.11.0"
}

/// Everything needed to rerun a dream, as stored in its output: PNG text chunks (`dream:*` keys) or, for JPEG, the
/// same keys in a COM segment (see `ImageFile.write(_:to:text:)`). The writer, `dream info` and `dream --from`
/// all go through this type, so the keys have one owner.
public struct DreamRecord: Codable, Equatable {
    /// One objective term, as `DreamLayer` holds it.
    public struct Layer: Codable, Equatable {
        public var name: String
        public var weight: Float
        /// The channels the objective sums over; empty: all of them.
        public var channels: [Int]
        /// `l2` (mean square) or `mean`.
        public var reduction: String
    }

    public var version: String
    /// The input's file name (or "noise").
    public var source: String
    /// What --model said (a known name or a path); nil: the default model.
    public var modelArgument: String?
    /// The model file's name and SHA-256.
    public var model: String
    public var modelSHA256: String
    public var layers: [Layer]
    /// `l2`, `mean` or `guided` (dot product with the guide's features).
    public var objective: String
    /// The octaves that ran (fewer than requested when the image was too small for them).
    public var octaves: Int
    public var octavesRequested: Int
    public var octaveScale: Float
    public var iterations: Int
    public var step: Float
    public var jitter: Int
    public var seed: UInt64
    public var tile: Int
    public var threads: Int
    /// OpenBLAS version, kernel family and threads (`BLASCore.summary`).
    public var blas: String
    /// Whether the portable kernels ran (--portable, or OPENBLAS_CORETYPE naming them): the bytes then do not depend
    /// on the CPU.
    public var portable: Bool
    /// Whether each layer's objective was divided by its value on the octave's start image (--normalize-layers).
    public var normalizeLayers: Bool
    /// The guide image as given on the command line, and its SHA-256.
    public var guide: String?
    public var guideSHA256: String?
    /// --max-side, when the input was downscaled.
    public var maxSide: Int?
    /// The size of the picture written.
    public var width: Int
    public var height: Int

    /// The record of a dream that has just run on an image of `width` x `height`.
    public init(dream: DeepDream, source: String, modelArgument: String?, guide: String?, threads: Int, blas: String,
                portable: Bool, maxSide: Int?, width: Int, height: Int) throws {
        let s = dream.settings
        version = DreamVersion.current
        self.source = source
        self.modelArgument = modelArgument
        model = dream.model.displayName
        modelSHA256 = try SHA256.hexDigest(ofFile: dream.model.url)
        layers = s.layers.map { Layer(name: $0.name, weight: $0.weight, channels: $0.channels, reduction: $0.reduction.rawValue) }
        let reductions = Set(s.layers.map(\.reduction.rawValue))
        objective = guide != nil ? "guided" : (reductions.count == 1 ? reductions.first! : reductions.sorted().joined(separator: ","))
        octaves = dream.octavesUsed ?? s.octaves
        octavesRequested = s.octaves
        octaveScale = s.octaveScale
        iterations = s.iterations
        step = s.step
        jitter = s.jitter
        seed = s.seed
        tile = s.tileSize
        self.threads = threads
        self.blas = blas
        self.portable = portable
        normalizeLayers = s.normalizeLayers
        self.guide = guide
        guideSHA256 = try guide.map { try SHA256.hexDigest(ofFile: URL(fileURLWithPath: $0)) }
        self.maxSide = maxSide
        self.width = width
        self.height = height
    }

    // MARK: Text chunks

    static let prefix = "dream:"

    /// Key/value pairs for PNG text chunks (and the JPEG comment), in a fixed order; `Software` and the older
    /// `dream:settings` / `dream:blas` summaries are kept for tools that read them.
    public var textChunks: [(key: String, value: String)] {
        var pairs: [(String, String)] = [
            ("Software", "dream \(version)"),
            ("dream:version", version),
            ("dream:source", source),
        ]
        if let modelArgument { pairs.append(("dream:model-argument", modelArgument)) }
        pairs += [
            ("dream:model", model),
            ("dream:model-sha256", modelSHA256),
            ("dream:layers", Self.encodeLayers(layers)),
            ("dream:objective", objective),
            ("dream:octaves", String(octaves)),
            ("dream:octaves-requested", String(octavesRequested)),
            ("dream:octave-scale", String(octaveScale)),
            ("dream:iterations", String(iterations)),
            ("dream:step", String(step)),
            ("dream:jitter", String(jitter)),
            ("dream:seed", String(seed)),
            ("dream:tile", String(tile)),
            ("dream:threads", String(threads)),
            ("dream:blas", blas),
            ("dream:portable", portable ? "yes" : "no"),
            ("dream:normalize-layers", normalizeLayers ? "yes" : "no"),
        ]
        if let guide { pairs.append(("dream:guide", guide)) }
        if let guideSHA256 { pairs.append(("dream:guide-sha256", guideSHA256)) }
        if let maxSide { pairs.append(("dream:max-side", String(maxSide))) }
        pairs += [
            ("dream:size", "\(width)x\(height)"),
            ("dream:settings", summary),
        ]
        return pairs
    }

    /// One line in the style of `DreamSettings.summary`.
    public var summary: String {
        settings.summary
    }

    /// Reads a record back from text chunks; nil when the image carries no record at all (no `dream:model-sha256`),
    /// an error naming the key when a record is there but damaged.
    public init?(text: [String: String], file: String) throws {
        guard text["dream:model-sha256"] != nil || text["dream:layers"] != nil else { return nil }
        func string(_ key: String) throws -> String {
            guard let v = text[Self.prefix + key] else { throw DreamRecordError.missing(file: file, key: Self.prefix + key) }
            return v
        }
        func number<T: LosslessStringConvertible>(_ key: String, _: T.Type = T.self) throws -> T {
            let v = try string(key)
            guard let n = T(v) else { throw DreamRecordError.invalid(file: file, key: Self.prefix + key, value: v) }
            return n
        }
        version = try string("version")
        source = try string("source")
        modelArgument = text["dream:model-argument"]
        model = try string("model")
        modelSHA256 = try string("model-sha256")
        let layerText = try string("layers")
        guard let decoded = try? JSONDecoder().decode([Layer].self, from: Data(layerText.utf8)), !decoded.isEmpty else {
            throw DreamRecordError.invalid(file: file, key: "dream:layers", value: layerText)
        }
        layers = decoded
        objective = try string("objective")
        octaves = try number("octaves")
        octavesRequested = try number("octaves-requested")
        octaveScale = try number("octave-scale")
        iterations = try number("iterations")
        step = try number("step")
        jitter = try number("jitter")
        seed = try number("seed")
        tile = try number("tile")
        threads = try number("threads")
        blas = try string("blas")
        portable = try string("portable") == "yes"
        // Records written before the option existed: what the default was for their layers.
        normalizeLayers = text["dream:normalize-layers"].map { $0 == "yes" } ?? (layers.count > 1)
        guide = text["dream:guide"]
        guideSHA256 = text["dream:guide-sha256"]
        maxSide = try text["dream:max-side"].map { _ in try number("max-side", Int.self) }
        let size = try string("size").split(separator: "x").compactMap { Int($0) }
        guard size.count == 2 else { throw DreamRecordError.invalid(file: file, key: "dream:size", value: text["dream:size"] ?? "") }
        width = size[0]
        height = size[1]
    }

    static func encodeLayers(_ layers: [Layer]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(layers)) ?? Data("[]".utf8), as: UTF8.self)
    }

    // MARK: Rerunning

    /// The dream's command line as `dream` options (without the image and -o).
    /// Layers, channel and objective form one group: options given anew replace the whole group.
    public var arguments: [String] {
        var args: [String] = []
        if let modelArgument { args += ["--model", modelArgument] }
        for layer in layers {
            let channels = layer.channels.isEmpty ? "" : ":" + layer.channels.map(String.init).joined(separator: ",")
            args += ["--layer", "\(layer.name):\(layer.weight)\(channels)"]
        }
        if let reduction = Set(layers.map(\.reduction)).first, Set(layers.map(\.reduction)).count == 1,
           reduction != DreamReduction.meanSquare.rawValue {
            args += ["--objective", reduction]
        }
        // The requested count: on the same image the same octaves run again (and the record comes out the same).
        args += ["--octaves", String(octavesRequested), "--octave-scale", String(octaveScale), "--iterations", String(iterations),
                 "--step", String(step), "--jitter", String(jitter), "--seed", String(seed), "--tile", String(tile),
                 "--threads", String(threads)]
        if let guide { args += ["--guide", guide] }
        if let maxSide { args += ["--max-side", String(maxSide)] }
        if portable { args.append("--portable") }
        args.append(normalizeLayers ? "--normalize-layers" : "--no-normalize-layers")
        return args
    }

    /// The recorded settings as a `DreamSettings`.
    public var settings: DreamSettings {
        var s = DreamSettings(layers: layers.map {
            DreamLayer(name: $0.name, weight: $0.weight, channels: $0.channels, reduction: DreamReduction(rawValue: $0.reduction) ?? .meanSquare)
        })
        s.octaves = octaves
        s.octaveScale = octaveScale
        s.iterations = iterations
        s.step = step
        s.jitter = jitter
        s.seed = seed
        s.tileSize = tile
        s.normalizeLayers = normalizeLayers
        return s
    }
}

public enum DreamRecordError: Error, CustomStringConvertible, LocalizedError {
    case missing(file: String, key: String)
    case invalid(file: String, key: String, value: String)

    public var description: String {
        switch self {
        case let .missing(file, key): return "\(file): the dream record lacks '\(key)' (damaged or written by another program)"
        case let .invalid(file, key, value): return "\(file): the dream record's '\(key)' is not valid ('\(value.prefix(80))')"
        }
    }

    public var errorDescription: String? { description }
}
