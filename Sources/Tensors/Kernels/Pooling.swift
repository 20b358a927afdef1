import Parallel

// Spatial pooling over NCHW tensors. Every (image, channel) plane is independent, so all kernels parallelise over planes.

/// Max pooling (ONNX MaxPool, with dilations and ceil_mode); padding never wins a max.
/// The forward keeps no argmax: the backward finds each window's winner again from x and y, which is cheaper
/// than maintaining indices in the forward pass and leaves nothing to store between the passes.
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
                parallelRanges(planes, work: planes * outH * (w + outW * window.kernelW), minimumWorkPerThread: 1 << 15) { range in
                    // Max is separable: a column max over the window's rows, written into a -inf padded row, then
                    // a row max over the window's columns. Both passes are branch-free, contiguous where stride 1.
                    let buffer = UnsafeMutablePointer<Float>.allocate(capacity: g.paddedWidth)
                    defer { buffer.deallocate() }
                    buffer.initialize(repeating: -.infinity, count: g.paddedWidth)
                    let row = buffer + window.padLeft
                    for plane in range {
                        let src = input + plane * h * w
                        for oh in 0..<outH {
                            let yRow = dst + (plane * outH + oh) * outW
                            let rows = g.realRows(oh)
                            if rows.isEmpty {
                                yRow.update(repeating: 0, count: outW)
                                continue
                            }
                            row.update(from: src + g.inputRow(oh, rows.lowerBound) * w, count: w)
                            for ki in rows.dropFirst() { maxInto(row, src + g.inputRow(oh, ki) * w, count: w) }
                            rowMax(buffer, g, into: yRow)
                            for ow in g.paddingColumns { yRow[ow] = 0 }
                        }
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
        let kW = window.kernelW, sW = window.strideW, dW = window.dilationW, padLeft = window.padLeft
        var dx = Tensor(shape: x.shape)
        guard dy.count > 0 else { return dx }
        // A padded input row split into its sW phases: phase r, slot j holds column j*sW + r - padLeft, NaN where that
        // is padding (NaN equals nothing, so padding never wins). Tap kj of output ow is then slot ow + q of phase r
        // with kj*dW = q*sW + r: contiguous in ow, whatever the stride.
        let phaseLength = (g.paddedWidth - 1) / sW + 1
        dx.withUnsafeMutableBufferPointer { dxp in
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeBufferPointer { yp in
                    dy.withUnsafeBufferPointer { gp in
                        let grads = dxp.baseAddress!, input = xp.baseAddress!, outputs = yp.baseAddress!, upstream = gp.baseAddress!
                        parallelRanges(planes, work: planes * outH * outW * window.kernelH * kW, minimumWorkPerThread: 1 << 15) { range in
                            // Rows are rounded up to whole vectors: the extra lanes see NaN taps and are never scattered.
                            let lanes = (outW + 7) / 8 * 8
                            // The whole plane is split into phases once: each input row serves up to kH output rows.
                            let rowStride = sW * phaseLength
                            let phases = UnsafeMutablePointer<Float>.allocate(capacity: h * rowStride + lanes)
                            let winners = UnsafeMutablePointer<Int32>.allocate(capacity: lanes)
                            let maxima = UnsafeMutablePointer<Float>.allocate(capacity: lanes)
                            defer { phases.deallocate(); winners.deallocate(); maxima.deallocate() }
                            // Slots that hold padding are never written below, so they stay NaN for every plane.
                            phases.initialize(repeating: .nan, count: h * rowStride + lanes)
                            maxima.initialize(repeating: .nan, count: lanes)
                            for plane in range {
                                let src = input + plane * h * w, dst = grads + plane * h * w
                                for ih in 0..<h {
                                    let xRow = src + ih * w, phaseRow = phases + ih * rowStride
                                    if sW == 1 {
                                        (phaseRow + padLeft).update(from: xRow, count: w)
                                    } else {
                                        for r in 0..<sW {
                                            let phase = phaseRow + r * phaseLength
                                            var j = (padLeft - r + sW - 1) / sW, column = j * sW + r - padLeft
                                            while column < w { phase[j] = xRow[column]; j += 1; column += sW }
                                        }
                                    }
                                }
                                for oh in 0..<outH {
                                    let o = (plane * outH + oh) * outW
                                    let grad = upstream + o
                                    maxima.update(from: outputs + o, count: outW)
                                    winners.update(repeating: -1, count: lanes)
                                    // Taps in reverse scan order, each overwriting earlier hits: the first hit survives.
                                    for ki in g.realRows(oh).reversed() {
                                        let ih = g.inputRow(oh, ki)
                                        let phaseRow = phases + ih * rowStride
                                        for kj in stride(from: kW - 1, through: 0, by: -1) {
                                            let t = kj * dW
                                            let taps = phaseRow + (t % sW) * phaseLength + t / sW
                                            selectHits(taps, maxima, count: lanes, first: Int32(ih * w + t - padLeft), step: Int32(sW), winners: winners)
                                        }
                                    }
                                    for ow in 0..<outW {
                                        let i = Int(winners[ow])
                                        if i >= 0 { dst[i] += grad[ow] }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return dx
    }

    /// winners[o] = first + o*step wherever taps[o] == best[o]; count is a multiple of 8 (vector selects, no tail).
    @inline(__always)
    static func selectHits(_ taps: UnsafePointer<Float>, _ best: UnsafePointer<Float>, count: Int, first: Int32, step: Int32,
                           winners: UnsafeMutablePointer<Int32>) {
        var o = 0
        let lanes = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7) &* step &+ first
        while o < count {
            let v = UnsafeRawPointer(taps + o).loadUnaligned(as: SIMD8<Float>.self)
            let m = UnsafeRawPointer(best + o).loadUnaligned(as: SIMD8<Float>.self)
            let current = UnsafeRawPointer(winners + o).loadUnaligned(as: SIMD8<Int32>.self)
            let candidate = lanes &+ Int32(o) &* step
            UnsafeMutableRawPointer(winners + o).storeBytes(of: current.replacing(with: candidate, where: v .== m), as: SIMD8<Int32>.self)
            o += 8
        }
    }

    /// Window geometry resolved once per call.
    struct Geometry {
        let window: Window2D
        let h: Int, w: Int, outH: Int, outW: Int
        /// Width of the -inf padded row: enough for the last window, including ceil-mode overhang.
        let paddedWidth: Int
        /// For kernel column kj, the outputs whose tap kj lands inside the input.
        let realOutputColumns: [Range<Int>]
        /// Outputs whose window holds no input column at all.
        let paddingColumns: [Int]

        init(_ window: Window2D, h: Int, w: Int, outH: Int, outW: Int) {
            self.window = window
            self.h = h; self.w = w; self.outH = outH; self.outW = outW
            let reach = outW == 0 ? 0 : (outW - 1) * window.strideW + window.effectiveKernelW
            paddedWidth = max(window.padLeft + w, reach) + 1
            realOutputColumns = (0..<window.kernelW).map {
                Im2Col.validOutputRange(offset: $0 * window.dilationW - window.padLeft, stride: window.strideW, input: w, output: outW)
            }
            let columns = realOutputColumns
            paddingColumns = (0..<outW).filter { ow in !columns.contains { $0.contains(ow) } }
        }

        /// Kernel rows of output row oh that land inside the input.
        @inline(__always)
        func realRows(_ oh: Int) -> Range<Int> {
            AveragePool.taps(window, axisH: true, position: oh, input: h, countIncludePad: false).real
        }

        @inline(__always)
        func inputRow(_ oh: Int, _ ki: Int) -> Int { oh * window.strideH + ki * window.dilationH - window.padTop }
    }

    /// a[i] = max(a[i], b[i]); written as a select so that it compiles to a vector max.
    @inline(__always)
    static func maxInto(_ a: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { let v = b[i], m = a[i]; a[i] = v > m ? v : m }
    }

    /// y[ow] = max over kj of padded[ow*sW + kj*dW]; padded starts at the left pad.
    @inline(__always)
    static func rowMax(_ padded: UnsafePointer<Float>, _ g: Geometry, into y: UnsafeMutablePointer<Float>) {
        let sW = g.window.strideW, dW = g.window.dilationW, outW = g.outW
        if sW == 1 {
            y.update(from: padded, count: outW)
            for kj in 1..<max(1, g.window.kernelW) { maxInto(y, padded + kj * dW, count: outW) }
        } else {
            for ow in 0..<outW { y[ow] = padded[ow * sW] }
            for kj in 1..<max(1, g.window.kernelW) {
                let p = padded + kj * dW
                for ow in 0..<outW { let v = p[ow * sW], m = y[ow]; y[ow] = v > m ? v : m }
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
    /// x [N,C,H,W] -> y [N,C,1,1]
    public static func forward(_ x: Tensor) -> Tensor {
        reducingPlanes(x, "GlobalAveragePool") { src, size in
            var s: Float = 0
            for i in 0..<size { s += src[i] }
            return size == 0 ? 0 : s / Float(size)
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
