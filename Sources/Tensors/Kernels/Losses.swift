import Foundation

/// Training losses: each takes the head's raw output `z` [N, K] (logits, or the linear prediction) and targets of the
/// same shape, and returns the mean loss and its gradient with respect to `z`. The output activation (softmax,
/// sigmoid) is fused into the loss, so the gradient is the stable closed form (p - t) and never divides by a
/// probability that underflowed.
public enum Loss: String, CaseIterable, Codable, Sendable {
    /// softmax + categorical cross-entropy: -Σ_k t_k log softmax(z)_k, mean over rows. Targets: rows of probabilities.
    case categoricalCrossEntropy = "cce"
    /// sigmoid + binary cross-entropy per element: -(t log σ(z) + (1 - t) log(1 - σ(z))), mean over all elements.
    case binaryCrossEntropy = "bce"
    /// softmax + Kullback-Leibler divergence KL(t ‖ softmax(z)) = Σ_k t_k (log t_k - log softmax(z)_k), mean over rows.
    case klDivergence = "kl"
    /// identity + mean squared error, mean over all elements.
    case meanSquaredError = "mse"
    /// identity + mean absolute error, mean over all elements.
    case meanAbsoluteError = "mae"
    /// identity + mean squared logarithmic error (log(1 + max(z, 0)) - log(1 + t))², mean over all elements;
    /// like Keras the prediction is clipped at 0 (zero gradient below), so the logarithm always exists.
    case meanSquaredLogError = "msle"

    /// loss, dL/dz for z [N, K] and targets [N, K].
    public func evaluate(_ z: Tensor, targets: Tensor) -> (loss: Float, gradient: Tensor) {
        precondition(z.rank == 2 && z.shape == targets.shape, "loss: output \(z.shape) and targets \(targets.shape) must both be [N, K]")
        switch self {
        case .categoricalCrossEntropy, .klDivergence:
            return SoftmaxCrossEntropy.evaluate(z, targets: targets, subtractTargetEntropy: self == .klDivergence)
        case .binaryCrossEntropy: return Loss.sigmoidBinaryCrossEntropy(z, targets: targets)
        case .meanSquaredError, .meanAbsoluteError, .meanSquaredLogError: return elementwise(z, targets: targets)
        }
    }

    // bce: L = max(z, 0) - z t + log(1 + exp(-|z|)) (= the definition, without overflow); dL/dz = (σ(z) - t) / M
    static func sigmoidBinaryCrossEntropy(_ z: Tensor, targets: Tensor) -> (loss: Float, gradient: Tensor) {
        let m = Float(max(z.count, 1))
        var total = 0.0
        let grad = Tensor(shape: z.shape) { g in
            z.withUnsafeBufferPointer { zb in
                targets.withUnsafeBufferPointer { tb in
                    for i in 0..<zb.count {
                        let x = zb[i], t = tb[i]
                        total += Double(max(x, 0) - x * t + log1p(exp(-abs(x))))
                        g[i] = (logistic(x) - t) / m
                    }
                }
            }
        }
        return (Float(total / Double(m)), grad)
    }

    func elementwise(_ z: Tensor, targets: Tensor) -> (loss: Float, gradient: Tensor) {
        let m = Float(max(z.count, 1))
        var total = 0.0
        let grad = Tensor(shape: z.shape) { g in
            z.withUnsafeBufferPointer { zb in
                targets.withUnsafeBufferPointer { tb in
                    for i in 0..<zb.count {
                        let y = zb[i], t = tb[i]
                        switch self {
                        case .meanSquaredError:
                            total += Double((y - t) * (y - t)); g[i] = 2 * (y - t) / m
                        case .meanAbsoluteError:
                            total += Double(abs(y - t)); g[i] = (y > t ? 1 : y < t ? -1 : 0) / m
                        default:
                            let d = log1p(max(y, 0)) - log1p(max(t, 0))
                            total += Double(d * d); g[i] = y > 0 ? 2 * d / (1 + y) / m : 0
                        }
                    }
                }
            }
        }
        return (Float(total / Double(m)), grad)
    }
}

/// The fused softmax + cross-entropy kernel (also KL divergence, which differs by the constant Σ t log t).
public enum SoftmaxCrossEntropy {
    /// z [N, K], t [N, K] (rows sum to 1) -> mean over rows of -Σ t log softmax(z) (minus Σ t log t for KL), and
    /// dL/dz = (softmax(z) - t · Σ_k t_k) / N, which is (p - t) / N for rows of probabilities.
    public static func evaluate(_ z: Tensor, targets: Tensor, subtractTargetEntropy: Bool = false) -> (loss: Float, gradient: Tensor) {
        let n = z.shape[0], k = z.shape[1]
        var total = 0.0
        let grad = Tensor(shape: z.shape) { g in
            z.withUnsafeBufferPointer { zb in
                targets.withUnsafeBufferPointer { tb in
                    for row in 0..<n {
                        let zr = zb.baseAddress! + row * k, tr = tb.baseAddress! + row * k, gr = g.baseAddress! + row * k
                        var top = -Float.infinity
                        for j in 0..<k { top = max(top, zr[j]) }
                        var sum: Float = 0
                        for j in 0..<k { sum += exp(zr[j] - top) }
                        let logSum = log(sum)
                        var mass: Float = 0, rowLoss = 0.0
                        for j in 0..<k where tr[j] != 0 {
                            mass += tr[j]
                            rowLoss -= Double(tr[j]) * Double((zr[j] - top) - logSum)
                            if subtractTargetEntropy && tr[j] > 0 { rowLoss += Double(tr[j]) * Double(log(tr[j])) }
                        }
                        total += rowLoss
                        for j in 0..<k { gr[j] = (exp((zr[j] - top) - logSum) * mass - tr[j]) / Float(n) }
                    }
                }
            }
        }
        return (Float(total / Double(max(n, 1))), grad)
    }
}
