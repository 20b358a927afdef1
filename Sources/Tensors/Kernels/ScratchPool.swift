import Foundation

/// Recycles the large scratch matrices of im2col convolutions. Allocating tens of MB per call means fresh pages, and
/// a page fault plus a kernel zero-fill per 4 KB on first touch; a taken buffer belongs to its caller alone until
/// given back, so concurrent callers never share one.
enum ScratchPool {
    nonisolated(unsafe) private static var free: [(pointer: UnsafeMutablePointer<Float>, capacity: Int)] = []
    private static let lock = NSLock()
    /// Buffers kept at most (one per concurrently running convolution is plenty).
    private static let limit = 4

    /// A buffer of at least `capacity` floats, uninitialised.
    static func take(_ capacity: Int) -> (pointer: UnsafeMutablePointer<Float>, capacity: Int) {
        lock.lock()
        defer { lock.unlock() }
        if let i = free.firstIndex(where: { $0.capacity >= capacity }) { return free.remove(at: i) }
        // Too small ones are dropped, so the pool converges on the largest size the network needs.
        if let i = free.indices.max(by: { free[$0].capacity < free[$1].capacity }) { free.remove(at: i).pointer.deallocate() }
        return (.allocate(capacity: capacity), capacity)
    }

    /// Returns a buffer from `take`.
    static func give(_ buffer: (pointer: UnsafeMutablePointer<Float>, capacity: Int)) {
        lock.lock()
        defer { lock.unlock() }
        if free.count < limit { free.append(buffer) } else { buffer.pointer.deallocate() }
    }
}
