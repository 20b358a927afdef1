import Foundation

/// Values of a forward pass that depend only on the shapes of the fed values, computed once per input shape.
///
/// Exporters spell a channel shuffle's target shape or a chunk's bounds as arithmetic on `Shape` (PyTorch with
/// dynamic axes: ~800 of ShuffleNetV2's ~1000 nodes are Constant, Shape, Gather, Cast, Unsqueeze, Concat and integer
/// Div/Mul on scalars). Run as steps they cost more than the network's arithmetic at small sizes; yet their values
/// change only when an input shape does. A node is *folded* when its operator `isFoldable` and each of its inputs is
/// a constant (an initializer neither fed nor differentiated), the output of a folded node, or (for an operator that
/// `readsOnlyShapes`, i.e. Shape) any value at all. The first pass at a new set of fed shapes runs every step and
/// keeps the folded values that the other steps read; later passes at those shapes skip the folded steps and start
/// from the kept values. A new input size therefore runs the folded nodes again, so a reshape written for 224 px
/// never reaches a 512 px pass.
///
/// That is exact only if the shapes of all values are functions of the fed shapes. They are unless a step outside
/// the folded set takes configuration (a shape, bounds, axes, pads …: an input that `isParameterInput` says is not a
/// parameter) from a value computed at run time from data; such a plan does not fold at all. Every operator still
/// checks what it receives, so even a wrong fold could only end in an error, never in a kernel given bad shapes.
///
/// Folded values that no Shape reaches (a Constant, a weight transposed or reshaped by the exporter) are the same at
/// every input size: they are kept once, not once per size, so that a large one is held once.
final class FoldedShapes {
    /// Fed value names whose shapes key the cache (the plan's feeds, sorted).
    let feedNames: [String]
    /// The steps of a pass that starts from kept values, and how often each value is read in it.
    let steps: [ExecutionStep]
    let uses: [String: Int]
    /// Indices in the full step list of the folded steps, and the folded values read by the other steps or requested.
    let foldedSteps: Set<Int>
    let kept: Set<String>
    /// The kept values that depend on a shape (the others are constants).
    let shapeDependent: Set<String>
    private var constants: [String: Value]?
    private var cache: [[[Int]]: [String: Value]] = [:]
    /// Input shapes kept at most (the octaves of a dream and the tiles of a large image are a handful of sizes).
    static let capacity = 16

    init(feedNames: [String], steps: [ExecutionStep], uses: [String: Int], foldedSteps: Set<Int>, kept: Set<String>,
         shapeDependent: Set<String>) {
        self.feedNames = feedNames
        self.steps = steps
        self.uses = uses
        self.foldedSteps = foldedSteps
        self.kept = kept
        self.shapeDependent = shapeDependent
    }

    func key(_ feeds: [String: Value]) -> [[Int]] { feedNames.map { feeds[$0]?.shape ?? [] } }

    /// Every kept value at these input shapes, if a pass at them has run.
    func values(for key: [[Int]]) -> [String: Value]? {
        guard let constants, let shaped = cache[key] else { return nil }
        return constants.merging(shaped) { constant, _ in constant }
    }

    /// Keeps the values a pass at these input shapes captured (all of `kept`).
    func store(_ values: [String: Value], for key: [[Int]]) {
        if constants == nil { constants = values.filter { !shapeDependent.contains($0.key) } }
        if cache.count >= Self.capacity { cache.removeAll() }
        cache[key] = values.filter { shapeDependent.contains($0.key) }
    }

}

extension GraphExecutor {
    /// The nodes among `order` (graph order) whose outputs depend only on the shapes of other values and on values
    /// `isConstant` accepts: each is `isFoldable` and reads only such values (or, for Shape, anything), and
    /// `excluded` does not hold for it.
    func shapeOnlyNodes<Order: Sequence>(_ order: Order, isConstant: (String) -> Bool,
                                         excluded: (Node) -> Bool = { _ in false }) -> Set<Int> where Order.Element == Int {
        var derived = Set<String>(), nodes = Set<Int>()
        for i in order {
            let node = graph.nodes[i], op = operators[i]
            guard op.isFoldable, !excluded(node),
                  op.readsOnlyShapes || node.inputs.allSatisfy({ $0.isEmpty || derived.contains($0) || isConstant($0) }) else { continue }
            nodes.insert(i)
            derived.formUnion(node.outputs.filter { !$0.isEmpty })
        }
        return nodes
    }

    /// Whether node `node` computes only from shapes and the file's constants (Constant, Shape, Gather, Cast,
    /// integer arithmetic … as exporters write a reshape's target shape): not a layer of the network.
    public func computesOnlyShapes(node: Int) -> Bool { shapeOnly.contains(node) }

    /// The folded part of the pass `steps` (see `FoldedShapes`), or nil when nothing folds or the fold would not be
    /// exact. `requiresGrad` and `wrt` are the plan's; a folded value is never differentiated.
    /// With `fuse`, the steps left are fused once more where the folded ones were all that stood in the way: a
    /// channel shuffle's Concat is read by the Shape nodes that compute the shuffle's target shape, and by nothing
    /// else once they are folded (`fusingChannelShuffles`).
    func foldedShapes(steps: [ExecutionStep], feeds: [String: Value], wrt: Set<String>, requiresGrad: Set<String>,
                      keep: Set<String>, fuse: Bool) -> FoldedShapes? {
        func isConstant(_ name: String) -> Bool {
            graph.initializers[name] != nil && feeds[name] == nil && !requiresGrad.contains(name)
        }
        let nodes = shapeOnlyNodes(steps.flatMap(\.nodes).sorted(), isConstant: isConstant,
                                   excluded: { $0.outputs.contains { wrt.contains($0) || feeds[$0] != nil } })
        // A step folds when all it computes does (a fused step never does: its convolution is no shape arithmetic).
        let foldedSteps = Set(steps.indices.filter { steps[$0].nodes.allSatisfy(nodes.contains) })
        guard !foldedSteps.isEmpty else { return nil }
        let folded = Set(foldedSteps.flatMap { steps[$0].outputs.filter { !$0.isEmpty } })
        // Folded values a Shape reaches, in step order (a folded step is one node).
        var shapeDependent = Set<String>()
        for k in foldedSteps.sorted() {
            let step = steps[k], op = operators[step.nodes[0]]
            if op.readsOnlyShapes || step.inputs.contains(where: shapeDependent.contains) {
                shapeDependent.formUnion(step.outputs.filter { !$0.isEmpty })
            }
        }
        var kept = Set<String>()
        var rest: [ExecutionStep] = []
        for (k, step) in steps.enumerated() where !foldedSteps.contains(k) {
            for name in step.inputs where folded.contains(name) { kept.insert(name) }
            // Configuration (a shape, bounds, axes, pads …) computed from data at run time: shapes may depend on
            // values, so nothing folds. Each node of a fused step is asked about its own inputs.
            for n in step.nodes {
                for (i, name) in graph.nodes[n].inputs.enumerated() where !name.isEmpty && !operators[n].isParameterInput(i) {
                    if !folded.contains(name) && !isConstant(name) && !operators[n].readsOnlyShapes { return nil }
                }
            }
            rest.append(step)
        }
        kept.formUnion(keep.intersection(folded))
        if fuse {
            var consumers: [String: [Int]] = [:]
            for step in rest {
                for n in step.nodes { for input in graph.nodes[n].inputs where !input.isEmpty { consumers[input, default: []].append(n) } }
            }
            rest = fusingChannelShuffles(rest, consumers: consumers, requiresGrad: requiresGrad) {
                !keep.contains($0) && !wrt.contains($0) && feeds[$0] == nil
            }
        }
        var uses: [String: Int] = [:]
        for step in rest { for input in step.inputs where !input.isEmpty { uses[input, default: 0] += 1 } }
        return FoldedShapes(feedNames: feeds.keys.sorted(), steps: rest, uses: uses, foldedSteps: foldedSteps, kept: kept,
                            shapeDependent: shapeDependent.intersection(kept))
    }
}
