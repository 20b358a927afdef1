"""Independent Grad-CAM with onnxruntime, for AttributionCrossCheckTests.

usage: gradcam_onnxruntime.py MODEL.onnx INPUT.npy LAYER SCORES CLASS OUT.npy

Runs the model with onnxruntime up to LAYER (A) and SCORES, then the rest of the graph from LAYER alone, and takes
the Grad-CAM channel weights w_k = mean over positions of d score / d A_k as central differences (adding eps to
all of channel k moves the score by eps * H * W * w_k). The map ReLU(sum_k w_k A_k) is upsampled bilinearly
(pixel centres, edges clamped) to the input's size and written as float32 [H, W]. No code is shared with dream.
"""
import sys

import numpy as np
import onnx
import onnx.utils
import onnxruntime as ort


def bilinear(m, out_h, out_w):
    h, w = m.shape
    ys = np.clip((np.arange(out_h) + 0.5) * h / out_h - 0.5, 0, h - 1)
    xs = np.clip((np.arange(out_w) + 0.5) * w / out_w - 0.5, 0, w - 1)
    y0 = np.floor(ys).astype(int); x0 = np.floor(xs).astype(int)
    y1 = np.minimum(y0 + 1, h - 1); x1 = np.minimum(x0 + 1, w - 1)
    fy = (ys - y0)[:, None]; fx = (xs - x0)[None, :]
    top = m[y0][:, x0] * (1 - fx) + m[y0][:, x1] * fx
    bottom = m[y1][:, x0] * (1 - fx) + m[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def main():
    model_path, input_path, layer, scores, klass, out_path = sys.argv[1:7]
    klass = int(klass)
    x = np.load(input_path).astype(np.float32)
    model = onnx.load(model_path)
    input_name = model.graph.input[0].name
    extractor = onnx.utils.Extractor(model)
    head = extractor.extract_model([input_name], [layer, scores])
    tail = extractor.extract_model([layer], [scores])
    options = ort.SessionOptions()
    a, _ = ort.InferenceSession(head.SerializeToString(), options, providers=["CPUExecutionProvider"]).run([layer, scores], {input_name: x})
    tail_session = ort.InferenceSession(tail.SerializeToString(), options, providers=["CPUExecutionProvider"])
    _, channels, h, w = a.shape
    eps = 1e-2 * float(np.abs(a).max() + 1e-6)
    weights = np.zeros(channels, dtype=np.float64)
    for k in range(channels):
        plus = a.copy(); plus[0, k] += eps
        minus = a.copy(); minus[0, k] -= eps
        sp = tail_session.run([scores], {layer: plus})[0].reshape(-1)[klass]
        sm = tail_session.run([scores], {layer: minus})[0].reshape(-1)[klass]
        weights[k] = (float(sp) - float(sm)) / (2 * eps) / (h * w)
    cam = np.maximum(np.tensordot(weights, a[0].astype(np.float64), axes=1), 0)
    np.save(out_path, np.ascontiguousarray(bilinear(cam, x.shape[2], x.shape[3]), dtype=np.float32))


if __name__ == "__main__":
    main()
