import Foundation

/// Antialiased primitives for plots.
extension RGBImage {
    /// Draws a segment `thickness` pixels wide with coverage-based antialiasing (coordinates in pixels, centres at +0.5).
    public mutating func drawLine(from a: (x: Double, y: Double), to b: (x: Double, y: Double), thickness: Double = 1,
                                  color: (r: Float, g: Float, b: Float)) {
        guard a.x.isFinite, a.y.isFinite, b.x.isFinite, b.y.isFinite else { return }
        let half = thickness / 2
        let x0 = max(0, Int((min(a.x, b.x) - half - 1).rounded(.down))), x1 = min(width - 1, Int((max(a.x, b.x) + half + 1).rounded(.up)))
        let y0 = max(0, Int((min(a.y, b.y) - half - 1).rounded(.down))), y1 = min(height - 1, Int((max(a.y, b.y) + half + 1).rounded(.up)))
        guard x0 <= x1, y0 <= y1 else { return }
        let dx = b.x - a.x, dy = b.y - a.y, length2 = dx * dx + dy * dy
        let w = width
        pixels.withUnsafeMutableBufferPointer { p in
            for py in y0...y1 {
                for px in x0...x1 {
                    let cx = Double(px) + 0.5, cy = Double(py) + 0.5
                    let t = length2 > 0 ? min(max(((cx - a.x) * dx + (cy - a.y) * dy) / length2, 0), 1) : 0
                    let ex = a.x + t * dx - cx, ey = a.y + t * dy - cy
                    let coverage = Float(min(max(half + 0.5 - (ex * ex + ey * ey).squareRoot(), 0), 1))
                    guard coverage > 0 else { continue }
                    let i = 3 * (py * w + px)
                    p[i] += (color.r - p[i]) * coverage
                    p[i + 1] += (color.g - p[i + 1]) * coverage
                    p[i + 2] += (color.b - p[i + 2]) * coverage
                }
            }
        }
    }
}
