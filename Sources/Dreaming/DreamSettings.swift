import Foundation

/// Parameters of a dream. Defaults are those of the original DeepDream notebook (Mordvintsev et al., 2015).
public struct DreamSettings: Equatable {
    public var layers: [DreamLayer]
    public var octaves = 4
    public var octaveScale: Float = 1.4
    public var iterations = 10
    /// Gradient-ascent step on the 0–255 pixel scale, with the gradient normalised by its mean absolute value.
    public var step: Float = 1.5
    /// Maximum random shift (pixels) of the image before each step, undone after.
    public var jitter = 32
    public var seed: UInt64 = 0
    /// Images larger than this (pixels, per side) have their gradient computed in tiles of this size.
    public var tileSize = 512
    /// Divide each layer's term by its value on the octave's start image (neural-dream's -normalize_weights), so that
    /// several layers pull comparably whatever the scale of their activations.
    public var normalizeLayers = false

    public init(layers: [DreamLayer]) { self.layers = layers }

    /// The defaults, for whatever shows or parses settings (the CLI's options take their defaults from here).
    public static let defaults = DreamSettings(layers: [])

    /// The settings as text, for the PNG's text chunks: enough to reproduce the result.
    public var summary: String {
        "layers=\(layers.map(\.description).joined(separator: ",")) octaves=\(octaves) octave_scale=\(octaveScale) "
            + "iterations=\(iterations) step=\(step) jitter=\(jitter) seed=\(seed) tile=\(tileSize)"
            + (normalizeLayers ? " normalize_layers=1" : "")
    }
}

/// Where a dream is, for progress displays.
public struct DreamProgress {
    public var octave: Int
    public var octaves: Int
    public var iteration: Int
    public var iterations: Int
    public var objective: Double
    public var width: Int
    public var height: Int
    public var elapsed: TimeInterval
    /// Estimated from the work done so far, which grows with the octave's area.
    public var remaining: TimeInterval
    /// Time taken by this step alone.
    public var stepSeconds: TimeInterval = 0
    /// Each layer's own term (unweighted, not normalised) in this step, in the order of the settings' layers.
    public var layerObjectives: [Double] = []
}
