import Foundation
import Network
import SafeIO
import Tensors
import XCTest

/// Crafted model files: every attribute or shape that the ONNX specification does not allow (or that would make a
/// kernel read or write out of bounds) ends in an error naming the node and the reason, never in a crash, garbage
/// output or a hang. Each model goes through the exporter and back through the importer, as a file from the internet
/// would.
final class HostileModelTests: XCTestCase {
    /// One node `op` on input x of `shape` (plus initializers), output y.
    func graph(_ op: String, inputs: [String] = ["x"], attributes: [String: AttributeValue] = [:], initializers: [String: Value] = [:],
               shape: [Int] = [1, 3, 8, 8], opset: Int = 13, extraNodes: [Node] = []) throws -> Graph {
        let node = Node(name: "hostile_\(op.lowercased())", opType: op, inputs: inputs, outputs: ["y"], attributes: attributes)
        let g = Graph(name: "hostile", nodes: extraNodes + [node], initializers: initializers,
                      inputs: [ValueInfo(name: "x", shape: shape.map { $0 })], outputs: [ValueInfo(name: "y")], opsetVersion: opset)
        return try ONNXImporter.graph(fromSerialized: try ONNXExporter.serialize(g), baseDirectory: nil)
    }

    /// Loading and running `g` on an input of `shape` must throw an error that names the node and says `words`.
    func assertRefused(_ g: Graph, shape: [Int] = [1, 3, 8, 8], saying words: [String], file: StaticString = #filePath, line: UInt = #line) {
        do {
            let executor = try GraphExecutor(graph: g)
            let x = Tensor.random(shape: shape, in: -1...1, seed: 3)
            let y = try executor.run(["x": .float(x)], outputs: ["y"])
            XCTFail("accepted, output shape \(y["y"]?.shape ?? [])", file: file, line: line)
        } catch {
            let text = String(describing: error)
            XCTAssertTrue(text.contains("hostile_"), "the node is not named: \(text)", file: file, line: line)
            for word in words { XCTAssertTrue(text.contains(word), "'\(word)' not in: \(text)", file: file, line: line) }
            XCTAssertFalse(text.contains("\n"), "more than one line: \(text)", file: file, line: line)
        }
    }

    func weight(_ shape: [Int]) -> Value { .float(Tensor.random(shape: shape, in: -1...1, seed: 1)) }

    func testWindowAttributesOutsideTheSpecificationAreRefusedAtLoad() throws {
        let w = ["w": weight([4, 3, 3, 3])]
        let cases: [(String, [String: AttributeValue], [String: Value], [String])] = [
            ("MaxPool", ["kernel_shape": .ints([3, 3]), "pads": .ints([-1, -1, -1, -1])], [:], ["pads"]),
            ("MaxPool", ["kernel_shape": .ints([3, 3]), "pads": .ints([3, 3, 3, 3])], [:], ["pads", "smaller than the kernel"]),
            ("MaxPool", ["kernel_shape": .ints([3, 3]), "strides": .ints([0, 0])], [:], ["strides"]),
            ("MaxPool", ["kernel_shape": .ints([])], [:], ["kernel_shape"]),
            ("MaxPool", ["kernel_shape": .ints([-3, 3])], [:], ["kernel_shape"]),
            ("AveragePool", ["kernel_shape": .ints([0, 0])], [:], ["kernel_shape"]),
            ("AveragePool", ["kernel_shape": .ints([2, 2]), "auto_pad": .string("SAME_SIDEWAYS")], [:], ["auto_pad"]),
            ("Conv", ["strides": .ints([0, 0])], w, ["strides"]),
            ("Conv", ["dilations": .ints([0, 1])], w, ["dilations"]),
            ("Conv", ["group": .int(0)], w, ["group"]),
            ("Conv", ["pads": .ints([1 << 40, 0, 0, 0])], w, ["pads"]),
            ("Conv", ["pads": .ints([1, 1])], w, ["pads"]),
        ]
        for (op, attributes, initializers, words) in cases {
            let inputs = op == "Conv" ? ["x", "w"] : ["x"]
            assertRefused(try graph(op, inputs: inputs, attributes: attributes, initializers: initializers), saying: words)
        }
    }

    func testConvolutionShapesThatDisagreeAreRefusedBeforeTheKernel() throws {
        // Weight for 5 input channels on a 3-channel input; group not dividing; bias of the wrong length; a
        // kernel_shape that contradicts the weight; a 1-D weight on a 2-D input.
        assertRefused(try graph("Conv", inputs: ["x", "w"], initializers: ["w": weight([4, 5, 3, 3])]), saying: ["channels"])
        assertRefused(try graph("Conv", inputs: ["x", "w"], attributes: ["group": .int(2)], initializers: ["w": weight([4, 1, 3, 3])]),
                      saying: ["group=2"])
        assertRefused(try graph("Conv", inputs: ["x", "w", "b"], initializers: ["w": weight([4, 3, 3, 3]), "b": weight([7])]),
                      saying: ["bias"])
        assertRefused(try graph("Conv", inputs: ["x", "w"], attributes: ["kernel_shape": .ints([5, 5])], initializers: ["w": weight([4, 3, 3, 3])]),
                      saying: ["kernel_shape"])
        assertRefused(try graph("Conv", inputs: ["x", "w"], initializers: ["w": weight([4, 3, 3])]), saying: ["rank"])
        // A window larger than the input.
        assertRefused(try graph("Conv", inputs: ["x", "w"], initializers: ["w": weight([4, 3, 9, 9])]), saying: ["too small"])
    }

    func testAxesOutOfRangeAreRefused() throws {
        assertRefused(try graph("Softmax", attributes: ["axis": .int(7)]), saying: ["axis 7"])
        assertRefused(try graph("Softmax", attributes: ["axis": .int(-9)], opset: 11), saying: ["axis -9"])
        assertRefused(try graph("Concat", inputs: ["x", "x"], attributes: ["axis": .int(4)]), saying: ["axis 4"])
        assertRefused(try graph("Flatten", attributes: ["axis": .int(9)]), saying: ["axis 9"])
    }

    func testNormalisationParametersAreChecked() throws {
        assertRefused(try graph("LRN", attributes: ["size": .int(0)]), saying: ["size"])
        assertRefused(try graph("LRN", attributes: ["size": .int(3)]), shape: [2, 3], saying: ["rank"])
        let bn = ["s": weight([3]), "b": weight([3]), "m": weight([5]), "v": weight([3])]
        assertRefused(try graph("BatchNormalization", inputs: ["x", "s", "b", "m", "v"], initializers: bn), saying: ["per-channel"])
    }

    func testMatrixShapesAreChecked() throws {
        assertRefused(try graph("Gemm", inputs: ["x", "w", "c"], initializers: ["w": weight([4, 5]), "c": weight([3, 5])], shape: [2, 4]),
                      shape: [2, 4], saying: ["C [3, 5]"])
        assertRefused(try graph("Gemm", inputs: ["x", "w"], initializers: ["w": weight([6, 5])], shape: [2, 4]), shape: [2, 4], saying: ["inner"])
        assertRefused(try graph("MatMul", inputs: ["x", "w"], initializers: ["w": weight([3, 4, 5])], shape: [2, 6, 4]), shape: [2, 6, 4],
                      saying: ["batch"])
    }

    func testShapeArithmeticCannotOverflowOrExplode() throws {
        // Reshape to sizes whose product overflows, with two -1, or from a NaN float "shape".
        let big = Value.int(IntTensor(shape: [3], values: [1 << 40, 1 << 40, 0]))
        assertRefused(try graph("Reshape", inputs: ["x", "s"], initializers: ["s": big]), saying: ["cannot reshape"])
        let twoInferred = Value.int(IntTensor(shape: [2], values: [-1, -1]))
        assertRefused(try graph("Reshape", inputs: ["x", "s"], initializers: ["s": twoInferred]), saying: ["-1"])
        let nan = Value.float(Tensor(shape: [2], scalars: [.nan, 4]))
        assertRefused(try graph("Reshape", inputs: ["x", "s"], initializers: ["s": nan]), saying: ["cannot reshape"])
        // Pad by 10^12, pads for an axis the input does not have, a crop larger than the input.
        let hugePads = Value.int(IntTensor(shape: [8], values: [0, 0, 0, 1_000_000_000_000, 0, 0, 0, 0]))
        assertRefused(try graph("Pad", inputs: ["x", "p"], initializers: ["p": hugePads]), saying: ["pads"])
        let crop = Value.int(IntTensor(shape: [8], values: [0, 0, -5, 0, 0, 0, -5, 0]))
        assertRefused(try graph("Pad", inputs: ["x", "p"], initializers: ["p": crop]), saying: ["crop"])
        let axes = Value.int(IntTensor(shape: [1], values: [9]))
        let two = Value.int(IntTensor(shape: [2], values: [1, 1]))
        assertRefused(try graph("Pad", inputs: ["x", "p", "", "a"], initializers: ["p": two, "a": axes]), saying: ["axis 9"])
        // Broadcasting [N,1] with [1,N] into 10^10 elements.
        let column = weight([100_000, 1])
        assertRefused(try graph("Add", inputs: ["x", "c"], initializers: ["c": column], shape: [1, 100_000]), shape: [1, 100_000],
                      saying: ["would need"])
        // int64 shape arithmetic that overflows.
        let huge = Value.int(IntTensor(shape: [1], values: [Int64.max]))
        assertRefused(try graph("Mul", inputs: ["a", "a"], initializers: ["a": huge]), saying: ["overflow"])
    }

    func testTheOutputLimitNamesTheSizeAndWhatHelps() throws {
        let saved = TensorLimits.maxElements
        defer { TensorLimits.maxElements = saved }
        TensorLimits.maxElements = 1000
        let g = try graph("Conv", inputs: ["x", "w"], attributes: ["pads": .ints([1, 1, 1, 1])], initializers: ["w": weight([4, 3, 3, 3])],
                          shape: [1, 3, 32, 32])
        assertRefused(g, shape: [1, 3, 32, 32], saying: ["would need", "--size"])
    }

    func testValidUnusualGraphsStillRun() throws {
        // 1-D convolution, asymmetric pads, dilation, ceil-mode pooling: allowed by ONNX, so they must keep working.
        let conv1d = try graph("Conv", inputs: ["x", "w"], attributes: ["pads": .ints([2, 0]), "dilations": .ints([2])],
                               initializers: ["w": weight([2, 3, 3])], shape: [1, 3, 10])
        let y = try GraphExecutor(graph: conv1d).run(["x": .float(Tensor.random(shape: [1, 3, 10], in: -1...1, seed: 2))], outputs: ["y"])
        XCTAssertEqual(y["y"]?.shape, [1, 2, 8])
        let pool = try graph("MaxPool", attributes: ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "ceil_mode": .int(1),
                                                     "pads": .ints([0, 0, 1, 1])])
        let p = try GraphExecutor(graph: pool).run(["x": .float(Tensor.random(shape: [1, 3, 8, 8], in: -1...1, seed: 2))], outputs: ["y"])
        XCTAssertEqual(p["y"]?.shape, [1, 3, 4, 4])
    }

    /// Found by `make fuzz` (onnx): a declared input dimension of 0 reached the broadcasting kernel, whose row walk
    /// divided by the empty axis. Empty tensors are legal in ONNX: every operator must pass them through or refuse
    /// them with a message.
    func testEmptyTensorsNeverReachAKernelThatCannotTakeThem() throws {
        let w = ["w": weight([4, 3, 3, 3])]
        let cases: [(String, [String], [String: AttributeValue], [String: Value], [Int])] = [
            ("Add", ["x", "b"], [:], ["b": weight([3])], [0, 3]),
            ("Mul", ["x", "b"], [:], ["b": weight([1, 3])], [2, 0, 3]),
            ("Relu", ["x"], [:], [:], [0, 3, 4, 4]),
            ("Softmax", ["x"], [:], [:], [2, 0]),
            ("Concat", ["x", "x"], ["axis": .int(1)], [:], [0, 3, 4, 4]),
            ("MatMul", ["x", "m"], [:], ["m": weight([4, 5])], [0, 4]),
            ("Gemm", ["x", "m"], [:], ["m": weight([4, 5])], [0, 4]),
            ("Flatten", ["x"], [:], [:], [0, 3, 4, 4]),
            ("MaxPool", ["x"], ["kernel_shape": .ints([2, 2])], [:], [0, 3, 4, 4]),
            ("AveragePool", ["x"], ["kernel_shape": .ints([2, 2])], [:], [0, 3, 4, 4]),
            ("GlobalAveragePool", ["x"], [:], [:], [0, 3, 4, 4]),
            ("Conv", ["x", "w"], [:], w, [0, 3, 4, 4]),
            ("LRN", ["x"], ["size": .int(3)], [:], [0, 3, 4, 4]),
            ("BatchNormalization", ["x", "s", "s", "s", "v"], [:], ["s": weight([3]), "v": .float(Tensor(shape: [3], repeating: 1))], [0, 3, 4, 4]),
        ]
        for (op, inputs, attributes, initializers, shape) in cases {
            let g = try graph(op, inputs: inputs, attributes: attributes, initializers: initializers, shape: shape)
            do {
                let y = try GraphExecutor(graph: g).run(["x": .float(Tensor(shape: shape))], outputs: ["y"])
                XCTAssertEqual(y["y"].map { checkedCount($0.shape) }, 0, "\(op): an empty input gives an empty output")
            } catch {
                XCTAssertTrue(String(describing: error).contains("hostile_"), "\(op): \(error)")
            }
        }
    }

    func checkedCount(_ shape: [Int]) -> Int { shape.reduce(1, *) }

    /// Inputs `make fuzz` found, run as Tests/Fuzz/FuzzONNX.swift runs them: import, build, feed every input its
    /// declared shape (8 where unknown), run. Each must end in a result or an error, not a trap.
    static let onnxFuzzFindings: [(String, String)] = [
        // Add of x [0,5,5] and y [5]: the broadcasting kernel divided by the empty axis (SIGILL).
        ("empty-broadcast", "CAcSDGJhY2tlbmQtdGVzdDpnChAKAXgKAXkSA3N1bSIDQWRkEg50ZXN0X2FkZF9iY2FzdFoXCgF4EhIKEAgBEgwKAggACgIIBQoCCAVaDwoBeRIKCggIARIECgIIBWIZCgNzdW0SEgoQCAESDAoCCAMKAggECgIIBUIECgAQDg=="),
    ]

    func testONNXFuzzFindingsStayFixed() throws {
        for (name, base64) in Self.onnxFuzzFindings {
            let data = try XCTUnwrap(Data(base64Encoded: base64), name)
            guard let graph = try? ONNXImporter.graph(fromSerialized: data, baseDirectory: nil),
                  let executor = try? GraphExecutor(graph: graph) else { continue }
            var feeds: [String: Value] = [:]
            for input in graph.inputs {
                feeds[input.name] = .float(Tensor.random(shape: (input.shape ?? [1, 3, 8, 8]).map { $0 ?? 8 }, in: -2...2, seed: 1))
            }
            _ = try? executor.run(feeds, outputs: graph.outputs.map(\.name))
        }
    }

    func testNpyHeadersWhoseShapeOverflowsAreRefused() throws {
        for shape in ["(4611686018427387904, 4611686018427387904, 0)", "(9223372036854775807,)", "(-1, 3)", "(2305843009213693952,)"] {
            let header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }"
            var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
            let padded = header + String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
            bytes += [UInt8(padded.utf8.count & 255), UInt8(padded.utf8.count >> 8)] + Array(padded.utf8) + [0, 0, 0, 0]
            XCTAssertThrowsError(try NumPyFile.decode(Data(bytes), file: "bad.npy"), shape) { error in
                XCTAssertTrue(String(describing: error).hasPrefix("bad.npy: "), "\(error)")
            }
        }
    }

    func testTerminalEscapingOfNamesFromFiles() {
        XCTAssertEqual(TerminalText.escaped("conv\u{1B}[2J1"), "conv\\u{1B}[2J1")
        XCTAssertEqual(TerminalText.escaped("a\nb\tc"), "a\\nb\\tc")
        XCTAssertEqual(TerminalText.escaped("inception_4c/output ✓"), "inception_4c/output ✓")
        XCTAssertEqual(TerminalText.escapedKeepingLines("row\u{7}1\nrow2"), "row\\u{7}1\nrow2")
    }
}
