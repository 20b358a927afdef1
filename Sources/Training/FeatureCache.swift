import Foundation
import SafeIO
import Imaging
import Models
import Tensors

/// Backbone activations per image on disk, so that a second run (other head, other learning rate) skips the
/// backbone. One file per (image content, model, preprocessing, values): `<home>/features/<ab>/<key>.bin`.
public struct FeatureCache: Sendable {
    public let directory: URL
    /// Everything but the image that decides the stored values (model file hash, preprocessing, value names).
    let context: String

    public init(home: URL, modelDigest: String, preprocessing: Preprocessing, values: [String]) {
        directory = home.appendingPathComponent("features")
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let prep = (try? encoder.encode(preprocessing)).map { String(decoding: $0, as: UTF8.self) } ?? "?"
        context = "v1|\(modelDigest)|\(prep)|\(values.joined(separator: ","))"
    }

    /// The key of an image file's contents.
    public func key(imageData: Data) -> String {
        var h = SHA256()
        h.update(Data(context.utf8))
        h.update(Data([0]))
        h.update(imageData)
        return h.finalize()
    }

    func url(_ key: String) -> URL {
        directory.appendingPathComponent(String(key.prefix(2))).appendingPathComponent(key + ".bin")
    }

    /// The stored tensors, or nil when absent or unreadable (a damaged entry is recomputed, never trusted).
    public func load(_ key: String) -> [Tensor]? {
        guard let data = try? Data(contentsOf: url(key)) else { return nil }
        return FeatureCache.decode(data)
    }

    public func store(_ tensors: [Tensor], key: String) {
        let target = url(key)
        try? FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? AtomicFile.write(FeatureCache.encode(tensors), to: target)
    }

    // Format: "DRFC", count, then per tensor: rank, dims (UInt32 little-endian), Float32 values.
    static func encode(_ tensors: [Tensor]) -> Data {
        var data = Data("DRFC".utf8)
        func put(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        put(UInt32(tensors.count))
        for t in tensors {
            put(UInt32(t.rank))
            for d in t.shape { put(UInt32(d)) }
            t.withUnsafeBufferPointer { data.append(UnsafeBufferPointer(start: UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: UInt8.self), count: $0.count * 4)) }
        }
        return data
    }

    static func decode(_ data: Data) -> [Tensor]? {
        let bytes = [UInt8](data)
        guard bytes.count >= 8, bytes[0..<4] == [0x44, 0x52, 0x46, 0x43] else { return nil }
        var offset = 4
        func get() -> Int? {
            guard offset + 4 <= bytes.count else { return nil }
            let v = UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
            offset += 4
            return Int(v)
        }
        guard let count = get(), count < 1000 else { return nil }
        var tensors: [Tensor] = []
        for _ in 0..<count {
            guard let rank = get(), rank <= 8 else { return nil }
            var shape: [Int] = []
            for _ in 0..<rank { guard let d = get() else { return nil }; shape.append(d) }
            let (n, overflow) = shape.reduce((1, false)) { acc, d in let m = acc.0.multipliedReportingOverflow(by: d); return (m.partialValue, acc.1 || m.overflow) }
            guard !overflow, offset + 4 * n <= bytes.count else { return nil }
            let t = Tensor(shape: shape) { dst in
                bytes.withUnsafeBytes { raw in
                    for i in 0..<n { dst[i] = Float(bitPattern: raw.loadUnaligned(fromByteOffset: offset + 4 * i, as: UInt32.self).littleEndian) }
                }
            }
            offset += 4 * n
            tensors.append(t)
        }
        return offset == bytes.count ? tensors : nil
    }
}
