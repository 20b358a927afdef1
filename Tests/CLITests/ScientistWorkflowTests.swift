import Foundation
import TestSupport
import XCTest

/// What a script or a notebook sees: ordinal layer names, progress without a terminal, traces, channel lists,
/// help that fits 80 columns.
final class ScientistWorkflowTests: CommandTestCase {
    /// Where a test's outputs go.
    var out: URL { scratch }

    func testConv3DreamsOnTheDefaultModelAndLayersShowsWhichLayerItIs() throws {
        let layers = try DreamExecutable.run(["layers"], home: home, mirror: mirror)
        XCTAssertEqual(layers.status, 0, layers.stderr)
        let row = try XCTUnwrap(layers.stdout.split(separator: "\n").first { $0.split(separator: " ").contains("conv3") })
        XCTAssertTrue(row.contains("conv2_3x3_pre_relu") && row.contains("Conv"), String(row))
        let json = try DreamExecutable.run(["layers", "--json"], home: home, mirror: mirror)
        XCTAssertTrue(json.stdout.contains("\"ordinal\" : \"conv3\""), json.stdout)

        let image = try SharedData.file("images/chelsea.png").path
        let png = out.appendingPathComponent("c3.png")
        let r = try DreamExecutable.run([image, "--layer", "conv3", "--octaves", "2", "--iterations", "3", "-o", png.path],
                                        home: home, mirror: mirror)
        XCTAssertEqual(r.status, 0, r.stderr)
        let text = String(decoding: try Data(contentsOf: png), as: UTF8.self)
        XCTAssertTrue(text.contains("layers=conv2_3x3:"), "conv3 is the ReLU after the 3rd convolution, conv2_3x3")
    }

    func testWithoutATerminalProgressIsOneLinePerOctaveAndTheTraceOneRowPerIteration() throws {
        let image = try SharedData.file("images/chelsea.png").path
        let csv = out.appendingPathComponent("trace.csv"), plot = out.appendingPathComponent("trace.png")
        let r = try DreamExecutable.run([image, "--layer", "inception_3b_output", "--octaves", "3", "--iterations", "4",
                                         "--trace", csv.path, "--trace-plot", plot.path, "-o", out.appendingPathComponent("d.png").path],
                                        home: home, mirror: mirror)
        XCTAssertEqual(r.status, 0, r.stderr)
        let octaveLines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("octave ") }
        XCTAssertEqual(octaveLines.count, 3, r.stderr)
        XCTAssertTrue(octaveLines[2].hasPrefix("octave 3/3") && octaveLines[2].contains("->"), String(octaveLines[2]))
        XCTAssertFalse(r.stderr.contains("\r"), "no bar when stderr is not a terminal")
        let rows = try String(contentsOf: csv, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(rows.first, "octave,iteration,objective,step_seconds")
        XCTAssertEqual(rows.count, 1 + 3 * 4)
        XCTAssertEqual(rows.dropFirst().map { $0.split(separator: ",").prefix(2).joined(separator: ",") },
                       (1...3).flatMap { o in (1...4).map { "\(o),\($0)" } })
        XCTAssertTrue(FileManager.default.fileExists(atPath: plot.path))

        let quiet = try DreamExecutable.run([image, "--layer", "inception_3b_output", "--octaves", "2", "--iterations", "2",
                                             "--progress", "none", "-o", out.appendingPathComponent("q.png").path],
                                            home: home, mirror: mirror)
        XCTAssertEqual(quiet.status, 0, quiet.stderr)
        XCTAssertFalse(quiet.stderr.contains("octave "), quiet.stderr)
    }

    func testSeveralLayersAreNormalisedAndChannelListsAreRecorded() throws {
        let image = try SharedData.file("images/chelsea.png").path
        let csv = out.appendingPathComponent("trace.csv"), png = out.appendingPathComponent("two.png")
        let r = try DreamExecutable.run([image, "--layer", "inception_4c_output:1:97,130", "--layer", "conv2_3x3:0.5",
                                         "--octaves", "1", "--iterations", "2", "--trace", csv.path, "-o", png.path],
                                        home: home, mirror: mirror)
        XCTAssertEqual(r.status, 0, r.stderr)
        let text = String(decoding: try Data(contentsOf: png), as: UTF8.self)
        XCTAssertTrue(text.contains("inception_4c_output[channels 97,130]:1.0"), "channel lists are recorded")
        XCTAssertTrue(text.contains("normalize_layers=1"), "on by default with several layers")
        let lines = try String(contentsOf: csv, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines[0], "octave,iteration,objective,step_seconds,\"objective:inception_4c_output[channels 97,130]:1.0\",objective:conv2_3x3:0.5",
                       "one column per layer's own term (quoted when the name holds a comma)")
        let rows = lines.map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        XCTAssertEqual(rows[1].count, 6)
        // Normalised on the start image, the first step's objective is about the sum of the weights (the jitter moves it).
        let first = try XCTUnwrap(Double(rows[1][2]))
        XCTAssertEqual(first, 1.5, accuracy: 0.5)

        let both = try DreamExecutable.run([image, "--layer", "conv3:1:5", "--channel", "6", "-o", png.path], home: home, mirror: mirror)
        XCTAssertEqual(both.status, 2, both.stderr)
    }

    func testUnknownLayerNamesAlwaysListCloseMatches() throws {
        let image = try SharedData.file("images/chelsea.png").path
        for name in ["conv999", "qqqqqqqqqqqqqqqqqq"] {
            let r = try DreamExecutable.run([image, "--layer", name, "-o", out.appendingPathComponent("x.png").path], home: home, mirror: mirror)
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.stderr.contains("did you mean"), r.stderr)
        }
    }

    func testFeaturesChannelsShowsTheSameChannelsOfEveryLayer() throws {
        let image = try SharedData.file("images/chelsea.png").path
        let folder = out.appendingPathComponent("maps")
        let r = try DreamExecutable.run(["features", image, "--layer", "conv1", "--layer", "pool1", "--channels", "3,18,40", "-o", folder.path],
                                        home: home, mirror: mirror)
        XCTAssertEqual(r.status, 0, r.stderr)
        let dirs = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { !$0.hasSuffix(".html") }.sorted()
        XCTAssertEqual(dirs.count, 2, "\(dirs)")
        for dir in dirs {
            let pngs = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent(dir).path).filter { $0.hasPrefix("c") }.sorted()
            XCTAssertEqual(pngs, ["c0003.png", "c0018.png", "c0040.png"], dir)
        }
        let bad = try DreamExecutable.run(["features", image, "--layer", "conv1", "--channels", "3,x", "-o", folder.path], home: home, mirror: mirror)
        XCTAssertEqual(bad.status, 2, bad.stderr)
    }

    /// Every subcommand's help, at 80 columns: no line over 80 characters, and examples one per line (a long one
    /// continues after a trailing backslash), never wrapped by the parser.
    func testEveryHelpFitsIn80Columns() throws {
        let root = try DreamExecutable.run(["--help"], home: home, environment: ["COLUMNS": "80"])
        let lines = root.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let start = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("SUBCOMMANDS") })
        let subcommands = lines[(start + 1)...].compactMap { line -> String? in
            guard line.hasPrefix("  "), let word = line.split(separator: " ").first, word.first?.isLetter == true,
                  line.dropFirst(2).first != " " else { return nil }
            return String(word)
        }.filter { $0 != "See" }
        XCTAssertGreaterThanOrEqual(subcommands.count, 12, "\(subcommands)")
        for command in [[]] + subcommands.map({ [$0] }) {
            let r = try DreamExecutable.run(command + ["--help"], home: home, environment: ["COLUMNS": "80"])
            XCTAssertEqual(r.status, 0, r.stderr)
            let help = r.stdout.split(separator: "\n", omittingEmptySubsequences: false)
            for line in help where line.count > 80 { XCTFail("dream \(command.joined()) --help: \(line.count) columns: \(line)") }
            var inExamples = false, continued = false
            for line in help {
                if line.hasPrefix("Examples:") { inExamples = true; continue }
                if line.isEmpty { inExamples = false }
                guard inExamples else { continue }
                XCTAssertTrue(line.hasPrefix("  dream") || (continued && line.hasPrefix("    ")),
                              "dream \(command.joined()) --help: a wrapped example line: \(line)")
                continued = line.hasSuffix("\\")
            }
        }
    }
}
