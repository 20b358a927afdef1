import Foundation
import SafeIO
import Imaging
import Tensors

/// Where a run is: the position (epoch, batch), the partial epoch sums, the history, the best epoch's values, the
/// current trainable values and the optimiser's state. Saved as one file: "DRCK", a JSON header, then the tensors.
public struct TrainingState {
    public var epoch = 0
    public var batch = 0
    var lossSum = 0.0, correct = 0, seen = 0
    public var history: [EpochRecord] = []
    public var bestEpoch = 0
    var bestLoss = Double.infinity
    var sinceBest = 0
    var stopped = false
    var trainSeconds = 0.0, epochSeconds = 0.0
    var best: [(String, Tensor)] = []
    var parameters: [(String, Tensor)] = []
    var optimizerState: [String: Tensor] = [:]
    var optimizerSteps = 0
    var settings = TrainingSettings()
    var trainNames: [String] = []

    public init() {}

    struct Header: Codable {
        var format = 1
        var epoch, batch: Int
        var lossSum: Double, correct: Int, seen: Int
        var history: [EpochRecord]
        var bestEpoch: Int, bestLoss: Double, sinceBest: Int, stopped: Bool
        var trainSeconds: Double, epochSeconds: Double
        var optimizerSteps: Int
        var settings: TrainingSettings
        var trainNames: [String]
        /// Names of the stored tensors in order, each "best:NAME", "param:NAME" or "opt:KEY".
        var tensors: [String]
    }

    public func write(to url: URL) throws {
        var names: [String] = [], tensors: [Tensor] = []
        for (n, t) in best { names.append("best:" + n); tensors.append(t) }
        for (n, t) in parameters { names.append("param:" + n); tensors.append(t) }
        for (n, t) in optimizerState.sorted(by: { $0.key < $1.key }) { names.append("opt:" + n); tensors.append(t) }
        let header = Header(epoch: epoch, batch: batch, lossSum: lossSum, correct: correct, seen: seen, history: history,
                            bestEpoch: bestEpoch, bestLoss: bestLoss.isFinite ? bestLoss : 1e300, sinceBest: sinceBest, stopped: stopped,
                            trainSeconds: trainSeconds, epochSeconds: epochSeconds, optimizerSteps: optimizerSteps,
                            settings: settings, trainNames: trainNames, tensors: names)
        let json = try JSONEncoder().encode(header)
        var data = Data("DRCK".utf8)
        withUnsafeBytes(of: UInt32(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        data.append(FeatureCache.encode(tensors))
        try AtomicFile.write(data, to: url)
    }

    public static func read(from url: URL) throws -> TrainingState {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw TrainingError.badCheckpoint("\(url.path): \(error.localizedDescription)") }
        let bytes = [UInt8](data)
        guard bytes.count > 8, bytes[0..<4] == [0x44, 0x52, 0x43, 0x4B] else {
            throw TrainingError.badCheckpoint("\(url.path) is not a dream checkpoint")
        }
        let length = Int(UInt32(bytes[4]) | UInt32(bytes[5]) << 8 | UInt32(bytes[6]) << 16 | UInt32(bytes[7]) << 24)
        guard 8 + length <= bytes.count, let header = try? JSONDecoder().decode(Header.self, from: Data(bytes[8..<(8 + length)])),
              let tensors = FeatureCache.decode(Data(bytes[(8 + length)...])), tensors.count == header.tensors.count else {
            throw TrainingError.badCheckpoint("\(url.path) is damaged")
        }
        var s = TrainingState()
        s.epoch = header.epoch; s.batch = header.batch
        s.lossSum = header.lossSum; s.correct = header.correct; s.seen = header.seen
        s.history = header.history; s.bestEpoch = header.bestEpoch; s.bestLoss = header.bestLoss >= 1e300 ? .infinity : header.bestLoss
        s.sinceBest = header.sinceBest; s.stopped = header.stopped
        s.trainSeconds = header.trainSeconds; s.epochSeconds = header.epochSeconds
        s.optimizerSteps = header.optimizerSteps; s.settings = header.settings; s.trainNames = header.trainNames
        for (name, tensor) in zip(header.tensors, tensors) {
            if name.hasPrefix("best:") { s.best.append((String(name.dropFirst(5)), tensor)) }
            else if name.hasPrefix("param:") { s.parameters.append((String(name.dropFirst(6)), tensor)) }
            else if name.hasPrefix("opt:") { s.optimizerState[String(name.dropFirst(4))] = tensor }
        }
        return s
    }

    /// A resume must continue the same run: same recipe (epochs may grow), same training images, same parameters.
    func check(against trainer: Trainer) throws {
        var mine = settings, theirs = trainer.settings
        mine.epochs = 0; theirs.epochs = 0
        mine.patience = nil; theirs.patience = nil
        if mine != theirs { throw TrainingError.checkpointMismatch("it was written with other settings (\(Self.difference(settings, trainer.settings)))") }
        if trainNames != trainer.train.map(\.name) { throw TrainingError.checkpointMismatch("the training images differ") }
        for (name, tensor) in parameters where trainer.model.parameters.values[name]?.shape != tensor.shape {
            throw TrainingError.checkpointMismatch("parameter \(name) is missing or has another shape")
        }
    }

    static func difference(_ a: TrainingSettings, _ b: TrainingSettings) -> String {
        let encoder = JSONEncoder()
        guard let ja = (try? JSONSerialization.jsonObject(with: encoder.encode(a))) as? [String: Any],
              let jb = (try? JSONSerialization.jsonObject(with: encoder.encode(b))) as? [String: Any] else { return "?" }
        let keys = Set(ja.keys).union(jb.keys).filter { "\(ja[$0] ?? "none")" != "\(jb[$0] ?? "none")" }.sorted()
        return keys.map { "\($0): \(ja[$0] ?? "none") then, \(jb[$0] ?? "none") now" }.joined(separator: "; ")
    }
}
