import CKernels
import Parallel

/// Depthwise 3x3 convolution (one input channel per group, one filter per channel, stride 1 or 2, dilation 1, any
/// padding) as a direct SIMD kernel, forward (with an activation epilogue) and backward: MobileNet's depthwise layers.
///
/// The kernels are in C (CKernels/KernelBodies.h), compiled for each instruction-set level (`SIMDLevel`): each input
/// plane is copied into zero-padded scratch (split into row and column phases for stride 2, so that every load is
/// contiguous), then all nine taps of a vector of outputs are accumulated in registers and each output is written
/// once; the forward takes planes narrower than a vector as one flat run and streams large planes through a ring of
/// rows. This file splits the planes over threads and gives each thread its scratch.
enum DepthwiseConvolution3x3 {
    /// Whether this kernel handles the convolution: depthwise with multiplier 1, 3x3, stride 1 or 2, dilation 1.
    static func handles(_ g: Convolution.Geometry) -> Bool {
        let win = g.window
        return g.isDepthwise && g.mg == 1 && win.kernelH == 3 && win.kernelW == 3 && win.dilationH == 1 && win.dilationW == 1
            && win.strideH == win.strideW && (win.strideH == 1 || win.strideH == 2)
    }

    static func shape(_ g: Convolution.Geometry) -> dream_dw3x3_shape {
        dream_dw3x3_shape(h: Int64(g.h), w: Int64(g.w), out_h: Int64(g.outH), out_w: Int64(g.outW),
                          stride: Int64(g.window.strideH), pad_top: Int64(g.window.padTop), pad_left: Int64(g.window.padLeft),
                          channels: Int64(g.c))
    }

    /// Runs `body(range, scratch)` over 0..<count split over threads, each range with its own scratch.
    static func splitting(_ count: Int, _ g: Convolution.Geometry, _ shape: inout dream_dw3x3_shape,
                          _ body: (UnsafePointer<dream_dw3x3_shape>, Range<Int>, UnsafeMutablePointer<Float>) -> Void) {
        splittingPlanes(count, work: g.n * g.c * g.p * 9, shape: shape, scratchFloats: Int(dream_dw3x3_scratch_floats(&shape)), body)
    }

    /// x [N,C,H,W], weight [C,1,3,3], bias [C]? -> y [N,C,OH,OW] = epilogue(conv(x) + bias).
    /// Returns whether the epilogue was applied (false for activations the kernel does not know: the caller applies them).
    static func forward(_ g: Convolution.Geometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                        bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, epilogue: Activation? = nil) -> Bool {
        let registerEpilogue = epilogue?.registerEpilogue
        var shape = shape(g)
        splitting(g.n * g.c, g, &shape) { shape, planes, scratch in
            dream_dw3x3_forward(shape, x, weight, bias, y, Int64(planes.lowerBound), Int64(planes.upperBound), scratch,
                                registerEpilogue ?? Activation.noEpilogue)
        }
        return epilogue == nil || registerEpilogue != nil
    }

    /// dy [N,C,OH,OW] -> dx [N,C,H,W] (every element written)
    static func inputGradient(_ g: Convolution.Geometry, dy: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                              dx: UnsafeMutablePointer<Float>) {
        var shape = shape(g)
        splitting(g.n * g.c, g, &shape) { shape, planes, scratch in
            dream_dw3x3_input_gradient(shape, dy, weight, dx, Int64(planes.lowerBound), Int64(planes.upperBound), scratch)
        }
    }

    /// dy [N,C,OH,OW], x [N,C,H,W] -> dWeight [C,1,3,3] (accumulated onto the caller's zeros)
    static func weightGradient(_ g: Convolution.Geometry, dy: UnsafePointer<Float>, x: UnsafePointer<Float>,
                               dWeight: UnsafeMutablePointer<Float>) {
        var shape = shape(g)
        splitting(g.c, g, &shape) { shape, channels, scratch in
            dream_dw3x3_weight_gradient(shape, Int64(g.n), dy, x, dWeight, Int64(channels.lowerBound),
                                        Int64(channels.upperBound), scratch)
        }
    }
}

/// Runs `body(shape, range, scratch)` over 0..<count (planes or channels of a depthwise kernel) split over threads
/// when `work` (multiply-adds) pays for them, each range with its own `scratchFloats` of scratch.
func splittingPlanes<Shape>(_ count: Int, work: Int, shape: Shape, scratchFloats: Int,
                            _ body: (UnsafePointer<Shape>, Range<Int>, UnsafeMutablePointer<Float>) -> Void) {
    withUnsafePointer(to: shape) { shape in
        parallelRanges(count, work: work, minimumWorkPerThread: 1 << 15) { range in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(1, scratchFloats))
            defer { scratch.deallocate() }
            body(shape, range, scratch)
        }
    }
}
