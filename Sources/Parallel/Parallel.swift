import CThreadPool
import Dispatch
import Foundation

/// How many threads the parallel loops of every module may use. Set once at start-up (the CLI's `--threads`);
/// the kernels' OpenBLAS follows the same number (Tensors pins it before its next matrix product), so that our own
/// loops and BLAS never oversubscribe the cores.
public enum Threading {
    public private(set) static var threadCount: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Our idle threads stop waiting for the next loop and sleep: call before other threads take the cores (a
    /// multi-threaded OpenBLAS call), so that they do not share one with a spinning thread of ours.
    public static func releaseCores() { dream_pool_park() }

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
        let share: (Int) -> Void = { w in
            let start = count * w / workers, end = count * (w + 1) / workers
            for i in start..<end { body(i) }
        }
        // Our pool first (its threads wait for the next job spinning, so it starts at once); a call made while the
        // pool is busy (nested in a share, or from another thread) goes to GCD as before.
        if !WorkerPool.run(workers, share) { DispatchQueue.concurrentPerform(iterations: workers, execute: share) }
    }
}

/// `CThreadPool` from Swift: runs `share(w)` for w in 0..<workers on the pool, or returns false.
@usableFromInline
enum WorkerPool {
    final class Job {
        let share: (Int) -> Void
        init(_ share: @escaping (Int) -> Void) { self.share = share }
    }

    @usableFromInline
    static func run(_ workers: Int, _ share: @escaping (Int) -> Void) -> Bool {
        let job = Job(share)
        return withExtendedLifetime(job) {
            dream_pool_run(Int64(workers), { context, worker in
                Unmanaged<Job>.fromOpaque(context!).takeUnretainedValue().share(Int(worker))
            }, Unmanaged.passUnretained(job).toOpaque()) != 0
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
