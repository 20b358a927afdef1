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
