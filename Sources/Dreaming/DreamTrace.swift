import Foundation
import SafeIO
import Imaging

/// The objective of every step of a dream (or of every frame of a zoom sequence), kept for a CSV and a plot:
/// what a progress bar shows and forgets.
public struct DreamTrace {
    public struct Row: Equatable {
        /// The zoom frame (nil for a single dream).
        public var frame: Int?
        public var octave: Int
        public var iteration: Int
        /// The objective the step ascended (normalised when the layers are).
        public var objective: Double
        public var stepSeconds: Double
        /// Each layer's own term (unweighted, not normalised), in the order of the layers.
        public var layerObjectives: [Double]
    }

    /// The layers' descriptions, for the per-layer columns (written when there are several layers).
    public var layers: [String]
    public private(set) var rows: [Row] = []

    public init(layers: [String]) { self.layers = layers }

    public mutating func record(_ p: DreamProgress, frame: Int? = nil) {
        rows.append(Row(frame: frame, octave: p.octave, iteration: p.iteration, objective: p.objective,
                        stepSeconds: p.stepSeconds, layerObjectives: p.layerObjectives))
    }

    var hasFrames: Bool { rows.contains { $0.frame != nil } }

    /// One row per step: `[frame,]octave,iteration,objective,step_seconds[,objective:<layer>…]`.
    public var csv: String {
        let perLayer = layers.count > 1
        var header = (hasFrames ? ["frame"] : []) + ["octave", "iteration", "objective", "step_seconds"]
        if perLayer { header += layers.map { Self.csvField("objective:" + $0) } }
        var lines = [header.joined(separator: ",")]
        for row in rows {
            var cells = (hasFrames ? [row.frame.map(String.init) ?? ""] : []) + [String(row.octave), String(row.iteration),
                                                                                 String(format: "%.6g", row.objective),
                                                                                 String(format: "%.4f", row.stepSeconds)]
            if perLayer { cells += layers.indices.map { $0 < row.layerObjectives.count ? String(format: "%.6g", row.layerObjectives[$0]) : "" } }
            lines.append(cells.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func csvField(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    /// The objective against the iteration, one line per octave; for a zoom sequence one line over every step.
    public var plot: LinePlot {
        if hasFrames {
            return LinePlot(title: "Dream objective", xLabel: "step (all frames)", yLabel: "objective",
                            series: [("objective", rows.map(\.objective))])
        }
        let octaves = Array(Set(rows.map(\.octave))).sorted()
        var plot = LinePlot(title: "Dream objective", xLabel: "iteration", yLabel: "objective",
                            series: octaves.map { o in ("octave \(o)", rows.filter { $0.octave == o }.map(\.objective)) })
        plot.xStart = 1
        return plot
    }

    /// Writes the CSV (and the plot, when asked) atomically.
    public func write(csv url: URL?, plot plotURL: URL?) throws {
        if let url { try AtomicFile.write(Data(csv.utf8), to: url) }
        if let plotURL { try ImageFile.write(plot.renderPNG(), to: plotURL) }
    }
}
