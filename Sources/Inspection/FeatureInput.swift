import Foundation
import Imaging
import Models
import Network
import Tensors

/// The size images are brought to before feature maps are computed.
public enum WorkingSize: Equatable, Sendable, CustomStringConvertible {
    /// The model's classification pipeline (GoogLeNet: shorter side 256, centre crop 224).
    case modelDefault
    /// A centre crop of `n` x `n`, after resizing the shorter side in the same ratio as the model's pipeline (256:224).
    case square(Int)
    /// The image's own size.
    case original

    /// "original" or a positive number of pixels.
    public init?(parsing text: String) {
        if text.lowercased() == "original" { self = .original; return }
        guard let n = Int(text), n > 0 else { return nil }
        self = .square(n)
    }

    public var description: String {
        switch self {
        case .modelDefault: return "the model's default"
        case .square(let n): return "\(n)x\(n)"
        case .original: return "original"
        }
    }
}

/// What the network is fed: the working image (shown in reports and under overlays) and its input tensor.
public struct FeatureInput {
    public var image: RGBImage
    public var tensor: Tensor

    public init(image: RGBImage, tensor: Tensor) {
        self.image = image
        self.tensor = tensor
    }
}

extension LoadedModel {
    /// The image resized and cropped to `size`, then preprocessed as the model's description says.
    public func featureInput(image: RGBImage, size: WorkingSize) throws -> FeatureInput {
        let p = try preprocessing
        let working: RGBImage
        switch size {
        case .original:
            working = image
        case .modelDefault:
            if p.resizeShorter != nil || p.crop != nil {
                working = try p.prepareForClassification(image)
            } else {
                var q = p
                q.resizeShorter = defaultInputSize.min()
                q.crop = defaultInputSize
                working = try q.prepareForClassification(image)
            }
        case .square(let n):
            var q = p
            let cropSide = p.crop?.min() ?? defaultInputSize.min() ?? n
            let ratio = Double(p.resizeShorter ?? cropSide) / Double(max(cropSide, 1))
            q.resizeShorter = max(n, Int((Double(n) * ratio).rounded()))
            q.crop = [n, n]
            working = try q.prepareForClassification(image)
        }
        return FeatureInput(image: working, tensor: try inputTensor(for: working))
    }

    /// An exact preprocessed [1, 3, H, W] tensor (e.g. a golden input); the picture is recovered from it when the
    /// model's preprocessing is known, else the tensor is stretched to 0...255.
    public func featureInput(tensor: Tensor) throws -> FeatureInput {
        let s = tensor.shape
        guard s.count == 4, s[0] == 1, s[1] == 3, s[2] > 0, s[3] > 0 else { throw FeatureError.badInputTensor(shape: s) }
        let h = s[2], w = s[3]
        if let p = try? preprocessing {
            return FeatureInput(image: p.image(fromPlanar: tensor.scalars, width: w, height: h), tensor: tensor)
        }
        let values = tensor.scalars
        let lo = values.min() ?? 0, hi = values.max() ?? 0
        let scale: Float = hi > lo ? 255 / (hi - lo) : 0
        let plane = h * w
        var pixels = [Float](repeating: 0, count: 3 * plane)
        for c in 0..<3 { for i in 0..<plane { pixels[3 * i + c] = (values[c * plane + i] - lo) * scale } }
        return FeatureInput(image: RGBImage(width: w, height: h, pixels: pixels), tensor: tensor)
    }

    /// Runs the network once and returns the activations of `layers` (value names), in that order.
    public func activations(for input: FeatureInput, layers: [String]) throws -> [LayerActivations] {
        let values = try executor.run([try inputName: .float(input.tensor)], outputs: layers)
        return try layers.map { name in
            guard let value = values[name] else { throw ExecutionError.unknownValue(name: name, suggestions: []) }
            guard let tensor = value.floatTensor else { throw FeatureError.notAFeatureMap(layer: name, shape: value.shape) }
            return try LayerActivations(layer: name, tensor: tensor)
        }
    }
}
