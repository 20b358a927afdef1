// The activation of an epilogue (dream_epilogue) on one vector, for the kernels of one level (after Levels.h).
//
// Sigmoid and SiLU need e^x: LEVEL_SUFFIX(exp_nonpositive) below, written with separate multiplications and additions (never
// vmadd) and exact selections, so that every level gives the same bits (the C target is compiled without
// -ffast-math, and a product and a sum in different statements or intrinsics are never contracted into an FMA).

/// e^x for x <= 0 (and NaN), within 1.05 ulp of the exact value (measured over every non-positive float), denormal
/// results included: 0 below -104, NaN for NaN. The only caller is σ, which needs e^-|x|. Three steps, so that
/// sigmoid_span can run each as a pass of its own (see there); exp_nonpositive composes them, same bits.
///   exp_reduce: x = n·ln2 + r, |r| <= ln2/2 (n rounded to nearest by adding 1.5·2^23; ln2 split in two so that
///   n·ln2_hi is exact and x - n·ln2_hi has no rounding error),
///   exp_poly: e^r = 1 + (r + r²·q(r)), q(r) = 1/2 + r/6 + r²/24 + r³/120 + r⁴/720 + r⁵/5040: the truncated Taylor
///   series errs by r⁸/8! <= 5.2e-9 relative, and the final 1 + s rounds once. q is evaluated as (1/2 + r/6) +
///   r²·((1/24 + r/120) + r²·(1/720 + r/5040)) rather than by Horner's rule: the chain of dependent operations is
///   shorter, and that chain, not the number of operations, bounds the speed (below),
///   exp_scale: 2^n applied as 2^(n >> 1) · 2^(n - (n >> 1)): both factors are normal floats for n in [-150, 0], the
///   first product is exact and the second rounds once, so denormal results are rounded correctly.
KERNEL inline __attribute__((always_inline)) vf LEVEL_SUFFIX(exp_reduce)(vf x, vi *n_out) {
    x = vmax(vset1(-104.0f), x);                  // -104 > x ? -104 : x: e^-104 < 2^-150 rounds to 0; NaN is kept
    const vf magic = vset1(12582912.0f);          // 1.5·2^23: adding it rounds to an integer
    const vf t = vadd(vmul(x, vset1(1.44269504088896341f)), magic);
    const vf n = vsub(t, magic);
    *n_out = visub(vbits(t), vbits(magic));       // the same integer, as int32 lanes
    return vsub(vsub(x, vmul(n, vset1(0.693145751953125f))), vmul(n, vset1(1.42860682030941723212e-6f)));
}
KERNEL inline __attribute__((always_inline)) vf LEVEL_SUFFIX(exp_poly)(vf r) {
    const vf r2 = vmul(r, r);
    const vf lo = vadd(vset1(0.5f), vmul(r, vset1(1.0f / 6.0f)));
    const vf mid = vadd(vset1(1.0f / 24.0f), vmul(r, vset1(1.0f / 120.0f)));
    const vf hi = vadd(vset1(1.0f / 720.0f), vmul(r, vset1(1.0f / 5040.0f)));
    const vf q = vadd(lo, vmul(r2, vadd(mid, vmul(r2, hi))));
    return vadd(vset1(1.0f), vadd(r, vmul(r2, q)));
}
KERNEL inline __attribute__((always_inline)) vf LEVEL_SUFFIX(exp_scale)(vf p, vi n) {
    const vi half = visra(n, 1);
    const vf s1 = vfloat(vishl(viadd(half, viset1(127)), 23)), s2 = vfloat(vishl(viadd(visub(n, half), viset1(127)), 23));
    return vmul(vmul(p, s1), s2);
}
KERNEL inline __attribute__((always_inline)) vf LEVEL_SUFFIX(exp_nonpositive)(vf x) {
    vi n;
    const vf r = LEVEL_SUFFIX(exp_reduce)(x, &n);
    return LEVEL_SUFFIX(exp_scale)(LEVEL_SUFFIX(exp_poly)(r), n);
}

/// σ from e = e^-|x|: x >= 0 ? 1 / (1 + e) : e / (1 + e) (NaN: e is NaN, and so is the result).
KERNEL inline __attribute__((always_inline)) vf LEVEL_SUFFIX(sigmoid_of)(vf x, vf e) {
    const vf one = vset1(1.0f);
    return vdiv(vselect(vge(x, vzero()), one, e), vadd(one, e));
}

/// σ(x) = 1 / (1 + e^-x) as `logistic` (Activation.swift) computes it: e = e^-|x|, then x >= 0 ? 1 / (1 + e) :
/// e / (1 + e), so that e^-|x| never overflows and tiny results keep their precision. In [0, 1] for every x; within
/// 2.5 ulp of the exact value (SIMDActivationTests).
KERNEL inline __attribute__((always_inline)) vf LEVEL_SUFFIX(sigmoid)(vf x) {
    return LEVEL_SUFFIX(sigmoid_of)(x, LEVEL_SUFFIX(exp_nonpositive)(vnegabs(x)));
}

/// Sigmoid and SiLU as kernels apply them: y[i] = σ(x[i]), or x[i]·σ(x[i]) when `silu` (x may be y), the same bits
/// as `sigmoid` per vector. One vector's σ is some forty operations, nearly all dependent on the one before: an
/// out-of-order core keeps only a few vectors in flight, so a loop of σ per vector is bound by that chain's
/// latency, not by the number of operations. Here each block of SIGMOID_SPAN floats goes through the three steps of
/// e^x as three passes, their results kept in L1 between them, so that every pass is a short chain and many
/// vectors overlap: 0.85 → 0.58 ns per float for SiLU on one Zen 3 core (AVX2). Kernels therefore store the sums
/// of a sigmoid-family epilogue as they are and run this over what they stored (EPILOGUE_IN_SPANS).
#define SIGMOID_SPAN 512
KERNEL inline void LEVEL_SUFFIX(sigmoid_span)(const float *x, float *y, int64_t count, int silu) {
    float r[SIGMOID_SPAN];
    int32_t n[SIGMOID_SPAN];
    for (int64_t b = 0; b < count; b += SIGMOID_SPAN) {
        const int64_t m = count - b < SIGMOID_SPAN ? count - b : SIGMOID_SPAN;
        const float *xb = x + b;
        float *yb = y + b;
        int64_t i = 0;
        for (; i < m; i += VL) {
            vi ni;
            const vf v = i + VL <= m ? vload(xb + i) : vload_n(xb + i, m - i);
            vstore(r + i, LEVEL_SUFFIX(exp_reduce)(vnegabs(v), &ni));
            vistore(n + i, ni);
        }
        for (i = 0; i < m; i += VL) vstore(r + i, LEVEL_SUFFIX(exp_poly)(vload(r + i)));
        for (i = 0; i + VL <= m; i += VL) {
            const vf v = vload(xb + i);
            const vf s = LEVEL_SUFFIX(sigmoid_of)(v, LEVEL_SUFFIX(exp_scale)(vload(r + i), viload(n + i)));
            vstore(yb + i, silu ? vmul(v, s) : s);
        }
        if (i < m) {
            const vf v = vload_n(xb + i, m - i);
            const vf s = LEVEL_SUFFIX(sigmoid_of)(v, LEVEL_SUFFIX(exp_scale)(vload(r + i), viload(n + i)));
            vstore_n(yb + i, silu ? vmul(v, s) : s, m - i);
        }
    }
}

/// Whether kernels apply this epilogue kind as a pass over stored values (sigmoid_span) rather than in registers.
#define EPILOGUE_IN_SPANS(kind) ((kind) == DREAM_EPILOGUE_SIGMOID || (kind) == DREAM_EPILOGUE_SILU)

/// The epilogue a kernel applies in registers: none for the kinds applied in spans afterwards (EPILOGUE_IN_SPANS).
KERNEL inline __attribute__((always_inline)) dream_epilogue LEVEL_SUFFIX(register_epilogue)(dream_epilogue e) {
    if (EPILOGUE_IN_SPANS(e.kind)) e.kind = DREAM_EPILOGUE_NONE;
    return e;
}

/// Applies an epilogue kind of EPILOGUE_IN_SPANS to `count` stored floats in place (nothing for the other kinds).
KERNEL inline __attribute__((always_inline)) void LEVEL_SUFFIX(span_epilogue)(float *y, int64_t count, dream_epilogue e) {
    if (EPILOGUE_IN_SPANS(e.kind)) LEVEL_SUFFIX(sigmoid_span)(y, y, count, e.kind == DREAM_EPILOGUE_SILU);
}

/// Swift.min(Swift.max(a·x + b, 0), 1): the operand order of Activation.forward's hardSigmoid (NaN passes through).
KERNEL inline __attribute__((always_inline)) vf LEVEL_SUFFIX(hard_sigmoid)(vf x, vf a, vf b) {
    const vf t = vadd(vmul(a, x), b), zero = vzero(), one = vset1(1.0f);
    const vf u = vselect(vge(zero, t), zero, t);  // Swift.max(t, 0) = 0 >= t ? 0 : t
    return vselect(vlt(one, u), one, u);          // Swift.min(u, 1) = 1 < u ? 1 : u
}

#ifndef EPILOGUE_SPECIALISED
/// `switch (kind)` with one case per epilogue kind, each calling CALL(KIND) with KIND a constant, so that the
/// kernel loop CALL names is compiled once per activation with the epilogue's own switch folded away; a kind
/// added later reaches CALL(kind) and is decided per vector (correct, if slower).
#define EPILOGUE_SPECIALISED(kind, CALL)                                                                             \
    switch (kind) {                                                                                                  \
    case DREAM_EPILOGUE_NONE: CALL(DREAM_EPILOGUE_NONE); break;                                                      \
    case DREAM_EPILOGUE_RELU: CALL(DREAM_EPILOGUE_RELU); break;                                                      \
    case DREAM_EPILOGUE_CLIP: CALL(DREAM_EPILOGUE_CLIP); break;                                                      \
    case DREAM_EPILOGUE_LEAKY_RELU: CALL(DREAM_EPILOGUE_LEAKY_RELU); break;                                          \
    case DREAM_EPILOGUE_SIGMOID: CALL(DREAM_EPILOGUE_SIGMOID); break;                                                \
    case DREAM_EPILOGUE_SILU: CALL(DREAM_EPILOGUE_SILU); break;                                                      \
    case DREAM_EPILOGUE_HARD_SIGMOID: CALL(DREAM_EPILOGUE_HARD_SIGMOID); break;                                      \
    case DREAM_EPILOGUE_HARD_SWISH: CALL(DREAM_EPILOGUE_HARD_SWISH); break;                                          \
    default: CALL(kind); break;                                                                                      \
    }
#endif

#ifndef EPILOGUE_BY_PLANES
/// A depthwise forward over planes [first, end) of `plane` floats each: EPILOGUE_SPECIALISED(e.kind, CALL) for the
/// kinds applied in registers; for those applied in spans (EPILOGUE_IN_SPANS), CHUNK(f, g) computes planes [f, g)
/// without an epilogue, in chunks of about 16K floats (so that they are still in the L2 cache), and sigmoid_span
/// runs over each chunk.
#define EPILOGUE_BY_PLANES(e, first, end, plane, y, CALL, CHUNK)                                                     \
    if (EPILOGUE_IN_SPANS((e).kind)) {                                                                              \
        const int64_t per_ = (plane) > 0 && (plane) < 16384 ? 16384 / (plane) : 1;                                  \
        for (int64_t f_ = (first); f_ < (end); f_ += per_) {                                                         \
            const int64_t g_ = (end) - f_ < per_ ? (end) : f_ + per_;                                                \
            CHUNK(f_, g_);                                                                                           \
            LEVEL_SUFFIX(span_epilogue)((y) + f_ * (plane), (g_ - f_) * (plane), (e));                                \
        }                                                                                                            \
    } else {                                                                                                         \
        EPILOGUE_SPECIALISED((e).kind, CALL)                                                                         \
    }
#endif

/// The activation of an epilogue, with the operand order of the Swift activations (Activation.forward), so that
/// the bits are those of the separate pass, NaN and signed zeros included.
KERNEL inline __attribute__((always_inline)) vf LEVEL_SUFFIX(epilogue)(vf v, int32_t kind, vf a, vf b) {
    switch (kind) {
    case DREAM_EPILOGUE_RELU: return vselect(vlt(v, vzero()), vzero(), v);            // v < 0 ? 0 : v
    case DREAM_EPILOGUE_CLIP: {
        vf t = vselect(vge(a, v), a, v);                                              // Swift.max(v, lo) = lo >= v ? lo : v
        return vselect(vlt(b, t), b, t);                                              // Swift.min(t, hi) = hi < t ? hi : t
    }
    case DREAM_EPILOGUE_LEAKY_RELU: return vselect(vgt(v, vzero()), v, vmul(a, v));   // v > 0 ? v : alpha·v
    case DREAM_EPILOGUE_SIGMOID: return LEVEL_SUFFIX(sigmoid)(v);
    case DREAM_EPILOGUE_SILU: return vmul(v, LEVEL_SUFFIX(sigmoid)(v));               // v · σ(v)
    case DREAM_EPILOGUE_HARD_SIGMOID: return LEVEL_SUFFIX(hard_sigmoid)(v, a, b);
    case DREAM_EPILOGUE_HARD_SWISH:                                                   // v · hardSigmoid(v; 1/6, 1/2)
        return vmul(v, LEVEL_SUFFIX(hard_sigmoid)(v, vset1(1.0f / 6.0f), vset1(0.5f)));
    default: return v;
    }
}
