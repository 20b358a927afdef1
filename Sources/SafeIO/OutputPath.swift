import Foundation

/// Checks made before any work starts so that an output never replaces an input and never fails at the very end.
public enum OutputPath {
    /// Device and inode of the file at `path` (symlinks followed), nil when it does not exist.
    public static func identity(_ path: String) -> (device: UInt64, inode: UInt64)? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return (UInt64(st.st_dev), UInt64(st.st_ino))
    }

    /// The canonical absolute path of `path`: symlinks resolved in every existing component (the last one too),
    /// the rest appended lexically.
    public static func resolved(_ path: String) -> String {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        if let real = realpath(absolute, nil) {
            defer { free(real) }
            return String(cString: real)
        }
        let parent = (absolute as NSString).deletingLastPathComponent
        if parent == absolute { return absolute }
        return (resolved(parent) as NSString).appendingPathComponent((absolute as NSString).lastPathComponent)
    }

    /// Refuses an output `output` (given by `option`) that names one of `inputs`: the same resolved path, or the same
    /// file identity (device + inode: symlinks, symlinked folders and hard links included).
    public static func refuseOverwriting(_ output: String, inputs: [String], option: String) throws {
        let outPath = resolved(output)
        let outID = identity(output)
        for input in inputs {
            let same = resolved(input) == outPath || (outID != nil && identity(input).map { $0 == outID! } == true)
            if same {
                throw FileProblem(output, "\(option) names the input \(input); dream never writes over an input, choose another \(option)")
            }
        }
    }

    /// File names longer than 255 bytes (or paths longer than 4095) cannot be created on Linux or macOS: found now,
    /// not when the result is ready.
    public static func requireNameWithinLimits(_ path: String) throws {
        let name = (path as NSString).lastPathComponent
        guard name.utf8.count <= 255 else { throw FileProblem(String(path.prefix(60)) + "…", "the file name is \(name.utf8.count) bytes long; the limit is 255") }
        guard URL(fileURLWithPath: path).standardizedFileURL.path.utf8.count < 4096 else {
            throw FileProblem(String(path.prefix(60)) + "…", "the path is longer than 4095 bytes")
        }
    }

    /// Refuses a folder that does not exist or is not a folder (checked before the work, not after).
    public static func requireWritableFolder(_ directory: String, for shown: String) throws {
        var isDirectory: ObjCBool = false
        let dir = directory.isEmpty ? "." : directory
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory) else {
            throw FileProblem(shown, "cannot write: the folder \(dir) does not exist")
        }
        guard isDirectory.boolValue else { throw FileProblem(shown, "cannot write: \(dir) is not a folder") }
        guard access(dir, W_OK) == 0 else { throw FileProblem(shown, "cannot write: no permission to write in \(dir)") }
    }

    /// The early checks for a single output file: its folder exists and is writable, it is not a folder itself, and
    /// it is none of `inputs`.
    public static func checkOutputFile(_ output: String, inputs: [String], option: String) throws {
        guard !output.isEmpty else { throw FileProblem(output, "\(option) is empty") }
        try requireNameWithinLimits(output)
        let url = URL(fileURLWithPath: output)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory), isDirectory.boolValue {
            throw FileProblem(output, "is a folder; \(option) takes a file name")
        }
        if let problem = AtomicFile.nonRegularTarget(output) { throw FileProblem(output, problem) }
        try requireWritableFolder(url.deletingLastPathComponent().path, for: output)
        try refuseOverwriting(output, inputs: inputs, option: option)
    }
}

/// A relative path read from a file (a labels file named in a model description, …) resolved inside `folder`:
/// absolute paths, `..` components and symlinks that lead outside are refused.
public enum ContainedPath {
    public static func resolve(_ relative: String, inside folder: URL, what: String) throws -> URL {
        func refuse(_ reason: String) -> FileProblem {
            FileProblem(folder.path, "refusing \(what) '\(TerminalText.escaped(relative))': \(reason)")
        }
        guard !relative.isEmpty else { throw refuse("empty path") }
        if relative.hasPrefix("/") || relative.hasPrefix("\\") || relative.hasPrefix("~") || relative.contains(":") {
            throw refuse("an absolute path; it must be a file beside the model")
        }
        if relative.unicodeScalars.contains(where: { $0.value < 0x20 }) { throw refuse("control characters in the path") }
        for component in relative.split(whereSeparator: { $0 == "/" || $0 == "\\" }) where component == ".." {
            throw refuse("it leaves the model's folder")
        }
        let candidate = folder.appendingPathComponent(relative)
        if FileManager.default.fileExists(atPath: candidate.path) {
            let base = OutputPath.resolved(folder.path)
            let real = OutputPath.resolved(candidate.path)
            guard real.hasPrefix(base.hasSuffix("/") ? base : base + "/") else {
                throw refuse("a symlink that leads outside the model's folder")
            }
        }
        return candidate
    }
}

/// A multi-file output built all-or-nothing: files are written into a temporary folder beside the target, which is
/// renamed into place by `commit` (or merged into an existing folder, file by file). Until then an error or a signal
/// removes the temporary folder, and nothing appears at the target.
public final class AtomicDirectory {
    public let target: URL
    /// Where to write the files now.
    public let staging: URL
    private var committed = false

    public init(target: URL) throws {
        self.target = target.standardizedFileURL
        let shown = target.relativePath
        try OutputPath.requireNameWithinLimits(self.target.path)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: self.target.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw FileProblem(shown, "exists and is not a folder")
        }
        let parent = self.target.deletingLastPathComponent().path
        if !FileManager.default.fileExists(atPath: parent) {
            do { try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) } catch {
                throw FileProblem(shown, "cannot create the folder \(parent) (\(plainReason(error)))")
            }
        }
        try OutputPath.requireWritableFolder(parent, for: shown)
        var made: String?
        for _ in 0..<8 {
            let path = (parent as NSString).appendingPathComponent(TemporaryFiles.uniqueName())
            var code: Int32 = 0
            if TemporaryFiles.create(path, isDirectory: true, { mkdir(path, 0o755) == 0 || { code = errno; return false }() }) {
                made = path; break
            }
            if code != EEXIST { throw FileProblem(shown, "cannot create a folder beside it (\(systemErrorText(code)))") }
        }
        guard let made else { throw FileProblem(shown, "cannot create a temporary folder beside it") }
        staging = URL(fileURLWithPath: made, isDirectory: true)
    }

    deinit { if !committed { TemporaryFiles.remove(staging.path) } }

    /// Removes the staged files (nothing was written).
    public func discard() {
        committed = true
        TemporaryFiles.remove(staging.path)
    }

    /// Moves the staged files to the target; files that would land on one of `inputs` are refused before anything
    /// moves. Returns the final URL of `staged` paths.
    public func commit(protecting inputs: [String]) throws {
        let fm = FileManager.default
        let files = (fm.enumerator(atPath: staging.path)?.allObjects as? [String]) ?? []
        for relative in files {
            let destination = target.appendingPathComponent(relative).path
            if let input = inputs.first(where: { i in
                OutputPath.identity(destination).map { d in OutputPath.identity(i).map { $0 == d } ?? false } ?? false
            }) {
                discard()
                throw FileProblem(destination, "would replace the input \(input); dream never writes over an input, choose another output folder")
            }
        }
        if !fm.fileExists(atPath: target.path) {
            if TemporaryFiles.creating({ rename(staging.path, target.path) }) == 0 {
                committed = true
                TemporaryFiles.unregister(staging.path)
                return
            }
        }
        // The target exists: merge, file by file (each rename atomic), folders created as needed; a signal's cleanup
        // waits for the whole merge.
        do {
            try TemporaryFiles.creating { for relative in files.sorted() {
                let source = staging.appendingPathComponent(relative).path
                let destination = target.appendingPathComponent(relative).path
                var isDirectory: ObjCBool = false
                _ = fm.fileExists(atPath: source, isDirectory: &isDirectory)
                if isDirectory.boolValue {
                    try fm.createDirectory(atPath: destination, withIntermediateDirectories: true)
                } else if rename(source, destination) != 0 {
                    throw FileProblem(destination, "cannot write (\(systemErrorText()))")
                }
            } }
        } catch let problem as FileProblem {
            discard()
            throw problem
        } catch {
            discard()
            throw FileProblem(target.relativePath, "cannot write (\(plainReason(error)))")
        }
        discard()
    }
}

/// Inputs must be regular files: a folder, a device such as /dev/zero, a pipe or a socket would fail late, hang or
/// never end.
public enum InputFile {
    /// Throws a `FileProblem` naming `shown` unless `path` is an existing regular file (symlinks followed).
    public static func requireRegular(_ path: String, shown: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let code = errno
            throw FileProblem(shown, code == ENOENT ? "no such file" : "cannot read (\(systemErrorText(code)))")
        }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return
        case S_IFDIR: throw FileProblem(shown, "is a folder, not a file")
        default: throw FileProblem(shown, "is not a regular file (a device, pipe or socket)")
        }
    }
}
