# Writes the PyTorch 1.13 golden files of quanta's dynamic and weight-only
# quantization. Run from this directory with Debian's python3-torch:
#
#   /usr/bin/python3 gen_torch.py
#
# Files written (JSON; every float is a float32 or float64 value printed
# exactly, byte tables are lists of integers):
#   torch_dynamic.json                      dynamic Linear and LSTM (qnnpack), fp16
#                                           weights, quantized EmbeddingBag through
#                                           the ops API
#   ../../../internal/kernels/qdyn/testdata/torch_qparams.json
#                                           ChooseQuantizationParams (0..255 and
#                                           reduce_range), DynamicQuantizeLinear per
#                                           the ONNX reference formulas (numpy)
#   ../../../internal/kernels/embbag/testdata/torch_embbag.json
#                                           embedding_bag_{byte,4bit}_prepack and
#                                           *_rowwise_offsets
import json
import os

import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(0)
np.random.seed(0)


def fl(t):
    return [float(v) for v in np.asarray(t, dtype=np.float32).reshape(-1)]


def ints(t):
    return [int(v) for v in np.asarray(t).reshape(-1)]


def write(path, obj):
    with open(path, "w") as f:
        json.dump(dict(torch=torch.__version__, **obj), f, separators=(",", ":"))


# ---------------------------------------------------------------- qparams
def choose(x, reduce_range, engine):
    torch.backends.quantized.engine = engine
    s, z = torch._choose_qparams_per_tensor(x, reduce_range)
    return float(s), int(z)


def onnx_dql(x):
    # The reference of ONNX's DynamicQuantizeLinear, float32 throughout
    # (onnx/backend/test/case/node/dynamicquantizelinear.py).
    x = x.astype(np.float32)
    x_min = np.minimum(np.float32(0), np.min(x)).astype(np.float32)
    x_max = np.maximum(np.float32(0), np.max(x)).astype(np.float32)
    scale = np.float32((x_max - x_min) / np.float32(255))
    zp = np.clip(np.round(np.float32(0) - x_min / scale), 0, 255).astype(np.uint8)
    y = np.clip(np.round(x / scale) + zp, 0, 255).astype(np.uint8)
    return float(scale), int(zp), ints(y)


qp_cases = []
ranges = [(-1, 3), (0.5, 2), (-2, -1), (0, 0), (0, 1e-3), (-1e-3, 0), (-1e-3, 2e-3), (-1e-6, 3e-6),
          (-5, 0.01), (-0.01, 5), (-1e30, 1e30), (1e-40, 1e-39), (-3.4e38, 3.4e38), (-7.25, 7.25)]
for lo, hi in ranges:
    x = torch.tensor([lo, hi], dtype=torch.float32)
    for rr in (False, True):
        s, z = choose(x, rr, "onednn")
        qp_cases.append(dict(min=float(x[0]), max=float(x[1]), reduce_range=rr, scale=s, zero_point=z))
g = torch.Generator().manual_seed(1)
for i in range(300):
    sc = float(10 ** torch.empty(1).uniform_(-7, 4, generator=g))
    x = torch.randn(int(torch.randint(1, 40, (1,), generator=g)), generator=g) * sc
    if i % 3 == 1:
        x = x.abs() + float(torch.rand(1, generator=g)) * sc
    if i % 3 == 2:
        x = -x.abs()
    rr = bool(i % 2)
    s, z = choose(x, rr, "onednn")
    qp_cases.append(dict(min=float(x.min()), max=float(x.max()), reduce_range=rr, scale=s, zero_point=z))

onnx_cases = []
for i in range(200):
    n = int(np.random.randint(1, 50))
    x = (np.random.randn(n) * 10 ** np.random.uniform(-5, 3)).astype(np.float32)
    if i % 4 == 1:
        x = np.abs(x)
    if i % 4 == 2:
        x = -np.abs(x)
    if i % 4 == 3:
        x = np.round(x * 4) / 4  # many ties
    if not x.any():
        x[0] = 1  # all zeros: scale 0 in the formulas (ORT's 1 is tested by hand)
    s, z, y = onnx_dql(x)
    onnx_cases.append(dict(x=fl(x), scale=s, zero_point=z, y=y))

write("../../../internal/kernels/qdyn/testdata/torch_qparams.json",
      dict(choose=qp_cases, onnx=onnx_cases))

# ---------------------------------------------------------- embedding bag
def emb_table(rows, dim, special):
    w = torch.randn(rows, dim) * torch.rand(rows, 1) * 3
    if special:
        w[0] = 0.7            # constant row
        w[1] = 0              # zero row
        w[2] = w[2] * 1e-9    # tiny range
        w[3] = w[3] * 1e4     # large values
        w[4] = -w[4].abs() - 2  # negative row
    return w


def bag_queries(rows, g):
    qs = []
    for k in range(6):
        n = int(torch.randint(0, 30, (1,), generator=g))
        idx = torch.randint(0, rows, (n,), generator=g)
        nb = int(torch.randint(1, 6, (1,), generator=g))
        cuts = sorted(int(v) for v in torch.randint(0, n + 1, (nb - 1,), generator=g))
        offsets = torch.tensor([0] + cuts, dtype=torch.int64)
        psw = torch.randn(n, generator=g) if k % 2 == 1 else None
        last = k == 4
        if last:
            offsets = torch.cat([offsets, torch.tensor([n])])
        qs.append((idx, offsets, psw, last))
    # lookups: one index per bag
    idx = torch.randint(0, rows, (9,), generator=g)
    qs.append((idx, torch.arange(9), None, False))
    return qs


g = torch.Generator().manual_seed(2)
tables = []
for rows, dim, bits in [(20, 16, 8), (13, 5, 8), (9, 33, 8), (20, 16, 4), (11, 6, 4), (9, 34, 4), (6, 2, 4), (6, 64, 8)]:
    w = emb_table(rows, dim, True)
    if bits == 8:
        packed = torch.ops.quantized.embedding_bag_byte_prepack(w)
        op = torch.ops.quantized.embedding_bag_byte_rowwise_offsets
    else:
        packed = torch.ops.quantized.embedding_bag_4bit_prepack(w)
        op = torch.ops.quantized.embedding_bag_4bit_rowwise_offsets
    queries = []
    for idx, offsets, psw, last in bag_queries(rows, g):
        y = op(packed, idx, offsets, False, 0, False, psw, None, last)
        queries.append(dict(idx=ints(idx), offsets=ints(offsets), include_last_offset=last,
                            per_sample_weights=None if psw is None else fl(psw), y=fl(y)))
    tables.append(dict(rows=rows, dim=dim, bits=bits, w=fl(w), packed=ints(packed), queries=queries))

write("../../../internal/kernels/embbag/testdata/torch_embbag.json", dict(tables=tables))

# -------------------------------------------------- ops: dynamic linear
torch.backends.quantized.engine = "qnnpack"
lin_cases = []
g = torch.Generator().manual_seed(3)
for shape, n, per_channel, kind in [((1, 8), 4, False, "randn"), ((3, 17), 5, False, "randn"),
                                    ((4, 64), 33, False, "positive"), ((16, 96), 40, False, "randn"),
                                    ((2, 3, 20), 7, False, "randn"), ((5, 40), 9, False, "tiny"),
                                    ((2, 12), 3, False, "zeros"), ((6, 48), 20, True, "randn"),
                                    ((1, 96), 31, True, "negative")]:
    k = shape[-1]
    lin = nn.Linear(k, n)
    with torch.no_grad():
        lin.weight.mul_(torch.rand(n, 1, generator=g) * 4)
        lin.bias.copy_(torch.randn(n, generator=g))
    x = torch.randn(*shape, generator=g)
    if kind == "positive":
        x = x.abs()
    if kind == "negative":
        x = -x.abs()
    if kind == "tiny":
        x = x * 1e-3
    if kind == "zeros":
        x = torch.zeros(*shape)
    spec = {nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig} if per_channel else {nn.Linear}
    m = torch.ao.quantization.quantize_dynamic(nn.Sequential(lin), spec, dtype=torch.qint8)
    qw = m[0].weight()
    if per_channel:
        w_scales = fl(qw.q_per_channel_scales().float())
        w_zps = ints(qw.q_per_channel_zero_points())
    else:
        w_scales = [float(np.float32(qw.q_scale()))]
        w_zps = [int(qw.q_zero_point())]
    s, z = torch._choose_qparams_per_tensor(x, False)
    xq = torch.quantize_per_tensor(x, s, z, torch.quint8)
    y = m(x)
    lin_cases.append(dict(shape=list(shape), n=n, per_channel=per_channel, x=fl(x), w=fl(lin.weight.detach()),
                          b=fl(lin.bias.detach()), qweight=ints(qw.int_repr()), w_scales=w_scales, w_zero_points=w_zps,
                          act_scale=float(s), act_zero_point=int(z), act_codes=ints(xq.int_repr()), y=fl(y.detach())))

fp16_cases = []
for (mm, k, n) in [(1, 8, 4), (5, 33, 17), (16, 64, 40)]:
    w = torch.randn(n, k, generator=g)
    w[0, 0] = 1e5    # saturates to 65504
    w[0, 1] = -7e4   # saturates to -65504
    w[1, 0] = 3e-8   # rounds to a subnormal
    b = torch.randn(n, generator=g)
    x = torch.randn(mm, k, generator=g)
    wh = torch.clamp(w, -65504, 65504).half()
    y = torch.nn.functional.linear(x, wh.float(), b)
    fp16_cases.append(dict(m=mm, k=k, n=n, w=fl(w), b=fl(b), x=fl(x), w_half=[int(v) & 0xFFFF for v in wh.view(torch.int16).reshape(-1).tolist()], y=fl(y)))

emb_cases = []
for rows, dim, bits in [(30, 24, 8), (30, 24, 4)]:
    w = emb_table(rows, dim, False)
    if bits == 8:
        packed = torch.ops.quantized.embedding_bag_byte_prepack(w)
        op = torch.ops.quantized.embedding_bag_byte_rowwise_offsets
    else:
        packed = torch.ops.quantized.embedding_bag_4bit_prepack(w)
        op = torch.ops.quantized.embedding_bag_4bit_rowwise_offsets
    idx = torch.randint(0, rows, (25,), generator=g)
    offsets = torch.tensor([0, 3, 3, 10, 24])
    psw = torch.rand(25, generator=g)
    y = op(packed, idx, offsets, False, 0, False, None, None, False)
    yw = op(packed, idx, offsets, False, 0, False, psw, None, False)
    emb_cases.append(dict(rows=rows, dim=dim, bits=bits, w=fl(w), packed=ints(packed), idx=ints(idx),
                          offsets=ints(offsets), per_sample_weights=fl(psw), y=fl(y), y_weighted=fl(yw)))

# A dynamic quantized LSTM (qnnpack): each time step's gates are two
# dynamic linear products, input and hidden, then float gate math.
lstm_cases = []
for (T, B, I, H) in [(5, 3, 10, 12), (4, 1, 7, 5)]:
    lstm = nn.LSTM(I, H)
    mq = torch.ao.quantization.quantize_dynamic(nn.Sequential(lstm), {nn.LSTM}, dtype=torch.qint8)
    x = torch.randn(T, B, I, generator=g)
    h0 = torch.randn(1, B, H, generator=g) * 0.5
    c0 = torch.randn(1, B, H, generator=g) * 0.5
    y, (hn, cn) = mq[0](x, (h0, c0))
    lstm_cases.append(dict(t=T, b=B, i=I, h=H, x=fl(x), h0=fl(h0), c0=fl(c0),
                           w_ih=fl(lstm.weight_ih_l0.detach()), w_hh=fl(lstm.weight_hh_l0.detach()),
                           b_ih=fl(lstm.bias_ih_l0.detach()), b_hh=fl(lstm.bias_hh_l0.detach()),
                           y=fl(y.detach()), hn=fl(hn.detach()), cn=fl(cn.detach())))

write("torch_dynamic.json", dict(linear=lin_cases, fp16=fp16_cases, embedding=emb_cases, lstm=lstm_cases))
print("wrote", len(qp_cases), "qparams,", len(onnx_cases), "onnx,", len(tables), "tables,",
      len(lin_cases), "linear,", len(fp16_cases), "fp16,", len(emb_cases), "embedding,", len(lstm_cases), "lstm cases")
