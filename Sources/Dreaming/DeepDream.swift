import Foundation
import Imaging
import Models
import Network
import Tensors

/// DeepDream: gradient ascent on an image to amplify what chosen layers respond to.
/// The image lives in pixel space (RGB 0–255); each step converts it to the model's input, runs forward only as far
/// as the dream layers, back to the input, and maps the gradient back to pixels.
public final class DeepDream {
    public let model: LoadedModel
    public let settings: DreamSettings
    public private(set) var objective: DreamObjective
    let preprocessing: Preprocessing
    let inputName: String
    /// Notes for the user (e.g. octaves reduced for a small image).
    public private(set) var notes: [String] = []
    /// Called after every step of every dream when `dream(_:progress:)` is given no handler of its own (zoom
    /// sequences, whose frames are dreamt by `ZoomSequence`).
    public var observer: ((DreamProgress) -> Void)?
    /// Each layer's own (unweighted, unnormalised) term in the last step, averaged over the image.
    public private(set) var lastLayerValues: [Double] = []
    /// The octaves the last `dream` ran (fewer than `settings.octaves` for a small image), for the output's record.
    public private(set) var octavesUsed: Int?
    /// Sees every step of the network's forward and backward passes inside each gradient evaluation (profiling:
    /// `dream bench --dream --profile`); nil runs the passes without timing them.
    public var onExecutedStep: ((ExecutedStep) -> Void)?

    public init(model: LoadedModel, settings: DreamSettings) throws {
        self.model = model
        let names = LayerNames(graph: model.graph)
        var resolved = settings
        resolved.layers = try settings.layers.map { layer in
            var l = layer
            l.name = try names.resolve(layer.name)
            return l
        }
        self.settings = resolved
        objective = DreamObjective(layers: resolved.layers)
        preprocessing = try model.preprocessing
        inputName = try model.inputName
    }

    var layerNames: [String] { Array(Set(settings.layers.map(\.name))).sorted() }

    /// Objective and its gradient with respect to a network input [1, 3, H, W] (model units, not pixels).
    public func objectiveAndGradient(networkInput x: Tensor) throws -> (value: Double, gradient: Tensor) {
        let result = try evaluate(networkInput: x)
        return (result.value, result.gradient)
    }

    /// The objective, each layer's own term, and the gradient with respect to a network input.
    func evaluate(networkInput x: Tensor) throws -> (value: Double, layerValues: [Double], gradient: Tensor) {
        var tape = try model.executor.forward([inputName: .float(x)], outputs: layerNames, recordingFor: [inputName],
                                              onStep: onExecutedStep)
        var activations: [String: Tensor] = [:]
        for name in layerNames { activations[name] = tape.values[name]?.floatTensor }
        tape.values = [:]
        let (value, layerValues, seeds) = try objective.evaluateLayers(activations)
        activations = [:]
        // A model whose weights hold NaN or infinities would otherwise dream a black picture and exit 0.
        guard value.isFinite else {
            throw ExecutionError.shapeMismatch(node: layerNames.joined(separator: ", "), op: "dream",
                                               detail: "the objective is \(value): the model produces non-finite activations (NaN or infinite weights?)")
        }
        let gradients = try model.executor.backward(&tape, seeds: seeds, onStep: onExecutedStep)
        return (value, layerValues, gradients[inputName] ?? Tensor(shape: x.shape))
    }

    /// Objective and gradient with respect to the pixels of an image (interleaved RGB, 0–255 scale).
    public func objectiveAndPixelGradient(_ image: RGBImage) throws -> (value: Double, gradient: [Float]) {
        let result = try pixelEvaluation(image)
        return (result.value, result.gradient)
    }

    func pixelEvaluation(_ image: RGBImage) throws -> (value: Double, layerValues: [Double], gradient: [Float]) {
        let (value, layerValues, g) = try evaluate(networkInput: preprocessing.inputTensor(for: image))
        return (value, layerValues, preprocessing.pixelGradient(fromInputGradient: g))
    }

    /// Each layer's own term on an image (forward only, tile by tile like a step, averaged over the image by area):
    /// what `--normalize-layers` divides by.
    public func layerValues(of image: RGBImage) throws -> [Double] {
        let w = image.width, h = image.height, tile = settings.tileSize
        var totals = [Double](repeating: 0, count: settings.layers.count)
        for (x0, x1) in Self.spans(w, tile: tile) {
            for (y0, y1) in Self.spans(h, tile: tile) {
                let piece = Self.shiftedCrop(image, dx: 0, dy: 0, x: x0, y: y0, width: x1 - x0, height: y1 - y0)
                let values = try model.executor.run([inputName: .float(preprocessing.inputTensor(for: piece))], outputs: layerNames)
                var activations: [String: Tensor] = [:]
                for name in layerNames { activations[name] = values[name]?.floatTensor }
                let area = Double((x1 - x0) * (y1 - y0)) / Double(w * h)
                for (i, v) in try objective.evaluateLayers(activations).layerValues.enumerated() { totals[i] += v * area }
            }
        }
        return totals
    }

    /// Sets guide features from a guide image (at most `maxSide` pixels per side): the dream then matches them.
    public func setGuide(_ guide: RGBImage, maxSide: Int = 384) throws {
        let scale = min(1, Float(maxSide) / Float(max(guide.width, guide.height)))
        let g = scale < 1 ? guide.resized(width: max(1, Int(Float(guide.width) * scale)), height: max(1, Int(Float(guide.height) * scale))) : guide
        let values = try model.executor.run([inputName: .float(preprocessing.inputTensor(for: g))], outputs: layerNames)
        for name in layerNames {
            guard let act = values[name]?.floatTensor, act.rank == 4 else { continue }
            objective.guideFeatures[name] = act.reshaped([act.shape[1], act.shape[2] * act.shape[3]])
        }
    }

    /// Smallest image side at which every dream layer still has a few pixels of output (probed once).
    public func minimumSide() throws -> Int {
        let probe = 224
        let x = Tensor(shape: [1, 3, probe, probe])
        let values = try model.executor.run([inputName: .float(x)], outputs: layerNames)
        var side = 32
        for name in layerNames {
            guard let shape = values[name]?.shape, shape.count == 4, shape[3] > 0 else { continue }
            let stride = max(1, probe / shape[3])
            side = max(side, 3 * stride)
        }
        return side
    }

    /// The dream of an image: octaves from small to full size, detail carried up, `iterations` steps each.
    /// `seed` replaces the settings' seed (zoom sequences dream frame k with seed + k).
    public func dream(_ image: RGBImage, seed: UInt64? = nil, progress: ((DreamProgress) -> Void)? = nil) throws -> RGBImage {
        let progress = progress ?? observer
        var rng = SplitMix64(seed: seed ?? settings.seed)
        let minSide = try minimumSide()
        // The most octaves whose smallest level still has minSide pixels, computed rather than counted down
        // (a count of 2^63 must not loop); a scale that is not > 1 leaves one octave.
        let side = Double(min(image.width, image.height))
        let scale = Double(settings.octaveScale)
        let fitting = scale.isFinite && scale > 1 && side >= Double(minSide)
            ? Int(min(log(side / Double(max(minSide, 1))) / log(scale), 1000).rounded(.down)) + 1 : 1
        var octaves = min(max(1, settings.octaves), max(1, fitting))
        while octaves > 1 && Float(min(image.width, image.height)) / pow(settings.octaveScale, Float(octaves - 1)) < Float(minSide) {
            octaves -= 1  // floating-point edge of the formula above: at most a step or two
        }
        octavesUsed = octaves
        if octaves < settings.octaves {
            notes.append("using \(octaves) octave\(octaves == 1 ? "" : "s") instead of \(settings.octaves): the smallest would be under \(minSide) px, the least the layer needs")
        }
        if min(image.width, image.height) < minSide {
            throw DreamError.imageTooSmall(width: image.width, height: image.height, minimumSide: minSide,
                                           layer: layerNames.joined(separator: ", "))
        }
        // Pyramid of bases, largest first.
        var bases = [image]
        for _ in 1..<octaves {
            let last = bases.last!
            bases.append(last.resized(width: max(1, Int((Float(last.width) / settings.octaveScale).rounded())),
                                      height: max(1, Int((Float(last.height) / settings.octaveScale).rounded()))))
        }
        let totalWork = bases.reduce(0.0) { $0 + Double($1.width * $1.height) } * Double(settings.iterations)
        var doneWork = 0.0
        let start = Date()
        var detail: RGBImage?
        var current = bases.last!
        for (o, base) in bases.reversed().enumerated() {
            // The detail added so far, scaled up to this octave.
            let carried = detail.map { $0.resized(width: base.width, height: base.height, filter: .bilinear) }
            current = base
            if let carried { for i in current.pixels.indices { current.pixels[i] += carried.pixels[i] } }
            if settings.normalizeLayers { objective.normalizers = try layerValues(of: current) }
            for it in 0..<settings.iterations {
                let stepStart = Date()
                let value = try step(&current, rng: &rng)
                let stepSeconds = Date().timeIntervalSince(stepStart)
                doneWork += Double(base.width * base.height)
                if let progress {
                    let elapsed = Date().timeIntervalSince(start)
                    progress(DreamProgress(octave: o + 1, octaves: octaves, iteration: it + 1, iterations: settings.iterations,
                                           objective: value, width: base.width, height: base.height, elapsed: elapsed,
                                           remaining: elapsed / doneWork * (totalWork - doneWork),
                                           stepSeconds: stepSeconds, layerObjectives: lastLayerValues))
                }
            }
            var d = current
            for i in d.pixels.indices { d.pixels[i] -= base.pixels[i] }
            detail = d
        }
        return current
    }

    /// One gradient-ascent step: random shift, gradient (tiled when large), normalised update, clip.
    /// The shift is never materialised: tiles are read from, and gradients written back to, wrapped-around positions,
    /// so that a step needs one image-sized gradient buffer beyond the image itself (memory bounded for huge images).
    @discardableResult
    public func step(_ image: inout RGBImage, rng: inout SplitMix64) throws -> Double {
        let w = image.width, h = image.height
        let tile = settings.tileSize
        let tiled = w > tile || h > tile
        // Tiled images shift by up to a whole tile so that tile borders never stay in one place (no seams).
        let maxShiftX = tiled ? tile : min(settings.jitter, w - 1), maxShiftY = tiled ? tile : min(settings.jitter, h - 1)
        let dx = maxShiftX > 0 ? Int.random(in: -maxShiftX...maxShiftX, using: &rng) : 0
        let dy = maxShiftY > 0 ? Int.random(in: -maxShiftY...maxShiftY, using: &rng) : 0
        var gradient = [Float](repeating: 0, count: w * h * 3)
        var value = 0.0
        var layerValues = [Double](repeating: 0, count: settings.layers.count)
        for (x0, x1) in Self.spans(w, tile: tile) {
            for (y0, y1) in Self.spans(h, tile: tile) {
                let piece = Self.shiftedCrop(image, dx: dx, dy: dy, x: x0, y: y0, width: x1 - x0, height: y1 - y0)
                let (v, perLayer, g) = try pixelEvaluation(piece)
                let area = Double((x1 - x0) * (y1 - y0)) / Double(w * h)
                value += v * area
                for (i, lv) in perLayer.enumerated() { layerValues[i] += lv * area }
                Self.scatterShifted(g, into: &gradient, imageWidth: w, imageHeight: h, dx: dx, dy: dy,
                                    x: x0, y: y0, width: x1 - x0, height: y1 - y0)
                // Each tile's activations are freed when it is done; hand their pages back before the next tile so that
                // the freed blocks' fragments do not add up across tiles (1024² dream: about 400-460 -> 320-345 MB).
                if tiled { FreeMemory.returnToSystem() }
            }
        }
        let meanAbs = gradient.reduce(Float(0)) { $0 + abs($1) } / Float(max(gradient.count, 1))
        let scale = settings.step / max(meanAbs, 1e-8)
        image.pixels.withUnsafeMutableBufferPointer { p in
            gradient.withUnsafeBufferPointer { g in
                for i in 0..<p.count { p[i] = min(255, max(0, p[i] + scale * g[i])) }
            }
        }
        lastLayerValues = layerValues
        return value
    }

    /// Source row/column of position `i` of the image shifted circularly by `shift`.
    @inline(__always)
    static func wrapped(_ i: Int, _ shift: Int, _ length: Int) -> Int { ((i - shift) % length + length) % length }

    /// The columns x..<x+width of the image shifted circularly by `shift`, as at most two runs of consecutive source
    /// columns (the wrap-around splits a run once): (first tile column, first source column, length).
    static func wrappedRuns(_ x: Int, width: Int, shift: Int, length: Int) -> [(column: Int, source: Int, count: Int)] {
        var runs: [(column: Int, source: Int, count: Int)] = []
        var col = 0
        while col < width {
            let source = wrapped(x + col, shift, length)
            let count = min(width - col, length - source)
            runs.append((col, source, count))
            col += count
        }
        return runs
    }

    /// The region (x, y, width, height) of the image shifted circularly by (dx, dy), without shifting the whole image.
    public static func shiftedCrop(_ image: RGBImage, dx: Int, dy: Int, x: Int, y: Int, width: Int, height: Int) -> RGBImage {
        let w = image.width, h = image.height
        let runs = wrappedRuns(x, width: width, shift: dx, length: w)
        let pixels = [Float](unsafeUninitializedCapacity: width * height * 3) { dst, initialized in
            image.pixels.withUnsafeBufferPointer { src in
                for row in 0..<height {
                    let sourceRow = src.baseAddress! + wrapped(y + row, dy, h) * w * 3
                    for run in runs {
                        (dst.baseAddress! + (row * width + run.column) * 3).initialize(from: sourceRow + run.source * 3, count: run.count * 3)
                    }
                }
            }
            initialized = width * height * 3
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    /// Writes a tile's gradient back to the unshifted positions it came from.
    public static func scatterShifted(_ g: [Float], into gradient: inout [Float], imageWidth w: Int, imageHeight h: Int,
                               dx: Int, dy: Int, x: Int, y: Int, width: Int, height: Int) {
        let runs = wrappedRuns(x, width: width, shift: dx, length: w)
        g.withUnsafeBufferPointer { src in
            gradient.withUnsafeMutableBufferPointer { dst in
                for row in 0..<height {
                    let targetRow = dst.baseAddress! + wrapped(y + row, dy, h) * w * 3
                    for run in runs {
                        (targetRow + run.source * 3).update(from: src.baseAddress! + (row * width + run.column) * 3, count: run.count * 3)
                    }
                }
            }
        }
    }

    /// Splits 0..<length into the fewest tiles of at most `tile`, of equal sizes (within one pixel): memory is
    /// bounded by `tile` (a 731-pixel octave with 512-pixel tiles runs two tiles of 365 and 366, not one of 731), and
    /// no sliver of a tile sees too little context.
    public static func spans(_ length: Int, tile: Int) -> [(Int, Int)] {
        guard length > tile, tile > 0 else { return [(0, length)] }
        let count = (length + tile - 1) / tile
        return (0..<count).map { i in (i * length / count, (i + 1) * length / count) }
    }
}
