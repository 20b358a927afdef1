import Foundation
import Tensors

// A model file is untrusted input: every operator checks its attributes when it is built and its input shapes before
// a kernel runs, with overflow-checked arithmetic, so that a kernel only ever sees shapes it can handle. The helpers
// here are what the operators share; each failure names the node and the reason.

/// Limits decided before anything is allocated.
public enum TensorLimits {
    /// The largest tensor one operator may produce, in elements: an eighth of the physical memory in Float32
    /// (at most 2^31 elements, 8 GB), so that one hostile shape cannot push the machine into the OOM killer.
    public static var maxElements: Int = {
        let eighth = Int(clamping: ProcessInfo.processInfo.physicalMemory / 32)
        return max(1 << 24, min(eighth, 1 << 31))
    }()

    /// Elements all values alive at one moment of a forward pass may hold: a quarter of the physical memory in Float32.
    public static let maxLiveElements: Int = Int(clamping: ProcessInfo.processInfo.physicalMemory / 16)

    /// Window attributes (kernel, stride, pad, dilation) beyond this are refused: no real network comes close, and
    /// bounding them keeps every output-size computation far from overflow.
    public static let maxWindowAttribute = 1 << 20

    /// Human-readable size of `elements` Float32 values.
    static func bytes(_ elements: Int) -> String {
        let b = Double(elements) * 4
        if b >= 1e9 { return String(format: "%.1f GB", b / 1e9) }
        return String(format: "%.0f MB", b / 1e6)
    }
}

/// The element count of `shape`, or nil when a dimension is negative or the product overflows.
func checkedElementCount<S: Sequence>(_ shape: S) -> Int? where S.Element == Int {
    var count = 1
    for d in shape {
        guard d >= 0 else { return nil }
        let (p, overflow) = count.multipliedReportingOverflow(by: d)
        if overflow { return nil }
        count = p
    }
    return count
}

extension Node {
    /// A shape or attribute this node cannot run with.
    func invalid(_ detail: String) -> ExecutionError {
        .shapeMismatch(node: name, op: opType, detail: detail)
    }

    func badAttribute(_ attribute: String, _ expected: String) -> ExecutionError {
        .badAttribute(node: name, op: opType, attribute: attribute, expected: expected)
    }

    /// Checks that a tensor of `shape` (what this node is about to allocate) has non-negative dimensions and stays
    /// within `TensorLimits.maxElements`; returns its element count.
    @discardableResult
    func requireAllocatable(_ shape: [Int], _ what: String = "the output") throws -> Int {
        guard let count = checkedElementCount(shape) else {
            throw invalid("\(what) would have the impossible shape \(shape)")
        }
        guard count <= TensorLimits.maxElements else {
            throw invalid("\(what) \(shape) would need \(TensorLimits.bytes(count)) (limit \(TensorLimits.bytes(TensorLimits.maxElements)) per tensor); use a smaller input (--size, --tile)")
        }
        return count
    }

    /// `axis` (negative counts from the end) as an index in 0..<rank, or an error naming the attribute.
    func normalizedAxis(_ axis: Int, rank: Int, attribute: String = "axis") throws -> Int {
        let a = axis < 0 ? axis &+ rank : axis
        guard a >= 0, a < rank else {
            throw invalid("\(attribute) \(axis) is out of range for an input of rank \(rank)")
        }
        return a
    }

    /// A float attribute that must be finite (and, with `positive`, greater than zero).
    func requireFinite(_ value: Float, _ attribute: String, positive: Bool = false, nonNegative: Bool = false) throws -> Float {
        guard value.isFinite, !positive || value > 0, !nonNegative || value >= 0 else {
            throw badAttribute(attribute, positive ? "a finite number greater than 0" : nonNegative ? "a finite number >= 0" : "a finite number")
        }
        return value
    }
}

extension SpatialWindowAttributes {
    /// Load-time checks of the window attributes (ONNX: kernel >= 1, strides >= 1, dilations >= 1, pads >= 0,
    /// one value per spatial axis and two pads per axis); `pooling` also requires each pad to be smaller than the
    /// kernel, as PyTorch and ONNX Runtime do.
    func validate(_ node: Node, pooling: Bool) throws {
        let limit = TensorLimits.maxWindowAttribute
        let spatial = kernel?.count ?? max(strides.count, dilations.count, pads.count / 2)
        if let kernel {
            guard !kernel.isEmpty else { throw node.badAttribute("kernel_shape", "one or two sizes") }
            guard kernel.allSatisfy({ $0 >= 1 && $0 <= limit }) else {
                throw node.badAttribute("kernel_shape", "sizes from 1 to \(limit), not \(kernel)")
            }
        }
        if !strides.isEmpty {
            guard strides.count == spatial else { throw node.badAttribute("strides", "\(spatial) value(s), not \(strides)") }
            guard strides.allSatisfy({ $0 >= 1 && $0 <= limit }) else { throw node.badAttribute("strides", "values from 1 to \(limit), not \(strides)") }
        }
        if !dilations.isEmpty {
            guard dilations.count == spatial else { throw node.badAttribute("dilations", "\(spatial) value(s), not \(dilations)") }
            guard dilations.allSatisfy({ $0 >= 1 && $0 <= limit }) else { throw node.badAttribute("dilations", "values from 1 to \(limit), not \(dilations)") }
        }
        if !pads.isEmpty {
            guard pads.count == 2 * spatial else { throw node.badAttribute("pads", "\(2 * spatial) values (begin and end per axis), not \(pads)") }
            guard pads.allSatisfy({ $0 >= 0 && $0 <= limit }) else { throw node.badAttribute("pads", "values from 0 to \(limit), not \(pads)") }
        }
        guard ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"].contains(autoPad) else {
            throw node.badAttribute("auto_pad", "NOTSET, SAME_UPPER, SAME_LOWER or VALID, not '\(autoPad)'")
        }
        if pooling, let kernel, !pads.isEmpty {
            for (i, k) in kernel.enumerated() {
                let d = i < dilations.count ? dilations[i] : 1
                let effective = (k - 1) * d + 1
                guard pads[i] < effective, pads[i + kernel.count] < effective else {
                    throw node.badAttribute("pads", "smaller than the kernel \(kernel) (a window would see only padding), not \(pads)")
                }
            }
        }
    }

    /// The window for input `x` (rank 3 or 4) with a kernel of `kernel` sizes, checked against the input: one kernel
    /// size per spatial axis of `x`, and an output of at least 1x1 that can be allocated.
    func checkedWindow(_ node: Node, kernel k: [Int], input x: Tensor, channels: Int) throws -> Window2D {
        guard k.count == x.rank - 2 else {
            throw node.invalid("a \(k.count)-D window \(k) for the input \(x.shape) (expected \(x.rank - 2) spatial axes)")
        }
        if !strides.isEmpty && strides.count != k.count { throw node.badAttribute("strides", "\(k.count) value(s), not \(strides)") }
        if !dilations.isEmpty && dilations.count != k.count { throw node.badAttribute("dilations", "\(k.count) value(s), not \(dilations)") }
        if !pads.isEmpty && pads.count != 2 * k.count { throw node.badAttribute("pads", "\(2 * k.count) values, not \(pads)") }
        let n = x.shape[0], h = x.rank == 4 ? x.shape[2] : 1, w = x.shape[x.rank - 1]
        let win = window(kernel: k, inputH: h, inputW: w)
        let out = win.outputSize(inputH: h, inputW: w)
        guard out.height > 0, out.width > 0 else {
            throw node.invalid("the input \(x.shape) is too small for the window \(win)")
        }
        try node.requireAllocatable([n, channels, out.height, out.width])
        return win
    }
}

/// Shapes an integer (shape-arithmetic) operation may produce without trapping: wrapping is never what a model
/// means, so overflow is an error.
func checkedInteger(_ node: Node, _ a: Int64, _ b: Int64, _ op: (Int64, Int64) -> (partialValue: Int64, overflow: Bool)) throws -> Int64 {
    let (v, overflow) = op(a, b)
    if overflow { throw node.invalid("integer overflow computing with \(a) and \(b)") }
    return v
}
