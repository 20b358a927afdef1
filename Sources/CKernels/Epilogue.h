// The activation of an epilogue (dream_epilogue) on one vector, for the kernels of one level (after Levels.h).
//
// Sigmoid and SiLU need e^x: LEVEL_SUFFIX(exp) below, written with separate multiplications and additions (never
// vmadd) and exact selections, so that every level gives the same bits (the C target is compiled without
// -ffast-math, and a product and a sum in different statements or intrinsics are never contracted into an FMA).

/// e^x for every float x, within 1.5 ulp of the exact value (measured: SIMDKernelTests.testExpIsWithinItsBound),
/// denormal results included: 0 below -104, +inf above 89, NaN for NaN.
///   x = n·ln2 + r, |r| <= ln2/2 (n rounded to nearest by adding 1.5·2^23; ln2 split in two so that n·ln2_hi is
///   exact and x - n·ln2_hi has no rounding error),
///   e^r = 1 + (r + r²·(1/2 + r/6 + r²/24 + r³/120 + r⁴/720 + r⁵/5040)): the truncated Taylor series errs by
///   r⁸/8! <= 5.2e-9 relative, and the final 1 + s rounds once,
///   2^n applied as 2^(n >> 1) · 2^(n - (n >> 1)): both factors are normal floats for n in [-150, 128], the first
///   product is exact and the second rounds once, so denormal results are rounded correctly from the polynomial.
KERNEL inline __attribute__((always_inline)) vf LEVEL_SUFFIX(exp)(vf x) {
    x = vselect(vgt(x, vset1(89.0f)), vset1(89.0f), x);     // e^89 is beyond FLT_MAX: the scaling overflows to +inf
    x = vselect(vlt(x, vset1(-104.0f)), vset1(-104.0f), x);  // e^-104 < 2^-150: rounds to 0
    const vf magic = vset1(12582912.0f);                     // 1.5·2^23: adding it rounds to an integer
    const vf t = vadd(vmul(x, vset1(1.44269504088896341f)), magic);
    const vf n = vsub(t, magic);
    const vi ni = visub(vbits(t), vbits(magic));             // the same integer, as int32 lanes
    const vf r = vsub(vsub(x, vmul(n, vset1(0.693145751953125f))), vmul(n, vset1(1.42860682030941723212e-6f)));
    vf q = vset1(1.0f / 5040.0f);
    q = vadd(vmul(q, r), vset1(1.0f / 720.0f));
    q = vadd(vmul(q, r), vset1(1.0f / 120.0f));
    q = vadd(vmul(q, r), vset1(1.0f / 24.0f));
    q = vadd(vmul(q, r), vset1(1.0f / 6.0f));
    q = vadd(vmul(q, r), vset1(0.5f));
    const vf p = vadd(vset1(1.0f), vadd(r, vmul(vmul(r, r), q)));
    const vi half = visra(ni, 1);
    const vf s1 = vfloat(vishl(viadd(half, viset1(127)), 23)), s2 = vfloat(vishl(viadd(visub(ni, half), viset1(127)), 23));
    return vmul(vmul(p, s1), s2);
}

/// σ(x) = 1 / (1 + e^-x) as `logistic` (Activation.swift) computes it: e = e^-|x|, then x >= 0 ? 1 / (1 + e) :
/// e / (1 + e), so that e^-|x| never overflows and tiny results keep their precision. In [0, 1] for every x; within
/// 2.5 ulp of the exact value (SIMDKernelTests).
KERNEL inline __attribute__((always_inline)) vf LEVEL_SUFFIX(sigmoid)(vf x) {
    const vf zero = vzero(), one = vset1(1.0f);
    const vf e = LEVEL_SUFFIX(exp)(vselect(vlt(x, zero), x, vsub(zero, x)));  // -|x| (NaN stays NaN)
    return vdiv(vselect(vge(x, zero), one, e), vadd(one, e));
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
