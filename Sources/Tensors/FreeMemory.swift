import Foundation

/// Large tensors come and go with every layer; glibc's allocator keeps the pages of freed blocks, and when blocks of
/// changing sizes are freed and reallocated (one image tile after another) its heap fragments and the resident size
/// creeps up beyond what is ever live at once. `returnToSystem()` asks the allocator to release every free page now
/// (glibc's `malloc_trim`, looked up at run time; elsewhere it does nothing). Call it between large, independent
/// pieces of work, not inside a pass: released pages cost a page fault each when they are touched again.
public enum FreeMemory {
    private typealias Trim = @convention(c) (Int) -> Int32
    nonisolated(unsafe) private static let trim: Trim? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: Trim.self)
    }()

    /// Returns the allocator's free pages to the operating system (glibc); a no-op where that is not available.
    public static func returnToSystem() {
        _ = trim?(0)
    }
}
