import Foundation
import Network
import Tensors
import TestSupport
import XCTest

/// Whole networks built on grouped 3x3 convolutions (`Convolution.Kernel.grouped`): ResNeXt-50 32x4d (4 to 32
/// channels per group) and RegNetY-800MF (16 per group, squeeze-excitation), written with random weights by
/// Tests/Benchmarks/architectures.py (PyTorch and onnx under /usr/bin/python3), give onnxruntime's logits, and
/// their input gradient (every grouped layer's data gradient, strides 1 and 2) that of the same graphs with the
/// groups written out as block-diagonal dense convolutions. Skipped without those Python packages.
final class GroupedArchitectureTests: XCTestCase {
    static func python(_ interpreter: String, canImport modules: String) -> Bool {
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        probe.arguments = [interpreter, "-c", "import \(modules)"]
        probe.standardOutput = FileHandle.nullDevice
        probe.standardError = FileHandle.nullDevice
        guard (try? probe.run()) != nil else { return false }
        probe.waitUntilExit()
        return probe.terminationStatus == 0
    }

    /// Runs `arguments` under `interpreter`, returns stdout; fails the test with stderr on a non-zero exit.
    static func run(_ interpreter: String, _ arguments: [String]) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [interpreter] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, errText)
        return data
    }

    /// The two models in a temporary directory, or a skip saying what is missing.
    func models() throws -> (dir: URL, files: [URL]) {
        // architectures.py needs torch and onnx (Debian's python3-torch, python3-onnx live in /usr/bin/python3).
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"),
              Self.python("/usr/bin/python3", canImport: "torch, onnx") else {
            throw XCTSkip("/usr/bin/python3 cannot import torch and onnx (python3-torch, python3-onnx): no architectures to check")
        }
        guard Self.python("python3", canImport: "onnxruntime, numpy") else {
            throw XCTSkip("python3 cannot import onnxruntime (pip install onnxruntime) — skipping the comparison")
        }
        let dir = try SharedData.temporaryDirectory(for: self)
        let generator = SharedData.packageRoot.appendingPathComponent("Tests/Benchmarks/architectures.py")
        _ = try Self.run("/usr/bin/python3", [generator.path, dir.path, "resnext50", "regnety800mf"])
        return (dir, ["resnext50", "regnety800mf"].map { dir.appendingPathComponent("\($0).onnx") })
    }

    /// Logits from onnxruntime and from dream for the same random 224x224 input agree within 1e-4 of their largest
    /// magnitude: float32 sums in different orders through some fifty layers drift by about 1e-6 relative per layer.
    func testLogitsMatchOnnxruntime() throws {
        let (dir, files) = try models()
        let x = Tensor.random(shape: [1, 3, 224, 224], seed: 31)
        let xFile = dir.appendingPathComponent("x.npy")
        try NumPyFile.write(.float(x), to: xFile)
        let script = """
        import json, sys, numpy as np, onnxruntime as ort
        s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
        print(json.dumps(s.run(["logits"], {"input": np.load(sys.argv[2])})[0].ravel().tolist()))
        """
        for file in files {
            let theirs = try XCTUnwrap(JSONSerialization.jsonObject(with: try Self.run("python3", ["-c", script, file.path, xFile.path]))
                                       as? [Double])
            let executor = try GraphExecutor(graph: try ONNXImporter.load(contentsOf: file))
            let ours = try XCTUnwrap(try executor.run(["input": .float(x)], outputs: ["logits"])["logits"]?.floatTensor).scalars
            XCTAssertEqual(ours.count, 1000, file.lastPathComponent)
            XCTAssertEqual(theirs.count, 1000, file.lastPathComponent)
            guard ours.count == theirs.count else { continue }
            let scale = theirs.map(abs).max() ?? 0
            XCTAssertGreaterThan(scale, 0, file.lastPathComponent)
            let worst = zip(ours, theirs).map { abs(Double($0) - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, 1e-4 * scale, "\(file.lastPathComponent): logits differ by \(worst) of \(scale)")
        }
    }

    /// The graph with every grouped convolution of several channels per group replaced by the equivalent ungrouped
    /// one (block-diagonal weight, zeros elsewhere, group = 1), which dream computes with its dense kernels
    /// (Winograd, implicit GEMM, OpenBLAS): an independent path through the same function.
    static func ungrouped(_ graph: Graph) throws -> Graph {
        var graph = graph
        for index in graph.nodes.indices where graph.nodes[index].opType == "Conv" {
            guard case .int(let groups)? = graph.nodes[index].attributes["group"], groups > 1 else { continue }
            let name = graph.nodes[index].inputs[1]
            let weight = try XCTUnwrap(graph.initializers[name]?.floatTensor, "\(name) is an initializer")
            let (m, cg, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
            guard cg > 1 else { continue }
            let mg = m / groups, taps = kh * kw
            var dense = Tensor(shape: [m, cg * groups, kh, kw])
            for o in 0..<m {
                let group = o / mg
                for c in 0..<cg {
                    for t in 0..<taps {
                        dense[flat: (o * cg * groups + group * cg + c) * taps + t] = weight[flat: (o * cg + c) * taps + t]
                    }
                }
            }
            graph.initializers[name] = .float(dense)
            graph.nodes[index].attributes["group"] = .int(1)
        }
        return graph
    }

    /// The input gradient of Σ seed·logits (every grouped layer's data gradient, strides 1 and 2, and the forward
    /// pass it depends on) equals that of the ungrouped graph within 1e-4 relative (L2): both are float32 sums of
    /// the same terms in different orders through some fifty layers.
    func testInputGradientEqualsThatOfTheUngroupedGraph() throws {
        let (_, files) = try models()
        let x = Tensor.random(shape: [1, 3, 96, 96], seed: 41), seed = Tensor.random(shape: [1, 1000], seed: 43)
        for file in files {
            let graph = try ONNXImporter.load(contentsOf: file)
            var gradients: [Tensor] = []
            var convolutions: [Int] = []
            for candidate in [graph, try Self.ungrouped(graph)] {
                convolutions.append(candidate.nodes.filter {
                    guard $0.opType == "Conv", case .int(let groups)? = $0.attributes["group"] else { return false }
                    return groups > 1
                }.count)
                let executor = try GraphExecutor(graph: candidate)
                var tape = try executor.forward(["input": .float(x)], outputs: ["logits"], recordingFor: ["input"])
                gradients.append(try XCTUnwrap(try executor.backward(&tape, seeds: ["logits": seed])["input"]))
            }
            // One grouped 3x3 per block: ResNeXt-50 has 3 + 4 + 6 + 3 blocks, RegNetY-800MF 1 + 3 + 8 + 2.
            let blocks = file.lastPathComponent.hasPrefix("resnext") ? 16 : 14
            XCTAssertEqual(convolutions[0], blocks, "\(file.lastPathComponent): grouped 3x3 layers")
            XCTAssertEqual(convolutions[1], 0, "\(file.lastPathComponent): none left in the reference")
            XCTAssertGreaterThan(gradients[1].scalars.map(abs).max() ?? 0, 0, file.lastPathComponent)
            XCTAssertLessThan(gradients[0].relativeL2Error(to: gradients[1]), 1e-4, file.lastPathComponent)
        }
    }
}
