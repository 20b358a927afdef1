import Foundation
import XCTest

/// Runs the built `dream` executable (the one beside the test bundle) and captures what it prints.
public struct CommandResult {
    public var status: Int32
    public var stdout: String
    public var stderr: String

    public init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }
}

public enum DreamExecutable {
    /// The `dream` binary of the same build (debug or release) as the tests.
    public static func url() throws -> URL {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent(),
        ].map { $0.appendingPathComponent("dream") }
            + ["release", "debug"].map { SharedData.packageRoot.appendingPathComponent(".build/\($0)/dream") }
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw XCTSkip("the dream executable was not built (swift build)")
        }
        return found
    }

    /// Runs `dream` with arguments; the model cache is `home` and the mirror is ../shared/models.
    /// `environment` adds or replaces variables of this process's environment.
    public static func run(_ arguments: [String], home: URL, mirror: URL? = nil, directory: URL? = nil,
                           environment extra: [String: String] = [:]) throws -> CommandResult {
        let process = Process()
        process.executableURL = try url()
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["DREAM_HOME"] = home.path
        if let mirror { environment["DREAM_MODEL_MIRROR"] = mirror.path } else { environment.removeValue(forKey: "DREAM_MODEL_MIRROR") }
        environment.merge(extra) { $1 }
        process.environment = environment
        if let directory { process.currentDirectoryURL = directory }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes to the end before waiting, so that a chatty child never blocks on a full pipe.
        final class Collected: @unchecked Sendable { var data = Data() }
        let collected = Collected()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { collected.data = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        let outData = collected.data
        process.waitUntilExit()
        return CommandResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                             stderr: String(decoding: errData, as: UTF8.self))
    }
}
