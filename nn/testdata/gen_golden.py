"""Writes torch_golden.safetensors: PyTorch (1.13) reference parameters,
inputs and outputs for nn's parity tests (golden_test.go).

Run from the repository root:  /usr/bin/python3 nn/testdata/gen_golden.py
Parameters are stored under "<case>.<state_dict key>", inputs and outputs
under "io.<case>.<name>". The safetensors file is written by the minimal
writer below (no safetensors package needed).
"""
import json
import os
import struct

import torch
import torch.nn as nn

DTYPES = {torch.float32: ("F32", "<f4"), torch.int64: ("I64", "<i8"), torch.bool: ("BOOL", "?")}


def save(path, tensors):
    names = sorted(tensors)
    header, blobs, off = {}, [], 0
    for n in names:
        t = tensors[n].detach().contiguous()
        code, _ = DTYPES[t.dtype]
        data = t.numpy().tobytes()
        header[n] = {"dtype": code, "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    header["__metadata__"] = {"generator": "nn/testdata/gen_golden.py", "torch": torch.__version__}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


out = {}


def add_params(case, module):
    for k, v in module.state_dict().items():
        out[case + "." + k] = v.clone()


def io(case, **kw):
    for k, v in kw.items():
        out["io." + case + "." + k] = v


torch.manual_seed(0)

lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)
x = torch.randn(2, 5, 3)
h0, c0 = torch.randn(4, 2, 4), torch.randn(4, 2, 4)
y, (hn, cn) = lstm(x, (h0, c0))
add_params("lstm", lstm)
io("lstm", x=x, h0=h0, c0=c0, out=y, hn=hn, cn=cn)

gru = nn.GRU(3, 4, num_layers=2, bidirectional=True)
x = torch.randn(5, 2, 3)
h0 = torch.randn(4, 2, 4)
y, hn = gru(x, h0)
add_params("gru", gru)
io("gru", x=x, h0=h0, out=y, hn=hn)

mha = nn.MultiheadAttention(8, 2, batch_first=True)
with torch.no_grad():
    mha.in_proj_bias.uniform_(-0.5, 0.5)
    mha.out_proj.bias.uniform_(-0.5, 0.5)
q, k, v = torch.randn(2, 3, 8), torch.randn(2, 4, 8), torch.randn(2, 4, 8)
kpm = torch.tensor([[False, False, True, False], [False, False, False, True]])
am = torch.randn(3, 4)
y, w = mha(q, k, v, key_padding_mask=kpm, attn_mask=am, need_weights=True)
add_params("mha", mha)
io("mha", q=q, k=k, v=v, kpm=kpm, am=am, out=y, w=w)

mkv = nn.MultiheadAttention(6, 3, kdim=5, vdim=7)
with torch.no_grad():
    mkv.in_proj_bias.uniform_(-0.5, 0.5)
q, k, v = torch.randn(3, 2, 6), torch.randn(4, 2, 5), torch.randn(4, 2, 7)
am = torch.rand(6, 3, 4) > 0.7
am[:, :, 0] = False
y, w = mkv(q, k, v, attn_mask=am, need_weights=True, average_attn_weights=False)
add_params("mkv", mkv)
io("mkv", q=q, k=k, v=v, am=am, out=y, w=w)

for case, kw in (("enc", dict(batch_first=True)), ("encpre", dict(norm_first=True, activation="gelu"))):
    enc = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, **kw)
    with torch.no_grad():
        for n, p in enc.named_parameters():
            if n.startswith("norm"):
                p.uniform_(0.5, 1.5)
    enc.eval()
    src = torch.randn(2, 5, 8) if kw.get("batch_first") else torch.randn(5, 2, 8)
    kpm = torch.tensor([[False] * 5, [False, False, False, True, True]])
    y = enc(src, src_key_padding_mask=kpm)
    add_params(case, enc)
    io(case, src=src, kpm=kpm, out=y)

bn = nn.BatchNorm2d(3)
with torch.no_grad():
    bn.weight.uniform_(0.5, 1.5)
    bn.bias.uniform_(-0.5, 0.5)
add_params("bn", bn)
x = torch.randn(2, 3, 4, 5) * 2 + 1
y = bn(x)
io("bn", x=x, out_train=y, running_mean=bn.running_mean, running_var=bn.running_var,
   num_batches_tracked=bn.num_batches_tracked)
bn.eval()
io("bn", out_eval=bn(x))

save(os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_golden.safetensors"), out)
