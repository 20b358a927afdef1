// A grouped convolution's GEMM read straight from its zero-padded image copy (GroupedConvolution.swift), written in
// the vocabulary of Levels.h and compiled with the packed GEMM (GemmBaseline.c, GemmAVX2.c). Output positions are
// numbered on the copy's pitch, q = oy·pitch + ox with ox < pitch, so that row p = (channel, tap) of B is the copy
// itself from offset[p] on: every strip of 2·VL columns is two plain loads per step of p, no packing and no lane
// masks; the columns with ox >= outW are computed and dropped by the caller. Tiles of up to GEMM_MR rows × 2·VL
// columns, 2·rows accumulator vectors, rows broadcasts of A (read in place) and two loads of B per step of p.
// Each element's sum is 0 + bias, then the products in increasing p, with the packed GEMM's roundings: the same
// bits as its tiles (GemmBodies.h).
// Included right after GemmBodies.h, whose includes (Gemm.h, Epilogue.h, GemmSizes.h) it uses.

/// c[i][j] = epilogue(0 + bias[i] + Σ_p a[i·k + p] · b[offsets[p] + j]) for i < rows, j < 2·VL. The accumulators
/// are named variables, not an array, so that they stay in registers (an array of them was partly kept on the stack
/// by the compiler); `rows` is a constant at every call, and the rows past it compile away.
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(grouped_tile)(const int rows, int64_t k, const float *a,
                                                                             const float *b, const int64_t *offsets,
                                                                             float *c, int64_t ldc, const float *bias,
                                                                             dream_epilogue e) {
    vf c00 = vzero(), c01 = vzero(), c10 = vzero(), c11 = vzero(), c20 = vzero(), c21 = vzero();
    vf c30 = vzero(), c31 = vzero(), c40 = vzero(), c41 = vzero(), c50 = vzero(), c51 = vzero();
    const float *a0 = a, *a1 = a + (rows > 1 ? 1 : 0) * k, *a2 = a + (rows > 2 ? 2 : 0) * k;
    const float *a3 = a + (rows > 3 ? 3 : 0) * k, *a4 = a + (rows > 4 ? 4 : 0) * k, *a5 = a + (rows > 5 ? 5 : 0) * k;
#define GROUPED_START(i, x0, x1)                                                                                      \
    if (rows > i && bias) {                                                                                           \
        x0 = vadd(vzero(), vset1(bias[i]));                                                                           \
        x1 = x0;                                                                                                      \
    }
    GROUPED_START(0, c00, c01) GROUPED_START(1, c10, c11) GROUPED_START(2, c20, c21)
    GROUPED_START(3, c30, c31) GROUPED_START(4, c40, c41) GROUPED_START(5, c50, c51)
#undef GROUPED_START
    for (int64_t p = 0; p < k; p++) {
        const float *bp = b + offsets[p];
        const vf b0 = vload(bp), b1 = vload(bp + VL);
        vf t;
        t = vset1(a0[p]); c00 = vmadd(c00, t, b0); c01 = vmadd(c01, t, b1);
        if (rows > 1) { t = vset1(a1[p]); c10 = vmadd(c10, t, b0); c11 = vmadd(c11, t, b1); }
        if (rows > 2) { t = vset1(a2[p]); c20 = vmadd(c20, t, b0); c21 = vmadd(c21, t, b1); }
        if (rows > 3) { t = vset1(a3[p]); c30 = vmadd(c30, t, b0); c31 = vmadd(c31, t, b1); }
        if (rows > 4) { t = vset1(a4[p]); c40 = vmadd(c40, t, b0); c41 = vmadd(c41, t, b1); }
        if (rows > 5) { t = vset1(a5[p]); c50 = vmadd(c50, t, b0); c51 = vmadd(c51, t, b1); }
    }
    if (e.kind != DREAM_EPILOGUE_NONE) {
        const vf ea = vset1(e.a), eb = vset1(e.b);
#define GROUPED_EPILOGUE(i, x0, x1)                                                                                   \
    if (rows > i) {                                                                                                   \
        x0 = LEVEL_SUFFIX(epilogue)(x0, e.kind, ea, eb);                                                              \
        x1 = LEVEL_SUFFIX(epilogue)(x1, e.kind, ea, eb);                                                              \
    }
        GROUPED_EPILOGUE(0, c00, c01) GROUPED_EPILOGUE(1, c10, c11) GROUPED_EPILOGUE(2, c20, c21)
        GROUPED_EPILOGUE(3, c30, c31) GROUPED_EPILOGUE(4, c40, c41) GROUPED_EPILOGUE(5, c50, c51)
#undef GROUPED_EPILOGUE
    }
#define GROUPED_STORE(i, x0, x1)                                                                                      \
    if (rows > i) {                                                                                                   \
        vstore(c + i * ldc, x0);                                                                                      \
        vstore(c + i * ldc + VL, x1);                                                                                 \
    }
    GROUPED_STORE(0, c00, c01) GROUPED_STORE(1, c10, c11) GROUPED_STORE(2, c20, c21)
    GROUPED_STORE(3, c30, c31) GROUPED_STORE(4, c40, c41) GROUPED_STORE(5, c50, c51)
#undef GROUPED_STORE
}

KERNEL_EXPORT void LEVEL_SUFFIX(dream_grouped_block)(const float *a, int64_t m, int64_t k, const float *b,
                                                     const int64_t *offsets, float *c, int64_t ldc, int64_t columns,
                                                     const float *bias, dream_epilogue e) {
    // Strips outermost: one strip of B (k rows of 2·VL floats) stays in L1 while every row tile of A goes by it.
    for (int64_t j = 0; j < columns; j += 2 * VL) {
        for (int64_t i = 0, rows; i < m; i += rows) {
            // Tiles of 6 rows, but the last 7 to 11 rows as two tiles of nearly equal height (8 = 4 + 4, not
            // 6 + 2: a 2-row tile loads as much of B per product as it computes).
            const int64_t left = m - i;
            rows = left <= GEMM_MR ? left : left < 2 * GEMM_MR ? (left + 1) / 2 : GEMM_MR;
            const float *ai = a + i * k, *bi = bias ? bias + i : NULL;
            float *ci = c + i * ldc + j;
            switch (rows) {
            case 6: LEVEL_SUFFIX(grouped_tile)(6, k, ai, b + j, offsets, ci, ldc, bi, e); break;
            case 5: LEVEL_SUFFIX(grouped_tile)(5, k, ai, b + j, offsets, ci, ldc, bi, e); break;
            case 4: LEVEL_SUFFIX(grouped_tile)(4, k, ai, b + j, offsets, ci, ldc, bi, e); break;
            case 3: LEVEL_SUFFIX(grouped_tile)(3, k, ai, b + j, offsets, ci, ldc, bi, e); break;
            case 2: LEVEL_SUFFIX(grouped_tile)(2, k, ai, b + j, offsets, ci, ldc, bi, e); break;
            default: LEVEL_SUFFIX(grouped_tile)(1, k, ai, b + j, offsets, ci, ldc, bi, e); break;
            }
        }
    }
}
