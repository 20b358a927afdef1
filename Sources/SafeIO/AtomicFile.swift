import Foundation

/// Whole-file writes that never leave half a file: write a temporary file beside the target, flush it, rename it
/// over. The temporary file is registered with `TemporaryFiles` so that an error or a signal removes it.
public enum AtomicFile {
    /// Writes `data` to `url` atomically (same directory, so the rename cannot cross file systems).
    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { fd, _ in
            try data.withUnsafeBytes { raw in try writeAll(fd, raw, file: url) }
        }
    }

    /// Creates a temporary file beside `url`, lets `body` fill it through the descriptor, then fsyncs and renames it
    /// over `url`. On any error (disk full included) the temporary file is removed and the target is untouched.
    public static func write(to url: URL, _ body: (_ fd: Int32, _ temporaryPath: String) throws -> Void) throws {
        let shown = url.isFileURL ? url.relativePath : url.absoluteString
        let target = url.standardizedFileURL.path
        let directory = (target as NSString).deletingLastPathComponent
        try OutputPath.requireWritableFolder(directory, for: shown)
        if let problem = nonRegularTarget(target) { throw FileProblem(shown, problem) }
        var temp = ""
        var fd: Int32 = -1
        var code: Int32 = 0
        for _ in 0..<8 {
            temp = (directory as NSString).appendingPathComponent(TemporaryFiles.uniqueName())
            _ = TemporaryFiles.create(temp, isDirectory: false) {
                fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
                code = errno
                return fd >= 0
            }
            if fd >= 0 || code != EEXIST { break }
        }
        guard fd >= 0 else { throw FileProblem(shown, "cannot write (\(systemErrorText(code)))") }
        do {
            try body(fd, temp)
            // fsync before rename: otherwise a crash can leave the new name pointing at an empty file.
            if fsync(fd) != 0 { throw FileProblem(shown, "cannot write (\(systemErrorText()))") }
            let closed = close(fd)
            fd = -1
            if closed != 0 { throw FileProblem(shown, "cannot write (\(systemErrorText()))") }
            let renamed = TemporaryFiles.creating { rename(temp, target) == 0 ? 0 : errno }
            if renamed != 0 { throw FileProblem(shown, "cannot write (\(systemErrorText(renamed)))") }
            TemporaryFiles.unregister(temp)
        } catch {
            if fd >= 0 { close(fd) }
            TemporaryFiles.remove(temp)
            throw error
        }
    }

    /// Why `path` must not be replaced: a device (/dev/null), pipe or socket would be destroyed by the rename (as
    /// root, /dev/null itself); nil for a regular file, a symlink or nothing at all.
    public static func nonRegularTarget(_ path: String) -> String? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        switch st.st_mode & S_IFMT {
        case S_IFREG, S_IFLNK: return nil
        case S_IFDIR: return "is a folder, not a file"
        default: return "is a device, pipe or socket, not a file; dream only writes regular files"
        }
    }

    /// Writes every byte of `raw`, retrying on EINTR; ENOSPC and other errors become a `FileProblem` for `file`.
    public static func writeAll(_ fd: Int32, _ raw: UnsafeRawBufferPointer, file: URL) throws {
        var offset = 0
        while offset < raw.count {
            let n = Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileProblem(file.isFileURL ? file.relativePath : file.absoluteString, "cannot write (\(systemErrorText()))")
            }
            offset += n
        }
    }

    /// Copies the file at `source` to `url` atomically (used for model files: never a half-copied model).
    public static func copy(_ source: URL, to url: URL) throws {
        let input = open(source.path, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw FileProblem(source.path, "cannot read (\(systemErrorText()))") }
        defer { close(input) }
        try write(to: url) { fd, _ in
            let size = 1 << 20
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                let n = read(input, buffer, size)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw FileProblem(source.path, "cannot read (\(systemErrorText()))")
                }
                if n == 0 { break }
                try writeAll(fd, UnsafeRawBufferPointer(start: buffer, count: n), file: url)
            }
        }
    }
}
