import Foundation
import SafeIO
import Imaging
import Network
import ZIPFoundation

/// NumPy `.npz` archives: a ZIP of `.npy` entries, one per array, which `numpy.load` opens as a dict-like object
/// keyed by the entry names without `.npy`. Entries are stored (not compressed), like `numpy.savez`, and carry a
/// fixed date so that the same arrays give the same bytes.
public enum NumPyArchive {
    static let fixedDate = Date(timeIntervalSince1970: 315_532_800)   // 1980-01-01, the earliest DOS date

    /// Writes `arrays` (key, value) to `url` atomically; keys must be distinct and non-empty.
    public static func write(_ arrays: [(key: String, value: Value)], to url: URL) throws {
        try AtomicFile.write(try serialize(arrays, name: url.path), to: url)
    }

    public static func serialize(_ arrays: [(key: String, value: Value)], name: String = "archive.npz") throws -> Data {
        var seen = Set<String>()
        for (key, _) in arrays where key.isEmpty || !seen.insert(key).inserted {
            throw NumPyArchiveError(file: name, reason: key.isEmpty ? "an array has an empty name" : "two arrays are named '\(key)'")
        }
        let archive: Archive
        do { archive = try Archive(data: Data(), accessMode: .create) } catch {
            throw NumPyArchiveError(file: name, reason: "cannot create the archive (\(error))")
        }
        for (key, value) in arrays {
            let bytes = NumPyFile.serialize(value)
            do {
                try archive.addEntry(with: key + ".npy", type: .file, uncompressedSize: Int64(bytes.count),
                                     modificationDate: fixedDate, compressionMethod: .none) { position, size in
                    bytes.subdata(in: Int(position)..<(Int(position) + size))
                }
            } catch {
                throw NumPyArchiveError(file: name, reason: "cannot add '\(key)' (\(error))")
            }
        }
        guard let data = archive.data else { throw NumPyArchiveError(file: name, reason: "the archive holds no data") }
        return data
    }

    /// The arrays of an `.npz` file, in archive order, keyed without `.npy`.
    public static func read(contentsOf url: URL) throws -> [(key: String, value: Value)] {
        let archive: Archive
        do { archive = try Archive(url: url, accessMode: .read) } catch {
            throw NumPyArchiveError(file: url.path, reason: "not a readable .npz (ZIP) file (\(error))")
        }
        var result: [(String, Value)] = []
        for entry in archive where entry.type == .file {
            guard entry.path.hasSuffix(".npy") else { continue }
            var bytes = Data()
            do { _ = try archive.extract(entry) { bytes.append($0) } } catch {
                throw NumPyArchiveError(file: url.path, reason: "cannot read '\(entry.path)' (\(error))")
            }
            result.append((String(entry.path.dropLast(4)), try NumPyFile.decode(bytes, file: url.path + ":" + entry.path)))
        }
        return result
    }
}

public struct NumPyArchiveError: Error, CustomStringConvertible, LocalizedError {
    public var file: String
    public var reason: String
    public var description: String { "\(file): \(reason)" }
    public var errorDescription: String? { description }
}
