import Foundation
import SafeIO
import Imaging

/// The report folder of a run: `training.csv`, `curves.png`, `confusion.png` + `confusion.txt`, `per_class.csv`,
/// thumbnails of the worst-misclassified validation images and an `index.html` showing it all (relative links, no
/// scripts), so that the loss curve gets looked at.
public enum TrainingReport {
    public struct Written {
        public var directory: URL
        public var files: [String]
    }

    public static func write(to directory: URL, model: String, history: [EpochRecord], bestEpoch: Int,
                             metrics: ClassificationMetrics?, predictions: [ValidationPrediction],
                             summary: [(String, String)]) throws -> Written {
        try TemporaryFiles.createFolder(directory)
        var files: [String] = []
        func put(_ text: String, _ name: String) throws {
            try AtomicFile.write(Data(text.utf8), to: directory.appendingPathComponent(name))
            files.append(name)
        }
        func f(_ v: Double?) -> String { v.map { String(format: "%.6g", $0) } ?? "" }
        try put("epoch,train_loss,train_accuracy,val_loss,val_accuracy,val_mae,seconds\n" + history.map {
            "\($0.epoch),\(f($0.trainLoss)),\(f($0.trainAccuracy)),\(f($0.valLoss)),\(f($0.valAccuracy)),\(f($0.valMAE)),\(f($0.seconds))"
        }.joined(separator: "\n") + "\n", "training.csv")
        try ImageFile.writePNG(curves(history), to: directory.appendingPathComponent("curves.png"))
        files.append("curves.png")

        var worst: [(ValidationPrediction, String)] = []
        if let metrics {
            try put(metrics.rendered(), "confusion.txt")
            try put("class,precision,recall,f1,images\n" + metrics.perClass.map {
                "\(csvField($0.label)),\(f($0.precision)),\(f($0.recall)),\(f($0.f1)),\($0.support)"
            }.joined(separator: "\n") + "\n", "per_class.csv")
            try ImageFile.writePNG(confusionImage(metrics), to: directory.appendingPathComponent("confusion.png"))
            files.append("confusion.png")
            // Misclassified, least probability on the true class first.
            let wrong = predictions.filter { $0.predicted != $0.sample.classIndex }.sorted { $0.score < $1.score }.prefix(12)
            let thumbs = directory.appendingPathComponent("misclassified")
            if !wrong.isEmpty { try TemporaryFiles.createFolder(thumbs) }
            for (k, p) in wrong.enumerated() {
                guard let image = try? ImageFile.read(p.sample.url) else { continue }
                let scale = 160.0 / Double(max(image.width, image.height))
                let thumb = scale < 1 ? image.resized(width: max(1, Int(Double(image.width) * scale)), height: max(1, Int(Double(image.height) * scale))) : image
                let name = "misclassified/\(k + 1).png"
                try ImageFile.writePNG(thumb, to: directory.appendingPathComponent(name))
                files.append(name)
                worst.append((p, name))
            }
        }
        try put(html(model: model, history: history, bestEpoch: bestEpoch, metrics: metrics, worst: worst, summary: summary), "index.html")
        return Written(directory: directory, files: files)
    }

    static func csvField(_ s: String) -> String {
        s.contains(where: { ",\"\n".contains($0) }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    /// Loss (train, validation) above accuracy (train, validation), by epoch.
    public static func curves(_ history: [EpochRecord]) -> RGBImage {
        var loss = LinePlot(title: "Loss", xLabel: "epoch", yLabel: "loss",
                            series: [("train", history.map(\.trainLoss))] + (history.contains { $0.valLoss != nil } ? [("validation", history.map { $0.valLoss ?? .nan })] : []))
        loss.xStart = 1
        let regression = history.first?.trainAccuracy == nil
        var second = regression
            ? LinePlot(title: "Validation mean absolute error", xLabel: "epoch", yLabel: "MAE", series: [("validation", history.map { $0.valMAE ?? .nan })])
            : LinePlot(title: "Accuracy", xLabel: "epoch", yLabel: "accuracy",
                       series: [("train", history.map { $0.trainAccuracy ?? .nan })] + (history.contains { $0.valAccuracy != nil } ? [("validation", history.map { $0.valAccuracy ?? .nan })] : []))
        second.xStart = 1
        return ImageGrid.compose([loss.renderPNG(width: 640, height: 360), second.renderPNG(width: 640, height: 360)], columns: 1, separator: 0)
    }

    /// The confusion matrix as coloured cells (share of the true class, viridis) with counts and class names.
    public static func confusionImage(_ metrics: ClassificationMetrics) -> RGBImage {
        let n = metrics.labels.count, cell = n <= 6 ? 72 : n <= 12 ? 48 : 28, scale = cell >= 48 ? 2 : 1
        let labelChars = min(16, metrics.labels.map(\.count).max() ?? 1)
        let margin = (labelChars + 1) * (BitmapFont.glyphWidth + 1) * scale + 8
        let title = "rows: true class, columns: predicted"
        let top = 32, height = top + n * cell + 28
        let width = max(margin + n * cell + 12, BitmapFont.textWidth(title, scale: 1) + 16)
        var image = RGBImage(width: width, height: max(height, margin), fill: (255, 255, 255))
        let ink: (r: Float, g: Float, b: Float) = (0, 0, 0)
        BitmapFont.draw(title, on: &image, x: margin, y: 12, scale: 1, color: ink)
        for (r, row) in metrics.confusion.enumerated() {
            let total = max(row.reduce(0, +), 1)
            let name = BitmapFont.fitting(metrics.labels[r], width: margin - 12, scale: scale)
            BitmapFont.draw(name, on: &image, x: margin - 6 - BitmapFont.textWidth(name, scale: scale),
                            y: top + r * cell + (cell - BitmapFont.glyphHeight * scale) / 2, scale: scale, color: ink)
            for (c, count) in row.enumerated() {
                let share = Float(count) / Float(total)
                let color = ColorMap.viridis.color(at: share)
                image.fill(x: margin + c * cell, y: top + r * cell, width: cell - 1, height: cell - 1, color: color)
                let text = String(count)
                let light = 0.299 * color.r + 0.587 * color.g + 0.114 * color.b > 128
                BitmapFont.draw(text, on: &image, x: margin + c * cell + (cell - BitmapFont.textWidth(text, scale: scale)) / 2,
                                y: top + r * cell + (cell - BitmapFont.glyphHeight * scale) / 2, scale: scale,
                                color: light ? (0, 0, 0) : (255, 255, 255))
            }
        }
        for c in 0..<n {
            let name = BitmapFont.fitting(metrics.labels[c], width: cell - 4, scale: 1)
            BitmapFont.draw(name, on: &image, x: margin + c * cell + (cell - BitmapFont.textWidth(name, scale: 1)) / 2,
                            y: top + n * cell + 6, scale: 1, color: ink)
        }
        return image
    }

    static func html(model: String, history: [EpochRecord], bestEpoch: Int, metrics: ClassificationMetrics?,
                     worst: [(ValidationPrediction, String)], summary: [(String, String)]) -> String {
        func e(_ s: String) -> String { xmlEscape(s) }
        func pct(_ v: Double?) -> String { v.map { String(format: "%.1f %%", 100 * $0) } ?? "–" }
        var h = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>Training report — \(e(model))</title>
        <style>
        body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fff; max-width: 1100px; }
        table { border-collapse: collapse; font-size: 13px; margin: 0.5em 0; }
        th, td { padding: 2px 10px; border-bottom: 1px solid #ddd; text-align: left; }
        td.n { text-align: right; font-variant-numeric: tabular-nums; }
        tr.best td { background: #eef6e8; }
        img { max-width: 100%; height: auto; border: 1px solid #ccc; }
        figure { display: inline-block; margin: 0 12px 12px 0; vertical-align: top; font-size: 12px; }
        .meta { color: #555; }
        </style>
        </head>
        <body>
        <h1>Training report — \(e(model))</h1>
        <table>

        """
        for (k, v) in summary { h += "<tr><th>\(e(k))</th><td>\(e(v))</td></tr>\n" }
        h += "</table>\n<h2>Curves</h2>\n<p><img src=\"curves.png\" alt=\"loss and accuracy by epoch\"></p>\n"
        h += "<p class=\"meta\">Always check the loss curve: validation loss rising while training loss falls means over-fitting; the saved model is the epoch with the lowest validation loss (epoch \(bestEpoch)). Numbers: <a href=\"training.csv\">training.csv</a>.</p>\n"
        h += "<table>\n<tr><th>epoch</th><th>train loss</th><th>train accuracy</th><th>val loss</th><th>val accuracy</th><th>seconds</th></tr>\n"
        for r in history {
            h += "<tr\(r.epoch == bestEpoch ? " class=\"best\"" : "")><td class=\"n\">\(r.epoch)</td><td class=\"n\">\(String(format: "%.4f", r.trainLoss))</td><td class=\"n\">\(pct(r.trainAccuracy))</td>"
            h += "<td class=\"n\">\(r.valLoss.map { String(format: "%.4f", $0) } ?? "–")</td><td class=\"n\">\(pct(r.valAccuracy))</td><td class=\"n\">\(String(format: "%.2f", r.seconds))</td></tr>\n"
        }
        h += "</table>\n"
        if let metrics {
            h += "<h2>Validation: confusion matrix</h2>\n<p><img src=\"confusion.png\" alt=\"confusion matrix\"></p>\n"
            h += "<table>\n<tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>images</th></tr>\n"
            for c in metrics.perClass {
                h += "<tr><td>\(e(c.label))</td><td class=\"n\">\(String(format: "%.3f", c.precision))</td><td class=\"n\">\(String(format: "%.3f", c.recall))</td><td class=\"n\">\(String(format: "%.3f", c.f1))</td><td class=\"n\">\(c.support)</td></tr>\n"
            }
            h += "</table>\n<p class=\"meta\">Accuracy \(pct(metrics.accuracy)); as text: <a href=\"confusion.txt\">confusion.txt</a>, <a href=\"per_class.csv\">per_class.csv</a>.</p>\n"
            h += "<h2>Worst-misclassified validation images</h2>\n"
            if worst.isEmpty { h += "<p>None: every validation image was classified correctly.</p>\n" }
            for (p, file) in worst {
                let truth = metrics.labels[p.sample.classIndex], predicted = metrics.labels[p.predicted]
                h += "<figure><img src=\"\(e(file))\" alt=\"\(e(p.sample.name))\"><figcaption>\(e(p.sample.name))<br>true \(e(truth)) (p = \(String(format: "%.2f", p.score))), predicted <b>\(e(predicted))</b></figcaption></figure>\n"
            }
        }
        h += "</body>\n</html>\n"
        return h
    }
}
