import CBLAS
import Foundation
import Parallel

/// OpenBLAS picks its kernels by recognising the CPU when the library loads. Older OpenBLAS releases (Debian 12 ships
/// 0.3.21) do not know recent Intel CPUs and fall back to "Prescott" SSE3 kernels, 4–6x slower than the AVX2/AVX-512
/// ones the CPU can run. The choice can only be changed through OPENBLAS_CORETYPE before the library loads.
public enum BLASCore {
    /// The kernel family OpenBLAS chose, e.g. "Haswell", "SkylakeX", "Prescott".
    public static var name: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }

    /// The library's version, e.g. "OpenBLAS 0.3.21".
    public static var version: String {
        guard let config = openblas_get_config().map({ String(cString: $0) }) else { return "OpenBLAS" }
        return config.split(separator: " ").prefix(2).joined(separator: " ")
    }

    /// What decides the last bits of every result: library version, kernel family, thread count and the SIMD level of
    /// our own C kernels (OpenBLAS splits a GEMM differently for another thread count, each kernel family sums in its
    /// own order, and AVX2 fuses the multiply-adds the baseline rounds twice).
    public static var summary: String {
        "\(version), \(name) kernels, \(Threading.threadCount) thread\(Threading.threadCount == 1 ? "" : "s"), \(simdSummary)"
    }

    /// The SIMD part of `summary`, e.g. "avx2 SIMD".
    public static var simdSummary: String { "\(SIMDLevel.current) SIMD" }

    /// The kernel family that every x86-64 CPU runs (SSE3): with the same dream build, OpenBLAS version and thread
    /// count, results are the same bytes on any x86-64 machine.
    public static let portableFamily = "Prescott"

    /// A better core type for this CPU when OpenBLAS fell back to a generic one and the user has not chosen; nil otherwise.
    /// With `portable`, the portable family whatever the CPU or the environment says (nil when it is already in use).
    public static func recommendedOverride(environment: [String: String] = ProcessInfo.processInfo.environment,
                                           portable: Bool = false) -> String? {
        if portable { return name.lowercased() == portableFamily.lowercased() ? nil : portableFamily }
        guard environment["OPENBLAS_CORETYPE"] == nil else { return nil }
        let generic = ["prescott", "core2", "unknown", "katmai", "coppermine", "northwood", "banias", "atom"]
        guard generic.contains(name.lowercased()) else { return nil }
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flagsLine = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(flagsLine.split(separator: " ").map(String.init))
        if flags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq"]) { return "SkylakeX" }
        if flags.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
        return nil
    }

    /// The OPENBLAS_THREAD_TIMEOUT to start with when the user has not set one and there is more than one core: "4"
    /// (2^4 cycles), so that OpenBLAS's worker threads go to sleep right after a matrix product instead of spinning for
    /// the default 2^28 cycles (about 0.1 s). Our own parallel loops (depthwise, pointwise slices, Winograd, packed
    /// GEMM, pooling) run between OpenBLAS's products; a spinning BLAS worker then holds a core they need. Measured on
    /// a 2-core Zen 3, `dream bench --runs 20`, 4 interleaved rounds: with the default, a process ran either fast or
    /// about 35 % slower for its whole life (MobileNetV2-shapes 7.7–7.8 or 10.5–10.6 ms, GoogLeNet 23.7–24.5 or
    /// 31.1–31.9 ms); with "4", always fast (7.6–7.8 and 23.2–24.4 ms). Read only when OpenBLAS loads.
    public static func recommendedThreadTimeout(environment: [String: String] = ProcessInfo.processInfo.environment,
                                                cores: Int = ProcessInfo.processInfo.activeProcessorCount) -> String? {
        guard environment["OPENBLAS_THREAD_TIMEOUT"] == nil, cores > 1 else { return nil }
        return "4"
    }
}

/// Keeps OpenBLAS on `Threading.threadCount` threads, so that BLAS and our own parallel loops never oversubscribe the
/// cores: checked before each matrix product (a lock and a comparison, nothing beside a GEMM), set when it changed.
enum BLASThreads {
    private static let lock = NSLock()
    private static var pinned = 0

    static func followThreading() {
        let wanted = Threading.threadCount
        // OpenBLAS's threads are about to need the cores our pool's idle threads may be spinning on.
        if wanted > 1 { Threading.releaseCores() }
        lock.lock()
        defer { lock.unlock() }
        if pinned != wanted {
            openblas_set_num_threads(Int32(wanted))
            pinned = wanted
        }
    }

    /// OpenBLAS on one thread, for GEMMs that our own loops run one per core; the next `followThreading` restores it.
    static func useSingleThread() {
        lock.lock()
        defer { lock.unlock() }
        if pinned != 1 {
            openblas_set_num_threads(1)
            pinned = 1
        }
    }
}
