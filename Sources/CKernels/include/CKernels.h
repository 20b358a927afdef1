// Hot kernels compiled several times for different x86-64 instruction sets (SSE2 baseline, AVX2 + FMA, AVX-512),
// one of which is chosen once at run time from the CPU: the binary runs on any x86-64 and uses what the CPU has.
// Every entry point here dispatches to the chosen level; see Dispatch.c. Other architectures get the baseline
// (portable C) versions only.
#ifndef DREAM_CKERNELS_H
#define DREAM_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: - Instruction-set level

/// Levels in increasing order: each one's CPU can run the ones below it.
typedef enum {
    DREAM_SIMD_BASELINE = 0,  // SSE2, no FMA: every x86-64 CPU
    DREAM_SIMD_AVX2 = 1,      // AVX2 + FMA (Haswell, Zen and later)
    DREAM_SIMD_AVX512 = 2,    // AVX-512 F (Skylake-X, Ice Lake, Zen 4 and later)
} dream_simd_level;

/// The best level this CPU (and its operating system) supports.
int dream_simd_detected_level(void);

/// The level the kernels use now: the detected one, lowered by DREAM_SIMD=baseline|avx2|avx512 (read once, at the
/// first call of any function here), or the one pinned by dream_simd_set_level.
int dream_simd_current_level(void);

/// Uses `level`, lowered to the detected level if the CPU cannot run it; returns the level now in use.
/// Not meant to be called while kernels run on other threads (they would finish with the level they started with).
int dream_simd_set_level(int level);

/// What DREAM_SIMD asked for: -1 when unset, -2 when set to something that is not a level name, else the level
/// asked for (which may be above the detected one; the kernels then use the detected level).
int dream_simd_requested_level(void);

// MARK: - Epilogue: an activation applied in registers before a kernel stores its output

typedef enum {
    DREAM_EPILOGUE_NONE = 0,
    DREAM_EPILOGUE_RELU = 1,        // x < 0 ? 0 : x
    DREAM_EPILOGUE_CLIP = 2,        // min(max(x, a), b) with Swift's operand order: NaN passes through
    DREAM_EPILOGUE_LEAKY_RELU = 3,  // x > 0 ? x : a·x
    DREAM_EPILOGUE_SIGMOID = 4,     // 1 / (1 + e^-x), through a vectorised e^x (Epilogue.h): within 2.5 ulp
    DREAM_EPILOGUE_SILU = 5,        // x · sigmoid(x)
    DREAM_EPILOGUE_HARD_SIGMOID = 6,  // min(max(a·x + b, 0), 1) with Swift's operand order: NaN passes through
    DREAM_EPILOGUE_HARD_SWISH = 7,  // x · hard_sigmoid(x) with a = 1/6, b = 1/2
} dream_epilogue_kind;

typedef struct {
    int32_t kind;
    float a, b;
} dream_epilogue;

/// y[i] = epilogue(x[i]) for i in 0..<count; x and y may be the same buffer. Every kind gives the same bits at
/// every level (no fused multiply-adds inside an epilogue).
void dream_apply_epilogue(const float *x, float *y, int64_t count, dream_epilogue epilogue);

/// dx[i] = dy[i]·σ(x[i]) + ((dy[i]·x[i])·σ(x[i]))·(1 − σ(x[i])): the gradient of x·σ(x), with the operations and
/// the rounding of the unfused Mul → Sigmoid backward (σ as the SIGMOID epilogue computes it); dx may be dy.
void dream_silu_backward(const float *dy, const float *x, float *dx, int64_t count);

/// dx[i] = dy[i]·h + (0 < t < 1 ? a·(dy[i]·x[i]) : 0) with t = a·x[i] + b, h = min(max(t, 0), 1): the gradient of
/// x·hard_sigmoid(x) with the operations of the unfused Mul → HardSigmoid backward (HardSwish as opset 13 spells
/// it); dx may be dy.
void dream_hard_sigmoid_gate_backward(const float *dy, const float *x, float *dx, int64_t count, float a, float b);

/// dx[i] = y[i] > 0 ? dy[i] : 0 for i in 0..<count (ReLU backward from its output).
void dream_relu_backward(const float *dy, const float *y, float *dx, int64_t count);

// MARK: - Depthwise 3x3 convolution (one input channel per group, multiplier 1, stride 1 or 2, dilation 1)

/// Shape of one plane and the window. Plane p of x is x + p·h·w, of y is y + p·out_h·out_w; its channel is p % channels.
typedef struct {
    int64_t h, w, out_h, out_w;
    int64_t stride, pad_top, pad_left;
    int64_t channels;
} dream_dw3x3_shape;

/// The forward's padded plane, split into stride² sub-planes ("phases"): sub-plane (a, b) row i, slot j holds padded
/// row s·i + a, column s·j + b, where padded row r, column c is input row r - pad_top, column c - pad_left (or 0).
/// Tap (ki, kj) of output (oh, ow) is then sub-plane (ki % s, kj % s), row oh + ki / s, slot ow + kj / s: one
/// constant offset from oh·pitch + ow, so the nine taps of any run of outputs are contiguous loads.
///   pitch      floats per sub-plane row: every output's taps and every input column have a slot
///   rows       sub-plane rows the outputs read (input rows beyond them are never copied)
///   phase_floats  floats per sub-plane: rows·pitch and a margin of 32 for vectors reading or writing past the end
///   grid_floats   the flat outputs of the narrow path (out_h rows of pitch, and a vector of margin)
typedef struct {
    int64_t stride, pitch, rows, phase_floats, grid_floats;
} dream_dw3x3_layout;

static inline dream_dw3x3_layout dream_dw3x3_layout_of(const dream_dw3x3_shape *g) {
    dream_dw3x3_layout l;
    const int64_t s = g->stride, reach = 2 / s;  // the farthest tap of an output in slots and rows: 2 or 1
    const int64_t columns = (g->pad_left + g->w + s - 1) / s;
    l.stride = s;
    l.pitch = g->out_w + reach > columns ? g->out_w + reach : columns;
    l.rows = g->out_h + reach;
    l.phase_floats = l.rows * l.pitch + 32;
    l.grid_floats = g->out_h * l.pitch + 16;
    return l;
}

/// Floats of scratch each call below needs (one caller thread, one scratch).
int64_t dream_dw3x3_scratch_floats(const dream_dw3x3_shape *shape);

/// Planes [first, end): y = epilogue(conv(x) + bias); bias may be NULL.
void dream_dw3x3_forward(const dream_dw3x3_shape *shape, const float *x, const float *weight, const float *bias,
                         float *y, int64_t first, int64_t end, float *scratch, dream_epilogue epilogue);

/// Planes [first, end): dx = conv_transpose(dy) (every element of those planes written).
void dream_dw3x3_input_gradient(const dream_dw3x3_shape *shape, const float *dy, const float *weight, float *dx,
                                int64_t first, int64_t end, float *scratch);

/// Channels [first, end), summed over `images` images: dweight[channel·9 + tap] += Σ dy · x (shifted).
void dream_dw3x3_weight_gradient(const dream_dw3x3_shape *shape, int64_t images, const float *dy, const float *x,
                                 float *dweight, int64_t first, int64_t end, float *scratch);

// MARK: - Max pooling (any window, stride, dilation, padding, ceil mode)

/// The window resolved for one plane. For output row oh the kernel rows [row_first[oh], row_first[oh] + row_count[oh])
/// land inside the input; its input row for kernel row ki is oh·stride_h + ki·dilation_h - pad_top. Output columns
/// in padding_columns[0..<padding_column_count] see no input column and are written as 0.
typedef struct {
    int64_t h, w, out_h, out_w;
    int64_t kernel_w, kernel_h, stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left;
    int64_t padded_width;  // ≥ pad_left + w and ≥ the reach of the last window, + 1
    const int32_t *row_first, *row_count;
    const int32_t *padding_columns;
    int64_t padding_column_count;
} dream_maxpool_shape;

/// Floats of scratch dream_maxpool_forward needs.
int64_t dream_maxpool_forward_scratch_floats(const dream_maxpool_shape *shape);

/// Output rows per band when a stride-1 window keeps the width (the forward then makes two flat passes per band):
/// about 2048 floats of column maxima, which stay in the L1 cache.
static inline int64_t dream_maxpool_band_rows(const dream_maxpool_shape *g) {
    const int64_t rows = 2048 / (g->w > 0 ? g->w : 1);
    return rows > 0 ? rows : 1;
}

/// Planes [first, end): y = max over each window (a window of padding only: 0).
void dream_maxpool_forward(const dream_maxpool_shape *shape, const float *x, float *y, int64_t first, int64_t end,
                           float *scratch);

/// Floats (4-byte units) of scratch dream_maxpool_backward needs.
int64_t dream_maxpool_backward_scratch_floats(const dream_maxpool_shape *shape);

/// Planes [first, end): dx = Σ dy routed to each window's winner, its first element (in row-major window order)
/// equal to y; every element of those planes of dx is written (zero where no window routes).
void dream_maxpool_backward(const dream_maxpool_shape *shape, const float *x, const float *y, const float *dy,
                            float *dx, int64_t first, int64_t end, float *scratch);

// MARK: - Plane means (ONNX GlobalAveragePool)

/// Partial sums per plane: a multiple of every level's vector width, so that all levels sum in the same order.
#define DREAM_MEAN_PARTIALS 32

/// Planes [first, end) of `size` floats each: y[p] = mean of plane p (0 for an empty plane), summed as
/// DREAM_MEAN_PARTIALS interleaved partial sums (partial k: elements i ≡ k mod DREAM_MEAN_PARTIALS, in order), then
/// pairwise: partial k += partial k + width for width = 16, 8, 4, 2, 1. The same bits at every level.
void dream_plane_means(const float *x, int64_t size, float *y, int64_t first, int64_t end);

// MARK: - Local response normalisation across channels (ONNX LRN)

/// One sample's geometry and the hyper-parameters. Channel ch of pixel i is at ch·plane + i; the window of channel
/// ch is [ch - before, ch + after] (clipped to the channels); coefficient = alpha / size, and the backward's
/// factor = 2·alpha·beta / size (passed, not derived, so that its rounding is the caller's).
typedef struct {
    int64_t channels, plane, before, after;
    float bias, coefficient, beta, factor;
} dream_lrn_shape;

/// Pixels [first, end) of one sample: y = x · s^-beta with s = bias + coefficient · Σ_window x².
void dream_lrn_forward(const dream_lrn_shape *shape, const float *x, float *y, int64_t first, int64_t end);

/// Floats of scratch dream_lrn_backward needs.
int64_t dream_lrn_backward_scratch_floats(const dream_lrn_shape *shape);

/// Pixels [first, end) of one sample: dx_j = dy_j s_j^-beta - factor · x_j · Σ_{i: j in window(i)}
/// dy_i x_i s_i^(-beta-1) (every element of those pixels written).
void dream_lrn_backward(const dream_lrn_shape *shape, const float *x, const float *dy, float *dx, int64_t first,
                        int64_t end, float *scratch);

// MARK: - MaxPool backward for stride-1 windows that keep the width

/// The planes of dream_maxpool_backward's gather path (stride 1, no dilation, out_w = w, every output row sees
/// an input row). All are rows of `width` = w + kernel_w - 1 floats, so that a window tap or a gathered output is
/// one constant offset from a flat position: a plane is one flat pass, whatever its size.
///   input   `input_rows` rows: row row_offset + ih holds input row ih from column pad_left, NaN elsewhere
///   outputs out_h rows: y, NaN in the kernel_w - 1 columns after each row
///   codes   `code_rows` rows, output row oh at row code_offset + oh: which tap (k·kernel_w + kj) won, -1 if none
///   grads   the same layout: dy
///   sums    h rows: dx while it is gathered
/// Kernel rows [tap_first, tap_end) are the union of the rows any window sees.
typedef struct {
    int64_t width, tap_first, tap_end, row_offset, input_rows, code_offset, code_rows;
} dream_maxpool_gather_layout;

static inline dream_maxpool_gather_layout dream_maxpool_gather_layout_of(const dream_maxpool_shape *g) {
    dream_maxpool_gather_layout l;
    l.width = g->w + g->kernel_w - 1;
    l.tap_first = g->out_h > 0 ? g->row_first[0] : 0;
    l.tap_end = l.tap_first;
    for (int64_t oh = 0; oh < g->out_h; oh++) {
        const int64_t a = g->row_first[oh], b = a + g->row_count[oh];
        if (a < l.tap_first) l.tap_first = a;
        if (b > l.tap_end) l.tap_end = b;
    }
    // Input rows read: oh - pad_top + k for oh < out_h, k in [tap_first, tap_end).
    l.row_offset = g->pad_top - l.tap_first > 0 ? g->pad_top - l.tap_first : 0;
    const int64_t last = l.row_offset + g->out_h - 1 - g->pad_top + l.tap_end - 1;
    // (+ 1: the columns after an output row's last one read into the next row; their results are never used.)
    l.input_rows = (l.row_offset + g->h > last + 1 ? l.row_offset + g->h : last + 1) + 1;
    // Output rows gathered: ih + pad_top - k for ih < h, one row more above for the columns left of a row.
    l.code_offset = l.tap_end;
    const int64_t below = g->h + g->pad_top - l.tap_first;
    l.code_rows = l.code_offset + (g->out_h > below ? g->out_h : below) + 1;  // + 1: as for input_rows
    return l;
}

/// The backward of a 3x3 stride-2 window (no dilation; SqueezeNet's and GoogLeNet's pools) as a gather: the input
/// split into its two column phases (h rows of `row_stride`, NaN padding, a vector of margin), then `code_rows` =
/// out_h rows of `code_width` floats of each output's winning tap (ki·3 + kj, -1 for none) and as many of dy, each
/// output column ow at slot ow + 1 (slot 0 and the slots past the outputs hold -1: no output), a row of `lanes`
/// maxima and a padded row of 2·code_width gathered gradients.
typedef struct {
    int64_t phase_length, row_stride, lanes, slots, code_width;
    int64_t phases, maxima, codes, grads, row;  // offsets in floats
    int64_t floats;
} dream_maxpool_stride2_layout;

static inline dream_maxpool_stride2_layout dream_maxpool_stride2_layout_of(const dream_maxpool_shape *g) {
    dream_maxpool_stride2_layout l;
    l.phase_length = (g->padded_width + 1) / 2;
    l.row_stride = 2 * l.phase_length;
    l.lanes = (g->out_w + 15) / 16 * 16;
    l.slots = (g->pad_left + g->w + 1) / 2;  // input columns in each phase (the last may be padding)
    const int64_t reach = l.lanes > l.slots ? l.lanes : l.slots;
    l.code_width = reach + 2 + 16;
    l.phases = 0;
    l.maxima = g->h * l.row_stride + l.lanes + 16;
    l.codes = l.maxima + l.lanes;
    l.grads = l.codes + g->out_h * l.code_width;
    l.row = l.grads + g->out_h * l.code_width;
    l.floats = l.row + 2 * l.code_width + 32;
    return l;
}

/// Whether the backward takes the stride-2 gather path.
static inline int dream_maxpool_is_stride2_gather(const dream_maxpool_shape *g) {
    return g->kernel_w == 3 && g->kernel_h == 3 && g->stride_w == 2 && g->stride_h == 2 && g->dilation_w == 1
        && g->dilation_h == 1;
}

static inline int64_t dream_maxpool_gather_floats(const dream_maxpool_shape *g) {
    const dream_maxpool_gather_layout l = dream_maxpool_gather_layout_of(g);
    return l.width * (l.input_rows + g->out_h + 2 * l.code_rows + g->h);
}

#ifdef __cplusplus
}
#endif

#endif
