#!/usr/bin/python3
"""Writes fold_golden.json next to this file: PyTorch 1.13's
torch.nn.utils.fusion.fuse_conv_bn_weights (conv and transposed conv) and
fuse_linear_bn_weights on random weights and batch-norm statistics.

Regenerate with Debian's PyTorch (apt-get install python3-torch):
    /usr/bin/python3 nn/intrinsic/testdata/gen_golden.py
The Go test nn/intrinsic/golden_test.go reads the file; CI needs no Python.
"""
import json
import os

import torch
from torch.nn.utils.fusion import fuse_conv_bn_weights, fuse_linear_bn_weights

OUT = os.path.join(os.path.dirname(__file__), "fold_golden.json")
g = torch.Generator().manual_seed(3)


def f32(t):
    return None if t is None else [float(v) for v in t.detach().reshape(-1).tolist()]


def bn_stats(c, affine):
    rm = torch.randn(c, generator=g) * 2
    rv = torch.rand(c, generator=g) * 3 + 1e-3
    w = torch.rand(c, generator=g) * 2 - 0.5 if affine else None
    b = torch.randn(c, generator=g) if affine else None
    return rm, rv, w, b


cases = []
for kind, wshape, bias, affine, eps in [
    ("conv", [6, 3, 3, 3], True, True, 1e-5),
    ("conv", [4, 2, 5], False, True, 1e-3),
    ("conv", [5, 1, 1, 1], True, False, 1e-5),
    ("convtranspose", [3, 6, 2, 2], True, True, 1e-5),
    ("linear", [7, 9], True, True, 1e-5),
    ("linear", [4, 3], False, True, 0.25),
]:
    w = torch.randn(*wshape, generator=g)
    out = wshape[1] if kind == "convtranspose" else wshape[0]
    b = torch.randn(out, generator=g) if bias else None
    rm, rv, bw, bb = bn_stats(out, affine)
    if kind == "linear":
        fw, fb = fuse_linear_bn_weights(w, b if b is not None else torch.zeros(out), rm, rv, eps, bw, bb)
    else:
        fw, fb = fuse_conv_bn_weights(w, b, rm, rv, eps, bw, bb, transpose=(kind == "convtranspose"))
    cases.append({"kind": kind, "weight_shape": wshape, "weight": f32(w), "bias": f32(b),
                  "running_mean": f32(rm), "running_var": f32(rv), "bn_weight": f32(bw), "bn_bias": f32(bb),
                  "eps": eps, "fused_weight": f32(fw), "fused_bias": f32(fb)})

with open(OUT, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f)
