"""Writes torch_golden_norm.safetensors: PyTorch (1.13) reference parameters,
inputs, outputs, gradients and running statistics for nn's GroupNorm,
InstanceNorm1d/2d, ELU and ConvTranspose1d (golden_norm_test.go).

Run from the repository root:  /usr/bin/python3 nn/testdata/gen_golden_norm.py
Parameters (after the forward passes) are stored under "<case>.<state_dict
key>", inputs, outputs and gradients under "io.<case>.<name>", as in
gen_golden.py.
"""
import json
import struct

import torch
import torch.nn as nn

DTYPES = {torch.float32: ("F32", "<f4"), torch.int64: ("I64", "<i8")}


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
    header["__metadata__"] = {"generator": "nn/testdata/gen_golden_norm.py", "torch": torch.__version__}
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
        out["io." + case + "." + k] = v.detach().clone()


def run(case, module, x, init=None):
    """One forward and backward with a random output weighting; params and
    their initial values are stored so Go can load them before running."""
    x = x.clone().requires_grad_(True)
    add_params(case + "_init", module)
    y = module(x)
    gy = torch.randn(y.shape)
    y.backward(gy)
    io(case, x=x, y=y, gy=gy, gx=x.grad)
    for n, p in module.named_parameters():
        io(case, **{"g_" + n: p.grad})
    add_params(case, module)
    return y


torch.manual_seed(0)

gn = nn.GroupNorm(3, 6)
with torch.no_grad():
    gn.weight.uniform_(0.5, 1.5)
    gn.bias.uniform_(-0.5, 0.5)
run("gn", gn, torch.randn(2, 6, 4, 3) * 2 + 0.5)
run("gn_noaffine", nn.GroupNorm(2, 4, eps=1e-3, affine=False), torch.randn(3, 4, 5))

# Instance norms: training (running stats updated twice), then evaluation.
in1 = nn.InstanceNorm1d(4, affine=True, track_running_stats=True, momentum=0.2)
with torch.no_grad():
    in1.weight.uniform_(0.5, 1.5)
    in1.bias.uniform_(-0.5, 0.5)
add_params("in1_init0", in1)
x1 = torch.randn(3, 4, 7) * 1.5 + 0.3
x1b = torch.randn(2, 4, 5) - 0.4
in1(x1b)
io("in1", xb=x1b)
run("in1", in1, x1)
in1.eval()
io("in1", y_eval=in1(x1), y_eval_unbatched=in1(x1[1]))

in2 = nn.InstanceNorm2d(3)  # PyTorch's defaults: no affine, no running stats
run("in2", in2, torch.randn(2, 3, 4, 5) * 3 - 1)
in2.eval()
x2u = torch.randn(3, 3, 4)
io("in2", xu=x2u, yu=in2(x2u))

in2t = nn.InstanceNorm2d(2, track_running_stats=True)
run("in2t", in2t, torch.randn(4, 2, 3, 3) + 1)
in2t.eval()
x2e = torch.randn(1, 2, 3, 2)
io("in2t", xe=x2e, ye=in2t(x2e))

run("elu", nn.ELU(alpha=1.5), torch.randn(5, 7) * 2)

for case, args, kw, shape in (
        ("ct1", (4, 6, 3), dict(stride=2, padding=1, output_padding=1), (2, 4, 5)),
        ("ct1g", (4, 6, 2), dict(stride=3, groups=2, dilation=2, bias=False), (1, 4, 4)),
        ("ct1u", (3, 2, 4), dict(padding=2), (3, 6))):
    ct = nn.ConvTranspose1d(*args, **kw)
    run(case, ct, torch.randn(*shape))

save("nn/testdata/torch_golden_norm.safetensors", out)
print("wrote", len(out), "tensors")
