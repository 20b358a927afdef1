import Foundation
import Tensors

/// Concat written in place: the convolutions whose outputs a Concat joins along the channels (SqueezeNet's fire
/// modules, GoogLeNet's inception blocks) write straight into their slices of the Concat's output, so the branches'
/// outputs are never allocated and never copied (at 512 px that copy was 1.9 ms of SqueezeNet's 32 ms forward).
///
/// The planner (`GraphExecutor.writingConcatsInPlace`) does this only where nobody can tell: for a Concat on axis 1
/// whose every input is the one output of a convolution step (fused or not) that
/// - is consumed by nothing but this Concat (once), is not requested, not fed and not differentiated with respect to;
/// - comes from a step no gradient flows through (a backward pass would need the branch's own output);
/// - has a weight that is the file's initializer (not fed), so that its output channels are known before the run.
/// One image (N = 1) is written in place; a batch is computed per branch and copied into the output, as before.
/// A destination belongs to one plan (`ForwardPlan`), which only one pass at a time runs.
final class ConcatDestination {
    let node: Node
    /// Output channels of each input, from its convolution's weight, and where each starts in the output.
    let channels: [Int]
    let offsets: [Int]
    private(set) var tensor: Tensor?
    /// The shape each input had, for the Concat's backward (`ForwardResult.Saved.shapes`).
    private(set) var shapes: [[Int]?]

    init(node: Node, channels: [Int]) {
        self.node = node
        self.channels = channels
        var offsets: [Int] = [], start = 0
        for c in channels { offsets.append(start); start += c }
        self.offsets = offsets
        shapes = Array(repeating: nil, count: channels.count)
    }

    /// The output for inputs of this shape (allocated by the first input to arrive), after checking the input
    /// against the shape every other input must share, as Concat does.
    private func output(for index: Int, shape: [Int]) throws -> Tensor {
        guard shapes[index] == nil else { throw node.invalid("input \(index) of the concatenation was computed twice") }
        var joined = shape
        guard shape.count >= 2, shape[1] == channels[index] else {
            throw node.invalid("input \(index) has shape \(shape), expected \(channels[index]) channels")
        }
        joined[1] = channels.reduce(0, +)
        if let tensor {
            guard tensor.shape == joined else {
                throw ExecutionError.shapeMismatch(node: node.name, op: "Concat", detail:
                    "cannot concatenate \(shape) with inputs of shape \(tensor.shape.enumerated().map { $0.offset == 1 ? 0 : $0.element }) (other than the channels) on axis 1")
            }
            return tensor
        }
        try node.requireAllocatable(joined)
        let made = Tensor(shape: joined, unsafeUninitialized: { _ in })
        tensor = made
        return made
    }

    /// Where input `index`, one image of `shape`, is to be written.
    func slice(_ index: Int, shape: [Int]) throws -> UnsafeMutablePointer<Float> {
        let out = try output(for: index, shape: shape)
        shapes[index] = shape
        return out.storage.pointer + offsets[index] * shape.dropFirst(2).reduce(1, *)
    }

    /// Copies input `index` (any number of images) into its channels of the output.
    func place(_ index: Int, _ value: Tensor) throws {
        let out = try output(for: index, shape: value.shape)
        shapes[index] = value.shape
        let inner = value.shape.dropFirst(2).reduce(1, *), block = channels[index] * inner
        let outBlock = out.shape[1] * inner
        value.withUnsafeBufferPointer { source in
            guard block > 0 else { return }
            for image in 0..<value.shape[0] {
                (out.storage.pointer + image * outBlock + offsets[index] * inner)
                    .update(from: source.baseAddress! + image * block, count: block)
            }
        }
    }

    /// Forgets whatever a previous pass left (one that failed halfway).
    func reset() {
        tensor = nil
        shapes = Array(repeating: nil, count: channels.count)
    }

    /// The finished output, once every input has been written; the destination is empty afterwards.
    func take() throws -> (Tensor, [[Int]?]) {
        guard let tensor, !shapes.contains(where: { $0 == nil }) else {
            throw node.invalid("an input of the concatenation was never computed")
        }
        let result = (tensor, shapes)
        reset()
        return result
    }
}

/// A step that can write its output for one image where it is told (`ConvolutionOperator`,
/// `FusedConvolutionOperator`); returns the output's shape.
protocol WritesOneImageInPlace: GraphOperator {
    func forward(_ inputs: [Value?], into destination: ([Int]) throws -> UnsafeMutablePointer<Float>) throws -> [Int]
}

extension ConvolutionOperator: WritesOneImageInPlace {
    func forward(_ inputs: [Value?], into destination: ([Int]) throws -> UnsafeMutablePointer<Float>) throws -> [Int] {
        try forward(inputs, epilogue: nil, into: destination)
    }
}

extension FusedConvolutionOperator: WritesOneImageInPlace {}

/// A convolution step that writes its output into its slice of a Concat's output (`ConcatDestination`) and returns
/// no value of its own.
struct ConcatSliceWriter: GraphOperator {
    let producer: WritesOneImageInPlace
    let destination: ConcatDestination
    let index: Int

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        if (inputs.first ?? nil)?.shape.first == 1 {
            let shape = try producer.forward(inputs) { try destination.slice(index, shape: $0) }
            return ForwardResult(outputs: [], placed: [shape])
        }
        let result = try producer.forward(inputs)
        guard case .float(let y)? = result.outputs.first else { throw ExecutionError.missingInput(op: "Concat", index: index) }
        try destination.place(index, y)
        return ForwardResult(outputs: [], placed: [y.shape])
    }

    /// Never recorded: the planner writes in place only steps no gradient flows through.
    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        throw ExecutionError.missingSavedValue(node: destination.node.name, op: "Conv")
    }
}

/// The Concat of a `ConcatDestination`: its inputs are already in place, it hands the output over.
struct InPlaceConcatOperator: GraphOperator {
    let concat: ConcatOperator
    let destination: ConcatDestination

    var backwardNeeds: BackwardNeeds { [] }

    func forward(_ inputs: [Value?]) throws -> ForwardResult {
        let (output, shapes) = try destination.take()
        return ForwardResult(output, saved: .shapes(shapes))
    }

    func backward(_ outputGradients: [Tensor?], inputs: [Value?], result: ForwardResult, need: [Bool]) throws -> [Tensor?] {
        try concat.backward(outputGradients, inputs: inputs, result: result, need: need)
    }
}

extension GraphExecutor {
    /// The steps with every Concat that can be written in place (see `ConcatDestination`) turned into one: its
    /// producers write into its output and the Concat step reads nothing.
    func writingConcatsInPlace(_ steps: [ExecutionStep], consumers: [String: [Int]], keep: Set<String>,
                               feeds: [String: Value], wrt: Set<String>, requiresGrad: Set<String>) -> [ExecutionStep] {
        var steps = steps
        var producingStep: [String: Int] = [:]
        for (s, step) in steps.enumerated() { for output in step.outputs where !output.isEmpty { producingStep[output] = s } }
        for (s, step) in steps.enumerated() {
            guard step.nodes.count == 1, let concat = step.op as? ConcatOperator, concat.axis == 1,
                  step.inputs.count >= 2, !step.inputs.contains(""), Set(step.inputs).count == step.inputs.count else { continue }
            var channels: [Int] = [], writers: [(step: Int, producer: WritesOneImageInPlace)] = []
            for value in step.inputs {
                guard let p = producingStep[value], steps[p].outputs == [value], consumers[value] == step.nodes,
                      !keep.contains(value), !wrt.contains(value), feeds[value] == nil,
                      !steps[p].inputs.contains(where: { requiresGrad.contains($0) }),
                      let producer = steps[p].op as? WritesOneImageInPlace else { break }
                let convInputs = graph.nodes[steps[p].nodes[0]].inputs
                guard convInputs.count > 1, feeds[convInputs[1]] == nil, let weight = graph.initializers[convInputs[1]],
                      weight.shape.count >= 3, weight.shape[0] >= 1 else { break }
                channels.append(weight.shape[0])
                writers.append((p, producer))
            }
            guard writers.count == step.inputs.count else { continue }
            let destination = ConcatDestination(node: graph.nodes[step.nodes[0]], channels: channels)
            for (k, (p, producer)) in writers.enumerated() {
                let writer = steps[p]
                steps[p] = ExecutionStep(nodes: writer.nodes, inputs: writer.inputs, outputs: writer.outputs,
                                         op: ConcatSliceWriter(producer: producer, destination: destination, index: k))
            }
            steps[s] = ExecutionStep(nodes: step.nodes, inputs: [], outputs: step.outputs,
                                     op: InPlaceConcatOperator(concat: concat, destination: destination))
        }
        return steps
    }
}
