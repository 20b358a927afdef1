import Foundation
import SafeIO
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A model the tool knows by name, with where to get it and how to check it.
public struct KnownModel {
    public struct Source {
        public var fileName: String
        public var sha256: String
        /// Public URL; nil when the file is only available from a mirror.
        public var url: URL?
        /// Description to use when no JSON comes with the file.
        public var builtInDescription: ModelDescription?
        public var labelsURL: URL?
    }
    public var name: String
    public var aliases: [String]
    public var summary: String
    /// Tried in order: each first in the cache, then in the mirror, then (if it has a URL) downloaded.
    public var sources: [Source]
}

public enum ModelStoreError: Error, CustomStringConvertible, LocalizedError {
    case unknownModel(String, known: [String])
    case notAvailable(String, detail: String)
    case checksumMismatch(file: String, expected: String, actual: String)
    case download(String, detail: String)
    case badHome(String)
    case corruptCache(file: String, reason: String)

    public var description: String {
        switch self {
        case let .unknownModel(name, known):
            return "unknown model '\(name)': give a path to an .onnx file or one of: \(known.joined(separator: ", "))"
                + " (for timing only, random weights: \(BenchmarkModels.names.joined(separator: ", ")))"
        case let .notAvailable(name, detail): return "model '\(name)' is not available: \(detail)"
        case let .checksumMismatch(file, expected, actual):
            return "\(file): SHA-256 is \(actual), expected \(expected) (corrupt or different file; not used)"
        case let .download(url, detail): return "download of \(url) failed: \(detail)"
        case let .badHome(detail): return detail
        case let .corruptCache(file, reason):
            return "\(file): \(reason), and no mirror or download can replace it; delete it (rm '\(file)') and run again with DREAM_MODEL_MIRROR set or internet access"
        }
    }

    public var errorDescription: String? { description }
}

/// Finds model files: paths as given, known names through the cache (`$DREAM_HOME`, default ~/.cache/dream),
/// filled from `$DREAM_MODEL_MIRROR` (a directory) or downloaded, and checked against a SHA-256.
public struct ModelStore {
    public var home: URL
    public var mirror: URL?
    /// Reports progress lines ("copying … from the mirror") to the caller (the CLI prints them on stderr).
    public var log: (String) -> Void
    /// Set when `$DREAM_HOME` is unusable (e.g. set but empty): known names then fail with this message instead of
    /// quietly using a folder the user did not mean.
    public var homeProblem: String?

    public static let defaultModelName = "googlenet"

    public init(home: URL, mirror: URL?, log: @escaping (String) -> Void = { _ in }) {
        self.home = home
        self.mirror = mirror
        self.log = log
    }

    public static func fromEnvironment(log: @escaping (String) -> Void = { _ in }) -> ModelStore {
        let env = ProcessInfo.processInfo.environment
        let home = env["DREAM_HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/dream")
        let mirror = env["DREAM_MODEL_MIRROR"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
        var store = ModelStore(home: home, mirror: mirror, log: log)
        if env["DREAM_HOME"] == "" {
            store.homeProblem = "DREAM_HOME is set but empty: set it to the model cache folder, or unset it for ~/.cache/dream"
        }
        return store
    }

    public var modelsDirectory: URL { home.appendingPathComponent("models") }

    /// Path of the model file for a name or path (nil: the default model), fetching it into the cache if needed.
    public func resolve(_ nameOrPath: String?) throws -> URL {
        let query = nameOrPath ?? Self.defaultModelName
        if query.hasSuffix(".onnx") || query.contains("/") {
            let url = URL(fileURLWithPath: query)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw ModelStoreError.notAvailable(query, detail: "no such file")
            }
            return url
        }
        guard let known = KnownModels.find(query) else {
            throw ModelStoreError.unknownModel(query, known: KnownModels.all.map(\.name))
        }
        if let homeProblem { throw ModelStoreError.badHome(homeProblem) }
        var problems: [String] = []
        // Cached files first (verified: size and SHA-256, or an unchanged verified stamp), then the mirror, then
        // downloads: a good cached file is never fetched again; a bad one is replaced, with a note, or refused.
        var corrupt: [(file: URL, reason: String)] = []
        for source in known.sources {
            let cached = modelsDirectory.appendingPathComponent(source.fileName)
            guard FileManager.default.fileExists(atPath: cached.path) else { continue }
            if let reason = try verifyCached(cached, source: source) {
                corrupt.append((cached, reason))
                continue
            }
            return cached
        }
        func replaced(_ installed: URL, from origin: String) -> URL {
            for bad in corrupt where bad.file.lastPathComponent == installed.lastPathComponent {
                log("note: \(bad.file.path) \(bad.reason); replaced it from \(origin)")
            }
            return installed
        }
        for source in known.sources {
            guard let mirror else { break }
            let candidate = mirror.appendingPathComponent(source.fileName)
            guard FileManager.default.fileExists(atPath: candidate.path) else {
                problems.append("\(source.fileName) not in the mirror \(mirror.path)")
                continue
            }
            log("copying \(source.fileName) from the mirror \(mirror.path) into \(modelsDirectory.path)")
            return replaced(try install(from: candidate, source: source, sidecarDirectory: mirror), from: "the mirror")
        }
        for source in known.sources {
            guard let url = source.url else { continue }
            log("downloading \(url.absoluteString) into \(modelsDirectory.path)")
            let temporary = try download(url)
            defer { TemporaryFiles.remove(temporary.path) }
            let installed = try install(from: temporary, source: source, sidecarDirectory: nil)
            if source.builtInDescription?.labels != nil, let labelsURL = source.labelsURL {
                try? fetchLabels(labelsURL, as: source.builtInDescription!.labels!)
            }
            return replaced(installed, from: url.absoluteString)
        }
        if let bad = corrupt.first { throw ModelStoreError.corruptCache(file: bad.file.path, reason: bad.reason) }
        throw ModelStoreError.notAvailable(query, detail: (problems + ["no mirror (DREAM_MODEL_MIRROR) has it and it has no public download"])
            .joined(separator: "; "))
    }

    /// nil when the cached file is the one its SHA-256 names, else why not. Hashing 28 MB costs ~0.1-0.2 s, so a
    /// verified stamp (size, modification time, device, inode, digest) is kept beside the file and the hash is only
    /// recomputed when any of these change.
    func verifyCached(_ file: URL, source: KnownModel.Source) throws -> String? {
        guard let stat = FileStamp(path: file.path) else { return "cannot be read" }
        let stampURL = stampFile(for: source)
        if let text = try? String(contentsOf: stampURL, encoding: .utf8), text == stat.line(digest: source.sha256) { return nil }
        let digest: String
        do { digest = try SHA256.hexDigest(ofFile: file) } catch { return "cannot be read (\(plainReason(error)))" }
        guard digest == source.sha256 else {
            return "does not match its SHA-256 (\(digest), expected \(source.sha256): truncated, corrupt or replaced)"
        }
        try? AtomicFile.write(Data(stat.line(digest: digest).utf8), to: stampURL)
        return nil
    }

    func stampFile(for source: KnownModel.Source) -> URL {
        modelsDirectory.appendingPathComponent(".\(source.fileName).verified")
    }

    /// Checks the SHA-256 and copies the file (and its JSON description and labels, when beside it) into the cache
    /// atomically: each file goes to a uniquely named temporary file and is renamed over the target, so concurrent
    /// processes filling the same cache never see a missing or half-written file.
    func install(from file: URL, source: KnownModel.Source, sidecarDirectory: URL?) throws -> URL {
        let digest = try SHA256.hexDigest(ofFile: file)
        guard digest == source.sha256 else {
            throw ModelStoreError.checksumMismatch(file: file.path, expected: source.sha256, actual: digest)
        }
        let fm = FileManager.default
        do {
            try fm.createDirectory(at: modelsDirectory, withIntermediateDirectories: true)
        } catch {
            throw FileProblem(modelsDirectory.path, "cannot create the model cache folder (\(plainReason(error)))")
        }
        if let sidecarDirectory {
            let stem = (source.fileName as NSString).deletingPathExtension
            let json = sidecarDirectory.appendingPathComponent(stem + ".json")
            if let data = try? Data(contentsOf: json) {
                // The labels path comes from a file: it must stay inside the mirror and inside the cache, checked
                // before anything is copied.
                var labelsCopy: (from: URL, to: URL)?
                if let labels = (try? ModelDescription(json: data))?.labels {
                    labelsCopy = (try ContainedPath.resolve(labels, inside: sidecarDirectory, what: "labels file"),
                                  try ContainedPath.resolve(labels, inside: modelsDirectory, what: "labels file"))
                }
                try AtomicFile.write(data, to: modelsDirectory.appendingPathComponent(stem + ".json"))
                if let (from, to) = labelsCopy, let labelData = try? Data(contentsOf: from) {
                    try fm.createDirectory(at: to.deletingLastPathComponent(), withIntermediateDirectories: true)
                    try AtomicFile.write(labelData, to: to)
                }
            }
        }
        if let builtIn = source.builtInDescription {
            let stem = (source.fileName as NSString).deletingPathExtension
            let json = modelsDirectory.appendingPathComponent(stem + ".json")
            if !fm.fileExists(atPath: json.path) { try AtomicFile.write(try builtIn.jsonData(), to: json) }
        }
        let target = modelsDirectory.appendingPathComponent(source.fileName)
        try AtomicFile.copy(file, to: target)
        if let stamp = FileStamp(path: target.path) {
            try? AtomicFile.write(Data(stamp.line(digest: digest).utf8), to: stampFile(for: source))
        }
        return target
    }

    /// Downloads to a temporary file (synchronously; a CLI has nothing else to do meanwhile).
    func download(_ url: URL) throws -> URL {
        final class Outcome: @unchecked Sendable {
            var result: Result<URL, Error>
            init(_ result: Result<URL, Error>) { self.result = result }
        }
        let outcome = Outcome(.failure(ModelStoreError.download(url.absoluteString, detail: "no answer")))
        let semaphore = DispatchSemaphore(value: 0)
        let task = URLSession.shared.downloadTask(with: url) { location, response, error in
            defer { semaphore.signal() }
            if let error {
                outcome.result = .failure(ModelStoreError.download(url.absoluteString, detail: error.localizedDescription))
                return
            }
            if let http = response as? HTTPURLResponse, http.statusCode != 200 {
                outcome.result = .failure(ModelStoreError.download(url.absoluteString, detail: "HTTP \(http.statusCode)"))
                return
            }
            guard let location else { return }
            let keep = FileManager.default.temporaryDirectory.appendingPathComponent("dream-download-\(UUID().uuidString)")
            TemporaryFiles.register(keep.path)
            do {
                try FileManager.default.moveItem(at: location, to: keep)
                outcome.result = .success(keep)
            } catch {
                outcome.result = .failure(error)
            }
        }
        task.resume()
        semaphore.wait()
        return try outcome.result.get()
    }

    /// The model zoo's synset.txt ("n01440764 tench, Tinca tinca" per line) saved as plain labels.
    func fetchLabels(_ url: URL, as fileName: String) throws {
        let file = try download(url)
        defer { TemporaryFiles.remove(file.path) }
        let text = try String(contentsOf: file, encoding: .utf8)
        let labels = text.split(separator: "\n").map { line -> String in
            let parts = line.split(separator: " ", maxSplits: 1)
            return parts.count == 2 && parts[0].hasPrefix("n") ? String(parts[1]) : String(line)
        }
        try AtomicFile.write(Data(labels.joined(separator: "\n").utf8),
                             to: try ContainedPath.resolve(fileName, inside: modelsDirectory, what: "labels file"))
    }
}

/// What identifies one version of a file on disk: size, modification time and identity. A verified stamp records these
/// with the digest; any change (rewrite, truncation, replacement) forces a new hash.
struct FileStamp {
    var size: Int64, seconds: Int, nanoseconds: Int, device: UInt64, inode: UInt64

    init?(path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        size = Int64(st.st_size)
        #if os(Linux)
        seconds = Int(st.st_mtim.tv_sec)
        nanoseconds = Int(st.st_mtim.tv_nsec)
        #else
        seconds = Int(st.st_mtimespec.tv_sec)
        nanoseconds = Int(st.st_mtimespec.tv_nsec)
        #endif
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
    }

    func line(digest: String) -> String {
        "size=\(size) mtime=\(seconds).\(nanoseconds) dev=\(device) ino=\(inode) sha256=\(digest)\n"
    }
}
