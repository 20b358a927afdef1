import Foundation
import Parallel

/// Hyper-parameters of ONNX LRN (size is the channel window; alpha is divided by size as ONNX and Caffe do).
public struct LRNParameters: Equatable {
    public var size: Int
    public var alpha: Float
    public var beta: Float
    public var bias: Float

    public init(size: Int, alpha: Float = 1e-4, beta: Float = 0.75, bias: Float = 1) {
        self.size = size; self.alpha = alpha; self.beta = beta; self.bias = bias
    }

    /// Channels before and after c in c's window: [c - before, c + after].
    var before: Int { (size - 1) / 2 }
    var after: Int { size - 1 - (size - 1) / 2 }
}

/// Local response normalisation across channels (ONNX LRN, as in AlexNet / GoogLeNet).
/// Each pixel keeps a running sum of squares while the window slides over the channels, so the cost is
/// O(C·H·W) whatever the window size.
public enum LocalResponseNorm {
    /// x [N,C,...] -> y [N,C,...]; y = x * s^-beta with s = bias + alpha/size * sum_{window(c)} x^2.
    public static func forward(_ x: Tensor, _ p: LRNParameters) -> Tensor {
        precondition(x.rank >= 3, "LRN expects [N,C,...], got \(x.shape)")
        let n = x.shape[0], c = x.shape[1], plane = x.count / max(1, n * c)
        let coefficient = p.alpha / Float(p.size)
        if x.count == 0 { return x }
        return Tensor(shape: x.shape) { yb in
            x.withUnsafeBufferPointer { xb in
                let xp = xb.baseAddress!, yp = yb.baseAddress!
                forEachTile(n: n, c: c, plane: plane) { sample, p0, p1 in
                    let width = p1 - p0
                    let running = UnsafeMutablePointer<Float>.allocate(capacity: 2 * width)
                    defer { running.deallocate() }
                    let scale = running + width
                    let base = sample * c * plane + p0
                    windowSums(xp + base, channels: c, plane: plane, width: width, before: p.before, after: p.after,
                               running: running) { channel, sum in
                        let xs = xp + base + channel * plane, ys = yp + base + channel * plane
                        for i in 0..<width { scale[i] = p.bias + coefficient * sum[i] }
                        powNegBeta(scale, width, p.beta)
                        for i in 0..<width { ys[i] = xs[i] * scale[i] }
                    }
                }
            }
        }
    }

    /// dy, x [N,C,...] -> dx [N,C,...]:
    /// dx_j = dy_j s_j^-beta - 2·alpha·beta/size · x_j · sum_{i : j in window(i)} dy_i x_i s_i^(-beta-1).
    public static func backward(_ dy: Tensor, x: Tensor, _ p: LRNParameters) -> Tensor {
        precondition(dy.shape == x.shape, "LRN backward: \(dy.shape) vs \(x.shape)")
        let n = x.shape[0], c = x.shape[1], plane = x.count / max(1, n * c)
        let coefficient = p.alpha / Float(p.size)
        let factor = 2 * p.alpha * p.beta / Float(p.size)
        if x.count == 0 { return x }
        return Tensor(shape: x.shape) { db in
            x.withUnsafeBufferPointer { xb in
                dy.withUnsafeBufferPointer { gb in
                    let xp = xb.baseAddress!, gp = gb.baseAddress!, dp = db.baseAddress!
                    forEachTile(n: n, c: c, plane: plane) { sample, p0, p1 in
                        let width = p1 - p0
                        let running = UnsafeMutablePointer<Float>.allocate(capacity: 3 * width)
                        let s = running + width, scale = running + 2 * width
                        // t_i = dy_i x_i s_i^(-beta-1), kept per channel for the second sweep.
                        let t = UnsafeMutablePointer<Float>.allocate(capacity: c * width)
                        defer { running.deallocate(); t.deallocate() }
                        let base = sample * c * plane + p0
                        windowSums(xp + base, channels: c, plane: plane, width: width, before: p.before, after: p.after,
                                   running: running) { channel, sum in
                            let o = base + channel * plane
                            let xs = xp + o, gs = gp + o, ds = dp + o, ts = t + channel * width
                            for i in 0..<width { s[i] = p.bias + coefficient * sum[i]; scale[i] = s[i] }
                            powNegBeta(scale, width, p.beta)
                            for i in 0..<width {
                                ds[i] = gs[i] * scale[i]
                                ts[i] = gs[i] * xs[i] * scale[i] / s[i]
                            }
                        }
                        // j receives from every i whose window holds j: i in [j - after, j + before].
                        for i in 0..<width { running[i] = 0 }
                        for k in 0...min(p.before, c - 1) {
                            let ts = t + k * width
                            for i in 0..<width { running[i] += ts[i] }
                        }
                        for channel in 0..<c {
                            let o = base + channel * plane
                            let xs = xp + o, ds = dp + o
                            for i in 0..<width { ds[i] -= factor * xs[i] * running[i] }
                            let entering = channel + 1 + p.before, leaving = channel - p.after
                            if entering < c {
                                let ts = t + entering * width
                                for i in 0..<width { running[i] += ts[i] }
                            }
                            if leaving >= 0 {
                                let ts = t + leaving * width
                                for i in 0..<width { running[i] -= ts[i] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Splits the work into (sample, pixel range) tiles; tiles are independent, so large inputs run in parallel.
    static func forEachTile(n: Int, c: Int, plane: Int, _ body: (Int, Int, Int) -> Void) {
        let tileWidth = 1024
        let tilesPerSample = max(1, (plane + tileWidth - 1) / tileWidth)
        let tiles = n * tilesPerSample
        func bounds(_ tile: Int) -> (Int, Int, Int) {
            let sample = tile / tilesPerSample, k = tile % tilesPerSample
            return (sample, k * plane / tilesPerSample, (k + 1) * plane / tilesPerSample)
        }
        parallelRanges(tiles, work: n * c * plane) { range in
            for tile in range { let (s, p0, p1) = bounds(tile); body(s, p0, p1) }
        }
    }

    /// For each channel in order, calls body(channel, sums) with sums[i] = sum of x^2 over the channel window at
    /// pixel i of the tile. x points at channel 0, pixel 0 of the tile; channels are `plane` apart.
    static func windowSums(_ x: UnsafePointer<Float>, channels c: Int, plane: Int, width: Int, before: Int, after: Int,
                           running: UnsafeMutablePointer<Float>, _ body: (Int, UnsafePointer<Float>) -> Void) {
        for i in 0..<width { running[i] = 0 }
        for k in 0...min(after, c - 1) {
            let xs = x + k * plane
            for i in 0..<width { running[i] += xs[i] * xs[i] }
        }
        for channel in 0..<c {
            body(channel, running)
            let entering = channel + 1 + after, leaving = channel - before
            if entering < c {
                let xs = x + entering * plane
                for i in 0..<width { running[i] += xs[i] * xs[i] }
            }
            if leaving >= 0 {
                // Clamp: subtracting can leave a tiny negative rounding residue.
                let xs = x + leaving * plane
                for i in 0..<width { running[i] = max(0, running[i] - xs[i] * xs[i]) }
            }
        }
    }

    /// s = s^-beta in place, with cheap paths for the common exponents (0.75 in AlexNet / GoogLeNet, 0.5, 1).
    static func powNegBeta(_ s: UnsafeMutablePointer<Float>, _ count: Int, _ beta: Float) {
        if beta == 0.75 {
            // Explicit vectors: the scalar loop stays scalar (sqrt and divide per element dominate LRN).
            var i = 0
            while i + 8 <= count {
                let v = UnsafeRawPointer(s + i).loadUnaligned(as: SIMD8<Float>.self)
                let r = v.squareRoot()
                UnsafeMutableRawPointer(s + i).storeBytes(of: 1 / (r * r.squareRoot()), as: SIMD8<Float>.self)
                i += 8
            }
            while i < count { let r = s[i].squareRoot(); s[i] = 1 / (r * r.squareRoot()); i += 1 }
        } else if beta == 0.5 {
            for i in 0..<count { s[i] = 1 / s[i].squareRoot() }
        } else if beta == 1 {
            for i in 0..<count { s[i] = 1 / s[i] }
        } else {
            for i in 0..<count { s[i] = Foundation.exp(-beta * Foundation.log(s[i])) }
        }
    }
}
