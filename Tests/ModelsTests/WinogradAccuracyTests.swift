import Foundation
import Models
import Network
import Tensors
import TestSupport
import XCTest

/// Winograd convolutions on the real 3x3 layers of the shared models, fed with the real activations of real photos,
/// against the convolution computed in Double: forward and data gradient, both variants. The kernel each layer runs
/// (`Convolution.kernel`) must stay within 1e-4 relative L2 of the exact result. `WINOGRAD_ERROR_REPORT=1` prints
/// the whole table (and runs every photo of ../shared/golden instead of two).
final class WinogradAccuracyTests: XCTestCase {
    struct Layer {
        var name: String, x: Tensor, weight: Tensor, bias: Tensor?, window: Window2D
    }

    /// Every Conv of the model that Winograd can compute, with its input for this photo.
    static func layers(_ model: LoadedModel, input: Value) throws -> [Layer] {
        let graph = model.executor.graph
        let convs = graph.nodes.filter { node in
            guard node.opType == "Conv", case .float(let w)? = graph.initializers[node.inputs[1]], w.rank == 4,
                  w.shape[2] == 3, w.shape[3] == 3 else { return false }
            if case .int(let g)? = node.attributes["group"], g != 1 { return false }
            if case .ints(let s)? = node.attributes["strides"], s.contains(where: { $0 != 1 }) { return false }
            if case .ints(let d)? = node.attributes["dilations"], d.contains(where: { $0 != 1 }) { return false }
            return true
        }
        let values = try model.executor.run(["input": input], outputs: Array(Set(convs.map { $0.inputs[0] })))
        return try convs.map { node in
            var pads = [0, 0, 0, 0]
            if case .ints(let p)? = node.attributes["pads"] { pads = p }
            let window = Window2D(kernelH: 3, kernelW: 3, padTop: pads[0], padLeft: pads[1], padBottom: pads[2], padRight: pads[3])
            let bias = node.inputs.count > 2 ? graph.initializers[node.inputs[2]]?.floatTensor : nil
            return Layer(name: node.name, x: try XCTUnwrap(values[node.inputs[0]]?.floatTensor),
                         weight: try XCTUnwrap(graph.initializers[node.inputs[1]]?.floatTensor), bias: bias, window: window)
        }
    }

    /// The 3x3 correlation's terms, row by row: for every image, output channel o, input channel c, tap (ki, kj) of
    /// weight t and output row whose input row lies inside the image, body(t, yRow, xRow, columns): output element
    /// yRow + col of y [N,M,OH,OW] takes t · x[xRow + col] of x [N,C,H,W] for col in columns (inside the image).
    @inline(__always)
    static func forEachTapRow(_ l: Layer, outH oh: Int, outW ow: Int, _ body: (Double, Int, Int, Range<Int>) -> Void) {
        let (n, c, h, w) = (l.x.shape[0], l.x.shape[1], l.x.shape[2], l.x.shape[3]), m = l.weight.shape[0]
        let wt = l.weight.scalars.map(Double.init)
        for b in 0..<n {
            for o in 0..<m {
                for ci in 0..<c {
                    for ki in 0..<3 {
                        for kj in 0..<3 {
                            let t = wt[((o * c + ci) * 3 + ki) * 3 + kj], shift = kj - l.window.padLeft
                            let columns = max(0, -shift)..<max(0, min(ow, w - shift))
                            for r in 0..<oh {
                                let iy = r + ki - l.window.padTop
                                if iy < 0 || iy >= h { continue }
                                body(t, (b * m + o) * oh * ow + r * ow, (b * c + ci) * h * w + iy * w + shift, columns)
                            }
                        }
                    }
                }
            }
        }
    }

    /// y [N,M,OH,OW] in Double, straight from the definition (rows accumulated tap by tap).
    static func exactForward(_ l: Layer) -> [Double] {
        let (n, h, w) = (l.x.shape[0], l.x.shape[2], l.x.shape[3]), m = l.weight.shape[0]
        let (oh, ow) = l.window.outputSize(inputH: h, inputW: w)
        var y = [Double](repeating: 0, count: n * m * oh * ow)
        for i in y.indices { y[i] = Double(l.bias?[(i / (oh * ow)) % m] ?? 0) }
        let x = l.x.scalars.map(Double.init)
        y.withUnsafeMutableBufferPointer { yp in
            x.withUnsafeBufferPointer { xp in
                forEachTapRow(l, outH: oh, outW: ow) { t, yRow, xRow, columns in
                    for col in columns { yp[yRow + col] += t * xp[xRow + col] }
                }
            }
        }
        return y
    }

    /// dx [N,C,H,W] = Σ over taps of dy scattered back through the kernel, in Double.
    static func exactInputGradient(_ l: Layer, dy: Tensor) -> [Double] {
        var dx = [Double](repeating: 0, count: l.x.count)
        let g = dy.scalars.map(Double.init)
        dx.withUnsafeMutableBufferPointer { dp in
            g.withUnsafeBufferPointer { gp in
                forEachTapRow(l, outH: dy.shape[2], outW: dy.shape[3]) { t, yRow, xRow, columns in
                    for col in columns { dp[xRow + col] += t * gp[yRow + col] }
                }
            }
        }
        return dx
    }

    /// Relative L2 error and max-abs error relative to the exact output's largest magnitude.
    static func errors(_ got: Tensor, _ exact: [Double]) -> (l2: Double, max: Double) {
        var d2 = 0.0, e2 = 0.0, worst = 0.0, scale = 0.0
        for i in 0..<exact.count {
            let d = Double(got[flat: i]) - exact[i]
            d2 += d * d; e2 += exact[i] * exact[i]
            worst = max(worst, abs(d)); scale = max(scale, abs(exact[i]))
        }
        return ((d2 / max(e2, .leastNormalMagnitude)).squareRoot(), worst / max(scale, .leastNormalMagnitude))
    }

    func testRealLayersStayWithinTheWinogradErrorBudget() throws {
        let report = ProcessInfo.processInfo.environment["WINOGRAD_ERROR_REPORT"] != nil
        for name in ["googlenet_bvlc", "squeezenet1_1"] {
            let model = try LoadedModel(url: try SharedData.file("models/\(name).onnx"))
            let golden = try SharedData.file("golden/\(name)")
            var photos = ["chelsea", "dog"]
            if report {
                photos = try FileManager.default.contentsOfDirectory(atPath: golden.path)
                    .filter { $0.hasSuffix(".input.npy") }.map { String($0.dropLast(".input.npy".count)) }.sorted()
            }
            for photo in photos {
                let input = try NumPyFile.read(contentsOf: golden.appendingPathComponent("\(photo).input.npy"))
                for layer in try Self.layers(model, input: input) {
                    let exact = Self.exactForward(layer)
                    let chosen = Convolution.kernel(x: layer.x.shape, weight: layer.weight.shape, window: layer.window, groups: 1)
                    // A DeepDream-like upstream gradient: relu(y), the gradient of ½‖relu(y)‖².
                    let y = Convolution.forward(layer.x, weight: layer.weight, bias: layer.bias, window: layer.window, groups: 1,
                                                kernel: .gemm)
                    let dy = Activation.relu.forward(y)
                    let exactDx = Self.exactInputGradient(layer, dy: dy)
                    var line = "\(name) \(photo) \(layer.name) x \(layer.x.shape) m \(layer.weight.shape[0]) runs \(chosen):"
                    for kernel in [Convolution.Kernel.gemm, .winograd2x2, .winograd4x4] {
                        let got = Convolution.forward(layer.x, weight: layer.weight, bias: layer.bias, window: layer.window,
                                                      groups: 1, kernel: kernel)
                        let dx = try XCTUnwrap(Convolution.backward(dy, x: layer.x, weight: layer.weight, window: layer.window,
                                                                    groups: 1, needInputGradient: true, needParameterGradients: false,
                                                                    kernel: kernel).dx)
                        let (f, d) = (Self.errors(got, exact), Self.errors(dx, exactDx))
                        line += String(format: " | %@ y %.2e %.2e dx %.2e %.2e", kernel.rawValue, f.l2, f.max, d.l2, d.max)
                        if kernel == chosen {
                            XCTAssertLessThan(f.l2, 1e-4, "\(name) \(photo) \(layer.name) forward, \(kernel)")
                            XCTAssertLessThan(d.l2, 1e-4, "\(name) \(photo) \(layer.name) dx, \(kernel)")
                        }
                    }
                    if report { print(line) }
                }
            }
        }
    }
}
