import Foundation
import Network
import Tensors
import XCTest

/// The ONNX semantics of Slice, Split, Gather, Unsqueeze/Squeeze, Shape, Cast, Transpose and ReduceMean as graph
/// operators (bounds clamping, defaults, opset differences), and hostile attributes refused with the node named.
final class LayoutOperatorTests: XCTestCase {
    /// One node `op` named "n" reading x (and the given initializers), producing `outputs`.
    static func run(_ op: String, _ x: Value, extra: [(String, Value?)] = [], attributes: [String: AttributeValue] = [:],
                    outputs: [String] = ["y"], opset: Int = 13) throws -> [String: Value] {
        var initializers: [String: Value] = [:]
        let inputs = ["x"] + extra.map { name, value in
            if let value { initializers[name] = value; return name }
            return ""
        }
        let graph = Graph(nodes: [Node(name: "n", opType: op, inputs: inputs, outputs: outputs, attributes: attributes)],
                          initializers: initializers, inputs: [ValueInfo(name: "x")], outputs: outputs.map { ValueInfo(name: $0) },
                          opsetVersion: opset)
        return try GraphExecutor(graph: graph).run(["x": x], outputs: outputs)
    }

    static func ints(_ v: [Int64]) -> Value { .int(IntTensor(shape: [v.count], values: v)) }

    static func slice(_ x: Tensor, _ starts: [Int64], _ ends: [Int64], axes: [Int64]? = nil, steps: [Int64]? = nil) throws -> Tensor {
        let y = try run("Slice", .float(x), extra: [("s", ints(starts)), ("e", ints(ends)), ("a", axes.map(ints)), ("p", steps.map(ints))])
        return try XCTUnwrap(y["y"]?.floatTensor)
    }

    /// The examples of the ONNX operator documentation for Slice, on x of shape [20, 10, 5] holding 0, 1, 2 …
    func testSliceFollowsTheONNXExamples() throws {
        let x = Tensor(shape: [20, 10, 5], scalars: (0..<1000).map(Float.init))
        XCTAssertEqual(try Self.slice(x, [0, 0], [3, 10], axes: [0, 1], steps: [1, 1]).shape, [3, 10, 5])
        XCTAssertEqual(try Self.slice(x, [0, 0, 3], [20, 10, 4]).shape, [20, 10, 1])           // axes and steps omitted
        XCTAssertEqual(try Self.slice(x, [0], [-1], axes: [1]).shape, [20, 9, 5])                // negative end
        XCTAssertEqual(try Self.slice(x, [1], [Int64.max], axes: [1]).shape, [20, 9, 5])         // INT64_MAX: to the end
        XCTAssertEqual(try Self.slice(x, [1000], [1000], axes: [1]).shape, [20, 0, 5])            // start clamped to the end
        XCTAssertEqual(try Self.slice(x, [-1000], [1000], axes: [-2]).scalars, x.scalars)         // negative axis, clamped: all of x
        let backwards = try Self.slice(x, [20, 10, 4], [0, 0, 1], axes: [0, 1, 2], steps: [-1, -3, -2])
        XCTAssertEqual(backwards.shape, [19, 3, 2])
        // First element: x[19, 9, 4]; then along the last axis x[19, 9, 2].
        XCTAssertEqual(backwards[flat: 0], Float(19 * 50 + 9 * 5 + 4))
        XCTAssertEqual(backwards[flat: 1], Float(19 * 50 + 9 * 5 + 2))
        XCTAssertEqual(try Self.slice(x, [Int64.max], [Int64.min], axes: [1], steps: [-1]).shape, [20, 10, 5]) // whole axis reversed
    }

    func testSliceBeforeOpset10TakesItsBoundsFromAttributes() throws {
        let x = Tensor(shape: [4, 6], scalars: (0..<24).map(Float.init))
        let y = try Self.run("Slice", .float(x), attributes: ["starts": .ints([1, 2]), "ends": .ints([3, 1000]), "axes": .ints([0, 1])], opset: 9)
        XCTAssertEqual(y["y"]?.floatTensor?.scalars, [8, 9, 10, 11, 14, 15, 16, 17])
    }

    func testSliceOfAnIntegerShapeStaysInteger() throws {
        let y = try Self.run("Slice", Self.ints([1, 3, 224, 200]), extra: [("s", Self.ints([-2])), ("e", Self.ints([Int64.max]))])
        XCTAssertEqual(y["y"]?.intTensor, IntTensor(shape: [2], values: [224, 200]))
    }

    func testSplitBySizesByAttributeEquallyAndUnevenlyFromOpset18() throws {
        let x = Tensor(shape: [2, 7], scalars: (0..<14).map(Float.init))
        let sized = try Self.run("Split", .float(x), extra: [("s", Self.ints([2, 5]))], attributes: ["axis": .int(1)], outputs: ["a", "b"])
        XCTAssertEqual(sized["a"]?.floatTensor?.scalars, [0, 1, 7, 8])
        XCTAssertEqual(sized["b"]?.floatTensor?.shape, [2, 5])
        let old = try Self.run("Split", .float(x), attributes: ["axis": .int(-1), "split": .ints([3, 4])], outputs: ["a", "b"], opset: 11)
        XCTAssertEqual(old["a"]?.floatTensor?.scalars, [0, 1, 2, 7, 8, 9])
        let equal = try Self.run("Split", .float(x), outputs: ["a", "b"])
        XCTAssertEqual(equal["b"]?.floatTensor?.scalars, Array(7..<14).map(Float.init))
        let uneven = try Self.run("Split", .float(x), attributes: ["axis": .int(1), "num_outputs": .int(3)], outputs: ["a", "b", "c"], opset: 18)
        XCTAssertEqual(uneven.keys.sorted().map { uneven[$0]!.shape }, [[2, 3], [2, 3], [2, 1]])
        XCTAssertThrowsError(try Self.run("Split", .float(x), attributes: ["axis": .int(1)], outputs: ["a", "b"])) { error in
            XCTAssertTrue("\(error)".contains("'n'") && "\(error)".contains("equal pieces"), "\(error)")
        }
    }

    func testShapeGatherUnsqueezeSqueezeAndCastOnShapeValues() throws {
        let x = Value.float(Tensor(shape: [1, 3, 5, 7]))
        XCTAssertEqual(try Self.run("Shape", x)["y"]?.intTensor, IntTensor(shape: [4], values: [1, 3, 5, 7]))
        XCTAssertEqual(try Self.run("Shape", x, attributes: ["start": .int(-2)], opset: 15)["y"]?.intTensor, IntTensor(shape: [2], values: [5, 7]))
        let gathered = try Self.run("Gather", Self.ints([1, 3, 5, 7]), extra: [("i", .int(IntTensor(shape: [], values: [-1])))])
        XCTAssertEqual(gathered["y"]?.intTensor, IntTensor(shape: [], values: [7]))
        let unsqueezed = try Self.run("Unsqueeze", .int(IntTensor(shape: [], values: [7])), extra: [("a", Self.ints([0]))])
        XCTAssertEqual(unsqueezed["y"]?.intTensor, IntTensor(shape: [1], values: [7]))
        XCTAssertEqual(try Self.run("Unsqueeze", x, extra: [("a", Self.ints([-1, 1]))])["y"]?.shape, [1, 1, 3, 5, 7, 1])
        XCTAssertEqual(try Self.run("Unsqueeze", x, attributes: ["axes": .ints([0])], opset: 11)["y"]?.shape, [1, 1, 3, 5, 7])
        XCTAssertEqual(try Self.run("Squeeze", x)["y"]?.shape, [3, 5, 7])
        XCTAssertEqual(try Self.run("Squeeze", .float(Tensor(shape: [1, 3, 1, 1])), extra: [("a", Self.ints([2, -1]))])["y"]?.shape, [1, 3])
        let cast = try Self.run("Cast", .float(Tensor(shape: [3], scalars: [2.9, -2.9, 300])), attributes: ["to": .int(ElementType.uint8.rawValue)])
        XCTAssertEqual(cast["y"]?.intTensor?.values, [2, 254, 44])   // truncated toward zero, then wrapped to 8 bits
        let back = try Self.run("Cast", Self.ints([5, -6]), attributes: ["to": .int(ElementType.float.rawValue)])
        XCTAssertEqual(back["y"]?.floatTensor?.scalars, [5, -6])
    }

    func testGatherOfFloatsAlongAnAxisAndTransposeDefaultsToReversedAxes() throws {
        let x = Tensor(shape: [2, 3], scalars: [0, 1, 2, 3, 4, 5])
        let y = try Self.run("Gather", .float(x), extra: [("i", Self.ints([2, 0]))], attributes: ["axis": .int(1)])
        XCTAssertEqual(y["y"]?.floatTensor?.scalars, [2, 0, 5, 3])
        let t = try Self.run("Transpose", .float(x))
        XCTAssertEqual(t["y"]?.floatTensor?.shape, [3, 2])
        XCTAssertEqual(t["y"]?.floatTensor?.scalars, [0, 3, 1, 4, 2, 5])
    }

    func testReduceMeanAxesAttributeInputKeepdimsAndNoop() throws {
        let x = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try Self.run("ReduceMean", .float(x), attributes: ["axes": .ints([1])])["y"]?.floatTensor?.shape, [2, 1])
        XCTAssertEqual(try Self.run("ReduceMean", .float(x), attributes: ["axes": .ints([-1]), "keepdims": .int(0)])["y"]?.floatTensor?.scalars, [2, 5])
        XCTAssertEqual(try Self.run("ReduceMean", .float(x), attributes: ["keepdims": .int(0)])["y"]?.floatTensor?.scalars, [3.5])
        XCTAssertEqual(try Self.run("ReduceMean", .float(x), extra: [("a", Self.ints([0]))], opset: 18)["y"]?.floatTensor?.scalars, [2.5, 3.5, 4.5])
        XCTAssertEqual(try Self.run("ReduceMean", .float(x), attributes: ["noop_with_empty_axes": .int(1)], opset: 18)["y"]?.floatTensor?.scalars, x.scalars)
    }

    /// Crafted files: every attribute or input that would make a kernel step outside its tensors is refused with an
    /// error naming the node, at load time where the attribute alone tells, else before the kernel runs.
    func testHostileAttributesAndInputsAreRefusedWithTheNodeNamed() throws {
        let x = Value.float(Tensor(shape: [1, 4, 3, 2]))
        let cases: [(String, () throws -> Any)] = [
            ("perm not a permutation", { try Self.run("Transpose", x, attributes: ["perm": .ints([0, 1, 1, 3])]) }),
            ("perm out of range", { try Self.run("Transpose", x, attributes: ["perm": .ints([0, 1, 2, 4])]) }),
            ("perm of another rank", { try Self.run("Transpose", x, attributes: ["perm": .ints([1, 0])]) }),
            ("gather index too large", { try Self.run("Gather", x, extra: [("i", Self.ints([4]))], attributes: ["axis": .int(1)]) }),
            ("gather index too small", { try Self.run("Gather", x, extra: [("i", Self.ints([-5]))], attributes: ["axis": .int(1)]) }),
            ("gather axis", { try Self.run("Gather", x, extra: [("i", Self.ints([0]))], attributes: ["axis": .int(4)]) }),
            ("slice axis", { try Self.run("Slice", x, extra: [("s", Self.ints([0])), ("e", Self.ints([1])), ("a", Self.ints([7]))]) }),
            ("slice repeated axis", { try Self.run("Slice", x, extra: [("s", Self.ints([0, 0])), ("e", Self.ints([1, 1])), ("a", Self.ints([1, -3]))]) }),
            ("slice step 0", { try Self.run("Slice", x, extra: [("s", Self.ints([0])), ("e", Self.ints([1])), ("a", Self.ints([1])), ("p", Self.ints([0]))]) }),
            ("slice lists of different lengths", { try Self.run("Slice", x, extra: [("s", Self.ints([0, 0])), ("e", Self.ints([1]))]) }),
            ("split sizes", { try Self.run("Split", x, extra: [("s", Self.ints([3, 3]))], attributes: ["axis": .int(1)], outputs: ["a", "b"]) }),
            ("split negative size", { try Self.run("Split", x, extra: [("s", Self.ints([-1, 5]))], attributes: ["axis": .int(1)], outputs: ["a", "b"]) }),
            ("split huge size", { try Self.run("Split", x, extra: [("s", Self.ints([Int64.max, Int64.max]))], attributes: ["axis": .int(1)], outputs: ["a", "b"]) }),
            ("unsqueeze repeated axis", { try Self.run("Unsqueeze", x, extra: [("a", Self.ints([0, 0]))]) }),
            ("unsqueeze axis", { try Self.run("Unsqueeze", x, extra: [("a", Self.ints([9]))]) }),
            ("squeeze of a size 4", { try Self.run("Squeeze", x, extra: [("a", Self.ints([1]))]) }),
            ("reshape count", { try Self.run("Reshape", x, extra: [("s", Self.ints([5, -1]))]) }),
            ("reduce axis", { try Self.run("ReduceMean", x, attributes: ["axes": .ints([4])]) }),
            ("cast to string", { try Self.run("Cast", x, attributes: ["to": .int(8)]) }),
            ("integer division by zero", { try Self.run("Div", Self.ints([6]), extra: [("d", Self.ints([0]))]) }),
            ("cast of infinity", { try Self.run("Cast", .float(Tensor(shape: [1], scalars: [.infinity])), attributes: ["to": .int(7)]) }),
        ]
        for (what, body) in cases {
            XCTAssertThrowsError(try body(), what) { error in
                XCTAssertTrue("\(error)".contains("'n'"), "\(what): \(error)")
            }
        }
    }

    /// Gather's and Slice's gradients through the executor: scattered back into zeros of the input's shape.
    func testGradientsOfGatherAndSliceReachTheInputThroughTheExecutor() throws {
        let graph = Graph(nodes: [
            Node(name: "g", opType: "Gather", inputs: ["x", "i"], outputs: ["g"], attributes: ["axis": .int(1)]),
            Node(name: "s", opType: "Slice", inputs: ["x", "s0", "s1", "sa", "sp"], outputs: ["s"]),
        ], initializers: ["i": Self.ints([2, 2, 0]), "s0": Self.ints([-1]), "s1": Self.ints([Int64.min]), "sa": Self.ints([1]), "sp": Self.ints([-2])],
        inputs: [ValueInfo(name: "x")], outputs: [ValueInfo(name: "g"), ValueInfo(name: "s")])
        let executor = try GraphExecutor(graph: graph)
        let x = Tensor(shape: [1, 4], scalars: [1, 2, 3, 4])
        var tape = try executor.forward(["x": .float(x)], outputs: ["g", "s"], recordingFor: ["x"])
        XCTAssertEqual(tape.values["s"]?.floatTensor?.scalars, [4, 2])
        let dx = try executor.backward(&tape, seeds: ["g": Tensor(shape: [1, 3], scalars: [1, 10, 100]), "s": Tensor(shape: [1, 2], scalars: [1000, 10000])])
        XCTAssertEqual(dx["x"]?.scalars, [100, 10000, 11, 1000])
    }
}
