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
    case DREAM_EPILOGUE_SIGMOID: LEVEL_SUFFIX(sigmoid_span)(x, y, count, 0); break;
    case DREAM_EPILOGUE_SILU: LEVEL_SUFFIX(sigmoid_span)(x, y, count, 1); break;
    case DREAM_EPILOGUE_HARD_SIGMOID: EPILOGUE_LOOP(DREAM_EPILOGUE_HARD_SIGMOID) break;
    case DREAM_EPILOGUE_HARD_SWISH: EPILOGUE_LOOP(DREAM_EPILOGUE_HARD_SWISH) break;
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

/// The gradient of x·σ(x) (CKernels.h): the unfused Mul backward gives dy·σ and dy·x, the Sigmoid backward
/// (dy·x)·σ·(1 − σ), and the two paths to x add. σ comes block by block from sigmoid_span (its speed, the same bits).
KERNEL_EXPORT void LEVEL_SUFFIX(dream_silu_backward)(const float *dy, const float *x, float *dx, int64_t count) {
    const vf one = vset1(1.0f);
    float sigma[SIGMOID_SPAN];
#define SILU_GRADIENT(g, v, s) vadd(vmul((g), (s)), vmul(vmul(vmul((g), (v)), (s)), vsub(one, (s))))
    for (int64_t b = 0; b < count; b += SIGMOID_SPAN) {
        const int64_t m = count - b < SIGMOID_SPAN ? count - b : SIGMOID_SPAN;
        LEVEL_SUFFIX(sigmoid_span)(x + b, sigma, m, 0);
        int64_t i = 0;
        for (; i + VL <= m; i += VL)
            vstore(dx + b + i, SILU_GRADIENT(vload(dy + b + i), vload(x + b + i), vload(sigma + i)));
        if (i < m) {
            const int64_t n = m - i;
            vstore_n(dx + b + i, SILU_GRADIENT(vload_n(dy + b + i, n), vload_n(x + b + i, n), vload_n(sigma + i, n)), n);
        }
    }
#undef SILU_GRADIENT
}

/// The gradient of x·hard_sigmoid(x) (CKernels.h): the unfused Mul backward gives dy·h and dy·x, the HardSigmoid
/// backward a·(dy·x) strictly inside (0, 1) (else 0), and the two paths to x add.
KERNEL_EXPORT void LEVEL_SUFFIX(dream_hard_sigmoid_gate_backward)(const float *dy, const float *x, float *dx,
                                                                  int64_t count, float alpha, float beta) {
    const vf a = vset1(alpha), b = vset1(beta), zero = vzero(), one = vset1(1.0f);
#define GATE_GRADIENT(g, v)                                                                                           \
    ({                                                                                                                \
        const vf t_ = vadd(vmul(a, (v)), b);                                                                          \
        const vf inside_ = vselect(vgt(t_, zero), vselect(vlt(t_, one), vmul(a, vmul((g), (v))), zero), zero);        \
        vadd(vmul((g), LEVEL_SUFFIX(hard_sigmoid)((v), a, b)), inside_);                                              \
    })
    int64_t i = 0;
    for (; i + VL <= count; i += VL) vstore(dx + i, GATE_GRADIENT(vload(dy + i), vload(x + i)));
    if (i < count) {
        const int64_t n = count - i;
        vstore_n(dx + i, GATE_GRADIENT(vload_n(dy + i, n), vload_n(x + i, n)), n);
    }
#undef GATE_GRADIENT
}

// MARK: - Depthwise 3x3
//
// Each input plane is copied into a zero-padded scratch plane so that the inner loops never test a border. For
// stride 2 each padded row is stored de-interleaved (even columns, then odd columns): tap kj of output column ow
// reads phase kj % 2 at index ow + kj / 2, so every load is contiguous and the nine taps of a vector of outputs sit in
// registers; each output is written once.
//
// The gradients use this layout (dw_layout): `rows` rows of `stride` phases of `length` floats. Padded row r holds
// input row r - pad_top; padded column c (phase c % s, index c / s) holds input column c - pad_left. The forward
// also splits the rows into phases (dream_dw3x3_layout, CKernels.h), so that a tap is one offset for a whole plane.

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

/// Input row `src` -> its image slots in sub-plane row `row` of column phase 0 (phase 1 `phase_floats` after it).
/// Every other slot stays 0: the caller clears the scratch once per call; the row's last vector may run past its last
/// slot, but only with zero lanes and only into slots that are padding or are written later.
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(dw_phase_row)(const dream_dw3x3_shape *g,
                                                                             int64_t phase_floats, const float *src,
                                                                             float *row) {
    const int64_t w = g->w, pl = g->pad_left;
    if (g->stride == 1) {
        float *dst = row + pl;
        int64_t j = 0;
        for (; j + VL <= w; j += VL) vstore(dst + j, vload(src + j));
        if (j < w) vstore(dst + j, vload_n(src + j, w - j));
    } else {
        // Input column iw = 2m + e is padded column 2m + e + pl: phase (e + pl) % 2, slot m + (e + pl) / 2.
        float *evens = row + (pl % 2) * phase_floats + pl / 2;
        float *odds = row + ((pl + 1) % 2) * phase_floats + (pl + 1) / 2;
        int64_t m = 0;
        for (; 2 * m + 2 * VL <= w; m += VL) {
            const vf a = vload(src + 2 * m), b = vload(src + 2 * m + VL);
            vstore(evens + m, vevens(a, b));
            vstore(odds + m, vodds(a, b));
        }
        const int64_t n = w - 2 * m;
        if (n > 0) {
            const vf a = vload_n(src + 2 * m, n < VL ? n : VL), b = n > VL ? vload_n(src + 2 * m + VL, n - VL) : vzero();
            vstore(evens + m, vevens(a, b));
            vstore(odds + m, vodds(a, b));
        }
    }
}

/// A whole input plane copied into its s·s phase planes (no ring): padded row r = ih + pad_top goes to row phase r % s,
/// sub-plane row r / s, rows past the `rows` a plane holds left out. Shared by the 3x3 and KxK kernels.
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(dw_fill_planes)(const dream_dw3x3_shape *g,
                                                                               int64_t phase_floats, int64_t pitch,
                                                                               int64_t rows, int64_t s,
                                                                               const float *input, float *phases) {
    for (int64_t ih = 0; ih < g->h; ih++) {
        const int64_t r = ih + g->pad_top, i = r / s;
        if (i >= rows) break;
        LEVEL_SUFFIX(dw_phase_row)(g, phase_floats, input + ih * g->w, phases + (r % s) * s * phase_floats + i * pitch);
    }
}

/// Sub-plane rows [*filled, upto] of a ring of `ring_rows` rows per phase plane, each filled from its input rows (zeros
/// above and below the input); *filled ends at upto + 1. Shared by the 3x3 and KxK kernels.
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(dw_fill_ring)(const dream_dw3x3_shape *g,
                                                                             int64_t phase_floats, int64_t pitch,
                                                                             int64_t ring_rows, int64_t s,
                                                                             const float *input, float *phases,
                                                                             int64_t *filled, int64_t upto) {
    for (; *filled <= upto; (*filled)++) {
        for (int64_t a = 0; a < s; a++) {
            float *row = phases + a * s * phase_floats + (*filled % ring_rows) * pitch;
            const int64_t ih = s * *filled + a - g->pad_top;
            if (ih >= 0 && ih < g->h) {
                LEVEL_SUFFIX(dw_phase_row)(g, phase_floats, input + ih * g->w, row);
            } else {
                for (int64_t b = 0; b < s; b++) memset(row + b * phase_floats, 0, sizeof(float) * (size_t)pitch);
            }
        }
    }
}

/// One vector of outputs from the sub-planes: bias, then the nine taps row by row (one multiply-add each, padding
/// included as zeros), then the epilogue; t[k] points at tap k's slot for the first lane.
#define DW_TAPS(t, j)                                                                                             \
    ({                                                                                                            \
        vf acc_ = vb;                                                                                             \
        acc_ = vmadd(acc_, w0, vload(t[0] + (j))); acc_ = vmadd(acc_, w1, vload(t[1] + (j)));                     \
        acc_ = vmadd(acc_, w2, vload(t[2] + (j))); acc_ = vmadd(acc_, w3, vload(t[3] + (j)));                     \
        acc_ = vmadd(acc_, w4, vload(t[4] + (j))); acc_ = vmadd(acc_, w5, vload(t[5] + (j)));                     \
        acc_ = vmadd(acc_, w6, vload(t[6] + (j))); acc_ = vmadd(acc_, w7, vload(t[7] + (j)));                     \
        acc_ = vmadd(acc_, w8, vload(t[8] + (j)));                                                                \
        LEVEL_SUFFIX(epilogue)(acc_, kind, ea, eb);                                                               \
    })

/// Four vectors of outputs at j, j + VL, j + 2·VL, j + 3·VL: each as DW_TAPS, the four chains interleaved so that
/// the multiply-adds of one wait for their operands while the others run (a chain is nine dependent steps).
#define DW_TAPS4(t, j, out)                                                                                       \
    do {                                                                                                          \
        vf a0_ = vb, a1_ = vb, a2_ = vb, a3_ = vb;                                                                \
        const vf tw_[9] = {w0, w1, w2, w3, w4, w5, w6, w7, w8};                                                   \
        for (int k_ = 0; k_ < 9; k_++) {                                                                          \
            a0_ = vmadd(a0_, tw_[k_], vload(t[k_] + (j)));                                                        \
            a1_ = vmadd(a1_, tw_[k_], vload(t[k_] + (j) + VL));                                                   \
            a2_ = vmadd(a2_, tw_[k_], vload(t[k_] + (j) + 2 * VL));                                               \
            a3_ = vmadd(a3_, tw_[k_], vload(t[k_] + (j) + 3 * VL));                                               \
        }                                                                                                         \
        vstore((out) + (j), LEVEL_SUFFIX(epilogue)(a0_, kind, ea, eb));                                           \
        vstore((out) + (j) + VL, LEVEL_SUFFIX(epilogue)(a1_, kind, ea, eb));                                      \
        vstore((out) + (j) + 2 * VL, LEVEL_SUFFIX(epilogue)(a2_, kind, ea, eb));                                  \
        vstore((out) + (j) + 3 * VL, LEVEL_SUFFIX(epilogue)(a3_, kind, ea, eb));                                  \
    } while (0)

/// One output row of out_w >= VL outputs; the last vector overlaps the one before it (same values).
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(dw_forward_row)(
    const float *const *t, float *dst, int64_t out_w, vf w0, vf w1, vf w2, vf w3, vf w4, vf w5, vf w6, vf w7, vf w8,
    vf vb, int32_t kind, vf ea, vf eb) {
    int64_t next = 0;
    for (; next + 4 * VL <= out_w; next += 4 * VL) DW_TAPS4(t, next, dst);
    for (; next < out_w; next += VL) {
        const int64_t j = next < out_w - VL ? next : out_w - VL;
        vstore(dst + j, DW_TAPS(t, j));
    }
}

/// Copies a plane computed as one flat run (rows `pitch` floats apart in `grid`) to the output plane (rows `out_w`
/// apart). `wide`: rows hold at least a vector; `room`: floats from `out` to the end of what this range writes, so
/// that a narrow row's full-vector store never passes it.
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(dw_store_grid)(const float *grid, int64_t pitch, float *out,
                                                                             int64_t out_h, int64_t out_w, int wide, int64_t room) {
    for (int64_t oh = 0; oh < out_h; oh++) {
        const float *src = grid + oh * pitch;
        float *dst = out + oh * out_w;
        if (wide) {
            // The last vector overlaps the one before it.
            for (int64_t next = 0;; next += VL) {
                const int64_t j = next < out_w - VL ? next : out_w - VL;
                vstore(dst + j, vload(src + j));
                if (j == out_w - VL) break;
            }
        } else if (oh * out_w + VL > room) {
            vstore_n(dst, vload(src), out_w);  // a full vector would pass the range's end: exactly its lanes
        } else {
            vstore(dst, vload(src));  // the extra lanes land in the rows after this one, written later
        }
    }
}

/// Planes [first, end) with the epilogue `kind` (a constant in every call, so its selection leaves the loops).
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(dw_forward_planes)(
    const dream_dw3x3_shape *g, const float *x, const float *weight, const float *bias, float *y, int64_t first,
    int64_t end, float *scratch, int32_t kind, vf ea, vf eb) {
    const dream_dw3x3_layout l = dream_dw3x3_layout_of(g);
    const int64_t s = l.stride, reach = 2 / s, out_h = g->out_h, out_w = g->out_w, pitch = l.pitch;
    // Rows at least a vector wide go straight into y, row by row; narrower rows are computed as one flat run over
    // the whole plane. A large plane (beyond DW_RING_PIXELS, which would not stay in the L1 cache) goes through a
    // ring of DW_RING sub-plane rows, each filled just before the outputs need it, so that copying the input (a
    // stream from memory) and the taps (from the L1 cache) overlap; a small one is copied whole, which spares the
    // ring's per-row bookkeeping.
    enum { DW_RING = 4, DW_RING_PIXELS = 8192 };
    const int wide = out_w >= VL, ring = wide && g->h * g->w >= DW_RING_PIXELS && l.rows >= DW_RING;
    const int64_t phase_floats = ring ? DW_RING * pitch + 32 : l.phase_floats;
    float *phases = scratch, *grid = scratch + s * s * phase_floats;
    // Tap (ki, kj): sub-plane (ki % s, kj % s), row ki / s, slot kj / s.
    int64_t offset[9];
    for (int k = 0; k < 9; k++) {
        const int64_t ki = k / 3, kj = k % 3;
        offset[k] = ((ki % s) * s + kj % s) * phase_floats + (ki / s) * pitch + kj / s;
    }
    memset(phases, 0, sizeof(float) * (size_t)(s * s * phase_floats));
    for (int64_t plane = first; plane < end; plane++) {
        const int64_t channel = plane % g->channels;
        const float *input = x + plane * g->h * g->w;
        const float *wt = weight + channel * 9;
        const vf w0 = vset1(wt[0]), w1 = vset1(wt[1]), w2 = vset1(wt[2]);
        const vf w3 = vset1(wt[3]), w4 = vset1(wt[4]), w5 = vset1(wt[5]);
        const vf w6 = vset1(wt[6]), w7 = vset1(wt[7]), w8 = vset1(wt[8]);
        const vf vb = vset1(bias ? bias[channel] : 0.0f);
        float *out = y + plane * out_h * out_w;
        if (!ring) LEVEL_SUFFIX(dw_fill_planes)(g, phase_floats, pitch, l.rows, s, input, phases);
        if (ring) {
            int64_t filled = 0;  // sub-plane rows [0, filled) have been through the ring
            for (int64_t oh = 0; oh < out_h; oh++) {
                LEVEL_SUFFIX(dw_fill_ring)(g, phase_floats, pitch, DW_RING, s, input, phases, &filled, oh + reach);
                const float *t[9];
                for (int k = 0; k < 9; k++) {
                    const int64_t ki = k / 3;
                    t[k] = phases + offset[k] - (ki / s) * pitch + ((oh + ki / s) % DW_RING) * pitch;
                }
                LEVEL_SUFFIX(dw_forward_row)(t, out + oh * out_w, out_w, w0, w1, w2, w3, w4, w5, w6, w7, w8, vb, kind, ea, eb);
            }
        } else {
            // The whole plane as one flat run over rows of `pitch` outputs (the slots past out_w are discarded),
            // then each row moved to y. Narrow rows move as one vector each, whose extra lanes land in the rows
            // after it (in y, written later), except where that would pass the end of the range's last plane.
            const float *t[9];
            for (int k = 0; k < 9; k++) t[k] = phases + offset[k];
            const int64_t count = out_h * pitch;
            int64_t q = 0;
            for (; q + 4 * VL <= count; q += 4 * VL) DW_TAPS4(t, q, grid);
            for (; q < count; q += VL) vstore(grid + q, DW_TAPS(t, q));
            LEVEL_SUFFIX(dw_store_grid)(grid, pitch, out, out_h, out_w, wide, (end - plane) * out_h * out_w);
        }
    }
}
#undef DW_TAPS
#undef DW_TAPS4

KERNEL_EXPORT void LEVEL_SUFFIX(dream_dw3x3_forward)(const dream_dw3x3_shape *g, const float *x, const float *weight,
                                                     const float *bias, float *y, int64_t first, int64_t end,
                                                     float *scratch, dream_epilogue e) {
    const vf ea = vset1(e.a), eb = vset1(e.b);
#define DW3X3_PLANES(KIND) LEVEL_SUFFIX(dw_forward_planes)(g, x, weight, bias, y, first, end, scratch, KIND, ea, eb)
#define DW3X3_CHUNK(FIRST, END) LEVEL_SUFFIX(dw_forward_planes)(g, x, weight, bias, y, FIRST, END, scratch, DREAM_EPILOGUE_NONE, ea, eb)
    EPILOGUE_BY_PLANES(e, first, end, g->out_h * g->out_w, y, DW3X3_PLANES, DW3X3_CHUNK)
#undef DW3X3_CHUNK
#undef DW3X3_PLANES
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

/// out[i] = Σ_m c[m] · p[m][i] over the N terms in order (the first a product, then multiply-adds): the stride-2
/// gather with only the taps that reach an output. N is a constant in every call, so the loop unrolls.
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(dw_gather_terms)(const float *const *p, const float *c,
                                                                                int n, int64_t length, float *out) {
    vf k[9];
    for (int m = 0; m < n; m++) k[m] = vset1(c[m]);
    if (length >= VL) {
        for (int64_t next = 0;; next += VL) {
            const int64_t j = next < length - VL ? next : length - VL;
            vf acc = vmul(k[0], vload(p[0] + j));
            for (int m = 1; m < n; m++) acc = vmadd(acc, k[m], vload(p[m] + j));
            vstore(out + j, acc);
            if (j == length - VL) break;
        }
    } else {
        vf acc = vmul(k[0], vload_n(p[0], length));
        for (int m = 1; m < n; m++) acc = vmadd(acc, k[m], vload_n(p[m], length));
        vstore_n(out, acc, length);
    }
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
            for (int64_t phase = 0; phase < s && s == 2; phase++) {
                // Only the taps that reach an output (kernel rows ki with reached[ki], kj = phase + 2t < 3), in
                // the order of the 9-term sum below: 1 to 4 terms instead of 9, most of them zero at stride 2.
                const float *p[9];
                float c[9];
                int n = 0;
                for (int64_t ki = 0; ki < 3; ki++)
                    for (int64_t t = 0; t < 2; t++) {
                        const int64_t kj = phase + 2 * t;
                        if (!reached[ki] || kj >= 3) continue;
                        p[n] = rows[ki] - t;
                        c[n++] = w[ki * 3 + kj];
                    }
                float *out = padded_row + phase * l.length;
                switch (n) {
                case 0: memset(out, 0, sizeof(float) * (size_t)l.length); break;
                case 1: LEVEL_SUFFIX(dw_gather_terms)(p, c, 1, l.length, out); break;
                case 2: LEVEL_SUFFIX(dw_gather_terms)(p, c, 2, l.length, out); break;
                case 3: LEVEL_SUFFIX(dw_gather_terms)(p, c, 3, l.length, out); break;
                default: LEVEL_SUFFIX(dw_gather_terms)(p, c, 4, l.length, out); break;
                }
            }
            if (s == 1) {
                // Straight into the input row: padded column iw + pad_left is input column iw.
                const int64_t valid = dw_clamp(l.length - g->pad_left, 0, g->w);
                float c[9];
                for (int64_t k = 0; k < 9; k++) c[k] = reached[k / 3] ? w[k] : 0.0f;
                if (valid > 0)
                    LEVEL_SUFFIX(dw_gather_row)(rows[0] + g->pad_left, rows[1] + g->pad_left, rows[2] + g->pad_left, c,
                                                valid, target);
                if (valid < g->w) memset(target + valid, 0, sizeof(float) * (size_t)(g->w - valid));
                continue;
            }
            for (int64_t phase = 0; phase < s && s != 2; phase++) {
                // c[ki·3 + t]: the weight of tap kj = phase + s·t in kernel row ki (0 if none).
                float c[9];
                for (int64_t ki = 0; ki < 3; ki++)
                    for (int64_t t = 0; t < 3; t++) {
                        const int64_t kj = phase + s * t;
                        c[ki * 3 + t] = reached[ki] && kj < 3 ? w[ki * 3 + kj] : 0.0f;
                    }
                LEVEL_SUFFIX(dw_gather_row)(rows[0], rows[1], rows[2], c, l.length, padded_row + phase * l.length);
            }
            // Padded column c = iw + pad_left lives at phase c % s, index c / s: walked without a division per
            // element (which cost more than the gather itself).
            {
                int64_t iw = 0;
                if (s == 2) {
                    // Input columns 2m and 2m + 1 come from slot m of two phase rows a and b: 2·VL at a time.
                    const int64_t p0 = g->pad_left & 1, i0 = g->pad_left >> 1;
                    const float *a = padded_row + p0 * l.length + i0, *b = padded_row + (1 - p0) * l.length + i0 + p0;
                    for (int64_t m = 0; 2 * m + 2 * VL <= g->w && i0 + p0 + m + VL <= l.length; m += VL, iw += 2 * VL) {
                        const vf even = vload(a + m), odd = vload(b + m);
                        vstore(target + 2 * m, vzip_lo(even, odd));
                        vstore(target + 2 * m + VL, vzip_hi(even, odd));
                    }
                }
                int64_t phase = (iw + g->pad_left) % s, i = (iw + g->pad_left) / s;
                for (; iw < g->w; iw++) {
                    target[iw] = i < l.length ? padded_row[phase * l.length + i] : 0.0f;
                    if (++phase == s) { phase = 0; i++; }
                }
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

/// out[j] = max over the `count` rows src + k·row_stride (k in order) of column j, for j in 0..<length: the first
/// row, then each next value v replacing m where v > m. The last vector overlaps the one before it (it reads the
/// rows, not out, so recomputing is harmless).
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(maxpool_column_max)(const float *src, int64_t row_stride,
                                                                                     int64_t count, int64_t length, float *out) {
    if (length >= VL) {
        for (int64_t j = 0;; j += VL) {
            if (j > length - VL) j = length - VL;
            vf m = vload(src + j);
            for (int64_t k = 1; k < count; k++) m = vmax(vload(src + k * row_stride + j), m);
            vstore(out + j, m);
            if (j == length - VL) break;
        }
    } else if (length > 0) {
        vf m = vload_n(src, length);
        for (int64_t k = 1; k < count; k++) m = vmax(vload_n(src + k * row_stride, length), m);
        vstore_n(out, m, length);
    }
}

/// The scalar vmax: v > m ? v : m (a NaN v never replaces m; a NaN m stays).
static inline float maxpool_max(float v, float m) { return v > m ? v : m; }

/// Whether the window keeps the width (stride 1, no dilation, pad_left + pad_right = kernel_w - 1) and every output
/// row sees some input row: then a band of output rows is two flat passes (column max, row max) over whole rows,
/// with no per-row set-up, which is what dominates small planes (14x14 and 7x7 in GoogLeNet's inception pools).
static inline int maxpool_keeps_width(const dream_maxpool_shape *g) {
    if (g->stride_h != 1 || g->stride_w != 1 || g->dilation_h != 1 || g->dilation_w != 1) return 0;
    if (g->out_w != g->w || g->padding_column_count != 0 || g->pad_left >= g->kernel_w) return 0;
    for (int64_t oh = 0; oh < g->out_h; oh++) if (g->row_count[oh] == 0) return 0;
    return 1;
}

/// Planes [first, end) through the width-keeping path. `maxima` holds a band's column maxima with kernel_w + VL
/// floats of margin on either side (their values are never used: border columns are recomputed).
KERNEL void LEVEL_SUFFIX(maxpool_forward_keeping_width)(const dream_maxpool_shape *g, const float *x, float *y,
                                                        int64_t first, int64_t end, float *scratch) {
    const int64_t w = g->w, kw = g->kernel_w, pl = g->pad_left, band = dream_maxpool_band_rows(g);
    const int64_t margin = kw + VL;
    float *maxima = scratch + margin;
    // The margins are read by the flat pass (for border columns that are then recomputed): keep them defined.
    for (int64_t i = 0; i < margin; i++) scratch[i] = -__builtin_inff();
    for (int64_t i = 0; i < margin; i++) maxima[band * w + i] = -__builtin_inff();
    // Output columns whose window reaches past the row: [0, pl) and [w - (kw - 1 - pl), w).
    const int64_t right = w - (kw - 1 - pl) > pl ? w - (kw - 1 - pl) : pl;
    for (int64_t plane = first; plane < end; plane++) {
        const float *src = x + plane * g->h * w;
        for (int64_t r0 = 0; r0 < g->out_h; r0 += band) {
            const int64_t r1 = r0 + band < g->out_h ? r0 + band : g->out_h;
            // Column maxima, one flat pass per run of rows with the same window rows (all interior rows are one run).
            for (int64_t a = r0; a < r1;) {
                int64_t b = a + 1;
                while (b < r1 && g->row_first[b] == g->row_first[a] && g->row_count[b] == g->row_count[a]) b++;
                LEVEL_SUFFIX(maxpool_column_max)(src + (a - g->pad_top + g->row_first[a]) * w, w, g->row_count[a],
                                                 (b - a) * w, maxima + (a - r0) * w);
                a = b;
            }
            // Row maxima over the whole band as one flat row; the columns whose window crosses a row's end are
            // recomputed below with padding (-inf) in the taps beyond the row.
            float *dst = y + (plane * g->out_h + r0) * w;
            const float *taps = maxima - pl;
            const int64_t length = (r1 - r0) * w;
            if (length >= VL) {
                for (int64_t j = 0;; j += VL) {
                    if (j > length - VL) j = length - VL;
                    vf m = vload(taps + j);
                    for (int64_t kj = 1; kj < kw; kj++) m = vmax(vload(taps + kj + j), m);
                    vstore(dst + j, m);
                    if (j == length - VL) break;
                }
            } else {
                vf m = vload_n(taps, length);
                for (int64_t kj = 1; kj < kw; kj++) m = vmax(vload_n(taps + kj, length), m);
                vstore_n(dst, m, length);
            }
            for (int64_t r = 0; r < r1 - r0; r++) {
                const float *row = maxima + r * w;
                for (int64_t j = 0; j < w; j++) {
                    if (j == pl) j = right;  // columns [pl, right) see only their own row: done by the flat pass
                    if (j >= w) break;
                    // The taps in order: a padding tap (-inf) first is m's start; later ones change nothing, as
                    // vmax(-inf, m) = m for every m, NaN included.
                    const int64_t lo = j - pl, hi = lo + kw < w ? lo + kw : w;
                    float m = lo >= 0 ? row[lo] : -__builtin_inff();
                    for (int64_t c = lo + 1 > 0 ? lo + 1 : 0; c < hi; c++) m = maxpool_max(row[c], m);
                    dst[r * w + j] = m;
                }
            }
        }
    }
}

/// Lane indices 0, 1, 2, ... (as floats) for masks of the first n lanes.
static const float maxpool_lane_index[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

/// The column max of maxpool_column_max over the first n <= VL columns only; the other lanes are -inf (padding).
KERNEL inline __attribute__((always_inline)) vf LEVEL_SUFFIX(maxpool_column_max_n)(const float *src, int64_t row_stride,
                                                                                     int64_t count, int64_t n) {
    vf m = vload_n(src, n);
    for (int64_t k = 1; k < count; k++) m = vmax(vload_n(src + k * row_stride, n), m);
    return vselect(vlt(vload(maxpool_lane_index), vset1((float)n)), m, vset1(-__builtin_inff()));
}

KERNEL_EXPORT void LEVEL_SUFFIX(dream_maxpool_forward)(const dream_maxpool_shape *g, const float *x, float *y,
                                                int64_t first, int64_t end, float *scratch) {
    if (maxpool_keeps_width(g)) {
        LEVEL_SUFFIX(maxpool_forward_keeping_width)(g, x, y, first, end, scratch);
        return;
    }
    const int64_t w = g->w, out_w = g->out_w, s = g->stride_w, dw = g->dilation_w, kw = g->kernel_w, pl = g->pad_left;
    const int64_t phase_length = maxpool_phase_length(g);
    // Scratch: the taps' offsets, then a -inf padded row of column maxima, then its s phases (each followed by a
    // vector of margin for stride 2, whose phases are written a vector at a time; see dream_maxpool_forward_scratch_floats).
    int64_t *tap = (int64_t *)scratch;
    float *padded = scratch + 2 * kw, *row = padded + pl;
    const int64_t phase_pitch = s == 2 ? phase_length + 16 : phase_length;
    float *phases = padded + g->padded_width;
    for (int64_t i = 0; i < g->padded_width; i++) padded[i] = -__builtin_inff();
    for (int64_t i = 0; i < s * phase_pitch; i++) phases[i] = -__builtin_inff();
    const float *taps = s == 1 ? padded : phases;
    // Tap kj reads padded column ow·s + kj·dw: phase (kj·dw) % s, slot ow + (kj·dw) / s.
    for (int64_t kj = 0; kj < kw; kj++) tap[kj] = ((kj * dw) % s) * phase_pitch + (kj * dw) / s;
    for (int64_t plane = first; plane < end; plane++) {
        const float *src = x + plane * g->h * w;
        for (int64_t oh = 0; oh < g->out_h; oh++) {
            float *yrow = y + (plane * g->out_h + oh) * out_w;
            const int64_t count = g->row_count[oh];
            if (count == 0) { memset(yrow, 0, sizeof(float) * (size_t)out_w); continue; }
            const int64_t base = oh * g->stride_h - g->pad_top, k0 = g->row_first[oh];
            const float *top = src + (base + k0 * g->dilation_h) * w;
            const int64_t row_stride = g->dilation_h * w;
            if (s == 2) {
                // Column max and the split into phases in one pass: input column c is padded column c + pl, phase
                // (c + pl) % 2, slot (c + pl) / 2; 2·VL columns at a time from the first with an even padded index.
                float *even = phases, *odd = phases + phase_pitch;
                int64_t c = pl % 2;
                if (c == 1 && w > 0) {
                    float m = top[0];
                    for (int64_t k = 1; k < count; k++) m = maxpool_max(top[k * row_stride], m);
                    odd[pl / 2] = m;
                }
                for (; c + 2 * VL <= w; c += 2 * VL) {
                    // The rows the next output row adds, ahead of time: the input is a stream from memory.
                    __builtin_prefetch(top + count * row_stride + c + 2 * VL);
                    __builtin_prefetch(top + (count + 1) * row_stride + c + 2 * VL);
                    vf a = vload(top + c), b = vload(top + c + VL);
                    for (int64_t k = 1; k < count; k++) {
                        a = vmax(vload(top + k * row_stride + c), a);
                        b = vmax(vload(top + k * row_stride + c + VL), b);
                    }
                    vstore(even + (c + pl) / 2, vevens(a, b));
                    vstore(odd + (c + pl) / 2, vodds(a, b));
                }
                if (c < w) {
                    // The last columns; lanes past the row are -inf, as the padding slots they land in.
                    const int64_t n = w - c;
                    const vf a = LEVEL_SUFFIX(maxpool_column_max_n)(top + c, row_stride, count, n < VL ? n : VL);
                    const vf b = n > VL ? LEVEL_SUFFIX(maxpool_column_max_n)(top + c + VL, row_stride, count, n - VL)
                                        : vset1(-__builtin_inff());
                    vstore(even + (c + pl) / 2, vevens(a, b));
                    vstore(odd + (c + pl) / 2, vodds(a, b));
                }
            } else {
                // Column max over the window's input rows, in one pass.
                LEVEL_SUFFIX(maxpool_column_max)(top, row_stride, count, w, row);
                if (s > 2) {
                    for (int64_t r = 0; r < s; r++)
                        for (int64_t i = 0; i * s + r < g->padded_width; i++) phases[r * phase_pitch + i] = padded[i * s + r];
                }
            }
            // Row max over the taps, in order kj = 0, 1, ...
            if (out_w >= VL) {
                for (int64_t j = 0;; j += VL) {
                    if (j > out_w - VL) j = out_w - VL;
                    vf m = vload(taps + j);
                    for (int64_t kj = 1; kj < kw; kj++) m = vmax(vload(taps + tap[kj] + j), m);
                    vstore(yrow + j, m);
                    if (j == out_w - VL) break;
                }
            } else {
                vf m = vload_n(taps, out_w);
                for (int64_t kj = 1; kj < kw; kj++) m = vmax(vload_n(taps + tap[kj], out_w), m);
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

/// n ≤ VL lanes at p (all of them when n == VL).
KERNEL inline __attribute__((always_inline)) vf LEVEL_SUFFIX(maxpool_load)(const float *p, int64_t n) {
    return n == VL ? vload(p) : vload_n(p, n);
}
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(maxpool_store)(float *p, vf v, int64_t n) {
    if (n == VL) vstore(p, v); else vstore_n(p, v, n);
}

/// The code of n outputs from flat position q: taps in reverse scan order, each overwriting earlier hits, so the
/// first hit in row-major window order survives. NaN (padding, the columns between rows, a NaN y) equals nothing.
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(maxpool_code_vector)(
    const dream_maxpool_gather_layout *l, int64_t q, int64_t n, int64_t pad_top, int64_t kw, int64_t tap_first,
    int64_t tap_end, const float *input, const float *outputs, float *codes) {
    const int64_t pw = l->width;
    const vf m = LEVEL_SUFFIX(maxpool_load)(outputs + q, n);
    vf c = vset1(-1.0f);
    for (int64_t k = tap_end - 1; k >= tap_first; k--)
        for (int64_t kj = kw - 1; kj >= 0; kj--) {
            const vf t = LEVEL_SUFFIX(maxpool_load)(input + q + (l->row_offset - pad_top + k) * pw + kj, n);
            c = vselect(veq(t, m), vset1((float)(k * kw + kj)), c);
        }
    LEVEL_SUFFIX(maxpool_store)(codes + l->code_offset * pw + q, c, n);
}

/// n input elements from flat position p: input (ih, iw) takes dy of output (ih + pad_top - k, iw + pad_left - kj)
/// if that output's code is (k, kj), in increasing output order (k, then kj, decreasing), the order in which a
/// scatter over the outputs adds them. A select, not an add of 0, so that an element no output routes to keeps its
/// bits (-0 included).
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(maxpool_gather_vector)(
    const dream_maxpool_gather_layout *l, int64_t p, int64_t n, int64_t pad_top, int64_t pad_left, int64_t kw,
    int64_t tap_first, int64_t tap_end, const float *codes, const float *grads, float *sums) {
    const int64_t pw = l->width, base = p + (l->code_offset + pad_top) * pw + pad_left;
    vf acc = LEVEL_SUFFIX(maxpool_load)(sums + p, n);
    for (int64_t k = tap_end - 1; k >= tap_first; k--)
        for (int64_t kj = kw - 1; kj >= 0; kj--) {
            const int64_t o = base - k * pw - kj;
            const vf c = LEVEL_SUFFIX(maxpool_load)(codes + o, n), d = LEVEL_SUFFIX(maxpool_load)(grads + o, n);
            acc = vselect(veq(c, vset1((float)(k * kw + kj))), vadd(acc, d), acc);
        }
    LEVEL_SUFFIX(maxpool_store)(sums + p, acc, n);
}

/// The two flat passes of the gather path over one plane (layout: dream_maxpool_gather_layout). Always inlined so
/// that the 3x3 call below has constant taps and unrolls.
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(maxpool_gather_passes)(
    const dream_maxpool_gather_layout *l, int64_t out_h, int64_t h, int64_t pad_top, int64_t pad_left, int64_t kw,
    int64_t tap_first, int64_t tap_end, const float *input, const float *outputs, float *codes, const float *grads,
    float *sums) {
    const int64_t codes_length = out_h * l->width, sums_length = h * l->width;
    int64_t q = 0;
    for (; q + VL <= codes_length; q += VL)
        LEVEL_SUFFIX(maxpool_code_vector)(l, q, VL, pad_top, kw, tap_first, tap_end, input, outputs, codes);
    if (q < codes_length)
        LEVEL_SUFFIX(maxpool_code_vector)(l, q, codes_length - q, pad_top, kw, tap_first, tap_end, input, outputs, codes);
    int64_t p = 0;
    for (; p + VL <= sums_length; p += VL)
        LEVEL_SUFFIX(maxpool_gather_vector)(l, p, VL, pad_top, pad_left, kw, tap_first, tap_end, codes, grads, sums);
    if (p < sums_length)
        LEVEL_SUFFIX(maxpool_gather_vector)(l, p, sums_length - p, pad_top, pad_left, kw, tap_first, tap_end, codes,
                                            grads, sums);
}

/// Planes [first, end) of a stride-1 window that keeps the width (maxpool_keeps_width): the winner of every output
/// found in registers over one flat pass (its tap as a code), then every input element gathers the dy routed to it,
/// instead of a scalar scatter per output. Winners and summation order are those of the scan-order path.
KERNEL void LEVEL_SUFFIX(maxpool_backward_keeping_width)(const dream_maxpool_shape *g, const float *x, const float *y,
                                                         const float *dy, float *dx, int64_t first, int64_t end,
                                                         float *scratch) {
    const dream_maxpool_gather_layout l = dream_maxpool_gather_layout_of(g);
    const int64_t h = g->h, w = g->w, out_h = g->out_h, kw = g->kernel_w, pw = l.width, pl = g->pad_left;
    float *input = scratch, *outputs = input + l.input_rows * pw, *codes = outputs + out_h * pw;
    float *grads = codes + l.code_rows * pw, *sums = grads + l.code_rows * pw;
    // What is never overwritten stays for every plane: NaN around the input and after the outputs, code -1 in the
    // margins; the rest is only defined for hygiene.
    for (int64_t i = 0; i < l.input_rows * pw + out_h * pw; i++) input[i] = __builtin_nanf("");
    for (int64_t i = 0; i < l.code_rows * pw; i++) { codes[i] = -1.0f; grads[i] = 0.0f; }
    for (int64_t i = 0; i < h * pw; i++) sums[i] = 0.0f;
    const int three = kw == 3 && l.tap_first == 0 && l.tap_end == 3;
    for (int64_t plane = first; plane < end; plane++) {
        const float *src = x + plane * h * w, *out = y + plane * out_h * w, *grad = dy + plane * out_h * w;
        float *dst = dx + plane * h * w;
        for (int64_t ih = 0; ih < h; ih++) {
            memcpy(input + (l.row_offset + ih) * pw + pl, src + ih * w, sizeof(float) * (size_t)w);
            memset(sums + ih * pw, 0, sizeof(float) * (size_t)w);
        }
        for (int64_t oh = 0; oh < out_h; oh++) {
            memcpy(outputs + oh * pw, out + oh * w, sizeof(float) * (size_t)w);
            memcpy(grads + (l.code_offset + oh) * pw, grad + oh * w, sizeof(float) * (size_t)w);
        }
        if (three)
            LEVEL_SUFFIX(maxpool_gather_passes)(&l, out_h, h, g->pad_top, pl, 3, 0, 3, input, outputs, codes, grads, sums);
        else
            LEVEL_SUFFIX(maxpool_gather_passes)(&l, out_h, h, g->pad_top, pl, kw, l.tap_first, l.tap_end, input,
                                                outputs, codes, grads, sums);
        for (int64_t ih = 0; ih < h; ih++) memcpy(dst + ih * w, sums + ih * pw, sizeof(float) * (size_t)w);
    }
}

/// A row of w inputs split into the phases of its padded columns: padded column c = column + pad_left goes to
/// even[c / 2] or odd[c / 2] by c % 2, 2·VL columns at a time (prefetching two rows ahead: a stream from memory).
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(split_column_phases)(const float *xrow, int64_t w,
                                                                                    int64_t pad_left, float *even,
                                                                                    float *odd) {
    int64_t column = pad_left % 2;
    if (column == 1 && w > 0) odd[pad_left / 2] = xrow[0];
    for (; column + 2 * VL <= w; column += 2 * VL) {
        __builtin_prefetch(xrow + 2 * w + column);
        const vf a = vload(xrow + column), b = vload(xrow + column + VL);
        const int64_t slot = (column + pad_left) / 2;
        vstore(even + slot, vevens(a, b));
        vstore(odd + slot, vodds(a, b));
    }
    for (; column < w; column++) {
        const int64_t padded = column + pad_left;
        (padded % 2 == 0 ? even : odd)[padded / 2] = xrow[column];
    }
}

/// Planes [first, end) of a 3x3 stride-2 window (dream_maxpool_is_stride2_gather) as two vector passes and no
/// scatter: each output's winning tap (its code: the first tap in scan order equal to y), then each input element's
/// gradient gathered from the at most 2x2 outputs whose windows hold it, in the order the scatter would add them
/// (output rows, then columns, ascending), so the bits are those of the scatter. A term that is not the winner adds
/// -0, which changes no sum.
KERNEL void LEVEL_SUFFIX(maxpool_backward_stride2)(const dream_maxpool_shape *g, const float *x, const float *y,
                                                   const float *dy, float *dx, int64_t first, int64_t end,
                                                   float *scratch) {
    const dream_maxpool_stride2_layout l = dream_maxpool_stride2_layout_of(g);
    const int64_t h = g->h, w = g->w, out_h = g->out_h, out_w = g->out_w, pt = g->pad_top, pl = g->pad_left;
    const int64_t cw = l.code_width;
    float *phases = scratch + l.phases, *maxima = scratch + l.maxima, *codes = scratch + l.codes;
    float *grads = scratch + l.grads, *row = scratch + l.row;
    // Never overwritten, so the same for every plane: NaN padding around the phases and past the maxima, code -1
    // (no output) in the margins of the code rows.
    for (int64_t i = 0; i < l.maxima + l.lanes; i++) scratch[i] = __builtin_nanf("");
    for (int64_t i = 0; i < out_h * cw; i++) { codes[i] = -1.0f; grads[i] = 0.0f; }
    for (int64_t i = 0; i < 2 * cw + 32; i++) row[i] = 0.0f;
    const vf none = vset1(-1.0f), minus_zero = vset1(-0.0f);
    for (int64_t plane = first; plane < end; plane++) {
        const float *src = x + plane * h * w;
        float *dst = dx + plane * h * w;
        // The input split into column phases: padded column c = iw + pl is phase c % 2, slot c / 2.
        for (int64_t ih = 0; ih < h; ih++) {
            const float *xrow = src + ih * w;
            float *even = phases + ih * l.row_stride, *odd = even + l.phase_length;
            LEVEL_SUFFIX(split_column_phases)(xrow, w, pl, even, odd);
        }
        // Codes: the taps in reverse scan order, each replacing the code where it equals the maximum, so that the
        // first equal tap's code survives. Lanes past out_w see a NaN maximum and keep -1.
        for (int64_t oh = 0; oh < out_h; oh++) {
            const int64_t o = (plane * out_h + oh) * out_w;
            memcpy(maxima, y + o, sizeof(float) * (size_t)out_w);
            memcpy(grads + oh * cw + 1, dy + o, sizeof(float) * (size_t)out_w);
            float *code = codes + oh * cw + 1;
            for (int64_t j = 0; j < l.lanes; j += VL) {
                const vf m = vload(maxima + j);
                vf c = none;
                for (int64_t k = 8; k >= 0; k--) {
                    const int64_t ih = 2 * oh + k / 3 - pt, kj = k % 3;
                    if (ih < 0 || ih >= h) continue;
                    const float *tap = phases + ih * l.row_stride + (kj % 2) * l.phase_length + kj / 2 + j;
                    c = vselect(veq(vload(tap), m), vset1((float)k), c);
                }
                vstore(code + j, c);
            }
        }
        // Gather, input row by input row: padded row r = ih + pt is kernel row 2 of output row r/2 - 1 and kernel row 0
        // of output row r/2 when r is even, kernel row 1 of output row (r - 1)/2 when odd. In a row, even slot j is
        // tap 2 of output j - 1 and tap 0 of output j; odd slot j is tap 1 of output j.
        for (int64_t ih = 0; ih < h; ih++) {
            const int64_t r = ih + pt;
            int64_t term_rows[2], term_ki[2], terms = 0;
            if (r % 2 == 0) {
                if (r / 2 - 1 >= 0 && r / 2 - 1 < out_h) { term_rows[terms] = r / 2 - 1; term_ki[terms++] = 2; }
                if (r / 2 < out_h) { term_rows[terms] = r / 2; term_ki[terms++] = 0; }
            } else if ((r - 1) / 2 < out_h) {
                term_rows[terms] = (r - 1) / 2; term_ki[terms++] = 1;
            }
            for (int64_t j = 0; j < l.slots; j += VL) {
                vf even = vzero(), odd = vzero();
                for (int64_t t = 0; t < terms; t++) {
                    // Slot j + lane: output column j + lane - 1 is at code slot j + lane, column j + lane at j + lane + 1.
                    const float *code = codes + term_rows[t] * cw + j, *grad = grads + term_rows[t] * cw + j;
                    const float k = (float)(term_ki[t] * 3);
                    const vf left = vload(code), here = vload(code + 1);
                    const vf left_grad = vload(grad), here_grad = vload(grad + 1);
                    even = vadd(even, vselect(veq(left, vset1(k + 2)), left_grad, minus_zero));
                    even = vadd(even, vselect(veq(here, vset1(k)), here_grad, minus_zero));
                    odd = vadd(odd, vselect(veq(here, vset1(k + 1)), here_grad, minus_zero));
                }
                vstore(row + 2 * j, vzip_lo(even, odd));
                vstore(row + 2 * j + VL, vzip_hi(even, odd));
            }
            memcpy(dst + ih * w, row + pl, sizeof(float) * (size_t)w);
        }
    }
}

KERNEL_EXPORT void LEVEL_SUFFIX(dream_maxpool_backward)(const dream_maxpool_shape *g, const float *x, const float *y,
                                                 const float *dy, float *dx, int64_t first, int64_t end, float *scratch) {
    if (maxpool_keeps_width(g)) {
        LEVEL_SUFFIX(maxpool_backward_keeping_width)(g, x, y, dy, dx, first, end, scratch);
        return;
    }
    if (dream_maxpool_is_stride2_gather(g)) {
        LEVEL_SUFFIX(maxpool_backward_stride2)(g, x, y, dy, dx, first, end, scratch);
        return;
    }
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
        // Cleared here rather than by the caller: the plane is then in the cache when the scatter adds to it.
        memset(dst, 0, sizeof(float) * (size_t)(h * w));
        // The whole plane is split into phases once: each input row serves up to kH output rows. Slots that hold
        // padding are never written, so they stay NaN for every plane.
        for (int64_t ih = 0; ih < h; ih++) {
            const float *xrow = src + ih * w;
            float *phase_row = phases + ih * row_stride;
            if (s == 1) {
                memcpy(phase_row + pad_left, xrow, sizeof(float) * (size_t)w);
            } else if (s == 2) {
                // Padded column c + pad_left lives in phase (c + pad_left) % 2 at slot (c + pad_left) / 2: from the
                // first column with an even padded index, 2·VL columns at a time split into even and odd lanes.
                float *even = phase_row, *odd = phase_row + phase_length;
                LEVEL_SUFFIX(split_column_phases)(xrow, w, pad_left, even, odd);
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

// MARK: - Local response normalisation
//
// One vector of pixels at a time walks down the channels with the window's sum of squares in a register: a channel
// entering the window adds its square, one leaving subtracts it (clamped at 0: the difference can leave a tiny negative
// residue). Every element takes the operations of the scalar definition in the same order, and sqrt and division are
// correctly rounded, so every level gives the same bits. The power is the cost: s^-0.75 = 1 / (√s · √√s) (AlexNet and
// GoogLeNet), 1 / √s, 1 / s, or exp(-beta · log s) lane by lane for any other exponent.

/// The first n lanes (all of them when n == VL): loads and stores of a column's last, partial vector.
KERNEL inline __attribute__((always_inline)) vf LEVEL_SUFFIX(lrn_load)(const float *p, int64_t n) {
    return n == VL ? vload(p) : vload_n(p, n);
}
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(lrn_store)(float *p, vf v, int64_t n) {
    if (n == VL) vstore(p, v); else vstore_n(p, v, n);
}

/// s^-beta.
KERNEL inline __attribute__((always_inline)) vf LEVEL_SUFFIX(lrn_power)(vf s, float beta) {
    const vf one = vset1(1.0f);
    if (beta == 0.75f) {
        const vf r = vsqrt(s);
        return vdiv(one, vmul(r, vsqrt(r)));
    }
    if (beta == 0.5f) return vdiv(one, vsqrt(s));
    if (beta == 1.0f) return vdiv(one, s);
    float lanes[VL];
    vstore(lanes, s);
    for (int i = 0; i < VL; i++) lanes[i] = __builtin_expf(-beta * __builtin_logf(lanes[i]));
    return vload(lanes);
}

/// The window sum of channel 0: Σ x² over channels 0 ... min(after, channels - 1).
KERNEL inline __attribute__((always_inline)) vf LEVEL_SUFFIX(lrn_first_sum)(const dream_lrn_shape *g, const float *x, int64_t n) {
    vf sum = vzero();
    const int64_t last = g->after < g->channels - 1 ? g->after : g->channels - 1;
    for (int64_t k = 0; k <= last; k++) {
        const vf v = LEVEL_SUFFIX(lrn_load)(x + k * g->plane, n);
        sum = vadd(sum, vmul(v, v));
    }
    return sum;
}

/// The window sum moved from channel ch to ch + 1.
KERNEL inline __attribute__((always_inline)) vf LEVEL_SUFFIX(lrn_slide)(const dream_lrn_shape *g, const float *x, int64_t n,
                                                                          int64_t ch, vf sum) {
    const int64_t entering = ch + 1 + g->after, leaving = ch - g->before;
    if (entering < g->channels) {
        const vf v = LEVEL_SUFFIX(lrn_load)(x + entering * g->plane, n);
        sum = vadd(sum, vmul(v, v));
    }
    if (leaving >= 0) {
        const vf v = LEVEL_SUFFIX(lrn_load)(x + leaving * g->plane, n);
        const vf d = vsub(sum, vmul(v, v));
        sum = vselect(vge(d, vzero()), d, vzero());  // max(0, d), NaN to 0 like Swift.max(0, d)
    }
    return sum;
}

/// One column of n ≤ VL pixels at x, y (channel 0).
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(lrn_forward_column)(const dream_lrn_shape *g, const float *x,
                                                                                     float *y, int64_t n) {
    const vf bias = vset1(g->bias), coefficient = vset1(g->coefficient);
    vf sum = LEVEL_SUFFIX(lrn_first_sum)(g, x, n);
    for (int64_t ch = 0; ch < g->channels; ch++) {
        const vf scale = LEVEL_SUFFIX(lrn_power)(vadd(bias, vmul(coefficient, sum)), g->beta);
        LEVEL_SUFFIX(lrn_store)(y + ch * g->plane, vmul(LEVEL_SUFFIX(lrn_load)(x + ch * g->plane, n), scale), n);
        sum = LEVEL_SUFFIX(lrn_slide)(g, x, n, ch, sum);
    }
}

KERNEL_EXPORT void LEVEL_SUFFIX(dream_lrn_forward)(const dream_lrn_shape *g, const float *x, float *y, int64_t first,
                                                   int64_t end) {
    if (end - first < VL) {
        if (end > first) LEVEL_SUFFIX(lrn_forward_column)(g, x + first, y + first, end - first);
        return;
    }
    // The last column overlaps the one before it: its lanes compute the same values again.
    for (int64_t next = first;; next += VL) {
        const int64_t j = next < end - VL ? next : end - VL;
        LEVEL_SUFFIX(lrn_forward_column)(g, x + j, y + j, VL);
        if (j == end - VL) break;
    }
}

/// One column: first dx = dy·s^-beta and t = dy·x·s^-beta / s per channel (t kept in `t`, a vector per channel),
/// then dx -= factor · x · Σ t over the channels whose window holds this one, again with a running sum.
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(lrn_backward_column)(const dream_lrn_shape *g, const float *x,
                                                                                      const float *dy, float *dx, int64_t n,
                                                                                      float *t) {
    const int64_t c = g->channels, plane = g->plane;
    const vf bias = vset1(g->bias), coefficient = vset1(g->coefficient);
    const vf factor = vset1(g->factor);
    vf sum = LEVEL_SUFFIX(lrn_first_sum)(g, x, n);
    for (int64_t ch = 0; ch < c; ch++) {
        const vf s = vadd(bias, vmul(coefficient, sum));
        const vf scale = LEVEL_SUFFIX(lrn_power)(s, g->beta);
        const vf gradient = LEVEL_SUFFIX(lrn_load)(dy + ch * plane, n), v = LEVEL_SUFFIX(lrn_load)(x + ch * plane, n);
        LEVEL_SUFFIX(lrn_store)(dx + ch * plane, vmul(gradient, scale), n);
        vstore(t + ch * VL, vdiv(vmul(vmul(gradient, v), scale), s));
        sum = LEVEL_SUFFIX(lrn_slide)(g, x, n, ch, sum);
    }
    // Channel j receives from every i whose window holds j: i in [j - after, j + before].
    vf running = vzero();
    const int64_t last = g->before < c - 1 ? g->before : c - 1;
    for (int64_t k = 0; k <= last; k++) running = vadd(running, vload(t + k * VL));
    for (int64_t ch = 0; ch < c; ch++) {
        float *d = dx + ch * plane;
        const vf v = LEVEL_SUFFIX(lrn_load)(x + ch * plane, n);
        LEVEL_SUFFIX(lrn_store)(d, vsub(LEVEL_SUFFIX(lrn_load)(d, n), vmul(vmul(factor, v), running)), n);
        const int64_t entering = ch + 1 + g->before, leaving = ch - g->after;
        if (entering < c) running = vadd(running, vload(t + entering * VL));
        if (leaving >= 0) running = vsub(running, vload(t + leaving * VL));
    }
}

KERNEL_EXPORT void LEVEL_SUFFIX(dream_lrn_backward)(const dream_lrn_shape *g, const float *x, const float *dy, float *dx,
                                                    int64_t first, int64_t end, float *t) {
    if (end - first < VL) {
        if (end > first) LEVEL_SUFFIX(lrn_backward_column)(g, x + first, dy + first, dx + first, end - first, t);
        return;
    }
    for (int64_t next = first;; next += VL) {
        const int64_t j = next < end - VL ? next : end - VL;
        LEVEL_SUFFIX(lrn_backward_column)(g, x + j, dy + j, dx + j, VL, t);
        if (j == end - VL) break;
    }
}

// MARK: - Plane means (GlobalAveragePool)
//
// Each plane is summed as DREAM_MEAN_PARTIALS interleaved partial sums (partial k takes elements i ≡ k mod 32, in
// order), combined by a fixed pairwise tree: the same operations in the same order at every level (32 is a multiple
// of every VL), so every level gives the same bits; and the error bound is that of 32 short sums, not one long one.

KERNEL_EXPORT void LEVEL_SUFFIX(dream_plane_means)(const float *x, int64_t size, float *y, int64_t first, int64_t end) {
    enum { VECTORS = DREAM_MEAN_PARTIALS / VL };
    const int64_t blocks_end = size - size % DREAM_MEAN_PARTIALS;
    for (int64_t plane = first; plane < end; plane++) {
        const float *p = x + plane * size;
        vf acc[VECTORS];
        for (int k = 0; k < VECTORS; k++) acc[k] = vzero();
        int64_t i = 0;
        for (; i < blocks_end; i += DREAM_MEAN_PARTIALS)
            for (int k = 0; k < VECTORS; k++) acc[k] = vadd(acc[k], vload(p + i + k * VL));
        // The tail: the missing lanes add +0, which changes no partial (a partial is never -0: it starts at +0).
        for (int k = 0; k < VECTORS; k++) {
            const int64_t n = size - i - k * VL;
            if (n >= VL) acc[k] = vadd(acc[k], vload(p + i + k * VL));
            else if (n > 0) acc[k] = vadd(acc[k], vload_n(p + i + k * VL, n));
        }
        float parts[DREAM_MEAN_PARTIALS];
        for (int k = 0; k < VECTORS; k++) vstore(parts + k * VL, acc[k]);
        for (int width = DREAM_MEAN_PARTIALS / 2; width >= 1; width /= 2)
            for (int k = 0; k < width; k++) parts[k] = parts[k] + parts[k + width];
        y[plane] = size == 0 ? 0.0f : parts[0] / (float)size;
    }
}
