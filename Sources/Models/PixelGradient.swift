import Imaging
import Tensors

extension LoadedModel {
    /// Vector-Jacobian product of the pixel -> network mapping: d/d(pixels) from d/d(network input), for an image of
    /// `width x height` (interleaved RGB on the 0–255 scale). The one place attribution and feature visualisation
    /// turn input gradients into pixel gradients.
    ///
    /// The mapping is affine per channel, so its Jacobian is read off `Preprocessing` itself (the network values of a
    /// black pixel and of a pure red, green and blue one) instead of restating its formula here.
    public func pixelGradient(fromNetwork g: Tensor, width: Int, height: Int) throws -> [Float] {
        let p = try preprocessing
        let black = p.planarTensorData(from: RGBImage(width: 1, height: 1, fill: (0, 0, 0)))
        // jacobian[k][c]: d(network channel k) / d(pixel channel c).
        var jacobian = [[Float]](repeating: [0, 0, 0], count: 3)
        for c in 0..<3 {
            var fill: [Float] = [0, 0, 0]
            fill[c] = 255
            let x = p.planarTensorData(from: RGBImage(width: 1, height: 1, fill: (fill[0], fill[1], fill[2])))
            for k in 0..<3 { jacobian[k][c] = (x[k] - black[k]) / 255 }
        }
        let plane = width * height
        precondition(g.count == 3 * plane, "gradient \(g.shape) is not 1x3x\(height)x\(width)")
        var out = [Float](repeating: 0, count: 3 * plane)
        g.withUnsafeBufferPointer { gp in
            out.withUnsafeMutableBufferPointer { o in
                for k in 0..<3 {
                    for c in 0..<3 where jacobian[k][c] != 0 {
                        let f = jacobian[k][c], src = gp.baseAddress! + k * plane
                        for i in 0..<plane { o[3 * i + c] += src[i] * f }
                    }
                }
            }
        }
        return out
    }
}
