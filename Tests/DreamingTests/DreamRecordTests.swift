import Foundation
import Dreaming
import XCTest

final class DreamRecordTests: XCTestCase {
    let text: [String: String] = [
        "dream:version": "0.11.0", "dream:source": "cat.png", "dream:model-argument": "googlenet",
        "dream:model": "googlenet_bvlc.onnx", "dream:model-sha256": String(repeating: "ab", count: 32),
        "dream:layers": #"[{"channels":[97],"name":"inception_4c_output","reduction":"mean","weight":0.5}]"#,
        "dream:objective": "mean", "dream:octaves": "3", "dream:octaves-requested": "8", "dream:octave-scale": "1.4",
        "dream:iterations": "10", "dream:step": "1.5", "dream:jitter": "32", "dream:seed": "18446744073709551615",
        "dream:tile": "512", "dream:threads": "2", "dream:blas": "OpenBLAS 0.3.21, Zen kernels, 2 threads",
        "dream:portable": "yes", "dream:guide": "flowers.jpg", "dream:guide-sha256": String(repeating: "cd", count: 32),
        "dream:max-side": "2000", "dream:size": "640x480",
    ]

    func testTextChunksRoundTrip() throws {
        let record = try XCTUnwrap(try DreamRecord(text: text, file: "x.png"))
        var again: [String: String] = [:]
        for (k, v) in record.textChunks { again[k] = v }
        XCTAssertEqual(try DreamRecord(text: again, file: "x.png"), record)
        XCTAssertEqual(record.octaves, 3)
        XCTAssertEqual(record.seed, UInt64.max)
        XCTAssertEqual(record.settings.layers, [DreamLayer(name: "inception_4c_output", weight: 0.5, channel: 97, reduction: .mean)])
        XCTAssertEqual(record.settings.octaveScale, 1.4)
    }

    func testArgumentsRepeatTheCommandLine() throws {
        let record = try XCTUnwrap(try DreamRecord(text: text, file: "x.png"))
        XCTAssertEqual(record.arguments, ["--model", "googlenet", "--layer", "inception_4c_output:0.5:97",
                                          "--objective", "mean", "--octaves", "8", "--octave-scale", "1.4", "--iterations", "10",
                                          "--step", "1.5", "--jitter", "32", "--seed", "18446744073709551615", "--tile", "512",
                                          "--threads", "2", "--guide", "flowers.jpg", "--max-side", "2000", "--portable",
                                          "--no-normalize-layers"])
    }

    func testNoRecordIsNilAndADamagedOneNamesTheKey() throws {
        XCTAssertNil(try DreamRecord(text: ["Software": "GIMP"], file: "x.png"))
        var damaged = text
        damaged["dream:seed"] = "seven"
        XCTAssertThrowsError(try DreamRecord(text: damaged, file: "x.png")) { XCTAssertTrue("\($0)".contains("dream:seed"), "\($0)") }
        damaged = text
        damaged["dream:octaves"] = nil
        XCTAssertThrowsError(try DreamRecord(text: damaged, file: "x.png")) { XCTAssertTrue("\($0)".contains("dream:octaves"), "\($0)") }
    }
}
