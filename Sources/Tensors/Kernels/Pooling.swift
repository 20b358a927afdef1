// Spatial pooling over NCHW tensors. Every (image, channel) plane is independent, so all kernels parallelise over planes.

/// Max pooling (ONNX MaxPool, with dilations and ceil_mode); padding never wins a max.
public enum MaxPool {
    /// x [N,C,H,W] -> y [N,C,OH,OW]; argmax[i] = flat index into x of the winning element of y[i] (-1 if the window is all padding)
    public static func forward(_ x: Tensor, window: Window2D) -> (output: Tensor, argmax: [Int32]) {
        precondition(x.rank == 4, "MaxPool: x \(x.shape) must be 4-D")
        let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
        let (outH, outW) = window.outputSize(inputH: h, inputW: w)
        var argmax = [Int32](repeating: -1, count: planes * outH * outW)
        let y = Tensor(shape: [x.shape[0], x.shape[1], outH, outW]) { out in
            argmax.withUnsafeMutableBufferPointer { am in
                x.withUnsafeBufferPointer { xp in
                    let winners = am.baseAddress!, dst = out.baseAddress!, input = xp.baseAddress!
                    parallelFor(planes) { plane in
                        let src = input + plane * h * w
                        for oh in 0..<outH {
                            // The output row doubles as the running maximum: each tap sweeps the whole row, taps
                            // visited in (ki, kj) order so that the first maximum wins as in a plain scan.
                            let best = dst + (plane * outH + oh) * outW
                            let arg = winners + (plane * outH + oh) * outW
                            best.update(repeating: -Float.infinity, count: outW)
                            arg.update(repeating: -1, count: outW)
                            for ki in 0..<window.kernelH {
                                let ih = oh * window.strideH + ki * window.dilationH - window.padTop
                                if ih < 0 || ih >= h { continue }
                                for kj in 0..<window.kernelW {
                                    let offW = kj * window.dilationW - window.padLeft
                                    let columns = Im2Col.validOutputRange(offset: offW, stride: window.strideW, input: w, output: outW)
                                    let row = src + ih * w + offW
                                    let first = Int32(plane * h * w + ih * w + offW)
                                    maxStep(row, stride: window.strideW, first: first, columns: columns, best: best, arg: arg)
                                }
                            }
                            // Nothing beat -inf: the window holds only -inf/NaN inputs (take the first one, as a plain
                            // scan would) or only padding (no input to take; 0 keeps the network finite).
                            for ow in 0..<outW where arg[ow] < 0 {
                                best[ow] = 0
                                scan: for ki in 0..<window.kernelH {
                                    let ih = oh * window.strideH + ki * window.dilationH - window.padTop
                                    if ih < 0 || ih >= h { continue }
                                    for kj in 0..<window.kernelW {
                                        let iw = ow * window.strideW + kj * window.dilationW - window.padLeft
                                        if iw < 0 || iw >= w { continue }
                                        best[ow] = src[ih * w + iw]
                                        arg[ow] = Int32(plane * h * w + ih * w + iw)
                                        break scan
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return (y, argmax)
    }

    /// One kernel tap over an output row: best[o] = row[o*stride] where that is larger, and arg[o] = its flat index
    /// first + o*stride. Four lanes at a time with explicit vector selects, because scalar code compiles to a
    /// data-dependent branch that mispredicts on every other element.
    @inline(__always)
    static func maxStep(_ row: UnsafePointer<Float>, stride: Int, first: Int32, columns: Range<Int>,
                        best: UnsafeMutablePointer<Float>, arg: UnsafeMutablePointer<Int32>) {
        var o = columns.lowerBound
        let lanes = SIMD4<Int32>(0, 1, 2, 3) &* Int32(stride)
        while o + 4 <= columns.upperBound {
            let v: SIMD4<Float>
            if stride == 1 {
                v = UnsafeRawPointer(row + o).loadUnaligned(as: SIMD4<Float>.self)
            } else {
                let p = row + o * stride
                v = SIMD4(p[0], p[stride], p[2 * stride], p[3 * stride])
            }
            let current = UnsafeRawPointer(best + o).loadUnaligned(as: SIMD4<Float>.self)
            let index = UnsafeRawPointer(arg + o).loadUnaligned(as: SIMD4<Int32>.self)
            let better = v .> current
            UnsafeMutableRawPointer(best + o).storeBytes(of: current.replacing(with: v, where: better), as: SIMD4<Float>.self)
            let candidate = SIMD4<Int32>(repeating: first &+ Int32(o * stride)) &+ lanes
            UnsafeMutableRawPointer(arg + o).storeBytes(of: index.replacing(with: candidate, where: better), as: SIMD4<Int32>.self)
            o += 4
        }
        while o < columns.upperBound {
            let v = row[o * stride]
            if v > best[o] { best[o] = v; arg[o] = first &+ Int32(o * stride) }
            o += 1
        }
    }

    /// dy [N,C,OH,OW] -> dx with shape inputShape (scatter-add through argmax)
    public static func backward(_ dy: Tensor, argmax: [Int32], inputShape: [Int]) -> Tensor {
        precondition(argmax.count == dy.count, "MaxPool backward: \(argmax.count) argmax entries for dy \(dy.shape)")
        return scatterThroughArgmax(dy, argmax: argmax, inputShape: inputShape)
    }

    /// dx[argmax[i]] += dy[i]; winners of plane p lie in plane p, so planes are scattered in parallel.
    static func scatterThroughArgmax(_ dy: Tensor, argmax: [Int32], inputShape: [Int]) -> Tensor {
        var dx = Tensor(shape: inputShape)
        let planes = inputShape.count >= 2 ? inputShape[0] * inputShape[1] : 1
        let perPlane = planes == 0 ? 0 : dy.count / planes
        dx.withUnsafeMutableBufferPointer { dxp in
            dy.withUnsafeBufferPointer { gp in
                argmax.withUnsafeBufferPointer { am in
                    let dst = dxp.baseAddress!, grad = gp.baseAddress!, winners = am.baseAddress!
                    parallelFor(planes) { plane in
                        for i in (plane * perPlane)..<((plane + 1) * perPlane) where winners[i] >= 0 {
                            dst[Int(winners[i])] += grad[i]
                        }
                    }
                }
            }
        }
        return dx
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
        precondition(x.rank >= 2, "GlobalAveragePool: x \(x.shape) needs batch and channel axes")
        let planes = x.shape[0] * x.shape[1], size = x.shape.dropFirst(2).reduce(1, *)
        return Tensor(shape: [x.shape[0], x.shape[1]] + [Int](repeating: 1, count: x.rank - 2)) { out in
            x.withUnsafeBufferPointer { xp in
                let dst = out.baseAddress!, input = xp.baseAddress!
                parallelFor(planes) { plane in
                    let src = input + plane * size
                    var s: Float = 0
                    for i in 0..<size { s += src[i] }
                    dst[plane] = size == 0 ? 0 : s / Float(size)
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
    /// x [N,C,H,W] -> y [N,C,1,1]; argmax[i] = flat index into x of the winning element of y[i]
    public static func forward(_ x: Tensor) -> (output: Tensor, argmax: [Int32]) {
        precondition(x.rank >= 2, "GlobalMaxPool: x \(x.shape) needs batch and channel axes")
        let planes = x.shape[0] * x.shape[1], size = x.shape.dropFirst(2).reduce(1, *)
        var argmax = [Int32](repeating: -1, count: planes)
        let y = Tensor(shape: [x.shape[0], x.shape[1]] + [Int](repeating: 1, count: x.rank - 2)) { out in
            argmax.withUnsafeMutableBufferPointer { am in
                x.withUnsafeBufferPointer { xp in
                    let dst = out.baseAddress!, winners = am.baseAddress!, input = xp.baseAddress!
                    parallelFor(planes) { plane in
                        let src = input + plane * size
                        var best = -Float.infinity, arg = -1
                        for i in 0..<size where src[i] > best || arg < 0 { best = src[i]; arg = i }
                        dst[plane] = arg < 0 ? 0 : best
                        winners[plane] = arg < 0 ? -1 : Int32(plane * size + arg)
                    }
                }
            }
        }
        return (y, argmax)
    }

    /// dy [N,C,1,1] -> dx with shape inputShape (each plane's gradient goes to its maximum)
    public static func backward(_ dy: Tensor, argmax: [Int32], inputShape: [Int]) -> Tensor {
        precondition(argmax.count == dy.count, "GlobalMaxPool backward: \(argmax.count) argmax entries for dy \(dy.shape)")
        return MaxPool.scatterThroughArgmax(dy, argmax: argmax, inputShape: inputShape)
    }
}
