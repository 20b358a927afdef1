import Foundation
import Network
import Tensors

public enum OptimizerKind: String, Codable, Sendable, CaseIterable { case adam, adamw, sgd }

/// Everything that decides a training run's result (saved in checkpoints: a resume must use the same recipe).
public struct TrainingSettings: Codable, Equatable, Sendable {
    public var epochs = 10
    public var batchSize = 32
    public var learningRate: Float = 1e-3
    public var optimizer: OptimizerKind = .adam
    public var momentum: Float = 0.9
    public var weightDecay: Float = 0
    public var validationSplit = 0.2
    public var seed: UInt64 = 1
    /// Unfreeze this layer and everything after it.
    public var trainFrom: String?
    /// Unfreeze parameters whose names start with these.
    public var trainablePrefixes: [String] = []
    /// nil = auto.
    public var head: HeadActivation?
    public var loss: Loss?
    public var augment = false
    /// Stop after this many epochs without a better validation loss (nil: never).
    public var patience: Int?

    public init() {}

    func makeOptimizer() -> Optimizer {
        switch optimizer {
        case .sgd: return SGD(learningRate: learningRate, momentum: momentum, weightDecay: weightDecay)
        case .adam: return Adam(learningRate: learningRate, weightDecay: weightDecay)
        case .adamw: return Adam(learningRate: learningRate, weightDecay: weightDecay, decoupled: true)
        }
    }
}

public struct RecipeError: Error, LocalizedError, CustomStringConvertible, Equatable {
    public let message: String
    public var description: String { message }
}

/// The head and loss of a run and how many output units it has, chosen from the data when asked for `auto`:
/// the table every course teaches, with the pairs that do not fit refused and the reason given.
public struct HeadChoice: Codable, Equatable, Sendable {
    public var activation: HeadActivation
    public var loss: Loss
    public var outputs: Int
    /// What was picked automatically, for the user (empty when both were given).
    public var explanation: String

    public init(classes: Int, regression: Bool, head: HeadActivation?, loss: Loss?, minimumTarget: Float = 0) throws {
        let activation = head ?? (regression ? .linear : loss == .binaryCrossEntropy ? .sigmoid : .softmax)
        let chosenLoss = loss ?? { switch activation {
            case .softmax: return .categoricalCrossEntropy
            case .sigmoid: return .binaryCrossEntropy
            case .linear: return .meanSquaredError
        } }()
        let regressionLosses: Set<Loss> = [.meanSquaredError, .meanAbsoluteError, .meanSquaredLogError]
        func refuse(_ why: String) -> RecipeError {
            RecipeError(message: "--head \(activation.rawValue) with --loss \(chosenLoss.rawValue): \(why)")
        }
        if regression {
            if activation != .linear {
                throw refuse("--targets asks for a regression (one unbounded number per image); a \(activation.rawValue) head squashes it into (0, 1). Use --head linear (the default)")
            }
            if !regressionLosses.contains(chosenLoss) {
                throw refuse("\(chosenLoss.rawValue) compares class probabilities; a regression needs mse, mae or msle")
            }
            if chosenLoss == .meanSquaredLogError && minimumTarget < 0 {
                throw refuse("msle takes the logarithm of 1 + target, and the targets go down to \(minimumTarget); use mse or mae")
            }
            outputs = 1
        } else {
            switch activation {
            case .linear:
                throw refuse("a linear head outputs unbounded scores, not class probabilities; for \(classes) classes use --head softmax (loss cce) or, for 2 classes, --head sigmoid (loss bce). Regression needs --targets values.csv")
            case .softmax:
                if regressionLosses.contains(chosenLoss) {
                    throw refuse("\(chosenLoss.rawValue) is a regression loss and the folder holds classes; use cce (or kl)")
                }
                if chosenLoss == .binaryCrossEntropy {
                    throw refuse("bce treats every output as its own yes/no probability, but softmax outputs compete and sum to 1; use cce, or --head sigmoid")
                }
                outputs = classes
            case .sigmoid:
                if chosenLoss != .binaryCrossEntropy {
                    throw refuse("a sigmoid head gives independent yes/no probabilities; \(chosenLoss.rawValue) \(regressionLosses.contains(chosenLoss) ? "is a regression loss" : "needs a distribution that sums to 1 (softmax)"); use bce")
                }
                // Two classes need one output (p = second class); more are independent one-vs-rest outputs (multi-label).
                outputs = classes == 2 ? 1 : classes
            }
        }
        self.activation = activation
        self.loss = chosenLoss
        var auto: [String] = []
        if head == nil { auto.append("head \(activation.rawValue)") }
        if loss == nil { auto.append("loss \(chosenLoss.rawValue)") }
        explanation = auto.isEmpty ? "" : "auto: \(auto.joined(separator: ", ")) (\(regression ? "regression targets" : "\(classes) classes"), \(outputs) output\(outputs == 1 ? "" : "s"))"
    }

    /// Targets row for a sample: one-hot (softmax), 0/1 (sigmoid, one output), one-vs-rest, or the value.
    func target(for sample: Sample) -> [Float] {
        if activation == .linear { return [sample.value ?? 0] }
        if outputs == 1 { return [Float(sample.classIndex)] }
        var row = [Float](repeating: 0, count: outputs)
        row[sample.classIndex] = 1
        return row
    }

    /// Predicted class of one row of raw scores.
    func predictedClass(_ scores: ArraySlice<Float>) -> Int {
        if outputs == 1 { return scores.first! > 0 ? 1 : 0 }
        var best = scores.startIndex
        for i in scores.indices where scores[i] > scores[best] { best = i }
        return best - scores.startIndex
    }
}

extension RecipeError {
    public var errorDescription: String? { description }
}
