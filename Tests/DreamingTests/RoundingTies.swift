import Dreaming
import Foundation
import Models
import Network
import Tensors

/// Comparing an input gradient with another runtime's, allowing for the places where float32 rounding alone decides
/// which way the gradient goes.
///
/// ReLU and max-pooling are not differentiable at a tie: a ReLU whose input is 0, a max-pool window whose two largest
/// inputs are equal. Two correct float32 implementations differ in the last bits of every activation (another GEMM
/// kernel sums in another order), so at an input within rounding distance of a tie one of them passes the gradient and
/// the other does not, or they route it to different winners. Each such flip moves a whole, localised chunk of the
/// input gradient: one flip of an early ReLU is enough for a relative L2 error of 2.5e-3 (measured: GoogLeNet
/// `conv2_3x3_reduce` at (c 26, y 26, x 44), pre-activation -5.3e-6 with the SSE3 kernels and +2.7e-6 with the AVX2
/// ones, where the layer's largest value is 461 — a relative 1e-8 from the tie).
///
/// So the comparison first lists the *ambiguous units* of our own forward pass — ReLU inputs and max-pool runner-ups
/// within `tolerance` × the tensor's largest magnitude of the tie — computes for each the exact change of our input
/// gradient if rounding had gone the other way (a backward pass seeded at that unit), takes the flips that explain the
/// difference to the reference, and reports what is left. What is left must be small for every GEMM kernel family:
/// it is the float32 error of a correct backward pass, while a wrong gradient anywhere shows up in it in full.
///
/// The tolerance: the forward passes of the shared models under the SSE3, AVX, AVX2 and Zen kernels agree to within
/// 3e-6 of each tensor's largest magnitude (a length-K float32 dot product carries errors of order sqrt(K)·2^-24 of its
/// terms, K ≤ 4608 here, compounded over ~20 layers); 1e-5 leaves a margin of three. Exact ties (two bitwise-equal
/// inputs of a window) are not ambiguous: they are copies of one upstream value made by an overlapping max-pool, equal
/// on every machine, and both routes lead to the same place.
struct RoundingTieComparison {
    struct Unit: CustomStringConvertible {
        let node: String
        let kind: String
        let index: Int
        /// Distance from the tie relative to the tensor's largest magnitude.
        let distance: Float
        /// Seed (at the unit's input tensor) whose backward is the change of the input gradient if the unit flipped.
        let seed: (value: String, entries: [(Int, Float)])
        var description: String { "\(kind) \(node)[\(index)] (\(String(format: "%.1e", distance)) from the tie)" }
    }

    struct Result {
        /// Relative L2 error of our gradient against the reference, as computed.
        var rawError: Double
        /// The same after the flips that explain the difference.
        var residualError: Double
        var ambiguous: [Unit]
        var flipped: [Unit]
    }

    static let tolerance: Float = 1e-5

    /// Compares d(mean(layer²))/d(input) at `x` with `reference`.
    static func compare(model: LoadedModel, layer: String, x: Tensor, reference: Tensor) throws -> Result {
        let executor = model.executor, graph = model.graph, inputName = try model.inputName
        let kinks = graph.nodes.filter { $0.opType == "Relu" || $0.opType == "MaxPool" }
        // Our own forward values of every ReLU / max-pool input and output on the way to the layer.
        var values: [String: Tensor] = [:]
        let wanted = Set(kinks.flatMap { [$0.inputs[0], $0.outputs[0]] })
        let wrt = Set([inputName]).union(kinks.map { $0.outputs[0] })
        var tape = try executor.forward([inputName: .float(x)], outputs: [layer], recordingFor: wrt) { i, outputs in
            for (name, value) in zip(graph.nodes[i].outputs, outputs) where wanted.contains(name) { values[name] = value.floatTensor }
        }
        values[inputName] = x
        let activation = try XCTUnwrapValue(tape.values[layer]?.floatTensor, "\(layer) was not computed")
        let (_, seeds) = try DreamObjective(layers: [DreamLayer(name: layer)]).evaluate([layer: activation])
        tape.values = [:]
        let base = tape
        let gradients = try executor.backward(&tape, seeds: seeds)
        let ours = try XCTUnwrapValue(gradients[inputName], "no input gradient")

        var units: [Unit] = []
        for node in kinks {
            guard let input = values[node.inputs[0]], let dy = gradients[node.outputs[0]] else { continue }
            let scale = input.scalars.reduce(0) { max($0, abs($1)) }
            let limit = tolerance * scale
            let xs = input.scalars, dys = dy.scalars
            if node.opType == "Relu" {
                for j in xs.indices where xs[j] != 0 && abs(xs[j]) <= limit && dys[j] != 0 {
                    // Ours passes dy where x > 0; the flip adds what the other side would have passed, or removes it.
                    units.append(Unit(node: node.name, kind: "ReLU input", index: j, distance: abs(xs[j]) / scale,
                                      seed: (node.inputs[0], [(j, xs[j] > 0 ? -dys[j] : dys[j])])))
                }
            } else {
                let y = try XCTUnwrapValue(values[node.outputs[0]], "no max-pool output")
                for (o, taps) in try maxPoolWindows(node, inputShape: input.shape, outputShape: y.shape) where dys[o] != 0 {
                    // Our backward's winner is the first tap equal to the output (see MaxPool.backward).
                    guard let winner = taps.first(where: { xs[$0] == y[flat: o] }) else { continue }
                    for runnerUp in taps where xs[runnerUp] != xs[winner] && xs[winner] - xs[runnerUp] <= limit {
                        units.append(Unit(node: node.name, kind: "max-pool runner-up", index: o,
                                          distance: (xs[winner] - xs[runnerUp]) / scale,
                                          seed: (node.inputs[0], [(runnerUp, dys[o]), (winner, -dys[o])])))
                    }
                }
            }
        }

        // Which units could explain the difference: <difference, change_j> = <J_j · difference, seed_j>, where J_j is the
        // forward Jacobian from the input to the unit's tensor. One central difference of the forward pass along the
        // difference gives J · difference for every unit at once; the exact change is then computed (a backward pass
        // seeded at the unit) only for the few best-aligned units, and a flip is taken when it explains between half
        // and one and a half of the difference along its own direction and is large enough to matter at all.
        let expected = reference.scalars
        var residual = zip(expected, ours.scalars).map { $0 - $1 }
        let referenceNorm = norm(expected)
        var flipped: [Unit] = []
        var examined = Set<Int>()
        for _ in 0..<3 where norm(residual) > significance * referenceNorm {
            let alignment = try alignments(of: units, along: residual, model: model, x: x)
            let candidates = alignment.enumerated().filter { $0.element > 0 && !examined.contains($0.offset) }
                .sorted { $0.element > $1.element }.prefix(candidatesPerRound).map(\.offset)
            for k in candidates {
                examined.insert(k)
                let unit = units[k]
                var copy = base
                var seed = Tensor(shape: try XCTUnwrapValue(values[unit.seed.value], "no seed tensor").shape)
                seed.withUnsafeMutableBufferPointer { s in for (i, v) in unit.seed.entries { s[i] += v } }
                guard let change = try executor.backward(&copy, seeds: [unit.seed.value: seed])[inputName]?.scalars else { continue }
                let squared = dot(change, change), explained = dot(residual, change) / max(squared, .leastNonzeroMagnitude)
                if squared.squareRoot() >= significance * referenceNorm && explained > 0.5 && explained < 1.5 {
                    for i in residual.indices { residual[i] -= change[i] }
                    flipped.append(unit)
                }
            }
        }
        return Result(rawError: ours.relativeL2Error(to: reference), residualError: norm(residual) / referenceNorm,
                      ambiguous: units, flipped: flipped)
    }

    /// Flips smaller than this (relative to the reference's norm) are below what the comparison can resolve.
    static let significance = 1e-5
    static let candidatesPerRound = 8

    /// <direction, change_j> for every unit, from the forward pass at x ± t·direction (central difference).
    static func alignments(of units: [Unit], along direction: [Float], model: LoadedModel, x: Tensor) throws -> [Double] {
        let inputName = try model.inputName
        let names = Array(Set(units.map(\.seed.value)))
        guard !names.isEmpty else { return [] }
        // A step of 1e-3 of the input's range: well above float32 noise (1e-6), well below most kinks' distances.
        let xs = x.scalars
        let range = Double(xs.max()! - xs.min()!), largest = Double(direction.map { abs($0) }.max() ?? 0)
        guard largest > 0 else { return units.map { _ in 0 } }
        let t = 1e-3 * range / largest
        func values(_ sign: Double) throws -> [String: [Float]] {
            let shifted = Tensor(shape: x.shape, scalars: zip(xs, direction).map { $0 + Float(sign * t) * $1 })
            let out = try model.executor.run([inputName: .float(shifted)], outputs: names)
            return out.compactMapValues { $0.floatTensor?.scalars }
        }
        let plus = try values(1), minus = try values(-1)
        return units.map { unit in
            unit.seed.entries.reduce(0.0) { sum, entry in
                guard let p = plus[unit.seed.value], let m = minus[unit.seed.value] else { return sum }
                return sum + Double(entry.1) * Double(p[entry.0] - m[entry.0]) / (2 * t)
            }
        }
    }

    /// For every output position of a max-pool node, the flat input indices its window covers (padding excluded).
    static func maxPoolWindows(_ node: Node, inputShape: [Int], outputShape: [Int]) throws -> [(Int, [Int])] {
        func ints(_ name: String) -> [Int]? {
            if case .ints(let v)? = node.attributes[name] { return v }
            return nil
        }
        guard inputShape.count == 4, outputShape.count == 4, let kernel = ints("kernel_shape"), kernel.count == 2 else {
            throw ComparisonError("max-pool \(node.name): only 2-D pooling is compared")
        }
        let strides = ints("strides") ?? [1, 1], pads = ints("pads") ?? [0, 0, 0, 0], dilations = ints("dilations") ?? [1, 1]
        let (planes, h, w) = (inputShape[0] * inputShape[1], inputShape[2], inputShape[3])
        let (outH, outW) = (outputShape[2], outputShape[3])
        var windows: [(Int, [Int])] = []
        windows.reserveCapacity(planes * outH * outW)
        for plane in 0..<planes {
            for oh in 0..<outH {
                for ow in 0..<outW {
                    var taps: [Int] = []
                    for ki in 0..<kernel[0] {
                        let ih = oh * strides[0] - pads[0] + ki * dilations[0]
                        guard ih >= 0 && ih < h else { continue }
                        for kj in 0..<kernel[1] {
                            let iw = ow * strides[1] - pads[1] + kj * dilations[1]
                            if iw >= 0 && iw < w { taps.append((plane * h + ih) * w + iw) }
                        }
                    }
                    windows.append(((plane * outH + oh) * outW + ow, taps))
                }
            }
        }
        return windows
    }

    struct ComparisonError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    static func XCTUnwrapValue<T>(_ value: T?, _ message: String) throws -> T {
        guard let value else { throw ComparisonError(message) }
        return value
    }

    static func dot(_ a: [Float], _ b: [Float]) -> Double {
        var s = 0.0
        for i in a.indices { s += Double(a[i]) * Double(b[i]) }
        return s
    }

    static func norm(_ a: [Float]) -> Double { dot(a, a).squareRoot() }
}
