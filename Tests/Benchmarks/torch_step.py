#!/usr/bin/env python3
"""Times one DeepDream step in PyTorch on an ONNX graph: roll the image by a random jitter, forward to --layer,
objective mean(activation²), backward to the image, step normalised by the mean absolute gradient (the classic
recipe, the work `dream bench --dream` times). Prints {"dream_step_ms_median": …} as JSON.

Needs torch and onnx (Debian: python3-torch, python3-onnx; run with /usr/bin/python3). The graph is executed by a
small interpreter over torch.nn.functional covering the operators of GoogLeNet, SqueezeNet, MobileNetV2/V3-,
EfficientNet-, ResNet-, DenseNet-style and ShuffleNetV2 graphs (its shape arithmetic included, Slice with step 1
only); an operator outside that set stops with its name. Used by compare.py; not part of the test suite.
"""
import argparse
import json
import statistics
import time

import onnx
import onnx.numpy_helper
import torch
import torch.nn.functional as F


def attributes(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def pads2d(a):
    p = list(a.get("pads", [0, 0, 0, 0]))
    return p[0], p[1], p[2], p[3]  # top, left, bottom, right


class Interpreter:
    def __init__(self, path, target):
        model = onnx.load(path)
        self.graph = model.graph
        self.weights = {t.name: torch.from_numpy(onnx.numpy_helper.to_array(t).copy()) for t in self.graph.initializer}
        producer = {o: i for i, n in enumerate(self.graph.node) for o in n.output}
        if target not in producer:  # a node's name stands for its first output, as in dream
            target = next((n.output[0] for n in self.graph.node if n.name == target), target)
        needed, stack = set(), [target]
        while stack:
            name = stack.pop()
            if name in self.weights or name not in producer:
                continue
            i = producer[name]
            if i not in needed:
                needed.add(i)
                stack.extend(x for x in self.graph.node[i].input if x)
        if target not in producer:
            raise SystemExit(f"torch_step.py: no value or node named {target}")
        self.nodes = [self.graph.node[i] for i in sorted(needed)]
        self.target = target
        self.input = self.graph.input[0].name

    def run(self, x):
        values = {self.input: x}
        get = lambda n: values[n] if n in values else self.weights[n]
        for node in self.nodes:
            a, op, ins = attributes(node), node.op_type, [i for i in node.input]
            if op == "Conv":
                t, l, b, r = pads2d(a)
                xin = get(ins[0])
                if (t, l) != (b, r):
                    xin, t, l = F.pad(xin, (l, r, t, b)), 0, 0
                y = F.conv2d(xin, get(ins[1]), get(ins[2]) if len(ins) > 2 and ins[2] else None,
                             stride=tuple(a.get("strides", [1, 1])), padding=(t, l),
                             dilation=tuple(a.get("dilations", [1, 1])), groups=a.get("group", 1))
            elif op == "Relu":
                y = F.relu(get(ins[0]))
            elif op == "Clip":
                lo = get(ins[1]).item() if len(ins) > 1 and ins[1] else a.get("min", float("-inf"))
                hi = get(ins[2]).item() if len(ins) > 2 and ins[2] else a.get("max", float("inf"))
                y = torch.clamp(get(ins[0]), lo, hi)
            elif op in ("MaxPool", "AveragePool"):
                t, l, b, r = pads2d(a)
                xin = get(ins[0])
                k, s = tuple(a["kernel_shape"]), tuple(a.get("strides", [1, 1]))
                ceil = bool(a.get("ceil_mode", 0))
                if op == "MaxPool":
                    if (t, l) != (b, r):
                        xin, t, l = F.pad(xin, (l, r, t, b), value=float("-inf")), 0, 0
                    y = F.max_pool2d(xin, k, s, (t, l), ceil_mode=ceil)
                else:
                    y = F.avg_pool2d(xin, k, s, (t, l), ceil_mode=ceil, count_include_pad=bool(a.get("count_include_pad", 0)))
            elif op == "GlobalAveragePool":
                y = get(ins[0]).mean(dim=(2, 3), keepdim=True)
            elif op == "LRN":
                y = F.local_response_norm(get(ins[0]), a["size"], a.get("alpha", 1e-4), a.get("beta", 0.75), a.get("bias", 1.0))
            elif op == "Concat":
                y = torch.cat([get(i) for i in ins], dim=a["axis"])
            elif op == "Add":
                y = get(ins[0]) + get(ins[1])
            elif op == "Sigmoid":
                y = torch.sigmoid(get(ins[0]))
            elif op == "HardSigmoid":
                y = torch.clamp(a.get("alpha", 0.2) * get(ins[0]) + a.get("beta", 0.5), 0, 1)
            elif op == "Pad":
                pads = [int(v) for v in (get(ins[1]) if len(ins) > 1 and ins[1] else a["pads"])]
                value = get(ins[2]).item() if len(ins) > 2 and ins[2] else a.get("value", 0.0)
                if a.get("mode", b"constant") not in (b"constant", "constant") or len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)):
                    raise SystemExit(f"torch_step.py: only constant Pads of H and W are supported (node {node.name})")
                y = F.pad(get(ins[0]), (pads[3], pads[7], pads[2], pads[6]), value=value)
            elif op == "BatchNormalization":
                y = F.batch_norm(get(ins[0]), get(ins[3]), get(ins[4]), get(ins[1]), get(ins[2]), False, 0.0, a.get("epsilon", 1e-5))
            elif op == "Dropout":
                y = get(ins[0])
            elif op == "Flatten":
                y = torch.flatten(get(ins[0]), a.get("axis", 1))
            elif op == "Reshape":
                y = get(ins[0]).reshape([int(v) for v in get(ins[1])])
            elif op == "Gemm":
                w = get(ins[1])
                y = get(ins[0]) @ (w.t() if a.get("transB", 0) else w)
                if len(ins) > 2 and ins[2]:
                    y = y + get(ins[2])
            elif op == "Softmax":
                y = F.softmax(get(ins[0]), dim=a.get("axis", -1))
            # Shape arithmetic as PyTorch exports it with dynamic sizes (ShuffleNet's shuffle and chunk), on int64
            # tensors as torch itself traces it.
            elif op == "Constant":
                y = torch.from_numpy(onnx.numpy_helper.to_array(a["value"]).copy())
            elif op == "Shape":
                y = torch.tensor(get(ins[0]).shape, dtype=torch.int64)
            elif op == "Gather":
                data, index, axis = get(ins[0]), get(ins[1]), a.get("axis", 0) % get(ins[0]).dim()
                y = torch.index_select(data, axis, index.reshape(-1) % data.shape[axis]).reshape(
                    data.shape[:axis] + index.shape + data.shape[axis + 1:])
            elif op == "Unsqueeze":
                y = get(ins[0])
                for axis in sorted(int(v) for v in get(ins[1])):
                    y = y.unsqueeze(axis)
            elif op == "Cast":
                y = get(ins[0]).to(torch.int64 if a["to"] == 7 else torch.float32)
            elif op in ("Div", "Mul", "Sub"):
                l, r = get(ins[0]), get(ins[1])
                y = (torch.div(l, r, rounding_mode="trunc") if not l.is_floating_point() else l / r) if op == "Div" else l * r if op == "Mul" else l - r
            elif op == "Slice":
                y = get(ins[0])
                starts, ends = get(ins[1]).tolist(), get(ins[2]).tolist()
                axes = get(ins[3]).tolist() if len(ins) > 3 and ins[3] else list(range(len(starts)))
                steps = get(ins[4]).tolist() if len(ins) > 4 and ins[4] else [1] * len(starts)
                for start, end, axis, step in zip(starts, ends, axes, steps):
                    if step != 1:
                        raise SystemExit(f"torch_step.py: Slice step {step} (node {node.name}) is not supported here")
                    size = y.shape[axis]
                    b, e = (min(max(v + size if v < 0 else v, 0), size) for v in (start, end))
                    y = y.narrow(axis, b, max(0, e - b))
            elif op == "Transpose":
                y = get(ins[0]).permute(*a["perm"])
            elif op == "ReduceMean":
                y = get(ins[0]).mean(dim=tuple(a["axes"]), keepdim=bool(a.get("keepdims", 1)))
            else:
                raise SystemExit(f"torch_step.py: operator {op} (node {node.name}) is not supported here")
            values[node.output[0]] = y
        return values[self.target]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    parser.add_argument("--layer", required=True)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--jitter", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    net = Interpreter(args.model, args.layer)
    generator = torch.Generator().manual_seed(1)
    image = torch.rand((1, 3, args.size, args.size), generator=generator) * 255 - 128

    def step():
        sy, sx = (int(v) for v in torch.randint(-args.jitter, args.jitter + 1, (2,), generator=generator))
        x = torch.roll(image, (sy, sx), dims=(2, 3)).requires_grad_(True)
        activation = net.run(x)
        activation.pow(2).mean().backward()
        with torch.no_grad():
            g = torch.roll(x.grad, (-sy, -sx), dims=(2, 3))
            image.add_(g * (1.5 / (g.abs().mean() + 1e-8)))
            image.clamp_(-128, 128)

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1000)
    print(json.dumps({"dream_step_ms_median": statistics.median(times), "dream_step_ms_min": min(times),
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
