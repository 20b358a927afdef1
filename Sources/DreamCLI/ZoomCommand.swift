import ArgumentParser
import Dreaming
import Foundation
import Imaging
import Models

/// `dream zoom`: a DeepDream zoom sequence, numbered frames that resume after an interruption, optionally a video.
struct ZoomCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zoom",
        abstract: "Dream a zoom sequence: each frame dreams on the previous one, zoomed in.",
        discussion: """
        Frame 1 is the dream of the photo; every next frame is the dream of the previous frame zoomed in by --zoom \
        (and turned by --rotate degrees) about its centre. Frames are written as frame-00001.png, … into the folder \
        given with -o (default: NAME-zoom/ beside the photo), each complete or not at all: run the same command again \
        after an interruption and it continues after the last frame on disk (frame k always uses seed + k, so the \
        sequence is the same as an uninterrupted one). The dream options are those of `dream dream`; fewer octaves \
        and iterations make frames faster. With ffmpeg installed, --video encodes the frames as H.264.

        Examples:
          dream zoom photo.jpg --frames 120 --zoom 1.05 -o frames/
          dream zoom photo.jpg --frames 60 --rotate 0.5 --octaves 2 --iterations 5 \\
                --video zoom.mp4
          dream zoom photo.jpg --frames 10 --progress lines --trace zoom.csv
        """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var options: DreamOptions

    @Argument(help: ArgumentHelp("The photo the sequence starts from (PNG or JPEG).", valueName: "image"))
    var image: String

    @Option(name: .long, help: "Number of frames in the sequence.")
    var frames = 30

    @Option(name: .long, help: "Magnification from one frame to the next (greater than 1).")
    var zoom: Float = 1.05

    @Option(name: .long, help: "Rotation from one frame to the next, in degrees (counter-clockwise).")
    var rotate: Float = 0

    @Flag(name: .long, help: "Dream every frame again instead of continuing after the last one on disk.")
    var restart = false

    @Option(name: .long, help: ArgumentHelp("Also encode the frames as a video (needs ffmpeg).", valueName: "file.mp4"))
    var video: String?

    @Option(name: .long, help: "Frames per second of the video.")
    var fps = 25

    func validate() throws {
        if frames < 1 || frames > 100_000 { throw ValidationError("--frames must be between 1 and 100000") }
        if !zoom.isFinite || zoom <= 1 || zoom > 4 { throw ValidationError("--zoom must be greater than 1 and at most 4") }
        if !rotate.isFinite || abs(rotate) > 180 { throw ValidationError("--rotate must be a number of degrees between -180 and 180") }
        if fps < 1 || fps > 240 { throw ValidationError("--fps must be between 1 and 240") }
    }

    func run() throws {
        let input = URL(fileURLWithPath: image)
        let folder = options.output.map { URL(fileURLWithPath: $0, isDirectory: true) }
            ?? input.deletingLastPathComponent().appendingPathComponent(input.deletingPathExtension().lastPathComponent + "-zoom", isDirectory: true)
        let inputPath = input.resolvingSymlinksInPath().path
        if (1...frames).contains(where: { folder.appendingPathComponent(ZoomSequence.frameName($0)).resolvingSymlinksInPath().path == inputPath }) {
            throw ValidationError("the frames would overwrite the input image; choose another folder with -o")
        }
        let ffmpeg = try video.map { _ in try Self.findFFmpeg() }
        let photo = try ImageFile.read(input)
        let model = try modelOptions.load()
        Console.quiet = options.quiet
        let dream = try options.makeDream(model: model)
        let sequence = ZoomSequence(frames: frames, zoom: zoom, rotation: rotate)
        let reporter = options.reporter(for: dream)
        reporter.frames = frames
        reporter.frame = restart ? 1 : ZoomSequence.completedFrames(in: folder) + 1
        dream.observer = { reporter.update($0) }
        let first = try sequence.run(dream: dream, photo: photo, source: input.lastPathComponent, directory: folder, restart: restart) { p in
            reporter.finish()
            reporter.frame = p.frame + 1
            Console.status(String(format: "frame %d/%d  %.1f s  %@", p.frame, p.frames, p.seconds, p.file.path))
        }
        try reporter.writeTrace(csv: options.trace, plot: options.tracePlot)
        for note in Set(dream.notes) { Console.status("note: \(note)") }
        if first > frames {
            Console.status("all \(frames) frames were already in \(folder.path) (--restart dreams them again)")
        } else if first > 1 {
            Console.status("resumed after frame \(first - 1); frames \(first)–\(frames) written to \(folder.path)")
        } else {
            Console.status("wrote \(frames) frame\(frames == 1 ? "" : "s") to \(folder.path)")
        }
        if let video, let ffmpeg { try encode(ffmpeg: ffmpeg, folder: folder, to: URL(fileURLWithPath: video)) }
    }

    static func findFFmpeg() throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let url = URL(fileURLWithPath: String(dir)).appendingPathComponent("ffmpeg")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw VideoError(description: "--video needs ffmpeg, which is not installed (Debian/Ubuntu: apt-get install ffmpeg); without --video the frames are written all the same")
    }

    func encode(ffmpeg: URL, folder: URL, to output: URL) throws {
        let process = Process()
        process.executableURL = ffmpeg
        process.arguments = ["-y", "-loglevel", "error", "-framerate", String(fps),
                             "-i", folder.appendingPathComponent("frame-%05d.png").path,
                             "-frames:v", String(frames), "-c:v", "libx264", "-pix_fmt", "yuv420p",
                             "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", output.path]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw VideoError(description: "ffmpeg could not encode \(output.path): \(message.split(separator: "\n").last.map(String.init) ?? "exit \(process.terminationStatus)")")
        }
        Console.status("wrote \(output.path) (\(frames) frames at \(fps) fps)")
    }
}

/// ffmpeg's failure, in its own words.
struct VideoError: Error, LocalizedError, CustomStringConvertible {
    let description: String
    var errorDescription: String? { description }
}
