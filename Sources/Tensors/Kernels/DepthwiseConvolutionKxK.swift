import CKernels

/// Depthwise convolution with any kernel from 1x1 to 11x11 other than 3x3 (one input channel per group, multiplier
/// 1, stride 1 or 2 both ways, dilation 1, any padding) as a direct SIMD kernel, forward (with an activation
/// epilogue) and backward: EfficientNet's and MobileNetV3's 5x5 layers, ConvNeXt's 7x7.
///
/// The C kernels (CKernels/DepthwiseBodies.h) generalise the 3x3 kernel's scheme (`DepthwiseConvolution3x3`) to
/// kh·kw taps and share its padded layouts and row copies; 5x5 and 7x7 are compiled with the size as a constant.
enum DepthwiseConvolutionKxK {
    /// Whether this kernel handles the convolution. Any size of input and padding is safe: the scratch layouts are
    /// derived from the shape (maps smaller than the kernel and pads wider than it included).
    static func handles(_ g: Convolution.Geometry) -> Bool {
        let win = g.window
        let sizes = 1...Int(DREAM_DWK_MAX)
        return g.isDepthwise && g.mg == 1 && sizes.contains(win.kernelH) && sizes.contains(win.kernelW)
            && !(win.kernelH == 3 && win.kernelW == 3) && win.dilationH == 1 && win.dilationW == 1
            && win.strideH == win.strideW && (win.strideH == 1 || win.strideH == 2) && !win.ceilMode
            && win.padTop >= 0 && win.padLeft >= 0 && win.padBottom >= 0 && win.padRight >= 0
            && g.h > 0 && g.w > 0 && g.outH > 0 && g.outW > 0
    }

    static func shape(_ g: Convolution.Geometry) -> dream_dwk_shape {
        dream_dwk_shape(plane: DepthwiseConvolution3x3.shape(g), kernel_h: Int64(g.window.kernelH),
                        kernel_w: Int64(g.window.kernelW))
    }

    static func splitting(_ count: Int, _ g: Convolution.Geometry,
                          _ body: (UnsafePointer<dream_dwk_shape>, Range<Int>, UnsafeMutablePointer<Float>) -> Void) {
        var shape = shape(g)
        let floats = Int(dream_dwk_scratch_floats(&shape))
        splittingPlanes(count, work: g.n * g.c * g.p * g.window.kernelH * g.window.kernelW, shape: shape,
                        scratchFloats: floats, body)
    }

    /// x [N,C,H,W], weight [C,1,kH,kW], bias [C]? -> y [N,C,OH,OW] = epilogue(conv(x) + bias).
    /// Returns whether the epilogue was applied (false for activations the kernel does not know: the caller applies them).
    static func forward(_ g: Convolution.Geometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                        bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, epilogue: Activation? = nil) -> Bool {
        let registerEpilogue = epilogue?.registerEpilogue
        splitting(g.n * g.c, g) { shape, planes, scratch in
            dream_dwk_forward(shape, x, weight, bias, y, Int64(planes.lowerBound), Int64(planes.upperBound), scratch,
                              registerEpilogue ?? Activation.noEpilogue)
        }
        return epilogue == nil || registerEpilogue != nil
    }

    /// dy [N,C,OH,OW] -> dx [N,C,H,W] (every element written)
    static func inputGradient(_ g: Convolution.Geometry, dy: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                              dx: UnsafeMutablePointer<Float>) {
        splitting(g.n * g.c, g) { shape, planes, scratch in
            dream_dwk_input_gradient(shape, dy, weight, dx, Int64(planes.lowerBound), Int64(planes.upperBound), scratch)
        }
    }

    /// dy [N,C,OH,OW], x [N,C,H,W] -> dWeight [C,1,kH,kW] (accumulated onto the caller's zeros)
    static func weightGradient(_ g: Convolution.Geometry, dy: UnsafePointer<Float>, x: UnsafePointer<Float>,
                               dWeight: UnsafeMutablePointer<Float>) {
        splitting(g.c, g) { shape, channels, scratch in
            dream_dwk_weight_gradient(shape, Int64(g.n), dy, x, dWeight, Int64(channels.lowerBound),
                                      Int64(channels.upperBound), scratch)
        }
    }
}
