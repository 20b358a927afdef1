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
        works at NxN, --size original keeps the image's own size (--max-side N shrinks it first). A run whose \
        estimated memory exceeds --max-memory is refused before it starts, with a --max-side that fits.

        Several images: OUT/<image name>/ for each. Raw activations: --npz FILE (one array per layer, for \
        numpy.load) or --npy DIR (one LAYER.npy per layer; --npy FILE.npy for a single layer); with several \
        images each array gets a batch dimension, [N, C, H, W] in the order given (one working size needed).

        Examples:
          dream features photo.jpg --layer inception_3b_output -o maps/
          dream features photo.jpg --all-layers -o maps/
          dream features photo.jpg --layer conv2_3x3 --top 16 --sort
          dream features photo.jpg --layer conv1 --layer pool1 --channels 3,18,97
          dream features photo.jpg --layer inception_4c_output --npy acts.npy
          dream features a.jpg b.jpg --layer conv2_3x3 --layer conv5 \\
            --npz acts.npz
          dream features big.jpg --size original --max-side 2000 --layer conv5
          dream features photo.jpg --layer inception_4c_output --overlay --channel 97
          dream features --input-npy x.npy --layer inception_3b_output --npy acts.npy
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: ArgumentHelp("The images (PNG or JPEG); not needed with --input-npy.", valueName: "image"))
    var images: [String] = []

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

    @Option(name: .long, help: ArgumentHelp("Raw activations: DIR with one LAYER.npy per layer, or FILE.npy for one layer.",
                                            valueName: "dir|file.npy"))
    var npy: String?

    @Option(name: .long, help: ArgumentHelp("Raw activations of every layer in one NumPy archive (numpy.load).", valueName: "file.npz"))
    var npz: String?

    @Option(name: .customLong("max-side"), parsing: .unconditional, help: ArgumentHelp("Shrink each image first so that its longer side is at most N pixels.", valueName: "N"))
    var maxSide: Int?

    @Option(name: .customLong("max-memory"), parsing: .unconditional, help: ArgumentHelp("Refuse runs estimated to need more than this many GB.", valueName: "GB"))
    var maxMemory: Double = 2

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Working size: N for NxN (resize + centre crop), or 'original'.", valueName: "N|original"))
    var size: WorkingSize?

    @Option(name: .customLong("input-npy"), help: ArgumentHelp("Feed this preprocessed [1,3,H,W] tensor instead of an image.", valueName: "file.npy"))
    var inputNpy: String?

    @Flag(name: [.short, .long], help: "No notes on stderr.")
    var quiet = false

    func validate() throws {
        if images.isEmpty && inputNpy == nil { throw ValidationError("give an image, or --input-npy FILE") }
        if !images.isEmpty && inputNpy != nil { throw ValidationError("give images or --input-npy, not both") }
        if layer.isEmpty && !allLayers { throw ValidationError("choose --layer NAME (see `dream layers`) or --all-layers") }
        if !layer.isEmpty && allLayers { throw ValidationError("--layer and --all-layers do not go together") }
        if let top { try OptionCheck.range(top, "--top", 1...Int.max) }
        if let size, case .square(let n) = size { try OptionCheck.range(n, "--size", 1...8192) }
        if top != nil && channels != nil { throw ValidationError("--top and --channels both choose channels: give one") }
        if size != nil && inputNpy != nil { throw ValidationError("--size does not apply to --input-npy (the tensor has its own size)") }
        if let channel { try OptionCheck.range(channel, "--channel", 0...Int.max) }
        if channel != nil && !overlay { throw ValidationError("--channel chooses the channel of --overlay; add --overlay") }
        if let npy, npy.lowercased().hasSuffix(".npy") && (allLayers || layer.count != 1) {
            throw ValidationError("--npy FILE.npy writes one layer: give a single --layer, or a folder for several")
        }
        let inputs = images + [inputNpy, modelOptions.model].compactMap { $0 }
        if let npy {
            // FILE.npy, or a folder; an existing file is never a folder to write into (and may be an input).
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: npy, isDirectory: &isDirectory)
            if npy.lowercased().hasSuffix(".npy") || (exists && !isDirectory.boolValue) {
                try OptionCheck.outputFile(npy, option: "--npy", inputs: inputs, imageFormat: false)
            }
        }
        if let npz {
            guard npz.lowercased().hasSuffix(".npz") else { throw ValidationError("--npz names a .npz file") }
            try OptionCheck.outputFile(npz, option: "--npz", inputs: inputs, imageFormat: false)
        }
        if let output, FileManager.default.fileExists(atPath: output) {
            var isDirectory: ObjCBool = false
            FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory)
            if !isDirectory.boolValue { throw ValidationError("-o \(TerminalText.escaped(output)): exists and is not a folder") }
        }
        if let maxSide { try OptionCheck.range(maxSide, "--max-side", 32...65536) }
        if !(maxMemory > 0) || !maxMemory.isFinite { throw ValidationError("--max-memory must be a positive number of GB") }
        if maxSide != nil && inputNpy != nil { throw ValidationError("--max-side does not apply to --input-npy") }
    }

    func run() throws {
        Console.quiet = quiet
        let model = try modelOptions.load()
        var request = FeatureRequest(outputDirectory: URL(fileURLWithPath: "features"))
        request.layers = layer
        request.allLayers = allLayers
        request.top = top
        request.channels = channels?.channels
        request.sortByMean = sort
        request.normalization = normalize
        request.channelImages = channelImages
        request.overlay = overlay
        request.overlayChannel = channel
        request.keepActivations = npy != nil || npz != nil
        var perImage: [[(layer: String, tensor: Tensor)]] = []
        var names: [String] = []
        if let inputNpy {
            guard let tensor = try NumPyFile.read(contentsOf: URL(fileURLWithPath: inputNpy)).floatTensor else {
                throw ValidationError("\(inputNpy) holds integers; the network input is float32")
            }
            request.outputDirectory = URL(fileURLWithPath: output ?? "features", isDirectory: true)
            perImage.append(try export(model: model, input: try model.featureInput(tensor: tensor), request: request))
            names.append(inputNpy)
        } else {
            let urls = images.map { URL(fileURLWithPath: $0) }
            let folders = Self.subfolderNames(urls)
            for (url, sub) in zip(urls, folders) {
                if images.count == 1 {
                    request.outputDirectory = URL(fileURLWithPath: output ?? url.deletingPathExtension().path + "-features", isDirectory: true)
                } else {
                    request.outputDirectory = URL(fileURLWithPath: output ?? "features", isDirectory: true).appendingPathComponent(sub, isDirectory: true)
                }
                var picture = try ImageFile.read(url)
                if let maxSide, let smaller = picture.limitingLongerSide(to: maxSide) {
                    Console.status("note: shrinking \(url.lastPathComponent) from \(picture.width)x\(picture.height) to \(smaller.width)x\(smaller.height) (--max-side \(maxSide))")
                    picture = smaller
                }
                try checkMemory(model: model, image: picture, name: url.path)
                let input = try model.featureInput(image: picture, size: size ?? .modelDefault)
                picture = RGBImage(width: 0, height: 0, pixels: [])   // the working image is all that is needed now
                perImage.append(try export(model: model, input: input, request: request))
                names.append(url.path)
            }
        }
        guard npy != nil || npz != nil else { return }
        let arrays = try FeatureArrays.stack(perImage, imageNames: names)
        let batch = perImage.count > 1 ? " (batch of \(perImage.count) images, in the order given)" : ""
        if let npz {
            try FeatureArrays.writeArchive(arrays, to: URL(fileURLWithPath: npz))
            Console.status("wrote \(npz)  \(arrays.count) array\(arrays.count == 1 ? "" : "s")\(batch): "
                           + arrays.map { "\($0.key) \($0.value.shape)" }.joined(separator: ", "))
        }
        if let npy {
            if npy.lowercased().hasSuffix(".npy") {
                try NumPyFile.write(arrays[0].value, to: URL(fileURLWithPath: npy))
                Console.status("wrote \(npy)  \(arrays[0].key) \(arrays[0].value.shape)\(batch)")
            } else {
                let files = try FeatureArrays.writeFolder(arrays, to: URL(fileURLWithPath: npy, isDirectory: true))
                for (file, array) in zip(files, arrays) { Console.status("wrote \(file.path)  \(array.key) \(array.value.shape)\(batch)") }
            }
        }
    }

    /// Runs the export for one input and prints what was written; returns the raw activations when kept.
    func export(model: LoadedModel, input: FeatureInput, request: FeatureRequest) throws -> [(layer: String, tensor: Tensor)] {
        let folder = request.outputDirectory
        // All or nothing: every file is written into a temporary folder beside the output folder, which is renamed
        // (or merged) into place only once everything succeeded; an error or Ctrl-C leaves nothing behind.
        let staged: AtomicDirectory
        do { staged = try AtomicDirectory(target: folder) } catch let problem as FileProblem { throw ValidationError(problem.description) }
        var request = request
        request.outputDirectory = staged.staging
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
        } catch {
            staged.discard()
            throw error
        }
        try staged.commit(protecting: images + [inputNpy, modelOptions.model].compactMap { $0 })
        for layer in result.layers {
            let shape = "[" + layer.shape.map(String.init).joined(separator: ",") + "]"
            let pictures = layer.channelImages > 0 ? "\(layer.channelImages) channel PNGs + grid" : "grid"
            Console.status("wrote \(folder.appendingPathComponent(layer.folder).path)/  \(layer.layer) \(shape): \(pictures)"
                           + (layer.overlay != nil ? " + overlay" : ""))
        }
        if let index = result.index { Console.status("wrote \(index.path)") }
        return result.activations
    }

    /// Refuses, before anything image-sized is computed, a run whose estimate exceeds --max-memory.
    func checkMemory(model: LoadedModel, image: RGBImage, name: String) throws {
        let (w, h): (Int, Int)
        switch size ?? .modelDefault {
        case .original: (w, h) = (image.width, image.height)
        case .square(let n): (w, h) = (n, n)
        case .modelDefault: (w, h) = (model.defaultInputSize[1], model.defaultInputSize[0])
        }
        let names = LayerNames(graph: model.graph)
        // Unknown names are reported by the export itself, with close matches.
        guard let layers = allLayers ? FeatureLayers.all(in: model.executor) : try? layer.map({ try names.resolve($0) }) else { return }
        let estimate = try FeatureMemory.estimate(model: model, width: w, height: h, layers: layers)
        let limit = Int(maxMemory * 1e9)
        guard estimate.total > limit else { return }
        let side = FeatureMemory.fittingSide(for: estimate, width: w, height: h, limit: limit)
        throw FeatureMemoryError(message: String(
            format: "%@ at %dx%d would need about %.1f GB (activations %.1f, image and input %.1f, pictures %.1f), more than --max-memory %g: add --max-side %d (or --size N, or raise --max-memory)",
            name, w, h, Double(estimate.total) / 1e9, Double(estimate.forward) / 1e9, Double(estimate.input) / 1e9,
            Double(estimate.rendering) / 1e9, maxMemory, side))
    }

    /// One folder name per image: its file name without extension, made unique.
    static func subfolderNames(_ urls: [URL]) -> [String] {
        var used = Set<String>()
        return urls.map { url in
            let base = url.deletingPathExtension().lastPathComponent
            var name = base, n = 2
            while !used.insert(name).inserted { name = "\(base)-\(n)"; n += 1 }
            return name
        }
    }
}

struct FeatureMemoryError: Error, CustomStringConvertible, LocalizedError {
    var message: String
    var description: String { message }
    var errorDescription: String? { message }
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
