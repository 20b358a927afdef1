import Foundation
import Imaging
import Models
import Network
import Tensors

public enum FilterError: Error, LocalizedError, CustomStringConvertible {
    case noConvolution(layer: String)
    case channelOutOfRange(Int, channels: Int)

    public var description: String {
        switch self {
        case let .noConvolution(layer):
            return "\(layer) is not computed by a convolution with a weight tensor (looked back through activations and normalisations); choose a Conv layer from `dream layers`"
        case let .channelOutOfRange(c, channels):
            return "channel \(c) is out of range: the convolution has \(channels) output channels (0…\(channels - 1))"
        }
    }
}

/// A convolution's kernels as pictures.
public struct ConvolutionFilters {
    /// The Conv node and its weight [out, in/groups, kh, kw].
    public let node: Node
    public let weight: Tensor

    /// The Conv behind a layer name: the node itself, or the Conv before the activations, normalisations and
    /// dropouts that produce the named value (GoogLeNet's `conv1_7x7_s2` is the ReLU after `conv1_7x7_s2_pre_relu`).
    public init(model: LoadedModel, layer: String) throws {
        let graph = model.graph
        var value = try LayerNames(graph: graph).resolve(layer)
        let passThrough: Set<String> = ["Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "BatchNormalization",
                                        "LRN", "Dropout", "Identity", "Tanh", "PRelu", "Elu", "Selu"]
        while let i = model.executor.producer[value] {
            let node = graph.nodes[i]
            if node.opType == "Conv" {
                guard node.inputs.count > 1, let w = graph.initializers[node.inputs[1]]?.floatTensor, w.rank == 4 else { break }
                self.node = node
                weight = w
                return
            }
            guard passThrough.contains(node.opType), let input = node.inputs.first else { break }
            value = input
        }
        throw FilterError.noConvolution(layer: layer)
    }

    public var outputChannels: Int { weight.shape[0] }
    public var inputChannels: Int { weight.shape[1] }
    public var isFirstLayer: Bool { inputChannels == 3 }

    /// Kernel `o` as an RGB picture (a first layer: the 3 input channels are colours), scaled symmetrically around
    /// 0 by its own largest |w| (0 is mid-grey), each weight drawn as a `pixel` x `pixel` square. `networkIsBGR`
    /// reorders the channels so that the picture shows red as red.
    public func colorKernel(_ o: Int, pixel: Int, networkIsBGR: Bool) -> RGBImage {
        let kh = weight.shape[2], kw = weight.shape[3], plane = kh * kw
        let values = weight.scalars[(o * 3 * plane)..<((o + 1) * 3 * plane)]
        let top = max(values.map(abs).max() ?? 0, 1e-12)
        var image = RGBImage(width: kw * pixel, height: kh * pixel)
        for y in 0..<kh * pixel {
            for x in 0..<kw * pixel {
                let k = (y / pixel) * kw + x / pixel
                for c in 0..<3 {
                    let source = networkIsBGR ? 2 - c : c
                    image.pixels[3 * (y * image.width + x) + c] = 127.5 + 127.5 * values[values.startIndex + source * plane + k] / top
                }
            }
        }
        return image
    }

    /// Output channel `o`'s kernels, one per input channel, side by side in rows of `columns`, in the diverging map
    /// (blue negative, white 0, red positive), scaled symmetrically by the channel's largest |w|; 1 px gaps.
    public func channelKernels(_ o: Int, pixel: Int, columns: Int) -> RGBImage {
        let kh = weight.shape[2], kw = weight.shape[3], plane = kh * kw, n = inputChannels
        let base = o * n * plane
        let values = Array(weight.scalars[base..<(base + n * plane)])
        let top = max(values.map(abs).max() ?? 0, 1e-12)
        let cols = min(columns, n), rows = (n + cols - 1) / cols
        let tw = kw * pixel, th = kh * pixel
        var image = RGBImage(width: cols * (tw + 1) - 1, height: rows * (th + 1) - 1, fill: (60, 60, 60))
        for i in 0..<n {
            let kernel = (0..<(th * tw)).map { p in values[i * plane + ((p / tw) / pixel) * kw + (p % tw) / pixel] }
            let tile = ColorMap.diverging.render(values: kernel, width: tw, height: th, range: -top...top)
            image.paste(tile, x: (i % cols) * (tw + 1), y: (i / cols) * (th + 1))
        }
        return image
    }
}

extension FilterError {
    public var errorDescription: String? { description }
}
