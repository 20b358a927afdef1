import Foundation
import Tensors

/// One step of a forward pass: a single node, or a convolution with the nodes that only post-process its output
/// fused into it (Conv → BatchNormalization → an activation, any prefix of that chain after the Conv; the activation
/// one node, or SiLU / HardSwish spelled as a gate and a Mul).
struct ExecutionStep {
    /// Graph node indices the step computes, the convolution first.
    let nodes: [Int]
    /// Values it reads (the first node's inputs) and writes (the last node's outputs).
    let inputs: [String]
    let outputs: [String]
    let op: GraphOperator
}

/// What a step observer sees after each step of a forward or backward pass (see `GraphExecutor.forward(…, onStep:)`
/// and `GraphExecutor.backward(…, onStep:)`).
public struct ExecutedStep {
    public enum Pass: Sendable { case forward, backward }
    public let pass: Pass
    /// The graph nodes the step computed, in graph order (one, or a convolution and the nodes fused into it).
    public let nodes: [Int]
    /// The nodes' operator types joined by "+" ("Conv", "Conv+BatchNormalization+Clip"); a backward step adds
    /// " backward" and, for a step with parameters, which gradients it computed: "Conv+Relu backward (dx)",
    /// "Conv backward (dx, dW)".
    public let label: String
    /// Forward: the outputs of the step's last node (the values inside a fused step never exist).
    /// Backward: the gradients the step computed for its inputs, in input order (omitted ones left out).
    public let outputs: [Value]
    /// The shapes of the forward outputs, including one written in place into a Concat's output (which is not in
    /// `outputs`: it never exists as a value of its own); the shapes of `outputs` for a backward step.
    public let outputShapes: [[Int]]
    /// Wall-clock nanoseconds of the operator's forward or backward (only the operator: not the executor's
    /// bookkeeping around it).
    public let nanoseconds: UInt64
}

/// A convolution with a folded BatchNormalization and/or an activation applied where the kernel writes its output.
///
/// Forward: y = act(conv(x, W') + b') with W' = W·s, b' = (b − mean)·s + beta, s = scale / sqrt(var + eps) when a
/// BatchNormalization is folded (W, b otherwise). The activation may be one the file spells as two nodes: SiLU
/// (Sigmoid → Mul(z, σ(z))) and HardSwish (HardSigmoid(1/6, 1/2) → Mul(z, ·)), the same bits as those nodes.
///
/// Backward: the activation's derivative is taken from the saved output y, so the pre-activation is never kept
/// (a backward pass holds no more memory than the unfused graph, which keeps y for the next layer anyway). That is
/// exact only where y decides the subgradient the unfused operator takes from x (`Activation.differentiableFromOutput`):
/// - Relu: y > 0 exactly where x > 0 (relu'(0) = 0 either way; NaN passes the gradient both ways).
/// - LeakyRelu with alpha >= 0: y > 0 exactly where x > 0; elsewhere both give alpha·dy.
/// - Sigmoid: its own backward reads only y.
/// - HardSigmoid: y lies strictly inside (0, 1) exactly where alpha·x + beta does, and is then that value.
/// - Clip is not fused into a step a backward pass goes through: y == min holds both for x == min, where PyTorch's
///   subgradient passes dy, and for x < min, where it is 0 (likewise at max), and y alone cannot tell them apart.
///   Keeping the pre-activation instead would cost the memory the fusion is meant to save, for a pass over memory
///   the forward then still makes; so a recorded Clip stays its own step and the planner fuses Clip only into
///   convolutions that no gradient flows through. HardSwish likewise.
/// - An activation spelled as a gate and a Mul (SiLU: Sigmoid → Mul; HardSwish: HardSigmoid(1/6, 1/2) → Mul) is the
///   exception that keeps the pre-activation z (`savesPreActivation`): the unfused gate and Mul keep z and the gate,
///   so keeping z alone holds less than the unfused nodes, and the step replaces their two passes over memory
///   (forward) and three (backward: Mul, the gate, the sum of z's two gradients) by one each. Its backward
///   (`Activation.gateBackward`) recomputes the gate with the forward's kernel and repeats the unfused operations in
///   their order, so the gradient is the unfused one bit for bit (for HardSwish the two nodes' subgradients at ±3,
///   not those of a HardSwish node, which is therefore not fused where a gradient passes: see above).
/// A folded BatchNormalization differentiates through W' (dx = convᵀ(W', dy)); the planner folds only when no
/// parameter of the convolution or the normalisation is differentiated in the run.
struct FusedConvolutionOperator: GraphOperator {
    let convolution: ConvolutionOperator
    let folded: (weight: Tensor, bias: Tensor)?
    let activation: Activation?
    /// The forward keeps conv(x) + b' (z) for the backward, which differentiates the activation from it as the
    /// unfused gate and Mul would (`Activation.gateBackward`): a gated activation in a step a backward pass goes
    /// through (see above).
    var savesPreActivation = false

    var backwardNeeds: BackwardNeeds { activation == nil || savesPreActivation ? .inputs : [.inputs, .outputs] }

    /// The convolution's inputs with the folded weight and bias in place of the file's.
    private func convolutionInputs(_ inputs: [Value?]) -> [Value?] {
        guard let folded else { return inputs }
        return [inputs.first ?? nil, .float(folded.weight), .float(folded.bias)]
    }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        guard savesPreActivation, let activation else {
            return try convolution.forward(convolutionInputs(inputs), epilogue: activation)
        }
        guard case .float(let z)? = try convolution.forward(convolutionInputs(inputs), epilogue: nil).outputs.first else {
            throw ExecutionError.missingSavedValue(node: convolution.node.name, op: "Conv")
        }
        return ForwardResult(outputs: [.float(activation.forward(z))], saved: .preActivation(z))
    }

    /// The same output for one image, written where `destination` says (`ConvolutionOperator.forward(_:epilogue:into:)`).
    func forward(_ inputs: [Value?], into destination: ([Int]) throws -> UnsafeMutablePointer<Float>) throws -> [Int] {
        try convolution.forward(convolutionInputs(inputs), epilogue: activation, into: destination)
    }

    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        var gradients = outputGradients
        return try backward(consuming: &gradients, inputs: inputs, result: result, need: need)
    }

    /// The activation's gradient overwrites dy where the executor hands over the only reference to it, so a backward
    /// pass through a fused step allocates no more than through the unfused nodes (whose activation writes a new dz
    /// while dy is alive).
    func backward(consuming outputGradients: inout [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        let none = [Tensor?](repeating: nil, count: inputs.count)
        guard var dy = outputGradients.first ?? nil else { return none }
        outputGradients[0] = nil
        if savesPreActivation, let activation {
            guard case .preActivation(let z)? = result.saved else {
                throw ExecutionError.missingSavedValue(node: convolution.node.name, op: "Conv")
            }
            activation.gateBackward(&dy, x: z)
        } else if let activation {
            guard activation.differentiableFromOutput, case .float(let y)? = result.outputs.first else {
                throw ExecutionError.missingSavedValue(node: convolution.node.name, op: "Conv")
            }
            activation.backwardFromOutput(&dy, y: y)
        }
        let convolutionNeed = folded == nil ? need : [need.first ?? false, false, false]
        let gradients = try convolution.backward([dy], inputs: convolutionInputs(inputs), result: result, need: convolutionNeed)
        return folded == nil ? gradients : [gradients.first ?? nil] + none.dropFirst()
    }
}

/// BatchNormalization folded into the convolution before it, computed once per executor and node.
final class FoldedWeights {
    private let lock = NSLock()
    private var cache: [Int: (weight: Tensor, bias: Tensor)] = [:]

    /// The folded weight and bias of convolution node `conv` followed by normalisation node `norm`.
    func get(_ conv: Int, make: () -> (weight: Tensor, bias: Tensor)?) -> (weight: Tensor, bias: Tensor)? {
        lock.lock(); defer { lock.unlock() }
        if let cached = cache[conv] { return cached }
        guard let made = make() else { return nil }
        cache[conv] = made
        return made
    }

    /// W' [M,...] = W·s, b' = (b − mean)·s + beta with s = scale / sqrt(var + eps), per output channel m; in Double,
    /// rounded once to Float. Nil when the shapes do not fit (the unfused operators then report the problem).
    static func fold(weight: Tensor, bias: Tensor?, scale: Tensor, beta: Tensor, mean: Tensor, variance: Tensor,
                     epsilon: Float) -> (weight: Tensor, bias: Tensor)? {
        let m = weight.shape.first ?? 0
        guard weight.rank >= 2, m > 0, bias.map({ $0.count == m }) ?? true,
              [scale, beta, mean, variance].allSatisfy({ $0.count == m }) else { return nil }
        let perChannel = weight.count / m
        let w = weight.scalars, b = bias?.scalars, mu = mean.scalars, shift = beta.scalars, gamma = scale.scalars, v = variance.scalars
        let s = (0..<m).map { Double(gamma[$0]) / (Double(v[$0]) + Double(epsilon)).squareRoot() }
        let foldedWeight = Tensor(shape: weight.shape) { out in
            for channel in 0..<m {
                for i in (channel * perChannel)..<((channel + 1) * perChannel) { out[i] = Float(Double(w[i]) * s[channel]) }
            }
        }
        let foldedBias = Tensor(shape: [m], scalars: (0..<m).map { channel in
            Float((Double(b?[channel] ?? 0) - Double(mu[channel])) * s[channel] + Double(shift[channel]))
        })
        return (foldedWeight, foldedBias)
    }
}

/// Each convolution node's `WinogradWeightCache`, made on first use and kept for the executor's life (its graph, and
/// so its initializers, never change).
final class WinogradCaches {
    private let lock = NSLock()
    private var caches: [Int: WinogradWeightCache] = [:]

    func cache(for node: Int) -> WinogradWeightCache {
        lock.lock(); defer { lock.unlock() }
        if let cache = caches[node] { return cache }
        let made = WinogradWeightCache()
        caches[node] = made
        return made
    }

    /// Floats held by every node's transforms.
    var floats: Int {
        lock.lock(); defer { lock.unlock() }
        return caches.values.reduce(0) { $0 + $1.floats }
    }
}

extension GraphExecutor {
    /// The steps of a forward pass over the nodes `order` (graph order). With `fuse`, a Conv absorbs the nodes that
    /// only post-process its output, where that changes nothing a caller can see:
    /// - each absorbed intermediate value has exactly one consumer (the next node of the chain), is not requested,
    ///   not fed, and not differentiated with respect to (`wrt`);
    /// - BatchNormalization (inference form) is folded only when its scale, bias, mean and variance and the Conv's
    ///   weight and bias are the file's initializers (not fed) and none of them is differentiated in this run;
    /// - Relu, LeakyRelu, Clip (bounds known before the run), Sigmoid, HardSigmoid and HardSwish; where a backward
    ///   pass goes through the step (`requiresGrad` reaches the Conv), only activations differentiable from their
    ///   output (Relu, LeakyRelu with alpha >= 0, Sigmoid, HardSigmoid; see `FusedConvolutionOperator`);
    /// - SiLU spelled Sigmoid → Mul(z, σ(z)) and HardSwish spelled HardSigmoid(1/6, 1/2) → Mul(z, h(z)) (either
    ///   operand order), where z's only two consumers are those two nodes and the gate's only consumer is the Mul,
    ///   neither value requested, fed nor differentiated with respect to; in a step a backward goes through, the step
    ///   then keeps z (`FusedConvolutionOperator.savesPreActivation`).
    /// - a Pad of zeros on H and W only (pads known before the run) whose output only a Conv or an AveragePool reads:
    ///   joined to that operator's window (`PadOperator.zeroSpatialPads`), the step reading the Pad's input;
    /// - a BatchNormalization not folded into a convolution, with the activation after it, where no gradient flows,
    ///   and with a Relu after it where one does (`BatchNormOperator.fuses`: one pass each way).
    /// A fused step runs where its Conv stood: the nodes it absorbs read nothing else that is computed.
    /// A Concat followed by a channel shuffle (Reshape → Transpose → Reshape) where no gradient flows becomes one step
    /// (`ConcatShuffleOperator`). Convolutions then write their slices of the Concat that joins them where nobody can
    /// tell (`ConcatInPlace`).
    ///
    /// A convolution whose weight is frozen (the file's initializer, not fed, not differentiated) and that a backward
    /// pass goes through keeps its Winograd-transformed weights in the executor (`WinogradWeightCache`): a dream runs
    /// it forward and back every step with the same weights. Forward-only passes transform per call, so that an
    /// executor that only classifies holds no transforms (tens of MB for GoogLeNet).
    func plan(order: [Int], keep: Set<String>, feeds: [String: Value], wrt: Set<String>, requiresGrad: Set<String>,
              fuse: Bool) -> [ExecutionStep] {
        /// Node i's convolution, with the executor's transform cache when its weights stay fixed and a backward goes through it.
        func convolution(_ i: Int, _ conv: ConvolutionOperator) -> ConvolutionOperator {
            let inputs = graph.nodes[i].inputs
            guard keepsTransformedWeights, inputs.count > 1, feeds[inputs[1]] == nil, !requiresGrad.contains(inputs[1]),
                  graph.initializers[inputs[1]] != nil, inputs.contains(where: { requiresGrad.contains($0) }) else { return conv }
            var cached = conv
            cached.winogradCache = winogradCaches.cache(for: i)
            return cached
        }
        func single(_ i: Int) -> ExecutionStep {
            let op = (operators[i] as? ConvolutionOperator).map { convolution(i, $0) } ?? operators[i]
            return ExecutionStep(nodes: [i], inputs: graph.nodes[i].inputs, outputs: graph.nodes[i].outputs, op: op)
        }
        guard fuse else { return order.map(single) }
        var consumers: [String: [Int]] = [:]
        for i in order { for input in graph.nodes[i].inputs where !input.isEmpty { consumers[input, default: []].append(i) } }
        /// Whether fusing `value` away is invisible to the caller (not requested, differentiated or fed).
        func hidden(_ value: String) -> Bool { !keep.contains(value) && !wrt.contains(value) && feeds[value] == nil }
        /// The only consumer of `value`, if fusing it away is invisible to the caller.
        func soleConsumer(_ value: String) -> Int? {
            guard hidden(value), let users = consumers[value], users.count == 1, graph.nodes[users[0]].inputs.first == value,
                  graph.nodes[users[0]].outputs.count == 1, !graph.nodes[users[0]].outputs[0].isEmpty else { return nil }
            return users[0]
        }
        /// z's two consumers when they compute z · gate(z): a Sigmoid (SiLU) or a HardSigmoid(1/6, 1/2) (HardSwish)
        /// of z, and a Mul of z and that gate, the gate read by the Mul only: (gate node, Mul node, activation).
        func gatedActivation(_ z: String) -> (Int, Int, Activation)? {
            guard hidden(z), let users = consumers[z], users.count == 2 else { return nil }
            for (gate, product) in [(users[0], users[1]), (users[1], users[0])] {
                let g = graph.nodes[gate], m = graph.nodes[product]
                guard g.inputs == [z], g.outputs.count == 1, !g.outputs[0].isEmpty, hidden(g.outputs[0]),
                      consumers[g.outputs[0]] == [product], let act = operators[gate] as? ActivationOperator,
                      let mul = operators[product] as? ElementwiseBinaryOperator, mul.op == .mul,
                      m.inputs.count == 2, Set(m.inputs) == [z, g.outputs[0]],
                      m.outputs.count == 1, !m.outputs[0].isEmpty else { continue }
                switch act.activation {
                case .sigmoid?: return (gate, product, .silu)
                case .hardSigmoid(let alpha, let beta)? where alpha == Float(1) / 6 && beta == 0.5:
                    return (gate, product, .hardSwish)
                default: continue
                }
            }
            return nil
        }
        /// A value known before the run: an initializer that is not fed, or a Constant node's value.
        func constant(_ name: String) -> Value? {
            if feeds[name] != nil { return nil }
            if let value = graph.initializers[name] { return value }
            if let p = producer[name], let c = operators[p] as? ConstantOperator { return c.value }
            return nil
        }
        /// A parameter the fold may bake in: the file's own float tensor, not fed and not differentiated.
        func frozen(_ name: String) -> Tensor? {
            guard !name.isEmpty, feeds[name] == nil, !requiresGrad.contains(name) else { return nil }
            return graph.initializers[name]?.floatTensor
        }

        // A zero Pad of H and W read only by a Conv or an AveragePool joins that operator's window (one pass over
        // the data instead of two): consumer -> (the Pad's node, the widened operator).
        var paddedBy: [Int: (pad: Int, op: GraphOperator)] = [:]
        for p in order {
            guard let pad = operators[p] as? PadOperator, graph.nodes[p].outputs.count == 1,
                  let c = soleConsumer(graph.nodes[p].outputs[0]), let extra = pad.zeroSpatialPads(constant) else { continue }
            if let conv = operators[c] as? ConvolutionOperator, let widened = conv.foldingZeroPadding(
                extra, weightShape: graph.nodes[c].inputs.count > 1 ? constant(graph.nodes[c].inputs[1])?.shape : nil) {
                paddedBy[c] = (p, widened)
            } else if let pool = operators[c] as? AveragePoolOperator, let widened = pool.foldingZeroPadding(extra) {
                paddedBy[c] = (p, widened)
            }
        }
        var absorbed = Set(paddedBy.values.map(\.pad))
        var steps: [ExecutionStep] = []
        for i in order where !absorbed.contains(i) {
            let node = graph.nodes[i]
            // With a folded Pad, the step reads the Pad's input instead of its output.
            let padded = paddedBy[i]
            let inputs = padded.map { [graph.nodes[$0.pad].inputs[0]] + node.inputs.dropFirst() } ?? node.inputs
            guard let original = (padded?.op ?? operators[i]) as? ConvolutionOperator, node.outputs.count == 1, !node.outputs[0].isEmpty else {
                if let padded {
                    steps.append(ExecutionStep(nodes: [padded.pad, i], inputs: inputs, outputs: node.outputs, op: padded.op))
                } else if var norm = operators[i] as? BatchNormOperator, node.outputs.count == 1,
                          let j = soleConsumer(node.outputs[0]), let act = operators[j] as? ActivationOperator,
                          let a = act.fixedActivation(constant), norm.fuses(a, differentiated: inputs.contains { requiresGrad.contains($0) }) {
                    // BatchNormalization → activation: one pass over the data forward, and backward for a Relu.
                    norm.activation = a
                    absorbed.insert(j)
                    steps.append(ExecutionStep(nodes: [i, j], inputs: inputs, outputs: graph.nodes[j].outputs, op: norm))
                } else {
                    steps.append(single(i))
                }
                continue
            }
            let conv = convolution(i, original)
            let recorded = inputs.contains { requiresGrad.contains($0) }
            var chain = (padded.map { [$0.pad] } ?? []) + [i], value = node.outputs[0]
            var folded: (weight: Tensor, bias: Tensor)?
            if let j = soleConsumer(value), let norm = operators[j] as? BatchNormOperator {
                let n = graph.nodes[j]
                let bias = node.inputs.count > 2 && !node.inputs[2].isEmpty ? node.inputs[2] : nil
                let stats = n.inputs.dropFirst().compactMap(frozen)
                if n.inputs.count == 5, stats.count == 4, let w = frozen(node.inputs[1]), bias.map({ frozen($0) != nil }) ?? true {
                    folded = foldedWeights.get(i) {
                        FoldedWeights.fold(weight: w, bias: bias.flatMap(frozen), scale: stats[0], beta: stats[1],
                                           mean: stats[2], variance: stats[3], epsilon: norm.epsilon)
                    }
                    if folded != nil { chain.append(j); value = n.outputs[0] }
                }
            }
            var activation: Activation?, savesPreActivation = false
            if let (gate, product, a) = gatedActivation(value) {
                activation = a; savesPreActivation = recorded
                chain += [gate, product]; value = graph.nodes[product].outputs[0]
            } else if let j = soleConsumer(value), let act = operators[j] as? ActivationOperator, let a = act.fixedActivation(constant) {
                let kind: Bool
                switch a {
                case .relu, .leakyRelu, .clip, .sigmoid, .hardSigmoid, .hardSwish: kind = true
                case .tanh, .silu: kind = false
                }
                if kind && (!recorded || a.differentiableFromOutput) {
                    activation = a; chain.append(j); value = graph.nodes[j].outputs[0]
                }
            }
            if chain == [i] { steps.append(single(i)); continue }
            absorbed.formUnion(chain)
            let op: GraphOperator = folded == nil && activation == nil ? conv
                : FusedConvolutionOperator(convolution: conv, folded: folded, activation: activation,
                                           savesPreActivation: savesPreActivation)
            steps.append(ExecutionStep(nodes: chain, inputs: inputs, outputs: graph.nodes[chain.last!].outputs, op: op))
        }
        steps = fusingChannelShuffles(steps, consumers: consumers, requiresGrad: requiresGrad, hidden: hidden)
        return writingConcatsInPlace(steps, consumers: consumers, keep: keep, feeds: feeds, wrt: wrt, requiresGrad: requiresGrad)
    }

    /// "Conv+BatchNormalization+Clip" for a step's nodes.
    func label(_ nodes: [Int]) -> String { nodes.map { graph.nodes[$0].opType }.joined(separator: "+") }

    /// "Conv+Relu backward (dx)" for a backward step that computed the gradients marked in `need`: dx for values
    /// computed in the run (or fed), dW for initializers (parameters); nothing in parentheses for a step whose
    /// inputs are all computed values (Relu, Concat), so that a parameter gradient shows wherever one is computed.
    func backwardLabel(_ step: ExecutionStep, need: [Bool]) -> String {
        let isParameter = step.inputs.map { !$0.isEmpty && graph.initializers[$0] != nil }
        guard isParameter.contains(true) else { return label(step.nodes) + " backward" }
        var parts: [String] = []
        if zip(need, isParameter).contains(where: { $0 && !$1 }) { parts.append("dx") }
        if zip(need, isParameter).contains(where: { $0 && $1 }) { parts.append("dW") }
        return label(step.nodes) + " backward (" + parts.joined(separator: ", ") + ")"
    }
}

/// A planned forward pass (`GraphExecutor.makePlan`): reused by every pass called with the same names.
final class ForwardPlan {
    /// What a plan depends on besides the graph: the names, never the values.
    struct Key: Hashable {
        let outputs: [String], feeds: [String], wrt: [String]
        let fuse: Bool, keepsTransformedWeights: Bool

        init<Feeds: Sequence>(outputs: [String], feeds: Feeds, wrt: Set<String>, fuse: Bool, keepsTransformedWeights: Bool)
            where Feeds.Element == String {
            self.outputs = outputs
            self.feeds = feeds.sorted()
            self.wrt = wrt.sorted()
            self.fuse = fuse
            self.keepsTransformedWeights = keepsTransformedWeights
        }
    }

    let steps: [ExecutionStep]
    let requiresGrad: Set<String>
    let keep: Set<String>
    /// How many steps read each value.
    let uses: [String: Int]
    /// The Concats written in place, emptied at the start of each pass (a pass that failed may have left one half
    /// written).
    let destinations: [ConcatDestination]
    /// The steps that compute only shape-dependent values, run once per input shape (nil: none, or not exact).
    let folded: FoldedShapes?

    init(steps: [ExecutionStep], requiresGrad: Set<String>, keep: Set<String>, uses: [String: Int], folded: FoldedShapes? = nil) {
        self.steps = steps
        self.requiresGrad = requiresGrad
        self.keep = keep
        self.uses = uses
        self.folded = folded
        destinations = steps.compactMap { ($0.op as? InPlaceConcatOperator)?.destination }
    }

    func startPass() { for destination in destinations { destination.reset() } }
}

/// The executor's plans, one per key. A pass takes its plan out while it runs, so that passes running at the same
/// time on other threads never share one (they plan their own).
final class ForwardPlans {
    private let lock = NSLock()
    private var plans: [ForwardPlan.Key: ForwardPlan] = [:]
    /// Distinct keys kept at most (a caller asking for ever new outputs does not grow the cache without bound).
    static let capacity = 16

    func take(_ key: ForwardPlan.Key) -> ForwardPlan? {
        lock.lock(); defer { lock.unlock() }
        return plans.removeValue(forKey: key)
    }

    func give(_ plan: ForwardPlan, for key: ForwardPlan.Key) {
        lock.lock(); defer { lock.unlock() }
        if plans[key] == nil && plans.count >= Self.capacity { plans.removeAll() }
        plans[key] = plan
    }
}
