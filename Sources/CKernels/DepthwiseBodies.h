// Depthwise kh x kw convolution (DepthwiseK.h) in the vocabulary of Levels.h, compiled once per level after
// KernelBodies.h, whose padded layouts and row copies (dw_phase_row, dw_pad, dw_layout) it shares with the 3x3 kernel.
//
// Forward: the 3x3 kernel's scheme with kh·kw taps. Each input plane is copied into stride² zero-padded sub-planes,
// so that tap (ki, kj) of a run of outputs is one contiguous load at a constant offset; a vector of outputs sums its
// taps in registers (four vectors at a time, so that four independent chains of multiply-adds overlap) and is
// written once, after the epilogue. Kernel sizes 5 and 7 at strides 1 and 2 are compiled with the size as a
// constant (the tap loops unroll); any other size runs the same code with the loops kept.
//
// Input gradient: at stride 1, the forward above run on dy with the kernel turned by 180°
// (dream_dwk_transposed_shape). At stride 2 (and for pads of a kernel's size or more), each input row gathers, for
// each column phase, from the output rows its kernel rows reach (at most kh, a vector of outputs at a time, all taps
// in registers) out of a copy of dy with zero margins, then interleaves the two phases. Weight gradient: per kernel
// row, kw accumulators over the padded plane.
#include "DepthwiseK.h"

/// The 3x3 kernel's gradient layout (dw_layout) for a kh x kw kernel: rows (out_h - 1)·s + kh, length out_w + (kw - 1) / s.
static inline dw_layout dwk_pad_layout_of(const dream_dwk_shape *k) {
    const dream_dw3x3_shape *g = &k->plane;
    dw_layout l;
    l.stride = g->stride;
    l.rows = (g->out_h - 1) * g->stride + k->kernel_h;
    l.length = g->out_w + (k->kernel_w - 1) / g->stride;
    l.row_floats = l.stride * l.length;
    l.plane_floats = l.rows * l.row_floats;
    l.row_first = dw_clamp(g->pad_top, 0, l.rows);
    l.row_end = dw_clamp(g->pad_top + g->h, l.row_first, l.rows);
    for (int64_t phase = 0; phase < 2; phase++) {
        const int64_t s = l.stride;
        l.first[phase] = dw_clamp((g->pad_left - phase + s - 1) / s, 0, l.length);
        l.end[phase] = dw_clamp((g->w + g->pad_left - phase + s - 1) / s, l.first[phase], l.length);
    }
    return l;
}

// MARK: - Forward

/// Output vectors at q (DWK_SUM1) or q, q + VL, q + 2·VL, q + 3·VL (DWK_SUM4): bias, then every tap in row-major
/// order; rows[ki·s + b] points at the sub-plane row of kernel row ki and column phase b.
#define DWK_SUM1(acc, q)                                                                                          \
    do {                                                                                                          \
        acc = vb;                                                                                                 \
        for (int ki_ = 0; ki_ < kh; ki_++)                                                                        \
            for (int kj_ = 0; kj_ < kw; kj_++) {                                                                  \
                const float *p_ = rows[ki_ * s + kj_ % s] + kj_ / s + (q);                                        \
                acc = vmadd(acc, vset1(w[ki_ * kw + kj_]), vload(p_));                                            \
            }                                                                                                     \
    } while (0)

#define DWK_SUM4(out, q)                                                                                          \
    do {                                                                                                          \
        vf a0_ = vb, a1_ = vb, a2_ = vb, a3_ = vb;                                                                \
        for (int ki_ = 0; ki_ < kh; ki_++)                                                                        \
            for (int kj_ = 0; kj_ < kw; kj_++) {                                                                  \
                const float *p_ = rows[ki_ * s + kj_ % s] + kj_ / s + (q);                                        \
                const vf c_ = vset1(w[ki_ * kw + kj_]);                                                           \
                a0_ = vmadd(a0_, c_, vload(p_));                                                                  \
                a1_ = vmadd(a1_, c_, vload(p_ + VL));                                                             \
                a2_ = vmadd(a2_, c_, vload(p_ + 2 * VL));                                                         \
                a3_ = vmadd(a3_, c_, vload(p_ + 3 * VL));                                                         \
            }                                                                                                     \
        vstore((out) + (q), LEVEL_SUFFIX(epilogue)(a0_, kind, ea, eb));                                           \
        vstore((out) + (q) + VL, LEVEL_SUFFIX(epilogue)(a1_, kind, ea, eb));                                      \
        vstore((out) + (q) + 2 * VL, LEVEL_SUFFIX(epilogue)(a2_, kind, ea, eb));                                  \
        vstore((out) + (q) + 3 * VL, LEVEL_SUFFIX(epilogue)(a3_, kind, ea, eb));                                  \
    } while (0)

/// Planes [first, end). kh, kw, s and kind are constants in the specialised calls, so the tap loops unroll and the
/// epilogue's selection leaves them.
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(dwk_forward_planes)(
    const dream_dwk_shape *k, const float *x, const float *weight, const float *bias, float *y, int64_t first,
    int64_t end, float *scratch, const int kh, const int kw, const int s, const int32_t kind, vf ea, vf eb) {
    const dream_dw3x3_shape *g = &k->plane;
    const dream_dwk_layout l = dream_dwk_layout_of(k);
    const int64_t reach = l.reach_h, out_h = g->out_h, out_w = g->out_w, pitch = l.pitch;
    // As in the 3x3 kernel: rows at least a vector wide of a plane too large for the L1 cache stream through a ring
    // of sub-plane rows, filled just before the outputs need them; other planes are copied whole and computed as
    // one flat run. The ring has two rows more than an output reads: a row's copy may spill zeros into the next.
    const int64_t ring_rows = reach + 2;
    const int wide = out_w >= VL, ring = wide && g->h * g->w >= 8192 && l.rows >= ring_rows;
    const int64_t phase_floats = ring ? ring_rows * pitch + l.margin : l.phase_floats;
    float *phases = scratch, *grid = scratch + s * s * phase_floats;
    memset(phases, 0, sizeof(float) * (size_t)(s * s * phase_floats));
    for (int64_t plane = first; plane < end; plane++) {
        const int64_t channel = plane % g->channels;
        const float *input = x + plane * g->h * g->w;
        const float *w = weight + channel * kh * kw;
        const vf vb = vset1(bias ? bias[channel] : 0.0f);
        float *out = y + plane * out_h * out_w;
        const float *rows[2 * DREAM_DWK_MAX];
        if (ring) {
            int64_t filled = 0;  // sub-plane rows [0, filled) have been through the ring
            for (int64_t oh = 0; oh < out_h; oh++) {
                LEVEL_SUFFIX(dw_fill_ring)(g, phase_floats, pitch, ring_rows, s, input, phases, &filled, oh + reach);
                for (int ki = 0; ki < kh; ki++)
                    for (int b = 0; b < s; b++)
                        rows[ki * s + b] = phases + ((ki % s) * s + b) * phase_floats + ((oh + ki / s) % ring_rows) * pitch;
                float *dst = out + oh * out_w;
                int64_t next = 0;
                for (; next + 4 * VL <= out_w; next += 4 * VL) DWK_SUM4(dst, next);
                for (; next < out_w; next += VL) {
                    const int64_t j = next < out_w - VL ? next : out_w - VL;  // the last vector overlaps (same values)
                    vf acc;
                    DWK_SUM1(acc, j);
                    vstore(dst + j, LEVEL_SUFFIX(epilogue)(acc, kind, ea, eb));
                }
            }
            continue;
        }
        LEVEL_SUFFIX(dw_fill_planes)(g, phase_floats, pitch, l.rows, s, input, phases);
        for (int ki = 0; ki < kh; ki++)
            for (int b = 0; b < s; b++) rows[ki * s + b] = phases + ((ki % s) * s + b) * phase_floats + (ki / s) * pitch;
        // The whole plane as one flat run over rows of `pitch` outputs (the slots past out_w are discarded), then
        // each row moved to y, as in the 3x3 kernel.
        const int64_t count = out_h * pitch;
        int64_t q = 0;
        for (; q + 4 * VL <= count; q += 4 * VL) DWK_SUM4(grid, q);
        for (; q < count; q += VL) {
            vf acc;
            DWK_SUM1(acc, q);
            vstore(grid + q, LEVEL_SUFFIX(epilogue)(acc, kind, ea, eb));
        }
        LEVEL_SUFFIX(dw_store_grid)(grid, pitch, out, out_h, out_w, wide, (end - plane) * out_h * out_w);
    }
}
#undef DWK_SUM1
#undef DWK_SUM4

/// One epilogue kind: the sizes compiled as constants, or the general loop.
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(dwk_forward_sizes)(
    const dream_dwk_shape *k, const float *x, const float *weight, const float *bias, float *y, int64_t first,
    int64_t end, float *scratch, const int32_t kind, vf ea, vf eb) {
    const int64_t kh = k->kernel_h, kw = k->kernel_w, s = k->plane.stride;
#define DWK_SIZE(KH, KW, S)                                                                                       \
    if (kh == KH && kw == KW && s == S) {                                                                         \
        LEVEL_SUFFIX(dwk_forward_planes)(k, x, weight, bias, y, first, end, scratch, KH, KW, S, kind, ea, eb);    \
        return;                                                                                                   \
    }
    DWK_SIZE(5, 5, 1) DWK_SIZE(5, 5, 2) DWK_SIZE(7, 7, 1) DWK_SIZE(7, 7, 2)
#undef DWK_SIZE
    LEVEL_SUFFIX(dwk_forward_planes)(k, x, weight, bias, y, first, end, scratch, (int)kh, (int)kw, (int)s, kind, ea, eb);
}

KERNEL_EXPORT void LEVEL_SUFFIX(dream_dwk_forward)(const dream_dwk_shape *k, const float *x, const float *weight,
                                                   const float *bias, float *y, int64_t first, int64_t end,
                                                   float *scratch, dream_epilogue e) {
    const vf ea = vset1(e.a), eb = vset1(e.b);
#define DWK_SIZES(KIND) LEVEL_SUFFIX(dwk_forward_sizes)(k, x, weight, bias, y, first, end, scratch, KIND, ea, eb)
#define DWK_CHUNK(FIRST, END) LEVEL_SUFFIX(dwk_forward_sizes)(k, x, weight, bias, y, FIRST, END, scratch, DREAM_EPILOGUE_NONE, ea, eb)
    EPILOGUE_BY_PLANES(e, first, end, k->plane.out_h * k->plane.out_w, y, DWK_SIZES, DWK_CHUNK)
#undef DWK_CHUNK
#undef DWK_SIZES
}

// MARK: - Input gradient

/// out[i] = Σ_m Σ_t c[m·nt + t] · src[m][i - t] for i in 0..<length, over `n` source rows and nt shifts (nt a
/// constant in the specialised calls). Four vectors at a time, then single vectors (the last overlapping the one
/// before it), or the first `length` lanes when the row is narrower than a vector.
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(dwk_gather)(const float *const *src, const float *c,
                                                                           int n, const int nt, int64_t length,
                                                                           float *out) {
    if (n == 0) { memset(out, 0, sizeof(float) * (size_t)length); return; }
    int64_t j = 0;
    for (; j + 4 * VL <= length; j += 4 * VL) {
        vf a0 = vzero(), a1 = vzero(), a2 = vzero(), a3 = vzero();
        for (int m = 0; m < n; m++)
            for (int t = 0; t < nt; t++) {
                const float *p = src[m] + j - t;
                const vf k = vset1(c[m * nt + t]);
                a0 = vmadd(a0, k, vload(p)); a1 = vmadd(a1, k, vload(p + VL));
                a2 = vmadd(a2, k, vload(p + 2 * VL)); a3 = vmadd(a3, k, vload(p + 3 * VL));
            }
        vstore(out + j, a0); vstore(out + j + VL, a1); vstore(out + j + 2 * VL, a2); vstore(out + j + 3 * VL, a3);
    }
    if (length >= VL) {
        for (int64_t next = j; next < length; next += VL) {
            const int64_t i = next < length - VL ? next : length - VL;
            vf a = vzero();
            for (int m = 0; m < n; m++)
                for (int t = 0; t < nt; t++) a = vmadd(a, vset1(c[m * nt + t]), vload(src[m] + i - t));
            vstore(out + i, a);
        }
    } else if (length > 0) {
        vf a = vzero();
        for (int m = 0; m < n; m++)
            for (int t = 0; t < nt; t++) a = vmadd(a, vset1(c[m * nt + t]), vload_n(src[m] - t, length));
        vstore_n(out, a, length);
    }
}

/// The gradient of input row ih: padded row r = ih + pad_top receives output row oh = (r - ki) / s from kernel row
/// ki (when that divides and lands inside the output), and padded column i·s + phase receives output column i - t
/// from tap kj = phase + s·t. Output rows are read from a copy with `left` zeros before and enough after each row
/// that no shift leaves it.
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(dwk_input_gradient_planes)(
    const dream_dwk_shape *k, const float *dy, const float *weight, float *dx, int64_t first, int64_t end,
    float *scratch, const int kh, const int kw, const int s) {
    const dream_dw3x3_shape *g = &k->plane;
    const int64_t out_w = g->out_w, plane_out = g->out_h * out_w;
    const int64_t length = (g->pad_left + g->w + s - 1) / s;  // padded columns holding input columns, per phase
    const int64_t left = (kw - 1) / s, right = (length > out_w ? length : out_w) - out_w;
    const int64_t dy_row = left + out_w + right;
    // Phase rows of `length` floats and 16 of margin, which the interleaving's last vectors may read (not use).
    const int64_t phase_row = length + 16;
    float *padded_row = scratch, *grad = scratch + s * phase_row;
    for (int64_t plane = first; plane < end; plane++) {
        const float *w = weight + (plane % g->channels) * kh * kw;
        const float *src = dy + plane * plane_out;
        for (int64_t oh = 0; oh < g->out_h; oh++) {
            float *row = grad + oh * dy_row;
            memset(row, 0, sizeof(float) * (size_t)left);
            memcpy(row + left, src + oh * out_w, sizeof(float) * (size_t)out_w);
            memset(row + left + out_w, 0, sizeof(float) * (size_t)right);
        }
        float *dst = dx + plane * g->h * g->w;
        for (int64_t ih = 0; ih < g->h; ih++) {
            const int64_t r = ih + g->pad_top;
            float *target = dst + ih * g->w;
            const float *rows[DREAM_DWK_MAX];
            int kis[DREAM_DWK_MAX], n = 0;
            for (int ki = 0; ki < kh; ki++) {
                const int64_t q = r - ki;
                if (q >= 0 && q % s == 0 && q / s < g->out_h) { rows[n] = grad + (q / s) * dy_row + left; kis[n++] = ki; }
            }
            for (int phase = 0; phase < s; phase++) {
                // Taps kj = phase + s·t of the kernel rows reached: nt of them (the last may be past the kernel,
                // with weight 0, so that nt stays a constant).
                const int nt = (kw + s - 1) / s;
                float c[DREAM_DWK_MAX * DREAM_DWK_MAX];
                for (int m = 0; m < n; m++)
                    for (int t = 0; t < nt; t++) {
                        const int kj = phase + s * t;
                        c[m * nt + t] = kj < kw ? w[kis[m] * kw + kj] : 0.0f;
                    }
                if (s == 1) {
                    // Straight into the input row: padded column iw + pad_left is input column iw.
                    const float *shifted[DREAM_DWK_MAX];
                    for (int m = 0; m < n; m++) shifted[m] = rows[m] + g->pad_left;
                    LEVEL_SUFFIX(dwk_gather)(shifted, c, n, nt, g->w, target);
                } else {
                    LEVEL_SUFFIX(dwk_gather)(rows, c, n, nt, length, padded_row + phase * phase_row);
                }
            }
            if (s == 1) continue;
            // Input columns 2m and 2m + 1 are padded columns 2m + pad_left and 2m + 1 + pad_left: slot m of two phase
            // rows a and b, 2·VL columns at a time; the last ones through a buffer, of which only the columns
            // inside the row are copied (the slots read past a phase row's end are its margin or the next row).
            const int64_t p0 = g->pad_left & 1, i0 = g->pad_left >> 1;
            const float *a = padded_row + p0 * phase_row + i0, *b = padded_row + (1 - p0) * phase_row + i0 + p0;
            int64_t m = 0;
            for (; 2 * m + 2 * VL <= g->w; m += VL) {
                const vf even = vload(a + m), odd = vload(b + m);
                vstore(target + 2 * m, vzip_lo(even, odd));
                vstore(target + 2 * m + VL, vzip_hi(even, odd));
            }
            if (2 * m < g->w) {
                float pair[2 * VL];
                const vf even = vload(a + m), odd = vload(b + m);
                vstore(pair, vzip_lo(even, odd));
                vstore(pair + VL, vzip_hi(even, odd));
                memcpy(target + 2 * m, pair, sizeof(float) * (size_t)(g->w - 2 * m));
            }
        }
    }
}

KERNEL_EXPORT void LEVEL_SUFFIX(dream_dwk_input_gradient)(const dream_dwk_shape *k, const float *dy, const float *weight,
                                                          float *dx, int64_t first, int64_t end, float *scratch) {
    const int64_t kh = k->kernel_h, kw = k->kernel_w, s = k->plane.stride;
    dream_dwk_shape t;
    if (end > first && dream_dwk_transposed_shape(k, &t)) {
        // Stride 1: the forward of dy with the turned kernels of the channels these planes use (all channels at
        // most), which takes the forward's flat runs and ring of rows instead of a gather per input row.
        const int64_t taps = kh * kw, channels = k->plane.channels;
        float *turned = scratch;
        const int64_t last = end - first < channels ? end : first + channels;
        for (int64_t plane = first; plane < last; plane++) {
            const int64_t channel = plane % channels;
            for (int64_t tap = 0; tap < taps; tap++) turned[channel * taps + tap] = weight[channel * taps + taps - 1 - tap];
        }
        LEVEL_SUFFIX(dwk_forward_sizes)(&t, dy, turned, NULL, dx, first, end, scratch + channels * taps,
                                        DREAM_EPILOGUE_NONE, vzero(), vzero());
        return;
    }
#define DWK_SIZE(KH, KW, S)                                                                                       \
    if (kh == KH && kw == KW && s == S) {                                                                         \
        LEVEL_SUFFIX(dwk_input_gradient_planes)(k, dy, weight, dx, first, end, scratch, KH, KW, S);              \
        return;                                                                                                   \
    }
    DWK_SIZE(5, 5, 1) DWK_SIZE(5, 5, 2) DWK_SIZE(7, 7, 1) DWK_SIZE(7, 7, 2)
#undef DWK_SIZE
    LEVEL_SUFFIX(dwk_input_gradient_planes)(k, dy, weight, dx, first, end, scratch, (int)kh, (int)kw, (int)s);
}

// MARK: - Weight gradient

/// Per kernel row ki: kw accumulators over every output row oh (padded row oh·s + ki), one vector of outputs at a
/// time; the row's tail is its last full vector with the lanes already counted zeroed (or the first out_w lanes).
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(dwk_weight_gradient_channels)(
    const dream_dwk_shape *k, int64_t images, const float *dy, const float *x, float *dweight, int64_t first,
    int64_t end, float *padded, const int kh, const int kw, const int s) {
    const dream_dw3x3_shape *g = &k->plane;
    const dw_layout l = dwk_pad_layout_of(k);
    const int64_t out_w = g->out_w, plane_out = g->out_h * out_w;
    int64_t offset[DREAM_DWK_MAX];  // tap kj: phase kj % s, index kj / s
    for (int kj = 0; kj < kw; kj++) offset[kj] = (kj % s) * l.length + kj / s;
    memset(padded, 0, sizeof(float) * (size_t)l.plane_floats);
    for (int64_t channel = first; channel < end; channel++) {
        float *gradients = dweight + channel * kh * kw;
        for (int64_t image = 0; image < images; image++) {
            const int64_t plane = image * g->channels + channel;
            LEVEL_SUFFIX(dw_pad)(g, l, x + plane * g->h * g->w, padded);
            const float *grad = dy + plane * plane_out;
            for (int ki = 0; ki < kh; ki++) {
                vf acc[DREAM_DWK_MAX];
                for (int kj = 0; kj < kw; kj++) acc[kj] = vzero();
                for (int64_t oh = 0; oh < g->out_h; oh++) {
                    const float *gr = grad + oh * out_w, *row = padded + (oh * s + ki) * l.row_floats;
                    int64_t j = 0;
                    for (; j + VL <= out_w; j += VL) {
                        const vf gv = vload(gr + j);
                        for (int kj = 0; kj < kw; kj++) acc[kj] = vmadd(acc[kj], gv, vload(row + offset[kj] + j));
                    }
                    if (j < out_w && out_w >= VL) {
                        const int64_t counted = j - (out_w - VL);
                        j = out_w - VL;
                        const vf gv = vkeep_from(vload(gr + j), counted);
                        for (int kj = 0; kj < kw; kj++)
                            acc[kj] = vmadd(acc[kj], gv, vkeep_from(vload(row + offset[kj] + j), counted));
                    } else if (j < out_w) {
                        const vf gv = vload_n(gr, out_w);
                        for (int kj = 0; kj < kw; kj++) acc[kj] = vmadd(acc[kj], gv, vload_n(row + offset[kj], out_w));
                    }
                }
                for (int kj = 0; kj < kw; kj++) gradients[ki * kw + kj] += vhsum(acc[kj]);
            }
        }
    }
}

KERNEL_EXPORT void LEVEL_SUFFIX(dream_dwk_weight_gradient)(const dream_dwk_shape *k, int64_t images, const float *dy,
                                                           const float *x, float *dweight, int64_t first, int64_t end,
                                                           float *scratch) {
    const int64_t kh = k->kernel_h, kw = k->kernel_w, s = k->plane.stride;
#define DWK_SIZE(KH, KW, S)                                                                                       \
    if (kh == KH && kw == KW && s == S) {                                                                         \
        LEVEL_SUFFIX(dwk_weight_gradient_channels)(k, images, dy, x, dweight, first, end, scratch, KH, KW, S);   \
        return;                                                                                                   \
    }
    DWK_SIZE(5, 5, 1) DWK_SIZE(5, 5, 2) DWK_SIZE(7, 7, 1) DWK_SIZE(7, 7, 2)
#undef DWK_SIZE
    LEVEL_SUFFIX(dwk_weight_gradient_channels)(k, images, dy, x, dweight, first, end, scratch, (int)kh, (int)kw, (int)s);
}
