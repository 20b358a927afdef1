// Depthwise convolution with a kh x kw kernel (each side 1 to DREAM_DWK_MAX), one input channel per group,
// multiplier 1, stride 1 or 2 (the same both ways), dilation 1, any padding: EfficientNet's and MobileNetV3's 5x5,
// ConvNeXt's 7x7. The 3x3 layers keep their own kernel (dream_dw3x3_*, CKernels.h); this one shares its padded
// scratch layout and row copies. Entry points dispatch to the instruction-set level in use (DepthwiseDispatch.c).
#ifndef DREAM_DEPTHWISE_K_H
#define DREAM_DEPTHWISE_K_H

#include "CKernels.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DREAM_DWK_MAX 11

/// One plane's shape (`plane`, exactly as for the 3x3 kernel: h, w, out_h, out_w, stride, pads, channels) and the
/// kernel's size. Plane p of x is x + p·h·w, of y is y + p·out_h·out_w; its channel is p % channels; the weights of
/// channel c are weight[c·kh·kw ...], row-major.
typedef struct {
    dream_dw3x3_shape plane;
    int64_t kernel_h, kernel_w;
} dream_dwk_shape;

/// The forward's padded plane, split into stride² sub-planes as dream_dw3x3_layout describes: tap (ki, kj) of output
/// (oh, ow) is sub-plane (ki % s, kj % s), row oh + ki / s, slot ow + kj / s.
///   reach_h, reach_w  the farthest tap of an output, in sub-plane rows and slots: (k - 1) / s
///   margin    floats after each sub-plane for vectors reading or writing past its last row
typedef struct {
    int64_t stride, reach_h, reach_w, pitch, rows, margin, phase_floats, grid_floats;
} dream_dwk_layout;

static inline dream_dwk_layout dream_dwk_layout_of(const dream_dwk_shape *k) {
    const dream_dw3x3_shape *g = &k->plane;
    dream_dwk_layout l;
    const int64_t s = g->stride;
    const int64_t columns = (g->pad_left + g->w + s - 1) / s;
    l.stride = s;
    l.reach_h = (k->kernel_h - 1) / s;
    l.reach_w = (k->kernel_w - 1) / s;
    l.pitch = g->out_w + l.reach_w > columns ? g->out_w + l.reach_w : columns;
    l.rows = g->out_h + l.reach_h;
    l.margin = l.reach_w + 32;  // a vector (≤ 16 floats) starting at most reach_w + 16 floats before the end
    l.phase_floats = l.rows * l.pitch + l.margin;
    l.grid_floats = g->out_h * l.pitch + 16;
    return l;
}

/// The input gradient of a stride-1 layer is itself a stride-1 forward: dx = conv(dy padded by kh - 1 - pad_top
/// above and kw - 1 - pad_left on the left, the kernel turned by 180°). Writes that forward's shape into `t` and
/// returns 1 when its pads are not negative (pads below the kernel's size: every real layer), else returns 0.
static inline int dream_dwk_transposed_shape(const dream_dwk_shape *k, dream_dwk_shape *t) {
    const dream_dw3x3_shape *g = &k->plane;
    if (g->stride != 1 || g->pad_top > k->kernel_h - 1 || g->pad_left > k->kernel_w - 1) return 0;
    *t = *k;
    t->plane.h = g->out_h; t->plane.w = g->out_w; t->plane.out_h = g->h; t->plane.out_w = g->w;
    t->plane.pad_top = k->kernel_h - 1 - g->pad_top;
    t->plane.pad_left = k->kernel_w - 1 - g->pad_left;
    return 1;
}

/// Floats of scratch each call below needs (one caller thread, one scratch).
int64_t dream_dwk_scratch_floats(const dream_dwk_shape *shape);

/// Planes [first, end): y = epilogue(conv(x) + bias); bias may be NULL. Each output is bias + the taps in row-major
/// order (padding as zeros), one multiply-add each, then the epilogue.
void dream_dwk_forward(const dream_dwk_shape *shape, const float *x, const float *weight, const float *bias, float *y,
                       int64_t first, int64_t end, float *scratch, dream_epilogue epilogue);

/// Planes [first, end): dx = conv_transpose(dy) (every element of those planes written).
void dream_dwk_input_gradient(const dream_dwk_shape *shape, const float *dy, const float *weight, float *dx,
                              int64_t first, int64_t end, float *scratch);

/// Channels [first, end), summed over `images` images: dweight[channel·kh·kw + tap] += Σ dy · x (shifted).
void dream_dwk_weight_gradient(const dream_dwk_shape *shape, int64_t images, const float *dy, const float *x,
                               float *dweight, int64_t first, int64_t end, float *scratch);

#ifdef __cplusplus
}
#endif

#endif
