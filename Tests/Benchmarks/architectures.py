"""Random-weight ONNX graphs with the layer shapes of well-known CNNs, for timing engines side by side (the
outputs mean nothing). Optional tooling: needs PyTorch and onnx (Debian: python3-torch, python3-onnx).

    /usr/bin/python3 Tests/Benchmarks/architectures.py OUT_DIR [name ...]
    python3 Tests/Benchmarks/compare.py --models OUT_DIR/efficientnetb0.onnx OUT_DIR/densenet121.onnx --sizes 224 512

Names: resnet50, vgg16, densenet121, efficientnetb0, shufflenetv2, alexnet, mobilenetv3, inceptionv3ish, resnext50,
regnety800mf (all of them by default). Each is written from the published architecture (block structure, widths, kernel sizes and
strides), exported at opset 13 as torch 1.13 exports it (SiLU as Sigmoid → Mul, HardSwish as HardSigmoid → Mul,
padded average pools as Pad → AveragePool), with BatchNormalization folded into the convolutions by the exporter
where it follows one. inceptionv3ish is Inception-v3's stem, three Inception-A, the grid reduction and three
Inception-C blocks (the 1x7/7x1 factorised convolutions), at 299 px. vgg16 and alexnet have fixed input sizes
(224); the others accept any size (dynamic height and width). shufflenetv2's channel shuffle and split then export
as Reshape → Transpose → Reshape and Slice with their shapes computed at run time (Shape, Gather, Cast, Unsqueeze,
Concat, integer Div/Mul: ~700 small nodes), which dream folds once per input size.
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

if len(sys.argv) < 2:
    sys.exit(__doc__)
out_dir = sys.argv[1]
os.makedirs(out_dir, exist_ok=True)
torch.manual_seed(0)
def bn(c): return nn.BatchNorm2d(c)
def cbr(cin, cout, k, s=1, p=None, g=1, act=nn.ReLU):
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k//2 if p is None else p, groups=g, bias=False), bn(cout), act())

class Bottleneck(nn.Module):
    def __init__(s, cin, mid, stride):
        super().__init__()
        cout = mid*4
        s.a = cbr(cin, mid, 1); s.b = cbr(mid, mid, 3, stride); s.c = nn.Sequential(nn.Conv2d(mid, cout, 1, bias=False), bn(cout))
        s.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), bn(cout)) if stride != 1 or cin != cout else None
    def forward(s, x): return F.relu(s.c(s.b(s.a(x))) + (x if s.down is None else s.down(x)))
class ResNet50(nn.Module):
    def __init__(s):
        super().__init__()
        s.stem = nn.Sequential(cbr(3, 64, 7, 2, 3), nn.MaxPool2d(3, 2, 1))
        L = []; cin = 64
        for mid, n, st in [(64,3,1),(128,4,2),(256,6,2),(512,3,2)]:
            for i in range(n): L.append(Bottleneck(cin, mid, st if i == 0 else 1)); cin = mid*4
        s.layers = nn.Sequential(*L); s.fc = nn.Linear(2048, 1000)
    def forward(s, x): return s.fc(torch.flatten(F.adaptive_avg_pool2d(s.layers(s.stem(x)), 1), 1))

class ResNeXtBlock(nn.Module):
    def __init__(s, cin, width, cout, stride, groups):
        super().__init__()
        s.a = cbr(cin, width, 1); s.b = cbr(width, width, 3, stride, g=groups); s.c = nn.Sequential(nn.Conv2d(width, cout, 1, bias=False), bn(cout))
        s.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), bn(cout)) if stride != 1 or cin != cout else None
    def forward(s, x): return F.relu(s.c(s.b(s.a(x))) + (x if s.down is None else s.down(x)))
class ResNeXt50(nn.Module):
    """ResNeXt-50 32x4d: ResNet-50's bottlenecks with a grouped 3x3 (32 groups, width 4 per group in the first stage)."""
    def __init__(s):
        super().__init__()
        s.stem = nn.Sequential(cbr(3, 64, 7, 2, 3), nn.MaxPool2d(3, 2, 1))
        L = []; cin = 64
        for mid, n, st in [(64,3,1),(128,4,2),(256,6,2),(512,3,2)]:
            for i in range(n): L.append(ResNeXtBlock(cin, mid*2, mid*4, st if i == 0 else 1, 32)); cin = mid*4
        s.layers = nn.Sequential(*L); s.fc = nn.Linear(2048, 1000)
    def forward(s, x): return s.fc(torch.flatten(F.adaptive_avg_pool2d(s.layers(s.stem(x)), 1), 1))
class RegNetYBlock(nn.Module):
    def __init__(s, cin, cout, stride, group_width):
        super().__init__()
        s.a = cbr(cin, cout, 1); s.b = cbr(cout, cout, 3, stride, g=cout//group_width)
        s.se = SE(cout, cin//4, act=nn.ReLU); s.c = nn.Sequential(nn.Conv2d(cout, cout, 1, bias=False), bn(cout))
        s.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), bn(cout)) if stride != 1 or cin != cout else None
    def forward(s, x): return F.relu(s.c(s.se(s.b(s.a(x)))) + (x if s.down is None else s.down(x)))
class RegNetY800MF(nn.Module):
    """RegNetY-800MF: depths 1/3/8/2, widths 64/144/320/784, group width 16, squeeze-excitation ratio 1/4 of the block input."""
    def __init__(s):
        super().__init__()
        L = [cbr(3, 32, 3, 2)]; c = 32
        for w, n in [(64,1),(144,3),(320,8),(784,2)]:
            for i in range(n): L.append(RegNetYBlock(c, w, 2 if i == 0 else 1, 16)); c = w
        s.features = nn.Sequential(*L); s.fc = nn.Linear(c, 1000)
    def forward(s, x): return s.fc(torch.flatten(F.adaptive_avg_pool2d(s.features(x), 1), 1))

class VGG16(nn.Module):
    def __init__(s):
        super().__init__()
        L = []; cin = 3
        for v in [64,64,'M',128,128,'M',256,256,256,'M',512,512,512,'M',512,512,512,'M']:
            if v == 'M': L.append(nn.MaxPool2d(2, 2))
            else: L += [nn.Conv2d(cin, v, 3, 1, 1), nn.ReLU()]; cin = v
        s.features = nn.Sequential(*L)
        s.fc = nn.Sequential(nn.Linear(512*7*7, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 1000))
    def forward(s, x): return s.fc(torch.flatten(F.adaptive_avg_pool2d(s.features(x), 7), 1))

class DenseLayer(nn.Module):
    def __init__(s, cin, growth=32):
        super().__init__()
        s.b1 = bn(cin); s.c1 = nn.Conv2d(cin, 4*growth, 1, bias=False); s.b2 = bn(4*growth); s.c2 = nn.Conv2d(4*growth, growth, 3, 1, 1, bias=False)
    def forward(s, x): return torch.cat([x, s.c2(F.relu(s.b2(s.c1(F.relu(s.b1(x))))))], 1)
class DenseNet121(nn.Module):
    def __init__(s):
        super().__init__()
        L = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), bn(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]; c = 64
        for i, n in enumerate([6, 12, 24, 16]):
            for _ in range(n): L.append(DenseLayer(c)); c += 32
            if i < 3: L += [bn(c), nn.ReLU(), nn.Conv2d(c, c//2, 1, bias=False), nn.AvgPool2d(2, 2)]; c //= 2
        L += [bn(c), nn.ReLU()]
        s.features = nn.Sequential(*L); s.fc = nn.Linear(c, 1000)
    def forward(s, x): return s.fc(torch.flatten(F.adaptive_avg_pool2d(s.features(x), 1), 1))

class SE(nn.Module):
    def __init__(s, c, r, act=nn.SiLU, gate=nn.Sigmoid):
        super().__init__(); s.a = nn.Conv2d(c, r, 1); s.b = nn.Conv2d(r, c, 1); s.act = act(); s.gate = gate()
    def forward(s, x): return x * s.gate(s.b(s.act(s.a(F.adaptive_avg_pool2d(x, 1)))))
class MBConv(nn.Module):
    def __init__(s, cin, cout, k, stride, expand):
        super().__init__()
        mid = cin*expand
        s.expand = cbr(cin, mid, 1, act=nn.SiLU) if expand != 1 else nn.Identity()
        s.dw = cbr(mid, mid, k, stride, g=mid, act=nn.SiLU); s.se = SE(mid, max(1, cin//4))
        s.proj = nn.Sequential(nn.Conv2d(mid, cout, 1, bias=False), bn(cout)); s.res = stride == 1 and cin == cout
    def forward(s, x):
        y = s.proj(s.se(s.dw(s.expand(x)))); return x + y if s.res else y
class EfficientNetB0(nn.Module):
    def __init__(s):
        super().__init__()
        L = [cbr(3, 32, 3, 2, act=nn.SiLU)]; c = 32
        for e, k, st, co, n in [(1,3,1,16,1),(6,3,2,24,2),(6,5,2,40,2),(6,3,2,80,3),(6,5,1,112,3),(6,5,2,192,4),(6,3,1,320,1)]:
            for i in range(n): L.append(MBConv(c, co, k, st if i == 0 else 1, e)); c = co
        L.append(cbr(c, 1280, 1, act=nn.SiLU)); s.features = nn.Sequential(*L); s.fc = nn.Linear(1280, 1000)
    def forward(s, x): return s.fc(torch.flatten(F.adaptive_avg_pool2d(s.features(x), 1), 1))

def shuffle(x, g=2):
    n, c, h, w = x.shape
    return x.view(n, g, c//g, h, w).transpose(1, 2).reshape(n, c, h, w)
class ShuffleUnit(nn.Module):
    def __init__(s, cin, cout, stride):
        super().__init__()
        s.stride = stride; b = cout//2
        if stride > 1:
            s.left = nn.Sequential(nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), bn(cin), cbr(cin, b, 1))
            rin = cin
        else: rin = b
        s.right = nn.Sequential(cbr(rin, b, 1), nn.Conv2d(b, b, 3, stride, 1, groups=b, bias=False), bn(b), cbr(b, b, 1))
    def forward(s, x):
        if s.stride == 1:
            a, b = x.chunk(2, 1); out = torch.cat([a, s.right(b)], 1)
        else: out = torch.cat([s.left(x), s.right(x)], 1)
        return shuffle(out)
class ShuffleNetV2(nn.Module):
    def __init__(s):
        super().__init__()
        L = [cbr(3, 24, 3, 2), nn.MaxPool2d(3, 2, 1)]; c = 24
        for co, n in [(116, 4), (232, 8), (464, 4)]:
            for i in range(n): L.append(ShuffleUnit(c, co, 2 if i == 0 else 1)); c = co
        L.append(cbr(c, 1024, 1)); s.features = nn.Sequential(*L); s.fc = nn.Linear(1024, 1000)
    def forward(s, x): return s.fc(s.features(x).mean([2, 3]))

class AlexNet(nn.Module):
    def __init__(s):
        super().__init__()
        s.f = nn.Sequential(nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Conv2d(64, 192, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
                            nn.Conv2d(192, 384, 3, 1, 1), nn.ReLU(), nn.Conv2d(384, 256, 3, 1, 1), nn.ReLU(), nn.Conv2d(256, 256, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(3, 2))
        s.fc = nn.Sequential(nn.Linear(256*6*6, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 1000))
    def forward(s, x): return s.fc(torch.flatten(F.adaptive_avg_pool2d(s.f(x), 6), 1))

class MBV3Block(nn.Module):
    def __init__(s, cin, mid, cout, k, stride, se, hs):
        super().__init__()
        act = nn.Hardswish if hs else nn.ReLU
        s.e = cbr(cin, mid, 1, act=act) if mid != cin else nn.Identity()
        s.dw = cbr(mid, mid, k, stride, g=mid, act=act)
        s.se = SE(mid, (mid//4 + 7)//8*8, act=nn.ReLU, gate=nn.Hardsigmoid) if se else nn.Identity()
        s.p = nn.Sequential(nn.Conv2d(mid, cout, 1, bias=False), bn(cout)); s.res = stride == 1 and cin == cout
    def forward(s, x):
        y = s.p(s.se(s.dw(s.e(x)))); return x + y if s.res else y
class MobileNetV3Large(nn.Module):
    def __init__(s):
        super().__init__()
        cfg = [(3,16,16,False,False,1),(3,64,24,False,False,2),(3,72,24,False,False,1),(5,72,40,True,False,2),(5,120,40,True,False,1),(5,120,40,True,False,1),
               (3,240,80,False,True,2),(3,200,80,False,True,1),(3,184,80,False,True,1),(3,184,80,False,True,1),(3,480,112,True,True,1),(3,672,112,True,True,1),
               (5,672,160,True,True,2),(5,960,160,True,True,1),(5,960,160,True,True,1)]
        L = [cbr(3, 16, 3, 2, act=nn.Hardswish)]; c = 16
        for k, mid, co, se, hs, st in cfg: L.append(MBV3Block(c, mid, co, k, st, se, hs)); c = co
        L.append(cbr(c, 960, 1, act=nn.Hardswish)); s.features = nn.Sequential(*L)
        s.fc = nn.Sequential(nn.Linear(960, 1280), nn.Hardswish(), nn.Linear(1280, 1000))
    def forward(s, x): return s.fc(torch.flatten(F.adaptive_avg_pool2d(s.features(x), 1), 1))

class InceptionA(nn.Module):
    def __init__(s, cin, pool):
        super().__init__()
        s.b1 = cbr(cin, 64, 1); s.b5 = nn.Sequential(cbr(cin, 48, 1), cbr(48, 64, 5))
        s.b3 = nn.Sequential(cbr(cin, 64, 1), cbr(64, 96, 3), cbr(96, 96, 3)); s.bp = cbr(cin, pool, 1)
    def forward(s, x): return torch.cat([s.b1(x), s.b5(x), s.b3(x), s.bp(F.avg_pool2d(x, 3, 1, 1))], 1)
class InceptionC(nn.Module):
    def __init__(s, cin, c7):
        super().__init__()
        s.b1 = cbr(cin, 192, 1)
        s.b7 = nn.Sequential(cbr(cin, c7, 1), cbr(c7, c7, (1, 7), p=(0, 3)), cbr(c7, 192, (7, 1), p=(3, 0)))
        s.bd = nn.Sequential(cbr(cin, c7, 1), cbr(c7, c7, (7, 1), p=(3, 0)), cbr(c7, c7, (1, 7), p=(0, 3)), cbr(c7, c7, (7, 1), p=(3, 0)), cbr(c7, 192, (1, 7), p=(0, 3)))
        s.bp = cbr(cin, 192, 1)
    def forward(s, x): return torch.cat([s.b1(x), s.b7(x), s.bd(x), s.bp(F.avg_pool2d(x, 3, 1, 1))], 1)
class InceptionV3ish(nn.Module):
    def __init__(s):
        super().__init__()
        s.stem = nn.Sequential(cbr(3, 32, 3, 2, 0), cbr(32, 32, 3, 1, 0), cbr(32, 64, 3), nn.MaxPool2d(3, 2), cbr(64, 80, 1), cbr(80, 192, 3, 1, 0), nn.MaxPool2d(3, 2))
        s.a = nn.Sequential(InceptionA(192, 32), InceptionA(256, 64), InceptionA(288, 64))
        s.red = cbr(288, 768, 3, 2, 0)
        s.c = nn.Sequential(InceptionC(768, 128), InceptionC(768, 160), InceptionC(768, 192))
        s.fc = nn.Linear(768, 1000)
    def forward(s, x): return s.fc(torch.flatten(F.adaptive_avg_pool2d(s.c(s.red(s.a(s.stem(x)))), 1), 1))

models = dict(resnet50=ResNet50, vgg16=VGG16, densenet121=DenseNet121, efficientnetb0=EfficientNetB0, shufflenetv2=ShuffleNetV2,
              alexnet=AlexNet, mobilenetv3=MobileNetV3Large, inceptionv3ish=InceptionV3ish, resnext50=ResNeXt50, regnety800mf=RegNetY800MF)
for name in sys.argv[2:] or models:
    m = models[name]().eval()
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1); mod.running_var.uniform_(0.5, 1.5); mod.weight.data.uniform_(0.5, 1.5); mod.bias.data.uniform_(-0.1, 0.1)
    size = 299 if name.startswith("inception") else 224
    torch.onnx.export(m, torch.randn(1, 3, size, size), os.path.join(out_dir, f"{name}.onnx"), opset_version=13, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {2: "h", 3: "w"}} if name not in ("vgg16", "alexnet") else None)
    print("wrote", os.path.join(out_dir, f"{name}.onnx"))
