import Foundation
import Parallel

/// Concatenation along one axis (ONNX Concat; GoogLeNet inception blocks and SqueezeNet fire modules use axis 1).
/// Each input is [outer, length_k, inner], so each contributes one contiguous block per outer index: block copies,
/// spread over threads as one pass over the output (a fire module's or inception block's output is 0.2–1.5 MB, and
/// one core does not saturate the memory bandwidth copying it).
public enum Concat {
    /// xs [..., d_k, ...] -> y [..., sum d_k, ...]; all other dimensions equal; axis may be negative.
    public static func forward(_ xs: [Tensor], axis: Int) -> Tensor {
        precondition(!xs.isEmpty, "Concat needs at least one input")
        let first = xs[0].shape
        let a = axis < 0 ? axis + first.count : axis
        precondition(a >= 0 && a < first.count, "Concat axis \(axis) out of range for \(first)")
        for x in xs {
            precondition(x.rank == first.count && (0..<first.count).allSatisfy { $0 == a || x.shape[$0] == first[$0] },
                         "Concat: \(x.shape) does not match \(first) off axis \(a)")
        }
        var outShape = first
        outShape[a] = xs.reduce(0) { $0 + $1.shape[a] }
        let outer = first[..<a].reduce(1, *), inner = first[(a + 1)...].reduce(1, *)
        let outBlock = outShape[a] * inner
        return Tensor(shape: outShape) { yb in
            let yp = yb.baseAddress!
            var blocks: [Block] = []
            var start = 0
            for x in xs {
                let block = x.shape[a] * inner
                // The inputs outlive the copy (xs holds them), so their storage pointers stay valid.
                let xp = x.storage.pointer
                if block > 0 {
                    for o in 0..<outer { blocks.append(Block(from: xp + o * block, to: yp + o * outBlock + start, count: block)) }
                }
                start += block
            }
            copy(blocks)
        }
    }

    /// dy [..., sum d_k, ...] -> pieces with the given shapes (each [..., d_k, ...]).
    public static func backward(_ dy: Tensor, shapes: [[Int]], axis: Int) -> [Tensor] {
        let a = axis < 0 ? axis + dy.rank : axis
        precondition(a >= 0 && a < dy.rank, "Concat axis \(axis) out of range for \(dy.shape)")
        precondition(shapes.reduce(0) { $0 + $1[a] } == dy.shape[a], "Concat backward: \(shapes) do not sum to \(dy.shape)")
        let outer = dy.shape[..<a].reduce(1, *), inner = dy.shape[(a + 1)...].reduce(1, *)
        let outBlock = dy.shape[a] * inner
        let pieces = shapes.map { Tensor(shape: $0, unsafeUninitialized: { _ in }) }
        dy.withUnsafeBufferPointer { gb in
            let gp = gb.baseAddress!
            var blocks: [Block] = []
            var start = 0
            for k in pieces.indices {
                let block = shapes[k][a] * inner
                // Fresh, uniquely owned tensors: their storage is written in place, never shared.
                let xp = pieces[k].storage.pointer
                if block > 0 {
                    for o in 0..<outer { blocks.append(Block(from: gp + o * outBlock + start, to: xp + o * block, count: block)) }
                }
                start += block
            }
            copy(blocks)
        }
        return pieces
    }

    /// One contiguous run of floats to copy.
    struct Block {
        let from: UnsafePointer<Float>
        let to: UnsafeMutablePointer<Float>
        let count: Int
    }

    /// Copies every block, the total split into equal ranges of elements over threads (a range may start and end
    /// inside blocks); blocks never overlap.
    static func copy(_ blocks: [Block]) {
        var starts = [Int](repeating: 0, count: blocks.count + 1)
        for (k, b) in blocks.enumerated() { starts[k + 1] = starts[k] + b.count }
        let total = starts[blocks.count]
        parallelRanges(total, minimumWorkPerThread: 1 << 16) { range in
            // The first block that ends after range.lowerBound.
            var lo = 0, hi = blocks.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if starts[mid + 1] <= range.lowerBound { lo = mid + 1 } else { hi = mid }
            }
            var k = lo, at = range.lowerBound
            while at < range.upperBound && k < blocks.count {
                let offset = at - starts[k], n = min(starts[k + 1], range.upperBound) - at
                (blocks[k].to + offset).update(from: blocks[k].from + offset, count: n)
                at += n
                k += 1
            }
        }
    }
}
