import ArgumentParser
import Dreaming
import Foundation

/// A single self-overwriting status line on stderr (only when stderr is a terminal).
final class ProgressLine {
    let enabled: Bool
    private var lastLength = 0
    private var lastDraw = Date.distantPast

    init(enabled: Bool) { self.enabled = enabled }

    func update(_ text: String) {
        guard enabled, Date().timeIntervalSince(lastDraw) > 0.1 else { return }
        lastDraw = Date()
        let padded = text + String(repeating: " ", count: max(0, lastLength - text.count))
        lastLength = text.count
        FileHandle.standardError.write(Data(("\r" + padded).utf8))
    }

    func finish() {
        guard enabled, lastLength > 0 else { return }
        FileHandle.standardError.write(Data("\r\(String(repeating: " ", count: lastLength))\r".utf8))
    }

    static func duration(_ seconds: TimeInterval) -> String {
        guard seconds.isFinite else { return "?" }
        let s = Int(seconds.rounded())
        return s >= 60 ? "\(s / 60)m\(String(format: "%02d", s % 60))s" : "\(s)s"
    }
}

/// How `dream`, `noise` and `zoom` show their progress on stderr.
enum ProgressMode: String, CaseIterable, ExpressibleByArgument {
    /// A bar on a terminal, lines otherwise.
    case auto
    /// One self-overwriting line, updated every step.
    case bar
    /// One line per octave (logs, notebooks, pipes).
    case lines
    case none
}

/// Shows a dream's progress (bar or one line per octave) and keeps its trace for `--trace`.
final class DreamReporter {
    let mode: ProgressMode
    let bar: ProgressLine
    var trace: DreamTrace?
    /// The zoom frame being dreamt (nil for a single dream).
    var frame: Int?
    var frames: Int?
    private var octaveStartObjective = 0.0
    private var octaveStartTime = 0.0

    /// `requested` is resolved here: auto is a bar when stderr is a terminal, lines otherwise; quiet is none.
    init(requested: ProgressMode, quiet: Bool, tracing: Bool, layers: [String]) {
        var mode = quiet ? .none : requested
        if mode == .auto { mode = Console.stderrIsTerminal ? .bar : .lines }
        self.mode = mode
        bar = ProgressLine(enabled: mode == .bar)
        trace = tracing ? DreamTrace(layers: layers) : nil
    }

    private var framePrefix: String {
        guard let frame else { return "" }
        return frames.map { "frame \(frame)/\($0)  " } ?? "frame \(frame)  "
    }

    func update(_ p: DreamProgress) {
        trace?.record(p, frame: frame)
        switch mode {
        case .bar:
            bar.update(framePrefix + String(format: "octave %d/%d %4dx%-4d  iteration %2d/%d  objective %9.4f  %@ elapsed, %@ left",
                                            p.octave, p.octaves, p.width, p.height, p.iteration, p.iterations, p.objective,
                                            ProgressLine.duration(p.elapsed), ProgressLine.duration(p.remaining)))
        case .lines:
            if p.iteration == 1 {
                octaveStartObjective = p.objective
                octaveStartTime = p.elapsed - p.stepSeconds
            }
            guard p.iteration == p.iterations else { return }
            let line = framePrefix + String(format: "octave %d/%d  %dx%d  objective %.4g -> %.4g  %d iterations in %.1fs  (%@ elapsed, %@ left)",
                                            p.octave, p.octaves, p.width, p.height, octaveStartObjective, p.objective, p.iterations,
                                            p.elapsed - octaveStartTime, ProgressLine.duration(p.elapsed),
                                            ProgressLine.duration(p.remaining))
            FileHandle.standardError.write(Data((line + "\n").utf8))
        case .none, .auto:
            break
        }
    }

    /// Clears the bar (before other messages, and at the end).
    func finish() { bar.finish() }

    func writeTrace(csv: String?, plot: String?) throws {
        guard let trace, csv != nil || plot != nil else { return }
        let csvURL = csv.map { URL(fileURLWithPath: $0) }, plotURL = plot.map { URL(fileURLWithPath: $0) }
        try trace.write(csv: csvURL, plot: plotURL)
        if let csvURL { Console.status("wrote \(csvURL.path) (\(trace.rows.count) steps)") }
        if let plotURL { Console.status("wrote \(plotURL.path)") }
    }
}
