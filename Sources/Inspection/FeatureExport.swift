import Foundation
import SafeIO
import Imaging
import Models
import Network
import Parallel
import Tensors

/// What `dream features` should write for one image.
public struct FeatureRequest {
    /// Layer names as typed (node name, output name or unique abbreviation); ignored with `allLayers`.
    public var layers: [String] = []
    /// Every Conv / Concat / pooling output (see `FeatureLayers.all`).
    public var allLayers = false
    /// Only the `top` channels with the highest mean activation.
    public var top: Int?
    /// These channels of every layer (instead of all or the top ones), so that layers can be compared channel for channel.
    public var channels: [Int]?
    /// Order grids by mean activation (highest first) instead of channel number.
    public var sortByMean = false
    public var normalization: FeatureNormalization = .channel
    /// One PNG per channel; nil: yes for chosen layers, no with `allLayers` (grids only, to stay fast).
    public var channelImages: Bool?
    /// Blend the layer's mean activation (or `overlayChannel`) over the working image.
    public var overlay = false
    public var overlayChannel: Int?
    /// Raw activations of the (single) layer as a .npy file.
    public var npy: URL?
    /// Return the raw activations in the result (for `.npz` archives and batches of images).
    public var keepActivations = false
    /// index.html with the input, the layer table and every grid; nil: only with `allLayers`.
    public var index: Bool?
    public var outputDirectory: URL

    public init(outputDirectory: URL) { self.outputDirectory = outputDirectory }
}

/// What was written for one layer; paths are relative to the output directory.
public struct LayerFeatureSummary {
    public var layer: String
    public var folder: String
    public var op: String
    public var shape: [Int]
    public var channels: Int
    public var signed: Bool
    public var shownChannels: [Int]
    public var grid: String
    public var overlay: String?
    public var channelImages: Int
    public var maxMean: Float
    public var maximum: Float
    public var minimum: Float
}

/// The outcome of `FeatureExport.run`.
public struct FeatureExportResult {
    public var layers: [LayerFeatureSummary]
    /// Every file written, absolute.
    public var files: [URL]
    public var index: URL?
    public var npy: URL?
    /// The raw activations by layer, in the request's order, when `keepActivations` was set.
    public var activations: [(layer: String, tensor: Tensor)] = []
}

public enum FeatureExportError: Error, CustomStringConvertible, LocalizedError {
    case noLayers
    case npyNeedsOneLayer(count: Int)

    public var description: String {
        switch self {
        case .noLayers: return "no layer chosen: give --layer NAME (see `dream layers`) or --all-layers"
        case .npyNeedsOneLayer(let n): return "--npy writes one layer's activations, but \(n) layers were chosen"
        }
    }

    public var errorDescription: String? { description }
}

/// Computes and writes feature maps: per-channel PNGs, grids, overlays, raw activations and the HTML index.
public enum FeatureExport {
    /// Resolves the request's layers (errors list close matches), runs the network once and writes every file.
    public static func run(model: LoadedModel, input: FeatureInput, request: FeatureRequest) throws -> FeatureExportResult {
        let names = LayerNames(graph: model.graph)
        var layers = request.allLayers ? FeatureLayers.all(in: model.executor) : try request.layers.map { try names.resolve($0) }
        var seen = Set<String>()
        layers = layers.filter { seen.insert($0).inserted }
        guard !layers.isEmpty else { throw FeatureExportError.noLayers }
        if request.npy != nil && layers.count != 1 { throw FeatureExportError.npyNeedsOneLayer(count: layers.count) }

        let activations = try model.activations(for: input, layers: layers)
        if let c = request.overlayChannel, request.overlay {
            for acts in activations where c >= acts.channels {
                throw FeatureError.channelOutOfRange(layer: acts.layer, channel: c, channels: acts.channels)
            }
        }
        for acts in activations {
            for c in request.channels ?? [] where c >= acts.channels {
                throw FeatureError.channelOutOfRange(layer: acts.layer, channel: c, channels: acts.channels)
            }
        }
        let fm = FileManager.default
        let root = request.outputDirectory
        try TemporaryFiles.createFolder(root)
        let folders = FeatureLayers.safeNames(layers)
        var producerOp: [String: String] = [:]
        for node in model.graph.nodes { for out in node.outputs { producerOp[out] = node.opType } }

        var files: [URL] = []
        var summaries: [LayerFeatureSummary] = []
        let writeChannels = request.channelImages ?? !request.allLayers
        for acts in activations {
            let folder = folders[acts.layer]!
            let dir = root.appendingPathComponent(folder, isDirectory: true)
            try TemporaryFiles.createFolder(dir)
            let shown = acts.selectChannels(top: request.top, sortByMean: request.sortByMean, fixed: request.channels)
            if writeChannels { files += try writeChannelImages(acts, channels: shown, normalization: request.normalization, to: dir) }
            let gridURL = dir.appendingPathComponent("grid.png")
            try ImageFile.writePNG(FeatureRendering.grid(acts, channels: shown, normalization: request.normalization), to: gridURL,
                                   text: [("Software", "dream"), ("dream:layer", acts.layer), ("dream:model", model.displayName)])
            files.append(gridURL)
            var overlayName: String?
            if request.overlay {
                let name = request.overlayChannel.map { String(format: "overlay-c%04d.png", $0) } ?? "overlay.png"
                let url = dir.appendingPathComponent(name)
                try ImageFile.writePNG(FeatureRendering.overlay(acts, channel: request.overlayChannel, photo: input.image), to: url)
                files.append(url)
                overlayName = folder + "/" + name
            }
            summaries.append(LayerFeatureSummary(
                layer: acts.layer, folder: folder, op: producerOp[acts.layer] ?? "", shape: acts.tensor.shape,
                channels: acts.channels, signed: acts.isSigned, shownChannels: shown, grid: folder + "/grid.png",
                overlay: overlayName, channelImages: writeChannels ? shown.count : 0, maxMean: acts.means.max() ?? 0,
                maximum: acts.maxima.max() ?? 0, minimum: acts.minima.min() ?? 0))
        }

        var npyURL: URL?
        if let npy = request.npy {
            try NumPyFile.write(.float(activations[0].tensor), to: npy)
            files.append(npy)
            npyURL = npy
        }
        var indexURL: URL?
        if request.index ?? request.allLayers {
            let inputURL = root.appendingPathComponent("input.png")
            try ImageFile.writePNG(input.image, to: inputURL)
            files.append(inputURL)
            let table = try? LayerTable(model: model.displayName, graph: model.graph, executor: model.executor,
                                        inputName: try model.inputName, inputShape: input.tensor.shape, frozen: [])
            let html = FeatureReport.html(model: model.displayName, input: "input.png", inputWidth: input.image.width,
                                          inputHeight: input.image.height, normalization: request.normalization,
                                          table: table, layers: summaries)
            let url = root.appendingPathComponent("index.html")
            try AtomicFile.write(Data(html.utf8), to: url)
            files.append(url)
            indexURL = url
        }
        return FeatureExportResult(layers: summaries, files: files, index: indexURL, npy: npyURL,
                                   activations: request.keepActivations ? activations.map { ($0.layer, $0.tensor) } : [])
    }

    /// One PNG per channel, `c0007.png`, written in parallel.
    static func writeChannelImages(_ acts: LayerActivations, channels: [Int], normalization: FeatureNormalization,
                                   to dir: URL) throws -> [URL] {
        let urls = channels.map { dir.appendingPathComponent(String(format: "c%04d.png", $0)) }
        final class FirstError: @unchecked Sendable {
            let lock = NSLock()
            var error: Error?
            func record(_ e: Error) { lock.lock(); if error == nil { error = e }; lock.unlock() }
        }
        let failure = FirstError()
        parallelFor(channels.count) { i in
            let image = FeatureRendering.channelImage(acts, channel: channels[i], normalization: normalization)
            do { try ImageFile.writePNG(image, to: urls[i]) } catch { failure.record(error) }
        }
        if let error = failure.error { throw error }
        return urls
    }
}
