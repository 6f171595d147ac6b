#!/usr/bin/python3
"""Writes qat_golden.json next to this file: PyTorch 1.13's
torch.nn.intrinsic.qat.ConvBnReLU2d and LinearBn1d (made by from_float with
get_default_qat_qconfig('fbgemm', version=0), whose weight fake quantization
is per-channel symmetric qint8) in training mode: outputs of two forward
calls, the running statistics after them, the gradients of a weighted sum of
the second output, and the output after freeze_bn_stats.

Regenerate with Debian's PyTorch (apt-get install python3-torch):
    /usr/bin/python3 nn/qat/testdata/gen_golden.py
The Go test nn/qat/golden_test.go reads the file; CI needs no Python.
"""
import json
import os

import torch
import torch.nn as nn
import torch.nn.intrinsic as nni
import torch.nn.intrinsic.qat as nniqat
from torch.ao.quantization import get_default_qat_qconfig

OUT = os.path.join(os.path.dirname(__file__), "qat_golden.json")
g = torch.Generator().manual_seed(5)


def f32(t):
    return None if t is None else [float(v) for v in t.detach().reshape(-1).tolist()]


def randomize_bn(bn):
    c = bn.num_features
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(c, generator=g))
        bn.running_var.copy_(torch.rand(c, generator=g) * 2 + 0.2)
        bn.weight.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
        bn.bias.copy_(torch.randn(c, generator=g))


def run(kind):
    if kind == "ConvBnReLU2d":
        layer = nn.Conv2d(3, 4, 3, padding=1)
        bn = nn.BatchNorm2d(4)
        fused = nni.ConvBnReLU2d(layer, bn, nn.ReLU())
        cls = nniqat.ConvBnReLU2d
        xs = [torch.randn(2, 3, 5, 5, generator=g) for _ in range(3)]
    else:
        layer = nn.Linear(6, 4)
        bn = nn.BatchNorm1d(4)
        fused = nni.LinearBn1d(layer, bn)
        cls = nniqat.LinearBn1d
        xs = [torch.randn(5, 6, generator=g) for _ in range(3)]
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * 0.5)
        layer.bias.copy_(torch.randn(layer.bias.shape, generator=g) * 0.1)
    randomize_bn(bn)
    case = {"kind": kind, "weight_shape": list(layer.weight.shape), "weight": f32(layer.weight), "bias": f32(layer.bias),
            "running_mean": f32(bn.running_mean), "running_var": f32(bn.running_var),
            "bn_weight": f32(bn.weight), "bn_bias": f32(bn.bias), "eps": bn.eps, "momentum": bn.momentum}
    fused.qconfig = get_default_qat_qconfig("fbgemm", version=0)
    fused.train()
    q = cls.from_float(fused)
    q.train()
    case["x"] = [f32(x) for x in xs]
    case["x_shape"] = list(xs[0].shape)
    y1 = q(xs[0])
    x2 = xs[1].clone().requires_grad_(True)
    y2 = q(x2)
    up = torch.linspace(-1, 1, y2.numel()).reshape(y2.shape)
    (y2 * up).sum().backward()
    case["y1"], case["y2"] = f32(y1), f32(y2)
    case["upstream"] = f32(up)
    case["grad_x"], case["grad_weight"], case["grad_bias"] = f32(x2.grad), f32(q.weight.grad), f32(q.bias.grad)
    case["grad_bn_weight"], case["grad_bn_bias"] = f32(q.bn.weight.grad), f32(q.bn.bias.grad)
    case["running_mean_after"], case["running_var_after"] = f32(q.bn.running_mean), f32(q.bn.running_var)
    wq = q.weight_fake_quant
    case["weight_scale"] = f32(wq.scale)
    q.freeze_bn_stats()
    with torch.no_grad():
        case["y_frozen"] = f32(q(xs[2]))
    return case


with open(OUT, "w") as f:
    json.dump({"torch": torch.__version__, "cases": [run("ConvBnReLU2d"), run("LinearBn1d")]}, f)
