// The activation of an epilogue (dream_epilogue) on one vector, for the kernels of one level (after Levels.h).

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
    default: return v;
    }
}
