import CKernels

/// The instruction set the C kernels (CKernels: depthwise 3x3 convolution, max pooling, activation epilogues) run
/// with. Each is compiled for every level; the best one the CPU supports is chosen when a kernel first runs,
/// lowered by `DREAM_SIMD=baseline|avx2|avx512` in the environment, and can be pinned from code.
///
/// The levels give slightly different float32 results: AVX2 and AVX-512 fuse each multiply-add (one rounding
/// instead of two), so the same input gives results a few ulps apart. Results do not depend on the vector width,
/// only on fused versus separate multiply-adds: the baseline gives the same bytes on every x86-64 CPU.
public enum SIMDLevel: Int, CaseIterable, Comparable, CustomStringConvertible, Sendable {
    /// SSE2 without FMA: every x86-64 CPU (and portable C vectors elsewhere).
    case baseline = 0
    /// AVX2 with FMA: 8 floats per vector, fused multiply-adds.
    case avx2 = 1
    /// AVX-512F: 16 floats per vector, fused multiply-adds.
    case avx512 = 2

    /// The name DREAM_SIMD takes and records show: "baseline", "avx2", "avx512".
    public var description: String {
        switch self {
        case .baseline: return "baseline"
        case .avx2: return "avx2"
        case .avx512: return "avx512"
        }
    }

    public init?(name: String) {
        guard let level = Self.allCases.first(where: { $0.description == name.lowercased() }) else { return nil }
        self = level
    }

    public static func < (a: SIMDLevel, b: SIMDLevel) -> Bool { a.rawValue < b.rawValue }

    /// The best level this CPU and its operating system support.
    public static var detected: SIMDLevel { SIMDLevel(rawValue: Int(dream_simd_detected_level())) ?? .baseline }

    /// The level the kernels use now.
    public static var current: SIMDLevel { SIMDLevel(rawValue: Int(dream_simd_current_level())) ?? .baseline }

    /// Every level this CPU can run, lowest first (tests run each kernel at each).
    public static var supported: [SIMDLevel] { allCases.filter { $0 <= detected } }

    /// The level whose results are the same bytes on any x86-64 CPU (`dream --portable`).
    public static let portable = SIMDLevel.baseline

    /// Uses `level` from now on, lowered to `detected` if the CPU cannot run it; returns the level in use.
    /// Call it between computations, not while kernels run on other threads.
    @discardableResult
    public static func pin(_ level: SIMDLevel) -> SIMDLevel {
        SIMDLevel(rawValue: Int(dream_simd_set_level(Int32(level.rawValue)))) ?? .baseline
    }

    /// A one-line problem when DREAM_SIMD names no level (the kernels then use the detected level); nil otherwise.
    public static var environmentProblem: String? {
        guard dream_simd_requested_level() == -2 else { return nil }
        return "DREAM_SIMD must be baseline, avx2 or avx512 (or unset for the best level this CPU supports)"
    }
}

extension Activation {
    /// The activation as an epilogue the C kernels apply in registers before they store (nil for the ones they do
    /// not know); the same values, bit for bit, as `forward`.
    var registerEpilogue: dream_epilogue? {
        switch self {
        case .relu: return dream_epilogue(kind: Int32(DREAM_EPILOGUE_RELU.rawValue), a: 0, b: 0)
        case .clip(let lo, let hi): return dream_epilogue(kind: Int32(DREAM_EPILOGUE_CLIP.rawValue), a: lo, b: hi)
        case .leakyRelu(let alpha): return dream_epilogue(kind: Int32(DREAM_EPILOGUE_LEAKY_RELU.rawValue), a: alpha, b: 0)
        case .sigmoid: return dream_epilogue(kind: Int32(DREAM_EPILOGUE_SIGMOID.rawValue), a: 0, b: 0)
        case .silu: return dream_epilogue(kind: Int32(DREAM_EPILOGUE_SILU.rawValue), a: 0, b: 0)
        case .hardSigmoid(let alpha, let beta):
            return dream_epilogue(kind: Int32(DREAM_EPILOGUE_HARD_SIGMOID.rawValue), a: alpha, b: beta)
        case .hardSwish: return dream_epilogue(kind: Int32(DREAM_EPILOGUE_HARD_SWISH.rawValue), a: 0, b: 0)
        case .tanh: return nil
        }
    }

    /// No epilogue: the kernel stores what it computed.
    static let noEpilogue = dream_epilogue(kind: Int32(DREAM_EPILOGUE_NONE.rawValue), a: 0, b: 0)
}
