import Dispatch
import Foundation
import Parallel
import XCTest

/// `parallelFor` on the spinning worker pool (CThreadPool): every index exactly once, whatever the thread count,
/// for jobs back to back, after the threads went to sleep or were sent to sleep (`releaseCores`), nested in another
/// job and called from several threads at once (those fall back to GCD).
final class WorkerPoolTests: XCTestCase {
    override func tearDown() { Threading.configure() }

    /// Runs parallelFor(count) and returns how often each index ran.
    func visits(_ count: Int) -> [Int] {
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: max(1, count))
        counts.initialize(repeating: 0, count: max(1, count))
        defer { counts.deallocate() }
        parallelFor(count) { i in counts[i] += 1 }  // each index belongs to one share: no two threads touch it
        return Array(UnsafeBufferPointer(start: counts, count: count))
    }

    func testEveryIndexRunsOnceForAnyThreadCountBackToBackAndAfterSleeping() {
        for threads in [1, 2, 3, 5, 8] {
            Threading.configure(threads: threads)
            for count in [0, 1, 2, 3, 7, 64, 1000] {
                XCTAssertEqual(visits(count), Array(repeating: 1, count: count), "\(threads) threads, \(count)")
            }
            for round in 0..<2000 where visits(9) != Array(repeating: 1, count: 9) { XCTFail("round \(round)"); break }
            // Past the spin: the threads sleep and must be woken; or sent to sleep at once.
            usleep(5000)
            XCTAssertEqual(visits(17), Array(repeating: 1, count: 17))
            Threading.releaseCores()
            XCTAssertEqual(visits(17), Array(repeating: 1, count: 17))
        }
    }

    func testNestedAndConcurrentCallsComplete() {
        Threading.configure(threads: 3)
        let outer = 6, inner = 50
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: outer * inner)
        counts.initialize(repeating: 0, count: outer * inner)
        defer { counts.deallocate() }
        parallelFor(outer) { i in parallelFor(inner) { j in counts[i * inner + j] += 1 } }
        XCTAssertEqual(Array(UnsafeBufferPointer(start: counts, count: outer * inner)), Array(repeating: 1, count: outer * inner))
        // Four threads calling at once: one gets the pool, the others GCD; every call sees all its indices.
        let failures = UnsafeMutablePointer<Int>.allocate(capacity: 4)
        failures.initialize(repeating: 0, count: 4)
        defer { failures.deallocate() }
        DispatchQueue.concurrentPerform(iterations: 4) { caller in
            for _ in 0..<300 where visits(23) != Array(repeating: 1, count: 23) { failures[caller] += 1 }
        }
        XCTAssertEqual(Array(UnsafeBufferPointer(start: failures, count: 4)), [0, 0, 0, 0])
    }
}
