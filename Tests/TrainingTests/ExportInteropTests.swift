import Foundation
import Imaging
import Models
import Network
import Tensors
import TestSupport
import Training
import XCTest

final class ExportInteropTests: XCTestCase {
    func trainedClipartModel(in dir: URL) throws -> URL {
        let job = try FineTuning(model: try TrainingFixtures.googlenet(), data: try TrainingFixtures.clipart4(), targets: nil,
                                 settings: TrainingFixtures.settings { $0.epochs = 2 }, cacheHome: TrainingFixtures.cacheHome)
        try job.trainer.prepare()
        let result = try job.trainer.run(checkpoint: nil)
        let url = dir.appendingPathComponent("clipart.onnx")
        try job.export(to: url)
        try TrainingReport.write(to: dir.appendingPathComponent("report"), model: "clipart.onnx", history: result.history,
                                 bestEpoch: result.bestEpoch, metrics: job.metrics(result), predictions: result.predictions,
                                 summary: [("data", "clipart4")])
        return url
    }

    /// onnxruntime runs the exported file unchanged and gives the same `prob` as dream for the same preprocessed
    /// input. Float32 summation order differs between the runtimes: 1e-4 absolute on probabilities is ~100 ulp.
    func testOnnxruntimeGivesTheSameOutputs() throws {
        try PythonScript.require("onnxruntime, numpy", for: "the interop check")
        let dir = try SharedData.temporaryDirectory(for: self)
        let url = try trainedClipartModel(in: dir)
        let model = try LoadedModel(url: url)
        let image = try ImageFile.read(try SharedData.file("images/chelsea.png"))
        let x = try model.inputTensor(for: try model.preprocessing.prepareForClassification(image))
        let ours = try model.executor.run(["input": .float(x)], outputs: ["prob", "logits"])
        try NumPyFile.write(.float(x), to: dir.appendingPathComponent("x.npy"))
        let script = """
        import json, sys, numpy as np, onnxruntime as ort
        s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
        meta = s.get_modelmeta().custom_metadata_map
        prob, logits = s.run(["prob", "logits"], {"input": np.load(sys.argv[2])})
        print(json.dumps({"prob": prob.ravel().tolist(), "logits": logits.ravel().tolist(), "labels": meta.get("dream.labels", "")}))
        """
        let data = try PythonScript.run(script, arguments: [url.path, dir.appendingPathComponent("x.npy").path])
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(object["labels"] as? String, "birds\nflowers\nfruit\nvehicles")
        let prob = try XCTUnwrap(object["prob"] as? [Double]), logits = try XCTUnwrap(object["logits"] as? [Double])
        let ourProb = ours["prob"]!.floatTensor!.scalars, ourLogits = ours["logits"]!.floatTensor!.scalars
        XCTAssertEqual(prob.count, 4)
        for i in 0..<4 {
            XCTAssertEqual(prob[i], Double(ourProb[i]), accuracy: 1e-4)
            XCTAssertEqual(logits[i], Double(ourLogits[i]), accuracy: 1e-3 * max(1, abs(logits[i])))
        }
        // And `dream classify`'s probabilities are the same numbers.
        let classified = try model.classProbabilities(image)
        for i in 0..<4 { XCTAssertEqual(Double(classified[i]), Double(ourProb[i]), accuracy: 1e-6) }
    }

    /// The report page opens in a browser and shows the curves (checked like the features index).
    func testReportIndexRendersInHeadlessChromium() throws {
        guard let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
            .first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("chromium is not installed (apt-get install chromium)")
        }
        let dir = try SharedData.temporaryDirectory(for: self)
        _ = try trainedClipartModel(in: dir)
        let index = dir.appendingPathComponent("report/index.html")
        let html = try String(contentsOf: index, encoding: .utf8)
        XCTAssertTrue(html.contains("curves.png") && html.contains("confusion.png"))
        XCTAssertFalse(html.contains("<script"))
        let shot = dir.appendingPathComponent("index.png")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: chromium)
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--screenshot=\(shot.path)", "--window-size=1000,1400", index.absoluteString]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        let image = try ImageFile.read(shot)
        // The curves (blue and orange lines on white) are drawn: coloured pixels in the page.
        var coloured = 0
        for y in stride(from: 0, to: image.height, by: 2) {
            for x in stride(from: 0, to: image.width, by: 2) {
                let c = image[x, y]
                if max(c.r, c.g, c.b) - min(c.r, c.g, c.b) > 60 { coloured += 1 }
            }
        }
        XCTAssertGreaterThan(coloured, 500, "curves and confusion matrix are drawn")
    }
}
