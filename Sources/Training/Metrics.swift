import Foundation

/// Accuracy, per-class precision / recall / F1 and the confusion matrix (rows: true class, columns: predicted).
public struct ClassificationMetrics: Codable, Equatable, Sendable {
    public struct PerClass: Codable, Equatable, Sendable {
        public var label: String
        public var support: Int
        public var precision: Double
        public var recall: Double
        public var f1: Double
    }

    public var labels: [String]
    public var confusion: [[Int]]
    public var accuracy: Double
    public var perClass: [PerClass]

    /// `pairs` are (true class, predicted class).
    public init(labels: [String], pairs: [(truth: Int, predicted: Int)]) {
        self.labels = labels
        var m = Array(repeating: Array(repeating: 0, count: labels.count), count: labels.count)
        for (t, p) in pairs where t < labels.count && p < labels.count { m[t][p] += 1 }
        confusion = m
        let total = pairs.count
        accuracy = total == 0 ? 0 : Double(labels.indices.reduce(0) { $0 + m[$1][$1] }) / Double(total)
        perClass = labels.indices.map { c in
            let tp = Double(m[c][c])
            let predicted = Double(labels.indices.reduce(0) { $0 + m[$1][c] })
            let actual = Double(m[c].reduce(0, +))
            // 0 where undefined (no predictions / no examples), as scikit-learn's zero_division=0.
            let precision = predicted > 0 ? tp / predicted : 0, recall = actual > 0 ? tp / actual : 0
            let f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
            return PerClass(label: labels[c], support: Int(actual), precision: precision, recall: recall, f1: f1)
        }
    }

    public var macroF1: Double { perClass.isEmpty ? 0 : perClass.map(\.f1).reduce(0, +) / Double(perClass.count) }

    /// Per-class table and confusion matrix as aligned text.
    public func rendered() -> String {
        let width = max(10, (labels.map(\.count).max() ?? 0) + 2)
        func pad(_ s: String, _ w: Int, right: Bool = false) -> String {
            let p = String(repeating: " ", count: max(0, w - s.count))
            return right ? p + s : s + p
        }
        var text = String(format: "accuracy %.4f (%d images), macro F1 %.4f\n\n", accuracy, confusion.joined().reduce(0, +), macroF1)
        text += pad("class", width) + pad("precision", 11, right: true) + pad("recall", 9, right: true) + pad("F1", 9, right: true) + pad("images", 8, right: true) + "\n"
        for c in perClass {
            text += pad(c.label, width) + pad(String(format: "%.3f", c.precision), 11, right: true) + pad(String(format: "%.3f", c.recall), 9, right: true)
                + pad(String(format: "%.3f", c.f1), 9, right: true) + pad(String(c.support), 8, right: true) + "\n"
        }
        let cell = max(6, (labels.map(\.count).max() ?? 0) + 1)
        text += "\nconfusion matrix (rows: true class, columns: predicted)\n"
        text += pad("", width) + labels.map { pad(String($0.prefix(cell - 1)), cell, right: true) }.joined() + "\n"
        for (c, row) in confusion.enumerated() {
            text += pad(labels[c], width) + row.map { pad(String($0), cell, right: true) }.joined() + "\n"
        }
        return text
    }
}
