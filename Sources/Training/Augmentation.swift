import Foundation
import Imaging
import Tensors

/// Random resized crop + horizontal flip (the Inception / torchvision training augmentation), with every random
/// choice drawn from a generator seeded by (run seed, epoch, sample), so that a resumed run sees the same images.
public struct Augmentation: Sendable {
    /// Fraction of the image area a crop covers, and its aspect-ratio range (width / height).
    public var scale: ClosedRange<Double> = 0.35...1
    public var ratio: ClosedRange<Double> = (3.0 / 4)...(4.0 / 3)

    public init() {}

    public static func generator(seed: UInt64, epoch: Int, sample: Int) -> SplitMix64 {
        SplitMix64(seed: seed &* 0xD1B5_4A32_D192_ED03 ^ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(sample) &* 0xBF58_476D_1CE4_E5B9)
    }

    /// A random window of `image` resized to `width`x`height`, mirrored half of the time.
    public func apply(_ image: RGBImage, width: Int, height: Int, using rng: inout SplitMix64) -> RGBImage {
        let area = Double(image.width * image.height)
        var window = (x: 0, y: 0, w: image.width, h: image.height)
        for _ in 0..<10 {
            let target = area * Double.random(in: scale, using: &rng)
            let aspect = exp(Double.random(in: log(ratio.lowerBound)...log(ratio.upperBound), using: &rng))
            let w = Int((target * aspect).squareRoot().rounded()), h = Int((target / aspect).squareRoot().rounded())
            if w >= 1 && h >= 1 && w <= image.width && h <= image.height {
                window = (Int.random(in: 0...(image.width - w), using: &rng), Int.random(in: 0...(image.height - h), using: &rng), w, h)
                break
            }
        }
        var out = image.cropped(x: window.x, y: window.y, width: window.w, height: window.h).resized(width: width, height: height)
        if Bool.random(using: &rng) { out = out.flippedHorizontally() }
        return out
    }
}
