import Dispatch
import Foundation

/// Every temporary file or folder dream creates is registered here until it is renamed into place or removed, so
/// that an error, Ctrl-C (SIGINT) or SIGTERM never leaves one behind.
///
/// A signal's cleanup runs on another thread while the work goes on, so every step that makes something appear on
/// disk (creating a temporary file or folder, a folder inside one, the final rename) runs through `creating`, under
/// the same lock the cleanup takes. Once cleanup has begun, such a step never runs: the thread that asks waits for
/// the exit. Without that gate, a folder created with its parents could bring back the temporary folder that the
/// cleanup had just removed.
public enum TemporaryFiles {
    /// The registry behind the static interface; `Registry` instances exist on their own only for tests.
    public final class Registry: @unchecked Sendable {
        private let lock = NSLock()
        private var paths: [String: Bool] = [:]  // path -> is a directory
        /// Set once cleanup has begun: nothing new may appear on disk after that.
        private var terminating = false
        /// What a thread that must not go on does: wait for the exit the cleanup is about to make.
        private let park: () -> Never

        public init(park: @escaping () -> Never = { while true { pause() } }) { self.park = park }

        /// Runs `body`, which makes something appear on disk, unless cleanup has begun (then the calling thread
        /// waits for the exit instead). The cleanup therefore sees either nothing of `body` or all of it.
        public func creating<T>(_ body: () throws -> T) rethrows -> T {
            lock.lock()
            if terminating { lock.unlock(); park() }
            defer { lock.unlock() }
            return try body()
        }

        /// Registers `path` and creates it with `create` in one step under the gate; `create` returns whether it
        /// made the entry (when it did not, the path is forgotten again).
        public func create(_ path: String, isDirectory: Bool, _ create: () -> Bool) -> Bool {
            creating {
                paths[path] = isDirectory
                let made = create()
                if !made { paths[path] = nil }
                return made
            }
        }

        public func register(_ path: String, isDirectory: Bool = false) {
            creating { paths[path] = isDirectory }
        }

        public func unregister(_ path: String) {
            lock.lock(); paths[path] = nil; lock.unlock()
        }

        public var registered: [String] {
            lock.lock(); defer { lock.unlock() }
            return Array(paths.keys)
        }

        /// Removes `path` (a folder with everything inside) and forgets it.
        public func remove(_ path: String) {
            lock.lock(); let isDirectory = paths.removeValue(forKey: path) ?? false; lock.unlock()
            Self.delete(path, isDirectory: isDirectory)
        }

        /// Removes everything registered (after an error; the work has stopped).
        public func removeAll() {
            lock.lock(); let all = paths; paths = [:]; lock.unlock()
            for (path, isDirectory) in all { Self.delete(path, isDirectory: isDirectory) }
        }

        /// Closes the gate and removes everything registered, while other threads may still be running. A write
        /// already under way (through a descriptor opened before) can still add a file to a folder being removed,
        /// which makes removing the folder fail; so the removal is repeated until every path is gone, for at most
        /// `patience` seconds. Returns the paths that could not be removed.
        @discardableResult
        public func terminate(patience: Double = 2) -> [String] {
            lock.lock(); terminating = true; let all = paths; paths = [:]; lock.unlock()
            let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(patience * 1e9)
            var left = all
            while true {
                for (path, isDirectory) in left { Self.delete(path, isDirectory: isDirectory) }
                left = left.filter { path, _ in Self.exists(path) }
                if left.isEmpty || DispatchTime.now().uptimeNanoseconds >= deadline { return Array(left.keys) }
                usleep(2_000)
            }
        }

        /// Waits for the exit if cleanup has begun (an error seen by the work may just be the cleanup's doing).
        public func parkIfTerminating() {
            lock.lock(); let stop = terminating; lock.unlock()
            if stop { park() }
        }

        private static func delete(_ path: String, isDirectory: Bool) {
            if isDirectory { try? FileManager.default.removeItem(atPath: path) } else { unlink(path) }
        }

        private static func exists(_ path: String) -> Bool {
            var st = stat()
            return lstat(path, &st) == 0
        }
    }

    public static let shared = Registry()
    private static let handlerLock = NSLock()
    private static var signalSources: [DispatchSourceSignal] = []

    /// See `Registry.creating`.
    public static func creating<T>(_ body: () throws -> T) rethrows -> T { try shared.creating(body) }

    /// See `Registry.create`.
    public static func create(_ path: String, isDirectory: Bool, _ create: () -> Bool) -> Bool {
        shared.create(path, isDirectory: isDirectory, create)
    }

    public static func register(_ path: String, isDirectory: Bool = false) { shared.register(path, isDirectory: isDirectory) }

    public static func unregister(_ path: String) { shared.unregister(path) }

    /// Paths currently registered (for tests).
    public static var registered: [String] { shared.registered }

    /// Removes `path` (a folder with everything inside) and forgets it.
    public static func remove(_ path: String) { shared.remove(path) }

    /// Removes everything registered.
    public static func removeAll() { shared.removeAll() }

    /// Waits for the exit if a signal's cleanup has begun.
    public static func parkIfTerminating() { shared.parkIfTerminating() }

    /// Creates `url` with its missing parents, unless a signal's cleanup has begun: the one way library code makes
    /// a folder inside an output that is being staged.
    public static func createFolder(_ url: URL) throws {
        try creating { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) }
    }

    /// SIGINT, SIGTERM and SIGHUP remove the registered temporary files, print `message(signal)` on stderr and exit
    /// with 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM). The handlers run on a dispatch queue, not in
    /// signal context, so they may take locks and touch the file system while the main thread is busy computing.
    public static func installSignalHandlers(message: @escaping (Int32) -> String) {
        handlerLock.lock(); defer { handlerLock.unlock() }
        guard signalSources.isEmpty else { return }
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: DispatchQueue.global(qos: .userInteractive))
            source.setEventHandler {
                let left = shared.terminate()
                var text = message(sig)
                if !left.isEmpty { text += "\ndream: could not remove " + TerminalText.escaped(left.sorted().joined(separator: ", ")) }
                if !text.isEmpty { FileHandle.standardError.write(Data((text + "\n").utf8)) }
                _exit(128 + sig)
            }
            source.resume()
            signalSources.append(source)
        }
    }

    /// A short unique name for a temporary entry beside a target: `.dream-1a2b3c4d5e6f.tmp` (23 bytes, well within
    /// any file-name limit whatever the target's name).
    public static func uniqueName() -> String {
        ".dream-" + String(UInt64.random(in: 0...UInt64.max) & 0xFFFF_FFFF_FFFF, radix: 16) + ".tmp"
    }
}
