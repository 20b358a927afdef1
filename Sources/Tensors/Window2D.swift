/// Geometry of a sliding window over the two spatial axes of an NCHW tensor (convolution and pooling).
/// Pads are explicit; ONNX `auto_pad` is resolved into them by `Window2D.resolvingAutoPad`.
public struct Window2D: Equatable, CustomStringConvertible {
    public var kernelH: Int, kernelW: Int
    public var strideH: Int = 1, strideW: Int = 1
    public var padTop: Int = 0, padLeft: Int = 0, padBottom: Int = 0, padRight: Int = 0
    public var dilationH: Int = 1, dilationW: Int = 1
    /// Pooling only: output size rounds up (Caffe / ceil_mode=1); a window must still start inside the input or left/top pad.
    public var ceilMode: Bool = false

    public init(kernelH: Int, kernelW: Int, strideH: Int = 1, strideW: Int = 1,
                padTop: Int = 0, padLeft: Int = 0, padBottom: Int = 0, padRight: Int = 0,
                dilationH: Int = 1, dilationW: Int = 1, ceilMode: Bool = false) {
        self.kernelH = kernelH; self.kernelW = kernelW
        self.strideH = strideH; self.strideW = strideW
        self.padTop = padTop; self.padLeft = padLeft; self.padBottom = padBottom; self.padRight = padRight
        self.dilationH = dilationH; self.dilationW = dilationW
        self.ceilMode = ceilMode
    }

    /// Square window shorthand.
    public init(kernel: Int, stride: Int = 1, pad: Int = 0, dilation: Int = 1, ceilMode: Bool = false) {
        self.init(kernelH: kernel, kernelW: kernel, strideH: stride, strideW: stride,
                  padTop: pad, padLeft: pad, padBottom: pad, padRight: pad,
                  dilationH: dilation, dilationW: dilation, ceilMode: ceilMode)
    }

    public var effectiveKernelH: Int { (kernelH - 1) * dilationH + 1 }
    public var effectiveKernelW: Int { (kernelW - 1) * dilationW + 1 }

    /// ONNX (MaxPool, AveragePool, Conv): out = floor(span / stride) + 1, or ceil(span / stride) + 1 with ceil_mode,
    /// where span = input + pads - effective kernel. The span may be negative: with ceil_mode a window that overhangs
    /// the padded input by less than a stride still gives one output (ceil(-1/2) + 1 = 1), as in onnxruntime and
    /// PyTorch; in floor mode a negative span gives none.
    static func outputLength(input: Int, kernel: Int, stride: Int, padBegin: Int, padEnd: Int, ceil: Bool) -> Int {
        let span = input + padBegin + padEnd - kernel
        // Integer floor / ceil of span / stride for either sign (Swift's / truncates towards zero).
        let quotient: Int
        if span >= 0 {
            quotient = ceil ? (span + stride - 1) / stride : span / stride
        } else {
            quotient = ceil ? -(-span / stride) : -((-span + stride - 1) / stride)
        }
        var out = max(0, quotient + 1)
        // The last window must start inside the input or the leading pad (PyTorch / ONNX rule for ceil_mode).
        if ceil && out > 0 && (out - 1) * stride >= input + padBegin { out -= 1 }
        return out
    }

    /// Output spatial size for an input of `inputH` x `inputW`.
    public func outputSize(inputH: Int, inputW: Int) -> (height: Int, width: Int) {
        (Window2D.outputLength(input: inputH, kernel: effectiveKernelH, stride: strideH, padBegin: padTop, padEnd: padBottom, ceil: ceilMode),
         Window2D.outputLength(input: inputW, kernel: effectiveKernelW, stride: strideW, padBegin: padLeft, padEnd: padRight, ceil: ceilMode))
    }

    /// ONNX auto_pad: "SAME_UPPER" / "SAME_LOWER" (output = ceil(input / stride)) or "VALID" (no padding).
    public func resolvingAutoPad(_ mode: String, inputH: Int, inputW: Int) -> Window2D {
        var w = self
        switch mode {
        case "SAME_UPPER", "SAME_LOWER":
            func pads(_ input: Int, _ stride: Int, _ k: Int) -> (Int, Int) {
                let out = (input + stride - 1) / stride
                let total = max(0, (out - 1) * stride + k - input)
                let small = total / 2, large = total - small
                return mode == "SAME_UPPER" ? (small, large) : (large, small)
            }
            (w.padTop, w.padBottom) = pads(inputH, strideH, effectiveKernelH)
            (w.padLeft, w.padRight) = pads(inputW, strideW, effectiveKernelW)
        case "VALID":
            w.padTop = 0; w.padLeft = 0; w.padBottom = 0; w.padRight = 0
        default:
            break
        }
        return w
    }

    public var description: String {
        "k\(kernelH)x\(kernelW) s\(strideH)x\(strideW) p\(padTop),\(padLeft),\(padBottom),\(padRight) d\(dilationH)x\(dilationW)\(ceilMode ? " ceil" : "")"
    }
}
