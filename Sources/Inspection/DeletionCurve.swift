import Foundation
import Imaging

/// The deletion test of an attribution map (after Petsiuk et al. 2018): remove the pixels a map ranks highest
/// (set them to the image's mean colour) and watch the class probability fall. A faithful map makes it fall fast:
/// a small area under the curve, and a larger drop for its top pixels than for its bottom ones.
public enum DeletionCurve {
    /// Pixel indices from the highest map value to the lowest (ties in index order, so runs are repeatable).
    public static func ranking(_ map: [Float]) -> [Int] {
        map.indices.sorted { map[$0] != map[$1] ? map[$0] > map[$1] : $0 < $1 }
    }

    /// The image with the first `count` pixels of `order` set to its mean colour.
    public static func removing(_ image: RGBImage, order: ArraySlice<Int>) -> RGBImage {
        let n = Double(image.width * image.height)
        var mean: [Float] = [0, 0, 0]
        for c in 0..<3 {
            var s = 0.0
            for i in 0..<(image.width * image.height) { s += Double(image.pixels[3 * i + c]) }
            mean[c] = Float(s / n)
        }
        var out = image
        for i in order { for c in 0..<3 { out.pixels[3 * i + c] = mean[c] } }
        return out
    }

    /// Probability of `classIndex` after removing the top fraction f of pixels, for each f in `fractions`.
    public static func curve(_ attributor: Attributor, image: RGBImage, classIndex: Int, map: [Float],
                             fractions: [Double]) throws -> [Float] {
        let order = ranking(map)
        return try fractions.map { f in
            let k = Int((f * Double(order.count)).rounded())
            return try attributor.probabilities(removing(image, order: order.prefix(k)))[classIndex]
        }
    }

    /// Area under a curve sampled at `fractions` (trapezoid rule), on a 0…1 axis.
    public static func area(_ values: [Float], fractions: [Double]) -> Double {
        var total = 0.0
        for i in 1..<max(values.count, 1) {
            total += (fractions[i] - fractions[i - 1]) * Double(values[i] + values[i - 1]) / 2
        }
        return total
    }

    /// Probability after removing the top and the bottom `fraction` of pixels by rank.
    public static func topAndBottom(_ attributor: Attributor, image: RGBImage, classIndex: Int, map: [Float],
                                    fraction: Double = 0.2) throws -> (top: Float, bottom: Float) {
        let order = ranking(map)
        let k = Int((fraction * Double(order.count)).rounded())
        let top = try attributor.probabilities(removing(image, order: order.prefix(k)))[classIndex]
        let bottom = try attributor.probabilities(removing(image, order: order.suffix(k)))[classIndex]
        return (top, bottom)
    }
}
