import Foundation
import Tensors

/// Runs a `Graph`: forward to any set of values (computing only the nodes they depend on), and backward from
/// gradients on any values to graph inputs and/or parameters. Every operator is built (and checked) at init.
public final class GraphExecutor {
    public let graph: Graph
    let operators: [GraphOperator]
    /// Value name -> index of the node that produces it.
    public let producer: [String: Int]

    public init(graph: Graph) throws {
        self.graph = graph
        operators = try graph.nodes.map { try OperatorRegistry.make($0, opset: graph.opsetVersion) }
        var producer: [String: Int] = [:]
        for (i, node) in graph.nodes.enumerated() {
            for output in node.outputs where !output.isEmpty { producer[output] = i }
        }
        self.producer = producer
    }

    /// Indices of the nodes needed to compute `targets`, in graph order.
    func nodesNeeded(for targets: [String], feeds: Set<String>) throws -> [Int] {
        var needed = Set<Int>()
        var stack = targets
        while let name = stack.popLast() {
            if feeds.contains(name) || graph.initializers[name] != nil { continue }
            guard let i = producer[name] else {
                if graph.inputs.contains(where: { $0.name == name }) { throw ExecutionError.missingFeed(name: name) }
                throw ExecutionError.unknownValue(name: name, suggestions: LayerNames(graph: graph).closeMatches(to: name))
            }
            if needed.insert(i).inserted { stack.append(contentsOf: graph.nodes[i].inputs.filter { !$0.isEmpty }) }
        }
        return needed.sorted()
    }

    /// Forward pass computing exactly `outputs`; intermediate values are freed after their last use.
    public func run(_ feeds: [String: Value], outputs: [String]) throws -> [String: Value] {
        try forward(feeds, outputs: outputs, recordingFor: []).values
    }

    /// Forward pass that also records what a backward pass to `wrt` (graph inputs and/or parameter names) needs.
    /// `observe` sees every node's outputs as they are computed (for shape tables and feature dumps).
    public func forward(_ feeds: [String: Value], outputs: [String], recordingFor wrt: Set<String>,
                        observe: ((Int, [Value]) -> Void)? = nil) throws -> ForwardTape {
        let order = try nodesNeeded(for: outputs, feeds: Set(feeds.keys))
        // Values on a path from something we differentiate with respect to.
        var requiresGrad = wrt
        var recorded = Set<Int>()
        if !wrt.isEmpty {
            for i in order where graph.nodes[i].inputs.contains(where: { requiresGrad.contains($0) }) {
                recorded.insert(i)
                requiresGrad.formUnion(graph.nodes[i].outputs.filter { !$0.isEmpty })
            }
        }
        // Remaining uses of each value, so that it can be dropped after its last consumer.
        var uses: [String: Int] = [:]
        for i in order { for input in graph.nodes[i].inputs where !input.isEmpty { uses[input, default: 0] += 1 } }
        let keep = Set(outputs)

        var values: [String: Value] = feeds
        var records: [ForwardTape.Record] = []
        // Elements held at once by computed values: refused beyond half the machine's memory, with what helps.
        var live = 0
        for i in order {
            let node = graph.nodes[i]
            let inputs: [Value?] = try node.inputs.map { name in
                if name.isEmpty { return nil }
                if let v = values[name] ?? graph.initializers[name] { return v }
                throw ExecutionError.missingFeed(name: name)
            }
            let result = try operators[i].forward(inputs)
            for (name, value) in zip(node.outputs, result.outputs) where !name.isEmpty {
                values[name] = value
                live += checkedElementCount(value.shape) ?? 0
            }
            if live > TensorLimits.maxLiveElements {
                throw ExecutionError.shapeMismatch(node: node.name, op: node.opType, detail:
                    "the run holds \(TensorLimits.bytes(live)) of activations at this layer, more than a quarter of this machine's memory; use a smaller input (--size, --tile)")
            }
            observe?(i, result.outputs)
            if recorded.contains(i) {
                let needs = operators[i].backwardNeeds
                records.append(.init(node: i,
                                     inputs: needs.contains(.inputs) ? inputs : inputs.map { _ in nil },
                                     result: needs.contains(.outputs) ? result : ForwardResult(outputs: [], saved: result.saved),
                                     outputShapes: result.outputs.map(\.shape)))
            }
            for input in node.inputs where !input.isEmpty {
                uses[input]! -= 1
                if uses[input] == 0 && !keep.contains(input) && feeds[input] == nil, let freed = values.removeValue(forKey: input) {
                    live -= checkedElementCount(freed.shape) ?? 0
                }
            }
            // Outputs nobody consumes and nobody asked for (e.g. Dropout's mask) are dropped at once.
            for name in node.outputs where !name.isEmpty && uses[name] == nil && !keep.contains(name) {
                if let freed = values.removeValue(forKey: name) { live -= checkedElementCount(freed.shape) ?? 0 }
            }
        }
        var result: [String: Value] = [:]
        for name in outputs { result[name] = values[name] ?? feeds[name] ?? graph.initializers[name] }
        return ForwardTape(values: result, records: records, wrt: wrt, requiresGrad: requiresGrad)
    }

    /// Shapes of every value computed on the way to the graph outputs, by value name.
    public func valueShapes(_ feeds: [String: Value]) throws -> [String: [Int]] {
        var shapes: [String: [Int]] = [:]
        for (name, value) in feeds { shapes[name] = value.shape }
        _ = try forward(feeds, outputs: graph.outputs.map(\.name), recordingFor: []) { i, outputs in
            for (name, value) in zip(self.graph.nodes[i].outputs, outputs) { shapes[name] = value.shape }
        }
        return shapes
    }

    /// Backward pass: `seeds` are gradients on forward values (same shapes); returns gradients for every name in
    /// `tape.wrt` that the seeds reach. Records are released as the pass goes back.
    public func backward(_ tape: inout ForwardTape, seeds: [String: Tensor]) throws -> [String: Tensor] {
        var grads = seeds
        while let record = tape.records.popLast() {
            let node = graph.nodes[record.node]
            let outputGrads = node.outputs.map { $0.isEmpty ? nil : grads[$0] }
            if outputGrads.allSatisfy({ $0 == nil }) { continue }
            for name in node.outputs where !tape.wrt.contains(name) { grads[name] = nil }
            let need = node.inputs.map { !$0.isEmpty && tape.requiresGrad.contains($0) }
            let inputGrads = try operators[record.node].backward(outputGrads, inputs: record.inputs, result: record.result, need: need)
            for (k, name) in node.inputs.enumerated() where need[k] {
                guard k < inputGrads.count, let g = inputGrads[k] else { continue }
                // Taken out of the dictionary first so that the buffer is uniquely owned: add then works in place
                // instead of copying it (copy-on-write).
                if var existing = grads.removeValue(forKey: name) {
                    existing.add(g)
                    grads[name] = existing
                } else {
                    grads[name] = g
                }
            }
        }
        return grads.filter { tape.wrt.contains($0.key) }
    }
}

/// What a forward pass keeps for the backward pass.
public struct ForwardTape {
    struct Record {
        let node: Int
        let inputs: [Value?]
        let result: ForwardResult
        let outputShapes: [[Int]]
    }
    /// The requested outputs.
    public var values: [String: Value]
    var records: [Record]
    public let wrt: Set<String>
    let requiresGrad: Set<String>
}
