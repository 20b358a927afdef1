import Foundation
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

    public var description: String {
        switch self {
        case let .unknownModel(name, known):
            return "unknown model '\(name)': give a path to an .onnx file or one of: \(known.joined(separator: ", "))"
        case let .notAvailable(name, detail): return "model '\(name)' is not available: \(detail)"
        case let .checksumMismatch(file, expected, actual):
            return "\(file): SHA-256 is \(actual), expected \(expected) (corrupt or different file; not used)"
        case let .download(url, detail): return "download of \(url) failed: \(detail)"
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

    public static let defaultModelName = "googlenet"

    public init(home: URL, mirror: URL?, log: @escaping (String) -> Void = { _ in }) {
        self.home = home
        self.mirror = mirror
        self.log = log
    }

    public static func fromEnvironment(log: @escaping (String) -> Void = { _ in }) -> ModelStore {
        let env = ProcessInfo.processInfo.environment
        let home = env["DREAM_HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/dream")
        let mirror = env["DREAM_MODEL_MIRROR"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
        return ModelStore(home: home, mirror: mirror, log: log)
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
        var problems: [String] = []
        // Cached files first, then the mirror, then downloads: a cached file is never fetched again.
        for source in known.sources {
            let cached = modelsDirectory.appendingPathComponent(source.fileName)
            if FileManager.default.fileExists(atPath: cached.path) { return cached }
        }
        for source in known.sources {
            guard let mirror else { break }
            let candidate = mirror.appendingPathComponent(source.fileName)
            guard FileManager.default.fileExists(atPath: candidate.path) else {
                problems.append("\(source.fileName) not in the mirror \(mirror.path)")
                continue
            }
            log("copying \(source.fileName) from the mirror \(mirror.path) into \(modelsDirectory.path)")
            return try install(from: candidate, source: source, sidecarDirectory: mirror)
        }
        for source in known.sources {
            guard let url = source.url else { continue }
            log("downloading \(url.absoluteString) into \(modelsDirectory.path)")
            let temporary = try download(url)
            defer { try? FileManager.default.removeItem(at: temporary) }
            let installed = try install(from: temporary, source: source, sidecarDirectory: nil)
            if source.builtInDescription?.labels != nil, let labelsURL = source.labelsURL {
                try? fetchLabels(labelsURL, as: source.builtInDescription!.labels!)
            }
            return installed
        }
        throw ModelStoreError.notAvailable(query, detail: (problems + ["no mirror (DREAM_MODEL_MIRROR) has it and it has no public download"])
            .joined(separator: "; "))
    }

    /// Checks the SHA-256 and copies the file (and its JSON description and labels, when beside it) into the cache atomically.
    func install(from file: URL, source: KnownModel.Source, sidecarDirectory: URL?) throws -> URL {
        let digest = try SHA256.hexDigest(ofFile: file)
        guard digest == source.sha256 else {
            throw ModelStoreError.checksumMismatch(file: file.path, expected: source.sha256, actual: digest)
        }
        let fm = FileManager.default
        try fm.createDirectory(at: modelsDirectory, withIntermediateDirectories: true)
        if let sidecarDirectory {
            let stem = (source.fileName as NSString).deletingPathExtension
            let json = sidecarDirectory.appendingPathComponent(stem + ".json")
            if let data = try? Data(contentsOf: json) {
                try copyAtomically(data, to: modelsDirectory.appendingPathComponent(stem + ".json"))
                if let labels = (try? ModelDescription(json: data))?.labels,
                   let labelData = try? Data(contentsOf: sidecarDirectory.appendingPathComponent(labels)) {
                    try copyAtomically(labelData, to: modelsDirectory.appendingPathComponent(labels))
                }
            }
        }
        if let builtIn = source.builtInDescription {
            let stem = (source.fileName as NSString).deletingPathExtension
            let json = modelsDirectory.appendingPathComponent(stem + ".json")
            if !fm.fileExists(atPath: json.path) { try copyAtomically(try builtIn.jsonData(), to: json) }
        }
        let target = modelsDirectory.appendingPathComponent(source.fileName)
        let temporary = modelsDirectory.appendingPathComponent(".\(source.fileName).\(ProcessInfo.processInfo.processIdentifier).partial")
        try? fm.removeItem(at: temporary)
        try fm.copyItem(at: file, to: temporary)
        if fm.fileExists(atPath: target.path) { try fm.removeItem(at: target) }
        try fm.moveItem(at: temporary, to: target)
        return target
    }

    func copyAtomically(_ data: Data, to url: URL) throws {
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).partial")
        try data.write(to: temporary)
        if FileManager.default.fileExists(atPath: url.path) { try FileManager.default.removeItem(at: url) }
        try FileManager.default.moveItem(at: temporary, to: url)
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
        defer { try? FileManager.default.removeItem(at: file) }
        let text = try String(contentsOf: file, encoding: .utf8)
        let labels = text.split(separator: "\n").map { line -> String in
            let parts = line.split(separator: " ", maxSplits: 1)
            return parts.count == 2 && parts[0].hasPrefix("n") ? String(parts[1]) : String(line)
        }
        try copyAtomically(Data(labels.joined(separator: "\n").utf8), to: modelsDirectory.appendingPathComponent(fileName))
    }
}
