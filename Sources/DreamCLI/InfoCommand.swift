import ArgumentParser
import Dreaming
import Foundation
import Imaging

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show the record a dream keeps in its output: model, layers, settings, seed, BLAS kernels.",
        discussion: """
        PNG outputs keep the record in text chunks (dream:* keys), JPEG outputs in a comment (COM segment). It holds \
        everything needed to rerun the dream: `dream --from OUT.png NEW.jpg` does so on another image.

        Examples:
          dream info photo-dream.png
          dream info out.jpg --json
        """)

    @Argument(help: ArgumentHelp("A PNG or JPEG written by `dream IMAGE` or `dream noise`.", valueName: "image"))
    var image: String

    @Flag(name: .long, help: "Print the record as JSON.")
    var json = false

    func run() throws {
        let record = try Rerun.readRecord(image)
        if json {
            print(try Console.json(record))
            return
        }
        var rows: [(String, String)] = [
            ("source", record.source),
            ("size", "\(record.width)x\(record.height)"),
            ("model", record.model + (record.modelArgument.map { " (--model \($0))" } ?? "")),
            ("model sha256", record.modelSHA256),
        ]
        for (i, layer) in record.layers.enumerated() {
            rows.append((i == 0 ? "layers" : "", "\(layer.name)  weight \(layer.weight)"
                         + (layer.channels.isEmpty ? "" : "  channels " + layer.channels.map(String.init).joined(separator: ",")) + "  \(layer.reduction)"))
        }
        rows += [
            ("objective", record.objective),
            ("octaves", "\(record.octaves)" + (record.octaves != record.octavesRequested ? " (of \(record.octavesRequested) requested)" : "")
                + ", scale \(record.octaveScale)"),
            ("iterations", "\(record.iterations) per octave, step \(record.step), jitter \(record.jitter)"),
            ("seed", "\(record.seed)"),
            ("tile", "\(record.tile)"),
            ("threads", "\(record.threads)"),
            ("blas", record.blas),
            ("portable", record.portable ? "yes" : "no"),
        ]
        if let guide = record.guide { rows.append(("guide", guide + (record.guideSHA256.map { " (sha256 \($0))" } ?? ""))) }
        if let maxSide = record.maxSide { rows.append(("max side", "\(maxSide)")) }
        rows.append(("dream", record.version))
        print("\(image): a dream record")
        for (key, value) in rows { print("  " + key.padding(toLength: 13, withPad: " ", startingAt: 0) + value) }
        print("rerun on another image:")
        print("  dream --from \(Rerun.shellQuoted(image)) IMAGE")
        print("same as:")
        print("  dream IMAGE " + record.arguments.map(Rerun.shellQuoted).joined(separator: " "))
    }
}
