import Foundation
import SafeIO
import TestSupport
import XCTest

/// A signal's cleanup runs while the work goes on in another thread; nothing the work does afterwards may bring a
/// temporary entry back. These tests use their own registry so that closing its gate does not stop the test process.
final class TemporaryFilesTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("dream-temporary-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    /// A thread that parks here never comes back; the count tells the test how many did.
    private final class Parked: @unchecked Sendable {
        private let lock = NSLock()
        private var count = 0
        var value: Int { lock.lock(); defer { lock.unlock() }; return count }
        func park() -> Never {
            lock.lock(); count += 1; lock.unlock()
            DispatchSemaphore(value: 0).wait()
            fatalError("unreachable")
        }
    }

    private final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var count = 0
        var value: Int { lock.lock(); defer { lock.unlock() }; return count }
        func increment() { lock.lock(); count += 1; lock.unlock() }
    }

    private func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    func testFoldersCreatedWithTheirParentsDoNotBringBackAStagingFolderAfterCleanup() throws {
        let parked = Parked()
        let registry = TemporaryFiles.Registry(park: parked.park)
        let staging = scratch.appendingPathComponent(TemporaryFiles.uniqueName()).path
        XCTAssertTrue(registry.create(staging, isDirectory: true) { mkdir(staging, 0o755) == 0 })
        // The work: folders (with parents, as feature export makes them) and files inside the staging folder, as
        // fast as it can, until the gate stops it.
        let made = Counter()
        let worker = Thread {
            var k = 0
            while true {
                let folder = URL(fileURLWithPath: staging).appendingPathComponent("layer\(k)")
                try? registry.creating { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
                let file = folder.appendingPathComponent("grid.png").path
                _ = registry.creating { FileManager.default.createFile(atPath: file, contents: Data([1, 2, 3])) }
                made.increment()
                k += 1
            }
        }
        worker.start()
        let start = Date()
        while made.value < 20 && Date().timeIntervalSince(start) < 30 { usleep(1_000) }
        XCTAssertGreaterThanOrEqual(made.value, 20, "the worker never got going")

        XCTAssertEqual(registry.terminate(), [], "every registered path is removed")
        let stopped = Date()
        while parked.value == 0 && Date().timeIntervalSince(stopped) < 10 { usleep(1_000) }
        XCTAssertEqual(parked.value, 1, "the worker waits at the gate")
        let madeWhenParked = made.value
        usleep(50_000)
        XCTAssertEqual(made.value, madeWhenParked, "nothing is made after the gate closed")
        XCTAssertFalse(exists(staging), "the staging folder came back")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path), [])
        XCTAssertEqual(registry.registered, [])
    }

    func testAFileRegisteredAfterCleanupIsNeverCreated() throws {
        let parked = Parked()
        let registry = TemporaryFiles.Registry(park: parked.park)
        let early = scratch.appendingPathComponent(TemporaryFiles.uniqueName()).path
        XCTAssertTrue(registry.create(early, isDirectory: false) { FileManager.default.createFile(atPath: early, contents: nil) })
        XCTAssertEqual(registry.terminate(), [])
        XCTAssertFalse(exists(early))

        let late = scratch.appendingPathComponent(TemporaryFiles.uniqueName()).path
        let done = expectation(description: "late creation")
        done.isInverted = true
        Thread {
            _ = registry.create(late, isDirectory: false) { FileManager.default.createFile(atPath: late, contents: nil) }
            done.fulfill()
        }.start()
        wait(for: [done], timeout: 0.2)
        XCTAssertEqual(parked.value, 1)
        XCTAssertFalse(exists(late))
        XCTAssertEqual(registry.registered, [])
    }

    func testAFailedCreationIsForgotten() throws {
        let registry = TemporaryFiles.Registry()
        let missing = scratch.appendingPathComponent("no-such-folder").appendingPathComponent(TemporaryFiles.uniqueName()).path
        XCTAssertFalse(registry.create(missing, isDirectory: true) { mkdir(missing, 0o755) == 0 })
        XCTAssertEqual(registry.registered, [])
        let made = scratch.appendingPathComponent(TemporaryFiles.uniqueName()).path
        XCTAssertTrue(registry.create(made, isDirectory: true) { mkdir(made, 0o755) == 0 })
        XCTAssertEqual(registry.registered, [made])
        registry.remove(made)
        XCTAssertFalse(exists(made))
        XCTAssertEqual(registry.registered, [])
    }
}
