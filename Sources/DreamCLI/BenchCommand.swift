import ArgumentParser
import Dreaming
import Foundation
import Imaging
import Inspection
import Models
import Network
import Parallel
import SafeIO
import Tensors

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the speed of a forward pass (or of a DeepDream step) on a random image.",
        usage: "dream bench [<options>]",
        discussion: """
        Runs a few warm-up passes, then --runs timed ones, and reports the median (and min, mean) in milliseconds \
        and the achieved multiply-accumulate rate. Compare engines side by side in one run: machines are noisy.

        Examples:
          dream bench
          dream bench --model squeezenet --size 512 --runs 20 --json
          dream bench --dream --size 512    # one DeepDream step at inception_4c_output
          dream bench --dream --profile     # its forward and backward, per layer
          dream bench --model mobilenetv2-shapes --runs 20
          dream bench --model squeezenet --save-onnx sq.onnx  # for other engines

        --model mobilenetv2-shapes builds MobileNetV2 (width 1.0: depthwise 3x3 \
        Conv, BatchNormalization, Clip, residual Add) in memory with random \
        weights, to time the architecture without its file; --model \
        resnet18-shapes builds ResNet-18 (7x7 stem, 3x3 convolutions on 56x56 \
        to 7x7 maps, residual Add) the same way.
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, parsing: .unconditional, help: "Input size in pixels (square).")
    var size: Int = 224

    @Option(name: .long, parsing: .unconditional, help: "Timed runs.")
    var runs: Int = 10

    @Option(name: .long, parsing: .unconditional, help: "Untimed warm-up runs.")
    var warmup: Int = 2

    @Flag(name: .long, help: "Print JSON ({\"forward_ms_median\": …}).")
    var json = false

    @Flag(name: .long, help: "Also print the time spent per operator type and the slowest layers (over the timed runs); a fused layer counts as one, e.g. Conv+BatchNormalization+Clip. With --dream: the forward and the backward pass apart (\"Conv+Relu backward (dx)\"), and the rest of the step.")
    var profile = false

    @Flag(name: .long, help: "Time one DeepDream step instead (forward to the layer, backward to the image, update): dream_step_ms_median.")
    var dream = false

    @Option(name: .long, help: "Layer for --dream (default: the model's classic dream layer).")
    var layer: String?

    @Option(name: .customLong("save-onnx"), help: ArgumentHelp(
        "Also write the benchmarked graph as ONNX (to time the same model in another engine).", valueName: "file"))
    var saveONNX: String?

    @Flag(name: .long, help: "Run every layer on its own: no Conv fused with the BatchNormalization and activation after it (to measure what fusion brings).")
    var noFusion = false

    @Flag(name: .customLong("no-weight-cache"), help: "With --dream: transform the Winograd convolutions' weights on every call instead of once (to measure what keeping them brings).")
    var noWeightCache = false

    func validate() throws {
        try OptionCheck.range(size, "--size", 1...8192)
        try OptionCheck.range(runs, "--runs", 1...1000)
        try OptionCheck.range(warmup, "--warmup", 0...100)
        // Options that only mean something for a DeepDream step are refused without it rather than ignored.
        if !dream, layer != nil { throw ValidationError("--layer selects the DeepDream step's layer: add --dream") }
        if !dream, noWeightCache { throw ValidationError("--no-weight-cache applies to the DeepDream step: add --dream") }
    }

    struct Report: Encodable {
        var model: String
        var size: Int
        var threads: Int
        var runs: Int
        var forward_ms_median: Double
        var forward_ms_min: Double
        var forward_ms_mean: Double
        var gmacs: Double
        var gflops_per_second: Double
        var blas_core: String
        var simd: String
    }

    struct DreamReport: Encodable {
        var model: String
        var layer: String
        var size: Int
        var threads: Int
        var runs: Int
        var dream_step_ms_median: Double
        var dream_step_ms_min: Double
        var blas_core: String
        var simd: String
    }

    static func median(_ sorted: [Double]) -> Double {
        sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    /// Runs `body(false)` `warmup` times, then `body(true)` `runs` times; returns the timed runs' milliseconds, sorted.
    func timings(_ body: (_ timed: Bool) throws -> Void) rethrows -> [Double] {
        for _ in 0..<warmup { try body(false) }
        var times: [Double] = []
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            try body(true)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        return times.sorted()
    }

    /// Times DeepDream steps on a random image of the bench size.
    func runDream(_ model: LoadedModel) throws {
        guard let name = layer ?? model.defaultDreamLayer else { throw ValidationError("give --layer for \(model.displayName)") }
        var settings = DreamSettings(layers: [DreamLayer(name: name)])
        settings.tileSize = max(size, settings.tileSize)
        let engine = try DeepDream(model: model, settings: settings)
        var rng = SplitMix64(seed: 1)
        var image = RGBImage(width: size, height: size, pixels: (0..<(size * size * 3)).map { _ in Float.random(in: 0...255, using: &rng) })
        let profiler = StepProfile()
        let times = try timings { timed in
            engine.onExecutedStep = profile && timed ? profiler.record : nil
            try engine.step(&image, rng: &rng)
        }
        let report = DreamReport(model: model.displayName, layer: engine.settings.layers[0].name, size: size, threads: Threading.threadCount,
                                 runs: runs, dream_step_ms_median: Self.median(times), dream_step_ms_min: times[0], blas_core: BLASCore.name,
                                 simd: SIMDLevel.current.description)
        if json {
            print(try Console.json(report))
        } else {
            print(String(format: "%@ to %@ at %dx%d, %d threads (OpenBLAS %@, %@ SIMD): DeepDream step median %.2f ms (min %.2f) over %d runs",
                         report.model, report.layer, size, size, report.threads, report.blas_core, report.simd, report.dream_step_ms_median, times[0], runs))
            if profile {
                let table = try LayerTable(model: model.displayName, graph: model.graph, executor: model.executor,
                                           inputName: try model.inputName, inputShape: [1, 3, size, size], frozen: [])
                let mean = times.reduce(0, +) / Double(times.count)
                print(profiler.lines(runs: runs, graph: model.graph, table: table, stepMilliseconds: mean).joined(separator: "\n"))
            }
        }
    }

    func run() throws {
        if let saveONNX { try OutputPath.checkOutputFile(saveONNX, inputs: modelOptions.model.map { [$0] } ?? [], option: "--save-onnx") }
        let model = try modelOptions.load()
        if let saveONNX {
            try OutputPath.checkOutputFile(saveONNX, inputs: [model.url.path], option: "--save-onnx")
            try ONNXExporter.write(model.graph, to: URL(fileURLWithPath: saveONNX))
            Console.status("wrote \(saveONNX)")
        }
        model.executor.fusesLayers = !noFusion
        model.executor.keepsTransformedWeights = !noWeightCache
        if dream { return try runDream(model) }
        let inputName = try model.inputName
        let x = Tensor.random(shape: [1, 3, size, size], in: -100...100, seed: 1)
        let outputs = model.graph.outputs.map(\.name)
        let feeds: [String: Value] = [inputName: .float(x)]
        let table = try LayerTable(model: model.displayName, graph: model.graph, executor: model.executor,
                                   inputName: inputName, inputShape: x.shape, frozen: [])
        let macs = table.totalMACs
        let profiler = StepProfile()
        let times = try timings { timed in
            // Fused steps are timed as one ("Conv+BatchNormalization+Clip"): their parts never run apart.
            _ = try model.executor.forward(feeds, outputs: outputs, recordingFor: [], onStep: profile && timed ? profiler.record : nil)
        }
        let median = Self.median(times)
        let report = Report(model: model.displayName, size: size, threads: Threading.threadCount, runs: runs,
                            forward_ms_median: median, forward_ms_min: times[0], forward_ms_mean: times.reduce(0, +) / Double(times.count),
                            gmacs: Double(macs) / 1e9, gflops_per_second: 2 * Double(macs) / 1e9 / (median / 1000),
                            blas_core: BLASCore.name, simd: SIMDLevel.current.description)
        if json {
            print(try Console.json(report))
        } else {
            print(String(format: "%@ at %dx%d, %d threads (OpenBLAS %@, %@ SIMD): forward median %.2f ms (min %.2f, mean %.2f) over %d runs; %.2f GMACs, %.1f GFLOP/s",
                         report.model, size, size, report.threads, report.blas_core, report.simd, median, times[0], report.forward_ms_mean, runs,
                         report.gmacs, report.gflops_per_second))
            if profile { print(profiler.lines(runs: runs, graph: model.graph, table: table, stepMilliseconds: nil).joined(separator: "\n")) }
        }
    }
}

/// Time per operator type and per step over the timed runs of a bench, from the executor's step callback
/// (`ExecutedStep.nanoseconds`: the operators alone), forward and backward steps apart.
final class StepProfile {
    struct Key: Hashable {
        let pass: ExecutedStep.Pass
        let nodes: [Int]
    }
    private var perLabel: [String: Double] = [:]
    private var perStep: [Key: Double] = [:]
    private var labels: [Key: String] = [:]
    private var shapes: [Key: [Int]] = [:]
    private var perPass: [ExecutedStep.Pass: Double] = [:]

    func record(_ step: ExecutedStep) {
        let ms = Double(step.nanoseconds) / 1e6, key = Key(pass: step.pass, nodes: step.nodes)
        perLabel[step.label, default: 0] += ms
        perStep[key, default: 0] += ms
        perPass[step.pass, default: 0] += ms
        labels[key] = step.label
        if shapes[key] == nil { shapes[key] = step.outputShapes.first }
    }

    /// The breakdown per operator type, then the slowest steps with the rate of those that multiply (what a kernel
    /// change would be judged by). `stepMilliseconds`: a DeepDream step's mean time, of which the time outside the
    /// network (preprocessing, objective, pixel gradient, update) is shown as the rest.
    func lines(runs: Int, graph: Graph, table: LayerTable, stepMilliseconds: Double?) -> [String] {
        let n = Double(runs)
        var out: [String] = []
        if let step = stepMilliseconds {
            let forward = (perPass[.forward] ?? 0) / n, backward = (perPass[.backward] ?? 0) / n
            out.append(String(format: "forward %.2f ms, backward %.2f ms, rest of the step %.2f ms (mean per run)",
                              forward, backward, max(0, step - forward - backward)))
        }
        let width = max(20, perLabel.keys.map(\.count).max() ?? 0)
        for (label, ms) in perLabel.sorted(by: { $0.value > $1.value }) {
            out.append(label.padding(toLength: width, withPad: " ", startingAt: 0) + String(format: "%8.2f ms per run", ms / n))
        }
        let macsByNode = Dictionary(table.rows.map { ($0.index, $0.macs) }, uniquingKeysWith: +)
        out.append("slowest layers:")
        for (key, ms) in perStep.sorted(by: { $0.value > $1.value }).prefix(stepMilliseconds == nil ? 12 : 16) {
            let node = graph.nodes[key.nodes[0]]
            let perRun = ms / n, label = labels[key] ?? node.opType
            let shape = shapes[key].map { "[" + $0.map(String.init).joined(separator: ",") + "]" } ?? ""
            var line = String(format: "  %8.2f ms  ", perRun) + TerminalText.escaped(node.name) + "  " + label + " " + shape
            // A convolution's data gradient and its weight gradient each cost as many products as its forward.
            let products = key.pass == .forward ? 1 : (label.contains("dx") ? 1 : 0) + (label.contains("dW") ? 1 : 0)
            let macs = key.nodes.reduce(0) { $0 + (macsByNode[$1] ?? 0) } * products
            if macs > 0 { line += String(format: "  %.1f GFLOP/s", 2 * Double(macs) / 1e9 / (perRun / 1000)) }
            out.append(line)
        }
        return out
    }
}
