// The packed GEMM of Gemm.h, written in the vocabulary of Levels.h and compiled once per level (GemmBaseline.c,
// GemmAVX2.c). The classic blocking: for each panel of at most GEMM_NC columns and each slice of GEMM_KC of the
// inner dimension, B's panel is packed into strips of GEMM_NR columns (p-major), then for each GEMM_MC rows a
// register-blocked micro-kernel computes each MR × NR tile of C from one strip of B and MR rows of A, read in place
// (packing A measured slower: a layer with 7x7 maps reuses each element of A only 49 times): 2·MR accumulator
// vectors, two loads of B and MR broadcasts of A per step of p. The first slice of p starts the accumulators from
// C₀ + bias, the others from C; the last applies the epilogue before the store. Tiles on the edges of the block run
// on a zero-padded copy, so the micro-kernel has no tails; a last strip of at most VL columns runs a half-wide tile.
#include "Gemm.h"
#include "Epilogue.h"

#include "GemmSizes.h"
#define GEMM_NR (2 * VL)
_Static_assert(GEMM_MC % GEMM_MR == 0 && GEMM_NC % GEMM_NR == 0, "GEMM blocks are whole strips");

/// Strips of the implicit B (Gemm.h: b_offsets): row p of a strip is NR consecutive output positions q0 + j, read
/// from b + b_offsets[p] + start + j + r·gap, where r counts the output rows the strip has crossed before lane j
/// (gap = pitch - width): a few runs of consecutive floats. On maps at least VL wide each half-strip vector meets at
/// most two runs: it is two loads (at the displacements of its first and last run) merged by a lane mask computed
/// once per strip, or one load when the whole strip is one run. Narrower maps and the last, partial strip gather
/// lane by lane. Reads reach at most VL - 1 floats past the last needed element, never below b + b_offsets[p] + start.
KERNEL void LEVEL_SUFFIX(gemm_pack_implicit_b)(const dream_gemm_problem *g, int64_t p0, int64_t kc, int64_t column,
                                               int64_t columns, float *packed) {
    static const float ramp[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    _Static_assert(GEMM_NR <= 16, "the lane ramp covers a strip");
    const int64_t width = g->b_width, pitch = g->b_pitch, gap = pitch - width;
    const int64_t *offsets = g->b_offsets + p0;
    for (int64_t j0 = 0; j0 < columns; j0 += GEMM_NR) {
        const int64_t nr = columns - j0 < GEMM_NR ? columns - j0 : GEMM_NR;
        float *strip = packed + j0 * kc;
        const int64_t q0 = column + j0, x0 = q0 % width;
        const float *base = g->b + q0 / width * pitch + x0;
        if (nr == GEMM_NR && x0 + GEMM_NR <= width) {
            for (int64_t p = 0; p < kc; p++) {
                const float *src = base + offsets[p];
                vstore(strip + p * GEMM_NR, vload(src));
                vstore(strip + p * GEMM_NR + VL, vload(src + VL));
            }
        } else if (nr == GEMM_NR && width >= VL) {
            // Lane j of the strip is in run r = number of row ends before it: (x0 + j) / width.
            int64_t lo[2], hi[2];
            vmask later[2];
            for (int h = 0; h < 2; h++) {
                const int64_t first = h * VL, last = first + VL - 1;
                const int64_t r0 = (x0 + first) / width, r1 = (x0 + last) / width;  // r1 <= r0 + 1 as width >= VL
                lo[h] = r0 * gap + first;
                hi[h] = r1 * gap + first;
                // The lanes of run r1: from its first lane, r1·width - x0, on (none past the half when r1 == r0).
                const int64_t split = r1 > r0 ? r1 * width - x0 - first : VL;
                later[h] = vge(vload(ramp), vset1((float)split));
            }
            for (int64_t p = 0; p < kc; p++) {
                const float *src = base + offsets[p];
                vstore(strip + p * GEMM_NR, vselect(later[0], vload(src + hi[0]), vload(src + lo[0])));
                vstore(strip + p * GEMM_NR + VL, vselect(later[1], vload(src + hi[1]), vload(src + lo[1])));
            }
        } else {
            int64_t lane[GEMM_NR];
            for (int64_t j = 0; j < GEMM_NR; j++) lane[j] = (x0 + j) / width * gap + j;
            for (int64_t p = 0; p < kc; p++) {
                const float *src = base + offsets[p];
                for (int64_t j = 0; j < GEMM_NR; j++) strip[p * GEMM_NR + j] = j < nr ? src[lane[j]] : 0;
            }
        }
    }
}

/// B's [p0, p0 + kc) × columns [column, column + columns) -> strips of NR columns, each kc × NR (zero-padded).
KERNEL void LEVEL_SUFFIX(gemm_pack_b)(const dream_gemm_problem *g, int64_t p0, int64_t kc, int64_t column,
                                      int64_t columns, float *packed) {
    if (g->b_offsets) {
        LEVEL_SUFFIX(gemm_pack_implicit_b)(g, p0, kc, column, columns, packed);
        return;
    }
    const int64_t rs = g->b_row_stride, cs = g->b_column_stride;
    for (int64_t j0 = 0; j0 < columns; j0 += GEMM_NR) {
        const int64_t nr = columns - j0 < GEMM_NR ? columns - j0 : GEMM_NR;
        float *strip = packed + j0 * kc;
        const float *src = g->b + p0 * rs + (column + j0) * cs;
        if (cs == 1) {
            if (nr == GEMM_NR) {
                for (int64_t p = 0; p < kc; p++) {
                    vstore(strip + p * GEMM_NR, vload(src + p * rs));
                    vstore(strip + p * GEMM_NR + VL, vload(src + p * rs + VL));
                }
            } else {
                for (int64_t p = 0; p < kc; p++)
                    for (int64_t j = 0; j < GEMM_NR; j++) strip[p * GEMM_NR + j] = j < nr ? src[p * rs + j] : 0;
            }
        } else {
            // Columns contiguous along p (a transposed B): read each column in order.
            for (int64_t j = 0; j < GEMM_NR; j++) {
                if (j < nr) {
                    for (int64_t p = 0; p < kc; p++) strip[p * GEMM_NR + j] = src[j * cs + p * rs];
                } else {
                    for (int64_t p = 0; p < kc; p++) strip[p * GEMM_NR + j] = 0;
                }
            }
        }
    }
}

/// One MR × NR tile: c = [epilogue](start + Σ_p A·b[p]), start = (load ? c : 0) + bias (bias may be NULL); row i of A's
/// slice is a[i][0], a[i][as], a[i][2·as]...
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(gemm_tile)(int64_t kc, const float *const *a,
                                                                          int64_t as, const float *b, float *c,
                                                                          int64_t ldc, int load, const float *bias,
                                                                          int finish, dream_epilogue e) {
    vf c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    if (load) {
        c00 = vload(c + 0 * ldc); c01 = vload(c + 0 * ldc + VL);
        c10 = vload(c + 1 * ldc); c11 = vload(c + 1 * ldc + VL);
        c20 = vload(c + 2 * ldc); c21 = vload(c + 2 * ldc + VL);
        c30 = vload(c + 3 * ldc); c31 = vload(c + 3 * ldc + VL);
        c40 = vload(c + 4 * ldc); c41 = vload(c + 4 * ldc + VL);
        c50 = vload(c + 5 * ldc); c51 = vload(c + 5 * ldc + VL);
    } else {
        c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = vzero();
    }
    if (bias) {
        vf t;
        t = vset1(bias[0]); c00 = vadd(c00, t); c01 = vadd(c01, t);
        t = vset1(bias[1]); c10 = vadd(c10, t); c11 = vadd(c11, t);
        t = vset1(bias[2]); c20 = vadd(c20, t); c21 = vadd(c21, t);
        t = vset1(bias[3]); c30 = vadd(c30, t); c31 = vadd(c31, t);
        t = vset1(bias[4]); c40 = vadd(c40, t); c41 = vadd(c41, t);
        t = vset1(bias[5]); c50 = vadd(c50, t); c51 = vadd(c51, t);
    }
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
    for (int64_t p = 0, q = 0; p < kc; p++, q += as) {
        const vf b0 = vload(b), b1 = vload(b + VL);
        vf t;
        t = vset1(a0[q]); c00 = vmadd(c00, t, b0); c01 = vmadd(c01, t, b1);
        t = vset1(a1[q]); c10 = vmadd(c10, t, b0); c11 = vmadd(c11, t, b1);
        t = vset1(a2[q]); c20 = vmadd(c20, t, b0); c21 = vmadd(c21, t, b1);
        t = vset1(a3[q]); c30 = vmadd(c30, t, b0); c31 = vmadd(c31, t, b1);
        t = vset1(a4[q]); c40 = vmadd(c40, t, b0); c41 = vmadd(c41, t, b1);
        t = vset1(a5[q]); c50 = vmadd(c50, t, b0); c51 = vmadd(c51, t, b1);
        b += GEMM_NR;
    }
    if (finish && e.kind != DREAM_EPILOGUE_NONE) {
        const vf ea = vset1(e.a), eb = vset1(e.b);
#define GEMM_EPILOGUE(v) v = LEVEL_SUFFIX(epilogue)(v, e.kind, ea, eb);
        GEMM_EPILOGUE(c00) GEMM_EPILOGUE(c01) GEMM_EPILOGUE(c10) GEMM_EPILOGUE(c11)
        GEMM_EPILOGUE(c20) GEMM_EPILOGUE(c21) GEMM_EPILOGUE(c30) GEMM_EPILOGUE(c31)
        GEMM_EPILOGUE(c40) GEMM_EPILOGUE(c41) GEMM_EPILOGUE(c50) GEMM_EPILOGUE(c51)
#undef GEMM_EPILOGUE
    }
    vstore(c + 0 * ldc, c00); vstore(c + 0 * ldc + VL, c01);
    vstore(c + 1 * ldc, c10); vstore(c + 1 * ldc + VL, c11);
    vstore(c + 2 * ldc, c20); vstore(c + 2 * ldc + VL, c21);
    vstore(c + 3 * ldc, c30); vstore(c + 3 * ldc + VL, c31);
    vstore(c + 4 * ldc, c40); vstore(c + 4 * ldc + VL, c41);
    vstore(c + 5 * ldc, c50); vstore(c + 5 * ldc + VL, c51);
}

/// The same for a tile of MR × VL (the first half of a strip of B): the last strip of a narrow block (7x7 maps have
/// 49 columns: three strips and one column), at half the cost of a full tile.
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(gemm_half_tile)(int64_t kc, const float *const *a,
                                                                               int64_t as, const float *b, float *c,
                                                                               int64_t ldc, int load, const float *bias,
                                                                               int finish, dream_epilogue e) {
    vf c0, c1, c2, c3, c4, c5;
    if (load) {
        c0 = vload(c + 0 * ldc); c1 = vload(c + 1 * ldc); c2 = vload(c + 2 * ldc);
        c3 = vload(c + 3 * ldc); c4 = vload(c + 4 * ldc); c5 = vload(c + 5 * ldc);
    } else {
        c0 = c1 = c2 = c3 = c4 = c5 = vzero();
    }
    if (bias) {
        c0 = vadd(c0, vset1(bias[0])); c1 = vadd(c1, vset1(bias[1])); c2 = vadd(c2, vset1(bias[2]));
        c3 = vadd(c3, vset1(bias[3])); c4 = vadd(c4, vset1(bias[4])); c5 = vadd(c5, vset1(bias[5]));
    }
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
    for (int64_t p = 0, q = 0; p < kc; p++, q += as) {
        const vf b0 = vload(b);
        c0 = vmadd(c0, vset1(a0[q]), b0); c1 = vmadd(c1, vset1(a1[q]), b0); c2 = vmadd(c2, vset1(a2[q]), b0);
        c3 = vmadd(c3, vset1(a3[q]), b0); c4 = vmadd(c4, vset1(a4[q]), b0); c5 = vmadd(c5, vset1(a5[q]), b0);
        b += GEMM_NR;
    }
    if (finish && e.kind != DREAM_EPILOGUE_NONE) {
        const vf ea = vset1(e.a), eb = vset1(e.b);
        c0 = LEVEL_SUFFIX(epilogue)(c0, e.kind, ea, eb); c1 = LEVEL_SUFFIX(epilogue)(c1, e.kind, ea, eb);
        c2 = LEVEL_SUFFIX(epilogue)(c2, e.kind, ea, eb); c3 = LEVEL_SUFFIX(epilogue)(c3, e.kind, ea, eb);
        c4 = LEVEL_SUFFIX(epilogue)(c4, e.kind, ea, eb); c5 = LEVEL_SUFFIX(epilogue)(c5, e.kind, ea, eb);
    }
    vstore(c + 0 * ldc, c0); vstore(c + 1 * ldc, c1); vstore(c + 2 * ldc, c2);
    vstore(c + 3 * ldc, c3); vstore(c + 4 * ldc, c4); vstore(c + 5 * ldc, c5);
}

/// A tile of `rows` < MR rows and `halves` vectors (2: a whole strip of B, 1: its first half), stored straight to C:
/// the rows a block's edge leaves (a group of 4, 8 or 16 output channels leaves 4 or 2) at the cost of those rows
/// only. Each element's sum runs in the same order as in the full tile, so results do not depend on which tile
/// computes them. `rows` and `halves` are constants at every call (the loops unroll into registers).
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(gemm_tile_rows)(const int rows, const int halves,
                                                                               int64_t kc, const float *const *a,
                                                                               int64_t as, const float *b, float *c,
                                                                               int64_t ldc, int load, const float *bias,
                                                                               int finish, dream_epilogue e) {
    vf acc[GEMM_MR][2];
    for (int i = 0; i < rows; i++)
        for (int h = 0; h < halves; h++) acc[i][h] = load ? vload(c + i * ldc + h * VL) : vzero();
    if (bias)
        for (int i = 0; i < rows; i++) {
            const vf t = vset1(bias[i]);
            for (int h = 0; h < halves; h++) acc[i][h] = vadd(acc[i][h], t);
        }
    for (int64_t p = 0, q = 0; p < kc; p++, q += as) {
        vf bv[2];
        for (int h = 0; h < halves; h++) bv[h] = vload(b + h * VL);
        for (int i = 0; i < rows; i++) {
            const vf t = vset1(a[i][q]);
            for (int h = 0; h < halves; h++) acc[i][h] = vmadd(acc[i][h], t, bv[h]);
        }
        b += GEMM_NR;
    }
    if (finish && e.kind != DREAM_EPILOGUE_NONE) {
        const vf ea = vset1(e.a), eb = vset1(e.b);
        for (int i = 0; i < rows; i++)
            for (int h = 0; h < halves; h++) acc[i][h] = LEVEL_SUFFIX(epilogue)(acc[i][h], e.kind, ea, eb);
    }
    for (int i = 0; i < rows; i++)
        for (int h = 0; h < halves; h++) vstore(c + i * ldc + h * VL, acc[i][h]);
}

/// Tile (ir, jr) of the row block starting at ic: C rows ic + ir … (at most MR) × packed strip jr of B's panel.
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(gemm_tile_at)(const dream_gemm_problem *g, int64_t ic,
                                                                             int64_t mc, int64_t ir, int64_t jc,
                                                                             int64_t nc, int64_t jr, int64_t pc,
                                                                             int64_t kc, const float *packed_b,
                                                                             int first, int last, int load,
                                                                             float *tile, float *tile_bias,
                                                                             dream_epilogue e) {
    const int64_t ldc = g->c_row_stride;
    const int64_t nr = nc - jr < GEMM_NR ? nc - jr : GEMM_NR;
    const int64_t mr = mc - ir < GEMM_MR ? mc - ir : GEMM_MR;
    const float *b = packed_b + jr * kc;
    // Rows past the block read the tile's first row again; their results are dropped.
    const float *a[GEMM_MR];
    for (int64_t i = 0; i < GEMM_MR; i++)
        a[i] = g->a + (ic + ir + (i < mr ? i : 0)) * g->a_row_stride + pc * g->a_column_stride;
    const int64_t as = g->a_column_stride;
    float *c = g->c + (ic + ir) * ldc + jc + jr;
    const float *bias = first && g->bias ? g->bias + ic + ir : NULL;
    if (mr == GEMM_MR && nr == GEMM_NR) {
        LEVEL_SUFFIX(gemm_tile)(kc, a, as, b, c, ldc, load, bias, last, e);
        return;
    }
    // Short rows of a whole strip (or of a half strip VL wide) go straight to C.
    if (nr == GEMM_NR || nr == VL) {
        const int halves = nr == GEMM_NR ? 2 : 1;
#define GEMM_ROWS_CASE(r)                                                                                             \
    case r:                                                                                                           \
        if (halves == 2)                                                                                              \
            LEVEL_SUFFIX(gemm_tile_rows)(r, 2, kc, a, as, b, c, ldc, load, bias, last, e);                           \
        else                                                                                                          \
            LEVEL_SUFFIX(gemm_tile_rows)(r, 1, kc, a, as, b, c, ldc, load, bias, last, e);                           \
        return;
        switch (mr) {
            GEMM_ROWS_CASE(1) GEMM_ROWS_CASE(2) GEMM_ROWS_CASE(3) GEMM_ROWS_CASE(4) GEMM_ROWS_CASE(5)
        default: break;
        }
#undef GEMM_ROWS_CASE
    }
    if (bias) {
        for (int64_t i = 0; i < GEMM_MR; i++) tile_bias[i] = i < mr ? bias[i] : 0;
        bias = tile_bias;
    }
    // A full-width strip (rows short: M = 64 leaves 4) moves whole vectors.
    if (load && nr == GEMM_NR) {
        for (int64_t i = 0; i < mr; i++) {
            vstore(tile + i * GEMM_NR, vload(c + i * ldc));
            vstore(tile + i * GEMM_NR + VL, vload(c + i * ldc + VL));
        }
    } else if (load) {
        for (int64_t i = 0; i < mr; i++)
            for (int64_t j = 0; j < nr; j++) tile[i * GEMM_NR + j] = c[i * ldc + j];
    }
    if (nr <= VL)
        LEVEL_SUFFIX(gemm_half_tile)(kc, a, as, b, tile, GEMM_NR, load, bias, last, e);
    else
        LEVEL_SUFFIX(gemm_tile)(kc, a, as, b, tile, GEMM_NR, load, bias, last, e);
    if (nr == GEMM_NR) {
        for (int64_t i = 0; i < mr; i++) {
            vstore(c + i * ldc, vload(tile + i * GEMM_NR));
            vstore(c + i * ldc + VL, vload(tile + i * GEMM_NR + VL));
        }
    } else {
        for (int64_t i = 0; i < mr; i++)
            for (int64_t j = 0; j < nr; j++) c[i * ldc + j] = tile[i * GEMM_NR + j];
    }
}

KERNEL_EXPORT void LEVEL_SUFFIX(dream_gemm_block)(const dream_gemm_problem *g, int64_t row_first, int64_t row_end,
                                                  int64_t column_first, int64_t column_end, float *scratch) {
    float *packed_b = scratch;
    // Zeros in the lanes an edge tile does not use, so that they never hold a NaN or a denormal.
    float tile[GEMM_MR * GEMM_NR] = {0}, tile_bias[GEMM_MR];
    // Sigmoid and SiLU are applied to each row block once its last slice of p is stored (Epilogue.h: sigmoid_span).
    const dream_epilogue in_registers = LEVEL_SUFFIX(register_epilogue)(g->epilogue);
    for (int64_t jc = column_first; jc < column_end; jc += GEMM_NC) {
        const int64_t nc = column_end - jc < GEMM_NC ? column_end - jc : GEMM_NC;
        // At least one slice of p, so that k = 0 still writes C₀ + bias.
        for (int64_t pc = 0;; pc += GEMM_KC) {
            const int64_t kc = g->k - pc < GEMM_KC ? g->k - pc : GEMM_KC;
            const int first = pc == 0, last = pc + kc >= g->k;
            const int load = !first || g->accumulate;
            LEVEL_SUFFIX(gemm_pack_b)(g, pc, kc, jc, nc, packed_b);
            // A panel of B small enough to stay in L1/L2 while the rows go by it is swept row by row, so that C is
            // written as MR sequential streams instead of one short run per row of the block for every strip (a
            // short inner dimension and a large map: mostly stores, where 96 interleaved streams starve the
            // prefetchers); a larger panel keeps the classic order, one strip of B in L1 while A's rows go by.
            const int rows_outer = kc * nc <= GEMM_ROWS_OUTER_PANEL;
            for (int64_t ic = row_first; ic < row_end; ic += GEMM_MC) {
                const int64_t mc = row_end - ic < GEMM_MC ? row_end - ic : GEMM_MC;
                if (rows_outer) {
                    for (int64_t ir = 0; ir < mc; ir += GEMM_MR)
                        for (int64_t jr = 0; jr < nc; jr += GEMM_NR)
                            LEVEL_SUFFIX(gemm_tile_at)(g, ic, mc, ir, jc, nc, jr, pc, kc, packed_b, first, last, load,
                                                       tile, tile_bias, in_registers);
                } else {
                    for (int64_t jr = 0; jr < nc; jr += GEMM_NR)
                        for (int64_t ir = 0; ir < mc; ir += GEMM_MR)
                            LEVEL_SUFFIX(gemm_tile_at)(g, ic, mc, ir, jc, nc, jr, pc, kc, packed_b, first, last, load,
                                                       tile, tile_bias, in_registers);
                }
                if (last && EPILOGUE_IN_SPANS(g->epilogue.kind))
                    for (int64_t i = ic; i < ic + mc; i++)
                        LEVEL_SUFFIX(span_epilogue)(g->c + i * g->c_row_stride + jc, nc, g->epilogue);
            }
            if (last) break;
        }
    }
}

/// dst[t] = src[t·stride] for t < count: a row of an implicit GEMM's phase plane (a copy at stride 1; at stride 2
/// the even lanes of two loads, reading no further than src[(count - 1)·2]).
KERNEL_EXPORT void LEVEL_SUFFIX(dream_gemm_strided_copy)(const float *src, int64_t stride, int64_t count, float *dst) {
    int64_t t = 0;
    if (stride == 1) {
        memcpy(dst, src, sizeof(float) * (size_t)(count > 0 ? count : 0));
        return;
    }
    if (stride == 2)
        for (; t + VL < count; t += VL) vstore(dst + t, vevens(vload(src + 2 * t), vload(src + 2 * t + VL)));
    for (; t < count; t++) dst[t] = src[t * stride];
}

/// dst[t] = v[t] for t < n <= VL; the whole vector when it ends before `limit` (the lanes past n then land on
/// floats written again later). Masked stores are slow on AMD's cores: otherwise the lanes are stored one by one.
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(store_first)(float *dst, vf v, int64_t n,
                                                                            const float *limit) {
    if (n == VL || dst + VL <= limit) {
        vstore(dst, v);
    } else {
        float lanes[VL];
        vstore(lanes, v);
        for (int64_t t = 0; t < n; t++) dst[t] = lanes[t];
    }
}

/// dst[t] = 0 for t < n (and possibly zeros further, before `limit`).
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(zero_run)(float *dst, int64_t n, const float *limit) {
    int64_t t = 0;
    for (; t + VL <= n; t += VL) vstore(dst + t, vzero());
    if (t < n) LEVEL_SUFFIX(store_first)(dst + t, vzero(), n - t, limit);
}

/// One phase plane of an implicit GEMM's zero-padded image copy (ImplicitLayout in PackedConvolution.swift):
/// plane[r][t] = channel[r·sH + row_offset][t·sW + column_offset], 0 where that lies outside the h × w channel.
/// Rows are short on small maps (8 floats for a 7x7 output), so they are written in whole vectors that may run past
/// the part being written into the parts written after it (the copy, the zeros after it, the next rows), never
/// past the plane.
KERNEL_EXPORT void LEVEL_SUFFIX(dream_implicit_plane)(const float *channel, int64_t h, int64_t w, int64_t sH, int64_t sW,
                                                      int64_t row_offset, int64_t column_offset, float *plane,
                                                      int64_t plane_h, int64_t plane_w) {
    // Columns t whose input column t·sW + column_offset lies in [0, w) (as Im2Col.validOutputRange).
    int64_t first = column_offset >= 0 ? 0 : (-column_offset + sW - 1) / sW;
    const int64_t last_input = w - 1 - column_offset;
    int64_t end = last_input < 0 ? 0 : last_input / sW + 1;
    if (end > plane_w) end = plane_w;
    if (first > end) first = end;
    const int64_t count = end - first;
    const float *limit = plane + plane_h * plane_w;
    for (int64_t r = 0; r < plane_h; r++) {
        float *dst = plane + r * plane_w;
        const int64_t iy = r * sH + row_offset;
        if (iy < 0 || iy >= h || count == 0) {
            LEVEL_SUFFIX(zero_run)(dst, plane_w, limit);
            continue;
        }
        LEVEL_SUFFIX(zero_run)(dst, first, limit);
        const float *src = channel + iy * w + first * sW + column_offset;
        float *out = dst + first;
        int64_t t = 0;
        // Never reading past src[(count - 1)·sW]: the last partial vector through masked loads.
        if (sW == 1) {
            for (; t + VL <= count; t += VL) vstore(out + t, vload(src + t));
            if (t < count) LEVEL_SUFFIX(store_first)(out + t, vload_n(src + t, count - t), count - t, limit);
        } else if (sW == 2) {
            for (; t + VL < count; t += VL) vstore(out + t, vevens(vload(src + 2 * t), vload(src + 2 * t + VL)));
            if (t < count) {
                const int64_t n = count - t, need = 2 * n - 1;  // src[2t] ... src[2t + 2(n - 1)]
                const vf lo = need < VL ? vload_n(src + 2 * t, need) : vload(src + 2 * t);
                const vf hi = need > VL ? vload_n(src + 2 * t + VL, need - VL) : vzero();
                LEVEL_SUFFIX(store_first)(out + t, vevens(lo, hi), n, limit);
            }
        } else {
            for (; t < count; t++) out[t] = src[t * sW];
        }
        LEVEL_SUFFIX(zero_run)(dst + end, plane_w - end, limit);
    }
}

/// dst[i·dst_stride + r·width + t] = src[i·ld + r·pitch + t] for i < channels, r < rows, t < width: the valid columns
/// of a grouped convolution's output block, computed on the copy's pitch (GroupedBodies.h), into y.
KERNEL_EXPORT void LEVEL_SUFFIX(dream_grouped_store)(const float *src, int64_t ld, int64_t pitch, int64_t channels,
                                                     int64_t rows, int64_t width, float *dst, int64_t dst_stride) {
    for (int64_t i = 0; i < channels; i++) {
        for (int64_t r = 0; r < rows; r++) {
            const float *from = src + i * ld + r * pitch;
            float *to = dst + i * dst_stride + r * width;
            int64_t t = 0;
            for (; t + VL <= width; t += VL) vstore(to + t, vload(from + t));
            for (; t < width; t++) to[t] = from[t];
        }
    }
}

/// Planes [plane_first, plane_end) (channel · phases + phase, phases = row_count × column_count) of the copy of a
/// band from output row first_output_row on: dream_implicit_plane for each, the phase (ry, rx) = (row_phases[phase /
/// column_count], column_phases[phase % column_count]), plane p at scratch + p·plane_h·plane_w.
KERNEL_EXPORT void LEVEL_SUFFIX(dream_implicit_planes)(const float *image, int64_t h, int64_t w, int64_t sH, int64_t sW,
                                                       const int64_t *row_phases, int64_t row_count,
                                                       const int64_t *column_phases, int64_t column_count,
                                                       int64_t pad_top, int64_t pad_left, int64_t first_output_row,
                                                       int64_t plane_first, int64_t plane_end, float *scratch,
                                                       int64_t plane_h, int64_t plane_w) {
    const int64_t phases = row_count * column_count;
    for (int64_t plane = plane_first; plane < plane_end; plane++) {
        const int64_t c = plane / phases, phase = plane % phases;
        const int64_t ry = row_phases[phase / column_count], rx = column_phases[phase % column_count];
        LEVEL_SUFFIX(dream_implicit_plane)(image + c * h * w, h, w, sH, sW, first_output_row * sH + ry - pad_top,
                                           rx - pad_left, scratch + plane * plane_h * plane_w, plane_h, plane_w);
    }
}

