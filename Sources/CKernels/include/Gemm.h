// A packed single-precision GEMM for one thread's block of the output, with a per-row bias and an activation
// applied in registers before the one store of each output element (see GemmBodies.h). Compiled per instruction-set
// level like the kernels of CKernels.h and dispatched to the level in use.
#ifndef DREAM_GEMM_H
#define DREAM_GEMM_H

#include "CKernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/// C = epilogue(C₀ + A·B + bias): A [m, k], B [k, n], C [m, n], where element (i, p) of A is
/// a[i·a_row_stride + p·a_column_stride] (likewise B), so a transposed operand is the same matrix with its strides
/// swapped; C's rows are c_row_stride apart and its columns contiguous. C₀ is C's previous value when `accumulate`
/// is non-zero, else 0; bias (one value per row of C) may be NULL.
/// Each element's sum is C₀ + bias, then the products in increasing p, whatever block computes it: results do not
/// depend on how the output is split into blocks (or threads).
typedef struct {
    int64_t m, n, k;
    const float *a;
    int64_t a_row_stride, a_column_stride;
    const float *b;
    int64_t b_row_stride, b_column_stride;
    float *c;
    int64_t c_row_stride;
    const float *bias;
    int32_t accumulate;
    dream_epilogue epilogue;
    /// An implicit B (a convolution's unfolded image, never stored): when b_offsets is not NULL, element (p, q) of B
    /// is b[b_offsets[p] + (q / b_width)·b_pitch + q % b_width] (b_pitch >= b_width >= 1) and B's strides are unused.
    /// The packer reads up to 15 floats beyond the last element it needs, never before b + min(b_offsets): the
    /// caller checks that all of that lies inside b's allocation (PackedGemm.multiply does).
    const int64_t *b_offsets;
    int64_t b_width, b_pitch;
} dream_gemm_problem;

/// Floats of scratch one dream_gemm_block call needs (the same for every problem and level).
int64_t dream_gemm_scratch_floats(void);

/// Computes the block rows [row_first, row_end) × columns [column_first, column_end) of the problem's C.
void dream_gemm_block(const dream_gemm_problem *problem, int64_t row_first, int64_t row_end, int64_t column_first,
                      int64_t column_end, float *scratch);

/// A grouped convolution's GEMM for one group and a run of output positions (GroupedBodies.h): A [m, k] row-major,
/// element (p, j) of B at b[offsets[p] + j], C [m, columns] with rows ldc apart, columns rounded up to a multiple
/// of 16: c[i][j] = epilogue(bias[i] + Σ_p A[i][p]·B[p][j]) (bias may be NULL). Reads b up to
/// max(offsets) + columns (rounded up) floats; the caller checks that this stays inside b's allocation.
void dream_grouped_block(const float *a, int64_t m, int64_t k, const float *b, const int64_t *offsets, float *c,
                         int64_t ldc, int64_t columns, const float *bias, dream_epilogue epilogue);

/// dst[t] = src[t·stride] for t < count (stride >= 1): the rows of an implicit GEMM's zero-padded image copy.
void dream_gemm_strided_copy(const float *src, int64_t stride, int64_t count, float *dst);

/// One phase plane of an implicit GEMM's zero-padded image copy: plane[r][t] = channel[r·sH + row_offset]
/// [t·sW + column_offset] for r < plane_h, t < plane_w, 0 where that lies outside the h × w channel.
void dream_implicit_plane(const float *channel, int64_t h, int64_t w, int64_t sH, int64_t sW, int64_t row_offset,
                          int64_t column_offset, float *plane, int64_t plane_h, int64_t plane_w);

/// dream_implicit_plane for planes [plane_first, plane_end) of a band's copy (plane = channel · phases + phase,
/// phases = row_count × column_count, phase (ry, rx) = (row_phases[phase / column_count], column_phases[phase %
/// column_count])): row r, column t of a plane is pixel ((first_output_row + r)·sH + ry - pad_top, t·sW + rx -
/// pad_left) of its channel (channels h·w floats apart from image), 0 outside; plane p at scratch + p·plane_h·plane_w.
void dream_implicit_planes(const float *image, int64_t h, int64_t w, int64_t sH, int64_t sW, const int64_t *row_phases,
                           int64_t row_count, const int64_t *column_phases, int64_t column_count, int64_t pad_top,
                           int64_t pad_left, int64_t first_output_row, int64_t plane_first, int64_t plane_end,
                           float *scratch, int64_t plane_h, int64_t plane_w);

/// dst[i·dst_stride + r·width + t] = src[i·ld + r·pitch + t] for i < channels, r < rows, t < width (pitch >= width).
void dream_grouped_store(const float *src, int64_t ld, int64_t pitch, int64_t channels, int64_t rows, int64_t width,
                         float *dst, int64_t dst_stride);

#ifdef __cplusplus
}
#endif

#endif
