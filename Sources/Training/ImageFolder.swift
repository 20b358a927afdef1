import Foundation
import SwiftCSV
import Tensors

/// One training example: an image file and what it should predict (a class index, or a regression value).
public struct Sample: Codable, Equatable, Sendable {
    public var url: URL
    /// Path relative to the data folder (what reports and checkpoints show).
    public var name: String
    public var classIndex: Int
    public var value: Float?
}

public enum DatasetError: Error, LocalizedError, CustomStringConvertible, Equatable {
    case notAFolder(String)
    case noImages(String)
    case tooFewClasses(String, found: [String])
    case emptyClass(String, name: String)
    case badTargets(String, reason: String)
    case unreadable(count: Int, examples: [String])
    case emptyAfterSkipping(String, name: String)

    public var description: String {
        switch self {
        case .notAFolder(let path): return "\(path) is not a folder of class sub-folders (data/<class>/*.jpg)"
        case .noImages(let path): return "\(path) has no .png, .jpg or .jpeg images"
        case let .tooFewClasses(path, found):
            return "\(path) has \(found.count) class folder\(found.count == 1 ? "" : "s")\(found.isEmpty ? "" : " (" + found.joined(separator: ", ") + ")"); a classifier needs at least 2 (data/<class>/*.jpg), or give --targets values.csv for regression"
        case let .emptyClass(path, name): return "class folder '\(name)' in \(path) has no .png, .jpg or .jpeg images"
        case let .badTargets(path, reason): return "\(path): \(reason)"
        case let .unreadable(count, examples):
            return "\(count) image\(count == 1 ? "" : "s") could not be read and \(count == 1 ? "is" : "are") skipped: \(examples.joined(separator: "; "))\(count > examples.count ? "; …" : "")"
        case let .emptyAfterSkipping(path, name): return "class '\(name)' in \(path) has no readable images left"
        }
    }
}

/// A labelled image folder: `root/<class>/*.{png,jpg,jpeg}` (classes sorted by name), split into training and
/// validation (`root/train` + `root/val` when both exist, else a stratified split with a seed), or a regression set
/// from a `file,value` CSV.
public struct ImageDataset: Sendable {
    public var root: URL
    /// Class names in index order (empty for regression).
    public var classes: [String]
    public var train: [Sample]
    public var validation: [Sample]
    /// True when `train/` and `val/` sub-folders were used instead of a split.
    public var presplit: Bool

    public var isRegression: Bool { classes.isEmpty }

    static let imageExtensions: Set<String> = ["png", "jpg", "jpeg"]

    /// Visible entries of a folder (names starting with "." never count), sorted by name.
    static func visibleEntries(_ url: URL) -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { url.appendingPathComponent($0) }
    }

    static func isDirectory(_ url: URL) -> Bool {
        var flag: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &flag) && flag.boolValue
    }

    static func isImage(_ url: URL) -> Bool {
        imageExtensions.contains(url.pathExtension.lowercased()) && !isDirectory(url)
    }

    /// Every image under `url`, recursively, skipping hidden files and folders.
    static func images(under url: URL) -> [URL] {
        visibleEntries(url).flatMap { isDirectory($0) ? images(under: $0) : isImage($0) ? [$0] : [] }
    }

    /// Classes and their images in a folder of class folders.
    static func classFolders(_ root: URL) throws -> [(name: String, files: [URL])] {
        guard isDirectory(root) else { throw DatasetError.notAFolder(root.path) }
        let folders = visibleEntries(root).filter(isDirectory)
        let looseImages = visibleEntries(root).filter(isImage)
        if folders.isEmpty { throw looseImages.isEmpty ? DatasetError.noImages(root.path) : DatasetError.tooFewClasses(root.path, found: []) }
        let classes = folders.map { (name: $0.lastPathComponent, files: images(under: $0)) }
        if classes.allSatisfy({ $0.files.isEmpty }) { throw DatasetError.noImages(root.path) }
        if classes.count < 2 { throw DatasetError.tooFewClasses(root.path, found: classes.map(\.name)) }
        if let empty = classes.first(where: { $0.files.isEmpty }) { throw DatasetError.emptyClass(root.path, name: empty.name) }
        return classes
    }

    static func relativeName(_ url: URL, to root: URL) -> String {
        let r = root.standardizedFileURL.path, p = url.standardizedFileURL.path
        return p.hasPrefix(r + "/") ? String(p.dropFirst(r.count + 1)) : url.lastPathComponent
    }

    /// Reads a classification folder. `validationFraction` of each class (at least one image of every class with
    /// two or more) goes to validation, chosen with `seed`.
    public static func classification(_ root: URL, validationFraction: Double, seed: UInt64) throws -> ImageDataset {
        let trainDir = root.appendingPathComponent("train"), valDir = root.appendingPathComponent("val")
        if isDirectory(trainDir) && isDirectory(valDir) {
            let train = try classFolders(trainDir), val = try classFolders(valDir)
            let names = train.map(\.name)
            let missing = val.map(\.name).filter { !names.contains($0) }
            if !missing.isEmpty {
                throw DatasetError.badTargets(valDir.path, reason: "class folder\(missing.count == 1 ? "" : "s") \(missing.joined(separator: ", ")) not in train/")
            }
            func samples(_ folders: [(name: String, files: [URL])]) -> [Sample] {
                folders.flatMap { folder in
                    folder.files.map { Sample(url: $0, name: relativeName($0, to: root), classIndex: names.firstIndex(of: folder.name)!, value: nil) }
                }
            }
            return ImageDataset(root: root, classes: names, train: samples(train), validation: samples(val), presplit: true)
        }
        let folders = try classFolders(root)
        var train: [Sample] = [], validation: [Sample] = []
        var rng = SplitMix64(seed: seed ^ 0x5EED_5B11)
        for (index, folder) in folders.enumerated() {
            var files = folder.files
            files.shuffle(using: &rng)
            var take = Int((Double(files.count) * validationFraction).rounded())
            if validationFraction > 0 && files.count >= 2 { take = min(max(take, 1), files.count - 1) }
            for (k, file) in files.enumerated() {
                let sample = Sample(url: file, name: relativeName(file, to: root), classIndex: index, value: nil)
                if k < take { validation.append(sample) } else { train.append(sample) }
            }
        }
        return ImageDataset(root: root, classes: folders.map(\.name), train: train.sorted { $0.name < $1.name },
                            validation: validation.sorted { $0.name < $1.name }, presplit: false)
    }

    /// Reads a regression set: `targets` is a CSV of `file,value` rows (an optional header row), files relative to
    /// `root`. A random `validationFraction` (seeded) is held out.
    public static func regression(_ root: URL, targets: URL, validationFraction: Double, seed: UInt64) throws -> ImageDataset {
        guard isDirectory(root) else { throw DatasetError.notAFolder(root.path) }
        let text: String
        do { text = try String(contentsOf: targets, encoding: .utf8) } catch {
            throw DatasetError.badTargets(targets.path, reason: "cannot read (\(error.localizedDescription))")
        }
        let csv: EnumeratedCSV
        do { csv = try EnumeratedCSV(string: text, delimiter: .comma, loadColumns: false) } catch {
            throw DatasetError.badTargets(targets.path, reason: "not a CSV file (\(error))")
        }
        // SwiftCSV always treats the first row as a header; it is data when its second field is a number.
        var rows = csv.rows
        if csv.header.count >= 2, Float(csv.header[1].trimmingCharacters(in: .whitespaces)) != nil { rows.insert(csv.header, at: 0) }
        var samples: [Sample] = []
        for (k, row) in rows.enumerated() {
            guard row.count >= 2 else {
                throw DatasetError.badTargets(targets.path, reason: "row \(k + 1) has \(row.count) field\(row.count == 1 ? "" : "s"); each row is file,value")
            }
            let file = row[0].trimmingCharacters(in: .whitespaces)
            guard let value = Float(row[1].trimmingCharacters(in: .whitespaces)), value.isFinite else {
                throw DatasetError.badTargets(targets.path, reason: "row \(k + 1): '\(row[1])' is not a number")
            }
            let url = file.hasPrefix("/") ? URL(fileURLWithPath: file) : root.appendingPathComponent(file)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw DatasetError.badTargets(targets.path, reason: "row \(k + 1): \(file) does not exist in \(root.path)")
            }
            samples.append(Sample(url: url, name: relativeName(url, to: root), classIndex: 0, value: value))
        }
        guard samples.count >= 2 else { throw DatasetError.badTargets(targets.path, reason: "needs at least 2 rows of file,value") }
        var rng = SplitMix64(seed: seed ^ 0x5EED_5B11)
        samples.shuffle(using: &rng)
        let take = min(max(Int((Double(samples.count) * validationFraction).rounded()), validationFraction > 0 ? 1 : 0), samples.count - 1)
        return ImageDataset(root: root, classes: [], train: Array(samples[take...]).sorted { $0.name < $1.name },
                            validation: Array(samples[..<take]).sorted { $0.name < $1.name }, presplit: false)
    }
}

extension DatasetError {
    public var errorDescription: String? { description }
}
