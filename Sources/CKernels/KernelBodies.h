// The kernels, written once in the vocabulary of Levels.h and compiled once per level (Baseline.c, AVX2.c,
// AVX512.c). Each exported function is LEVEL_SUFFIX(name): dream_dw3x3_forward_avx2 and so on; Dispatch.c calls
// the one of the level in use. Within a level every output lane is computed by the same operations in the same
// order whatever its position, so results do not depend on the vector width. A row's tail is the last full vector,
// overlapping the one before it (recomputing the same values), or partial loads when the row is narrower than one.
#include "CKernels.h"

// MARK: - Epilogue

#include "Epilogue.h"

KERNEL_EXPORT void LEVEL_SUFFIX(dream_apply_epilogue)(const float *x, float *y, int64_t count, dream_epilogue e) {
    const vf a = vset1(e.a), b = vset1(e.b);
    // One loop per kind, so that the selection is decided outside the loop.
#define EPILOGUE_LOOP(KIND)                                                                                           \
    {                                                                                                                 \
        int64_t i = 0;                                                                                                \
        for (; i + VL <= count; i += VL) vstore(y + i, LEVEL_SUFFIX(epilogue)(vload(x + i), KIND, a, b));            \
        if (i < count) vstore_n(y + i, LEVEL_SUFFIX(epilogue)(vload_n(x + i, count - i), KIND, a, b), count - i);    \
    }
    switch (e.kind) {
    case DREAM_EPILOGUE_RELU: EPILOGUE_LOOP(DREAM_EPILOGUE_RELU) break;
    case DREAM_EPILOGUE_CLIP: EPILOGUE_LOOP(DREAM_EPILOGUE_CLIP) break;
    case DREAM_EPILOGUE_LEAKY_RELU: EPILOGUE_LOOP(DREAM_EPILOGUE_LEAKY_RELU) break;
    default: if (x != y) memmove(y, x, sizeof(float) * (size_t)count); break;
    }
#undef EPILOGUE_LOOP
}

/// dx[i] = y[i] > 0 ? dy[i] : 0: the ReLU's gradient from its output (positive exactly where its input is).
KERNEL_EXPORT void LEVEL_SUFFIX(dream_relu_backward)(const float *dy, const float *y, float *dx, int64_t count) {
    int64_t i = 0;
    for (; i + VL <= count; i += VL) vstore(dx + i, vselect(vgt(vload(y + i), vzero()), vload(dy + i), vzero()));
    if (i < count) {
        const int64_t n = count - i;
        vstore_n(dx + i, vselect(vgt(vload_n(y + i, n), vzero()), vload_n(dy + i, n), vzero()), n);
    }
}

// MARK: - Depthwise 3x3
//
// Each input plane is copied into a zero-padded scratch plane so that the inner loops never test a border. For
// stride 2 each padded row is stored de-interleaved (even columns, then odd columns): tap kj of output column ow
// reads phase kj % 2 at index ow + kj / 2, so every load is contiguous and the nine taps of a vector of outputs sit in
// registers; each output is written once.
//
// Padded plane: `rows` rows of `stride` phases of `length` floats. Padded row r holds input row r - pad_top; padded
// column c (phase c % s, index c / s) holds input column c - pad_left.

#ifndef DREAM_DW_LAYOUT
#define DREAM_DW_LAYOUT
typedef struct {
    int64_t stride, rows, length, row_floats, plane_floats;
    /// Padded rows [row_first, row_end) hold image rows; in phase p, indices [first[p], end[p]) hold image columns.
    int64_t row_first, row_end, first[2], end[2];
} dw_layout;
static inline int64_t dw_clamp(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }
static inline dw_layout dw_layout_of(const dream_dw3x3_shape *g) {
    dw_layout l;
    l.stride = g->stride;
    l.rows = (g->out_h - 1) * g->stride + 3;
    l.length = g->out_w + 2;
    l.row_floats = l.stride * l.length;
    l.plane_floats = l.rows * l.row_floats;
    l.row_first = dw_clamp(g->pad_top, 0, l.rows);
    l.row_end = dw_clamp(g->pad_top + g->h, l.row_first, l.rows);
    for (int64_t phase = 0; phase < 2; phase++) {
        // Index i of a phase holds input column s·i + phase - pad_left.
        const int64_t s = l.stride;
        l.first[phase] = dw_clamp((g->pad_left - phase + s - 1) / s, 0, l.length);
        l.end[phase] = dw_clamp((g->w + g->pad_left - phase + s - 1) / s, l.first[phase], l.length);
    }
    return l;
}
#endif

/// x plane [h, w] -> the image part of padded plane p. The rest (zeros) is the same for every plane: callers clear
/// the plane once per call and then only copy images in.
KERNEL void LEVEL_SUFFIX(dw_pad)(const dream_dw3x3_shape *g, dw_layout l, const float *x, float *p) {
    const int64_t s = l.stride;
    for (int64_t r = l.row_first; r < l.row_end; r++) {
        const float *src = x + (r - g->pad_top) * g->w;
        for (int64_t phase = 0; phase < s; phase++) {
            float *dst = p + r * l.row_floats + phase * l.length;
            const float *column = src + (phase - g->pad_left);  // dst[i] = column[s·i]
            const int64_t first = l.first[phase], end = l.end[phase];
            int64_t i = first;
            if (s == 1) {
                if (end - first >= VL) {
                    for (;; i += VL) {
                        if (i > end - VL) i = end - VL;
                        vstore(dst + i, vload(column + i));
                        if (i == end - VL) break;
                    }
                    i = end;
                }
            } else {
                // Stride 2: the even lanes of 2·VL consecutive input columns are VL consecutive indices.
                for (; i + VL <= end && phase - g->pad_left + 2 * (i + VL) <= g->w; i += VL)
                    vstore(dst + i, vevens(vload(column + 2 * i), vload(column + 2 * i + VL)));
            }
            for (; i < end; i++) dst[i] = column[s * i];
        }
    }
}

KERNEL_EXPORT void LEVEL_SUFFIX(dream_dw3x3_forward)(const dream_dw3x3_shape *g, const float *x, const float *weight,
                                              const float *bias, float *y, int64_t first, int64_t end, float *padded,
                                              dream_epilogue e) {
    const dw_layout l = dw_layout_of(g);
    const int64_t s = l.stride, out_w = g->out_w, plane_out = g->out_h * out_w;
    // Tap kj of a row: phase kj % s, shift kj / s.
    const int64_t o1 = (1 % s) * l.length + 1 / s, o2 = (2 % s) * l.length + 2 / s;
    const vf ea = vset1(e.a), eb = vset1(e.b);
    memset(padded, 0, sizeof(float) * (size_t)l.plane_floats);
    for (int64_t plane = first; plane < end; plane++) {
        const int64_t channel = plane % g->channels;
        LEVEL_SUFFIX(dw_pad)(g, l, x + plane * g->h * g->w, padded);
        const float *w = weight + channel * 9;
        const vf w0 = vset1(w[0]), w1 = vset1(w[1]), w2 = vset1(w[2]);
        const vf w3 = vset1(w[3]), w4 = vset1(w[4]), w5 = vset1(w[5]);
        const vf w6 = vset1(w[6]), w7 = vset1(w[7]), w8 = vset1(w[8]);
        const vf vb = vset1(bias ? bias[channel] : 0.0f);
        float *out = y + plane * plane_out;
        for (int64_t oh = 0; oh < g->out_h; oh++) {
            float *dst = out + oh * out_w;
            const float *r0 = padded + (oh * s) * l.row_floats, *r1 = r0 + l.row_floats, *r2 = r1 + l.row_floats;
#define DW_FORWARD_BLOCK(LOAD, ...)                                                                       \
            vf acc = vb;                                                                                  \
            acc = vmadd(acc, w0, LOAD(r0 + j, ##__VA_ARGS__)); acc = vmadd(acc, w1, LOAD(r0 + o1 + j, ##__VA_ARGS__)); \
            acc = vmadd(acc, w2, LOAD(r0 + o2 + j, ##__VA_ARGS__)); acc = vmadd(acc, w3, LOAD(r1 + j, ##__VA_ARGS__)); \
            acc = vmadd(acc, w4, LOAD(r1 + o1 + j, ##__VA_ARGS__)); acc = vmadd(acc, w5, LOAD(r1 + o2 + j, ##__VA_ARGS__)); \
            acc = vmadd(acc, w6, LOAD(r2 + j, ##__VA_ARGS__)); acc = vmadd(acc, w7, LOAD(r2 + o1 + j, ##__VA_ARGS__)); \
            acc = vmadd(acc, w8, LOAD(r2 + o2 + j, ##__VA_ARGS__));                                       \
            acc = LEVEL_SUFFIX(epilogue)(acc, e.kind, ea, eb);
            if (out_w >= VL) {
                // The last block overlaps the one before it instead of a partial one: its lanes compute the same values.
                for (int64_t next = 0;; next += VL) {
                    const int64_t j = next < out_w - VL ? next : out_w - VL;
                    DW_FORWARD_BLOCK(vload)
                    vstore(dst + j, acc);
                    if (j == out_w - VL) break;
                }
            } else {
                const int64_t j = 0;
                DW_FORWARD_BLOCK(vload_n, out_w)
                vstore_n(dst, acc, out_w);
            }
#undef DW_FORWARD_BLOCK
        }
    }
}

/// out[i] = Σ over kernel rows ki and shifts t of c[ki·3 + t] · rows_ki[i - t], for i in 0..<length
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(dw_gather_row)(const float *a, const float *b, const float *d,
                                                                              const float *c, int64_t length, float *out) {
    const vf c0 = vset1(c[0]), c1 = vset1(c[1]), c2 = vset1(c[2]);
    const vf c3 = vset1(c[3]), c4 = vset1(c[4]), c5 = vset1(c[5]);
    const vf c6 = vset1(c[6]), c7 = vset1(c[7]), c8 = vset1(c[8]);
#define DW_GATHER_BLOCK(LOAD, ...)                                                                              \
    vf acc = vmul(c0, LOAD(a + j, ##__VA_ARGS__));                                                              \
    acc = vmadd(acc, c1, LOAD(a + j - 1, ##__VA_ARGS__)); acc = vmadd(acc, c2, LOAD(a + j - 2, ##__VA_ARGS__)); \
    acc = vmadd(acc, c3, LOAD(b + j, ##__VA_ARGS__)); acc = vmadd(acc, c4, LOAD(b + j - 1, ##__VA_ARGS__));     \
    acc = vmadd(acc, c5, LOAD(b + j - 2, ##__VA_ARGS__)); acc = vmadd(acc, c6, LOAD(d + j, ##__VA_ARGS__));     \
    acc = vmadd(acc, c7, LOAD(d + j - 1, ##__VA_ARGS__)); acc = vmadd(acc, c8, LOAD(d + j - 2, ##__VA_ARGS__));
    if (length >= VL) {
        for (int64_t next = 0;; next += VL) {
            const int64_t j = next < length - VL ? next : length - VL;
            DW_GATHER_BLOCK(vload)
            vstore(out + j, acc);
            if (j == length - VL) break;
        }
    } else {
        const int64_t j = 0;
        DW_GATHER_BLOCK(vload_n, length)
        vstore_n(out, acc, length);
    }
#undef DW_GATHER_BLOCK
}

/// The gradient of the padded plane is gathered row by row: padded row r receives output rows oh with oh·s + ki = r,
/// and padded column (phase, i) receives output column i - t from tap kj = phase + s·t. Output rows are read from a
/// copy with two zero columns on either side, so the shifts never leave the row, and a kernel row that reaches no
/// output row reads a zero row with zero weights (no branch in the inner loop).
KERNEL_EXPORT void LEVEL_SUFFIX(dream_dw3x3_input_gradient)(const dream_dw3x3_shape *g, const float *dy, const float *weight,
                                                     float *dx, int64_t first, int64_t end, float *scratch) {
    const dw_layout l = dw_layout_of(g);
    const int64_t s = l.stride, out_w = g->out_w, dy_row = out_w + 4, plane_out = g->out_h * out_w;
    float *padded_row = scratch, *zeros = scratch + l.row_floats, *grad = zeros + dy_row;
    memset(zeros, 0, sizeof(float) * (size_t)dy_row);
    for (int64_t plane = first; plane < end; plane++) {
        const float *w = weight + (plane % g->channels) * 9;
        const float *src = dy + plane * plane_out;
        for (int64_t oh = 0; oh < g->out_h; oh++) {
            float *row = grad + oh * dy_row;
            row[0] = 0; row[1] = 0; row[out_w + 2] = 0; row[out_w + 3] = 0;
            memcpy(row + 2, src + oh * out_w, sizeof(float) * (size_t)out_w);
        }
        float *dst = dx + plane * g->h * g->w;
        for (int64_t ih = 0; ih < g->h; ih++) {
            const int64_t r = ih + g->pad_top;
            float *target = dst + ih * g->w;
            if (r >= l.rows) { memset(target, 0, sizeof(float) * (size_t)g->w); continue; }
            // The output row each kernel row ki reaches (or the zero row).
            const float *rows[3] = {zeros + 2, zeros + 2, zeros + 2};
            int reached[3] = {0, 0, 0};
            for (int64_t ki = 0; ki < 3; ki++) {
                const int64_t q = r - ki;
                if (q >= 0 && q % s == 0 && q / s < g->out_h) { rows[ki] = grad + (q / s) * dy_row + 2; reached[ki] = 1; }
            }
            for (int64_t phase = 0; phase < s; phase++) {
                // c[ki·3 + t]: the weight of tap kj = phase + s·t in kernel row ki (0 if none).
                float c[9];
                for (int64_t ki = 0; ki < 3; ki++)
                    for (int64_t t = 0; t < 3; t++) {
                        const int64_t kj = phase + s * t;
                        c[ki * 3 + t] = reached[ki] && kj < 3 ? w[ki * 3 + kj] : 0.0f;
                    }
                LEVEL_SUFFIX(dw_gather_row)(rows[0], rows[1], rows[2], c, l.length, padded_row + phase * l.length);
            }
            // Padded column c = iw + pad_left lives at phase c % s, index c / s.
            for (int64_t iw = 0; iw < g->w; iw++) {
                const int64_t c = iw + g->pad_left, i = c / s;
                target[iw] = i < l.length ? padded_row[(c % s) * l.length + i] : 0.0f;
            }
        }
    }
}

#define VKEEP_LOAD(p, k) vkeep_from(vload(p), (k))

KERNEL_EXPORT void LEVEL_SUFFIX(dream_dw3x3_weight_gradient)(const dream_dw3x3_shape *g, int64_t images, const float *dy,
                                                      const float *x, float *dweight, int64_t first, int64_t end,
                                                      float *padded) {
    const dw_layout l = dw_layout_of(g);
    const int64_t s = l.stride, out_w = g->out_w, plane_out = g->out_h * out_w;
    const int64_t o1 = (1 % s) * l.length + 1 / s, o2 = (2 % s) * l.length + 2 / s;
    memset(padded, 0, sizeof(float) * (size_t)l.plane_floats);
    for (int64_t channel = first; channel < end; channel++) {
        float *gradients = dweight + channel * 9;
        for (int64_t image = 0; image < images; image++) {
            const int64_t plane = image * g->channels + channel;
            LEVEL_SUFFIX(dw_pad)(g, l, x + plane * g->h * g->w, padded);
            const float *grad = dy + plane * plane_out;
            vf a0 = vzero(), a1 = vzero(), a2 = vzero(), a3 = vzero(), a4 = vzero();
            vf a5 = vzero(), a6 = vzero(), a7 = vzero(), a8 = vzero();
            for (int64_t oh = 0; oh < g->out_h; oh++) {
                const float *gr = grad + oh * out_w;
                const float *r0 = padded + (oh * s) * l.row_floats, *r1 = r0 + l.row_floats, *r2 = r1 + l.row_floats;
                int64_t j = 0;
#define DW_WEIGHT_BLOCK(LOAD, ...)                                                                         \
                const vf gv = LOAD(gr + j, ##__VA_ARGS__);                                                 \
                a0 = vmadd(a0, gv, LOAD(r0 + j, ##__VA_ARGS__)); a1 = vmadd(a1, gv, LOAD(r0 + o1 + j, ##__VA_ARGS__)); \
                a2 = vmadd(a2, gv, LOAD(r0 + o2 + j, ##__VA_ARGS__)); a3 = vmadd(a3, gv, LOAD(r1 + j, ##__VA_ARGS__)); \
                a4 = vmadd(a4, gv, LOAD(r1 + o1 + j, ##__VA_ARGS__)); a5 = vmadd(a5, gv, LOAD(r1 + o2 + j, ##__VA_ARGS__)); \
                a6 = vmadd(a6, gv, LOAD(r2 + j, ##__VA_ARGS__)); a7 = vmadd(a7, gv, LOAD(r2 + o1 + j, ##__VA_ARGS__)); \
                a8 = vmadd(a8, gv, LOAD(r2 + o2 + j, ##__VA_ARGS__));
                for (; j + VL <= out_w; j += VL) { DW_WEIGHT_BLOCK(vload) }
                if (j < out_w && out_w >= VL) {
                    // The tail as the last full block with the lanes already counted zeroed (in both factors).
                    const int64_t counted = j - (out_w - VL);
                    j = out_w - VL;
                    DW_WEIGHT_BLOCK(VKEEP_LOAD, counted)
                } else if (j < out_w) {
                    DW_WEIGHT_BLOCK(vload_n, out_w)
                }
#undef DW_WEIGHT_BLOCK
            }
            gradients[0] += vhsum(a0); gradients[1] += vhsum(a1); gradients[2] += vhsum(a2);
            gradients[3] += vhsum(a3); gradients[4] += vhsum(a4); gradients[5] += vhsum(a5);
            gradients[6] += vhsum(a6); gradients[7] += vhsum(a7); gradients[8] += vhsum(a8);
        }
    }
}

// MARK: - Max pooling
//
// Max is separable: a column max over the window's rows, written into a -inf padded row, then a row max over the
// window's columns. For a horizontal stride s > 1 the padded row is first split into its s phases (phase r, slot i
// holds padded column i·s + r), so that tap kj·dilation = q·s + r of output ow is slot ow + q of phase r: contiguous.

static inline int64_t maxpool_phase_length(const dream_maxpool_shape *g) {
    return (g->padded_width + g->stride_w - 1) / g->stride_w;
}

KERNEL_EXPORT void LEVEL_SUFFIX(dream_maxpool_forward)(const dream_maxpool_shape *g, const float *x, float *y,
                                                int64_t first, int64_t end, float *scratch) {
    const int64_t w = g->w, out_w = g->out_w, s = g->stride_w, dw = g->dilation_w;
    const int64_t phase_length = maxpool_phase_length(g);
    float *padded = scratch, *phases = scratch + g->padded_width, *row = padded + g->pad_left;
    for (int64_t i = 0; i < g->padded_width; i++) padded[i] = -__builtin_inff();
    for (int64_t i = 0; i < s * phase_length; i++) phases[i] = -__builtin_inff();
    const float *taps = s == 1 ? padded : phases;
    for (int64_t plane = first; plane < end; plane++) {
        const float *src = x + plane * g->h * w;
        for (int64_t oh = 0; oh < g->out_h; oh++) {
            float *yrow = y + (plane * g->out_h + oh) * out_w;
            const int64_t count = g->row_count[oh];
            if (count == 0) { memset(yrow, 0, sizeof(float) * (size_t)out_w); continue; }
            const int64_t base = oh * g->stride_h - g->pad_top, k0 = g->row_first[oh];
            // Column max: row = max over the window's input rows (each new row v replaces m where v > m).
            memcpy(row, src + (base + k0 * g->dilation_h) * w, sizeof(float) * (size_t)w);
            for (int64_t k = k0 + 1; k < k0 + count; k++) {
                const float *next = src + (base + k * g->dilation_h) * w;
                // In place, the last block overlapping the one before: max(v, max(v, m)) = max(v, m), NaN included.
                if (w >= VL) {
                    for (int64_t j = 0;; j += VL) {
                        if (j > w - VL) j = w - VL;
                        vstore(row + j, vmax(vload(next + j), vload(row + j)));
                        if (j == w - VL) break;
                    }
                } else {
                    vstore_n(row, vmax(vload_n(next, w), vload_n(row, w)), w);
                }
            }
            if (s > 1) {
                for (int64_t r = 0; r < s; r++)
                    for (int64_t i = 0; i * s + r < g->padded_width; i++) phases[r * phase_length + i] = padded[i * s + r];
            }
            // Row max over the taps, in order kj = 0, 1, ...
            if (out_w >= VL) {
                for (int64_t j = 0;; j += VL) {
                    if (j > out_w - VL) j = out_w - VL;
                    vf m = vload(taps + j);
                    for (int64_t kj = 1; kj < g->kernel_w; kj++) {
                        const int64_t t = kj * dw;
                        m = vmax(vload(taps + (t % s) * phase_length + t / s + j), m);
                    }
                    vstore(yrow + j, m);
                    if (j == out_w - VL) break;
                }
            } else {
                vf m = vload_n(taps, out_w);
                for (int64_t kj = 1; kj < g->kernel_w; kj++) {
                    const int64_t t = kj * dw;
                    m = vmax(vload_n(taps + (t % s) * phase_length + t / s, out_w), m);
                }
                vstore_n(yrow, m, out_w);
            }
            for (int64_t i = 0; i < g->padding_column_count; i++) yrow[g->padding_columns[i]] = 0;
        }
    }
}

/// winners[o] = first + o·step wherever taps[o] == best[o]; count is a multiple of VL.
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(select_hits)(const float *taps, const float *best, int64_t count,
                                                                            int32_t first, int32_t step, int32_t *winners) {
    int32_t ramp[VL];
    for (int i = 0; i < VL; i++) ramp[i] = first + i * step;
    vi candidate = viload(ramp);
    const vi advance = viset1(step * VL);
    for (int64_t o = 0; o < count; o += VL) {
        vistore(winners + o, viselect(veq(vload(taps + o), vload(best + o)), candidate, viload(winners + o)));
        candidate = viadd(candidate, advance);
    }
}

KERNEL_EXPORT void LEVEL_SUFFIX(dream_maxpool_backward)(const dream_maxpool_shape *g, const float *x, const float *y,
                                                 const float *dy, float *dx, int64_t first, int64_t end, float *scratch) {
    const int64_t h = g->h, w = g->w, out_w = g->out_w, s = g->stride_w, dw = g->dilation_w, pad_left = g->pad_left;
    // A padded input row split into its s phases: phase r, slot j holds column j·s + r - pad_left, NaN where that is
    // padding (NaN equals nothing, so padding never wins).
    const int64_t phase_length = maxpool_phase_length(g), row_stride = s * phase_length;
    // Rows rounded up to whole vectors of the widest level: the extra lanes see NaN and are never scattered.
    const int64_t lanes = (out_w + 15) / 16 * 16;
    float *phases = scratch, *maxima = phases + h * row_stride + lanes;
    int32_t *winners = (int32_t *)(maxima + lanes);
    for (int64_t i = 0; i < h * row_stride + lanes; i++) phases[i] = __builtin_nanf("");
    for (int64_t i = 0; i < lanes; i++) maxima[i] = __builtin_nanf("");
    for (int64_t plane = first; plane < end; plane++) {
        const float *src = x + plane * h * w;
        float *dst = dx + plane * h * w;
        // The whole plane is split into phases once: each input row serves up to kH output rows. Slots that hold
        // padding are never written, so they stay NaN for every plane.
        for (int64_t ih = 0; ih < h; ih++) {
            const float *xrow = src + ih * w;
            float *phase_row = phases + ih * row_stride;
            if (s == 1) {
                memcpy(phase_row + pad_left, xrow, sizeof(float) * (size_t)w);
            } else {
                for (int64_t r = 0; r < s; r++) {
                    float *phase = phase_row + r * phase_length;
                    int64_t j = (pad_left - r + s - 1) / s, column = j * s + r - pad_left;
                    for (; column < w; j++, column += s) phase[j] = xrow[column];
                }
            }
        }
        for (int64_t oh = 0; oh < g->out_h; oh++) {
            const int64_t o = (plane * g->out_h + oh) * out_w;
            const float *grad = dy + o;
            memcpy(maxima, y + o, sizeof(float) * (size_t)out_w);
            for (int64_t i = 0; i < lanes; i++) winners[i] = -1;
            // Taps in reverse scan order, each overwriting earlier hits: the first hit survives.
            const int64_t base = oh * g->stride_h - g->pad_top, k0 = g->row_first[oh];
            for (int64_t k = k0 + g->row_count[oh] - 1; k >= k0; k--) {
                const int64_t ih = base + k * g->dilation_h;
                const float *phase_row = phases + ih * row_stride;
                for (int64_t kj = g->kernel_w - 1; kj >= 0; kj--) {
                    const int64_t t = kj * dw;
                    LEVEL_SUFFIX(select_hits)(phase_row + (t % s) * phase_length + t / s, maxima, lanes,
                                              (int32_t)(ih * w + t - pad_left), (int32_t)s, winners);
                }
            }
            for (int64_t ow = 0; ow < out_w; ow++) {
                const int32_t i = winners[ow];
                if (i >= 0) dst[i] += grad[ow];
            }
        }
    }
}
