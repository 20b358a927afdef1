import ArgumentParser
import Foundation
import Inspection
import Models
import Network
import SafeIO

struct LayersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "layers",
        abstract: "Print the layer / parameter table of a model.",
        usage: "dream layers [<options>]",
        discussion: """
        One row per layer (ONNX node): name, operator, output shape at the model's default input size, parameter \
        count, trainable or frozen, millions of multiply-accumulates, and for spatial layers the kernel, the stride \
        (jump between neighbouring outputs, in input pixels) and the receptive field (the side of the input region \
        one output position sees; where branches meet, the largest); then the totals. Any name in the table \
        (or its output value, or a unique abbreviation) can be given to --layer elsewhere, and so can the \
        ordinal in the short column: conv1, conv2, … number the convolutions in graph order, pool1, pool2, … the max \
        and average pools (a convolution followed by a ReLU stands for the ReLU's output).

        Examples:
          dream layers
          dream layers --model squeezenet --size 320
          dream layers --freeze-before inception_5a_output --json
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, parsing: .unconditional, help: "Input size (pixels, square) for the output shapes (default: the model's).")
    var size: Int?

    @Option(name: .long, parsing: .singleValue, help: "Mark parameters whose name starts with this prefix as frozen (repeatable).")
    var freeze: [String] = []

    @Option(name: .customLong("freeze-before"), help: "Mark every parameter of the layers before this one as frozen.")
    var freezeBefore: String?

    @Flag(name: .long, help: "Only the layers that have parameters.")
    var parametersOnly = false

    @Flag(name: .long, help: "Print the table as JSON.")
    var json = false

    func validate() throws {
        if let size { try OptionCheck.range(size, "--size", 1...8192) }
    }

    func run() throws {
        let model = try modelOptions.load()
        let frozen = try ParameterFreezing(executor: model.executor).frozen(prefixes: freeze, beforeLayer: freezeBefore)
        let hw = size.map { [$0, $0] } ?? model.defaultInputSize
        let table = try LayerTable(model: model.displayName, graph: model.graph, executor: model.executor,
                                   inputName: try model.inputName, inputShape: [1, 3, hw[0], hw[1]], frozen: frozen)
        print(json ? try Console.json(table) : TerminalText.escapedKeepingLines(table.rendered(showAll: !parametersOnly)))
    }
}
