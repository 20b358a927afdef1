import ArgumentParser
import Foundation
import Imaging
import Inspection
import Models
import Network
import SafeIO
import Tensors

struct FeaturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "features",
        abstract: "Show what layers see: one picture per channel, channel grids, overlays, raw activations.",
        discussion: """
        For each layer: OUT/<layer>/c0007.png per channel (nearest-neighbour upscaled; viridis for non-negative \
        maps, blue-white-red centred on 0 for signed ones; one scale per channel unless --normalize layer) and \
        OUT/<layer>/grid.png with every channel (or the --top K most active) and its number. --all-layers walks \
        every Conv, Concat and pooling output (grids only, unless --channel-images) and writes OUT/index.html with \
        the input, the layer table and every grid: open it from the folder in any browser.

        The image is resized and centre-cropped as for classification (GoogLeNet: 256, then 224x224); --size N \
        works at NxN, --size original keeps the image's own size.

        Examples:
          dream features photo.jpg --layer inception_3b_output -o maps/
          dream features photo.jpg --all-layers -o maps/
          dream features photo.jpg --layer conv2_3x3 --top 16 --sort
          dream features photo.jpg --layer conv1 --layer pool1 --channels 3,18,97
          dream features photo.jpg --layer inception_4c_output --npy acts.npy
          dream features photo.jpg --layer inception_4c_output --overlay --channel 97
          dream features --input-npy x.npy --layer inception_3b_output --npy acts.npy
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: ArgumentHelp("The image (PNG or JPEG); not needed with --input-npy.", valueName: "image"))
    var image: String?

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp(
        "Layer to show: node name, output name or a unique abbreviation (repeatable; `dream layers` lists them).", valueName: "layer"))
    var layer: [String] = []

    @Flag(name: .customLong("all-layers"), help: "Every Conv, Concat and pooling output, plus index.html.")
    var allLayers = false

    @Option(name: [.short, .long], help: ArgumentHelp("Output folder (default: IMAGE-features beside the image, or ./features).", valueName: "dir"))
    var output: String?

    @Option(name: .long, parsing: .unconditional, help: "Only the K channels with the highest mean activation.")
    var top: Int?

    @Option(name: .long, help: ArgumentHelp(
        "These channels of every layer, in this order (instead of all, or of --top, which ranks each layer anew).",
        valueName: "c1,c2,..."))
    var channels: ChannelList?

    @Flag(name: .long, help: "Order grids by mean activation, highest first (default: channel number).")
    var sort = false

    @Option(name: .long, help: ArgumentHelp("One colour scale per channel or per layer.", valueName: "channel|layer"))
    var normalize: FeatureNormalization = .channel

    @Flag(name: .customLong("channel-images"), inversion: .prefixedNo,
          help: "One PNG per channel (default: yes for --layer, no for --all-layers).")
    var channelImages: Bool?

    @Flag(name: .long, help: "Blend the layer's mean activation (or --channel) over the photo.")
    var overlay = false

    @Option(name: .long, parsing: .unconditional, help: "The channel --overlay shows (default: the mean over channels).")
    var channel: Int?

    @Option(name: .long, help: ArgumentHelp("Write the layer's raw activations as a NumPy file.", valueName: "file.npy"))
    var npy: String?

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Working size: N for NxN (resize + centre crop), or 'original'.", valueName: "N|original"))
    var size: WorkingSize?

    @Option(name: .customLong("input-npy"), help: ArgumentHelp("Feed this preprocessed [1,3,H,W] tensor instead of an image.", valueName: "file.npy"))
    var inputNpy: String?

    @Flag(name: [.short, .long], help: "No notes on stderr.")
    var quiet = false

    func validate() throws {
        if image == nil && inputNpy == nil { throw ValidationError("give an image, or --input-npy FILE") }
        if image != nil && inputNpy != nil { throw ValidationError("give an image or --input-npy, not both") }
        if layer.isEmpty && !allLayers { throw ValidationError("choose --layer NAME (see `dream layers`) or --all-layers") }
        if !layer.isEmpty && allLayers { throw ValidationError("--layer and --all-layers do not go together") }
        if let top { try OptionCheck.range(top, "--top", 1...Int.max) }
        if let size, case .square(let n) = size { try OptionCheck.range(n, "--size", 1...8192) }
        if top != nil && channels != nil { throw ValidationError("--top and --channels both choose channels: give one") }
        if size != nil && inputNpy != nil { throw ValidationError("--size does not apply to --input-npy (the tensor has its own size)") }
        if let channel { try OptionCheck.range(channel, "--channel", 0...Int.max) }
        if channel != nil && !overlay { throw ValidationError("--channel chooses the channel of --overlay; add --overlay") }
        if npy != nil && (allLayers || layer.count != 1) { throw ValidationError("--npy writes one layer: give a single --layer") }
        if let npy { try OptionCheck.outputFile(npy, option: "--npy", inputs: [image, inputNpy, modelOptions.model], imageFormat: false) }
        if let output, FileManager.default.fileExists(atPath: output) {
            var isDirectory: ObjCBool = false
            FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory)
            if !isDirectory.boolValue { throw ValidationError("-o \(TerminalText.escaped(output)): exists and is not a folder") }
        }
    }

    func run() throws {
        Console.quiet = quiet
        let model = try modelOptions.load()
        let input: FeatureInput
        let folder: URL
        if let inputNpy {
            guard let tensor = try NumPyFile.read(contentsOf: URL(fileURLWithPath: inputNpy)).floatTensor else {
                throw ValidationError("\(inputNpy) holds integers; the network input is float32")
            }
            input = try model.featureInput(tensor: tensor)
            folder = URL(fileURLWithPath: output ?? "features", isDirectory: true)
        } else {
            let url = URL(fileURLWithPath: image!)
            input = try model.featureInput(image: try ImageFile.read(url), size: size ?? .modelDefault)
            folder = URL(fileURLWithPath: output ?? url.deletingPathExtension().path + "-features", isDirectory: true)
        }
        // All or nothing: every file is written into a temporary folder beside the output folder, which is renamed
        // (or merged) into place only once everything succeeded; an error or Ctrl-C leaves nothing behind.
        let staged: AtomicDirectory
        do { staged = try AtomicDirectory(target: folder) } catch let problem as FileProblem { throw ValidationError(problem.description) }
        var request = FeatureRequest(outputDirectory: staged.staging)
        request.layers = layer
        request.allLayers = allLayers
        request.top = top
        request.channels = channels?.channels
        request.sortByMean = sort
        request.normalization = normalize
        request.channelImages = channelImages
        request.overlay = overlay
        request.overlayChannel = channel
        request.npy = npy.map { URL(fileURLWithPath: $0) }
        let result: FeatureExportResult
        do {
            result = try FeatureExport.run(model: model, input: input, request: request)
        } catch let error as ExecutionError {
            staged.discard()
            if case .unknownValue = error { throw LayerNameError(message: error.description + " (`dream layers` lists every layer)") }
            throw error
        } catch let error as FeatureError {
            staged.discard()
            if case .channelOutOfRange = error { throw ValidationError(error.description) }
            throw error
        }
        try staged.commit(protecting: [image, inputNpy, modelOptions.model].compactMap { $0 })
        for layer in result.layers {
            let shape = "[" + layer.shape.map(String.init).joined(separator: ",") + "]"
            let pictures = layer.channelImages > 0 ? "\(layer.channelImages) channel PNGs + grid" : "grid"
            Console.status("wrote \(folder.appendingPathComponent(layer.folder).path)/  \(layer.layer) \(shape): \(pictures)"
                           + (layer.overlay != nil ? " + overlay" : ""))
        }
        if let npy = result.npy { Console.status("wrote \(npy.path)  \(result.layers[0].layer) \(result.layers[0].shape)") }
        if let index = result.index { Console.status("wrote \(index.path)") }
    }
}

/// An unknown layer name, with the close matches, as one line.
struct LayerNameError: Error, CustomStringConvertible, LocalizedError {
    var message: String
    var description: String { message }
    var errorDescription: String? { message }
}

extension FeatureNormalization: ExpressibleByArgument {}

/// `3,18,97`: channel numbers, each at least 0, none repeated.
struct ChannelList: ExpressibleByArgument {
    var channels: [Int]

    init?(argument: String) {
        var channels: [Int] = []
        for item in argument.split(separator: ",", omittingEmptySubsequences: false) {
            guard let c = Int(item.trimmingCharacters(in: .whitespaces)), c >= 0, !channels.contains(c) else { return nil }
            channels.append(c)
        }
        guard !channels.isEmpty else { return nil }
        self.channels = channels
    }
}

extension WorkingSize: ExpressibleByArgument {
    /// A positive number of pixels or "original"; anything else is a usage error naming --size.
    public init?(argument: String) { self.init(parsing: argument) }
}
