import Foundation
import Inspection
import Network
import Tensors
import XCTest

final class NumPyArchiveTests: XCTestCase {
    func arrays() -> [(key: String, value: Value)] {
        [("conv2_3x3", .float(Tensor(shape: [2, 3, 4, 5], scalars: (0..<120).map { Float($0) * 0.5 - 7 }))),
         ("inception/3b", .float(Tensor(shape: [1, 6], scalars: [1, -2, 3.25, 4e-8, 5e20, -0.0])))]
    }

    func testArchiveReadsBackInSwift() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("acts-\(UUID().uuidString).npz")
        defer { try? FileManager.default.removeItem(at: url) }
        try NumPyArchive.write(arrays(), to: url)
        let back = try NumPyArchive.read(contentsOf: url)
        XCTAssertEqual(back.map(\.key), arrays().map(\.key))
        for (a, b) in zip(back, arrays()) {
            XCTAssertEqual(a.value.shape, b.value.shape)
            XCTAssertEqual(a.value.floatTensor?.scalars, b.value.floatTensor?.scalars)
        }
        XCTAssertEqual(try NumPyArchive.serialize(arrays()), try Data(contentsOf: url), "same arrays, same bytes")
    }

    func testDuplicateNamesAreRefused() {
        XCTAssertThrowsError(try NumPyArchive.serialize([arrays()[0], arrays()[0]]))
    }

    func testStackingImagesAddsABatchDimensionAndRefusesMixedSizes() throws {
        let a = Tensor(shape: [1, 2, 2, 2], scalars: (0..<8).map(Float.init))
        let b = Tensor(shape: [1, 2, 2, 2], scalars: (8..<16).map(Float.init))
        let stacked = try FeatureArrays.stack([[("l", a)], [("l", b)]], imageNames: ["a", "b"])
        XCTAssertEqual(stacked[0].value.shape, [2, 2, 2, 2])
        XCTAssertEqual(stacked[0].value.floatTensor?.scalars, (0..<16).map(Float.init))
        let c = Tensor(shape: [1, 2, 3, 2], scalars: [Float](repeating: 0, count: 12))
        XCTAssertThrowsError(try FeatureArrays.stack([[("l", a)], [("l", c)]], imageNames: ["a", "c"])) { error in
            XCTAssertTrue("\(error)".contains("--size"), "\(error)")
        }
    }

    /// numpy itself opens the archive (skipped when python3 with numpy is not installed).
    func testNumpyLoadOpensTheArchive() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("acts-\(UUID().uuidString).npz")
        defer { try? FileManager.default.removeItem(at: url) }
        try NumPyArchive.write(arrays(), to: url)
        let script = """
        import sys, numpy as np
        z = np.load(sys.argv[1])
        a = z['conv2_3x3']; b = z['inception/3b']
        assert a.dtype == np.float32 and a.shape == (2, 3, 4, 5), a.shape
        assert np.array_equal(a.ravel(), np.arange(120, dtype=np.float32) * 0.5 - 7)
        assert b.shape == (1, 6) and b[0, 2] == 3.25
        print(sorted(z.files))
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import numpy"]
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { throw XCTSkip("python3 is not installed") }
        process.waitUntilExit()
        if process.terminationStatus != 0 { throw XCTSkip("numpy is not installed") }
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        check.arguments = ["python3", "-c", script, url.path]
        let out = Pipe()
        check.standardOutput = out
        check.standardError = out
        try check.run()
        check.waitUntilExit()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(check.terminationStatus, 0, text)
        XCTAssertTrue(text.contains("['conv2_3x3', 'inception/3b']"), text)
    }
}
