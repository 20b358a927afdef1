import Dispatch
import Foundation

/// How many threads the parallel loops of every module may use. Set once at start-up (the CLI's `--threads`);
/// the kernels' OpenBLAS follows the same number (Tensors pins it before its next matrix product), so that our own
/// loops and BLAS never oversubscribe the cores.
public enum Threading {
    public private(set) static var threadCount: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

    public static func configure(threads: Int? = nil) {
        threadCount = max(1, threads ?? ProcessInfo.processInfo.activeProcessorCount)
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

/// Runs `body` over contiguous sub-ranges of 0..<count, one per worker, on only as many threads as the work pays
/// for: at most `Threading.threadCount`, at most `count`, and at least `minimumWorkPerThread` of `work` (the whole
/// loop's work in any unit: elements, operations; default `count`) per thread. A small loop runs inline as one range,
/// so callers can allocate per-range scratch once.
@inlinable
public func parallelRanges(_ count: Int, work: Int? = nil, minimumWorkPerThread: Int = 1 << 16, _ body: (Range<Int>) -> Void) {
    let workers = min(Threading.threadCount, count, max(1, (work ?? count) / max(1, minimumWorkPerThread)))
    if workers <= 1 {
        if count > 0 { body(0..<count) }
        return
    }
    parallelFor(workers) { w in body((count * w / workers)..<(count * (w + 1) / workers)) }
}
