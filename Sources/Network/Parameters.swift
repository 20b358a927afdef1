import Foundation
import Tensors

/// The parameters of a graph by ONNX name, with a trainable flag each: the one home that the trainer, the optimisers
/// and the exporter share. Which initializers are parameters is `ParameterFreezing.parameterNames`' answer (asked
/// only here), so operator-specific rules (BatchNorm statistics, Clip bounds) stay with the operators.
public struct Parameters {
    /// Parameter names in file order.
    public let names: [String]
    public private(set) var values: [String: Tensor]
    /// Names of the parameters an optimiser may change; everything else is frozen.
    public private(set) var trainable: Set<String>

    /// Every float parameter of the executor's graph, all frozen.
    public init(executor: GraphExecutor) {
        names = ParameterFreezing(executor: executor).parameterNames
        var values: [String: Tensor] = [:]
        for name in names { values[name] = executor.graph.initializers[name]?.floatTensor }
        self.values = values
        trainable = []
    }

    public var trainableNames: [String] { names.filter { trainable.contains($0) } }

    public func count(of name: String) -> Int { values[name]?.count ?? 0 }
    public var totalCount: Int { names.reduce(0) { $0 + count(of: $1) } }
    public var trainableCount: Int { trainableNames.reduce(0) { $0 + count(of: $1) } }

    public mutating func freezeAll() { trainable = [] }

    /// Unfreezes these parameters; an unknown name is an error.
    public mutating func unfreeze(_ parameterNames: [String]) throws {
        for name in parameterNames where values[name] == nil {
            throw ExecutionError.unknownValue(name: name, suggestions: names.filter { $0.hasPrefix(String(name.prefix(4))) }.prefix(5).map { $0 })
        }
        trainable.formUnion(parameterNames)
    }

    /// Unfreezes the parameters whose name starts with `prefix`; returns how many matched (0 is for the caller to report).
    @discardableResult
    public mutating func unfreeze(prefix: String) -> Int {
        let matched = names.filter { $0.hasPrefix(prefix) }
        trainable.formUnion(matched)
        return matched.count
    }

    /// Unfreezes the layer that produces `layer` and everything after it: the complement of
    /// `dream layers --freeze-before layer` (the same `ParameterFreezing` rule).
    public mutating func unfreeze(from layer: String, in executor: GraphExecutor) throws {
        let frozen = try ParameterFreezing(executor: executor).frozen(beforeLayer: layer)
        trainable.formUnion(names.filter { !frozen.contains($0) })
    }

    /// Replaces a parameter's value (same shape).
    public mutating func set(_ name: String, _ value: Tensor) {
        precondition(values[name]?.shape == value.shape, "parameter \(name): \(value.shape) does not match \(values[name]?.shape ?? [])")
        values[name] = value
    }

    /// The trainable values, for feeding an executor (feeds take precedence over the graph's initializers).
    public var trainableValues: [String: Value] {
        var feeds: [String: Value] = [:]
        for name in trainable { feeds[name] = .float(values[name]!) }
        return feeds
    }

    /// Writes the current values into `graph`'s initializers (the graph that is then exported).
    public func write(into graph: inout Graph) {
        for name in names { if let v = values[name] { graph.initializers[name] = .float(v) } }
    }
}

/// A gradient-descent rule. State (momentum, moments) is kept per parameter name, so that it survives a change of
/// which parameters are trainable and can be saved in a checkpoint.
public protocol Optimizer {
    /// One update of every parameter that has a gradient; the others are left untouched (bit for bit).
    mutating func step(_ parameters: inout Parameters, gradients: [String: Tensor])
    /// Number of steps taken.
    var steps: Int { get }
    /// State tensors by "parameter/slot" name, and their restoration (checkpoints).
    var state: [String: Tensor] { get }
    mutating func restore(state: [String: Tensor], steps: Int)
}

/// SGD with (heavy-ball) momentum and L2 weight decay: g' = g + λθ; v = μv + g'; θ -= lr·v.
public struct SGD: Optimizer {
    public var learningRate: Float, momentum: Float, weightDecay: Float
    public private(set) var steps = 0
    var velocity: [String: Tensor] = [:]

    public init(learningRate: Float, momentum: Float = 0.9, weightDecay: Float = 0) {
        self.learningRate = learningRate; self.momentum = momentum; self.weightDecay = weightDecay
    }

    public mutating func step(_ parameters: inout Parameters, gradients: [String: Tensor]) {
        steps += 1
        for name in parameters.trainableNames {
            guard let g = gradients[name], var theta = parameters.values[name] else { continue }
            var v = velocity.removeValue(forKey: name) ?? Tensor(shape: theta.shape)
            let lr = learningRate, mu = momentum, wd = weightDecay
            theta.withUnsafeMutableBufferPointer { p in
                v.withUnsafeMutableBufferPointer { vb in
                    g.withUnsafeBufferPointer { gb in
                        for i in 0..<p.count {
                            vb[i] = mu * vb[i] + gb[i] + wd * p[i]
                            p[i] -= lr * vb[i]
                        }
                    }
                }
            }
            velocity[name] = v
            parameters.set(name, theta)
        }
    }

    public var state: [String: Tensor] {
        Dictionary(uniqueKeysWithValues: velocity.map { ($0.key + "/velocity", $0.value) })
    }

    public mutating func restore(state: [String: Tensor], steps: Int) {
        self.steps = steps
        velocity = [:]
        for (key, value) in state where key.hasSuffix("/velocity") { velocity[String(key.dropLast(9))] = value }
    }
}

/// Adam (Kingma & Ba 2015) with bias correction. `decoupled` false: weight decay is L2 added to the gradient (Adam);
/// true: θ -= lr·λ·θ separately from the adaptive step (AdamW, Loshchilov & Hutter 2019).
public struct Adam: Optimizer {
    public var learningRate: Float, beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float
    public let decoupled: Bool
    public private(set) var steps = 0
    var first: [String: Tensor] = [:], second: [String: Tensor] = [:]

    public init(learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                weightDecay: Float = 0, decoupled: Bool = false) {
        self.learningRate = learningRate; self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon
        self.weightDecay = weightDecay; self.decoupled = decoupled
    }

    public mutating func step(_ parameters: inout Parameters, gradients: [String: Tensor]) {
        steps += 1
        let b1 = beta1, b2 = beta2, eps = epsilon, lr = learningRate, wd = weightDecay, decoupled = decoupled
        let c1 = 1 - Float(pow(Double(b1), Double(steps))), c2 = 1 - Float(pow(Double(b2), Double(steps)))
        for name in parameters.trainableNames {
            guard let g = gradients[name], var theta = parameters.values[name] else { continue }
            var m = first.removeValue(forKey: name) ?? Tensor(shape: theta.shape)
            var v = second.removeValue(forKey: name) ?? Tensor(shape: theta.shape)
            theta.withUnsafeMutableBufferPointer { p in
                m.withUnsafeMutableBufferPointer { mb in
                    v.withUnsafeMutableBufferPointer { vb in
                        g.withUnsafeBufferPointer { gb in
                            for i in 0..<p.count {
                                let grad = decoupled ? gb[i] : gb[i] + wd * p[i]
                                mb[i] = b1 * mb[i] + (1 - b1) * grad
                                vb[i] = b2 * vb[i] + (1 - b2) * grad * grad
                                let update = (mb[i] / c1) / ((vb[i] / c2).squareRoot() + eps)
                                p[i] -= lr * (update + (decoupled ? wd * p[i] : 0))
                            }
                        }
                    }
                }
            }
            first[name] = m
            second[name] = v
            parameters.set(name, theta)
        }
    }

    public var state: [String: Tensor] {
        var s: [String: Tensor] = [:]
        for (k, v) in first { s[k + "/m"] = v }
        for (k, v) in second { s[k + "/v"] = v }
        return s
    }

    public mutating func restore(state: [String: Tensor], steps: Int) {
        self.steps = steps
        first = [:]; second = [:]
        for (key, value) in state {
            if key.hasSuffix("/m") { first[String(key.dropLast(2))] = value }
            if key.hasSuffix("/v") { second[String(key.dropLast(2))] = value }
        }
    }
}
