import Foundation

/// Resolves the layer names users type: a node name, an output value name, or a unique prefix / suffix of either.
public struct LayerNames {
    public let graph: Graph

    public init(graph: Graph) { self.graph = graph }

    /// Every name a user may type, node names first.
    public var candidates: [String] {
        var seen = Set<String>()
        var names: [String] = []
        for node in graph.nodes {
            for name in [node.name] + node.outputs where !name.isEmpty && seen.insert(name).inserted { names.append(name) }
        }
        return names
    }

    /// The value (tensor) name a typed layer name refers to.
    public func resolve(_ query: String) throws -> String {
        if let node = graph.nodes.first(where: { $0.outputs.contains(query) }) { _ = node; return query }
        if graph.inputs.contains(where: { $0.name == query }) { return query }
        if let node = graph.nodes.first(where: { $0.name == query }), let out = node.outputs.first { return out }
        // Abbreviations: a unique prefix or suffix (with separators '/', '_', '.', ':' normalised away).
        let q = Self.normalised(query)
        let hits = Set(graph.nodes.compactMap { node -> String? in
            for name in [node.name] + node.outputs {
                let n = Self.normalised(name)
                if !q.isEmpty && (n.hasPrefix(q) || n.hasSuffix(q)) { return node.outputs.first }
            }
            return nil
        })
        if hits.count == 1 { return hits.first! }
        let exact = hits.filter { Self.normalised($0) == q }
        if exact.count == 1 { return exact.first! }
        // Exporters number the versions of one value (Caffe2: `inception_4c/output_1`, `_2` after an in-place op):
        // when every hit is the query plus a numeric suffix, the last one computed is the layer's final output.
        let numbered = hits.filter { name in
            let n = Self.normalised(name)
            guard n.hasPrefix(q + "_") else { return false }
            return n.dropFirst(q.count + 1).allSatisfy(\.isNumber)
        }
        if numbered.count == hits.count,
           let last = graph.nodes.last(where: { node in node.outputs.contains { numbered.contains($0) } })?.outputs.first(where: { numbered.contains($0) }) {
            return last
        }
        if hits.count > 1 {
            throw ExecutionError.unknownValue(name: query, suggestions: Array(hits.sorted().prefix(8)).map { "\($0) (ambiguous)" })
        }
        throw ExecutionError.unknownValue(name: query, suggestions: closeMatches(to: query))
    }

    /// Up to `limit` candidate names closest to `query` (substring hits first, then edit distance).
    public func closeMatches(to query: String, limit: Int = 5) -> [String] {
        let q = Self.normalised(query)
        let scored = candidates.map { name -> (String, Int) in
            let n = Self.normalised(name)
            let distance = n.contains(q) || q.contains(n) ? 0 : Self.editDistance(q, n)
            return (name, distance)
        }
        let limitDistance = max(3, q.count / 2)
        return scored.filter { $0.1 <= limitDistance }.sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }.prefix(limit).map(\.0)
    }

    static func normalised(_ s: String) -> String {
        String(s.lowercased().map { "/_.:-".contains($0) ? "_" : $0 })
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8), b = Array(b.utf8)
        if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
