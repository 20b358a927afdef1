import CKernels
import Parallel

// Spatial pooling over NCHW tensors. Every (image, channel) plane is independent, so all kernels parallelise over planes.

/// Max pooling (ONNX MaxPool, with dilations and ceil_mode); padding never wins a max.
/// The forward keeps no argmax: the backward finds each window's winner again from x and y, which is cheaper
/// than maintaining indices in the forward pass and leaves nothing to store between the passes.
/// The kernels are in C (CKernels/KernelBodies.h, one compilation per `SIMDLevel`; max and equality are exact, so
/// every level gives the same bits); this file resolves the window and splits the planes over threads.
public enum MaxPool {
    /// x [N,C,H,W] -> y [N,C,OH,OW]; a window that covers only padding yields 0 (keeps the network finite).
    public static func forward(_ x: Tensor, window: Window2D) -> Tensor {
        precondition(x.rank == 4, "MaxPool: x \(x.shape) must be 4-D")
        let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
        let (outH, outW) = window.outputSize(inputH: h, inputW: w)
        let g = Geometry(window, h: h, w: w, outH: outH, outW: outW)
        return Tensor(shape: [x.shape[0], x.shape[1], outH, outW]) { out in
            guard out.count > 0 else { return }
            x.withUnsafeBufferPointer { xp in
                let dst = out.baseAddress!, input = xp.baseAddress!
                g.withShape { shape in
                    let floats = Int(dream_maxpool_forward_scratch_floats(shape))
                    parallelRanges(planes, work: planes * outH * (w + outW * window.kernelW), minimumWorkPerThread: 1 << 15) { range in
                        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: floats)
                        defer { scratch.deallocate() }
                        dream_maxpool_forward(shape, input, dst, Int64(range.lowerBound), Int64(range.upperBound), scratch)
                    }
                }
            }
        }
    }

    /// dy, y [N,C,OH,OW], x [N,C,H,W] -> dx [N,C,H,W]: each dy goes to the first element (in row-major window order)
    /// of its window that equals y, i.e. the element a plain scan keeping the first maximum would pick.
    public static func backward(_ dy: Tensor, x: Tensor, y: Tensor, window: Window2D) -> Tensor {
        precondition(x.rank == 4, "MaxPool backward: x \(x.shape) must be 4-D")
        let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
        let (outH, outW) = window.outputSize(inputH: h, inputW: w)
        precondition(y.shape == [x.shape[0], x.shape[1], outH, outW] && dy.shape == y.shape,
                     "MaxPool backward: dy \(dy.shape), y \(y.shape) for x \(x.shape) and window \(window)")
        let g = Geometry(window, h: h, w: w, outH: outH, outW: outW)
        guard dy.count > 0 else { return Tensor(shape: x.shape) }
        // Uninitialised: the kernel writes every element of every plane (clearing a plane just before its scatter).
        var dx = Tensor(shape: x.shape) { _ in }
        dx.withUnsafeMutableBufferPointer { dxp in
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeBufferPointer { yp in
                    dy.withUnsafeBufferPointer { gp in
                        let grads = dxp.baseAddress!, input = xp.baseAddress!, outputs = yp.baseAddress!, upstream = gp.baseAddress!
                        g.withShape { shape in
                            let floats = Int(dream_maxpool_backward_scratch_floats(shape))
                            parallelRanges(planes, work: planes * outH * outW * window.kernelH * window.kernelW,
                                           minimumWorkPerThread: 1 << 15) { range in
                                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: floats)
                                defer { scratch.deallocate() }
                                dream_maxpool_backward(shape, input, outputs, upstream, grads,
                                                       Int64(range.lowerBound), Int64(range.upperBound), scratch)
                            }
                        }
                    }
                }
            }
        }
        return dx
    }

    /// Window geometry resolved once per call.
    struct Geometry {
        let window: Window2D
        let h: Int, w: Int, outH: Int, outW: Int
        /// Width of the -inf padded row: enough for the last window, including ceil-mode overhang.
        let paddedWidth: Int
        /// Outputs whose window holds no input column at all.
        let paddingColumns: [Int32]
        /// For each output row, the first kernel row that lands inside the input and how many do.
        let rowFirst: [Int32], rowCount: [Int32]

        init(_ window: Window2D, h: Int, w: Int, outH: Int, outW: Int) {
            self.window = window
            self.h = h; self.w = w; self.outH = outH; self.outW = outW
            let reach = outW == 0 ? 0 : (outW - 1) * window.strideW + window.effectiveKernelW
            paddedWidth = max(window.padLeft + w, reach) + 1
            let realOutputColumns = (0..<window.kernelW).map {
                Im2Col.validOutputRange(offset: $0 * window.dilationW - window.padLeft, stride: window.strideW, input: w, output: outW)
            }
            paddingColumns = (0..<outW).filter { ow in !realOutputColumns.contains { $0.contains(ow) } }.map { Int32($0) }
            let rows = (0..<outH).map { AveragePool.taps(window, axisH: true, position: $0, input: h, countIncludePad: false).real }
            rowFirst = rows.map { Int32($0.lowerBound) }
            rowCount = rows.map { Int32($0.count) }
        }

        /// The geometry as the C kernels take it, valid inside `body`.
        func withShape<R>(_ body: (UnsafePointer<dream_maxpool_shape>) -> R) -> R {
            rowFirst.withUnsafeBufferPointer { first in
                rowCount.withUnsafeBufferPointer { count in
                    paddingColumns.withUnsafeBufferPointer { padding in
                        var shape = dream_maxpool_shape(
                            h: Int64(h), w: Int64(w), out_h: Int64(outH), out_w: Int64(outW), kernel_w: Int64(window.kernelW),
                            kernel_h: Int64(window.kernelH),
                            stride_h: Int64(window.strideH), stride_w: Int64(window.strideW),
                            dilation_h: Int64(window.dilationH), dilation_w: Int64(window.dilationW),
                            pad_top: Int64(window.padTop), pad_left: Int64(window.padLeft), padded_width: Int64(paddedWidth),
                            row_first: first.baseAddress, row_count: count.baseAddress,
                            padding_columns: padding.baseAddress, padding_column_count: Int64(padding.count))
                        return withUnsafePointer(to: &shape) { body($0) }
                    }
                }
            }
        }
    }
}

/// Average pooling (ONNX AveragePool, with dilations and ceil_mode).
///
/// Separable sums: for each row of outputs, the window's real input rows are first added column by column into one
/// row (`columnSums`), then each output adds its real taps across that row and divides by its divisor. Both passes
/// run eight columns or outputs at a time where the window lies wholly inside the input (and, across, the stride is
/// 1), and one at a time elsewhere, always in the same order (rows top to bottom, then taps left to right, starting
/// from 0), so every output has the same bits whichever path computes it. A 3x3 window costs 6 additions per output
/// instead of 9, in vectors. The taps that land inside the input, and the divisors, are resolved once per call.
public enum AveragePool {
    typealias Lanes = SIMD8<Float>

    /// x [N,C,H,W] -> y [N,C,OH,OW]. ONNX semantics: countIncludePad=false divides by the number of real input elements in
    /// the window; countIncludePad=true divides by the window area clipped to the padded input (ceil_mode overhang not counted).
    public static func forward(_ x: Tensor, window: Window2D, countIncludePad: Bool) -> Tensor {
        precondition(x.rank == 4, "AveragePool: x \(x.shape) must be 4-D")
        let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
        let g = Geometry(window, h: h, w: w, countIncludePad: countIncludePad)
        let (outH, outW) = (g.rows.count, g.columns.count)
        return Tensor(shape: [x.shape[0], x.shape[1], outH, outW]) { out in
            guard out.count > 0 else { return }
            x.withUnsafeBufferPointer { xp in
                let dst = out.baseAddress!, input = xp.baseAddress!
                parallelRanges(planes, work: out.count * (window.kernelH + window.kernelW), minimumWorkPerThread: 1 << 15) { range in
                    let sums = UnsafeMutablePointer<Float>.allocate(capacity: max(1, w))
                    defer { sums.deallocate() }
                    for plane in range {
                        for oh in 0..<outH {
                            g.forwardRow(src: input + plane * h * w, row: oh, sums: sums, dst: dst + (plane * outH + oh) * outW)
                        }
                    }
                }
            }
        }
    }

    /// dy [N,C,OH,OW] -> dx [N,C,H,W] = inputShape: each output spreads dy/divisor over the real elements of its window
    /// (the adjoint of the forward's two passes: shares spread across one row, then added to each real input row).
    public static func backward(_ dy: Tensor, inputShape: [Int], window: Window2D, countIncludePad: Bool) -> Tensor {
        precondition(inputShape.count == 4, "AveragePool backward: input shape \(inputShape) must be 4-D")
        let (planes, h, w) = (inputShape[0] * inputShape[1], inputShape[2], inputShape[3])
        let g = Geometry(window, h: h, w: w, countIncludePad: countIncludePad)
        let (outH, outW) = (g.rows.count, g.columns.count)
        precondition(dy.shape == [inputShape[0], inputShape[1], outH, outW], "AveragePool backward: dy \(dy.shape) for input \(inputShape)")
        var dx = Tensor(shape: inputShape)
        dx.withUnsafeMutableBufferPointer { dxp in
            dy.withUnsafeBufferPointer { gp in
                let input = dxp.baseAddress!, grad = gp.baseAddress!
                parallelRanges(planes, work: dy.count * (window.kernelH + window.kernelW), minimumWorkPerThread: 1 << 15) { range in
                    let spread = UnsafeMutablePointer<Float>.allocate(capacity: max(1, w))
                    defer { spread.deallocate() }
                    for plane in range {
                        for oh in 0..<outH {
                            g.backwardRow(dy: grad + (plane * outH + oh) * outW, row: oh, spread: spread, dst: input + plane * h * w)
                        }
                    }
                }
            }
        }
        return dx
    }

    /// The window resolved against one input size: for every output row and column, the taps inside the input and
    /// how many taps count towards the divisor.
    struct Geometry {
        let window: Window2D
        let w: Int
        let rows: [(real: Range<Int>, count: Int)]
        let columns: [(real: Range<Int>, count: Int)]
        /// Output columns whose every tap is real input, when the stride across is 1: the vector path's outputs.
        let interior: Range<Int>

        init(_ window: Window2D, h: Int, w: Int, countIncludePad: Bool) {
            let (outH, outW) = window.outputSize(inputH: h, inputW: w)
            self.window = window
            self.w = w
            rows = (0..<outH).map { taps(window, axisH: true, position: $0, input: h, countIncludePad: countIncludePad) }
            let columns = (0..<outW).map { taps(window, axisH: false, position: $0, input: w, countIncludePad: countIncludePad) }
            self.columns = columns
            let whole = columns.indices.filter { columns[$0].real == 0..<window.kernelW && columns[$0].count == window.kernelW }
            if window.strideW == 1, let first = whole.first, let last = whole.last, whole.count == last - first + 1 {
                interior = first..<(last + 1)
            } else {
                interior = 0..<0
            }
        }

        /// target[c] += source[c] for c < count, eight at a time.
        @inline(__always)
        static func add(_ source: UnsafePointer<Float>, into target: UnsafeMutablePointer<Float>, count: Int) {
            var c = 0
            while c + 8 <= count {
                let p = UnsafeMutableRawPointer(target + c)
                p.storeBytes(of: p.loadUnaligned(as: Lanes.self) + UnsafeRawPointer(source + c).loadUnaligned(as: Lanes.self), as: Lanes.self)
                c += 8
            }
            while c < count { target[c] += source[c]; c += 1 }
        }

        /// Input column of tap kj of output column ow.
        @inline(__always)
        func column(_ ow: Int, _ kj: Int) -> Int { ow * window.strideW + kj * window.dilationW - window.padLeft }

        /// Input row of tap ki of output row oh.
        @inline(__always)
        func row(_ oh: Int, _ ki: Int) -> Int { oh * window.strideH + ki * window.dilationH - window.padTop }

        /// One row of outputs of one plane; `sums` holds w floats.
        @inline(__always)
        func forwardRow(src: UnsafePointer<Float>, row oh: Int, sums: UnsafeMutablePointer<Float>, dst: UnsafeMutablePointer<Float>) {
            let r = rows[oh]
            let outW = columns.count
            guard !r.real.isEmpty else {
                dst.update(repeating: 0, count: outW)
                return
            }
            // Column sums of the real rows, top to bottom.
            let first = src + row(oh, r.real.lowerBound) * w
            sums.update(from: first, count: w)
            for ki in r.real.dropFirst() { Self.add(src + row(oh, ki) * w, into: sums, count: w) }
            // Across: each output's real taps, left to right, from 0.
            func scalar(_ ow: Int) {
                let cols = columns[ow]
                var s: Float = 0
                for kj in cols.real { s += sums[column(ow, kj)] }
                let divisor = r.count * cols.count
                dst[ow] = divisor == 0 ? 0 : s / Float(divisor)
            }
            var ow = 0
            while ow < interior.lowerBound { scalar(ow); ow += 1 }
            let divisor = Lanes(repeating: Float(r.count * window.kernelW))
            while ow + 8 <= interior.upperBound {
                var s = Lanes(repeating: 0)
                for kj in 0..<window.kernelW { s += UnsafeRawPointer(sums + column(ow, kj)).loadUnaligned(as: Lanes.self) }
                UnsafeMutableRawPointer(dst + ow).storeBytes(of: s / divisor, as: Lanes.self)
                ow += 8
            }
            while ow < outW { scalar(ow); ow += 1 }
        }

        /// Adds one row of outputs' gradients (dy / divisor) to the real taps of their windows in one plane of dx;
        /// `spread` holds w floats.
        @inline(__always)
        func backwardRow(dy: UnsafePointer<Float>, row oh: Int, spread: UnsafeMutablePointer<Float>, dst: UnsafeMutablePointer<Float>) {
            let r = rows[oh]
            guard !r.real.isEmpty else { return }
            spread.update(repeating: 0, count: w)
            func scalar(_ ow: Int) {
                let cols = columns[ow]
                let divisor = r.count * cols.count
                guard divisor > 0 else { return }
                let share = dy[ow] / Float(divisor)
                for kj in cols.real { spread[column(ow, kj)] += share }
            }
            var ow = 0
            while ow < interior.lowerBound { scalar(ow); ow += 1 }
            let divisor = Lanes(repeating: Float(r.count * window.kernelW))
            while ow + 8 <= interior.upperBound {
                let share = UnsafeRawPointer(dy + ow).loadUnaligned(as: Lanes.self) / divisor
                for kj in 0..<window.kernelW {
                    let p = UnsafeMutableRawPointer(spread + column(ow, kj))
                    p.storeBytes(of: p.loadUnaligned(as: Lanes.self) + share, as: Lanes.self)
                }
                ow += 8
            }
            while ow < columns.count { scalar(ow); ow += 1 }
            for ki in r.real { Self.add(spread, into: dst + row(oh, ki) * w, count: w) }
        }
    }

    /// Along one axis, for the window at output `position`: the kernel taps that hit real input, and how many taps
    /// count towards the divisor (real ones, or those inside the padded input when padding counts).
    @inline(__always)
    static func taps(_ window: Window2D, axisH: Bool, position: Int, input: Int, countIncludePad: Bool) -> (real: Range<Int>, count: Int) {
        let kernel = axisH ? window.kernelH : window.kernelW
        let stride = axisH ? window.strideH : window.strideW
        let dilation = axisH ? window.dilationH : window.dilationW
        let padBegin = axisH ? window.padTop : window.padLeft
        let padEnd = axisH ? window.padBottom : window.padRight
        let start = position * stride - padBegin
        // Taps k with lo <= start + k*dilation < hi.
        func range(_ lo: Int, _ hi: Int) -> Range<Int> {
            let first = start >= lo ? 0 : (lo - start + dilation - 1) / dilation
            let end = hi - 1 - start < 0 ? 0 : min(kernel, (hi - 1 - start) / dilation + 1)
            return first < end ? first..<end : first..<first
        }
        let real = range(0, input)
        return (real, countIncludePad ? range(-padBegin, input + padEnd).count : real.count)
    }
}

/// Mean over each whole plane (ONNX GlobalAveragePool).
public enum GlobalAveragePool {
    /// x [N,C,H,W] -> y [N,C,1,1]: each plane summed as 32 interleaved partial sums, then pairwise (C kernel
    /// dream_plane_means: SIMD, the same bits at every level), planes split over threads.
    public static func forward(_ x: Tensor) -> Tensor {
        precondition(x.rank >= 2, "GlobalAveragePool: x \(x.shape) needs batch and channel axes")
        let planes = x.shape[0] * x.shape[1], size = x.shape.dropFirst(2).reduce(1, *)
        return Tensor(shape: [x.shape[0], x.shape[1]] + [Int](repeating: 1, count: x.rank - 2)) { out in
            guard planes > 0 else { return }
            x.withUnsafeBufferPointer { xp in
                let dst = out.baseAddress!, input = xp.baseAddress!
                parallelRanges(planes, work: planes * size, minimumWorkPerThread: 1 << 16) { range in
                    dream_plane_means(input, Int64(size), dst, Int64(range.lowerBound), Int64(range.upperBound))
                }
            }
        }
    }

    /// dy [N,C,1,1] -> dx [N,C,H,W] = dy / (H*W) everywhere in the plane
    public static func backward(_ dy: Tensor, inputShape: [Int]) -> Tensor {
        let planes = inputShape[0] * inputShape[1], size = inputShape.dropFirst(2).reduce(1, *)
        precondition(dy.count == planes, "GlobalAveragePool backward: dy \(dy.shape) for input \(inputShape)")
        return Tensor(shape: inputShape) { dx in
            dy.withUnsafeBufferPointer { gp in
                for plane in 0..<planes {
                    (dx.baseAddress! + plane * size).update(repeating: gp[plane] / Float(size), count: size)
                }
            }
        }
    }
}

/// Max over each whole plane (ONNX GlobalMaxPool).
public enum GlobalMaxPool {
    /// x [N,C,H,W] -> y [N,C,1,1]
    public static func forward(_ x: Tensor) -> Tensor {
        reducingPlanes(x, "GlobalMaxPool") { src, size in
            var best = -Float.infinity
            for i in 0..<size { let v = src[i]; best = v > best ? v : best }
            return size == 0 ? 0 : best
        }
    }

    /// dy, y [N,C,1,1], x [N,C,H,W] -> dx [N,C,H,W]: each plane's gradient goes to its first element equal to y
    public static func backward(_ dy: Tensor, x: Tensor, y: Tensor) -> Tensor {
        let planes = x.rank >= 2 ? x.shape[0] * x.shape[1] : 1, size = x.count / max(1, planes)
        precondition(dy.count == planes && y.count == planes, "GlobalMaxPool backward: dy \(dy.shape), y \(y.shape) for x \(x.shape)")
        var dx = Tensor(shape: x.shape)
        dx.withUnsafeMutableBufferPointer { dxp in
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeBufferPointer { yp in
                    dy.withUnsafeBufferPointer { gp in
                        for plane in 0..<planes {
                            let src = xp.baseAddress! + plane * size
                            for i in 0..<size where src[i] == yp[plane] {
                                dxp[plane * size + i] = gp[plane]
                                break
                            }
                        }
                    }
                }
            }
        }
        return dx
    }
}

/// x [N,C,...] -> y [N,C,1,...]: `reduce(plane, size)` of every (sample, channel) plane, planes in parallel.
func reducingPlanes(_ x: Tensor, _ name: String, _ reduce: (UnsafePointer<Float>, Int) -> Float) -> Tensor {
    precondition(x.rank >= 2, "\(name): x \(x.shape) needs batch and channel axes")
    let planes = x.shape[0] * x.shape[1], size = x.shape.dropFirst(2).reduce(1, *)
    return Tensor(shape: [x.shape[0], x.shape[1]] + [Int](repeating: 1, count: x.rank - 2)) { out in
        x.withUnsafeBufferPointer { xp in
            let dst = out.baseAddress!, input = xp.baseAddress!
            parallelFor(planes) { plane in dst[plane] = reduce(input + plane * size, size) }
        }
    }
}
