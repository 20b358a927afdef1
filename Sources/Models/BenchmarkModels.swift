import Foundation
import Network
import Tensors

/// Graphs built in code for timing architectures whose weights are not on this machine: the layer shapes of a
/// published network with random weights (the arithmetic, memory traffic and kernel choices are those of the real
/// one; the outputs mean nothing).
public enum BenchmarkModels {
    /// Names `--model` accepts for them.
    public static let names = ["mobilenetv2-shapes"]

    /// What their random weights assume (torchvision's ImageNet preprocessing), so that `dream bench --dream` can time
    /// a dream step on them; no labels.
    public static func description(named name: String) -> ModelDescription? {
        guard names.contains(name.lowercased()) else { return nil }
        return ModelDescription(architecture: name, input: ModelDescription.Input(name: "input", defaultSize: [224, 224], minSize: nil,
                                                                                 preprocessing: .imagenetRGB),
                                outputs: ["logits": [1, 1000]], labels: nil, deepdreamLayers: nil, featureVector: nil)
    }

    /// The graph for a name in `names`, or nil.
    public static func graph(named name: String) -> Graph? {
        switch name.lowercased() {
        case "mobilenetv2-shapes": return mobileNetV2()
        default: return nil
        }
    }

    /// MobileNetV2 with width 1.0 (Sandler et al., 2018, table 2) for 224x224 inputs: a 3x3 stride-2 stem, 17
    /// inverted-residual blocks (1x1 expansion, depthwise 3x3, linear 1x1 projection; each Conv followed by
    /// BatchNormalization, then Clip(0, 6) except after the projection; a residual Add where stride is 1 and the
    /// channels match), a 1x1 Conv to 1280 channels, global average pooling and a 1000-way Gemm. Random weights
    /// scaled by fan-in (He uniform), so activations stay in range whatever the input size.
    public static func mobileNetV2(seed: UInt64 = 1) -> Graph {
        var nodes: [Node] = []
        var parameters: [String: Value] = ["relu6.min": .float(Tensor(0)), "relu6.max": .float(Tensor(6))]
        var order: [String] = ["relu6.min", "relu6.max"]
        var seed = seed
        func parameter(_ name: String, _ tensor: Tensor) -> String {
            parameters[name] = .float(tensor)
            order.append(name)
            return name
        }
        func random(_ shape: [Int], bound: Float, around centre: Float = 0) -> Tensor {
            seed += 1
            return Tensor.random(shape: shape, in: (centre - bound)...(centre + bound), seed: seed)
        }
        /// Conv (no bias) -> BatchNormalization -> Clip(0, 6) if `relu6`; returns the output's name.
        func convBN(_ name: String, _ input: String, inputChannels: Int, outputChannels: Int, kernel: Int, stride: Int,
                    groups: Int = 1, relu6: Bool) -> String {
            let fanIn = inputChannels / groups * kernel * kernel
            let w = parameter("\(name).weight", random([outputChannels, inputChannels / groups, kernel, kernel],
                                                       bound: (6 / Float(fanIn)).squareRoot()))
            nodes.append(Node(name: name, opType: "Conv", inputs: [input, w], outputs: ["\(name).conv"],
                              attributes: ["kernel_shape": .ints([kernel, kernel]), "strides": .ints([stride, stride]),
                                           "pads": .ints(Array(repeating: kernel / 2, count: 4)), "group": .int(groups)]))
            let bn = ["scale", "bias", "mean", "var"].map { field -> String in
                let values: Tensor
                switch field {
                case "scale", "var": values = random([outputChannels], bound: 0.2, around: 1)
                default: values = random([outputChannels], bound: 0.1)
                }
                return parameter("\(name).bn.\(field)", values)
            }
            nodes.append(Node(name: "\(name).bn", opType: "BatchNormalization", inputs: ["\(name).conv"] + bn,
                              outputs: ["\(name).bn"], attributes: ["epsilon": .float(1e-5)]))
            guard relu6 else { return "\(name).bn" }
            nodes.append(Node(name: "\(name).relu6", opType: "Clip", inputs: ["\(name).bn", "relu6.min", "relu6.max"],
                              outputs: ["\(name).relu6"]))
            return "\(name).relu6"
        }
        var x = convBN("features.0", "input", inputChannels: 3, outputChannels: 32, kernel: 3, stride: 2, relu6: true)
        var channels = 32
        // (expansion t, output channels c, repeats n, first stride s)
        let settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
        var block = 1
        for (t, c, n, s) in settings {
            for i in 0..<n {
                let stride = i == 0 ? s : 1
                let name = "features.\(block)"
                let hidden = channels * t
                var y = x
                if t != 1 {
                    y = convBN("\(name).expand", y, inputChannels: channels, outputChannels: hidden, kernel: 1, stride: 1, relu6: true)
                }
                y = convBN("\(name).depthwise", y, inputChannels: hidden, outputChannels: hidden, kernel: 3, stride: stride,
                           groups: hidden, relu6: true)
                y = convBN("\(name).project", y, inputChannels: hidden, outputChannels: c, kernel: 1, stride: 1, relu6: false)
                if stride == 1 && channels == c {
                    nodes.append(Node(name: "\(name).add", opType: "Add", inputs: [x, y], outputs: ["\(name).add"]))
                    y = "\(name).add"
                }
                x = y
                channels = c
                block += 1
            }
        }
        x = convBN("features.\(block)", x, inputChannels: channels, outputChannels: 1280, kernel: 1, stride: 1, relu6: true)
        nodes.append(Node(name: "pool", opType: "GlobalAveragePool", inputs: [x], outputs: ["pool"]))
        nodes.append(Node(name: "flatten", opType: "Flatten", inputs: ["pool"], outputs: ["flatten"]))
        let fcW = parameter("classifier.weight", random([1000, 1280], bound: (6 / Float(1280)).squareRoot()))
        let fcB = parameter("classifier.bias", random([1000], bound: 0.01))
        nodes.append(Node(name: "classifier", opType: "Gemm", inputs: ["flatten", fcW, fcB], outputs: ["logits"],
                          attributes: ["transB": .int(1)]))
        return Graph(name: "mobilenetv2-shapes", nodes: nodes, initializers: parameters, initializerOrder: order,
                     inputs: [ValueInfo(name: "input", shape: [1, 3, nil, nil])], outputs: [ValueInfo(name: "logits")],
                     opsetVersion: 13)
    }
}
