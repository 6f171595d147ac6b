"""Writes torch_golden_more.json: PyTorch 1.13 references for quantized
Embedding and EmbeddingBag (from_float with float_qparams_weight_only_qconfig
and its 4-bit version: the quantized table, lookups and bags; 4-bit lookups
through embedding_bag_4bit, since embedding_4bit fails in this build) and for quantized
ConvTranspose1d (engine qnnpack, per-tensor weights, as codes).

Run from this directory: /usr/bin/python3 gen_torch_more.py
Floats are float32 values printed exactly; 4-bit codes are unpacked, one per
element (PyTorch stores element 2i in the low nibble of byte i).
"""
import json

import numpy as np
import torch
import torch.ao.nn.quantized as nnq
from torch.ao.quantization import float_qparams_weight_only_qconfig as q8
from torch.ao.quantization import float_qparams_weight_only_qconfig_4bit as q4

torch.backends.quantized.engine = "qnnpack"
g = torch.Generator().manual_seed(4321)


def fl(t):
    return [float(v) for v in np.asarray(t, dtype=np.float32).reshape(-1)]


def ints(t):
    return [int(v) for v in np.asarray(t).reshape(-1)]


def codes_of(qw, bits):
    raw = qw.int_repr().reshape(-1)
    if bits == 8:
        return ints(raw)
    out = []
    for b in raw.tolist():
        out += [b & 15, b >> 4]
    return out


def table(rows, dim):
    w = torch.randn(rows, dim, generator=g) * torch.rand(rows, 1, generator=g) * 3
    w[0] = 0.7                 # constant row: scale 1
    w[1, : dim // 2] = 0
    w[2] = w[2].abs() + 0.5    # positive row
    w[3] = -w[3].abs() - 2     # negative row
    return w


emb = []
for rows, dim, bits in [(12, 8, 8), (10, 6, 4), (9, 13, 8), (7, 32, 4)]:
    qc = q8 if bits == 8 else q4
    w = table(rows, dim)
    f = torch.nn.Embedding(rows, dim)
    f.weight.data.copy_(w)
    f.qconfig = qc
    qe = nnq.Embedding.from_float(f)
    qw = qe.weight()
    idx = torch.randint(0, rows, (15,), generator=g)
    if bits == 8:
        y = qe(idx)
    else:
        # This build's embedding_4bit (nnq.Embedding.forward for quint4x2)
        # fails; a bag of one index per lookup over the same packed table
        # is the same lookup.
        y = torch.ops.quantized.embedding_bag_4bit(qe._packed_params._packed_weight, idx, torch.arange(len(idx)),
                                                   False, 0, False, None, None, False)
    fb = torch.nn.EmbeddingBag(rows, dim, mode="sum")
    fb.weight.data.copy_(w)
    fb.qconfig = qc
    qb = nnq.EmbeddingBag.from_float(fb)
    bags = []
    for k in range(4):
        n = int(torch.randint(0, 20, (1,), generator=g))
        bidx = torch.randint(0, rows, (n,), generator=g)
        nb = int(torch.randint(1, 5, (1,), generator=g))
        cuts = sorted(int(v) for v in torch.randint(0, n + 1, (nb - 1,), generator=g))
        offsets = torch.tensor([0] + cuts, dtype=torch.int64)
        psw = torch.rand(n, generator=g) * 2 if k % 2 == 1 else None
        last = k == 2
        if last:
            qb.include_last_offset = True
            offsets = torch.cat([offsets, torch.tensor([n])])
        yb = qb(bidx, offsets, per_sample_weights=psw)
        qb.include_last_offset = False
        bags.append(dict(idx=ints(bidx), offsets=ints(offsets), include_last_offset=last,
                         per_sample_weights=None if psw is None else fl(psw), y=fl(yb)))
    emb.append(dict(rows=rows, dim=dim, bits=bits, w=fl(w), codes=codes_of(qw, bits),
                    scales=fl(qw.q_per_channel_scales()), zero_points=fl(qw.q_per_channel_zero_points()),
                    idx_shape=list(idx.shape), idx=ints(idx), y=fl(y), bags=bags))


def qcodes(shape, lo, hi, dtype):
    return torch.randint(lo, hi + 1, shape, generator=g).to(dtype)


convt = []
for (cin, cout, k, kw, xs) in [(4, 6, 3, dict(stride=2, padding=1, output_padding=1), (2, 4, 5)),
                               (4, 6, 2, dict(stride=3, groups=2, dilation=2), (1, 4, 4)),
                               (3, 5, 4, dict(padding=2), (2, 3, 7))]:
    m = nnq.ConvTranspose1d(cin, cout, k, **kw)
    groups = kw.get("groups", 1)
    xq = torch._make_per_tensor_quantized_tensor(qcodes(xs, 0, 255, torch.uint8), 0.03, 120)
    wq = torch._make_per_tensor_quantized_tensor(qcodes((cin, cout // groups, k), -127, 127, torch.int8), 0.004, 0)
    b = (torch.rand(cout, generator=g) * 2 - 1).float()
    m.set_weight_bias(wq, b)
    m.scale, m.zero_point = 0.02, 110
    y = m(xq)
    convt.append(dict(attrs=dict(stride=kw.get("stride", 1), padding=kw.get("padding", 0),
                                 output_padding=kw.get("output_padding", 0), dilation=kw.get("dilation", 1),
                                 groups=groups),
                      x_shape=list(xs), x=ints(xq.int_repr()), x_scale=0.03, x_zero_point=120,
                      w_shape=list(wq.shape), w=ints(wq.int_repr()), w_scale=0.004, bias=fl(b),
                      out_scale=0.02, out_zero_point=110, y_shape=list(y.shape), y=ints(y.int_repr())))

with open("torch_golden_more.json", "w") as f:
    json.dump({"torch": torch.__version__, "engine": "qnnpack", "embedding": emb, "conv_transpose1d": convt}, f,
              separators=(",", ":"))
print("wrote", len(emb), "embedding tables and", len(convt), "ConvTranspose1d cases")
