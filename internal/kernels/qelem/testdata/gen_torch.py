"""Writes torch_qelem.json: PyTorch 1.13 quantized pooling and upsampling
results (int_repr) for the qelem parity tests. Run with Debian's
python3-torch: /usr/bin/python3 gen_torch.py
"""
import json

import torch
import torch.nn.functional as F

torch.backends.quantized.engine = "onednn"
g = torch.Generator().manual_seed(1234)
inputs, cases = [], []


def qtensor(shape, dtype, zp, scale=0.05):
    lo, hi = (0, 256) if dtype == torch.quint8 else (-128, 128)
    raw = torch.randint(lo, hi, shape, generator=g)
    raw = raw.to(torch.uint8 if dtype == torch.quint8 else torch.int8)
    return torch._make_per_tensor_quantized_tensor(raw, scale, zp)


def add_input(q):
    inputs.append({
        "dtype": "quint8" if q.dtype == torch.quint8 else "qint8",
        "shape": list(q.shape),
        "scale": q.q_scale(),
        "zp": q.q_zero_point(),
        "x": q.int_repr().flatten().tolist(),
    })


def add(op, q, y, **attrs):
    cases.append({
        "op": op,
        "input": len(inputs) - 1,
        "y_shape": list(y.shape),
        "y": y.int_repr().flatten().tolist(),
        "out_scale": y.q_scale(),
        "out_zp": y.q_zero_point(),
        **attrs,
    })


for dtype, zps in ((torch.quint8, (0, 1, 7, 128, 255)), (torch.qint8, (-128, -3, 0, 5))):
    for zp in zps:
        q = qtensor((1, 3, 9, 10), dtype, zp)
        add_input(q)
        for k, s, p, ceil, cip, div in ((2, 2, 0, False, True, None), (3, 2, 1, False, True, None),
                                        (3, 2, 1, True, False, None), (3, 1, 1, False, True, None),
                                        (2, 1, 1, True, True, None), (3, 3, 1, True, True, 4),
                                        (4, 3, 2, False, False, None)):
            y = F.avg_pool2d(q, k, s, p, ceil_mode=ceil, count_include_pad=cip, divisor_override=div)
            add("avg_pool2d", q, y, kernel=k, stride=s, padding=p, ceil_mode=ceil,
                count_include_pad=cip, divisor=div or 0)
        for k, s, p, d, ceil in ((2, 2, 0, 1, False), (3, 2, 1, 1, True), (3, 1, 1, 2, False)):
            y = F.max_pool2d(q, k, s, p, d, ceil_mode=ceil)
            add("max_pool2d", q, y, kernel=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
        for oh, ow in ((3, 5), (4, 4), (1, 1), (9, 10), (5, 7)):
            add("adaptive_avg_pool2d", q, F.adaptive_avg_pool2d(q, (oh, ow)))
        for size, sf, align in (((18, 20), None, False), ((18, 20), None, True), ((13, 7), None, False),
                                ((13, 7), None, True), (None, 1.7, False), (None, 2.5, True),
                                ((5, 4), None, False), ((1, 1), None, True), (None, 2.0, False)):
            y = F.interpolate(q, size=size, scale_factor=sf, mode="bilinear", align_corners=align)
            add("upsample_bilinear2d", q, y, align_corners=align, scale_factor=sf or 0)
        for size, sf in (((18, 20), None), ((13, 7), None), (None, 1.7), (None, 3.0), ((4, 3), None)):
            y = F.interpolate(q, size=size, scale_factor=sf, mode="nearest")
            add("upsample_nearest2d", q, y, scale_factor=sf or 0)

with open("torch_qelem.json", "w") as f:
    json.dump({"torch": torch.__version__, "inputs": inputs, "cases": cases}, f, separators=(",", ":"))
