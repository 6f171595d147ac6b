#!/usr/bin/python3
"""Quantizes quanta's demo model with PyTorch 1.13's eager mode (engine
qnnpack) and writes the golden files internal/demo/torch_parity_test.go
compares quanta's eager quantization with.

Input, written by `go test ./internal/demo -run TorchEagerParity -update`:
    internal/demo/testdata/torch_eager/float.safetensors
        model.*  the float demo model's state dict (trained in Go)
        calib    raw pixels of the 256 calibration digits [256, 784] uint8
        eval     raw pixels of 16 evaluation digits [16, 784] uint8
Output, next to it:
    golden.json          output qparams of every quantized module and the
                         weight qparams of every weighted one
    golden.safetensors   out.<path>: the int8 codes each quantized module
                         outputs on the evaluation digits; weight.<path>:
                         the int8 weights; logits: the dequantized output

Steps, as PyTorch's static quantization tutorial: eval, fuse_modules with the
demo's groups, qconfig = get_default_qconfig("qnnpack"), prepare, the four
calibration batches of 64, convert.

    /usr/bin/python3 scripts/golden_eager.py
CI needs no Python: the outputs are committed.
"""
import json
import os
import struct

import numpy as np
import torch
import torch.nn as nn
from torch.ao.quantization import DeQuantStub, QuantStub

DIR = os.path.join(os.path.dirname(__file__), "..", "internal", "demo", "testdata", "torch_eager")
WIDTH = 16
MEAN, STD = np.float32(0.1307), np.float32(0.3081)

DTYPES = {"F32": np.float32, "I64": np.int64, "I32": np.int32, "I8": np.int8, "U8": np.uint8}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=DTYPES[e["dtype"]]).reshape(e["shape"]).copy()
    return out


def write_safetensors(path, tensors):
    names = sorted(tensors)
    header, off, blobs = {}, 0, []
    inv = {np.dtype(v): k for k, v in DTYPES.items()}
    for name in names:
        a = np.ascontiguousarray(tensors[name])
        b = a.tobytes()
        header[name] = {"dtype": inv[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(path + ".tmp", path)


def conv_bn(i, o, relu):
    layers = [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o)]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Net(nn.Module):
    """quanta's internal/demo Net, with the same module names."""

    def __init__(self, w):
        super().__init__()
        self.quant = QuantStub()
        self.features = nn.Sequential(conv_bn(1, w, True), nn.MaxPool2d(2), conv_bn(w, 2 * w, True), nn.MaxPool2d(2))
        self.res1 = conv_bn(2 * w, 2 * w, True)
        self.res2 = conv_bn(2 * w, 2 * w, False)
        self.skip = torch.ao.nn.quantized.FloatFunctional()
        self.flatten = nn.Flatten(1, -1)
        self.fc = nn.Linear(2 * w * 7 * 7, 10)
        self.dequant = DeQuantStub()

    def forward(self, x):
        h = self.features(self.quant(x))
        h = self.skip.add_relu(h, self.res2(self.res1(h)))
        return self.dequant(self.fc(self.flatten(h)))


FUSE = [["features.0.0", "features.0.1", "features.0.2"], ["features.2.0", "features.2.1", "features.2.2"],
        ["res1.0", "res1.1", "res1.2"], ["res2.0", "res2.1"]]


def normalized(pixels):
    x = pixels.astype(np.float32) / np.float32(255)
    x = (x - MEAN) / STD
    return torch.from_numpy(x.astype(np.float32)).reshape(-1, 1, 28, 28)


def main():
    src = read_safetensors(os.path.join(DIR, "float.safetensors"))
    sd = {k[len("model."):]: torch.from_numpy(v) for k, v in src.items() if k.startswith("model.")}
    torch.backends.quantized.engine = "qnnpack"
    model = Net(WIDTH)
    model.load_state_dict(sd, strict=True)
    model.eval()
    torch.ao.quantization.fuse_modules(model, FUSE, inplace=True)
    model.qconfig = torch.ao.quantization.get_default_qconfig("qnnpack")
    torch.ao.quantization.prepare(model, inplace=True)
    calib = normalized(src["calib"])
    with torch.no_grad():
        for b in range(0, calib.shape[0], 64):
            model(calib[b:b + 64])
    torch.ao.quantization.convert(model, inplace=True)

    qp = {"output": {}, "weight": {}}
    outs, hooks = {}, []
    for name, m in model.named_modules():
        if hasattr(m, "scale") and hasattr(m, "zero_point") and name:
            qp["output"][name] = {"scale": float(m.scale), "zero_point": int(m.zero_point)}
        if hasattr(m, "weight") and callable(getattr(m, "weight")) and name:
            w = m.weight()
            if w.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
                qp["weight"][name] = {"scale": [float(w.q_scale())], "zero_point": [int(w.q_zero_point())]}
            else:
                qp["weight"][name] = {"scale": [float(s) for s in w.q_per_channel_scales()],
                                      "zero_point": [int(z) for z in w.q_per_channel_zero_points()]}
            outs["weight." + name] = w.int_repr().numpy().astype(np.int8)
        if name and (name in qp["output"] or isinstance(m, nn.MaxPool2d) or isinstance(m, nn.Flatten)):
            def hook(mod, inp, out, name=name):
                outs["out." + name] = out.int_repr().numpy().astype(np.uint8)
            hooks.append(m.register_forward_hook(hook))
    with torch.no_grad():
        logits = model(normalized(src["eval"]))
    outs["logits"] = logits.numpy().astype(np.float32)
    # scale is a float64 attribute in PyTorch's modules; quanta keeps float32.
    for v in qp["output"].values():
        v["scale"] = float(np.float32(v["scale"]))
    with open(os.path.join(DIR, "golden.json") + ".tmp", "w") as f:
        json.dump(qp, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(os.path.join(DIR, "golden.json") + ".tmp", os.path.join(DIR, "golden.json"))
    write_safetensors(os.path.join(DIR, "golden.safetensors"), outs)
    print("wrote", sorted(outs))


if __name__ == "__main__":
    main()
