import Foundation

public enum ClassSelectionError: Error, LocalizedError, CustomStringConvertible {
    case unknown(String, suggestions: [String])
    case outOfRange(Int, classes: Int)

    public var description: String {
        switch self {
        case let .unknown(query, suggestions):
            return "no class is called \"\(query)\"" + (suggestions.isEmpty ? "" : "; close: " + suggestions.joined(separator: "; "))
        case let .outOfRange(index, classes):
            return "class \(index) is out of range: the model has \(classes) classes (0…\(classes - 1))"
        }
    }
}

extension LoadedModel {
    /// A class given as an index or a label: the whole label or one of its comma-separated names, case-insensitive
    /// ("tabby cat", "281", "Tabby"); otherwise a unique label containing the text.
    public func classIndex(for query: String, classCount: Int? = nil) throws -> Int {
        let count = classCount ?? labels?.count
        if let index = Int(query.trimmingCharacters(in: .whitespaces)) {
            if index < 0 || (count.map { index >= $0 } ?? false) { throw ClassSelectionError.outOfRange(index, classes: count ?? 0) }
            return index
        }
        let wanted = query.trimmingCharacters(in: .whitespaces).lowercased()
        let labels = self.labels ?? []
        let names = labels.map { $0.lowercased().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        if let i = labels.firstIndex(where: { $0.lowercased() == wanted }) ?? names.firstIndex(where: { $0.contains(wanted) }) {
            return i
        }
        let containing = labels.indices.filter { labels[$0].lowercased().contains(wanted) }
        if containing.count == 1 { return containing[0] }
        throw ClassSelectionError.unknown(query, suggestions: containing.prefix(5).map { "\($0) \(labels[$0])" })
    }

    /// The label of class `index` ("class N" when the model has none).
    public func label(ofClass index: Int) -> String {
        labels.flatMap { index < $0.count ? $0[index] : nil } ?? "class \(index)"
    }
}

extension ClassSelectionError {
    public var errorDescription: String? { description }
}
