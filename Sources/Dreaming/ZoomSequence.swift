import Foundation
import Imaging

/// A DeepDream zoom sequence (the "infinite zoom" of the DeepDream notebooks): frame 1 is the dream of the photo,
/// every further frame the dream of the previous frame zoomed in (and optionally rotated) about its centre.
/// Frames are numbered PNGs in one folder, each written atomically, so an interrupted run resumes after the last
/// frame on disk; frame k is dreamt with seed + k, so a resumed sequence is the one an uninterrupted run makes.
public struct ZoomSequence {
    public var frames: Int
    /// Magnification from one frame to the next (> 1).
    public var zoom: Float
    /// Counter-clockwise rotation from one frame to the next, in degrees.
    public var rotation: Float

    public init(frames: Int, zoom: Float = 1.05, rotation: Float = 0) {
        self.frames = frames
        self.zoom = zoom
        self.rotation = rotation
    }

    public static func frameName(_ index: Int) -> String { String(format: "frame-%05d.png", index) }

    /// The settings that make a sequence what it is, recorded in every frame: a resumed run must match them.
    public func record(dream: DeepDream, source: String) -> [(key: String, value: String)] {
        [("Software", "dream"), ("dream:source", source), ("dream:model", dream.model.displayName),
         ("dream:settings", dream.settings.summary), ("dream:zoom", "zoom=\(zoom) rotation=\(rotation)")]
    }

    /// How many frames, 1 through n, are already in `directory`.
    public static func completedFrames(in directory: URL) -> Int {
        var n = 0
        while FileManager.default.fileExists(atPath: directory.appendingPathComponent(frameName(n + 1)).path) { n += 1 }
        return n
    }

    public struct Progress {
        public var frame: Int
        public var frames: Int
        public var seconds: TimeInterval
        public var file: URL
    }

    public enum ZoomError: Error, LocalizedError, CustomStringConvertible {
        case differentSettings(folder: String, recorded: String, requested: String)
        public var errorDescription: String? {
            switch self {
            case .differentSettings(let folder, let recorded, let requested):
                return "\(folder) holds frames of another sequence (\(recorded)); this one is \(requested): choose another folder or --restart"
            }
        }
        public var description: String { errorDescription ?? "zoom error" }
    }

    /// Dreams the frames that are missing from `directory` (all of them with `restart`), calling `progress` after each.
    /// Returns the number of the first frame it dreamt (frames + 1 when there was nothing left to do).
    @discardableResult
    public func run(dream: DeepDream, photo: RGBImage, source: String, directory: URL, restart: Bool = false,
                    progress: (Progress) -> Void = { _ in }) throws -> Int {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let record = record(dream: dream, source: source)
        var previous: RGBImage?
        var first = 1
        if !restart {
            let done = Self.completedFrames(in: directory)
            if done > 0 {
                let last = directory.appendingPathComponent(Self.frameName(done))
                let text = try ImageFile.readPNGText(last)
                for (key, value) in record where key != "dream:source" && text[key] != value {
                    throw ZoomError.differentSettings(folder: directory.path, recorded: "\(key) \(text[key] ?? "missing")",
                                                      requested: value)
                }
                previous = try ImageFile.read(last)
                first = done + 1
            }
        }
        guard first <= frames else { return first }
        for frame in first...frames {
            let start = Date()
            let input = previous.map { $0.zoomed(by: zoom, rotatedBy: rotation) } ?? photo
            let result = try dream.dream(input, seed: dream.settings.seed &+ UInt64(frame))
            let url = directory.appendingPathComponent(Self.frameName(frame))
            try ImageFile.write(result, to: url, text: record)
            // The next frame starts from the frame as written (8-bit), exactly as a resumed run reads it back.
            previous = try ImageFile.read(url)
            progress(Progress(frame: frame, frames: frames, seconds: Date().timeIntervalSince(start), file: url))
        }
        return first
    }
}
