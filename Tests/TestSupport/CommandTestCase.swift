import Foundation
import XCTest

/// A test case that runs `dream`: a fresh model cache (`home`), the shared models as the mirror, and a scratch folder,
/// all made for each test (and skipped, saying why, without ../shared).
open class CommandTestCase: XCTestCase {
    public var home: URL!
    public var mirror: URL!
    public var scratch: URL!

    override open func setUpWithError() throws {
        try super.setUpWithError()
        mirror = try SharedData.file("models")
        home = try SharedData.temporaryDirectory(for: self)
        scratch = try SharedData.temporaryDirectory(for: self)
    }
}
