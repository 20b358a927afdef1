import Foundation
import Tensors

/// An image parameterised by its Fourier coefficients with the colours decorrelated (Olah et al. 2017, Lucid):
/// a gradient step then changes all frequencies about equally in perceived terms, instead of feeding the high
/// frequencies that pixel-space ascent amplifies first (the grey speckle of a plain dream from noise).
///
/// Per decorrelated channel c, coefficients X_c(ky, kx) = re + i·im for ky in 0..<H, kx in 0...W/2 become
///   z_c = irfft2(X_c · s(ky, kx) · sqrt(H·W)) / 4,   s = 1 / max(|f|, 1 / max(H, W)),  |f| in cycles per pixel,
/// then RGB = sigmoid(M · z) with M Lucid's ImageNet colour-correlation square root, normalised. The result is in 0…1.
public struct FourierImage {
    public let width: Int
    public let height: Int
    /// Coefficients, [3 channels][2 (re, im)][H][Wf], flat.
    public var parameters: [Float]
    let frequencies: Int  // Wf = W/2 + 1
    /// Per (ky, kx): s · sqrt(HW) / (4HW) · (1, or 2 for the coefficients irfft counts twice).
    let factor: [Float]
    // Real DFT bases: cosX/sinX [Wf, W], cosY/sinY [H, H].
    let cosX: Tensor, sinX: Tensor, cosY: Tensor, sinY: Tensor

    /// Square root of the colour correlation of ImageNet (as published with Lucid), RGB rows.
    static let colorCorrelationSqrt: [[Float]] = [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]]
    /// The matrix divided by its largest column norm.
    static let colorMatrix: [[Float]] = {
        let m = colorCorrelationSqrt
        let norms = (0..<3).map { c in (0..<3).map { m[$0][c] * m[$0][c] }.reduce(0, +).squareRoot() }
        let top = norms.max()!
        return m.map { $0.map { $0 / top } }
    }()

    public init(width: Int, height: Int, seed: UInt64, standardDeviation: Float = 0.01) {
        self.width = width
        self.height = height
        let wf = width / 2 + 1
        frequencies = wf
        var rng = SplitMix64(seed: seed)
        parameters = (0..<(3 * 2 * height * wf)).map { _ in standardDeviation * rng.nextGaussian() }
        var factor = [Float](repeating: 0, count: height * wf)
        let norm = Float(width * height).squareRoot() / (4 * Float(width * height))
        for ky in 0..<height {
            let fy = Float(ky <= height / 2 ? ky : ky - height) / Float(height)
            for kx in 0..<wf {
                let fx = Float(kx) / Float(width)
                let f = max((fx * fx + fy * fy).squareRoot(), 1 / Float(max(width, height)))
                let twice: Float = (kx == 0 || (width % 2 == 0 && kx == width / 2)) ? 1 : 2
                factor[ky * wf + kx] = twice * norm / f
            }
        }
        self.factor = factor
        func basis(_ rows: Int, _ columns: Int, _ period: Int, _ f: (Double) -> Double) -> Tensor {
            Tensor(shape: [rows, columns], scalars: (0..<(rows * columns)).map { i in
                Float(f(2 * Double.pi * Double((i / columns) * (i % columns) % period) / Double(period)))
            })
        }
        cosX = basis(wf, width, width, cos)
        sinX = basis(wf, width, width, sin)
        cosY = basis(height, height, height, cos)
        sinY = basis(height, height, height, sin)
    }

    /// The decorrelated channels z [3][H·W] (before the colour matrix and sigmoid).
    func spatial() -> [Tensor] {
        let plane = height * frequencies
        return (0..<3).map { c in
            var re = Tensor(shape: [height, frequencies]), im = Tensor(shape: [height, frequencies])
            parameters.withUnsafeBufferPointer { p in
                re.withUnsafeMutableBufferPointer { r in
                    im.withUnsafeMutableBufferPointer { m in
                        for i in 0..<plane {
                            r[i] = p[(2 * c) * plane + i] * factor[i]
                            m[i] = p[(2 * c + 1) * plane + i] * factor[i]
                        }
                    }
                }
            }
            // P = (re + i·im) · e^{iφx}: P_re = re·C − im·S, P_im = re·S + im·C; then Re(e^{iφy} · P).
            let pRe = Gemm.forward(re, cosX, c: nil, transA: false, transB: false, alpha: 1, beta: 0)
                .adding(Gemm.forward(im, sinX, c: nil, transA: false, transB: false, alpha: -1, beta: 0))
            let pIm = Gemm.forward(re, sinX, c: nil, transA: false, transB: false, alpha: 1, beta: 0)
                .adding(Gemm.forward(im, cosX, c: nil, transA: false, transB: false, alpha: 1, beta: 0))
            return Gemm.forward(cosY, pRe, c: nil, transA: false, transB: false, alpha: 1, beta: 0)
                .adding(Gemm.forward(sinY, pIm, c: nil, transA: false, transB: false, alpha: -1, beta: 0))
        }
    }

    /// Gradient with respect to `parameters` from gradients on the decorrelated channels z [3][H, W].
    func spatialBackward(_ g: [Tensor]) -> [Float] {
        let plane = height * frequencies
        var out = [Float](repeating: 0, count: parameters.count)
        for c in 0..<3 {
            let dRe = Gemm.forward(cosY, g[c], c: nil, transA: true, transB: false, alpha: 1, beta: 0)
            let dIm = Gemm.forward(sinY, g[c], c: nil, transA: true, transB: false, alpha: -1, beta: 0)
            let gRe = Gemm.forward(dRe, cosX, c: nil, transA: false, transB: true, alpha: 1, beta: 0)
                .adding(Gemm.forward(dIm, sinX, c: nil, transA: false, transB: true, alpha: 1, beta: 0))
            let gIm = Gemm.forward(dRe, sinX, c: nil, transA: false, transB: true, alpha: -1, beta: 0)
                .adding(Gemm.forward(dIm, cosX, c: nil, transA: false, transB: true, alpha: 1, beta: 0))
            gRe.withUnsafeBufferPointer { r in
                gIm.withUnsafeBufferPointer { m in
                    for i in 0..<plane {
                        out[(2 * c) * plane + i] = r[i] * factor[i]
                        out[(2 * c + 1) * plane + i] = m[i] * factor[i]
                    }
                }
            }
        }
        return out
    }

    /// The image: interleaved RGB in 0…1, and what the backward pass needs.
    public func render() -> (rgb: [Float], z: [Tensor]) {
        let z = spatial()
        let plane = width * height
        var rgb = [Float](repeating: 0, count: 3 * plane)
        let m = Self.colorMatrix
        let zs = z.map(\.scalars)
        for i in 0..<plane {
            for o in 0..<3 {
                let v = m[o][0] * zs[0][i] + m[o][1] * zs[1][i] + m[o][2] * zs[2][i]
                rgb[3 * i + o] = logistic(v)
            }
        }
        return (rgb, z)
    }

    /// d/d(parameters) from d/d(rgb) (interleaved, 0…1 scale) at `rgb` = render().rgb.
    public func backward(_ gradRGB: [Float], rgb: [Float]) -> [Float] {
        let plane = width * height
        let m = Self.colorMatrix
        var gz = (0..<3).map { _ in [Float](repeating: 0, count: plane) }
        for i in 0..<plane {
            for o in 0..<3 {
                let s = rgb[3 * i + o]
                let dv = gradRGB[3 * i + o] * s * (1 - s)
                for c in 0..<3 { gz[c][i] += m[o][c] * dv }
            }
        }
        return spatialBackward(gz.map { Tensor(shape: [height, width], scalars: $0) })
    }
}

extension Tensor {
    /// Element-wise sum (same shapes).
    func adding(_ other: Tensor) -> Tensor {
        var out = self
        out.add(other)
        return out
    }
}
