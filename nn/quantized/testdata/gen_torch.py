"""Writes torch_golden.json: PyTorch 1.13 (engine qnnpack) outputs of
quantized Linear, LinearReLU, Conv2d and ConvReLU2d for given int8 weights,
float biases and qparams, as codes.

Run from this directory: /usr/bin/python3 gen_torch.py
"""
import json

import torch
import torch.ao.nn.quantized as nnq
import torch.nn.intrinsic.quantized as nniq

torch.backends.quantized.engine = "qnnpack"
g = torch.Generator().manual_seed(1234)


def codes(shape, lo, hi, dtype):
    return torch.randint(lo, hi + 1, shape, generator=g).to(dtype)


def case(kind, module, x_shape, w_shape, x_scale, x_zp, w_scale, out_scale, out_zp, **kw):
    xq = torch._make_per_tensor_quantized_tensor(codes(x_shape, 0, 255, torch.uint8), x_scale, x_zp)
    wq = torch._make_per_tensor_quantized_tensor(codes(w_shape, -127, 127, torch.int8), w_scale, 0)
    b = (torch.rand(w_shape[0], generator=g) * 2 - 1).float()
    module.set_weight_bias(wq, b)
    module.scale = out_scale
    module.zero_point = out_zp
    y = module(xq)
    return {
        "kind": kind,
        "attrs": kw,
        "x_shape": list(x_shape), "x": xq.int_repr().flatten().tolist(), "x_scale": x_scale, "x_zero_point": x_zp,
        "w_shape": list(w_shape), "w": wq.int_repr().flatten().tolist(), "w_scale": w_scale,
        "bias": b.tolist(),
        "out_scale": out_scale, "out_zero_point": out_zp,
        "y_shape": list(y.shape), "y": y.int_repr().flatten().tolist(),
    }


cases = [
    case("Linear", nnq.Linear(24, 10), (4, 24), (10, 24), 0.02, 120, 0.004, 0.03, 128),
    case("LinearReLU", nniq.LinearReLU(37, 19), (7, 37), (19, 37), 0.05, 100, 0.003, 0.04, 20),
    case("Conv2d", nnq.Conv2d(3, 8, 3, padding=1), (2, 3, 7, 6), (8, 3, 3, 3), 0.03, 128, 0.005, 0.05, 110,
         stride=[1, 1], padding=[1, 1], groups=1),
    case("Conv2d", nnq.Conv2d(8, 8, 3, stride=2, padding=1, groups=4), (1, 8, 9, 9), (8, 2, 3, 3), 0.02, 90, 0.006, 0.03, 128,
         stride=[2, 2], padding=[1, 1], groups=4),
    case("ConvReLU2d", nniq.ConvReLU2d(4, 16, 1), (2, 4, 5, 5), (16, 4, 1, 1), 0.04, 130, 0.01, 0.05, 60,
         stride=[1, 1], padding=[0, 0], groups=1),
]

with open("torch_golden.json", "w") as f:
    json.dump({"torch": torch.__version__, "engine": "qnnpack", "cases": cases}, f, separators=(",", ":"))
