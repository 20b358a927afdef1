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
/// O(C·H·W) whatever the window size; each channel is one pass over a tile of pixels that computes the output and
/// moves the window on, sixteen pixels at a time.
public enum LocalResponseNorm {
    typealias Lanes = SIMD16<Float>

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
                    let running = UnsafeMutablePointer<Float>.allocate(capacity: width)
                    defer { running.deallocate() }
                    let base = sample * c * plane + p0
                    let window = Window(x: xp + base, channels: c, plane: plane, before: p.before, after: p.after)
                    window.start(running, width)
                    for channel in 0..<c {
                        let xs = xp + base + channel * plane, ys = yp + base + channel * plane
                        let (entering, leaving) = window.moving(after: channel)
                        var i = 0
                        while i + 16 <= width {
                            let sum = load(running + i)
                            store(load(xs + i) * powNegBeta(p.bias + coefficient * sum, p.beta), ys + i)
                            store(Window.next(sum, entering.map { load($0 + i) }, leaving.map { load($0 + i) }), running + i)
                            i += 16
                        }
                        while i < width {
                            let sum = running[i]
                            ys[i] = xs[i] * powNegBeta(p.bias + coefficient * sum, p.beta)
                            running[i] = Window.next(sum, entering.map { $0[i] }, leaving.map { $0[i] })
                            i += 1
                        }
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
                        let running = UnsafeMutablePointer<Float>.allocate(capacity: width)
                        // t_i = dy_i x_i s_i^(-beta-1), kept per channel for the second sweep.
                        let t = UnsafeMutablePointer<Float>.allocate(capacity: c * width)
                        defer { running.deallocate(); t.deallocate() }
                        let base = sample * c * plane + p0
                        let window = Window(x: xp + base, channels: c, plane: plane, before: p.before, after: p.after)
                        window.start(running, width)
                        for channel in 0..<c {
                            let o = base + channel * plane
                            let xs = xp + o, gs = gp + o, ds = dp + o, ts = t + channel * width
                            let (entering, leaving) = window.moving(after: channel)
                            var i = 0
                            while i + 16 <= width {
                                let sum = load(running + i)
                                let s = p.bias + coefficient * sum, scale = powNegBeta(s, p.beta)
                                let g = load(gs + i)
                                store(g * scale, ds + i)
                                store(g * load(xs + i) * scale / s, ts + i)
                                store(Window.next(sum, entering.map { load($0 + i) }, leaving.map { load($0 + i) }), running + i)
                                i += 16
                            }
                            while i < width {
                                let sum = running[i]
                                let s = p.bias + coefficient * sum, scale = powNegBeta(s, p.beta)
                                ds[i] = gs[i] * scale
                                ts[i] = gs[i] * xs[i] * scale / s
                                running[i] = Window.next(sum, entering.map { $0[i] }, leaving.map { $0[i] })
                                i += 1
                            }
                        }
                        // j receives from every i whose window holds j: i in [j - after, j + before].
                        for i in 0..<width { running[i] = 0 }
                        for k in 0...min(p.before, c - 1) { add(t + k * width, to: running, width) }
                        for channel in 0..<c {
                            let o = base + channel * plane
                            let xs = xp + o, ds = dp + o
                            let entering = channel + 1 + p.before < c ? UnsafePointer(t + (channel + 1 + p.before) * width) : nil
                            let leaving = channel - p.after >= 0 ? UnsafePointer(t + (channel - p.after) * width) : nil
                            var i = 0
                            while i + 16 <= width {
                                var r = load(running + i)
                                store(load(ds + i) - factor * load(xs + i) * r, ds + i)
                                if let entering { r += load(entering + i) }
                                if let leaving { r -= load(leaving + i) }
                                store(r, running + i)
                                i += 16
                            }
                            while i < width {
                                ds[i] -= factor * xs[i] * running[i]
                                if let entering { running[i] += entering[i] }
                                if let leaving { running[i] -= leaving[i] }
                                i += 1
                            }
                        }
                    }
                }
            }
        }
    }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> Lanes { UnsafeRawPointer(p).loadUnaligned(as: Lanes.self) }
    @inline(__always) static func load(_ p: UnsafeMutablePointer<Float>) -> Lanes { load(UnsafePointer(p)) }
    @inline(__always) static func store(_ v: Lanes, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Lanes.self) }

    /// sums[i] += v[i] for i < count.
    static func add(_ v: UnsafePointer<Float>, to sums: UnsafeMutablePointer<Float>, _ count: Int) {
        var i = 0
        while i + 16 <= count { store(load(sums + i) + load(v + i), sums + i); i += 16 }
        while i < count { sums[i] += v[i]; i += 1 }
    }

    /// The channel window over one tile of pixels: which channels enter and leave it after each channel, and its
    /// running sum of squares. x points at channel 0, pixel 0 of the tile; channels are `plane` apart.
    struct Window {
        let x: UnsafePointer<Float>
        let channels: Int, plane: Int, before: Int, after: Int

        /// sums[i] = sum of x^2 over the window of channel 0 (channels 0 ... after).
        func start(_ sums: UnsafeMutablePointer<Float>, _ width: Int) {
            for i in 0..<width { sums[i] = 0 }
            for k in 0...min(after, channels - 1) {
                let xs = x + k * plane
                var i = 0
                while i + 16 <= width { let v = load(xs + i); store(load(sums + i) + v * v, sums + i); i += 16 }
                while i < width { sums[i] += xs[i] * xs[i]; i += 1 }
            }
        }

        /// The rows entering and leaving the window when it moves from `channel` to the next one.
        func moving(after channel: Int) -> (entering: UnsafePointer<Float>?, leaving: UnsafePointer<Float>?) {
            let entering = channel + 1 + after, leaving = channel - before
            return (entering < channels ? x + entering * plane : nil, leaving >= 0 ? x + leaving * plane : nil)
        }

        /// The next running sum: + entering^2, then - leaving^2 clamped at 0 (subtracting can leave a tiny negative
        /// rounding residue; Swift.max(0, t) semantics, so NaN becomes 0 as in the scalar form).
        @inline(__always)
        static func next(_ sum: Lanes, _ entering: Lanes?, _ leaving: Lanes?) -> Lanes {
            var r = sum
            if let e = entering { r += e * e }
            if let l = leaving { let t = r - l * l; r = t.replacing(with: 0, where: .!(t .>= 0)) }
            return r
        }

        @inline(__always)
        static func next(_ sum: Float, _ entering: Float?, _ leaving: Float?) -> Float {
            var r = sum
            if let e = entering { r += e * e }
            if let l = leaving { r = max(0, r - l * l) }
            return r
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

    /// s^-beta lane by lane, with cheap paths for the common exponents (0.75 in AlexNet / GoogLeNet, 0.5, 1).
    @inline(__always)
    static func powNegBeta(_ s: Lanes, _ beta: Float) -> Lanes {
        if beta == 0.75 { let r = s.squareRoot(); return 1 / (r * r.squareRoot()) }
        if beta == 0.5 { return 1 / s.squareRoot() }
        if beta == 1 { return 1 / s }
        var out = s
        for lane in 0..<Lanes.scalarCount { out[lane] = powNegBeta(s[lane], beta) }
        return out
    }

    /// s^-beta for one value, the same operations as the lanes above.
    @inline(__always)
    static func powNegBeta(_ s: Float, _ beta: Float) -> Float {
        if beta == 0.75 { let r = s.squareRoot(); return 1 / (r * r.squareRoot()) }
        if beta == 0.5 { return 1 / s.squareRoot() }
        if beta == 1 { return 1 / s }
        return Foundation.exp(-beta * Foundation.log(s))
    }
}
