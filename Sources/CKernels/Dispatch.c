// Chooses the instruction-set level once, from the CPU (and DREAM_SIMD), and routes every entry point of CKernels.h
// to that level's compilation of the kernels.
#include "CKernels.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DECLARE_LEVEL(suffix)                                                                                      \
    void dream_apply_epilogue_##suffix(const float *, float *, int64_t, dream_epilogue);                          \
    void dream_relu_backward_##suffix(const float *, const float *, float *, int64_t);                           \
    void dream_silu_backward_##suffix(const float *, const float *, float *, int64_t);                           \
    void dream_hard_sigmoid_gate_backward_##suffix(const float *, const float *, float *, int64_t, float, float); \
    void dream_dw3x3_forward_##suffix(const dream_dw3x3_shape *, const float *, const float *, const float *,      \
                                      float *, int64_t, int64_t, float *, dream_epilogue);                        \
    void dream_dw3x3_input_gradient_##suffix(const dream_dw3x3_shape *, const float *, const float *, float *,     \
                                             int64_t, int64_t, float *);                                          \
    void dream_dw3x3_weight_gradient_##suffix(const dream_dw3x3_shape *, int64_t, const float *, const float *,    \
                                              float *, int64_t, int64_t, float *);                                \
    void dream_maxpool_forward_##suffix(const dream_maxpool_shape *, const float *, float *, int64_t, int64_t,    \
                                        float *);                                                                 \
    void dream_maxpool_backward_##suffix(const dream_maxpool_shape *, const float *, const float *, const float *, \
                                         float *, int64_t, int64_t, float *);                                    \
    void dream_lrn_forward_##suffix(const dream_lrn_shape *, const float *, float *, int64_t, int64_t);          \
    void dream_lrn_backward_##suffix(const dream_lrn_shape *, const float *, const float *, float *, int64_t,     \
                                     int64_t, float *);                                                    \
    void dream_plane_means_##suffix(const float *, int64_t, float *, int64_t, int64_t);

typedef struct {
    void (*apply_epilogue)(const float *, float *, int64_t, dream_epilogue);
    void (*relu_backward)(const float *, const float *, float *, int64_t);
    void (*silu_backward)(const float *, const float *, float *, int64_t);
    void (*hard_sigmoid_gate_backward)(const float *, const float *, float *, int64_t, float, float);
    void (*dw3x3_forward)(const dream_dw3x3_shape *, const float *, const float *, const float *, float *, int64_t,
                          int64_t, float *, dream_epilogue);
    void (*dw3x3_input_gradient)(const dream_dw3x3_shape *, const float *, const float *, float *, int64_t, int64_t,
                                 float *);
    void (*dw3x3_weight_gradient)(const dream_dw3x3_shape *, int64_t, const float *, const float *, float *, int64_t,
                                  int64_t, float *);
    void (*maxpool_forward)(const dream_maxpool_shape *, const float *, float *, int64_t, int64_t, float *);
    void (*maxpool_backward)(const dream_maxpool_shape *, const float *, const float *, const float *, float *,
                             int64_t, int64_t, float *);
    void (*lrn_forward)(const dream_lrn_shape *, const float *, float *, int64_t, int64_t);
    void (*lrn_backward)(const dream_lrn_shape *, const float *, const float *, float *, int64_t, int64_t, float *);
    void (*plane_means)(const float *, int64_t, float *, int64_t, int64_t);
} kernel_table;

#define TABLE(suffix)                                                                                              \
    {dream_apply_epilogue_##suffix, dream_relu_backward_##suffix, dream_silu_backward_##suffix,                  \
     dream_hard_sigmoid_gate_backward_##suffix,                                                                   \
     dream_dw3x3_forward_##suffix, dream_dw3x3_input_gradient_##suffix,                                           \
     dream_dw3x3_weight_gradient_##suffix, dream_maxpool_forward_##suffix, dream_maxpool_backward_##suffix,       \
     dream_lrn_forward_##suffix, dream_lrn_backward_##suffix, dream_plane_means_##suffix}

DECLARE_LEVEL(baseline)
#if defined(__x86_64__)
DECLARE_LEVEL(avx2)
DECLARE_LEVEL(avx512)
static const kernel_table tables[3] = {TABLE(baseline), TABLE(avx2), TABLE(avx512)};
#else
static const kernel_table tables[1] = {TABLE(baseline)};
#endif

static int detected = DREAM_SIMD_BASELINE;
static int requested = -1;
static const kernel_table *volatile active = &tables[0];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int detect(void) {
#if defined(__x86_64__)
    // __builtin_cpu_supports also checks that the operating system saves the wider registers (XGETBV).
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return DREAM_SIMD_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return DREAM_SIMD_AVX2;
#endif
    return DREAM_SIMD_BASELINE;
}

static int parse(const char *name) {
    if (!name) return -1;
    if (strcasecmp(name, "baseline") == 0) return DREAM_SIMD_BASELINE;
    if (strcasecmp(name, "avx2") == 0) return DREAM_SIMD_AVX2;
    if (strcasecmp(name, "avx512") == 0) return DREAM_SIMD_AVX512;
    return -2;
}

static void initialise(void) {
    detected = detect();
    requested = parse(getenv("DREAM_SIMD"));
    int level = requested >= 0 && requested < detected ? requested : detected;
    active = &tables[level];
}

static inline const kernel_table *table(void) {
    pthread_once(&once, initialise);
    return active;
}

int dream_simd_detected_level(void) { pthread_once(&once, initialise); return detected; }
int dream_simd_requested_level(void) { pthread_once(&once, initialise); return requested; }
int dream_simd_current_level(void) { return (int)(table() - tables); }

int dream_simd_set_level(int level) {
    pthread_once(&once, initialise);
    if (level < DREAM_SIMD_BASELINE) level = DREAM_SIMD_BASELINE;
    if (level > detected) level = detected;
    active = &tables[level];
    return level;
}

void dream_apply_epilogue(const float *x, float *y, int64_t count, dream_epilogue epilogue) {
    table()->apply_epilogue(x, y, count, epilogue);
}

void dream_relu_backward(const float *dy, const float *y, float *dx, int64_t count) {
    table()->relu_backward(dy, y, dx, count);
}

void dream_silu_backward(const float *dy, const float *x, float *dx, int64_t count) {
    table()->silu_backward(dy, x, dx, count);
}

void dream_hard_sigmoid_gate_backward(const float *dy, const float *x, float *dx, int64_t count, float a, float b) {
    table()->hard_sigmoid_gate_backward(dy, x, dx, count, a, b);
}

int64_t dream_dw3x3_scratch_floats(const dream_dw3x3_shape *g) {
    const int64_t rows = (g->out_h - 1) * g->stride + 3, length = g->out_w + 2;
    const int64_t padded_plane = rows * g->stride * length;                       // weight gradient
    const int64_t gather = g->stride * length + (g->out_h + 1) * (g->out_w + 4);  // input gradient
    const dream_dw3x3_layout l = dream_dw3x3_layout_of(g);
    const int64_t forward = g->stride * g->stride * l.phase_floats + l.grid_floats;
    const int64_t most = padded_plane > gather ? padded_plane : gather;
    return most > forward ? most : forward;
}

void dream_dw3x3_forward(const dream_dw3x3_shape *shape, const float *x, const float *weight, const float *bias,
                         float *y, int64_t first, int64_t end, float *scratch, dream_epilogue epilogue) {
    table()->dw3x3_forward(shape, x, weight, bias, y, first, end, scratch, epilogue);
}

void dream_dw3x3_input_gradient(const dream_dw3x3_shape *shape, const float *dy, const float *weight, float *dx,
                                int64_t first, int64_t end, float *scratch) {
    table()->dw3x3_input_gradient(shape, dy, weight, dx, first, end, scratch);
}

void dream_dw3x3_weight_gradient(const dream_dw3x3_shape *shape, int64_t images, const float *dy, const float *x,
                                 float *dweight, int64_t first, int64_t end, float *scratch) {
    table()->dw3x3_weight_gradient(shape, images, dy, x, dweight, first, end, scratch);
}

int64_t dream_maxpool_forward_scratch_floats(const dream_maxpool_shape *g) {
    const int64_t phase_length = (g->padded_width + g->stride_w - 1) / g->stride_w;
    // Tap offsets (int64: 2 floats each), the padded row, its phases (each with 16 floats of margin for stride 2).
    const int64_t rows = 2 * g->kernel_w + g->padded_width + g->stride_w * (phase_length + 16);
    // The width-keeping path: a band of column maxima with kernel_w + 16 floats of margin either side.
    const int64_t bands = dream_maxpool_band_rows(g) * g->w + 2 * (g->kernel_w + 16);
    return rows > bands ? rows : bands;
}

void dream_maxpool_forward(const dream_maxpool_shape *shape, const float *x, float *y, int64_t first, int64_t end,
                           float *scratch) {
    table()->maxpool_forward(shape, x, y, first, end, scratch);
}

int64_t dream_maxpool_backward_scratch_floats(const dream_maxpool_shape *g) {
    const int64_t phase_length = (g->padded_width + g->stride_w - 1) / g->stride_w;
    const int64_t lanes = (g->out_w + 15) / 16 * 16;
    const int64_t scan = g->h * g->stride_w * phase_length + 3 * lanes;  // phases (+ lanes of overhang), maxima, winners
    const int64_t gather = dream_maxpool_gather_floats(g);  // the stride-1 width-keeping path
    const int64_t stride2 = dream_maxpool_is_stride2_gather(g) ? dream_maxpool_stride2_layout_of(g).floats : 0;
    const int64_t most = scan > gather ? scan : gather;
    return most > stride2 ? most : stride2;
}

void dream_maxpool_backward(const dream_maxpool_shape *shape, const float *x, const float *y, const float *dy,
                            float *dx, int64_t first, int64_t end, float *scratch) {
    table()->maxpool_backward(shape, x, y, dy, dx, first, end, scratch);
}

void dream_lrn_forward(const dream_lrn_shape *shape, const float *x, float *y, int64_t first, int64_t end) {
    table()->lrn_forward(shape, x, y, first, end);
}

int64_t dream_lrn_backward_scratch_floats(const dream_lrn_shape *g) { return g->channels * 16; }  // a vector per channel

void dream_lrn_backward(const dream_lrn_shape *shape, const float *x, const float *dy, float *dx, int64_t first,
                        int64_t end, float *scratch) {
    table()->lrn_backward(shape, x, dy, dx, first, end, scratch);
}

void dream_plane_means(const float *x, int64_t size, float *y, int64_t first, int64_t end) {
    table()->plane_means(x, size, y, first, end);
}
