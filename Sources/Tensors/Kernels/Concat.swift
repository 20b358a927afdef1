import Foundation

/// Concatenation along one axis (ONNX Concat; GoogLeNet inception blocks and SqueezeNet fire modules use axis 1).
/// Each input is [outer, length_k, inner], so each contributes one contiguous block per outer index: block copies.
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
            var start = 0
            for x in xs {
                let block = x.shape[a] * inner
                x.withUnsafeBufferPointer { xb in
                    guard block > 0 else { return }
                    let xp = xb.baseAddress!
                    for o in 0..<outer {
                        (yp + o * outBlock + start).update(from: xp + o * block, count: block)
                    }
                }
                start += block
            }
        }
    }

    /// dy [..., sum d_k, ...] -> pieces with the given shapes (each [..., d_k, ...]); also Split's forward. With one
    /// block per piece (one image, or the first axis) each piece of at least a quarter of dy is a view of it, no copy.
    public static func backward(_ dy: Tensor, shapes: [[Int]], axis: Int) -> [Tensor] {
        let a = axis < 0 ? axis + dy.rank : axis
        precondition(a >= 0 && a < dy.rank, "Concat axis \(axis) out of range for \(dy.shape)")
        precondition(shapes.reduce(0) { $0 + $1[a] } == dy.shape[a], "Concat backward: \(shapes) do not sum to \(dy.shape)")
        let outer = dy.shape[..<a].reduce(1, *), inner = dy.shape[(a + 1)...].reduce(1, *)
        let outBlock = dy.shape[a] * inner
        var start = 0
        if outer == 1 {
            return shapes.map { shape in
                let block = shape[a] * inner
                defer { start += block }
                if block > 0 && 4 * block >= dy.count { return dy.contiguousView(offset: start, shape: shape) }
                return Tensor(shape: shape) { piece in
                    guard block > 0 else { return }
                    dy.withUnsafeBufferPointer { piece.baseAddress!.update(from: $0.baseAddress! + start, count: block) }
                }
            }
        }
        return dy.withUnsafeBufferPointer { gb in
            shapes.map { shape in
                let block = shape[a] * inner
                defer { start += block }
                return Tensor(shape: shape) { xb in
                    guard block > 0 else { return }
                    let gp = gb.baseAddress!, xp = xb.baseAddress!
                    for o in 0..<outer {
                        (xp + o * block).update(from: gp + o * outBlock + start, count: block)
                    }
                }
            }
        }
    }
}
