import ArgumentParser
import Dreaming
import Foundation
import Imaging
import Models
import Network
import Tensors

struct VisualizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "visualize",
        abstract: "Feature visualisation: the picture a channel or a class wants to see, optimised from noise.",
        discussion: """
        Feature visualisation (Olah et al. 2017, Lucid): the image is optimised \
        in a decorrelated Fourier parameterisation (ImageNet colour statistics) \
        with Adam, and every step sees it padded, jittered, scaled and rotated \
        at random, so that the result is made of textures and object parts a \
        person recognises rather than speckle. The objective is linear: a \
        channel's mean activation (before its ReLU, so that a channel silent at \
        the start still has a gradient), a whole layer's mean, or a class \
        logit. The settings go into the PNG's text chunks.

        Examples:
          dream visualize --layer inception_4c_output --channel 97 -o unit.png
          dream visualize --class "tabby cat" --steps 256
          dream visualize --layer inception_3b_output --channel 10 --size 160
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "Layer whose channel (or, without --channel, whole mean) to maximise.")
    var layer: String?

    @Option(name: .long, help: "Channel of --layer.")
    var channel: Int?

    @Option(name: .long, help: ArgumentHelp("Maximise this class's logit instead: an index or a label such as \"tabby cat\".",
                                            valueName: "index|label"))
    var `class`: String?

    @Option(name: .long, help: "Width and height of the picture.")
    var size = 224

    @Option(name: .long, help: "Optimisation steps.")
    var steps = 512

    @Option(name: .customLong("learning-rate"), help: "Adam's learning rate.")
    var learningRate: Float = 0.05

    @Option(name: .long, help: "Random seed (initial noise and transformations).")
    var seed: UInt64 = 0

    @Flag(name: .customLong("post-relu"), help: "Maximise the value after the layer's ReLU instead of before it.")
    var postReLU = false

    @Flag(name: .customLong("no-transforms"), help: "No random pad/jitter/scale/rotation (to see why they matter).")
    var noTransforms = false

    @Option(name: [.short, .long], help: "Output PNG (default: visualize.png).")
    var output: String?

    @Flag(name: [.short, .long], help: "No progress display.")
    var quiet = false

    func validate() throws {
        if (layer == nil) == (`class` == nil) { throw ValidationError("give either --layer (with an optional --channel) or --class") }
        if channel != nil && layer == nil { throw ValidationError("--channel goes with --layer") }
        if let channel, channel < 0 { throw ValidationError("--channel must not be negative") }
        if size < 32 || size > 2048 { throw ValidationError("--size must be between 32 and 2048") }
        if steps < 1 { throw ValidationError("--steps must be at least 1") }
        if !(learningRate > 0 && learningRate.isFinite) { throw ValidationError("--learning-rate must be positive") }
    }

    func run() throws {
        Console.quiet = quiet
        let model = try modelOptions.load()
        let target: VisualizationTarget
        if let query = `class` {
            target = .classScore(try model.classIndex(for: query))
        } else if let channel {
            target = .channel(layer: layer!, channel: channel)
        } else {
            target = .layer(layer!)
        }
        var settings = VisualizationSettings()
        settings.size = size
        settings.steps = steps
        settings.learningRate = learningRate
        settings.seed = seed
        settings.preReLU = !postReLU
        settings.transforms = !noTransforms
        let visualization = try FeatureVisualization(model: model, target: target, settings: settings)
        let bar = ProgressLine(enabled: !quiet && Console.stderrIsTerminal)
        let picture = try visualization.run { p in
            bar.update(String(format: "step %4d/%d  objective %10.4f  %@ elapsed, %@ left", p.step, p.steps, p.objective,
                              ProgressLine.duration(p.elapsed), ProgressLine.duration(p.remaining)))
        }
        bar.finish()
        let outputURL = URL(fileURLWithPath: output ?? "visualize.png")
        let what: String
        switch visualization.target {
        case let .classScore(c): what = "class \(c) \(model.label(ofClass: c))"
        default: what = visualization.target.description
        }
        try ImageFile.write(picture, to: outputURL, text: [
            ("Software", "dream"), ("dream:model", model.displayName), ("dream:visualize", what),
            ("dream:objective", "\(visualization.objectiveValue)" + (visualization.objectiveChannel.map { " [\($0)]" } ?? "")),
            ("dream:settings", settings.summary), ("dream:blas", BLASCore.summary),
        ])
        // What the finished picture does, read back from the 8-bit file as a user would see it.
        let saved = try ImageFile.read(outputURL)
        print(String(format: "objective on the picture: %.4f (%@)", try visualization.evaluate(saved),
                     visualization.objectiveValue + (visualization.objectiveChannel.map { "[\($0)]" } ?? "")))
        if case let .channel(layer, channel) = visualization.target, visualization.objectiveValue != layer {
            var post = settings
            post.preReLU = false
            let after = try FeatureVisualization(model: model, target: visualization.target, settings: post)
            print(String(format: "mean activation of %@ channel %d: %.4f", layer, channel, try after.evaluate(saved)))
        }
        if case .classScore = visualization.target, let top = try model.classify(saved, top: 1).first {
            print(String(format: "classified as: %@ [%d] %.2f%%", top.label, top.index, top.probability * 100))
        }
        print(String(format: "spectral power above half Nyquist: %.1f%%", SpectralPower.fractionAbove(saved) * 100))
        Console.status("wrote \(outputURL.path) (\(picture.width)x\(picture.height), \(what), seed \(seed))")
    }
}
