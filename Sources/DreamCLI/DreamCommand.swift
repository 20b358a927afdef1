import ArgumentParser
import Dreaming
import Foundation
import Imaging
import Models
import Parallel
import SafeIO
import Tensors

/// Options shared by `dream IMAGE` and `dream noise`.
struct DreamOptions: ParsableArguments {
    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp(
        "Layer to amplify, optionally with a weight and channels: NAME, NAME:WEIGHT or NAME:WEIGHT:C1,C2 (repeatable; default: the model's classic layer, inception_4c_output for GoogLeNet). `dream layers` lists the names; conv3, pool2 (the model's 3rd convolution, 2nd pooling) and unique abbreviations work.",
        valueName: "layer[:weight[:channels]]"))
    var layer: [String] = []

    @Option(name: .long, parsing: .unconditional, help: "Amplify only this channel of the (single) layer.")
    var channel: Int?

    @Option(name: .long, help: ArgumentHelp("Dream towards a class: maximise its logit (linearly); an index or a label such as \"tabby cat\".",
                                            valueName: "index|label"))
    var `class`: String?

    @Option(name: .long, help: ArgumentHelp("l2: the mean square of the activations (DeepDream); mean: their mean (linear, the default for --class).",
                                            valueName: "l2|mean"))
    var objective: DreamReduction?

    @Option(name: .long, parsing: .unconditional, help: "Image pyramid levels, smallest first.")
    var octaves = DreamSettings.defaults.octaves

    @Option(name: .customLong("octave-scale"), parsing: .unconditional, help: "Size ratio between octaves.")
    var octaveScale = DreamSettings.defaults.octaveScale

    @Option(name: .long, parsing: .unconditional, help: "Gradient-ascent steps per octave.")
    var iterations = DreamSettings.defaults.iterations

    @Option(name: .long, parsing: .unconditional, help: "Step size on the 0–255 pixel scale (gradient normalised by its mean absolute value).")
    var step = DreamSettings.defaults.step

    @Option(name: .long, parsing: .unconditional, help: "Random shift (pixels) before each step, against grid artefacts.")
    var jitter = DreamSettings.defaults.jitter

    @Option(name: .long, parsing: .unconditional, help: "Random seed: the same seed gives the same picture on the same machine and --threads (see --portable).")
    var seed = DreamSettings.defaults.seed

    @Option(name: .long, parsing: .unconditional, help: "Tile size (pixels): larger images have their gradient computed tile by tile, bounding memory.")
    var tile = DreamSettings.defaults.tileSize

    @Option(name: .long, help: "Guide image: dream towards the features this image excites.")
    var guide: String?

    @Option(name: [.short, .long], help: "Output file (.png or .jpg).")
    var output: String?

    @Flag(name: [.short, .long], help: "No progress display.")
    var quiet = false

    @Flag(name: .customLong("normalize-layers"), inversion: .prefixedNo, help: ArgumentHelp(
        "Divide each layer's objective by its value on the octave's start image, so that layers pull comparably (default: on with several --layer, off with one).",
        discussion: "Layers' mean squares can differ greatly (by model, depth, pre-ReLU or not): without it, the largest dominates. As neural-dream's -normalize_weights."))
    var normalizeLayers: Bool?

    @Option(name: .long, help: ArgumentHelp(
        "Progress on stderr: a bar, one line per octave, or none (auto: a bar on a terminal, lines otherwise; -q: none).",
        valueName: "auto|bar|lines|none"))
    var progress: ProgressMode = .auto

    @Option(name: .long, help: ArgumentHelp(
        "Write the objective of every step as CSV: octave, iteration, objective, step_seconds (and each layer's own term when there are several).",
        valueName: "file.csv"))
    var trace: String?

    @Option(name: .customLong("trace-plot"), help: ArgumentHelp("Plot the objective of every step (one line per octave) as PNG.",
                                                                valueName: "file.png"))
    var tracePlot: String?

    @Flag(name: .long, help: ArgumentHelp(
        "Use OpenBLAS's SSE3 kernels and our baseline SIMD kernels, which every x86-64 CPU runs, so that the same seed, --threads and dream build give the same bytes on any machine (about 2x slower per step).",
        discussion: "Without it, the same seed gives the same bytes on the same machine, build, thread count, OpenBLAS kernels and SIMD level, which the PNG records."))
    var portable = false

    func validate() throws {
        try OptionCheck.range(octaves, "--octaves", 1...20)
        try OptionCheck.number(octaveScale, "--octave-scale", above: 1, atMost: 10)
        try OptionCheck.range(iterations, "--iterations", 1...1000)
        try OptionCheck.number(step, "--step", above: 0, atMost: 1000)
        try OptionCheck.range(jitter, "--jitter", 0...4096)
        try OptionCheck.range(tile, "--tile", 64...8192)
        if let channel { try OptionCheck.range(channel, "--channel", 0...Int.max) }
        if channel != nil && layer.count > 1 { throw ValidationError("--channel goes with a single --layer") }
        if `class` != nil && (!layer.isEmpty || channel != nil || guide != nil) {
            throw ValidationError("--class replaces --layer, --channel and --guide: give one or the other")
        }
        for spec in layer {
            do { _ = try DreamLayer(parsing: spec) } catch { throw ValidationError(String(describing: error)) }
        }
        // -o is checked by each command before its work: an image file for dream and noise, a folder for zoom.
    }

    /// Builds the dream for a model: layers resolved, guide loaded.
    func makeDream(model: LoadedModel) throws -> DeepDream {
        var layers = try layer.map { try DreamLayer(parsing: $0) }
        if let query = `class` {
            layers = [DreamLayer(name: model.classifierOutput.name, channel: try model.classIndex(for: query), reduction: .mean)]
        }
        if layers.isEmpty {
            guard let name = model.defaultDreamLayer else {
                throw ValidationError("\(model.displayName) names no default dream layer: choose one with --layer (see `dream layers`)")
            }
            layers = [DreamLayer(name: name)]
        }
        if let channel {
            if !layers[0].channels.isEmpty { throw ValidationError("give channels in --layer NAME:WEIGHT:CHANNELS or with --channel, not both") }
            layers[0].channel = channel
        }
        if let objective { for i in layers.indices { layers[i].reduction = objective } }
        var settings = DreamSettings(layers: layers)
        settings.octaves = octaves
        settings.octaveScale = octaveScale
        settings.iterations = iterations
        settings.step = step
        settings.jitter = jitter
        settings.seed = seed
        settings.tileSize = tile
        settings.normalizeLayers = normalizeLayers ?? (layers.count > 1)
        let dream = try DeepDream(model: model, settings: settings)
        if let guide { try dream.setGuide(try ImageFile.read(URL(fileURLWithPath: guide))) }
        return dream
    }

    /// The progress display (and trace) that --progress, -q and --trace ask for.
    func reporter(for dream: DeepDream) -> DreamReporter {
        DreamReporter(requested: progress, quiet: quiet, tracing: trace != nil || tracePlot != nil,
                      layers: dream.settings.layers.map(\.description))
    }

    /// Runs the dream with its progress on stderr (see --progress) and writes the result (and the trace).
    /// `modelArgument` and `maxSide` go into the output's record (with everything else needed to rerun it).
    func run(_ dream: DeepDream, on image: RGBImage, source: String, to outputURL: URL, modelArgument: String?,
             maxSide: Int? = nil) throws {
        let reporter = reporter(for: dream)
        let result: RGBImage
        do {
            result = try dream.dream(image) { reporter.update($0) }
        } catch let error as DreamError {
            // A channel the layer does not have is a usage error, as in `features` (the layer's size is known only now).
            reporter.finish()
            guard case let .channelOutOfRange(layer, channel, channels) = error else { throw error }
            throw ValidationError("--channel \(channel) is out of range: \(layer) has \(channels) channels (0…\(max(0, channels - 1)))")
        }
        reporter.finish()
        try reporter.writeTrace(csv: trace, plot: tracePlot)
        for note in dream.notes { Console.status("note: \(note)") }
        let record = try DreamRecord(dream: dream, source: source, modelArgument: modelArgument, guide: guide,
                                     threads: Threading.threadCount, blas: BLASCore.summary,
                                     portable: BLASCore.recommendedOverride(portable: true) == nil && SIMDLevel.current == .portable,
                                     maxSide: maxSide, width: result.width, height: result.height)
        try ImageFile.write(result, to: outputURL, text: record.textChunks)
        Console.status("wrote \(outputURL.path) (\(result.width)x\(result.height), \(dream.settings.layers.map(\.description).joined(separator: ", ")), seed \(dream.settings.seed))")
    }
}

struct DreamCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dream",
        abstract: "DeepDream an image: amplify what a layer sees (the default command).",
        discussion: """
        Gradient ascent on the image to increase the mean squared activation of the chosen layer(s), over an image \
        pyramid (octaves), with random jitter; defaults follow the original DeepDream notebook. The result keeps the \
        input's size and is written beside it as NAME-dream.png unless -o says otherwise; its PNG text chunks record \
        the settings and seed.

        Layers: any name `dream layers` shows, a unique abbreviation, or an ordinal: conv1, conv2, … are the \
        model's convolutions in graph order (a convolution followed by its ReLU stands for the ReLU's output, as in \
        Caffe and Keras), pool1, pool2, … its max and average pools (global pools are not counted). A real name \
        always wins over an ordinal. With several --layer, each layer's objective is divided by its value on the \
        octave's start image (--normalize-layers, on by default then), so that each pulls comparably.

        Progress goes to stderr: a bar on a terminal, one line per octave otherwise (logs, notebooks); --trace \
        keeps the objective of every step as CSV.

        Examples:
          dream photo.jpg
          dream photo.jpg --layer conv3 -o out.png
          dream photo.jpg --layer inception_4c_output:1 \\
                --layer inception_3b_output:0.5 --octaves 5 --seed 7 -o out.png
          dream photo.jpg --layer inception_4c_output:1:97,130 --layer conv2_3x3:0.5
          dream photo.jpg --layer inception_4d_output --channel 97
          dream photo.jpg --progress lines --trace trace.csv --trace-plot trace.png
          dream photo.jpg --layer inception_4c_output --guide flowers.jpg
          dream photo.jpg --class "tabby cat"
          dream photo.jpg --layer inception_4c_output --channel 97 --objective mean
        """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var options: DreamOptions

    @Argument(help: ArgumentHelp("The image to dream on (PNG or JPEG).", valueName: "image"))
    var image: String

    @Option(name: .long, help: ArgumentHelp(
        "Rerun the settings recorded in a dream's output (PNG or JPEG; `dream info` shows them) on this image; options given as well override the recorded ones.",
        valueName: "dream.png"))
    var from: String?

    @Option(name: .customLong("max-side"), help: ArgumentHelp("Shrink the input first so that its longer side is at most N pixels.", valueName: "N"))
    var maxSide: Int?

    func validate() throws {
        if let maxSide, maxSide < 64 { throw ValidationError("--max-side must be at least 64") }
    }

    func run() throws {
        if let from { return try Rerun(recordFile: from).run() }
        let input = URL(fileURLWithPath: image)
        let output = options.output.map { URL(fileURLWithPath: $0) }
            ?? input.deletingLastPathComponent().appendingPathComponent(input.deletingPathExtension().lastPathComponent + "-dream.png")
        // Before any work: the output's folder exists, and the output is none of the inputs (symlinks, symlinked
        // folders and hard links included).
        try OptionCheck.outputFile(options.output ?? output.path, option: "-o", inputs: [image, options.guide, modelOptions.model],
                                   imageFormat: true)
        var picture = try ImageFile.read(input)
        Console.quiet = options.quiet
        if let maxSide, let smaller = picture.limitingLongerSide(to: maxSide) {
            Console.status("note: shrinking \(picture.width)x\(picture.height) to \(smaller.width)x\(smaller.height) (--max-side \(maxSide))")
            picture = smaller
        }
        let model = try modelOptions.load()
        let dream = try options.makeDream(model: model)
        try options.run(dream, on: picture, source: input.lastPathComponent, to: output, modelArgument: modelOptions.model,
                        maxSide: maxSide)
    }
}

struct NoiseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "noise",
        abstract: "Dream from random noise: see what a layer or channel looks for, free of any photo.",
        discussion: """
        Examples:
          dream noise --layer inception_4c_output --size 512 -o from-noise.png
          dream noise --layer inception_4d_output --channel 97 --iterations 20
        """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var options: DreamOptions

    @Option(name: .long, parsing: .unconditional, help: "Width and height of the picture.")
    var size = 512

    func validate() throws {
        try OptionCheck.range(size, "--size", 64...8192)
    }

    func run() throws {
        if let output = options.output {
            try OptionCheck.outputFile(output, option: "-o", inputs: [options.guide, modelOptions.model], imageFormat: true)
        }
        var rng = SplitMix64(seed: options.seed ^ 0x6E6F_6973_65)
        let pixels = (0..<(size * size * 3)).map { _ in Float(128 + Int(rng.next() % 41) - 20) }
        Console.quiet = options.quiet
        let model = try modelOptions.load()
        let dream = try options.makeDream(model: model)
        let output = URL(fileURLWithPath: options.output ?? "noise-dream.png")
        try options.run(dream, on: RGBImage(width: size, height: size, pixels: pixels), source: "noise", to: output,
                        modelArgument: modelOptions.model)
    }
}
