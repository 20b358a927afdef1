// A grouped convolution's GEMM read straight from its zero-padded image copy (GroupedConvolution.swift), written in
// the vocabulary of Levels.h and compiled with the packed GEMM (GemmBaseline.c, GemmAVX2.c). Output positions are
// numbered on the copy's pitch, q = oy·pitch + ox with ox < pitch, so that row p = (channel, tap) of B is the copy
// itself from offset[p] on: every strip of 2·VL columns is two plain loads per step of p, no packing and no lane
// masks; the columns with ox >= outW are computed and dropped by the caller. Tiles of up to GEMM_MR rows × 2·VL
// columns, 2·rows accumulator vectors, rows broadcasts of A (read in place) and two loads of B per step of p.
// Each element's sum is 0 + bias, then the products in increasing p, with the packed GEMM's roundings: the same
// bits as its tiles (GemmBodies.h).
// Included right after GemmBodies.h, whose includes (Gemm.h, Epilogue.h, GemmSizes.h) it uses.

/// c[i][j] = epilogue(0 + bias[i] + Σ_p a[i·k + p] · b[offsets[p] + j]) for i < rows, j < 2·VL.
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(grouped_tile)(const int rows, int64_t k, const float *a,
                                                                             const float *b, const int64_t *offsets,
                                                                             float *c, int64_t ldc, const float *bias,
                                                                             dream_epilogue e) {
    vf acc[GEMM_MR][2];
    for (int i = 0; i < rows; i++) {
        const vf start = bias ? vadd(vzero(), vset1(bias[i])) : vzero();
        acc[i][0] = acc[i][1] = start;
    }
    for (int64_t p = 0; p < k; p++) {
        const float *bp = b + offsets[p];
        const vf b0 = vload(bp), b1 = vload(bp + VL);
        for (int i = 0; i < rows; i++) {
            const vf t = vset1(a[i * k + p]);
            acc[i][0] = vmadd(acc[i][0], t, b0);
            acc[i][1] = vmadd(acc[i][1], t, b1);
        }
    }
    if (e.kind != DREAM_EPILOGUE_NONE) {
        const vf ea = vset1(e.a), eb = vset1(e.b);
        for (int i = 0; i < rows; i++) {
            acc[i][0] = LEVEL_SUFFIX(epilogue)(acc[i][0], e.kind, ea, eb);
            acc[i][1] = LEVEL_SUFFIX(epilogue)(acc[i][1], e.kind, ea, eb);
        }
    }
    for (int i = 0; i < rows; i++) {
        vstore(c + i * ldc, acc[i][0]);
        vstore(c + i * ldc + VL, acc[i][1]);
    }
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
