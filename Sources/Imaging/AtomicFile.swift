import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(Glibc)
private let systemWrite = Glibc.write
#else
private let systemWrite = Darwin.write
#endif

/// Whole-file writes that never leave half a file: write a temporary file beside the target, flush it, rename it over.
public enum AtomicFile {
    /// Writes `data` to `url` atomically (same directory, so the rename cannot cross file systems).
    public static func write(_ data: Data, to url: URL) throws {
        let target = url.standardizedFileURL
        let dir = target.deletingLastPathComponent().path
        let temp = dir + "/." + target.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ImageError(url, "cannot write (\(String(cString: strerror(errno))))") }
        var failure: Int32 = 0
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < raw.count {
                let n = systemWrite(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                offset += n
            }
        }
        // fsync before rename: otherwise a crash can leave the new name pointing at an empty file.
        if failure == 0 && fsync(fd) != 0 { failure = errno }
        if close(fd) != 0 && failure == 0 { failure = errno }
        if failure == 0 && rename(temp, target.path) != 0 { failure = errno }
        if failure != 0 {
            unlink(temp)
            throw ImageError(url, "cannot write (\(String(cString: strerror(failure))))")
        }
    }
}
