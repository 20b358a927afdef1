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
public enum AveragePool {
    /// x [N,C,H,W] -> y [N,C,OH,OW]. ONNX semantics: countIncludePad=false divides by the number of real input elements in
    /// the window; countIncludePad=true divides by the window area clipped to the padded input (ceil_mode overhang not counted).
    public static func forward(_ x: Tensor, window: Window2D, countIncludePad: Bool) -> Tensor {
        precondition(x.rank == 4, "AveragePool: x \(x.shape) must be 4-D")
        let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
        let (outH, outW) = window.outputSize(inputH: h, inputW: w)
        return Tensor(shape: [x.shape[0], x.shape[1], outH, outW]) { out in
            x.withUnsafeBufferPointer { xp in
                let dst = out.baseAddress!, input = xp.baseAddress!
                parallelFor(planes) { plane in
                    let src = input + plane * h * w
                    var o = plane * outH * outW
                    for oh in 0..<outH {
                        let rows = taps(window, axisH: true, position: oh, input: h, countIncludePad: countIncludePad)
                        for ow in 0..<outW {
                            let cols = taps(window, axisH: false, position: ow, input: w, countIncludePad: countIncludePad)
                            var s: Float = 0
                            for ki in rows.real {
                                let row = src + (oh * window.strideH + ki * window.dilationH - window.padTop) * w
                                for kj in cols.real { s += row[ow * window.strideW + kj * window.dilationW - window.padLeft] }
                            }
                            let divisor = rows.count * cols.count
                            dst[o] = divisor == 0 ? 0 : s / Float(divisor)
                            o += 1
                        }
                    }
                }
            }
        }
    }

    /// dy [N,C,OH,OW] -> dx [N,C,H,W] = inputShape: each output spreads dy/divisor over the real elements of its window
    public static func backward(_ dy: Tensor, inputShape: [Int], window: Window2D, countIncludePad: Bool) -> Tensor {
        precondition(inputShape.count == 4, "AveragePool backward: input shape \(inputShape) must be 4-D")
        let (planes, h, w) = (inputShape[0] * inputShape[1], inputShape[2], inputShape[3])
        let (outH, outW) = window.outputSize(inputH: h, inputW: w)
        precondition(dy.shape == [inputShape[0], inputShape[1], outH, outW], "AveragePool backward: dy \(dy.shape) for input \(inputShape)")
        var dx = Tensor(shape: inputShape)
        dx.withUnsafeMutableBufferPointer { dxp in
            dy.withUnsafeBufferPointer { gp in
                let input = dxp.baseAddress!, grad = gp.baseAddress!
                parallelFor(planes) { plane in
                    let dst = input + plane * h * w
                    var o = plane * outH * outW
                    for oh in 0..<outH {
                        let rows = taps(window, axisH: true, position: oh, input: h, countIncludePad: countIncludePad)
                        for ow in 0..<outW {
                            let cols = taps(window, axisH: false, position: ow, input: w, countIncludePad: countIncludePad)
                            let divisor = rows.count * cols.count
                            if divisor > 0 {
                                let share = grad[o] / Float(divisor)
                                for ki in rows.real {
                                    let row = dst + (oh * window.strideH + ki * window.dilationH - window.padTop) * w
                                    for kj in cols.real { row[ow * window.strideW + kj * window.dilationW - window.padLeft] += share }
                                }
                            }
                            o += 1
                        }
                    }
                }
            }
        }
        return dx
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
