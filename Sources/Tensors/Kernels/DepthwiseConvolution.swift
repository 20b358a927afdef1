import Parallel

/// Depthwise 3x3 convolution (one input channel per group, one filter per channel, stride 1 or 2, dilation 1, any
/// padding) as a direct SIMD kernel, forward and backward: MobileNet's depthwise layers.
///
/// Each input plane is first copied into a zero-padded scratch plane, so that the inner loops never test a border.
/// For stride 2 each padded row is stored de-interleaved (even columns, then odd columns): tap kj of output column ow
/// reads phase kj % s at index ow + kj / s, so every load is contiguous and all nine taps of eight output columns
/// sit in registers, and each output row is written once (the loop kernel in Convolution makes nine passes).
enum DepthwiseConvolution3x3 {
    typealias Vector = SIMD8<Float>
    static let lanes = Vector.scalarCount

    /// Whether this kernel handles the convolution: depthwise with multiplier 1, 3x3, stride 1 or 2, dilation 1.
    static func handles(_ g: Convolution.Geometry) -> Bool {
        let win = g.window
        return g.isDepthwise && g.mg == 1 && win.kernelH == 3 && win.kernelW == 3 && win.dilationH == 1 && win.dilationW == 1
            && win.strideH == win.strideW && (win.strideH == 1 || win.strideH == 2)
    }

    /// Sizes of the padded, de-interleaved plane: `rows` rows of `stride` phases of `length` floats each.
    struct Layout {
        let stride: Int, rows: Int, length: Int
        var rowFloats: Int { stride * length }
        var planeFloats: Int { rows * rowFloats }
        /// Padded plane row r holds input row r - padTop; padded column c (phase c % s, index c / s) holds c - padLeft.
        init(_ g: Convolution.Geometry) {
            stride = g.window.strideH
            rows = (g.outH - 1) * stride + 3
            length = g.outW + 2
        }
    }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> Vector {
        UnsafeRawPointer(p).loadUnaligned(as: Vector.self)
    }

    @inline(__always) static func store(_ v: Vector, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vector.self)
    }

    /// x plane [H,W] -> padded plane (zeros outside the image)
    static func pad(_ g: Convolution.Geometry, _ layout: Layout, plane x: UnsafePointer<Float>, into p: UnsafeMutablePointer<Float>) {
        let s = layout.stride, padTop = g.window.padTop, padLeft = g.window.padLeft
        for r in 0..<layout.rows {
            let row = p + r * layout.rowFloats
            let ih = r - padTop
            guard ih >= 0 && ih < g.h else { row.update(repeating: 0, count: layout.rowFloats); continue }
            let src = x + ih * g.w
            for phase in 0..<s {
                let dst = row + phase * layout.length
                // Index i holds input column s·i + phase - padLeft; copy the indices whose column is inside the image.
                let first = min(layout.length, max(0, (padLeft - phase + s - 1) / s))
                let end = min(layout.length, max(first, (g.w + padLeft - phase + s - 1) / s))
                if first > 0 { dst.update(repeating: 0, count: min(first, layout.length)) }
                if s == 1 {
                    if end > first { dst.advanced(by: first).update(from: src + (first - padLeft), count: end - first) }
                } else {
                    // Stride 2: the even (or odd) lanes of 16 consecutive input columns are 8 consecutive indices.
                    let shift = phase - padLeft
                    var i = first
                    while i + lanes <= end && 2 * i + shift + 2 * lanes <= g.w {
                        let pair = UnsafeRawPointer(src + (2 * i + shift)).loadUnaligned(as: SIMD16<Float>.self)
                        store(pair.evenHalf, dst + i)
                        i += lanes
                    }
                    while i < end { dst[i] = src[2 * i + shift]; i += 1 }
                }
                if end < layout.length { (dst + end).update(repeating: 0, count: layout.length - max(end, first)) }
            }
        }
    }

    /// x [N,C,H,W], weight [C,1,3,3], bias [C]? -> y [N,C,OH,OW]
    static func forward(_ g: Convolution.Geometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                        bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>) {
        let layout = Layout(g)
        let s = layout.stride
        parallelRanges(g.n * g.c, work: g.n * g.c * g.p * 9, minimumWorkPerThread: 1 << 15) { planes in
            let padded = UnsafeMutablePointer<Float>.allocate(capacity: layout.planeFloats)
            defer { padded.deallocate() }
            for plane in planes {
                let channel = plane % g.c
                pad(g, layout, plane: x + plane * g.h * g.w, into: padded)
                let w = weight + channel * 9
                let b = bias?[channel] ?? 0
                let out = y + plane * g.p
                for oh in 0..<g.outH {
                    let dst = out + oh * g.outW
                    // Row ki, tap kj: phase kj % s, shift kj / s.
                    let r0 = padded + (oh * s) * layout.rowFloats
                    let r1 = r0 + layout.rowFloats, r2 = r1 + layout.rowFloats
                    let o1 = (1 % s) * layout.length + 1 / s, o2 = (2 % s) * layout.length + 2 / s
                    if g.outW >= lanes {
                        let w0 = Vector(repeating: w[0]), w1 = Vector(repeating: w[1]), w2 = Vector(repeating: w[2])
                        let w3 = Vector(repeating: w[3]), w4 = Vector(repeating: w[4]), w5 = Vector(repeating: w[5])
                        let w6 = Vector(repeating: w[6]), w7 = Vector(repeating: w[7]), w8 = Vector(repeating: w[8])
                        let vb = Vector(repeating: b)
                        var ow = 0
                        while true {
                            // The last block overlaps the one before it instead of a scalar tail: the values are the same.
                            let j = min(ow, g.outW - lanes)
                            var acc = vb
                            acc += w0 * load(r0 + j); acc += w1 * load(r0 + o1 + j); acc += w2 * load(r0 + o2 + j)
                            acc += w3 * load(r1 + j); acc += w4 * load(r1 + o1 + j); acc += w5 * load(r1 + o2 + j)
                            acc += w6 * load(r2 + j); acc += w7 * load(r2 + o1 + j); acc += w8 * load(r2 + o2 + j)
                            store(acc, dst + j)
                            if j == g.outW - lanes { break }
                            ow += lanes
                        }
                    } else {
                        for ow in 0..<g.outW {
                            var acc = b
                            acc += w[0] * r0[ow] + w[1] * r0[o1 + ow] + w[2] * r0[o2 + ow]
                            acc += w[3] * r1[ow] + w[4] * r1[o1 + ow] + w[5] * r1[o2 + ow]
                            acc += w[6] * r2[ow] + w[7] * r2[o1 + ow] + w[8] * r2[o2 + ow]
                            dst[ow] = acc
                        }
                    }
                }
            }
        }
    }

    /// dy [N,C,OH,OW] -> dx [N,C,H,W] (every element written)
    ///
    /// The gradient of the padded plane is gathered row by row: padded row r receives output rows oh with
    /// oh·s + ki = r, and padded column (phase, i) receives output column i - t from tap kj = phase + s·t.
    /// Output rows are read from a copy with two zero columns on either side, so the shifts never leave the row, and
    /// a kernel row that reaches no output row reads a zero row with zero weights (no branch in the inner loop).
    static func inputGradient(_ g: Convolution.Geometry, dy: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                              dx: UnsafeMutablePointer<Float>) {
        let layout = Layout(g)
        let s = layout.stride, dyRow = g.outW + 4
        parallelRanges(g.n * g.c, work: g.n * g.c * g.p * 9, minimumWorkPerThread: 1 << 15) { planes in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: layout.rowFloats + (g.outH + 1) * dyRow)
            defer { scratch.deallocate() }
            let paddedRow = scratch, zeros = scratch + layout.rowFloats, grad = zeros + dyRow
            zeros.update(repeating: 0, count: dyRow)
            var coefficients = [Float](repeating: 0, count: 9)
            for plane in planes {
                let w = weight + (plane % g.c) * 9
                let src = dy + plane * g.p
                for oh in 0..<g.outH {
                    let row = grad + oh * dyRow
                    row[0] = 0; row[1] = 0; row[g.outW + 2] = 0; row[g.outW + 3] = 0
                    (row + 2).update(from: src + oh * g.outW, count: g.outW)
                }
                let dst = dx + plane * g.h * g.w
                for ih in 0..<g.h {
                    let r = ih + g.window.padTop
                    let target = dst + ih * g.w
                    guard r < layout.rows else { target.update(repeating: 0, count: g.w); continue }
                    // The output row each kernel row ki reaches (or the zero row).
                    var rows = (UnsafePointer(zeros + 2), UnsafePointer(zeros + 2), UnsafePointer(zeros + 2))
                    var reached = 0 // bit ki: kernel row ki reaches an output row
                    for ki in 0..<3 where r - ki >= 0 && (r - ki) % s == 0 && (r - ki) / s < g.outH {
                        let pointer = UnsafePointer(grad + ((r - ki) / s) * dyRow + 2)
                        if ki == 0 { rows.0 = pointer } else if ki == 1 { rows.1 = pointer } else { rows.2 = pointer }
                        reached |= 1 << ki
                    }
                    for phase in 0..<s {
                        // coefficients[ki·3 + t]: the weight of tap kj = phase + s·t in kernel row ki (0 if none).
                        for ki in 0..<3 {
                            for t in 0..<3 {
                                let kj = phase + s * t
                                coefficients[ki * 3 + t] = reached & (1 << ki) != 0 && kj < 3 ? w[ki * 3 + kj] : 0
                            }
                        }
                        coefficients.withUnsafeBufferPointer { c in
                            gatherRow(rows, c.baseAddress!, length: layout.length, into: paddedRow + phase * layout.length)
                        }
                    }
                    // Padded column c = iw + padLeft lives at phase c % s, index c / s.
                    for iw in 0..<g.w {
                        let c = iw + g.window.padLeft
                        let i = c / s
                        target[iw] = i < layout.length ? paddedRow[(c % s) * layout.length + i] : 0
                    }
                }
            }
        }
    }

    /// out[i] = Σ over kernel rows ki and shifts t: c[ki·3 + t] · rows_ki[i - t], for i in 0..<length
    @inline(__always)
    static func gatherRow(_ rows: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>), _ c: UnsafePointer<Float>,
                          length: Int, into out: UnsafeMutablePointer<Float>) {
        let (a, b, d) = rows
        if length >= lanes {
            let c0 = Vector(repeating: c[0]), c1 = Vector(repeating: c[1]), c2 = Vector(repeating: c[2])
            let c3 = Vector(repeating: c[3]), c4 = Vector(repeating: c[4]), c5 = Vector(repeating: c[5])
            let c6 = Vector(repeating: c[6]), c7 = Vector(repeating: c[7]), c8 = Vector(repeating: c[8])
            var i = 0
            while true {
                let j = min(i, length - lanes)
                var acc = c0 * load(a + j)
                acc += c1 * load(a + j - 1); acc += c2 * load(a + j - 2)
                acc += c3 * load(b + j); acc += c4 * load(b + j - 1); acc += c5 * load(b + j - 2)
                acc += c6 * load(d + j); acc += c7 * load(d + j - 1); acc += c8 * load(d + j - 2)
                store(acc, out + j)
                if j == length - lanes { break }
                i += lanes
            }
        } else {
            for i in 0..<length {
                var acc = c[0] * a[i] + c[1] * a[i - 1] + c[2] * a[i - 2]
                acc += c[3] * b[i] + c[4] * b[i - 1] + c[5] * b[i - 2]
                acc += c[6] * d[i] + c[7] * d[i - 1] + c[8] * d[i - 2]
                out[i] = acc
            }
        }
    }

    /// dy [N,C,OH,OW], x [N,C,H,W] -> dWeight [C,1,3,3] (accumulated onto the caller's zeros)
    static func weightGradient(_ g: Convolution.Geometry, dy: UnsafePointer<Float>, x: UnsafePointer<Float>,
                               dWeight: UnsafeMutablePointer<Float>) {
        let layout = Layout(g)
        let s = layout.stride
        let o1 = (1 % s) * layout.length + 1 / s, o2 = (2 % s) * layout.length + 2 / s
        let offsets = [0, o1, o2]
        parallelRanges(g.c, work: g.n * g.c * g.p * 9, minimumWorkPerThread: 1 << 15) { channels in
            let padded = UnsafeMutablePointer<Float>.allocate(capacity: layout.planeFloats)
            defer { padded.deallocate() }
            for channel in channels {
                let gradients = dWeight + channel * 9
                for image in 0..<g.n {
                    let plane = image * g.c + channel
                    pad(g, layout, plane: x + plane * g.h * g.w, into: padded)
                    let grad = dy + plane * g.p
                    let blocks = g.outW / lanes, tail = blocks * lanes
                    var vsum = [Vector](repeating: Vector(), count: 9)
                    var ssum = [Float](repeating: 0, count: 9)
                    for oh in 0..<g.outH {
                        let gradRow = grad + oh * g.outW
                        for ki in 0..<3 {
                            let row = padded + (oh * s + ki) * layout.rowFloats
                            for kj in 0..<3 {
                                let src = row + offsets[kj]
                                var acc = vsum[ki * 3 + kj]
                                for block in 0..<blocks { acc += load(gradRow + block * lanes) * load(src + block * lanes) }
                                vsum[ki * 3 + kj] = acc
                                var t: Float = 0
                                for ow in tail..<g.outW { t += gradRow[ow] * src[ow] }
                                ssum[ki * 3 + kj] += t
                            }
                        }
                    }
                    for tap in 0..<9 { gradients[tap] += vsum[tap].sum() + ssum[tap] }
                }
            }
        }
    }
}
