import Dispatch
import Foundation
import CBLAS

/// How many threads kernels may use. Set once at start-up (the CLI's `--threads`); OpenBLAS is pinned to the same
/// number so that our own parallel loops and BLAS never oversubscribe the cores.
public enum Threading {
    public private(set) static var threadCount: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

    public static func configure(threads: Int? = nil) {
        threadCount = max(1, threads ?? ProcessInfo.processInfo.activeProcessorCount)
        openblas_set_num_threads(Int32(threadCount))
    }
}

/// Runs `body(i)` for i in 0..<count, split over `Threading.threadCount` workers.
/// Use only for loops whose iterations are independent and large enough to amortise a dispatch.
@inlinable
public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
    let workers = min(Threading.threadCount, count)
    if workers <= 1 {
        for i in 0..<count { body(i) }
        return
    }
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let start = count * w / workers, end = count * (w + 1) / workers
            for i in start..<end { body(i) }
        }
    }
}
