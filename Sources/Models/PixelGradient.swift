import Imaging
import Tensors

extension LoadedModel {
    /// d/d(pixels) from d/d(network input) for an image of `width x height` (interleaved RGB on the 0–255 scale):
    /// the model's `Preprocessing` vector-Jacobian product, for callers that hold the model rather than its mapping.
    public func pixelGradient(fromNetwork g: Tensor, width: Int, height: Int) throws -> [Float] {
        precondition(g.shape == [1, 3, height, width], "gradient \(g.shape) is not 1x3x\(height)x\(width)")
        return try preprocessing.pixelGradient(fromInputGradient: g)
    }
}
