import Tensors

/// The window attributes shared by Conv and the pools, read once at load; rank-1 (N,C,L) windows run as 2-D with H = 1.
struct SpatialWindowAttributes {
    var kernel: [Int]?
    var strides: [Int]
    var pads: [Int]
    var dilations: [Int]
    var autoPad: String
    var ceilMode: Bool

    init(_ node: Node, requireKernel: Bool) throws {
        let a = AttributeReader(node: node)
        kernel = try a.ints("kernel_shape")
        if requireKernel && kernel == nil {
            throw ExecutionError.badAttribute(node: node.name, op: node.opType, attribute: "kernel_shape", expected: "present")
        }
        strides = try a.ints("strides") ?? []
        pads = try a.ints("pads") ?? []
        dilations = try a.ints("dilations") ?? []
        autoPad = try a.string("auto_pad", default: "NOTSET")
        ceilMode = try a.int("ceil_mode", default: 0) != 0
        let spatial = kernel?.count ?? max(strides.count, dilations.count, pads.count / 2)
        if spatial > 2 {
            throw ExecutionError.unsupportedAttribute(node: node.name, op: node.opType, detail: "a \(spatial)-D window")
        }
    }

    /// The 2-D window for an NCHW input of height h, width w (1-D windows get a unit height).
    func window(kernel k: [Int], inputH h: Int, inputW w: Int) -> Window2D {
        let oneD = k.count == 1
        func at(_ list: [Int], _ i: Int, _ fallback: Int) -> Int { i < list.count ? list[i] : fallback }
        var win: Window2D
        if oneD {
            win = Window2D(kernelH: 1, kernelW: k[0], strideH: 1, strideW: at(strides, 0, 1),
                           padTop: 0, padLeft: at(pads, 0, 0), padBottom: 0, padRight: at(pads, 1, 0),
                           dilationH: 1, dilationW: at(dilations, 0, 1), ceilMode: ceilMode)
        } else {
            win = Window2D(kernelH: k[0], kernelW: k[1], strideH: at(strides, 0, 1), strideW: at(strides, 1, 1),
                           padTop: at(pads, 0, 0), padLeft: at(pads, 1, 0), padBottom: at(pads, 2, 0), padRight: at(pads, 3, 0),
                           dilationH: at(dilations, 0, 1), dilationW: at(dilations, 1, 1), ceilMode: ceilMode)
        }
        if autoPad != "NOTSET" { win = win.resolvingAutoPad(autoPad, inputH: h, inputW: w) }
        return win
    }
}

extension SpatialWindowAttributes {
    /// These attributes with a zero padding of the input, [top, left, bottom, right], added to their own pads, as
    /// when a Pad node before the operator is folded into it; nil where that would not be the same computation (an
    /// auto_pad, a window that is not 2-D) or the sums break the attribute checks.
    func addingZeroPadding(_ extra: [Int], node: Node, kernelRank: Int, pooling: Bool) -> SpatialWindowAttributes? {
        guard autoPad == "NOTSET", kernelRank == 2, extra.count == 4 else { return nil }
        var copy = self
        let own = pads.isEmpty ? [0, 0, 0, 0] : pads
        guard own.count == 4 else { return nil }
        copy.pads = zip(own, extra).map(+)
        return (try? copy.validate(node, pooling: pooling)) == nil ? nil : copy
    }
}

/// Views a rank-3 (N,C,L) tensor as rank-4 (N,C,1,L); rank-4 tensors pass through.
func asNCHW(_ t: Tensor, node: Node) throws -> Tensor {
    switch t.rank {
    case 4: return t
    case 3: return t.reshaped([t.shape[0], t.shape[1], 1, t.shape[2]])
    default:
        throw ExecutionError.shapeMismatch(node: node.name, op: node.opType, detail: "expected an input of rank 3 or 4 (N,C,H,W), got \(t.shape)")
    }
}

/// Undoes `asNCHW` for results when the original input had rank 3.
func restoringRank(_ t: Tensor, like original: [Int]) -> Tensor {
    original.count == 3 ? t.reshaped([t.shape[0], t.shape[1], t.shape[3]]) : t
}
