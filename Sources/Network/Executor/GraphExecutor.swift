import Foundation
import Tensors

/// Runs a `Graph`: forward to any set of values (computing only the nodes they depend on), and backward from
/// gradients on any values to graph inputs and/or parameters. Every operator is built (and checked) at init.
public final class GraphExecutor {
    public let graph: Graph
    let operators: [GraphOperator]
    /// Value name -> index of the node that produces it.
    public let producer: [String: Int]
    /// Whether forward passes fuse a convolution with the BatchNormalization and activation after it where that
    /// is invisible to the caller (see `plan`). Off: every node runs on its own (tests compare the two).
    public var fusesLayers = true
    /// BatchNormalizations folded into their convolutions' weights, computed on first use.
    let foldedWeights = FoldedWeights()
    /// Winograd-transformed weights of the convolutions a backward pass goes through (see `plan`).
    let winogradCaches = WinogradCaches()
    /// Whether those transforms are kept between passes (off: every call transforms, as a forward-only pass does;
    /// `dream bench --no-weight-cache` measures what the cache brings). Results are identical either way.
    public var keepsTransformedWeights = true
    /// Floats held by transformed weights kept between passes (memory accounting, tests).
    public var cachedTransformFloats: Int { winogradCaches.floats }
    /// Forward plans by the names a pass was called with: a dream, a benchmark or a training loop calls `forward`
    /// with the same names over and over, and planning (string-keyed walks over the graph) cost as much as a small
    /// network's arithmetic (2.4 M instructions of 8 M per MobileNetV2 forward at 32x32).
    let plans = ForwardPlans()
    /// Nodes that compute only from shapes and the file's constants (`computesOnlyShapes`).
    private(set) var shapeOnly: Set<Int>

    public init(graph: Graph) throws {
        self.graph = graph
        operators = try graph.nodes.map { try OperatorRegistry.make($0, opset: graph.opsetVersion) }
        var producer: [String: Int] = [:]
        for (i, node) in graph.nodes.enumerated() {
            for output in node.outputs where !output.isEmpty { producer[output] = i }
        }
        self.producer = producer
        shapeOnly = []
        shapeOnly = shapeOnlyNodes(graph.nodes.indices, isConstant: { graph.initializers[$0] != nil })
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
    /// `observe` sees every node's outputs as they are computed (for shape tables and feature dumps); a pass with an
    /// observer runs every node on its own, so that it sees every value. `onStep` sees each step of the pass as it
    /// runs, fused steps as one (`ExecutedStep`: which nodes, "Conv+Relu"), without changing what runs.
    public func forward(_ feeds: [String: Value], outputs: [String], recordingFor wrt: Set<String>,
                        observe: ((Int, [Value]) -> Void)? = nil, onStep: ((ExecutedStep) -> Void)? = nil) throws -> ForwardTape {
        let key = ForwardPlan.Key(outputs: outputs, feeds: feeds.keys, wrt: wrt, fuse: fusesLayers && observe == nil,
                                  keepsTransformedWeights: keepsTransformedWeights)
        let forwardPlan = try plans.take(key) ?? makePlan(key, outputs: outputs, feeds: feeds, wrt: wrt)
        defer { plans.give(forwardPlan, for: key) }
        forwardPlan.startPass()
        var steps = forwardPlan.steps
        let requiresGrad = forwardPlan.requiresGrad, keep = forwardPlan.keep
        // Remaining uses of each value, so that it can be dropped after its last consumer.
        var uses = forwardPlan.uses

        var values: [String: Value] = feeds
        // Shape-dependent values: kept from an earlier pass at these input shapes, or captured in this one. An
        // observed pass runs every node (its observer sees every value).
        let folded = observe == nil ? forwardPlan.folded : nil
        let shapeKey = folded?.key(feeds)
        var captured: [String: Value]?
        if let folded, let shapeKey {
            if let known = folded.values(for: shapeKey) {
                values.merge(known) { fed, _ in fed }
                steps = folded.steps
                uses = folded.uses
            } else {
                captured = [:]
            }
        }
        var records: [ForwardTape.Record] = []
        var fusedAway = Set<String>()
        // Elements held at once by computed values: refused beyond half the machine's memory, with what helps.
        var live = 0
        for (stepIndex, step) in steps.enumerated() {
            let node = graph.nodes[step.nodes.last!]
            for i in step.nodes.dropLast() { fusedAway.formUnion(graph.nodes[i].outputs) }
            let inputs: [Value?] = try step.inputs.map { name in
                if name.isEmpty { return nil }
                if let v = values[name] ?? graph.initializers[name] { return v }
                throw ExecutionError.missingFeed(name: name)
            }
            let start = onStep == nil ? 0 : DispatchTime.now().uptimeNanoseconds
            let result = try step.op.forward(inputs)
            let nanoseconds = onStep == nil ? 0 : DispatchTime.now().uptimeNanoseconds - start
            for (name, value) in zip(step.outputs, result.outputs) where !name.isEmpty {
                values[name] = value
                live += checkedElementCount(value.shape) ?? 0
            }
            if live > TensorLimits.maxLiveElements {
                throw ExecutionError.shapeMismatch(node: node.name, op: node.opType, detail:
                    "the run holds \(TensorLimits.bytes(live)) of activations at this layer, more than a quarter of this machine's memory; use a smaller input (--size, --tile)")
            }
            if captured != nil, let folded, folded.foldedSteps.contains(stepIndex) {
                for (name, value) in zip(step.outputs, result.outputs) where folded.kept.contains(name) { captured![name] = value }
            }
            observe?(step.nodes[0], result.outputs)
            onStep?(ExecutedStep(pass: .forward, nodes: step.nodes, label: label(step.nodes), outputs: result.outputs,
                                 outputShapes: result.outputs.map(\.shape) + result.placed,
                                 nanoseconds: nanoseconds))
            if step.inputs.contains(where: { requiresGrad.contains($0) }) {
                let needs = step.op.backwardNeeds
                records.append(.init(step: step,
                                     inputs: needs.contains(.inputs) ? inputs : inputs.map { _ in nil },
                                     result: needs.contains(.outputs) ? result : ForwardResult(outputs: [], saved: result.saved)))
            }
            for input in step.inputs where !input.isEmpty {
                uses[input]! -= 1
                if uses[input] == 0 && !keep.contains(input) && feeds[input] == nil, let freed = values.removeValue(forKey: input) {
                    live -= checkedElementCount(freed.shape) ?? 0
                }
            }
            // Outputs nobody consumes and nobody asked for (e.g. Dropout's mask) are dropped at once.
            for name in step.outputs where !name.isEmpty && uses[name] == nil && !keep.contains(name) {
                if let freed = values.removeValue(forKey: name) { live -= checkedElementCount(freed.shape) ?? 0 }
            }
        }
        if let captured, let folded, let shapeKey { folded.store(captured, for: shapeKey) }
        var result: [String: Value] = [:]
        for name in outputs { result[name] = values[name] ?? feeds[name] ?? graph.initializers[name] }
        return ForwardTape(values: result, records: records, wrt: wrt, requiresGrad: requiresGrad, fusedAway: fusedAway)
    }

    /// The plan of a forward pass: the nodes needed, what a gradient flows through, the steps (`plan`) and how often
    /// each value is read. It depends only on the names in the call (`ForwardPlan.Key`), not on the values.
    func makePlan(_ key: ForwardPlan.Key, outputs: [String], feeds: [String: Value], wrt: Set<String>) throws -> ForwardPlan {
        let order = try nodesNeeded(for: outputs, feeds: Set(feeds.keys))
        // Values on a path from something we differentiate with respect to.
        var requiresGrad = wrt
        if !wrt.isEmpty {
            // Shape reads no values: nothing it computes carries a gradient.
            for i in order where !operators[i].readsOnlyShapes && graph.nodes[i].inputs.contains(where: { requiresGrad.contains($0) }) {
                requiresGrad.formUnion(graph.nodes[i].outputs.filter { !$0.isEmpty })
            }
        }
        let keep = Set(outputs)
        let steps = plan(order: order, keep: keep, feeds: feeds, wrt: wrt, requiresGrad: requiresGrad, fuse: key.fuse)
        var uses: [String: Int] = [:]
        for step in steps { for input in step.inputs where !input.isEmpty { uses[input, default: 0] += 1 } }
        return ForwardPlan(steps: steps, requiresGrad: requiresGrad, keep: keep, uses: uses,
                           folded: foldedShapes(steps: steps, feeds: feeds, wrt: wrt, requiresGrad: requiresGrad, keep: keep, fuse: key.fuse))
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
    /// `tape.wrt` that the seeds reach. Records are released as the pass goes back. `onStep` sees each step that runs
    /// (a step no gradient reaches is skipped and not reported), with the gradients it computed.
    public func backward(_ tape: inout ForwardTape, seeds: [String: Tensor],
                         onStep: ((ExecutedStep) -> Void)? = nil) throws -> [String: Tensor] {
        // A value computed inside a fused step never existed: a gradient on it could reach nothing.
        if let name = seeds.keys.sorted().first(where: { tape.fusedAway.contains($0) }) {
            throw ExecutionError.fusedValue(name: name)
        }
        var grads = seeds
        while let record = tape.records.popLast() {
            let step = record.step
            var outputGrads = step.outputs.map { $0.isEmpty ? nil : grads[$0] }
            if outputGrads.allSatisfy({ $0 == nil }) { continue }
            for name in step.outputs where !tape.wrt.contains(name) { grads[name] = nil }
            let need = step.inputs.map { !$0.isEmpty && tape.requiresGrad.contains($0) }
            let start = onStep == nil ? 0 : DispatchTime.now().uptimeNanoseconds
            let inputGrads = try step.op.backward(consuming: &outputGrads, inputs: record.inputs, result: record.result, need: need)
            if let onStep {
                let nanoseconds = DispatchTime.now().uptimeNanoseconds - start
                let gradients = inputGrads.compactMap { $0.map { Value.float($0) } }
                onStep(ExecutedStep(pass: .backward, nodes: step.nodes, label: backwardLabel(step, need: need),
                                    outputs: gradients, outputShapes: gradients.map(\.shape), nanoseconds: nanoseconds))
            }
            for (k, name) in step.inputs.enumerated() where need[k] {
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
        let step: ExecutionStep
        let inputs: [Value?]
        let result: ForwardResult
    }
    /// The requested outputs.
    public var values: [String: Value]
    var records: [Record]
    public let wrt: Set<String>
    let requiresGrad: Set<String>
    /// Values computed inside fused steps, which were never materialised.
    let fusedAway: Set<String>
}
