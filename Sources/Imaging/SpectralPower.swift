import Foundation

/// How much of an image's detail is fine: natural photos keep most of their power at low spatial frequencies,
/// the speckle of a naive dream from noise at high ones.
public enum SpectralPower {
    /// The fraction of the power spectrum of the image's luminance (mean removed) at radial frequencies above
    /// `cutoff` cycles per pixel (default 0.25: half the Nyquist frequency of 0.5). A direct separable DFT, O(N³).
    public static func fractionAbove(_ image: RGBImage, cutoff: Double = 0.25) -> Double {
        let w = image.width, h = image.height, plane = w * h
        var lum = [Double](repeating: 0, count: plane)
        for i in 0..<plane {
            lum[i] = 0.299 * Double(image.pixels[3 * i]) + 0.587 * Double(image.pixels[3 * i + 1]) + 0.114 * Double(image.pixels[3 * i + 2])
        }
        let mean = lum.reduce(0, +) / Double(max(plane, 1))
        for i in 0..<plane { lum[i] -= mean }
        // Rows: F(y, kx) = Σ_x lum(y, x) e^{-2πi kx x / w}.
        var rowRe = [Double](repeating: 0, count: plane), rowIm = rowRe
        let cw = (0..<w).map { cos(2 * Double.pi * Double($0) / Double(w)) }, sw = (0..<w).map { sin(2 * Double.pi * Double($0) / Double(w)) }
        for y in 0..<h {
            for kx in 0..<w {
                var re = 0.0, im = 0.0
                for x in 0..<w {
                    let k = (kx * x) % w
                    re += lum[y * w + x] * cw[k]
                    im -= lum[y * w + x] * sw[k]
                }
                rowRe[y * w + kx] = re
                rowIm[y * w + kx] = im
            }
        }
        let ch = (0..<h).map { cos(2 * Double.pi * Double($0) / Double(h)) }, sh = (0..<h).map { sin(2 * Double.pi * Double($0) / Double(h)) }
        var total = 0.0, high = 0.0
        for ky in 0..<h {
            let fy = Double(ky <= h / 2 ? ky : ky - h) / Double(h)
            for kx in 0..<w {
                var re = 0.0, im = 0.0
                for y in 0..<h {
                    let k = (ky * y) % h
                    let a = rowRe[y * w + kx], b = rowIm[y * w + kx]
                    re += a * ch[k] + b * sh[k]
                    im += b * ch[k] - a * sh[k]
                }
                let fx = Double(kx <= w / 2 ? kx : kx - w) / Double(w)
                let power = re * re + im * im
                total += power
                if (fx * fx + fy * fy).squareRoot() > cutoff { high += power }
            }
        }
        return total > 0 ? high / total : 0
    }
}
