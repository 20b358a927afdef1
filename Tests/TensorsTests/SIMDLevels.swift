import Tensors
import XCTest

extension XCTestCase {
    /// Runs `body` at every instruction-set level of the C kernels this CPU supports (`SIMDLevel.supported`), then
    /// restores the level; a failure names the level it happened at.
    func forEachSIMDLevel(_ body: (SIMDLevel) throws -> Void, file: StaticString = #filePath, line: UInt = #line) rethrows {
        let before = SIMDLevel.current
        defer { SIMDLevel.pin(before) }
        for level in SIMDLevel.supported {
            XCTAssertEqual(SIMDLevel.pin(level), level, "pinning \(level)", file: file, line: line)
            let failures = testRun?.totalFailureCount ?? 0
            try body(level)
            if let run = testRun, run.totalFailureCount > failures {
                print("\(name): the failures above happened with SIMD level \(level)")
            }
        }
    }
}
