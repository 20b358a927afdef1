import XCTest
import Tensors

/// The OPENBLAS_THREAD_TIMEOUT the CLI starts with (`BLASCore.recommendedThreadTimeout`): short on a multi-core
/// machine, nothing on one core (OpenBLAS starts no workers there), and never over the user's own choice.
final class BLASThreadTimeoutTests: XCTestCase {
    func testMultiCoreMachinesGetAShortTimeout() {
        XCTAssertEqual(BLASCore.recommendedThreadTimeout(environment: [:], cores: 2), "4")
        XCTAssertEqual(BLASCore.recommendedThreadTimeout(environment: ["OPENBLAS_CORETYPE": "Haswell"], cores: 64), "4")
    }

    func testTheUsersOwnTimeoutIsKept() {
        XCTAssertNil(BLASCore.recommendedThreadTimeout(environment: ["OPENBLAS_THREAD_TIMEOUT": "28"], cores: 2))
        XCTAssertNil(BLASCore.recommendedThreadTimeout(environment: ["OPENBLAS_THREAD_TIMEOUT": ""], cores: 8))
    }

    func testOneCoreNeedsNone() {
        XCTAssertNil(BLASCore.recommendedThreadTimeout(environment: [:], cores: 1))
    }
}
