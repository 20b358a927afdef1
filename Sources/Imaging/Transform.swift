import Foundation

extension RGBImage {
    /// The image zoomed in by `zoom` (> 1 magnifies) and rotated by `degrees` (counter-clockwise) about its centre,
    /// same size, sampled bilinearly; positions that fall outside take the nearest edge pixel, so no black corners
    /// creep into a zoom sequence.
    public func zoomed(by zoom: Float, rotatedBy degrees: Float = 0) -> RGBImage {
        precondition(zoom > 0 && zoom.isFinite && degrees.isFinite, "zoom \(zoom), rotation \(degrees)")
        var out = RGBImage(width: width, height: height, pixels: [Float](repeating: 0, count: width * height * 3))
        guard width > 0 && height > 0 else { return out }
        let cx = Float(width - 1) / 2, cy = Float(height - 1) / 2
        let angle = degrees * .pi / 180
        // Output position p maps to source centre + R(-angle) (p - centre) / zoom.
        let c = cos(angle) / zoom, s = sin(angle) / zoom
        let maxX = Float(width - 1), maxY = Float(height - 1)
        pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                for y in 0..<height {
                    let ry = Float(y) - cy
                    for x in 0..<width {
                        let rx = Float(x) - cx
                        let sx = min(max(cx + c * rx + s * ry, 0), maxX)
                        let sy = min(max(cy - s * rx + c * ry, 0), maxY)
                        let x0 = Int(sx), y0 = Int(sy)
                        let x1 = min(x0 + 1, width - 1), y1 = min(y0 + 1, height - 1)
                        let fx = sx - Float(x0), fy = sy - Float(y0)
                        let a = (y0 * width + x0) * 3, b = (y0 * width + x1) * 3
                        let cI = (y1 * width + x0) * 3, d = (y1 * width + x1) * 3
                        let o = (y * width + x) * 3
                        for k in 0..<3 {
                            let top = src[a + k] + (src[b + k] - src[a + k]) * fx
                            let bottom = src[cI + k] + (src[d + k] - src[cI + k]) * fx
                            dst[o + k] = top + (bottom - top) * fy
                        }
                    }
                }
            }
        }
        return out
    }
}
