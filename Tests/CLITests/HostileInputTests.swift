import Foundation
import Network
import Tensors
import TestSupport
import XCTest

/// Hostile inputs through the real executable: each ends with exit 1 (2 for usage errors), one line on stderr, no
/// signal, no file written, no temporary file left, and the inputs unchanged. Everything is generated here.
final class HostileInputTests: CommandTestCase {
    var photo: URL!

    override func setUpWithError() throws {
        try super.setUpWithError()
        photo = scratch.appendingPathComponent("photo.png")
        try FileManager.default.copyItem(at: try SharedData.file("images/chelsea.png"), to: photo)
    }

    /// Runs dream in `scratch` and checks the contract: the exit status, a single stderr line mentioning `words`,
    /// the folder's files unchanged (no output, no temporary file, inputs untouched).
    @discardableResult
    func assertRefused(_ arguments: [String], status: Int32, mentioning words: [String], environment: [String: String] = [:],
                       file: StaticString = #filePath, line: UInt = #line) throws -> CommandResult {
        let before = try snapshot()
        let r = try run(arguments, environment: environment)
        XCTAssertEqual(r.status, status, "\(arguments): \(r.stderr)", file: file, line: line)
        let lines = r.stderr.split(separator: "\n").filter { !$0.hasPrefix("copying") }
        XCTAssertEqual(lines.count, 1, "one line expected from \(arguments), got: \(r.stderr)", file: file, line: line)
        for word in words { XCTAssertTrue(r.stderr.contains(word), "'\(word)' not in: \(r.stderr)", file: file, line: line) }
        XCTAssertFalse(r.stderr.contains("Domain"), r.stderr, file: file, line: line)
        XCTAssertEqual(try snapshot(), before, "files changed after \(arguments)", file: file, line: line)
        return r
    }

    func run(_ arguments: [String], environment: [String: String] = [:]) throws -> CommandResult {
        if environment.isEmpty { return try DreamExecutable.run(arguments, home: home, mirror: mirror, directory: scratch) }
        let process = Process()
        process.executableURL = try DreamExecutable.url()
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(["DREAM_HOME": home.path, "DREAM_MODEL_MIRROR": mirror.path]) { $1 }
            .merging(environment) { $1 }
        process.currentDirectoryURL = scratch
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return CommandResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                             stderr: String(decoding: errData, as: UTF8.self))
    }

    /// Every entry under `scratch` (hidden ones included) with its size and content hash.
    func snapshot() throws -> [String: String] {
        var result: [String: String] = [:]
        let fm = FileManager.default
        guard let walker = fm.enumerator(atPath: scratch.path) else { return result }
        for case let relative as String in walker {
            let path = scratch.appendingPathComponent(relative).path
            var isDirectory: ObjCBool = false
            fm.fileExists(atPath: path, isDirectory: &isDirectory)
            if isDirectory.boolValue { result[relative] = "dir"; continue }
            let data = (try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data()
            result[relative] = "\(data.count):\(data.hashValue)"
        }
        return result
    }

    func writeModel(_ nodes: [Node], initializers: [String: Value], name: String, inputShape: [Int?] = [1, 3, nil, nil],
                    metadata: [String: String] = [:]) throws -> URL {
        let graph = Graph(name: "hostile", nodes: nodes, initializers: initializers, inputs: [ValueInfo(name: "x", shape: inputShape)],
                          outputs: [ValueInfo(name: nodes.last!.outputs[0])], opsetVersion: 13, metadata: metadata)
        let url = scratch.appendingPathComponent(name)
        try ONNXExporter.serialize(graph).write(to: url)
        return url
    }

    func testNumbersOnTheCommandLineAreCheckedAtParseTime() throws {
        let p = photo.lastPathComponent
        let cases: [([String], String)] = [
            ([p, "--octaves", "-1"], "--octaves"), ([p, "--octaves", "9223372036854775807"], "--octaves"),
            ([p, "--octave-scale", "nan"], "--octave-scale"), ([p, "--octave-scale", "1"], "--octave-scale"),
            ([p, "--step", "nan"], "--step"), ([p, "--step", "inf"], "--step"), ([p, "--step", "-2"], "--step"),
            ([p, "--iterations", "0"], "--iterations"), ([p, "--jitter", "-5"], "--jitter"), ([p, "--tile", "0"], "--tile"),
            ([p, "--layer", "inception_4c_output:nan"], "--layer"), ([p, "--channel", "-3"], "--channel"),
            ([p, "--seed", "-1"], "--seed"),
            (["noise", "--size", "100000"], "--size"), (["layers", "--size", "100000"], "--size"),
            (["bench", "--size", "100000"], "--size"), (["bench", "--runs", "0"], "--runs"),
            (["bench", "--layer", "conv1"], "--dream"), (["bench", "--no-weight-cache"], "--dream"),
            (["features", p, "--layer", "conv1", "--size", "100000"], "--size"),
            (["features", p, "--layer", "conv1", "--overlay", "--channel", "-3"], "--channel"),
            (["classify", p, "--top", "-1"], "--top"), (["classify", p, "--threads", "0"], "--threads"),
        ]
        for (arguments, option) in cases { try assertRefused(arguments, status: 2, mentioning: [option]) }
    }

    func testAChannelTheLayerDoesNotHaveIsTheSameUsageErrorEverywhere() throws {
        try assertRefused(["photo.png", "--layer", "conv1_7x7_s2", "--channel", "5000", "--iterations", "1", "--octaves", "1"],
                          status: 2, mentioning: ["--channel", "5000"])
        try assertRefused(["features", "photo.png", "--layer", "conv1_7x7_s2", "--overlay", "--channel", "5000"], status: 2,
                          mentioning: ["5000"])
    }

    func testAFileNamedLikeAnOptionNeedsTheDoubleDash() throws {
        let dash = scratch.appendingPathComponent("-dash.png")
        try FileManager.default.copyItem(at: photo, to: dash)
        try assertRefused(["-dash.png"], status: 2, mentioning: ["--"])
        let r = try run(["classify", "--top", "1", "--", "-dash.png"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("-dash.png"), r.stdout)
    }

    func testOutputsNeverReplaceAnInput() throws {
        let fm = FileManager.default
        try fm.createSymbolicLink(atPath: scratch.appendingPathComponent("link.png").path, withDestinationPath: photo.path)
        try fm.createDirectory(at: scratch.appendingPathComponent("sub"), withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: scratch.appendingPathComponent("sub/up").path, withDestinationPath: scratch.path)
        try fm.linkItem(at: photo, to: scratch.appendingPathComponent("hard.png"))
        for output in ["photo.png", "./photo.png", "link.png", "sub/up/photo.png", "hard.png"] {
            try assertRefused(["photo.png", "-o", output], status: 2, mentioning: ["input"])
        }
        try assertRefused(["features", "photo.png", "--layer", "conv1_7x7_s2", "--npy", "photo.png"], status: 2, mentioning: ["input"])
        try NumPyFile.write(.float(Tensor.random(shape: [1, 3, 32, 32], in: -1...1, seed: 1)), to: scratch.appendingPathComponent("x.npy"))
        try assertRefused(["run", "--model", "squeezenet", "--input", "x.npy", "--output", "logits=x.npy"], status: 2, mentioning: ["input"])
        // An output format checked before the work, not after it.
        try assertRefused(["photo.png", "-o", "out.gif"], status: 2, mentioning: [".gif"])
        try assertRefused(["photo.png", "-o", "no/such/folder/out.png"], status: 2, mentioning: ["does not exist"])
        // A device is never replaced (as root, renaming over /dev/null would destroy it).
        try assertRefused(["run", "--model", "squeezenet", "--input", "x.npy", "--output", "logits=/dev/null"], status: 2, mentioning: ["device"])
        var st = stat()
        XCTAssertEqual(stat("/dev/null", &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFCHR, "/dev/null is no longer a device")
    }

    func testLongOutputNamesWorkUpToTheLimitAndAreRefusedBeforeTheWorkBeyondIt() throws {
        let legal = String(repeating: "d", count: 246) + ".png"  // 250 bytes: legal, and so is its temporary name
        let r = try run(["photo.png", "--iterations", "1", "--octaves", "1", "-o", legal])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: scratch.appendingPathComponent(legal).path))
        try FileManager.default.removeItem(at: scratch.appendingPathComponent(legal))
        try assertRefused(["photo.png", "-o", String(repeating: "d", count: 300) + ".png"], status: 2, mentioning: ["255"])
    }

    func testCraftedModelsFailCleanly() throws {
        func w(_ shape: [Int]) -> Value { .float(Tensor.random(shape: shape, in: -1...1, seed: 1)) }
        let models: [(String, [Node], [String: Value])] = [
            ("negpads.onnx", [Node(name: "pool\u{1B}[31m", opType: "MaxPool", inputs: ["x"], outputs: ["y"],
                                   attributes: ["kernel_shape": .ints([3, 3]), "pads": .ints([-4, -4, -4, -4])])], [:]),
            ("badconv.onnx", [Node(name: "conv", opType: "Conv", inputs: ["x", "w", "b"], outputs: ["y"])], ["w": w([8, 5, 3, 3]), "b": w([2])]),
            ("stride0.onnx", [Node(name: "conv", opType: "Conv", inputs: ["x", "w"], outputs: ["y"], attributes: ["strides": .ints([0, 0])])],
             ["w": w([8, 3, 3, 3])]),
            ("lrn0.onnx", [Node(name: "lrn", opType: "LRN", inputs: ["x"], outputs: ["y"], attributes: ["size": .int(0)])], [:]),
            ("softmax.onnx", [Node(name: "sm", opType: "Softmax", inputs: ["x"], outputs: ["y"], attributes: ["axis": .int(11)])], [:]),
        ]
        for (name, nodes, initializers) in models {
            let url = try writeModel(nodes, initializers: initializers, name: name)
            let r = try assertRefused(["layers", "--model", name], status: 1, mentioning: [name.replacingOccurrences(of: ".onnx", with: "")])
            XCTAssertFalse(r.stderr.contains("\u{1B}"), "a control character reached the terminal: \(r.stderr)")
            _ = url
        }
    }

    func testNonFiniteWeightsAreReportedNotPrinted() throws {
        let nan = Value.float(Tensor(shape: [4, 3, 1, 1], scalars: [Float](repeating: .nan, count: 12)))
        let nodes = [Node(name: "conv", opType: "Conv", inputs: ["x", "w"], outputs: ["c"]),
                     Node(name: "pool", opType: "GlobalAveragePool", inputs: ["c"], outputs: ["g"]),
                     Node(name: "flat", opType: "Flatten", inputs: ["g"], outputs: ["logits"])]
        _ = try writeModel(nodes, initializers: ["w": nan], name: "nan.onnx")
        try Data(#"{"input": {"channel_order": "RGB", "pixel_range": [0, 1], "mean": [0], "std": [1], "crop": [32, 32], "resize_shorter": 32}}"#.utf8)
            .write(to: scratch.appendingPathComponent("nan.json"))
        try assertRefused(["classify", "--model", "nan.onnx", "photo.png"], status: 1, mentioning: ["nan.onnx", "NaN"])
    }

    func testHugeDeclaredInputSizesDoNotAllocate() throws {
        let node = Node(name: "relu", opType: "Relu", inputs: ["x"], outputs: ["y"])
        _ = try writeModel([node], initializers: [:], name: "huge.onnx", inputShape: [1, 3, 1_000_000_000, 1_000_000_000])
        let r = try run(["layers", "--model", "huge.onnx"])
        XCTAssertEqual(r.status, 0, r.stderr)  // the declared size is ignored: 224x224 is used
    }

    func testModelDescriptionsAreUntrusted() throws {
        let node = Node(name: "relu", opType: "Relu", inputs: ["x"], outputs: ["y"])
        _ = try writeModel([node], initializers: [:], name: "m.onnx")
        let description = """
        {"input": {"channel_order": "RGB", "pixel_range": [0, 1], "mean": [0, 0, 0], "std": [%STD%], "crop": [8, 8], "resize_shorter": 8},
         "labels": "%LABELS%"}
        """
        func write(std: String, labels: String) throws {
            try Data(description.replacingOccurrences(of: "%STD%", with: std).replacingOccurrences(of: "%LABELS%", with: labels).utf8)
                .write(to: scratch.appendingPathComponent("m.json"))
        }
        try write(std: "0, 1, 1", labels: "labels.txt")
        try assertRefused(["classify", "--model", "m.onnx", "photo.png"], status: 1, mentioning: ["m.json", "std"])
        try write(std: "1, 1, 1", labels: "../../../../../etc/passwd")
        try assertRefused(["classify", "--model", "m.onnx", "photo.png"], status: 1, mentioning: ["labels", "passwd"])
        try write(std: "1, 1, 1", labels: "/etc/passwd")
        try assertRefused(["classify", "--model", "m.onnx", "photo.png"], status: 1, mentioning: ["labels"])
        try Data("{ not json".utf8).write(to: scratch.appendingPathComponent("m.json"))
        try assertRefused(["classify", "--model", "m.onnx", "photo.png"], status: 1, mentioning: ["m.json", "JSON"])
    }

    func testAnEmptyDreamHomeIsAnError() throws {
        try assertRefused(["layers"], status: 1, mentioning: ["DREAM_HOME"], environment: ["DREAM_HOME": ""])
    }

    /// A valid 8-bit RGB PNG of `width` x 1 grey pixels, with a stored (uncompressed) deflate stream.
    func stripPNG(width: Int) -> Data {
        var png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }
        func chunk(_ type: String, _ body: [UInt8]) {
            png.append(contentsOf: be32(UInt32(body.count)))
            let typed = Array(type.utf8) + body
            png.append(contentsOf: typed)
            var crc = UInt32(0xFFFF_FFFF)
            for byte in typed {
                crc ^= UInt32(byte)
                for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
            }
            png.append(contentsOf: be32(crc ^ 0xFFFF_FFFF))
        }
        let raw = [UInt8(0)] + [UInt8](repeating: 128, count: 3 * width)  // filter byte + one row
        precondition(raw.count <= 65535)
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in raw { a = (a + UInt32(byte)) % 65521; b = (b + a) % 65521 }
        let n = UInt16(raw.count)
        let zlib = [0x78, 0x01, 0x01, UInt8(n & 255), UInt8(n >> 8), UInt8(~n & 255), UInt8(~n >> 8)] + raw + be32(b << 16 | a)
        chunk("IHDR", be32(UInt32(width)) + be32(1) + [8, 2, 0, 0, 0])
        chunk("IDAT", zlib)
        chunk("IEND", [])
        return png
    }

    func testAResizeThatWouldExplodeIsRefused() throws {
        // 20000x1: bringing the shorter side to 256 would make it 5120000x256 pixels.
        try stripPNG(width: 20000).write(to: scratch.appendingPathComponent("strip.png"))
        try assertRefused(["classify", "strip.png"], status: 1, mentioning: ["strip.png", "5120000x256"])
    }

    func testCtrlCLeavesNoTemporaryFiles() throws {
        let process = Process()
        process.executableURL = try DreamExecutable.url()
        process.arguments = ["features", "photo.png", "--all-layers", "--channel-images", "-o", "maps"]
        var environment = ProcessInfo.processInfo.environment
        environment["DREAM_HOME"] = home.path
        environment["DREAM_MODEL_MIRROR"] = mirror.path
        process.environment = environment
        process.currentDirectoryURL = scratch
        process.standardOutput = FileHandle.nullDevice
        let err = Pipe()
        process.standardError = err
        let before = try snapshot()
        try process.run()
        // Wait until the temporary folder exists (the work has started), then interrupt.
        let deadline = Date().addingTimeInterval(60)
        func started() throws -> Bool { try snapshot().keys.contains { $0.hasPrefix(".dream-") } }
        while try Date() < deadline && !started() && process.isRunning { usleep(20_000) }
        process.interrupt()
        process.waitUntilExit()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(process.terminationReason, .exit, stderr)
        XCTAssertEqual(process.terminationStatus, 130, stderr)
        XCTAssertEqual(try snapshot(), before, "files left after Ctrl-C")
    }
}
