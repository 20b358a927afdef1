import Dispatch
import Foundation

/// Every temporary file or folder dream creates is registered here until it is renamed into place or removed, so
/// that an error, Ctrl-C (SIGINT) or SIGTERM never leaves one behind.
public enum TemporaryFiles {
    private static let lock = NSLock()
    private static var paths: [String: Bool] = [:]  // path -> is a directory
    private static var signalSources: [DispatchSourceSignal] = []
    /// Set once a signal handler has started cleaning up: no new temporary file may appear after that.
    private static var terminating = false

    public static func register(_ path: String, isDirectory: Bool = false) {
        lock.lock()
        if terminating {
            // The process is exiting on a signal: creating the file now would leave it behind.
            lock.unlock()
            while true { pause() }
        }
        paths[path] = isDirectory
        lock.unlock()
    }

    public static func unregister(_ path: String) {
        lock.lock(); paths[path] = nil; lock.unlock()
    }

    /// Paths currently registered (for tests).
    public static var registered: [String] {
        lock.lock(); defer { lock.unlock() }
        return Array(paths.keys)
    }

    /// Removes `path` (a folder with everything inside) and forgets it.
    public static func remove(_ path: String) {
        lock.lock(); let isDirectory = paths.removeValue(forKey: path) ?? false; lock.unlock()
        if isDirectory { try? FileManager.default.removeItem(atPath: path) } else { unlink(path) }
    }

    /// Removes everything registered.
    public static func removeAll() {
        lock.lock(); let all = paths; paths = [:]; lock.unlock()
        for (path, isDirectory) in all {
            if isDirectory { try? FileManager.default.removeItem(atPath: path) } else { unlink(path) }
        }
    }

    /// SIGINT, SIGTERM and SIGHUP remove the registered temporary files, print `message(signal)` on stderr and exit
    /// with 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM). The handlers run on a dispatch queue, not in
    /// signal context, so they may take locks and touch the file system while the main thread is busy computing.
    public static func installSignalHandlers(message: @escaping (Int32) -> String) {
        lock.lock(); defer { lock.unlock() }
        guard signalSources.isEmpty else { return }
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: DispatchQueue.global(qos: .userInteractive))
            source.setEventHandler {
                lock.lock(); terminating = true; let all = paths; lock.unlock()
                removeAll()
                // A path registered just before may be created a moment after its removal: remove once more.
                usleep(20_000)
                for (path, isDirectory) in all {
                    if isDirectory { try? FileManager.default.removeItem(atPath: path) } else { unlink(path) }
                }
                let text = message(sig)
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
