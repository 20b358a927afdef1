import Foundation
import Imaging
import Models
import TestSupport
import XCTest

/// The `input` object of a description is one flat JSON object: the input's name and sizes beside the
/// `Preprocessing` fields, which the description holds as a `Preprocessing` rather than as copies.
final class ModelDescriptionTests: XCTestCase {
    func testSharedDescriptionsDecodeToTheirPreprocessingAndRoundTripFlat() throws {
        for (name, expected) in [("googlenet_bvlc", Preprocessing.caffeBGR), ("squeezenet1_1", .imagenetRGB)] {
            let description = try ModelDescription(json: Data(contentsOf: try SharedData.file("models/\(name).json")))
            XCTAssertEqual(description.input.preprocessing, expected, name)
            XCTAssertEqual(description.input.name, "input")
            XCTAssertEqual(description.input.defaultSize, [224, 224])
            let encoded = try description.jsonData()
            let input = try XCTUnwrap((try JSONSerialization.jsonObject(with: encoded) as? [String: Any])?["input"] as? [String: Any])
            XCTAssertEqual(input["name"] as? String, "input")
            XCTAssertEqual(input["channel_order"] as? String, expected.channelOrder.rawValue, "flat, not nested under a key")
            XCTAssertEqual(input["resize_shorter"] as? Int, 256)
            XCTAssertEqual(try ModelDescription(json: encoded), description)
        }
    }

    func testChannelOrderIsReadInAnyCaseAndAnUnknownOrderIsRefused() throws {
        func input(_ order: String) -> Data {
            Data(#"{"input": {"channel_order": "\#(order)", "pixel_range": [-1, 1], "mean": [0], "std": [0.5]}}"#.utf8)
        }
        XCTAssertEqual(try ModelDescription(json: input("bgr")).input.preprocessing.channelOrder, .bgr)
        XCTAssertEqual(try ModelDescription(json: input("Rgb")).input.preprocessing.channelOrder, .rgb)
        XCTAssertThrowsError(try ModelDescription(json: input("GRB")))
    }
}
