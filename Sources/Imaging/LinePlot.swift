import Foundation

/// Line chart of one or more series (loss curves, accuracies) with axes, ticks, labels and a legend, as PNG pixels or SVG.
public struct LinePlot: Sendable {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [(name: String, values: [Double])]
    /// x of the first value and the step between values (e.g. 1 and 1 for epochs counted from 1).
    public var xStart: Double = 0
    public var xStep: Double = 1
    /// Series colours, used in turn (matplotlib's tab10 by default).
    public var colors: [(r: Float, g: Float, b: Float)] = LinePlot.tab10

    public static let tab10: [(r: Float, g: Float, b: Float)] = [
        (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
        (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
    ]

    public init(title: String, xLabel: String, yLabel: String, series: [(name: String, values: [Double])]) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
    }

    func color(_ i: Int) -> (r: Float, g: Float, b: Float) { colors.isEmpty ? (0, 0, 0) : colors[i % colors.count] }

    /// Everything both renderers need: the plot rectangle (pixels), the data box and the ticks.
    struct Geometry {
        var left, top, right, bottom: Double
        var xTicks: [Double], yTicks: [Double]
        var xRange: ClosedRange<Double>, yRange: ClosedRange<Double>
        var xDecimals: Int, yDecimals: Int

        func px(_ x: Double) -> Double { left + (x - xRange.lowerBound) / (xRange.upperBound - xRange.lowerBound) * (right - left) }
        func py(_ y: Double) -> Double { bottom - (y - yRange.lowerBound) / (yRange.upperBound - yRange.lowerBound) * (bottom - top) }
    }

    /// Ticks at 1, 2 or 5 times a power of ten, about `count` of them, covering `range`; the range grows to whole ticks.
    static func niceTicks(_ range: ClosedRange<Double>, count: Int) -> (ticks: [Double], range: ClosedRange<Double>, decimals: Int) {
        var lo = range.lowerBound, hi = range.upperBound
        if !(hi > lo) { let pad = lo == 0 ? 1 : abs(lo) * 0.1; lo -= pad; hi += pad }
        let raw = (hi - lo) / Double(max(count, 1))
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        let first = (lo / step).rounded(.down) * step, last = (hi / step).rounded(.up) * step
        var ticks: [Double] = []
        var t = first
        while t <= last + step * 0.5 && ticks.count < 50 { ticks.append(abs(t) < step * 1e-9 ? 0 : t); t += step }
        return (ticks, first...last, max(0, Int(-log10(step).rounded(.down))))
    }

    static func format(_ v: Double, decimals: Int) -> String {
        if abs(v) >= 1e6 || (abs(v) < 1e-4 && v != 0) { return String(format: "%.2g", v) }
        return String(format: "%.\(min(decimals, 6))f", v)
    }

    func geometry(width: Int, height: Int, charWidth: Double, charHeight: Double, titleHeight: Double) -> Geometry {
        let count = series.map(\.values.count).max() ?? 0
        let xLast = xStart + Double(max(count - 1, 1)) * xStep
        var lo = Double.infinity, hi = -Double.infinity
        for s in series { for v in s.values where v.isFinite { lo = min(lo, v); hi = max(hi, v) } }
        if lo > hi { lo = 0; hi = 1 }
        let xt = LinePlot.niceTicks(min(xStart, xLast)...max(xStart, xLast), count: 8)
        let yt = LinePlot.niceTicks(lo...hi, count: 6)
        let yLabelWidth = yt.ticks.map { Double(LinePlot.format($0, decimals: yt.decimals).count) * charWidth }.max() ?? 0
        let left = (yLabel.isEmpty ? 8 : charHeight + 14) + yLabelWidth + 8
        let top = (title.isEmpty ? 10 : titleHeight + 16)
        let bottom = Double(height) - (charHeight + 12) - (xLabel.isEmpty ? 4 : charHeight + 10)
        let right = Double(width) - 16
        return Geometry(left: left, top: top, right: max(right, left + 10), bottom: max(bottom, top + 10),
                        xTicks: xt.ticks, yTicks: yt.ticks, xRange: xt.range, yRange: yt.range,
                        xDecimals: xt.decimals, yDecimals: yt.decimals)
    }

    /// Renders the chart as an image (white background).
    public func renderPNG(width: Int = 640, height: Int = 400) -> RGBImage {
        let scale = width >= 1000 ? 2 : 1, titleScale = 2 * scale
        let charW = Double(6 * scale), charH = Double(BitmapFont.glyphHeight * scale)
        let g = geometry(width: width, height: height, charWidth: charW, charHeight: charH,
                         titleHeight: Double(BitmapFont.glyphHeight * titleScale))
        var img = RGBImage(width: width, height: height, fill: (255, 255, 255))
        let black: (r: Float, g: Float, b: Float) = (0, 0, 0), grid: (r: Float, g: Float, b: Float) = (225, 225, 225)
        let ink: (r: Float, g: Float, b: Float) = (60, 60, 60)
        // Grid lines and tick labels.
        for t in g.yTicks {
            let y = g.py(t).rounded() + 0.5
            img.drawLine(from: (g.left, y), to: (g.right, y), color: grid)
            img.drawLine(from: (g.left - 4, y), to: (g.left, y), color: black)
            let text = LinePlot.format(t, decimals: g.yDecimals)
            BitmapFont.draw(text, on: &img, x: Int(g.left) - 7 - BitmapFont.textWidth(text, scale: scale),
                            y: Int(y - charH / 2 + Double(scale)), scale: scale, color: ink)
        }
        for t in g.xTicks {
            let x = g.px(t).rounded() + 0.5
            img.drawLine(from: (x, g.top), to: (x, g.bottom), color: grid)
            img.drawLine(from: (x, g.bottom), to: (x, g.bottom + 4), color: black)
            let text = LinePlot.format(t, decimals: g.xDecimals)
            BitmapFont.draw(text, on: &img, x: Int(x) - BitmapFont.textWidth(text, scale: scale) / 2,
                            y: Int(g.bottom) + 7, scale: scale, color: ink)
        }
        // Frame.
        let l = g.left.rounded() + 0.5, r = g.right.rounded() + 0.5, t = g.top.rounded() + 0.5, b = g.bottom.rounded() + 0.5
        img.drawLine(from: (l, t), to: (r, t), color: black); img.drawLine(from: (l, b), to: (r, b), color: black)
        img.drawLine(from: (l, t), to: (l, b), color: black); img.drawLine(from: (r, t), to: (r, b), color: black)
        // Series.
        for (k, s) in series.enumerated() {
            var previous: (x: Double, y: Double)? = nil
            for (i, v) in s.values.enumerated() {
                guard v.isFinite else { previous = nil; continue }   // gaps for NaN/inf
                let p = (x: g.px(xStart + Double(i) * xStep), y: g.py(v))
                if let previous { img.drawLine(from: previous, to: p, thickness: 2 * Double(scale), color: color(k)) }
                else if s.values.count == 1 { img.drawLine(from: p, to: p, thickness: 5, color: color(k)) }
                previous = p
            }
        }
        // Title, axis labels (the y label turned a quarter counter-clockwise).
        if !title.isEmpty {
            BitmapFont.draw(title, on: &img, x: (width - BitmapFont.textWidth(title, scale: titleScale)) / 2, y: 8,
                            scale: titleScale, color: black)
        }
        if !xLabel.isEmpty {
            BitmapFont.draw(xLabel, on: &img, x: Int((g.left + g.right) / 2) - BitmapFont.textWidth(xLabel, scale: scale) / 2,
                            y: height - Int(charH) - 6, scale: scale, color: black)
        }
        if !yLabel.isEmpty {
            var band = RGBImage(width: max(BitmapFont.textWidth(yLabel, scale: scale), 1), height: Int(charH), fill: (255, 255, 255))
            BitmapFont.draw(yLabel, on: &band, x: 0, y: 0, scale: scale, color: black)
            let turned = band.applyingEXIFOrientation(8)
            img.paste(turned, x: 6, y: Int((g.top + g.bottom) / 2) - turned.height / 2)
        }
        // Legend in the top-right corner of the plot.
        if series.count > 1 || !(series.first?.name.isEmpty ?? true) {
            let lineH = Int(charH) + 4 * scale
            let textW = series.map { BitmapFont.textWidth($0.name, scale: scale) }.max() ?? 0
            let boxW = textW + 30 * scale, boxH = series.count * lineH + 6 * scale
            let bx = Int(g.right) - boxW - 8, by = Int(g.top) + 8
            img.fill(x: bx, y: by, width: boxW, height: boxH, color: (255, 255, 255))
            let bl = Double(bx) + 0.5, br = Double(bx + boxW) + 0.5, bt = Double(by) + 0.5, bb = Double(by + boxH) + 0.5
            img.drawLine(from: (bl, bt), to: (br, bt), color: (170, 170, 170)); img.drawLine(from: (bl, bb), to: (br, bb), color: (170, 170, 170))
            img.drawLine(from: (bl, bt), to: (bl, bb), color: (170, 170, 170)); img.drawLine(from: (br, bt), to: (br, bb), color: (170, 170, 170))
            for (k, s) in series.enumerated() {
                let y = by + 4 * scale + k * lineH
                let mid = Double(y) + charH / 2 - Double(scale)
                img.drawLine(from: (Double(bx + 5 * scale), mid), to: (Double(bx + 21 * scale), mid), thickness: 2 * Double(scale), color: color(k))
                BitmapFont.draw(s.name, on: &img, x: bx + 25 * scale, y: y, scale: scale, color: black)
            }
        }
        return img
    }

    /// The same chart as a standalone SVG document.
    public func svg(width: Int = 640, height: Int = 400) -> String {
        let fontSize = 12.0
        let g = geometry(width: width, height: height, charWidth: fontSize * 0.6, charHeight: fontSize, titleHeight: 16)
        func n(_ v: Double) -> String { String(format: "%.2f", v) }
        func hex(_ c: (r: Float, g: Float, b: Float)) -> String {
            String(format: "#%02x%02x%02x", Int(min(max(c.r, 0), 255)), Int(min(max(c.g, 0), 255)), Int(min(max(c.b, 0), 255)))
        }
        var s = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)" \
        font-family="sans-serif" font-size="\(Int(fontSize))">
        <rect width="100%" height="100%" fill="white"/>

        """
        for t in g.yTicks {
            let y = n(g.py(t))
            s += "<line x1=\"\(n(g.left))\" y1=\"\(y)\" x2=\"\(n(g.right))\" y2=\"\(y)\" stroke=\"#e1e1e1\"/>\n"
            s += "<text x=\"\(n(g.left - 6))\" y=\"\(y)\" text-anchor=\"end\" dominant-baseline=\"middle\" fill=\"#3c3c3c\">\(xmlEscape(LinePlot.format(t, decimals: g.yDecimals)))</text>\n"
        }
        for t in g.xTicks {
            let x = n(g.px(t))
            s += "<line x1=\"\(x)\" y1=\"\(n(g.top))\" x2=\"\(x)\" y2=\"\(n(g.bottom))\" stroke=\"#e1e1e1\"/>\n"
            s += "<text x=\"\(x)\" y=\"\(n(g.bottom + 16))\" text-anchor=\"middle\" fill=\"#3c3c3c\">\(xmlEscape(LinePlot.format(t, decimals: g.xDecimals)))</text>\n"
        }
        s += "<rect x=\"\(n(g.left))\" y=\"\(n(g.top))\" width=\"\(n(g.right - g.left))\" height=\"\(n(g.bottom - g.top))\" fill=\"none\" stroke=\"black\"/>\n"
        for (k, series) in series.enumerated() {
            // NaN/inf values break the line into separate polylines.
            var runs: [[String]] = [[]]
            for (i, v) in series.values.enumerated() {
                if v.isFinite { runs[runs.count - 1].append("\(n(g.px(xStart + Double(i) * xStep))),\(n(g.py(v)))") }
                else if !(runs.last?.isEmpty ?? true) { runs.append([]) }
            }
            for run in runs where !run.isEmpty {
                s += "<polyline fill=\"none\" stroke=\"\(hex(color(k)))\" stroke-width=\"2\" stroke-linejoin=\"round\" points=\"\(run.joined(separator: " "))\"/>\n"
            }
        }
        if !title.isEmpty {
            s += "<text x=\"\(width / 2)\" y=\"20\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">\(xmlEscape(title))</text>\n"
        }
        if !xLabel.isEmpty {
            s += "<text x=\"\(n((g.left + g.right) / 2))\" y=\"\(height - 8)\" text-anchor=\"middle\">\(xmlEscape(xLabel))</text>\n"
        }
        if !yLabel.isEmpty {
            let cy = n((g.top + g.bottom) / 2)
            s += "<text x=\"16\" y=\"\(cy)\" text-anchor=\"middle\" transform=\"rotate(-90 16 \(cy))\">\(xmlEscape(yLabel))</text>\n"
        }
        if series.count > 1 || !(series.first?.name.isEmpty ?? true) {
            let boxW = Double(series.map(\.name.count).max() ?? 0) * fontSize * 0.6 + 40, lineH = fontSize + 6
            let bx = g.right - boxW - 8, by = g.top + 8
            s += "<rect x=\"\(n(bx))\" y=\"\(n(by))\" width=\"\(n(boxW))\" height=\"\(n(Double(series.count) * lineH + 8))\" fill=\"white\" stroke=\"#aaaaaa\"/>\n"
            for (k, series) in series.enumerated() {
                let y = by + 4 + Double(k) * lineH + lineH / 2
                s += "<line x1=\"\(n(bx + 6))\" y1=\"\(n(y))\" x2=\"\(n(bx + 28))\" y2=\"\(n(y))\" stroke=\"\(hex(color(k)))\" stroke-width=\"2\"/>\n"
                s += "<text x=\"\(n(bx + 34))\" y=\"\(n(y))\" dominant-baseline=\"middle\">\(xmlEscape(series.name))</text>\n"
            }
        }
        return s + "</svg>\n"
    }
}

/// Text made safe for XML/HTML content and attribute values (SVG plots, HTML reports).
public func xmlEscape(_ text: String) -> String {
    var out = ""
    for ch in text {
        switch ch {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        default: out.append(ch)
        }
    }
    return out
}
