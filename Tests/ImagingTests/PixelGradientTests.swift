import Foundation
import Imaging
import XCTest

/// `Preprocessing.pixelGradient` is the vector–Jacobian product of `planarTensorData`: checked against central finite
/// differences for every kind of model description (channel order × pixel range × one or three mean/std values).
final class PixelGradientTests: XCTestCase {
    static var everyKindOfDescription: [Preprocessing] {
        var kinds: [Preprocessing] = []
        for order in [Preprocessing.ChannelOrder.rgb, .bgr] {
            for range: [Float] in [[0, 1], [0, 255], [-1, 1]] {
                let scale: Float = range[1] - range[0]
                kinds.append(Preprocessing(channelOrder: order, pixelRange: range, mean: [0.5 * scale], std: [0.5 * scale]))
                kinds.append(Preprocessing(channelOrder: order, pixelRange: range, mean: [0.485, 0.456, 0.406].map { $0 * scale },
                                           std: [0.229, 0.224, 0.225].map { $0 * scale }))
            }
        }
        return kinds
    }

    /// A smooth non-linear loss of the network input: L(x) = Σ w[i] · x[i]² / 2, so dL/dx[i] = w[i] · x[i].
    static func loss(_ x: [Float], weights: [Float]) -> Double {
        zip(x, weights).reduce(0.0) { $0 + Double($1.1) * Double($1.0) * Double($1.0) / 2 }
    }

    func testPixelGradientMatchesCentralFiniteDifferencesForEveryKindOfDescription() {
        let width = 3, height = 2, count = width * height * 3
        var state: UInt64 = 7
        func next() -> Float { state = state &* 6364136223846793005 &+ 1442695040888963407; return Float(state >> 40) / Float(1 << 24) }
        let pixels = (0..<count).map { _ in 20 + 215 * next() }
        let weights = (0..<count).map { _ in next() - 0.5 }
        let image = RGBImage(width: width, height: height, pixels: pixels)
        for pre in Self.everyKindOfDescription {
            let x = pre.planarTensorData(from: image)
            let dx = zip(weights, x).map { $0 * $1 }
            let analytic = pre.pixelGradient(fromPlanar: dx, width: width, height: height)
            // The loss is quadratic, so the central difference is exact but for rounding: x is float32 (relative error
            // ~6e-8 of |x| ≤ 4.5), against a change of scale·eps ≥ 0.0078·eps in x. eps = 4 pixel steps keeps that
            // under 1e-5 of the difference; 1e-3 relative leaves ample room.
            let eps: Float = 4
            for i in 0..<count {
                var up = image, down = image
                up.pixels[i] += eps
                down.pixels[i] -= eps
                let numeric = (Self.loss(pre.planarTensorData(from: up), weights: weights)
                               - Self.loss(pre.planarTensorData(from: down), weights: weights)) / Double(2 * eps)
                XCTAssertEqual(Double(analytic[i]), numeric, accuracy: 1e-3 * max(abs(numeric), 1e-4),
                               "pixel value \(i) of \(pre.channelOrder) \(pre.pixelRange) mean \(pre.mean) std \(pre.std)")
            }
        }
    }

    func testOneValueStdAppliesToEveryChannelSoTheGradientHasNoColourBias() {
        // A TensorFlow-style description: pixels onto [-1, 1], one std for all channels.
        for order in [Preprocessing.ChannelOrder.rgb, .bgr] {
            let pre = Preprocessing(channelOrder: order, pixelRange: [-1, 1], mean: [0], std: [0.5])
            for factor in pre.pixelGradientFactors { XCTAssertEqual(factor, 2 / 255 / 0.5, accuracy: 1e-7, "\(order)") }
            let g = pre.pixelGradient(fromPlanar: [Float](repeating: 1, count: 3 * 4), width: 2, height: 2)
            XCTAssertEqual(Set(g).count, 1, "one gradient factor for R, G and B: \(g)")
        }
        // Three values stay per channel, in the network's channel order: BGR std (1, 2, 4) makes B the largest factor.
        let bgr = Preprocessing(channelOrder: .bgr, pixelRange: [0, 255], mean: [0], std: [1, 2, 4])
        XCTAssertEqual(bgr.pixelGradientFactors, [0.25, 0.5, 1])
    }
}
