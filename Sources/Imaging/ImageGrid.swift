/// Tiles of equal size (e.g. one per feature-map channel) arranged in a labelled grid.
public enum ImageGrid {
    /// Grid geometry: `columns` defaults to ceil(sqrt(count)); separators run between tiles and around the border,
    /// and each row of tiles has `labelHeight` pixels below it for labels.
    public static func layout(tileCount: Int, tileWidth: Int, tileHeight: Int, columns: Int?, separator: Int,
                              labelHeight: Int) -> (columns: Int, rows: Int, width: Int, height: Int) {
        guard tileCount > 0 else { return (0, 0, separator, separator) }
        let requested = columns ?? Int(Double(tileCount).squareRoot().rounded(.up))
        let cols = min(max(requested, 1), tileCount)
        let rows = (tileCount + cols - 1) / cols
        return (cols, rows, cols * tileWidth + (cols + 1) * separator, rows * (tileHeight + labelHeight) + (rows + 1) * separator)
    }

    /// The font scale used for labels under tiles this wide.
    public static func labelScale(tileWidth: Int) -> Int { tileWidth >= 160 ? 2 : 1 }

    /// Label band height for tiles this wide (0 without labels).
    public static func labelHeight(tileWidth: Int, hasLabels: Bool) -> Int {
        hasLabels ? (BitmapFont.glyphHeight + 3) * labelScale(tileWidth: tileWidth) : 0
    }

    /// Composes the tiles (all the same size) row by row; `labels` (one per tile) are drawn centred under each tile,
    /// cut to the tile's width. Separators and empty cells take `separatorColor` (default: the background).
    public static func compose(_ tiles: [RGBImage], columns: Int? = nil, separator: Int = 2, labels: [String]? = nil,
                               background: (r: Float, g: Float, b: Float) = (255, 255, 255),
                               separatorColor: (r: Float, g: Float, b: Float)? = nil) -> RGBImage {
        guard let first = tiles.first else { return RGBImage(width: 1, height: 1, fill: background) }
        let tw = first.width, th = first.height
        precondition(tiles.allSatisfy { $0.width == tw && $0.height == th }, "ImageGrid: tiles differ in size")
        let sep = max(separator, 0)
        let labelBand = labelHeight(tileWidth: tw, hasLabels: labels != nil)
        let g = layout(tileCount: tiles.count, tileWidth: tw, tileHeight: th, columns: columns, separator: sep, labelHeight: labelBand)
        var out = RGBImage(width: g.width, height: g.height, fill: separatorColor ?? background)
        // Background behind each cell (tile + label band) so separators stay visible in their own colour.
        let scale = labelScale(tileWidth: tw)
        let luminance = 0.299 * background.r + 0.587 * background.g + 0.114 * background.b
        let ink: (r: Float, g: Float, b: Float) = luminance > 128 ? (0, 0, 0) : (255, 255, 255)
        for (index, tile) in tiles.enumerated() {
            let x0 = sep + (index % g.columns) * (tw + sep)
            let y0 = sep + (index / g.columns) * (th + labelBand + sep)
            out.paste(tile, x: x0, y: y0)
            if labelBand > 0 {
                out.fill(x: x0, y: y0 + th, width: tw, height: labelBand, color: background)
                if let labels, index < labels.count {
                    let text = BitmapFont.fitting(labels[index], width: tw, scale: scale)
                    let textX = x0 + (tw - BitmapFont.textWidth(text, scale: scale)) / 2
                    BitmapFont.draw(text, on: &out, x: textX, y: y0 + th + 2 * scale, scale: scale, color: ink)
                }
            }
        }
        return out
    }
}

extension RGBImage {
    /// Copies `tile` into this image with its top-left at (x, y), clipped to the bounds.
    public mutating func paste(_ tile: RGBImage, x: Int, y: Int) {
        let x0 = max(x, 0), y0 = max(y, 0), x1 = min(x + tile.width, width), y1 = min(y + tile.height, height)
        guard x0 < x1, y0 < y1 else { return }
        let w = width
        pixels.withUnsafeMutableBufferPointer { dst in
            tile.pixels.withUnsafeBufferPointer { src in
                for row in y0..<y1 {
                    let s = src.baseAddress! + 3 * ((row - y) * tile.width + (x0 - x))
                    (dst.baseAddress! + 3 * (row * w + x0)).update(from: s, count: 3 * (x1 - x0))
                }
            }
        }
    }

    /// Fills a rectangle (clipped to the bounds) with one colour.
    public mutating func fill(x: Int, y: Int, width rw: Int, height rh: Int, color: (r: Float, g: Float, b: Float)) {
        let x0 = max(x, 0), y0 = max(y, 0), x1 = min(x + rw, width), y1 = min(y + rh, height)
        guard x0 < x1, y0 < y1 else { return }
        let w = width
        pixels.withUnsafeMutableBufferPointer { p in
            for row in y0..<y1 {
                for col in x0..<x1 {
                    let i = 3 * (row * w + col)
                    p[i] = color.r; p[i + 1] = color.g; p[i + 2] = color.b
                }
            }
        }
    }
}
