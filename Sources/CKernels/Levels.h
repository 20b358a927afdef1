// The vector vocabulary the kernel bodies (KernelBodies.h) are written in, defined once per instruction-set level.
// A level's source file defines DREAM_LEVEL_BASELINE, _AVX2 or _AVX512, includes this file, then KernelBodies.h: the
// same bodies are compiled three times, each function carrying its level's `target` attribute (KERNEL), so that no
// file needs a CPU-specific compiler flag.
//
//   KERNEL / KERNEL_EXPORT  a static / an exported function of this level
//   vf / VL        a vector of VL floats; vi: of VL int32; vmask: the result of a comparison
//   vmadd(c,a,b)   c + a·b: two roundings in the baseline, one (FMA) from AVX2 up
//   vsub, vdiv, vsqrt  a - b, a / b, √a: correctly rounded at every level (same bits everywhere)
//   vmax(v, m)     v > m ? v : m, lane by lane (MAXPS: a NaN in either operand gives m)
//   vnegabs(v)     -|v|: v with its sign bit set (exact; NaN stays NaN)
//   vselect(k,a,b) k ? a : b, lane by lane
//   vload_n / vstore_n   the first n < VL lanes only (the others read as 0 and are not written)
//   vkeep_from(v, k)     lanes k... of v, the lanes below k zeroed
//   vbits(v) / vfloat(i)  the bits of a float vector as int32 lanes and back (no conversion)
//   visub(a, b), vishl(i, k), visra(i, k)  int32 lanes: a - b, shift left, arithmetic shift right by a constant k
//   vevens(a, b)         the even lanes of a, then those of b (vodds: the odd lanes)
//   vzip_lo(a, b)        a0 b0 a1 b1 … over the first half of the lanes (vzip_hi: the second half)
#include <stdint.h>
#include <string.h>

#if defined(DREAM_LEVEL_BASELINE)
// Plain C vector extensions: SSE2 on x86-64 (no FMA there, so c + a·b is never fused), NEON or scalar elsewhere.
#define LEVEL_SUFFIX(name) name##_baseline
#define KERNEL static __attribute__((unused))
#define KERNEL_EXPORT
#define VL 4
typedef float vf __attribute__((vector_size(16), aligned(4)));
typedef int32_t vi __attribute__((vector_size(16), aligned(4)));
typedef vi vmask;
#define INLINE static inline __attribute__((always_inline))
INLINE vf vload(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
INLINE void vstore(float *p, vf v) { memcpy(p, &v, sizeof v); }
INLINE vf vset1(float x) { return (vf){x, x, x, x}; }
INLINE vf vzero(void) { return (vf){0, 0, 0, 0}; }
#define vadd(a, b) ((a) + (b))
#define vmul(a, b) ((a) * (b))
#define vsub(a, b) ((a) - (b))
#define vdiv(a, b) ((a) / (b))
#define vsqrt(a) __builtin_elementwise_sqrt(a)
INLINE vf vmadd(vf c, vf a, vf b) { vf p = a * b; return c + p; }
#define vlt(a, b) ((vmask)((a) < (b)))
#define vgt(a, b) ((vmask)((a) > (b)))
#define vge(a, b) ((vmask)((a) >= (b)))
#define veq(a, b) ((vmask)((a) == (b)))
INLINE vf vselect(vmask k, vf a, vf b) { return (vf)(((vi)a & k) | ((vi)b & ~k)); }
INLINE vf vmax(vf v, vf m) { return vselect(v > m, v, m); }
INLINE vf vnegabs(vf v) { return (vf)((vi)v | (vi){INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN}); }
INLINE vi viload(const int32_t *p) { vi v; memcpy(&v, p, sizeof v); return v; }
INLINE void vistore(int32_t *p, vi v) { memcpy(p, &v, sizeof v); }
INLINE vi viset1(int32_t x) { return (vi){x, x, x, x}; }
#define viadd(a, b) ((a) + (b))
#define visub(a, b) ((a) - (b))
#define vishl(a, k) ((a) << (k))
#define visra(a, k) ((a) >> (k))
#define vbits(v) ((vi)(v))
#define vfloat(i) ((vf)(i))
INLINE vi viselect(vmask k, vi a, vi b) { return (a & k) | (b & ~k); }
INLINE vf vload_n(const float *p, int64_t n) {
    float t[VL] = {0};
    for (int64_t i = 0; i < n; i++) t[i] = p[i];
    return vload(t);
}
INLINE void vstore_n(float *p, vf v, int64_t n) {
    float t[VL];
    vstore(t, v);
    for (int64_t i = 0; i < n; i++) p[i] = t[i];
}
INLINE float vhsum(vf v) { return (v[0] + v[1]) + (v[2] + v[3]); }
#define vevens(a, b) __builtin_shufflevector((a), (b), 0, 2, 4, 6)
#define vodds(a, b) __builtin_shufflevector((a), (b), 1, 3, 5, 7)
#define vzip_lo(a, b) __builtin_shufflevector((a), (b), 0, 4, 1, 5)
#define vzip_hi(a, b) __builtin_shufflevector((a), (b), 2, 6, 3, 7)
INLINE vf vkeep_from(vf v, int64_t k) {
    const vi ramp = {0, 1, 2, 3};
    const int32_t first = (int32_t)k;
    return (vf)((vi)v & (vmask)(ramp >= (vi){first, first, first, first}));
}

#elif defined(DREAM_LEVEL_AVX2)
#include <immintrin.h>
#define LEVEL_SUFFIX(name) name##_avx2
#define KERNEL static __attribute__((unused, target("avx2,fma")))
#define KERNEL_EXPORT __attribute__((target("avx2,fma")))
#define VL 8
typedef __m256 vf;
typedef __m256i vi;
typedef __m256 vmask;
#define vload(p) _mm256_loadu_ps(p)
#define vstore(p, v) _mm256_storeu_ps((p), (v))
#define vset1(x) _mm256_set1_ps(x)
#define vzero() _mm256_setzero_ps()
#define vadd(a, b) _mm256_add_ps((a), (b))
#define vmul(a, b) _mm256_mul_ps((a), (b))
#define vsub(a, b) _mm256_sub_ps((a), (b))
#define vdiv(a, b) _mm256_div_ps((a), (b))
#define vsqrt(a) _mm256_sqrt_ps(a)
#define vmadd(c, a, b) _mm256_fmadd_ps((a), (b), (c))
#define vmax(v, m) _mm256_max_ps((v), (m))
#define vnegabs(v) _mm256_or_ps((v), _mm256_set1_ps(-0.0f))
#define vlt(a, b) _mm256_cmp_ps((a), (b), _CMP_LT_OQ)
#define vgt(a, b) _mm256_cmp_ps((a), (b), _CMP_GT_OQ)
#define vge(a, b) _mm256_cmp_ps((a), (b), _CMP_GE_OQ)
#define veq(a, b) _mm256_cmp_ps((a), (b), _CMP_EQ_OQ)
#define vselect(k, a, b) _mm256_blendv_ps((b), (a), (k))
#define viload(p) _mm256_loadu_si256((const __m256i *)(p))
#define vistore(p, v) _mm256_storeu_si256((__m256i *)(p), (v))
#define viset1(x) _mm256_set1_epi32(x)
#define viadd(a, b) _mm256_add_epi32((a), (b))
#define visub(a, b) _mm256_sub_epi32((a), (b))
#define vishl(a, k) _mm256_slli_epi32((a), (k))
#define visra(a, k) _mm256_srai_epi32((a), (k))
#define vbits(v) _mm256_castps_si256(v)
#define vfloat(i) _mm256_castsi256_ps(i)
#define viselect(k, a, b) _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(b), _mm256_castsi256_ps(a), (k)))
static inline __attribute__((always_inline, target("avx2,fma"))) __m256i lane_mask(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline __attribute__((always_inline, target("avx2,fma"))) vf vload_n(const float *p, int64_t n) {
    return _mm256_maskload_ps(p, lane_mask(n));
}
static inline __attribute__((always_inline, target("avx2,fma"))) void vstore_n(float *p, vf v, int64_t n) {
    _mm256_maskstore_ps(p, lane_mask(n), v);
}
#define vevens(a, b) __builtin_shufflevector((a), (b), 0, 2, 4, 6, 8, 10, 12, 14)
#define vodds(a, b) __builtin_shufflevector((a), (b), 1, 3, 5, 7, 9, 11, 13, 15)
#define vzip_lo(a, b) __builtin_shufflevector((a), (b), 0, 8, 1, 9, 2, 10, 3, 11)
#define vzip_hi(a, b) __builtin_shufflevector((a), (b), 4, 12, 5, 13, 6, 14, 7, 15)
static inline __attribute__((always_inline, target("avx2,fma"))) vf vkeep_from(vf v, int64_t k) {
    return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                                                   _mm256_set1_epi32((int)k - 1))));
}
static inline __attribute__((always_inline, target("avx2,fma"))) float vhsum(vf v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

#elif defined(DREAM_LEVEL_AVX512)
#include <immintrin.h>
#define LEVEL_SUFFIX(name) name##_avx512
#define KERNEL static __attribute__((unused, target("avx512f,avx2,fma")))
#define KERNEL_EXPORT __attribute__((target("avx512f,avx2,fma")))
#define VL 16
typedef __m512 vf;
typedef __m512i vi;
typedef __mmask16 vmask;
#define vload(p) _mm512_loadu_ps(p)
#define vstore(p, v) _mm512_storeu_ps((p), (v))
#define vset1(x) _mm512_set1_ps(x)
#define vzero() _mm512_setzero_ps()
#define vadd(a, b) _mm512_add_ps((a), (b))
#define vmul(a, b) _mm512_mul_ps((a), (b))
#define vsub(a, b) _mm512_sub_ps((a), (b))
#define vdiv(a, b) _mm512_div_ps((a), (b))
#define vsqrt(a) _mm512_sqrt_ps(a)
#define vmadd(c, a, b) _mm512_fmadd_ps((a), (b), (c))
#define vmax(v, m) _mm512_max_ps((v), (m))
#define vnegabs(v) _mm512_castsi512_ps(_mm512_or_epi32(_mm512_castps_si512(v), _mm512_set1_epi32(INT32_MIN)))
#define vlt(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_LT_OQ)
#define vgt(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_GT_OQ)
#define vge(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_GE_OQ)
#define veq(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_EQ_OQ)
#define vselect(k, a, b) _mm512_mask_blend_ps((k), (b), (a))
#define viload(p) _mm512_loadu_si512((const void *)(p))
#define vistore(p, v) _mm512_storeu_si512((void *)(p), (v))
#define viset1(x) _mm512_set1_epi32(x)
#define viadd(a, b) _mm512_add_epi32((a), (b))
#define visub(a, b) _mm512_sub_epi32((a), (b))
#define vishl(a, k) _mm512_slli_epi32((a), (k))
#define visra(a, k) _mm512_srai_epi32((a), (k))
#define vbits(v) _mm512_castps_si512(v)
#define vfloat(i) _mm512_castsi512_ps(i)
#define viselect(k, a, b) _mm512_mask_blend_epi32((k), (b), (a))
#define vload_n(p, n) _mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1), (p))
#define vstore_n(p, v, n) _mm512_mask_storeu_ps((p), (__mmask16)((1u << (n)) - 1), (v))
#define vhsum(v) _mm512_reduce_add_ps(v)
#define vevens(a, b) __builtin_shufflevector((a), (b), 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
#define vodds(a, b) __builtin_shufflevector((a), (b), 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)
#define vzip_lo(a, b) __builtin_shufflevector((a), (b), 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23)
#define vzip_hi(a, b) __builtin_shufflevector((a), (b), 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)
#define vkeep_from(v, k) _mm512_maskz_mov_ps((__mmask16)(0xFFFFu << (k)), (v))

#else
#error "define DREAM_LEVEL_BASELINE, DREAM_LEVEL_AVX2 or DREAM_LEVEL_AVX512 before including Levels.h"
#endif
