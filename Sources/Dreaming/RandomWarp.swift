import Foundation
import Tensors

/// Lucid's transformation robustness as one bilinear resampling: pad 12 px with grey (0.5), jitter 8 px, scale by
/// 0.9…1.1, rotate by −10…10° (0 more often), jitter 4 px. Drawn anew every step so that the optimised image must
/// work under all of them, which removes the high-frequency patterns a single fixed view can exploit.
public struct RandomWarp {
    public var width: Int
    public var height: Int
    /// Output size.
    public var outWidth: Int
    public var outHeight: Int
    /// Source position of output pixel (u, v): (a·u + b·v + tx, c·u + d·v + ty), in input pixel units.
    var a: Float, b: Float, c: Float, d: Float, tx: Float, ty: Float
    let fill: Float

    static let padding = 12
    static let scales: [Float] = (0...10).map { 1 + Float($0 - 5) / 50 }
    static let angles: [Float] = (-10...10).map(Float.init) + [0, 0, 0, 0, 0]

    /// The identity (no robustness): out = in.
    public init(identityFor width: Int, height: Int) {
        self.width = width; self.height = height; outWidth = width; outHeight = height
        a = 1; b = 0; c = 0; d = 1; tx = 0; ty = 0; fill = 0.5
    }

    public init(width: Int, height: Int, rng: inout SplitMix64) {
        self.width = width
        self.height = height
        fill = 0.5
        let pad = Self.padding
        // pad -> jitter 8 (crop) -> scale -> rotate (same size) -> jitter 4 (crop).
        let jw = width + 2 * pad - 8, jh = height + 2 * pad - 8
        let ox1 = Float(Int.random(in: 0...8, using: &rng)), oy1 = Float(Int.random(in: 0...8, using: &rng))
        let scale = Self.scales.randomElement(using: &rng)!
        let sw = max(8, Int((Float(jw) * scale).rounded())), sh = max(8, Int((Float(jh) * scale).rounded()))
        let angle = Self.angles.randomElement(using: &rng)! * Float.pi / 180
        let ox2 = Float(Int.random(in: 0...4, using: &rng)), oy2 = Float(Int.random(in: 0...4, using: &rng))
        outWidth = sw - 4
        outHeight = sh - 4
        // Output (u, v) -> rotated image r = (u + ox2, v + oy2); rotation about its centre back to the scaled image;
        // scaled -> jittered image q = (s + 0.5)·J/S − 0.5; then + jitter offset − padding.
        let cx = Float(sw) / 2 - 0.5, cy = Float(sh) / 2 - 0.5
        let cosA = cos(angle), sinA = sin(angle)
        let kx = Float(jw) / Float(sw), ky = Float(jh) / Float(sh)
        // s = R(−angle)·(r − centre) + centre
        a = kx * cosA; b = kx * sinA
        c = -ky * sinA; d = ky * cosA
        let rx0 = ox2 - cx, ry0 = oy2 - cy
        let sx0 = cosA * rx0 + sinA * ry0 + cx, sy0 = -sinA * rx0 + cosA * ry0 + cy
        tx = (sx0 + 0.5) * kx - 0.5 + ox1 - Float(pad)
        ty = (sy0 + 0.5) * ky - 0.5 + oy1 - Float(pad)
    }

    /// Bilinear taps of output pixel (u, v): source indices (−1 when outside) and weights.
    @inline(__always)
    func taps(_ u: Int, _ v: Int) -> (i: (Int, Int, Int, Int), w: (Float, Float, Float, Float)) {
        let x = a * Float(u) + b * Float(v) + tx, y = c * Float(u) + d * Float(v) + ty
        let x0 = Int(x.rounded(.down)), y0 = Int(y.rounded(.down))
        let fx = x - Float(x0), fy = y - Float(y0)
        func index(_ xi: Int, _ yi: Int) -> Int { xi >= 0 && xi < width && yi >= 0 && yi < height ? yi * width + xi : -1 }
        return ((index(x0, y0), index(x0 + 1, y0), index(x0, y0 + 1), index(x0 + 1, y0 + 1)),
                ((1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy))
    }

    /// Warps interleaved RGB (width x height) to (outWidth x outHeight); outside the image reads the grey fill.
    public func apply(_ rgb: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: 3 * outWidth * outHeight)
        for v in 0..<outHeight {
            for u in 0..<outWidth {
                let (i, w) = taps(u, v)
                let o = 3 * (v * outWidth + u)
                for ch in 0..<3 {
                    func at(_ k: Int) -> Float { k >= 0 ? rgb[3 * k + ch] : fill }
                    out[o + ch] = w.0 * at(i.0) + w.1 * at(i.1) + w.2 * at(i.2) + w.3 * at(i.3)
                }
            }
        }
        return out
    }

    /// The adjoint: gradient on the input image from the gradient on the warped one.
    public func backward(_ g: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: 3 * width * height)
        for v in 0..<outHeight {
            for u in 0..<outWidth {
                let (i, w) = taps(u, v)
                let o = 3 * (v * outWidth + u)
                for ch in 0..<3 {
                    let gv = g[o + ch]
                    if i.0 >= 0 { out[3 * i.0 + ch] += w.0 * gv }
                    if i.1 >= 0 { out[3 * i.1 + ch] += w.1 * gv }
                    if i.2 >= 0 { out[3 * i.2 + ch] += w.2 * gv }
                    if i.3 >= 0 { out[3 * i.3 + ch] += w.3 * gv }
                }
            }
        }
        return out
    }
}
