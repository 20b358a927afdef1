import Foundation
import Imaging
import Inspection
import Models
import Network
import Tensors
import TestSupport
import XCTest

/// Grad-CAM against an independent implementation (Tests/tools/gradcam_onnxruntime.py: onnxruntime forward passes,
/// channel weights by central differences, its own upsampling): Pearson correlation ≥ 0.98 at the input resolution.
/// Optional: runs only when `$DREAM_PYTHON` (default python3) can import onnxruntime and onnx.
final class GradCAMCrossCheckTests: XCTestCase {
    func python() throws -> String {
        let python = ProcessInfo.processInfo.environment["DREAM_PYTHON"] ?? "python3"
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        probe.arguments = [python, "-c", "import onnxruntime, onnx, numpy"]
        probe.standardOutput = FileHandle.nullDevice
        probe.standardError = FileHandle.nullDevice
        do { try probe.run() } catch { throw XCTSkip("\(python) cannot be started: the onnxruntime cross-check is skipped") }
        probe.waitUntilExit()
        if probe.terminationStatus != 0 {
            throw XCTSkip("\(python) cannot import onnxruntime and onnx (set DREAM_PYTHON to one that can): the cross-check is skipped")
        }
        return python
    }

    static func pearson(_ a: [Float], _ b: [Float]) -> Double {
        let n = Double(a.count)
        let ma = a.reduce(0.0) { $0 + Double($1) } / n, mb = b.reduce(0.0) { $0 + Double($1) } / n
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for i in a.indices {
            let da = Double(a[i]) - ma, db = Double(b[i]) - mb
            sab += da * db; saa += da * da; sbb += db * db
        }
        return sab / max((saa * sbb).squareRoot(), 1e-30)
    }

    func testGradCAMAgreesWithOnnxruntimeOnSeveralPhotos() throws {
        let python = try python()
        let modelURL = try SharedData.file("models/googlenet_bvlc.onnx")
        let model = try LoadedModel(url: modelURL)
        let attributor = try Attributor(model: model)
        let dir = try SharedData.temporaryDirectory(for: self)
        let script = SharedData.packageRoot.appendingPathComponent("Tests/tools/gradcam_onnxruntime.py")
        for name in ["chelsea.png", "dog.jpg", "kite.jpg"] {
            let input = try model.featureInput(image: try ImageFile.read(try SharedData.file("images/\(name)")), size: .modelDefault)
            let ours = try attributor.explain(input.image, method: .gradcam)
            let xURL = dir.appendingPathComponent("x.npy"), outURL = dir.appendingPathComponent("cam.npy")
            try NumPyFile.write(.float(input.tensor), to: xURL)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [python, script.path, modelURL.path, xURL.path, try XCTUnwrap(ours.layer), attributor.scoreName,
                                 String(ours.classIndex), outURL.path]
            try process.run()
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0)
            let theirs = try XCTUnwrap(NumPyFile.read(contentsOf: outURL).floatTensor)
            XCTAssertEqual(theirs.shape, [ours.height, ours.width])
            let r = Self.pearson(ours.map, theirs.scalars)
            print("Grad-CAM \(name) class \(ours.classIndex): Pearson \(r) against onnxruntime")
            XCTAssertGreaterThanOrEqual(r, 0.98, name)
        }
    }
}
