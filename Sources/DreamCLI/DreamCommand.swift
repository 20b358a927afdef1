import ArgumentParser
import Dreaming
import Foundation
import Imaging
import Models
import Parallel
import Tensors

/// Options shared by `dream IMAGE` and `dream noise`.
struct DreamOptions: ParsableArguments {
    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp(
        "Layer to amplify, optionally with a weight: NAME or NAME:WEIGHT (repeatable; default: the model's classic layer, inception_4c_output for GoogLeNet). `dream layers` lists the names; a unique abbreviation works.",
        valueName: "layer[:weight]"))
    var layer: [String] = []

    @Option(name: .long, help: "Amplify only this channel of the (single) layer.")
    var channel: Int?

    @Option(name: .long, help: ArgumentHelp("Dream towards a class: maximise its logit (linearly); an index or a label such as \"tabby cat\".",
                                            valueName: "index|label"))
    var `class`: String?

    @Option(name: .long, help: ArgumentHelp("l2: the mean square of the activations (DeepDream); mean: their mean (linear, the default for --class).",
                                            valueName: "l2|mean"))
    var objective: DreamReduction?

    @Option(name: .long, help: "Image pyramid levels, smallest first.")
    var octaves = DreamSettings.defaults.octaves

    @Option(name: .customLong("octave-scale"), help: "Size ratio between octaves.")
    var octaveScale = DreamSettings.defaults.octaveScale

    @Option(name: .long, help: "Gradient-ascent steps per octave.")
    var iterations = DreamSettings.defaults.iterations

    @Option(name: .long, help: "Step size on the 0–255 pixel scale (gradient normalised by its mean absolute value).")
    var step = DreamSettings.defaults.step

    @Option(name: .long, help: "Random shift (pixels) before each step, against grid artefacts.")
    var jitter = DreamSettings.defaults.jitter

    @Option(name: .long, help: "Random seed: the same seed gives the same picture on the same machine and --threads (see --portable).")
    var seed = DreamSettings.defaults.seed

    @Option(name: .long, help: "Tile size (pixels): larger images have their gradient computed tile by tile, bounding memory.")
    var tile = DreamSettings.defaults.tileSize

    @Option(name: .long, help: "Guide image: dream towards the features this image excites.")
    var guide: String?

    @Option(name: [.short, .long], help: "Output file (.png or .jpg).")
    var output: String?

    @Flag(name: [.short, .long], help: "No progress display.")
    var quiet = false

    @Flag(name: .long, help: ArgumentHelp(
        "Use OpenBLAS's SSE3 kernels, which every x86-64 CPU runs, so that the same seed, --threads and dream build give the same bytes on any machine (about 2x slower per step).",
        discussion: "Without it, the same seed gives the same bytes on the same machine, build, thread count and OpenBLAS kernels, which the PNG records."))
    var portable = false

    func validate() throws {
        if octaves < 1 { throw ValidationError("--octaves must be at least 1") }
        if octaveScale <= 1 { throw ValidationError("--octave-scale must be greater than 1") }
        if iterations < 1 { throw ValidationError("--iterations must be at least 1") }
        if step <= 0 { throw ValidationError("--step must be positive") }
        if jitter < 0 { throw ValidationError("--jitter must not be negative") }
        if tile < 64 { throw ValidationError("--tile must be at least 64") }
        if channel != nil && layer.count > 1 { throw ValidationError("--channel goes with a single --layer") }
        if `class` != nil && (!layer.isEmpty || channel != nil || guide != nil) {
            throw ValidationError("--class replaces --layer, --channel and --guide: give one or the other")
        }
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
        if let channel { layers[0].channel = channel }
        if let objective { for i in layers.indices { layers[i].reduction = objective } }
        var settings = DreamSettings(layers: layers)
        settings.octaves = octaves
        settings.octaveScale = octaveScale
        settings.iterations = iterations
        settings.step = step
        settings.jitter = jitter
        settings.seed = seed
        settings.tileSize = tile
        let dream = try DeepDream(model: model, settings: settings)
        if let guide { try dream.setGuide(try ImageFile.read(URL(fileURLWithPath: guide))) }
        return dream
    }

    /// Runs the dream with a progress line on stderr (when it is a terminal) and writes the result.
    /// `modelArgument` and `maxSide` go into the output's record (with everything else needed to rerun it).
    func run(_ dream: DeepDream, on image: RGBImage, source: String, to outputURL: URL, modelArgument: String?,
             maxSide: Int? = nil) throws {
        let bar = ProgressLine(enabled: !quiet && Console.stderrIsTerminal)
        let result = try dream.dream(image) { p in
            bar.update(String(format: "octave %d/%d %4dx%-4d  iteration %2d/%d  objective %9.4f  %@ elapsed, %@ left",
                              p.octave, p.octaves, p.width, p.height, p.iteration, p.iterations, p.objective,
                              ProgressLine.duration(p.elapsed), ProgressLine.duration(p.remaining)))
        }
        bar.finish()
        for note in dream.notes { Console.status("note: \(note)") }
        let record = try DreamRecord(dream: dream, source: source, modelArgument: modelArgument, guide: guide,
                                     threads: Threading.threadCount, blas: BLASCore.summary,
                                     portable: BLASCore.recommendedOverride(portable: true) == nil,
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
        Gradient ascent on the image to increase the mean squared activation of the chosen layer(s), over an image
        pyramid (octaves), with random jitter; defaults follow the original DeepDream notebook. The result keeps the
        input's size and is written beside it as NAME-dream.png unless -o says otherwise; its PNG text chunks record
        the settings and seed.

        Examples:
          dream photo.jpg
          dream photo.jpg --layer inception_4c_output:1 --layer inception_3b_output:0.5 --octaves 5 --seed 7 -o out.png
          dream photo.jpg --layer inception_4d_output --channel 97
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
        if output.standardizedFileURL.path == input.standardizedFileURL.path {
            throw ValidationError("the output would overwrite the input image; choose another -o")
        }
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

    @Option(name: .long, help: "Width and height of the picture.")
    var size = 512

    func validate() throws {
        if size < 64 { throw ValidationError("--size must be at least 64") }
    }

    func run() throws {
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
