import Foundation
import Parallel

/// ONNX Pad modes: a constant value, the mirror image without repeating the edge (numpy "reflect"), or the edge repeated.
public enum PadMode: String { case constant, reflect, edge }

/// Padding and cropping (ONNX Pad). Every output index along an axis maps to one input index (or none, for
/// constant padding), so forward is a gather and backward the matching scatter-add.
public enum Pad {
    /// x [d_i] -> y [d_i + begin_i + end_i]; pads = [x1_begin, x2_begin, …, x1_end, x2_end, …], negative values crop.
    public static func forward(_ x: Tensor, pads: [Int], mode: PadMode, value: Float) -> Tensor {
        let plan = Plan(inputShape: x.shape, pads: pads, mode: mode)
        guard x.rank > 0 else { return x }
        let outLast = plan.outShape[x.rank - 1], inLast = x.shape[x.rank - 1]
        let begin = pads[x.rank - 1]
        // Output columns [lo, hi) are a straight copy of input columns [lo - begin, hi - begin).
        let lo = min(max(0, begin), outLast), hi = max(lo, min(outLast, begin + inLast))
        return Tensor(shape: plan.outShape) { yb in
            guard yb.count > 0 else { return }
            x.withUnsafeBufferPointer { xb in
                plan.maps.withUnsafeBufferPointer { mb in
                    let xp = xb.baseAddress, yp = yb.baseAddress!, lastMap = mb.baseAddress! + plan.mapStart[x.rank - 1]
                    parallelRanges(plan.rows, minimumWorkPerThread: max(1, (1 << 16) / max(1, outLast))) { rows in
                        for row in rows {
                            let dst = yp + row * outLast
                            guard let offset = plan.inputRowOffset(row, mb.baseAddress!), let xp else {
                                dst.update(repeating: value, count: outLast)
                                continue
                            }
                            let src = xp + offset
                            for j in 0..<lo { let m = lastMap[j]; dst[j] = m >= 0 ? src[m] : value }
                            if hi > lo { (dst + lo).update(from: src + (lo - begin), count: hi - lo) }
                            for j in hi..<outLast { let m = lastMap[j]; dst[j] = m >= 0 ? src[m] : value }
                        }
                    }
                }
            }
        }
    }

    /// dy [d_i + begin_i + end_i] -> dx [d_i]: cropped and constant-padded parts drop out, and edge / reflect
    /// padding adds each replicated or mirrored element's gradient back onto its source.
    public static func backward(_ dy: Tensor, inputShape: [Int], pads: [Int], mode: PadMode) -> Tensor {
        let plan = Plan(inputShape: inputShape, pads: pads, mode: mode)
        precondition(dy.shape == plan.outShape, "Pad backward: dy \(dy.shape), expected \(plan.outShape)")
        guard inputShape.count > 0 else { return dy }
        let rank = inputShape.count, outLast = plan.outShape[rank - 1]
        return Tensor(shape: inputShape) { db in
            guard db.count > 0 else { return }
            let dp = db.baseAddress!
            dp.initialize(repeating: 0, count: db.count)
            dy.withUnsafeBufferPointer { gb in
                plan.maps.withUnsafeBufferPointer { mb in
                    guard let gp = gb.baseAddress else { return }
                    let lastMap = mb.baseAddress! + plan.mapStart[rank - 1]
                    // Sequential: with edge / reflect several output rows add into the same input row.
                    for row in 0..<plan.rows {
                        guard let offset = plan.inputRowOffset(row, mb.baseAddress!) else { continue }
                        let src = gp + row * outLast, dst = dp + offset
                        for j in 0..<outLast {
                            let m = lastMap[j]
                            if m >= 0 { dst[m] += src[j] }
                        }
                    }
                }
            }
        }
    }

    /// Output shape and, per axis, the input index each output index reads (-1: padding constant).
    struct Plan {
        var inputShape: [Int], outShape: [Int]
        var maps: [Int] = [], mapStart: [Int] = []
        var inputStrides: [Int]
        var rows: Int

        init(inputShape: [Int], pads: [Int], mode: PadMode) {
            let rank = inputShape.count
            precondition(pads.count == 2 * rank, "Pad: \(pads.count) pads for rank \(rank)")
            self.inputShape = inputShape
            outShape = (0..<rank).map { inputShape[$0] + pads[$0] + pads[$0 + rank] }
            precondition(outShape.allSatisfy { $0 >= 0 }, "Pad: pads \(pads) crop more than \(inputShape)")
            inputStrides = strides(of: inputShape)
            rows = outShape.dropLast().reduce(1, *)
            for axis in 0..<rank {
                let n = inputShape[axis], begin = pads[axis]
                mapStart.append(maps.count)
                for o in 0..<outShape[axis] {
                    let i = o - begin
                    if i >= 0 && i < n { maps.append(i); continue }
                    precondition(mode == .constant || n > 0, "Pad: cannot \(mode.rawValue)-pad an empty axis")
                    switch mode {
                    case .constant: maps.append(-1)
                    case .edge: maps.append(min(max(i, 0), n - 1))
                    case .reflect:
                        if n == 1 { maps.append(0); continue }
                        let period = 2 * (n - 1)
                        let m = ((i % period) + period) % period
                        maps.append(m < n ? m : period - m)
                    }
                }
            }
        }

        /// Offset of the input row read by output row `row` (all axes but the last), nil if it lies in constant padding.
        func inputRowOffset(_ row: Int, _ maps: UnsafePointer<Int>) -> Int? {
            var rest = row, offset = 0
            var axis = outShape.count - 2
            while axis >= 0 {
                let o = rest % outShape[axis]
                rest /= outShape[axis]
                let i = maps[mapStart[axis] + o]
                if i < 0 { return nil }
                offset += i * inputStrides[axis]
                axis -= 1
            }
            return offset
        }
    }
}
