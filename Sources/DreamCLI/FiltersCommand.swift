import ArgumentParser
import Dreaming
import Foundation
import Imaging
import Inspection
import Models
import Network

struct FiltersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "filters",
        abstract: "Show a convolution's learned filters as a grid of pictures.",
        usage: "dream filters [<options>]",
        discussion: """
        A first layer (3 input channels) shows each kernel as a small RGB \
        picture, scaled symmetrically around 0 by its own largest weight \
        (mid-grey = 0): the oriented edges and colour blobs ImageNet networks \
        learn. A deeper layer shows, per output channel, its kernels for every \
        input channel in a diverging map (blue < 0, white 0, red > 0); \
        --visualize shows what each output channel responds to instead (a \
        short `dream visualize` each). A name after a ReLU means the \
        convolution before it.

        Examples:
          dream filters --layer conv1_7x7_s2 -o conv1.png
          dream filters --layer conv2_3x3 --channel 0 --channel 5 -o conv2.png
          dream filters --layer inception_3a_3x3 --visualize --channel 0
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "The convolution (default: the model's first).")
    var layer: String?

    @Option(name: .long, parsing: .singleValue, help: "Output channel to show (repeatable; default: all of a first layer, the first 16 of a deeper one).")
    var channel: [Int] = []

    @Option(name: .long, help: "Pixels per weight (default: 8 for a first layer, 4 deeper).")
    var pixel: Int?

    @Option(name: .long, help: "Tiles per row of the grid.")
    var columns: Int?

    @Flag(name: .long, help: "Show each output channel's feature visualisation instead of its weights.")
    var visualize = false

    @Option(name: .long, help: "--visualize: optimisation steps per channel.")
    var steps = 128

    @Option(name: .long, help: "--visualize: picture size.")
    var size = 128

    @Option(name: [.short, .long], help: "Output PNG (default: filters.png).")
    var output: String?

    func validate() throws {
        if let pixel, pixel < 1 || pixel > 64 { throw ValidationError("--pixel must be between 1 and 64") }
        if let columns, columns < 1 { throw ValidationError("--columns must be at least 1") }
        if steps < 1 { throw ValidationError("--steps must be at least 1") }
        if size < 32 || size > 1024 { throw ValidationError("--size must be between 32 and 1024") }
    }

    func run() throws {
        let model = try modelOptions.load()
        let name = layer ?? model.graph.nodes.first { $0.opType == "Conv" }?.outputs.first ?? ""
        let filters = try ConvolutionFilters(model: model, layer: name)
        let all = filters.outputChannels
        let chosen = channel.isEmpty ? Array(0..<(filters.isFirstLayer || visualize ? min(all, visualize ? 16 : all) : min(all, 16))) : channel
        for c in chosen where c < 0 || c >= all { throw FilterError.channelOutOfRange(c, channels: all) }
        var tiles: [RGBImage] = []
        if visualize {
            var settings = VisualizationSettings()
            settings.steps = steps
            settings.size = size
            let value = filters.node.outputs[0]
            for (n, c) in chosen.enumerated() {
                Console.status("visualising channel \(c) (\(n + 1)/\(chosen.count))")
                tiles.append(try FeatureVisualization(model: model, target: .channel(layer: value, channel: c), settings: settings).run())
            }
        } else if filters.isFirstLayer {
            let isBGR = (try? model.preprocessing.channelOrder) == .bgr
            tiles = chosen.map { filters.colorKernel($0, pixel: pixel ?? 8, networkIsBGR: isBGR) }
        } else {
            let perRow = Int(Double(filters.inputChannels).squareRoot().rounded(.up))
            tiles = chosen.map { filters.channelKernels($0, pixel: pixel ?? 4, columns: perRow) }
        }
        let labelled = tiles.first.map { $0.width >= 24 } ?? false
        let grid = ImageGrid.compose(tiles, columns: columns, separator: 2, labels: labelled ? chosen.map(String.init) : nil,
                                     background: (255, 255, 255))
        let url = URL(fileURLWithPath: output ?? "filters.png")
        try ImageFile.write(grid, to: url, text: [
            ("Software", "dream"), ("dream:model", model.displayName),
            ("dream:filters", "\(filters.node.name) weight \(filters.weight.shape) channels \(chosen.map(String.init).joined(separator: ","))\(visualize ? " visualised, steps=\(steps) size=\(size)" : "")"),
        ])
        Console.status("wrote \(url.path) (\(chosen.count) of \(all) channels of \(filters.node.name), kernel \(filters.weight.shape[2])x\(filters.weight.shape[3]))")
    }
}
