import ArgumentParser
import Foundation
import Imaging
import Inspection
import Models
import Network
import Tensors

extension AttributionMethod: ExpressibleByArgument {}

struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Show which pixels made the network choose a class (Grad-CAM, saliency, SmoothGrad, integrated gradients).",
        discussion: """
        The class defaults to the top-1 prediction, printed with its probability. \
        The image analysed is the classification crop (GoogLeNet: shorter side \
        256, centre 224x224); --size N analyses an NxN crop, --size original the \
        whole image. The PNG is the heat map over the analysed image; --npy \
        writes the raw map at that resolution (float32, [H, W]).

        Methods:
          gradcam      Grad-CAM (Selvaraju et al. 2017) at --layer, by default
                       the last spatial layer before global pooling (GoogLeNet:
                       inception_5b_output). Coarse, class-specific.
          saliency     max over colours of |d logit / d pixel|.
          smoothgrad   saliency averaged over --samples noisy copies (noise:
                       15% of the range; Smilkov et al. 2017).
          integrated-gradients
                       (x - black) times the mean gradient on the path from
                       black, --steps intervals; the map is |attribution|
                       summed over colours. Prints the completeness check: the
                       attributions' sum should equal logit(x) - logit(black);
                       more --steps bring it closer.

        --deletion removes the 20% of pixels the map ranks highest (set to the \
        mean colour), then the lowest 20%, and prints the class probability \
        after each, and the area under the deletion curve (0-100% in tens).

        Examples:
          dream explain photo.jpg -o why.png
          dream explain photo.jpg --class "tabby cat" \\
              --method integrated-gradients --npy ig.npy
          dream explain photo.jpg --layer inception_4e_output --json
          dream explain photo.jpg --method smoothgrad --deletion
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: ArgumentHelp("The image to explain (PNG or JPEG).", valueName: "image"))
    var image: String

    @Option(name: .long, help: ArgumentHelp("Class to explain: an index or a label such as \"tabby cat\" (default: the top-1 class).",
                                            valueName: "index|label"))
    var `class`: String?

    @Option(name: .long, help: ArgumentHelp("gradcam, saliency, smoothgrad or integrated-gradients.", valueName: "method"))
    var method: AttributionMethod = .gradcam

    @Option(name: .long, help: "Grad-CAM's layer (default: the last spatial layer before global pooling).")
    var layer: String?

    @Option(name: .long, help: ArgumentHelp("Analysed image: N for an NxN crop, or 'original' (default: the classification crop).",
                                            valueName: "N|original"))
    var size: String?

    @Option(name: .long, help: "SmoothGrad: number of noisy copies.")
    var samples = 25

    @Option(name: .long, help: "Integrated gradients: intervals along the path from black.")
    var steps = 64

    @Option(name: .long, help: "Seed of SmoothGrad's noise.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Opacity of the heat map over the image (0-1).")
    var alpha: Float = 0.5

    @Option(name: [.short, .long], help: "Output PNG (default: NAME-METHOD.png beside the image).")
    var output: String?

    @Option(name: .long, help: "Also write the raw map as .npy (float32, [H, W]).")
    var npy: String?

    @Flag(name: .long, help: "Also run the deletion test: probability after removing the top and bottom 20% of pixels, and the deletion curve's area.")
    var deletion = false

    @Flag(name: .long, help: "Print JSON on stdout (class, label, probability, method, layer, files).")
    var json = false

    func validate() throws {
        if let size, WorkingSize(parsing: size) == nil { throw ValidationError("--size takes a positive number of pixels or 'original'") }
        if samples < 1 { throw ValidationError("--samples must be at least 1") }
        if steps < 1 { throw ValidationError("--steps must be at least 1") }
        if !(alpha >= 0 && alpha <= 1) { throw ValidationError("--alpha must be between 0 and 1") }
        if layer != nil && method != .gradcam { throw ValidationError("--layer goes with --method gradcam") }
        if let npy, !npy.lowercased().hasSuffix(".npy") { throw ValidationError("--npy must name a .npy file") }
    }

    struct Report: Encodable {
        var image: String
        var `class`: Int
        var label: String
        var probability: Float
        var score: Float
        var method: String
        var layer: String?
        var width: Int
        var height: Int
        var output: String
        var npy: String?
        var attributionSum: Double?
        var scoreDifference: Double?
        var deletion: Deletion?
    }

    struct Deletion: Encodable {
        var probabilityWithoutTop20: Float
        var probabilityWithoutBottom20: Float
        var area: Double
        var curve: [Float]
    }

    func run() throws {
        let input = URL(fileURLWithPath: image)
        let outputURL = output.map { URL(fileURLWithPath: $0) }
            ?? input.deletingLastPathComponent().appendingPathComponent(input.deletingPathExtension().lastPathComponent + "-\(method.rawValue).png")
        for target in [outputURL] + (npy.map { [URL(fileURLWithPath: $0)] } ?? []) where target.standardizedFileURL.path == input.standardizedFileURL.path {
            throw ValidationError("\(target.lastPathComponent) would overwrite the input image; choose another name")
        }
        let picture = try ImageFile.read(input)
        let model = try modelOptions.load()
        let analysed = try model.featureInput(image: picture, size: size.flatMap(WorkingSize.init(parsing:)) ?? .modelDefault).image
        let attributor = try Attributor(model: model)
        var settings = AttributionSettings()
        settings.layer = layer
        settings.samples = samples
        settings.steps = steps
        settings.seed = seed
        let classIndex = try `class`.map { try model.classIndex(for: $0) }
        let result = try attributor.explain(analysed, method: method, classIndex: classIndex, settings: settings)

        // Gradient maps are spiky: the colour scale ends at their 99th percentile so that more than a few pixels show.
        var shown = result.map
        if method != .gradcam, let top = shown.sorted().dropLast(shown.count / 100).last { shown = shown.map { min($0, top) } }
        let overlay = Overlay.blend(photo: analysed, heat: shown, heatWidth: result.width, heatHeight: result.height,
                                    colorMap: .viridis, alpha: alpha)
        try ImageFile.write(overlay, to: outputURL, text: [
            ("Software", "dream"), ("dream:source", input.lastPathComponent), ("dream:model", model.displayName),
            ("dream:explain", "method=\(method.rawValue) class=\(result.classIndex) layer=\(result.layer ?? "-") samples=\(samples) steps=\(steps) seed=\(seed)"),
        ])
        if let npy {
            try NumPyFile.write(.float(Tensor(shape: [result.height, result.width], scalars: result.map)), to: URL(fileURLWithPath: npy))
        }
        var deletionReport: Deletion?
        if deletion {
            let fractions = (0...10).map { Double($0) / 10 }
            let curve = try DeletionCurve.curve(attributor, image: analysed, classIndex: result.classIndex, map: result.map, fractions: fractions)
            let tb = try DeletionCurve.topAndBottom(attributor, image: analysed, classIndex: result.classIndex, map: result.map)
            deletionReport = Deletion(probabilityWithoutTop20: tb.top, probabilityWithoutBottom20: tb.bottom,
                                      area: DeletionCurve.area(curve, fractions: fractions), curve: curve)
        }
        if json {
            print(try Console.json(Report(image: image, class: result.classIndex, label: result.label, probability: result.probability,
                                          score: result.score, method: method.rawValue, layer: result.layer, width: result.width,
                                          height: result.height, output: outputURL.path, npy: npy,
                                          attributionSum: result.attributionSum, scoreDifference: result.scoreDifference,
                                          deletion: deletionReport)))
            return
        }
        print(String(format: "class %d  %@  probability %.2f%%  (%@ %d x %d%@)", result.classIndex, result.label,
                     result.probability * 100, method.rawValue, result.width, result.height, result.layer.map { ", layer " + $0 } ?? ""))
        if let sum = result.attributionSum, let expected = result.scoreDifference {
            print(String(format: "completeness: sum of attributions %.4f, logit(image) - logit(black) %.4f (difference %.2f%%)",
                         sum, expected, abs(sum - expected) / max(abs(expected), 1e-9) * 100))
        }
        if let d = deletionReport {
            print(String(format: "deletion: probability %.4f without the top 20%% of pixels, %.4f without the bottom 20%%; curve area %.4f",
                         d.probabilityWithoutTop20, d.probabilityWithoutBottom20, d.area))
        }
        Console.status("wrote \(outputURL.path)" + (npy.map { " and \($0)" } ?? ""))
    }
}
