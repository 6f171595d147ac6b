#!/usr/bin/python3
"""Writes ops/testdata/fakequant_golden.json: PyTorch 1.13's fake quantization
(per-tensor, per-channel, learnable LSQ) outputs and gradients, and
quantize_per_tensor / quantize_per_channel integer values, on varied inputs.

Regenerate with Debian's PyTorch (apt-get install python3-torch):
    /usr/bin/python3 scripts/golden_fakequant.py
The Go test ops/golden_test.go reads the file; CI needs no Python.
"""
import json
import os

import torch

torch.manual_seed(0)
OUT = os.path.join(os.path.dirname(__file__), "..", "ops", "testdata", "fakequant_golden.json")


def f32(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def inputs():
    g = torch.Generator().manual_seed(1)
    yield "normal", torch.randn(64, generator=g)
    yield "heavy", torch.distributions.StudentT(2.0).sample((64,)) * 3
    yield "positive", torch.rand(64, generator=g) * 5
    yield "negative", -torch.rand(64, generator=g) * 5
    yield "huge", torch.randn(64, generator=g) * 1e4
    yield "tiny", torch.randn(64, generator=g) * 1e-4
    yield "edges", torch.tensor([0.0, 0.5, 1.5, -0.5, 2.5, 127.5, 128.5, -128.5, 255.5, 300.0, -300.0, 1e-8] * 5 + [0.25, -0.25, 3.5, -3.5])


cases = []
for name, x in inputs():
    x = x.float()
    for (scale, zp, qmin, qmax) in [(0.05, 10, 0, 255), (0.1, 0, -128, 127), (0.02, 64, 0, 127), (1.0, 0, 0, 255), (0.5, -3, -128, 127)]:
        xr = x.clone().requires_grad_(True)
        y = torch.fake_quantize_per_tensor_affine(xr, scale, zp, qmin, qmax)
        w = torch.linspace(-1, 1, x.numel())
        (y * w).sum().backward()
        c = {"kind": "per_tensor", "input": name, "x": f32(x), "scale": scale, "zero_point": zp,
             "quant_min": qmin, "quant_max": qmax, "y": f32(y), "upstream": f32(w), "grad": f32(xr.grad)}
        if qmin == 0 and qmax == 255:
            q = torch.quantize_per_tensor(x, scale, zp, torch.quint8).int_repr()
            c["quint8"] = [int(v) for v in q.reshape(-1).tolist()]
        if qmin == -128 and qmax == 127:
            q = torch.quantize_per_tensor(x, scale, zp, torch.qint8).int_repr()
            c["qint8"] = [int(v) for v in q.reshape(-1).tolist()]
        cases.append(c)

    # per-channel along axis 1 of [4, 4, 4]
    xc = x.reshape(4, 4, 4)
    scales = torch.tensor([0.01, 0.05, 0.1, 0.5])
    zps = torch.tensor([0, 3, -5, 10], dtype=torch.int32)
    xr = xc.clone().requires_grad_(True)
    y = torch.fake_quantize_per_channel_affine(xr, scales, zps, 1, -128, 127)
    w = torch.linspace(-1, 1, x.numel()).reshape(4, 4, 4)
    (y * w).sum().backward()
    q = torch.quantize_per_channel(xc, scales.double(), zps.long(), 1, torch.qint8).int_repr()
    cases.append({"kind": "per_channel", "input": name, "x": f32(xc), "shape": [4, 4, 4], "axis": 1,
                  "scales": f32(scales), "zero_points": [int(v) for v in zps.tolist()],
                  "quant_min": -128, "quant_max": 127, "y": f32(y), "upstream": f32(w), "grad": f32(xr.grad),
                  "qint8": [int(v) for v in q.reshape(-1).tolist()]})

    # learnable (LSQ)
    for (scale, zp, qmin, qmax, gf) in [(0.05, 10.0, 0, 255, 1.0), (0.1, 0.0, -128, 127, 0.5), (0.3, 2.4, 0, 15, 1.0)]:
        xr = x.clone().requires_grad_(True)
        s = torch.tensor([scale], requires_grad=True)
        z = torch.tensor([zp], requires_grad=True)
        y = torch._fake_quantize_learnable_per_tensor_affine(xr, s, z, qmin, qmax, gf)
        w = torch.linspace(-1, 1, x.numel())
        (y * w).sum().backward()
        cases.append({"kind": "learnable", "input": name, "x": f32(x), "scale": scale, "zero_point_f": zp,
                      "quant_min": qmin, "quant_max": qmax, "grad_factor": gf, "y": f32(y), "upstream": f32(w),
                      "grad": f32(xr.grad), "grad_scale": float(s.grad[0]), "grad_zero_point": float(z.grad[0])})

with open(OUT, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f, separators=(",", ":"))
print("wrote", OUT, len(cases), "cases")
