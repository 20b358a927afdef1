import Foundation
import Imaging

/// The `index.html` of a feature-map folder: the input, the layer table and every grid, with relative links only
/// and no scripts or external assets, so it opens from the disk in any browser.
public enum FeatureReport {
    /// The page; `input` and the summaries' paths are relative to the folder the page is written in.
    public static func html(model: String, input: String, inputWidth: Int, inputHeight: Int,
                            normalization: FeatureNormalization, table: LayerTable?, layers: [LayerFeatureSummary]) -> String {
        let anchors = Dictionary(layers.map { ($0.layer, "layer-" + $0.folder) }, uniquingKeysWith: { a, _ in a })
        var h = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>Feature maps — \(escape(model))</title>
        <style>
        body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fff; max-width: 1400px; }
        table { border-collapse: collapse; font-size: 12px; }
        th, td { padding: 2px 8px; border-bottom: 1px solid #ddd; text-align: left; }
        td.n { text-align: right; font-variant-numeric: tabular-nums; }
        tr.shown td { background: #f3f7ff; }
        img { image-rendering: pixelated; max-width: 100%; height: auto; border: 1px solid #ccc; }
        section { margin: 2em 0; }
        .meta { color: #555; }
        </style>
        </head>
        <body id="top">
        <h1>Feature maps of \(escape(model))</h1>
        <p><img src="\(attribute(input))" alt="input image" width="\(inputWidth)" height="\(inputHeight)"></p>
        <p class="meta">Input \(inputWidth)×\(inputHeight). \(layers.count) layer\(layers.count == 1 ? "" : "s") shown;
        colours: viridis for non-negative maps, blue–white–red centred on 0 for signed maps;
        one scale per \(normalization == .channel ? "channel" : "layer").</p>

        """
        if let table {
            h += "<h2>Layers</h2>\n<table>\n<tr><th>#</th><th>layer</th><th>op</th><th>output</th><th>shape</th><th>parameters</th></tr>\n"
            for row in table.rows {
                let shape = row.outputShape.map { "[" + $0.map(String.init).joined(separator: ", ") + "]" } ?? "?"
                let anchor = anchors[row.output]
                let name = anchor.map { "<a href=\"#\(attribute($0))\">\(escape(row.layer))</a>" } ?? escape(row.layer)
                h += "<tr\(anchor == nil ? "" : " class=\"shown\"")><td class=\"n\">\(row.index)</td><td>\(name)</td><td>\(escape(row.op))</td>"
                h += "<td>\(escape(row.output))</td><td>\(shape)</td><td class=\"n\">\(row.parameters > 0 ? LayerTable.grouped(row.parameters) : "")</td></tr>\n"
            }
            h += "</table>\n<p class=\"meta\">\(LayerTable.grouped(table.totalParameters)) parameters; "
            h += String(format: "%.2f GMACs at this input size.</p>\n", Double(table.totalMACs) / 1e9)
        }
        for layer in layers {
            let id = anchors[layer.layer] ?? "layer-" + layer.folder
            h += "<section id=\"\(attribute(id))\">\n<h2>\(escape(layer.layer))</h2>\n"
            let shape = "[" + layer.shape.map(String.init).joined(separator: ", ") + "]"
            let shown = layer.shownChannels.count == layer.channels ? "all \(layer.channels) channels"
                : "\(layer.shownChannels.count) of \(layer.channels) channels (highest mean activation)"
            h += "<p class=\"meta\">\(escape(layer.op)) \(shape), \(shown); values "
            h += String(format: "%.3g … %.3g, highest channel mean %.3g", layer.minimum, layer.maximum, layer.maxMean)
            h += layer.signed ? " (signed)" : ""
            h += ". <a href=\"#top\">top</a></p>\n"
            h += "<a href=\"\(attribute(layer.grid))\"><img src=\"\(attribute(layer.grid))\" alt=\"\(escape(layer.layer)) channels\" loading=\"lazy\"></a>\n"
            if let overlay = layer.overlay {
                h += "<p><img src=\"\(attribute(overlay))\" alt=\"\(escape(layer.layer)) over the input\" loading=\"lazy\"></p>\n"
            }
            h += "</section>\n"
        }
        h += "</body>\n</html>\n"
        return h
    }

    static func escape(_ s: String) -> String { xmlEscape(s) }

    /// An attribute value: escaped, and path characters other than the safe set percent-encoded.
    static func attribute(_ s: String) -> String {
        escape(s.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn:
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/#")) ?? s)
    }
}
