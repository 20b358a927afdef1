// Routes the dream_dwk_* entry points (DepthwiseK.h) to the compilation of the level in use (dream_simd_current_level).
#include "DepthwiseK.h"

#define DECLARE_DWK_LEVEL(suffix)                                                                                  \
    void dream_dwk_forward_##suffix(const dream_dwk_shape *, const float *, const float *, const float *, float *,   \
                                    int64_t, int64_t, float *, dream_epilogue);                                   \
    void dream_dwk_input_gradient_##suffix(const dream_dwk_shape *, const float *, const float *, float *, int64_t, \
                                           int64_t, float *);                                                     \
    void dream_dwk_weight_gradient_##suffix(const dream_dwk_shape *, int64_t, const float *, const float *, float *, \
                                            int64_t, int64_t, float *);

typedef struct {
    void (*forward)(const dream_dwk_shape *, const float *, const float *, const float *, float *, int64_t, int64_t,
                    float *, dream_epilogue);
    void (*input_gradient)(const dream_dwk_shape *, const float *, const float *, float *, int64_t, int64_t, float *);
    void (*weight_gradient)(const dream_dwk_shape *, int64_t, const float *, const float *, float *, int64_t, int64_t,
                            float *);
} dwk_table;

#define DWK_TABLE(suffix) {dream_dwk_forward_##suffix, dream_dwk_input_gradient_##suffix, dream_dwk_weight_gradient_##suffix}

DECLARE_DWK_LEVEL(baseline)
#if defined(__x86_64__)
DECLARE_DWK_LEVEL(avx2)
DECLARE_DWK_LEVEL(avx512)
static const dwk_table tables[3] = {DWK_TABLE(baseline), DWK_TABLE(avx2), DWK_TABLE(avx512)};
#else
static const dwk_table tables[1] = {DWK_TABLE(baseline)};
#endif

static inline const dwk_table *table(void) { return &tables[dream_simd_current_level()]; }

int64_t dream_dwk_scratch_floats(const dream_dwk_shape *k) {
    const dream_dw3x3_shape *g = &k->plane;
    const int64_t s = g->stride;
    const dream_dwk_layout l = dream_dwk_layout_of(k);
    const int64_t forward = s * s * l.phase_floats + l.grid_floats;  // the ring needs less
    // Input gradient: a row of each column phase, then dy with zero margins (dwk_input_gradient_planes).
    const int64_t length = (g->pad_left + g->w + s - 1) / s;
    const int64_t dy_row = (k->kernel_w - 1) / s + (length > g->out_w ? length : g->out_w);
    const int64_t gather = s * (length + 16) + g->out_h * dy_row;
    // Weight gradient: the padded plane (dwk_pad_layout_of).
    const int64_t padded = ((g->out_h - 1) * s + k->kernel_h) * s * (g->out_w + (k->kernel_w - 1) / s);
    int64_t most = forward > gather ? forward : gather;
    most = most > padded ? most : padded;
    // Stride 1: the input gradient as a forward (its scratch after the turned weights of every channel).
    dream_dwk_shape t;
    if (dream_dwk_transposed_shape(k, &t)) {
        const dream_dwk_layout lt = dream_dwk_layout_of(&t);
        const int64_t transposed = g->channels * k->kernel_h * k->kernel_w + lt.phase_floats + lt.grid_floats;
        most = most > transposed ? most : transposed;
    }
    return most;
}

void dream_dwk_forward(const dream_dwk_shape *shape, const float *x, const float *weight, const float *bias, float *y,
                       int64_t first, int64_t end, float *scratch, dream_epilogue epilogue) {
    table()->forward(shape, x, weight, bias, y, first, end, scratch, epilogue);
}

void dream_dwk_input_gradient(const dream_dwk_shape *shape, const float *dy, const float *weight, float *dx,
                              int64_t first, int64_t end, float *scratch) {
    table()->input_gradient(shape, dy, weight, dx, first, end, scratch);
}

void dream_dwk_weight_gradient(const dream_dwk_shape *shape, int64_t images, const float *dy, const float *x,
                               float *dweight, int64_t first, int64_t end, float *scratch) {
    table()->weight_gradient(shape, images, dy, x, dweight, first, end, scratch);
}
