import Foundation

/// Resolves the layer names users type: a node name, an output value name, an ordinal (`conv3`, `pool2`), or a unique
/// prefix / suffix of a name, in that order (a real name always wins over an ordinal, an ordinal over an abbreviation).
public struct LayerNames {
    public let graph: Graph
    /// Short names in graph order: `conv1`, `conv2` … for the convolutions, `pool1`, `pool2` … for the windowed pools.
    public let ordinals: [Ordinal]

    /// A short ordinal name of a layer and the value it stands for.
    public struct Ordinal: Equatable, Sendable {
        /// `conv3`, `pool2` …
        public var name: String
        /// Index of the node in `graph.nodes`.
        public var node: Int
        /// What the name resolves to: the node's output, or, when its only consumer is an activation (ReLU …), the
        /// activation's output (what Caffe and Keras call the convolution layer: the maps the next layer sees).
        public var value: String
    }

    public init(graph: Graph) {
        self.graph = graph
        let traits = GraphTraits(graph: graph)
        var consumers: [String: [Int]] = [:]
        for (i, node) in graph.nodes.enumerated() {
            for input in node.inputs where !input.isEmpty { consumers[input, default: []].append(i) }
        }
        let graphOutputs = Set(graph.outputs.map(\.name))
        var counts: [LayerOrdinalKind: Int] = [:]
        var ordinals: [Ordinal] = []
        for (i, node) in graph.nodes.enumerated() {
            guard let kind = traits.ordinalKind[i], let output = node.outputs.first, !output.isEmpty else { continue }
            counts[kind, default: 0] += 1
            var value = output
            if !graphOutputs.contains(output), let users = consumers[output], users.count == 1, traits.isActivation[users[0]],
               let activated = graph.nodes[users[0]].outputs.first, !activated.isEmpty {
                value = activated
            }
            ordinals.append(Ordinal(name: "\(kind.rawValue)\(counts[kind]!)", node: i, value: value))
        }
        self.ordinals = ordinals
    }

    /// The ordinal name of node `node`, if it has one.
    public func ordinal(ofNode node: Int) -> String? { ordinals.first { $0.node == node }?.name }

    /// Every name a user may type, node names first, ordinals last.
    public var candidates: [String] {
        var seen = Set<String>()
        var names: [String] = []
        for node in graph.nodes {
            for name in [node.name] + node.outputs where !name.isEmpty && seen.insert(name).inserted { names.append(name) }
        }
        for ordinal in ordinals where seen.insert(ordinal.name).inserted { names.append(ordinal.name) }
        return names
    }

    /// The value (tensor) name a typed layer name refers to.
    public func resolve(_ query: String) throws -> String {
        if let node = graph.nodes.first(where: { $0.outputs.contains(query) }) { _ = node; return query }
        if graph.inputs.contains(where: { $0.name == query }) { return query }
        if let node = graph.nodes.first(where: { $0.name == query }), let out = node.outputs.first { return out }
        if let ordinal = ordinals.first(where: { $0.name == query.lowercased() }) { return ordinal.value }
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

    /// Up to `limit` candidate names closest to `query`, ordinals included: substring hits first, then by edit distance.
    /// Never empty while the graph has names: when nothing is close, the nearest are listed all the same.
    public func closeMatches(to query: String, limit: Int = 5) -> [String] {
        let q = Self.normalised(query)
        let scored = candidates.map { name -> (name: String, distance: Int) in
            let n = Self.normalised(name)
            // A substring hit counts when it is a real part of a name, not a one- or two-letter value name ("c").
            let substring = (q.count >= 3 && n.contains(q)) || (n.count >= 3 && q.contains(n))
            let distance = substring ? 0 : Self.editDistance(q, n)
            return (name, distance)
        }.sorted { $0.distance != $1.distance ? $0.distance < $1.distance : $0.name < $1.name }
        let limitDistance = max(3, q.count / 2)
        let close = scored.filter { $0.distance <= limitDistance }
        return (close.isEmpty ? scored : close).prefix(limit).map(\.name)
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
