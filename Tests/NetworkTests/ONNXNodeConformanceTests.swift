import Foundation
import Network
import Tensors
import XCTest

/// Runs ONNX's own backend node tests (Debian's libonnx-testdata) for every operator the engine supports.
final class ONNXNodeConformanceTests: XCTestCase {
    static let root = URL(fileURLWithPath: "/usr/share/libonnx-testdata/data/node")

    /// Cases we knowingly do not run, with the reason (they are reported, not hidden).
    static let knownUnsupported: [String: String] = [
        "test_averagepool_3d_default": "3-D pooling", "test_maxpool_3d_default": "3-D pooling",
        "test_maxpool_with_argmax_2d_precomputed_pads": "MaxPool's Indices output",
        "test_maxpool_with_argmax_2d_precomputed_strides": "MaxPool's Indices output",
        "test_batchnorm_epsilon_training_mode": "BatchNormalization training mode",
        "test_batchnorm_example_training_mode": "BatchNormalization training mode",
        "test_maxpool_2d_uint8": "uint8 tensors", "test_add_uint8": "uint8 tensors", "test_sub_uint8": "uint8 tensors",
        "test_mul_uint8": "uint8 tensors", "test_clip_default_int8_inbounds": "int8 tensors",
        "test_clip_default_int8_max": "int8 tensors", "test_clip_default_int8_min": "int8 tensors",
        "test_identity_sequence": "sequence values", "test_identity_opt": "optional values",
        "test_cast_BFLOAT16_to_FLOAT": "bfloat16 bits stored as a uint16 input", "test_cast_FLOAT_to_BFLOAT16": "bfloat16 outputs",
        "test_cast_FLOAT_to_STRING": "string tensors", "test_cast_STRING_to_FLOAT": "string tensors",
    ]

    /// The operator a test directory is about, from its name (test_<op>...), or nil when it is not one of ours.
    static func operatorUnderTest(_ directory: String) -> String? {
        let lowered = Dictionary(uniqueKeysWithValues: OperatorRegistry.supportedOperators.map { ($0.lowercased(), $0) })
        let aliases = ["batchnorm": "BatchNormalization", "reduce_mean": "ReduceMean"]
        let body = directory.dropFirst("test_".count)
        // Other operators whose names start with one of ours.
        if body.hasPrefix("gather_elements") { return nil }
        if let alias = aliases.first(where: { body.hasPrefix($0.key) }) { return alias.value }
        let head = body.split(separator: "_").first.map(String.init) ?? ""
        return lowered[head]
    }

    func testEveryNodeTestOfTheSupportedOperatorsPasses() throws {
        guard FileManager.default.fileExists(atPath: Self.root.path) else {
            throw XCTSkip("ONNX node test data not installed (apt-get install libonnx-testdata)")
        }
        let directories = try FileManager.default.contentsOfDirectory(atPath: Self.root.path).sorted()
        var passed: [String: Int] = [:], total: [String: Int] = [:], skipped: [String: [String]] = [:]
        var failures: [String] = []
        for directory in directories {
            guard let op = Self.operatorUnderTest(directory) else { continue }
            if let reason = Self.knownUnsupported[directory] {
                skipped[op, default: []].append("\(directory) (\(reason))")
                continue
            }
            let caseDirectory = Self.root.appendingPathComponent(directory)
            // "_expanded" cases rebuild an operator from others (ReduceMax, Exp, …): run them when we have those.
            let graph = try ONNXImporter.load(contentsOf: caseDirectory.appendingPathComponent("model.onnx"))
            let missing = Set(graph.nodes.map(\.opType)).subtracting(OperatorRegistry.supportedOperators)
            if directory.hasSuffix("_expanded") && !missing.isEmpty {
                skipped[op, default: []].append("\(directory) (expanded into \(missing.sorted().joined(separator: ", ")))")
                continue
            }
            let opTypes = Set(graph.nodes.map(\.opType))
            let primary = opTypes.count == 1 ? opTypes.first! : op
            total[primary, default: 0] += 1
            do {
                try runCase(caseDirectory)
                passed[primary, default: 0] += 1
            } catch {
                failures.append("\(directory): \(error)")
            }
        }
        var report = "ONNX node tests per operator (passed/run):\n"
        for op in total.keys.sorted() {
            report += "  \(op): \(passed[op, default: 0])/\(total[op]!)"
            if let s = skipped[op] { report += "  not run: \(s.joined(separator: ", "))" }
            report += "\n"
        }
        print(report)
        XCTAssertGreaterThan(total.values.reduce(0, +), 100, "expected the node tests of our operators")
        XCTAssert(failures.isEmpty, "failing node tests:\n" + failures.joined(separator: "\n"))
    }

    func runCase(_ directory: URL) throws {
        let graph = try ONNXImporter.load(contentsOf: directory.appendingPathComponent("model.onnx"))
        let executor = try GraphExecutor(graph: graph)
        let dataSet = directory.appendingPathComponent("test_data_set_0")
        let files = try FileManager.default.contentsOfDirectory(atPath: dataSet.path)
        func load(_ prefix: String) throws -> [Value] {
            try files.filter { $0.hasPrefix(prefix) }.sorted { index($0) < index($1) }
                .map { try TensorProtoFile.read(contentsOf: dataSet.appendingPathComponent($0)).value }
        }
        let inputs = try load("input_"), expected = try load("output_")
        var feeds: [String: Value] = [:]
        for (info, value) in zip(graph.inputs, inputs) { feeds[info.name] = value }
        let outputNames = graph.outputs.map(\.name)
        let results = try executor.run(feeds, outputs: outputNames)
        for (name, want) in zip(outputNames, expected) {
            guard let got = results[name] else { throw Mismatch(detail: "output \(name) missing") }
            guard got.shape == want.shape else { throw Mismatch(detail: "\(name): shape \(got.shape), expected \(want.shape)") }
            switch (got, want) {
            case let (.float(g), .float(w)):
                let (a, b) = (g.scalars, w.scalars)
                for i in a.indices where !(abs(a[i] - b[i]) <= 1e-4 + 1e-3 * abs(b[i]) || (a[i].isNaN && b[i].isNaN) || a[i] == b[i]) {
                    throw Mismatch(detail: "\(name)[\(i)] = \(a[i]), expected \(b[i])")
                }
            default:
                guard got.integers == want.integers else { throw Mismatch(detail: "\(name): integer values differ") }
            }
        }
    }

    private func index(_ file: String) -> Int {
        Int(file.split(separator: "_").last?.split(separator: ".").first ?? "") ?? 0
    }

    struct Mismatch: Error, CustomStringConvertible { let detail: String; var description: String { detail } }
}
