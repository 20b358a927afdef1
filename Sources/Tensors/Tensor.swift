import Foundation

/// Keeps freed tensor memory (up to 32 MB blocks) in the malloc heap instead of returning it to the kernel: a forward
/// and backward pass frees and reallocates the same large sizes over and over, and fresh mmap pages cost a page fault
/// (and a kernel zero-fill) per 4 KB on first touch.
let tensorAllocatorConfigured: Bool = {
    #if os(Linux)
    // glibc <malloc.h> (not exported by the Glibc module): M_TRIM_THRESHOLD = -1, M_MMAP_THRESHOLD = -3.
    _ = glibcMallopt(-3, 32 << 20)
    _ = glibcMallopt(-1, 512 << 20)
    #endif
    return true
}()

#if os(Linux)
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif

/// Reference-counted, 64-byte aligned Float32 buffer behind a `Tensor`, or a window into another one (a contiguous
/// Slice: no copy; only 4-byte aligned then, which no kernel relies on beyond).
public final class TensorStorage {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int
    /// The storage whose memory this one views (kept alive by this reference); nil when it owns its memory. A view
    /// is never written through: `Tensor`'s copy-on-write copies it first.
    let base: TensorStorage?

    init(count: Int) {
        _ = tensorAllocatorConfigured
        base = nil
        self.count = count
        var raw: UnsafeMutableRawPointer?
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else {
            fatalError("out of memory allocating \(bytes) bytes for a tensor")
        }
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    /// Elements [offset, offset + count) of `owner`.
    init(viewing owner: TensorStorage, offset: Int, count: Int) {
        precondition(offset >= 0 && count >= 0 && offset + count <= owner.count, "view [\(offset), +\(count)) outside \(owner.count) elements")
        base = owner.base ?? owner
        pointer = owner.pointer + offset
        self.count = count
    }

    deinit { if base == nil { free(pointer) } }
}

/// A dense Float32 tensor: a shape and contiguous row-major storage (NCHW for images).
/// Value semantics: copies share storage until one of them is mutated.
public struct Tensor {
    public private(set) var shape: [Int]
    public private(set) var storage: TensorStorage

    public var count: Int { storage.count }
    public var rank: Int { shape.count }

    /// A tensor filled with `value` (zero by default).
    public init(shape: [Int], repeating value: Float = 0) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.storage = TensorStorage(count: shape.reduce(1, *))
        storage.pointer.initialize(repeating: value, count: storage.count)
    }

    public init(shape: [Int], scalars: [Float]) {
        precondition(shape.reduce(1, *) == scalars.count,
                     "shape \(shape) needs \(shape.reduce(1, *)) values, got \(scalars.count)")
        self.shape = shape
        self.storage = TensorStorage(count: scalars.count)
        scalars.withUnsafeBufferPointer { storage.pointer.update(from: $0.baseAddress!, count: scalars.count) }
    }

    /// A tensor whose storage is filled by `body`; the memory starts uninitialised.
    public init(shape: [Int], unsafeUninitialized body: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
        self.shape = shape
        self.storage = TensorStorage(count: shape.reduce(1, *))
        try body(UnsafeMutableBufferPointer(start: storage.pointer, count: storage.count))
    }

    /// A scalar tensor of rank 0.
    public init(_ scalar: Float) { self.init(shape: [], scalars: [scalar]) }

    public var scalars: [Float] { Array(UnsafeBufferPointer(start: storage.pointer, count: count)) }

    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.pointer, count: count))
    }

    /// Mutable access; copies the storage first when it is shared (copy-on-write).
    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        if !isKnownUniquelyReferenced(&storage) || storage.base != nil {
            let copy = TensorStorage(count: count)
            copy.pointer.initialize(from: storage.pointer, count: count)
            storage = copy
        }
        return try body(UnsafeMutableBufferPointer(start: storage.pointer, count: count))
    }

    /// Elements [offset, offset + count of `shape`) of this tensor's row-major storage as a tensor of `shape`, sharing
    /// the memory (no copy; writing to either copies first). The view keeps all of this tensor's memory alive.
    public func contiguousView(offset: Int, shape newShape: [Int]) -> Tensor {
        var t = self
        t.shape = newShape
        t.storage = TensorStorage(viewing: storage, offset: offset, count: newShape.reduce(1, *))
        return t
    }

    /// Whether this tensor views another's memory (`contiguousView`).
    public var isView: Bool { storage.base != nil }

    /// The same data viewed with another shape of equal element count (no copy).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        var t = self
        t.shape = newShape
        return t
    }

    public subscript(flat index: Int) -> Float {
        get { storage.pointer[index] }
        set {
            withUnsafeMutableBufferPointer { $0[index] = newValue }
        }
    }

    /// Element at a multi-dimensional index (slow; for tests and small tensors).
    public subscript(_ index: Int...) -> Float {
        get { storage.pointer[flatIndex(index)] }
        set {
            let i = flatIndex(index)
            withUnsafeMutableBufferPointer { $0[i] = newValue }
        }
    }

    func flatIndex(_ index: [Int]) -> Int {
        precondition(index.count == shape.count, "index \(index) for shape \(shape)")
        var flat = 0
        for (i, d) in zip(index, shape) {
            precondition(i >= 0 && i < d, "index \(index) out of range for shape \(shape)")
            flat = flat * d + i
        }
        return flat
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let preview = scalars.prefix(8).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor(\(shape), [\(preview)\(count > 8 ? ", …" : "")])"
    }
}

/// Row-major strides of a shape.
public func strides(of shape: [Int]) -> [Int] {
    var result = [Int](repeating: 1, count: shape.count)
    var acc = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        result[i] = acc
        acc *= shape[i]
    }
    return result
}
