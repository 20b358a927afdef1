import Tensors

/// Concat of g inputs → Reshape [N, g, C/g, H, W] → Transpose [0, 2, 1, 3, 4] → Reshape [N, C, H, W]: ShuffleNet's
/// concatenation and channel shuffle, as one step that writes channel j of input k straight to channel j·g + k
/// (`ChannelShuffle.interleave`): one pass over the data instead of two (the Concat's and the Transpose's). The
/// target shapes arrive at run time (from Shape arithmetic or constants), so the step checks them on every call and
/// runs the four operators one after the other whenever they describe anything else. Exporters compute those shapes
/// from Shape nodes reading the Concat's output, so the chain is fused in the plan of passes whose shape arithmetic
/// is folded (`FoldedShapes`), where nothing else reads it.
struct ConcatShuffleOperator: GraphOperator {
    let concat: ConcatOperator
    let view: ReshapeOperator
    let transpose: TransposeOperator
    let flatten: ReshapeOperator
    /// How many of the step's inputs are the Concat's; the two after them are the Reshapes' target shapes.
    let concatInputs: Int

    var backwardNeeds: BackwardNeeds { [] }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        let joined = Array(inputs[..<concatInputs]), viewShape = inputs[concatInputs], flatShape = inputs[concatInputs + 1]
        let xs = joined.compactMap { $0?.floatTensor }
        if xs.count == concatInputs, let first = xs.first, first.rank == 4, xs.allSatisfy({ $0.shape == first.shape }),
           concat.axis == 1 || concat.axis == -3, transpose.perm == [0, 2, 1, 3, 4] {
            let (n, c, h, w) = (first.shape[0], first.shape[1], first.shape[2], first.shape[3]), g = xs.count
            let viewed = try? view.targetShape(of: [n, g * c, h, w], inputs: [nil, viewShape])
            let flat = try? flatten.targetShape(of: [n, c, g, h, w], inputs: [nil, flatShape])
            if viewed == [n, g, c, h, w] && flat == [n, g * c, h, w] {
                try concat.node.requireAllocatable([n, g * c, h, w])
                return ForwardResult(ChannelShuffle.interleave(xs))
            }
        }
        let y = try concat.forward(joined).outputs[0]
        let v = try view.forward([y, viewShape]).outputs[0]
        let t = try transpose.forward([v]).outputs[0]
        return ForwardResult(outputs: try flatten.forward([t, flatShape]).outputs)
    }

    /// Never recorded: the planner fuses only where no gradient flows.
    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        throw ExecutionError.missingSavedValue(node: concat.node.name, op: "Concat")
    }
}

extension GraphExecutor {
    /// The steps with every Concat → Reshape → Transpose [0, 2, 1, 3, 4] → Reshape chain that no gradient flows
    /// through, and whose intermediate values nobody else reads or asked for, as one `ConcatShuffleOperator` step
    /// where the last Reshape stood.
    func fusingChannelShuffles(_ steps: [ExecutionStep], consumers: [String: [Int]], requiresGrad: Set<String>,
                               hidden: (String) -> Bool) -> [ExecutionStep] {
        var stepOf: [Int: Int] = [:]
        for (s, step) in steps.enumerated() where step.nodes.count == 1 { stepOf[step.nodes[0]] = s }
        /// The single-node step that alone reads `value` (as its first input), if `value` is hidden.
        func next(_ value: String) -> Int? {
            guard hidden(value), let users = consumers[value], users.count == 1, let s = stepOf[users[0]],
                  steps[s].inputs.first == value, steps[s].outputs.count == 1, !steps[s].outputs[0].isEmpty else { return nil }
            return s
        }
        var replaced: [Int: ExecutionStep] = [:], removed = Set<Int>()
        for (s, step) in steps.enumerated() {
            guard step.nodes.count == 1, let concat = step.op as? ConcatOperator, step.outputs.count == 1,
                  !step.inputs.isEmpty, !step.inputs.contains(""), !step.inputs.contains(where: { requiresGrad.contains($0) }),
                  let r1 = next(step.outputs[0]), let view = steps[r1].op as? ReshapeOperator, view.flattenAxis == nil,
                  steps[r1].inputs.count == 2, let t = next(steps[r1].outputs[0]), let transpose = steps[t].op as? TransposeOperator,
                  transpose.perm == [0, 2, 1, 3, 4], let r2 = next(steps[t].outputs[0]),
                  let flatten = steps[r2].op as? ReshapeOperator, flatten.flattenAxis == nil, steps[r2].inputs.count == 2,
                  r2 > r1, r1 > s else { continue }
            let op = ConcatShuffleOperator(concat: concat, view: view, transpose: transpose, flatten: flatten,
                                           concatInputs: step.inputs.count)
            replaced[r2] = ExecutionStep(nodes: [step.nodes[0], steps[r1].nodes[0], steps[t].nodes[0], steps[r2].nodes[0]],
                                         inputs: step.inputs + [steps[r1].inputs[1], steps[r2].inputs[1]],
                                         outputs: steps[r2].outputs, op: op)
            removed.formUnion([s, r1, t])
        }
        return steps.indices.filter { !removed.contains($0) }.map { replaced[$0] ?? steps[$0] }
    }
}
