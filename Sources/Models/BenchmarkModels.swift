import Foundation
import Network
import Tensors

/// Graphs built in code for timing architectures whose weights are not on this machine: the layer shapes of a
/// published network with random weights (the arithmetic, memory traffic and kernel choices are those of the real
/// one; the outputs mean nothing).
public enum BenchmarkModels {
    /// Names `--model` accepts for them.
    public static let names = ["mobilenetv2-shapes", "resnet18-shapes"]

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
        case "resnet18-shapes": return resNet18()
        default: return nil
        }
    }

    /// MobileNetV2 with width 1.0 (Sandler et al., 2018, table 2) for 224x224 inputs: a 3x3 stride-2 stem, 17
    /// inverted-residual blocks (1x1 expansion, depthwise 3x3, linear 1x1 projection; each Conv followed by
    /// BatchNormalization, then Clip(0, 6) except after the projection; a residual Add where stride is 1 and the
    /// channels match), a 1x1 Conv to 1280 channels, global average pooling and a 1000-way Gemm. Random weights
    /// scaled by fan-in (He uniform), so activations stay in range whatever the input size.
    public static func mobileNetV2(seed: UInt64 = 1) -> Graph {
        var b = Builder(seed: seed)
        _ = b.parameter("relu6.min", Tensor(0))
        _ = b.parameter("relu6.max", Tensor(6))
        var x = b.convBN("features.0", "input", inputChannels: 3, outputChannels: 32, kernel: 3, stride: 2, activation: .relu6)
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
                    y = b.convBN("\(name).expand", y, inputChannels: channels, outputChannels: hidden, kernel: 1, stride: 1,
                                 activation: .relu6)
                }
                y = b.convBN("\(name).depthwise", y, inputChannels: hidden, outputChannels: hidden, kernel: 3, stride: stride,
                             groups: hidden, activation: .relu6)
                y = b.convBN("\(name).project", y, inputChannels: hidden, outputChannels: c, kernel: 1, stride: 1, activation: nil)
                if stride == 1 && channels == c { y = b.node("\(name).add", "Add", [x, y]) }
                x = y
                channels = c
                block += 1
            }
        }
        x = b.convBN("features.\(block)", x, inputChannels: channels, outputChannels: 1280, kernel: 1, stride: 1, activation: .relu6)
        return b.classifier(x, channels: 1280, name: "mobilenetv2-shapes")
    }

    /// ResNet-18 (He et al., 2016, table 1) for 224x224 inputs: a 7x7 stride-2 stem (Conv, BatchNormalization, Relu),
    /// 3x3 stride-2 max pooling, four stages of two basic blocks (3x3 Conv-BN-Relu, 3x3 Conv-BN, residual Add, Relu;
    /// 64, 128, 256, 512 channels, the first block of each later stage with stride 2 and a 1x1 stride-2 Conv-BN on
    /// its shortcut), global average pooling and a 1000-way Gemm: plain 3x3 convolutions on maps from 56² down to
    /// 7², what VGG- and ResNet-style networks spend their time on.
    public static func resNet18(seed: UInt64 = 1) -> Graph {
        var b = Builder(seed: seed)
        var x = b.convBN("conv1", "input", inputChannels: 3, outputChannels: 64, kernel: 7, stride: 2, activation: .relu)
        x = b.node("maxpool", "MaxPool", [x], ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])])
        var channels = 64
        for (stage, width) in [64, 128, 256, 512].enumerated() {
            for block in 0..<2 {
                let name = "layer\(stage + 1).\(block)", stride = stage > 0 && block == 0 ? 2 : 1
                var y = b.convBN("\(name).conv1", x, inputChannels: channels, outputChannels: width, kernel: 3, stride: stride,
                                 activation: .relu)
                y = b.convBN("\(name).conv2", y, inputChannels: width, outputChannels: width, kernel: 3, stride: 1, activation: nil)
                let shortcut = stride == 1 && channels == width ? x
                    : b.convBN("\(name).downsample", x, inputChannels: channels, outputChannels: width, kernel: 1, stride: stride,
                               activation: nil)
                x = b.node("\(name).relu", "Relu", [b.node("\(name).add", "Add", [y, shortcut])])
                channels = width
            }
        }
        return b.classifier(x, channels: 512, name: "resnet18-shapes")
    }

    /// Builds a graph node by node with random weights (He uniform, scaled by fan-in).
    struct Builder {
        var nodes: [Node] = []
        var parameters: [String: Value] = [:]
        var order: [String] = []
        var seed: UInt64

        init(seed: UInt64) { self.seed = seed }

        enum Activation { case relu, relu6 }

        mutating func parameter(_ name: String, _ tensor: Tensor) -> String {
            parameters[name] = .float(tensor)
            order.append(name)
            return name
        }

        mutating func random(_ shape: [Int], bound: Float, around centre: Float = 0) -> Tensor {
            seed += 1
            return Tensor.random(shape: shape, in: (centre - bound)...(centre + bound), seed: seed)
        }

        /// A node with one output named after it; returns that name.
        mutating func node(_ name: String, _ op: String, _ inputs: [String], _ attributes: [String: AttributeValue] = [:]) -> String {
            nodes.append(Node(name: name, opType: op, inputs: inputs, outputs: [name], attributes: attributes))
            return name
        }

        /// Conv (no bias, padding kernel/2) -> BatchNormalization -> the activation if any; returns the output's name.
        mutating func convBN(_ name: String, _ input: String, inputChannels: Int, outputChannels: Int, kernel: Int, stride: Int,
                             groups: Int = 1, activation: Activation?) -> String {
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
            let normalised = node("\(name).bn", "BatchNormalization", ["\(name).conv"] + bn, ["epsilon": .float(1e-5)])
            switch activation {
            case nil: return normalised
            case .relu: return node("\(name).relu", "Relu", [normalised])
            case .relu6:
                if parameters["relu6.min"] == nil {
                    _ = parameter("relu6.min", Tensor(0))
                    _ = parameter("relu6.max", Tensor(6))
                }
                return node("\(name).relu6", "Clip", [normalised, "relu6.min", "relu6.max"])
            }
        }

        /// Global average pooling, Flatten and a 1000-way Gemm "classifier" to "logits"; the finished graph.
        mutating func classifier(_ x: String, channels: Int, name: String) -> Graph {
            let pooled = node("flatten", "Flatten", [node("pool", "GlobalAveragePool", [x])])
            let fcW = parameter("classifier.weight", random([1000, channels], bound: (6 / Float(channels)).squareRoot()))
            let fcB = parameter("classifier.bias", random([1000], bound: 0.01))
            nodes.append(Node(name: "classifier", opType: "Gemm", inputs: [pooled, fcW, fcB], outputs: ["logits"],
                              attributes: ["transB": .int(1)]))
            return Graph(name: name, nodes: nodes, initializers: parameters, initializerOrder: order,
                         inputs: [ValueInfo(name: "input", shape: [1, 3, nil, nil])], outputs: [ValueInfo(name: "logits")],
                         opsetVersion: 13)
        }
    }
}
