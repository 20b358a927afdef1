// Routes dream_gemm_block to the compilation of the level in use (dream_simd_current_level).
#include "Gemm.h"
#include "GemmSizes.h"

void dream_gemm_block_baseline(const dream_gemm_problem *, int64_t, int64_t, int64_t, int64_t, float *);
void dream_gemm_strided_copy_baseline(const float *, int64_t, int64_t, float *);
void dream_grouped_block_baseline(const float *, int64_t, int64_t, const float *, const int64_t *, float *, int64_t,
                                  int64_t, const float *, dream_epilogue);
void dream_implicit_plane_baseline(const float *, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float *, int64_t,
                                   int64_t);
void dream_grouped_store_baseline(const float *, int64_t, int64_t, int64_t, int64_t, int64_t, float *, int64_t);
void dream_implicit_planes_baseline(const float *, int64_t, int64_t, int64_t, int64_t, const int64_t *, int64_t, const int64_t *, int64_t, int64_t,
                                    int64_t, int64_t, int64_t, int64_t, float *, int64_t, int64_t);
#if defined(__x86_64__)
void dream_implicit_planes_avx2(const float *, int64_t, int64_t, int64_t, int64_t, const int64_t *, int64_t, const int64_t *, int64_t, int64_t,
                                    int64_t, int64_t, int64_t, int64_t, float *, int64_t, int64_t);
void dream_grouped_store_avx2(const float *, int64_t, int64_t, int64_t, int64_t, int64_t, float *, int64_t);
void dream_implicit_plane_avx2(const float *, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float *, int64_t,
                               int64_t);
void dream_gemm_block_avx2(const dream_gemm_problem *, int64_t, int64_t, int64_t, int64_t, float *);
void dream_gemm_strided_copy_avx2(const float *, int64_t, int64_t, float *);
void dream_grouped_block_avx2(const float *, int64_t, int64_t, const float *, const int64_t *, float *, int64_t, int64_t,
                              const float *, dream_epilogue);
#endif

// The packed panel of B (GEMM_KC × GEMM_NC) of GemmBodies.h.
int64_t dream_gemm_scratch_floats(void) { return GEMM_KC * GEMM_NC; }

void dream_gemm_block(const dream_gemm_problem *problem, int64_t row_first, int64_t row_end, int64_t column_first,
                      int64_t column_end, float *scratch) {
#if defined(__x86_64__)
    if (dream_simd_current_level() >= DREAM_SIMD_AVX2) {
        dream_gemm_block_avx2(problem, row_first, row_end, column_first, column_end, scratch);
        return;
    }
#endif
    dream_gemm_block_baseline(problem, row_first, row_end, column_first, column_end, scratch);
}

void dream_gemm_strided_copy(const float *src, int64_t stride, int64_t count, float *dst) {
#if defined(__x86_64__)
    if (dream_simd_current_level() >= DREAM_SIMD_AVX2) {
        dream_gemm_strided_copy_avx2(src, stride, count, dst);
        return;
    }
#endif
    dream_gemm_strided_copy_baseline(src, stride, count, dst);
}

void dream_grouped_block(const float *a, int64_t m, int64_t k, const float *b, const int64_t *offsets, float *c,
                         int64_t ldc, int64_t columns, const float *bias, dream_epilogue epilogue) {
#if defined(__x86_64__)
    if (dream_simd_current_level() >= DREAM_SIMD_AVX2) {
        dream_grouped_block_avx2(a, m, k, b, offsets, c, ldc, columns, bias, epilogue);
        return;
    }
#endif
    dream_grouped_block_baseline(a, m, k, b, offsets, c, ldc, columns, bias, epilogue);
}

void dream_implicit_plane(const float *channel, int64_t h, int64_t w, int64_t sH, int64_t sW, int64_t row_offset,
                          int64_t column_offset, float *plane, int64_t plane_h, int64_t plane_w) {
#if defined(__x86_64__)
    if (dream_simd_current_level() >= DREAM_SIMD_AVX2) {
        dream_implicit_plane_avx2(channel, h, w, sH, sW, row_offset, column_offset, plane, plane_h, plane_w);
        return;
    }
#endif
    dream_implicit_plane_baseline(channel, h, w, sH, sW, row_offset, column_offset, plane, plane_h, plane_w);
}

void dream_grouped_store(const float *src, int64_t ld, int64_t pitch, int64_t channels, int64_t rows, int64_t width,
                         float *dst, int64_t dst_stride) {
#if defined(__x86_64__)
    if (dream_simd_current_level() >= DREAM_SIMD_AVX2) {
        dream_grouped_store_avx2(src, ld, pitch, channels, rows, width, dst, dst_stride);
        return;
    }
#endif
    dream_grouped_store_baseline(src, ld, pitch, channels, rows, width, dst, dst_stride);
}

void dream_implicit_planes(const float *image, int64_t h, int64_t w, int64_t sH, int64_t sW, const int64_t *row_phases,
                           int64_t row_count, const int64_t *column_phases, int64_t column_count, int64_t pad_top,
                           int64_t pad_left, int64_t first_output_row, int64_t plane_first, int64_t plane_end,
                           float *scratch, int64_t plane_h, int64_t plane_w) {
#if defined(__x86_64__)
    if (dream_simd_current_level() >= DREAM_SIMD_AVX2) {
        dream_implicit_planes_avx2(image, h, w, sH, sW, row_phases, row_count, column_phases, column_count, pad_top,
                                   pad_left, first_output_row, plane_first, plane_end, scratch, plane_h, plane_w);
        return;
    }
#endif
    dream_implicit_planes_baseline(image, h, w, sH, sW, row_phases, row_count, column_phases, column_count, pad_top,
                                   pad_left, first_output_row, plane_first, plane_end, scratch, plane_h, plane_w);
}
