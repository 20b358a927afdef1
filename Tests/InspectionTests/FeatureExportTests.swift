import Foundation
import Imaging
import Inspection
import Models
import Network
import Tensors
import TestSupport
import XCTest

/// `FeatureExport` on the shared GoogLeNet: golden activations, the files written, the HTML index and how it renders.
final class FeatureExportTests: XCTestCase {
    nonisolated(unsafe) static var cachedModel: LoadedModel?
    nonisolated(unsafe) static var cachedIndex: URL?

    func googlenet() throws -> LoadedModel {
        if let model = Self.cachedModel { return model }
        let model = try LoadedModel(url: try SharedData.file("models/googlenet_bvlc.onnx"))
        Self.cachedModel = model
        return model
    }

    /// One --all-layers run at 128x128 (GoogLeNet ends in a global pool, so any size works), shared by the index tests.
    func allLayersIndex() throws -> URL {
        if let url = Self.cachedIndex { return url }
        let model = try googlenet()
        let photo = try ImageFile.read(SharedData.packageRoot.appendingPathComponent("samples/chelsea.png"))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dream-features-index-\(UUID().uuidString)")
        var request = FeatureRequest(outputDirectory: dir)
        request.allLayers = true
        let result = try FeatureExport.run(model: model, input: try model.featureInput(image: photo, size: .square(128)), request: request)
        XCTAssertGreaterThan(result.layers.count, 60, "every Conv, Concat and pool of GoogLeNet")
        let index = try XCTUnwrap(result.index)
        Self.cachedIndex = index
        return index
    }

    override class func tearDown() {
        if let index = cachedIndex { try? FileManager.default.removeItem(at: index.deletingLastPathComponent()) }
        super.tearDown()
    }

    func testInception3bNpyChannelImagesAndGridFromTheGoldenDogInput() throws {
        let model = try googlenet()
        let x = try XCTUnwrap(NumPyFile.read(contentsOf: try SharedData.file("golden/googlenet_bvlc/dog.input.npy")).floatTensor)
        let expected = try XCTUnwrap(NumPyFile.read(contentsOf: try SharedData.file("golden/googlenet_bvlc/dog.inception_3b_output.npy")).floatTensor)
        let dir = try SharedData.temporaryDirectory(for: self)
        var request = FeatureRequest(outputDirectory: dir)
        request.layers = ["inception_3b_output"]
        request.npy = dir.appendingPathComponent("acts.npy")
        request.overlay = true
        let result = try FeatureExport.run(model: model, input: try model.featureInput(tensor: x), request: request)

        let got = try XCTUnwrap(NumPyFile.read(contentsOf: dir.appendingPathComponent("acts.npy")).floatTensor)
        XCTAssertEqual(got.shape, [1, 480, 28, 28])
        // Values reach 520: float32 summation order leaves ~1e-3 at a couple of the 376,320 values (1e-5 relative).
        let scale = expected.scalars.map(abs).max() ?? 1
        XCTAssertLessThanOrEqual(got.maxAbsDifference(expected), 1e-5 * scale)
        XCTAssertLessThan(got.relativeL2Error(to: expected), 1e-5)

        let layerDir = dir.appendingPathComponent("inception_3b_output")
        let pngs = try FileManager.default.contentsOfDirectory(atPath: layerDir.path).filter { $0.hasPrefix("c") && $0.hasSuffix(".png") }
        XCTAssertEqual(pngs.count, 480)
        XCTAssertEqual(result.layers.first?.channelImages, 480)
        // The most active channel's picture and the grid are real pictures, not flat.
        let busiest = try XCTUnwrap(try LayerActivations(layer: "3b", tensor: got).topChannels(1).first)
        for name in [String(format: "c%04d.png", busiest), "grid.png", "overlay.png"] {
            let image = try ImageFile.read(layerDir.appendingPathComponent(name))
            let lo = image.pixels.min() ?? 0, hi = image.pixels.max() ?? 0
            XCTAssertGreaterThan(hi - lo, 100, "\(name) is not blank")
        }
        let channel = try ImageFile.read(layerDir.appendingPathComponent("c0000.png"))
        XCTAssertEqual(channel.width, 28 * FeatureRendering.upscaleFactor(side: 28, target: FeatureRendering.channelImageTarget))
        let overlay = try ImageFile.read(layerDir.appendingPathComponent("overlay.png"))
        XCTAssertEqual([overlay.width, overlay.height], [224, 224], "overlays have the working image's size")
    }

    func testFeatureMapsOfAPhotoMatchTheGoldenActivationsOfItsClassificationCrop() throws {
        // The default working size is the classification pipeline (256, crop 224), as the golden inputs were made.
        let model = try googlenet()
        let photo = try ImageFile.read(try SharedData.file("images/chelsea.png"))
        let input = try model.featureInput(image: photo, size: .modelDefault)
        let golden = try XCTUnwrap(NumPyFile.read(contentsOf: try SharedData.file("golden/googlenet_bvlc/chelsea.input.npy")).floatTensor)
        XCTAssertEqual(input.tensor.shape, golden.shape)
        XCTAssertLessThanOrEqual(input.tensor.maxAbsDifference(golden), 1.01)
        XCTAssertEqual(try model.featureInput(image: photo, size: .square(160)).tensor.shape, [1, 3, 160, 160])
        XCTAssertEqual(try model.featureInput(image: photo, size: .original).tensor.shape, [1, 3, photo.height, photo.width])
    }

    func testUnknownLayerListsCloseMatches() throws {
        let model = try googlenet()
        var request = FeatureRequest(outputDirectory: try SharedData.temporaryDirectory(for: self))
        request.layers = ["inception_3b_outptu"]
        let input = FeatureInput(image: RGBImage(width: 32, height: 32), tensor: Tensor(shape: [1, 3, 32, 32]))
        XCTAssertThrowsError(try FeatureExport.run(model: model, input: input, request: request)) { error in
            XCTAssertTrue(String(describing: error).contains("inception_3b_output"), "\(error)")
        }
    }

    func testIndexLinksAllResolveToFilesThatExist() throws {
        let index = try allLayersIndex()
        let html = try String(contentsOf: index, encoding: .utf8)
        let dir = index.deletingLastPathComponent()
        let regex = try NSRegularExpression(pattern: #"(?:href|src)="([^"]*)""#)
        let links = regex.matches(in: html, range: NSRange(html.startIndex..., in: html)).map {
            String(html[Range($0.range(at: 1), in: html)!])
        }
        XCTAssertGreaterThan(links.count, 120)
        var grids = 0
        for link in links {
            XCTAssertFalse(link.contains("://") || link.hasPrefix("/"), "\(link) is not relative")
            if link.hasPrefix("#") {
                XCTAssertTrue(html.contains("id=\"\(link.dropFirst())\""), "anchor \(link) exists")
                continue
            }
            let path = link.removingPercentEncoding ?? link
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent(path).path), "\(link) exists")
            if path.hasSuffix("/grid.png") { grids += 1 }
        }
        XCTAssertGreaterThan(grids, 60)
        XCTAssertTrue(links.contains("input.png"))
        XCTAssertTrue(links.contains("inception_3b_output/grid.png"))
        XCTAssertFalse(html.contains("<script"), "no scripts")
    }

    func testIndexRendersInHeadlessChromium() throws {
        guard let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
            .first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("chromium is not installed (apt-get install chromium)")
        }
        let index = try allLayersIndex()
        let shot = try SharedData.temporaryDirectory(for: self).appendingPathComponent("index.png")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: chromium)
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--screenshot=\(shot.path)",
                             "--window-size=1000,1400", index.absoluteString]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        let started = Date()
        try process.run()
        process.waitUntilExit()
        XCTAssertLessThan(Date().timeIntervalSince(started), 60)
        let image = try ImageFile.read(shot)
        XCTAssertEqual(image.width, 1000)
        // The page shows the photo near the top left: colourful pixels there, not a blank white page.
        var colourful = 0
        for y in 60..<260 {
            for x in 20..<220 {
                let c = image[x, y]
                if max(c.r, c.g, c.b) - min(c.r, c.g, c.b) > 30 { colourful += 1 }
            }
        }
        XCTAssertGreaterThan(colourful, 5000, "the input photo is drawn")
    }
}
