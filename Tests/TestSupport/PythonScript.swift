import Foundation
import XCTest

/// Optional cross-checks against Python tools (onnxruntime): `python3` as the PATH finds it (a virtualenv or pyenv
/// may hold the packages); a test that needs it is skipped, saying why, when it is missing.
public enum PythonScript {
    static let env = URL(fileURLWithPath: "/usr/bin/env")

    /// Throws `XCTSkip` unless `python3` can run `import <modules>`.
    public static func require(_ modules: String, for purpose: String) throws {
        let probe = Process()
        probe.executableURL = env
        probe.arguments = ["python3", "-c", "import \(modules)"]
        probe.standardError = FileHandle.nullDevice
        guard (try? probe.run()) != nil else { throw XCTSkip("python3 is not installed — skipping \(purpose)") }
        probe.waitUntilExit()
        guard probe.terminationStatus == 0 else { throw XCTSkip("python3 cannot import \(modules) — skipping \(purpose)") }
    }

    /// Runs `python3 -c script arguments…` and returns what it printed; a failure carries its stderr.
    public static func run(_ script: String, arguments: [String]) throws -> Data {
        let run = Process()
        run.executableURL = env
        run.arguments = ["python3", "-c", script] + arguments
        let out = Pipe(), err = Pipe()
        run.standardOutput = out
        run.standardError = err
        try run.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        run.waitUntilExit()
        guard run.terminationStatus == 0 else {
            throw NSError(domain: "PythonScript", code: Int(run.terminationStatus), userInfo: [NSLocalizedDescriptionKey: "python3 failed: \(errText)"])
        }
        return data
    }
}
