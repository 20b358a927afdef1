import Imaging
import Tensors

/// `Preprocessing` (in Imaging, which knows no tensors) with the network's tensor shape: the only place an image
/// becomes a network input and a network-input gradient becomes a pixel gradient.
extension Preprocessing {
    /// The network input for an image already at its working size: [1, 3, H, W].
    public func inputTensor(for image: RGBImage) -> Tensor {
        Tensor(shape: [1, 3, image.height, image.width], scalars: planarTensorData(from: image))
    }

    /// The gradient with respect to the image's pixels (interleaved RGB, 0–255 scale) from the gradient with respect
    /// to its network input [1, 3, H, W].
    public func pixelGradient(fromInputGradient g: Tensor) -> [Float] {
        precondition(g.rank == 4 && g.shape[0] == 1 && g.shape[1] == 3, "an input gradient of shape \(g.shape) is not [1, 3, H, W]")
        return g.withUnsafeBufferPointer { pixelGradient(fromPlanar: $0, width: g.shape[3], height: g.shape[2]) }
    }
}
