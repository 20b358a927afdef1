/// How a model wants its input: channel order, pixel scale, mean, std, resize and crop (the `input` object of the model JSON files).
///
/// The one owner of the pixel <-> network mapping: per network channel c, reading image channel `sourceChannel(c)`,
///     x[c] = (lo + pixel · (hi − lo) / 255 − mean[c]) / std[c]  =  pixel · scale[c] + offset[c]
/// with [lo, hi] = `pixelRange` and a one-value mean or std standing for every channel. The forward map
/// (`planarTensorData`), its inverse (`image(fromPlanar:)`) and its vector–Jacobian product (`pixelGradient`) all
/// read the same `affine()`, so that they cannot disagree.
public struct Preprocessing: Codable, Equatable, Sendable {
    public enum ChannelOrder: String, Codable, Sendable {
        case rgb = "RGB", bgr = "BGR"

        /// "RGB" or "BGR", in any letter case.
        public init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let order = ChannelOrder(rawValue: text.uppercased()) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "channel_order '\(text)' is neither RGB nor BGR")
            }
            self = order
        }
    }

    public var channelOrder: ChannelOrder
    /// The range the 0...255 pixels are mapped onto before mean/std: [0, 255], [0, 1] or [-1, 1] (any [lo, hi] works).
    public var pixelRange: [Float]
    /// Per network channel, in `channelOrder`; one value stands for all three channels.
    public var mean: [Float]
    /// Per network channel, in `channelOrder`; one value stands for all three channels.
    public var std: [Float]
    /// Classification resize: the shorter side becomes this many pixels.
    public var resizeShorter: Int?
    /// Classification centre crop [height, width].
    public var crop: [Int]?

    enum CodingKeys: String, CodingKey {
        case channelOrder = "channel_order", pixelRange = "pixel_range", mean, std
        case resizeShorter = "resize_shorter", crop
    }

    public init(channelOrder: ChannelOrder, pixelRange: [Float], mean: [Float], std: [Float],
                resizeShorter: Int? = nil, crop: [Int]? = nil) {
        self.channelOrder = channelOrder
        self.pixelRange = pixelRange
        self.mean = mean
        self.std = std
        self.resizeShorter = resizeShorter
        self.crop = crop
    }

    /// BVLC GoogLeNet (Caffe): BGR, 0...255, mean (104, 117, 123), std 1, resize 256, crop 224.
    public static let caffeBGR = Preprocessing(channelOrder: .bgr, pixelRange: [0, 255], mean: [104, 117, 123],
                                               std: [1, 1, 1], resizeShorter: 256, crop: [224, 224])
    /// torchvision's ImageNet normalisation: RGB, 0...1, mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225), resize 256, crop 224.
    public static let imagenetRGB = Preprocessing(channelOrder: .rgb, pixelRange: [0, 1], mean: [0.485, 0.456, 0.406],
                                                  std: [0.229, 0.224, 0.225], resizeShorter: 256, crop: [224, 224])

    /// Network channel c reads image channel `sourceChannel(c)`.
    @inline(__always) func sourceChannel(_ c: Int) -> Int { channelOrder == .rgb ? c : 2 - c }

    /// The value of network channel c in a per-channel list: one value stands for every channel; none gives `fallback`.
    static func perChannel(_ values: [Float], _ c: Int, fallback: Float) -> Float {
        values.isEmpty ? fallback : values[min(c, values.count - 1)]
    }

    /// Per network channel: x = pixel * scale[c] + offset[c], i.e. (lo + pixel * (hi - lo) / 255 - mean[c]) / std[c].
    func affine() -> (scale: [Float], offset: [Float]) {
        let lo = pixelRange.count > 0 ? pixelRange[0] : 0, hi = pixelRange.count > 1 ? pixelRange[1] : 255
        var scale = [Float](repeating: 1, count: 3), offset = [Float](repeating: 0, count: 3)
        for c in 0..<3 {
            let m = Self.perChannel(mean, c, fallback: 0), s = Self.perChannel(std, c, fallback: 1)
            scale[c] = (hi - lo) / 255 / s
            offset[c] = (lo - m) / s
        }
        return (scale, offset)
    }

    /// d(network value)/d(pixel) for each image channel R, G, B: the Jacobian of the map is diagonal, so this is all
    /// of it. Equal factors mean that a pixel gradient favours no colour.
    public var pixelGradientFactors: [Float] {
        let scale = affine().scale
        var factors = [Float](repeating: 0, count: 3)
        for c in 0..<3 { factors[sourceChannel(c)] = scale[c] }
        return factors
    }

    /// Planar CHW floats for the network (3 * height * width values), channels in `channelOrder`.
    public func planarTensorData(from image: RGBImage) -> [Float] {
        let (a, b) = affine()
        let plane = image.width * image.height
        var out = [Float](repeating: 0, count: 3 * plane)
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for c in 0..<3 {
                    let sc = sourceChannel(c), ac = a[c], bc = b[c]
                    let d = dst.baseAddress! + c * plane
                    for i in 0..<plane { d[i] = src[3 * i + sc] * ac + bc }
                }
            }
        }
        return out
    }

    /// The inverse of `planarTensorData`: network values back to pixels, clamped to 0...255 when `clamp`.
    public func image(fromPlanar data: [Float], width: Int, height: Int, clamp: Bool = true) -> RGBImage {
        let plane = width * height
        precondition(data.count == 3 * plane, "\(data.count) values are not a 3x\(height)x\(width) image")
        let (a, b) = affine()
        var pixels = [Float](repeating: 0, count: 3 * plane)
        data.withUnsafeBufferPointer { src in
            pixels.withUnsafeMutableBufferPointer { dst in
                for c in 0..<3 {
                    let dc = sourceChannel(c), inv = 1 / a[c], bc = b[c]
                    let s = src.baseAddress! + c * plane
                    for i in 0..<plane {
                        let v = (s[i] - bc) * inv
                        dst[3 * i + dc] = clamp ? min(max(v, 0), 255) : v
                    }
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    /// Vector–Jacobian product of `planarTensorData`: from the gradient of a loss with respect to the planar network
    /// input (3 * height * width values, channels in `channelOrder`) to its gradient with respect to the interleaved
    /// RGB pixels (0–255 scale). dL/dpixel[sourceChannel(c)] = dL/dx[c] · scale[c].
    public func pixelGradient(fromPlanar g: UnsafeBufferPointer<Float>, width: Int, height: Int) -> [Float] {
        let plane = width * height
        precondition(g.count == 3 * plane, "\(g.count) gradient values are not a 3x\(height)x\(width) image")
        let scale = affine().scale
        var out = [Float](repeating: 0, count: 3 * plane)
        out.withUnsafeMutableBufferPointer { dst in
            for c in 0..<3 {
                let dc = sourceChannel(c), sc = scale[c]
                let s = g.baseAddress! + c * plane
                for i in 0..<plane { dst[3 * i + dc] = s[i] * sc }
            }
        }
        return out
    }

    public func pixelGradient(fromPlanar g: [Float], width: Int, height: Int) -> [Float] {
        g.withUnsafeBufferPointer { pixelGradient(fromPlanar: $0, width: width, height: height) }
    }

    /// The classification pipeline: shorter side to `resizeShorter` (PIL-exact bilinear, 8-bit rounding), then the centre crop.
    /// A resize whose result would exceed `maxPixels` (a 100000x1 image made 256 pixels high) is refused before
    /// anything is allocated.
    public func prepareForClassification(_ image: RGBImage, maxPixels: Int = ImageFile.defaultMaxPixels) throws -> RGBImage {
        var result = image
        if let side = resizeShorter, side > 0 {
            let size = RGBImage.shorterSideSize(width: image.width, height: image.height, side: side)
            let (pixels, overflow) = size.width.multipliedReportingOverflow(by: size.height)
            if overflow || pixels > maxPixels {
                throw PreprocessingError(reason: "resizing the \(image.width)x\(image.height) image so that its shorter side is \(side) pixels would make it \(size.width)x\(size.height), more than \(maxPixels / 1_000_000) megapixels; crop it to a less extreme shape first")
            }
            if size.width != image.width || size.height != image.height {
                let pixels = Resampler.resize(image.pixels, width: image.width, height: image.height, channels: 3,
                                              toWidth: size.width, toHeight: size.height, filter: .bilinear, roundToBytes: true)
                result = RGBImage(width: size.width, height: size.height, pixels: pixels)
            }
        }
        if let crop, crop.count == 2 {
            let h = min(max(crop[0], 1), result.height), w = min(max(crop[1], 1), result.width)
            result = result.centerCropped(width: w, height: h)
        }
        return result
    }
}

/// An image that cannot be brought to the model's input size.
public struct PreprocessingError: Error, CustomStringConvertible, Equatable {
    public var reason: String
    public var description: String { reason }
}
