#!/usr/bin/python3
"""Statically quantizes an LSTM and a multi-head attention with PyTorch
1.13's eager mode (engine qnnpack) through its custom-module path, and
writes the golden file eager/quantizable_golden_test.go compares quanta's
automatic eager flow with.

PyTorch reaches these modules only through custom-module configurations:

    prepare(model, prepare_custom_config_dict={
        "float_to_observed_custom_module_class": {nn.LSTM: nnqa.LSTM}})
    convert(model, convert_custom_config_dict={
        "observed_to_quantized_custom_module_class": {nnqa.LSTM: nnq.LSTM}})

(and the same with MultiheadAttention). quanta's Prepare swaps them itself.

Models: QuantStub -> nn.LSTM(8, 16, layers) -> DeQuantStub, for one and two
layers; QuantStub -> nn.MultiheadAttention(16, 4) self-attention (need
weights, head-averaged) -> DeQuantStub. qconfig = get_default_qconfig(
"qnnpack"), six calibration batches, then one evaluation batch.

Output: eager/testdata/quantizable_golden.json, per case: the float
weights, the calibration and evaluation inputs, the observed qparams of
every quantized part (by quanta's path), the float model's output, and the
int8 codes with qparams of the quantized module's outputs.

    /usr/bin/python3 scripts/golden_quantizable.py
CI needs no Python: the output is committed.
"""
import json
import os

import torch
import torch.nn as nn
import torch.ao.nn.quantizable as nnqa
import torch.ao.nn.quantized as nnq
from torch.ao.quantization import DeQuantStub, QuantStub, convert, get_default_qconfig, prepare

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "eager", "testdata", "quantizable_golden.json")
torch.backends.quantized.engine = "qnnpack"


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def qtensor(t):
    return {"shape": list(t.shape), "scale": float(t.q_scale()), "zero_point": int(t.q_zero_point()),
            "codes": [int(v) for v in t.int_repr().reshape(-1).tolist()]}


def tensor(t):
    return {"shape": list(t.shape), "data": flat(t)}


class LSTMNet(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.quant = QuantStub()
        self.rnn = nn.LSTM(8, 16, layers)
        self.dequant = DeQuantStub()

    def forward(self, x):
        y, _ = self.rnn(self.quant(x))
        return self.dequant(y)


class AttnNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant = QuantStub()
        self.attn = nn.MultiheadAttention(16, 4)
        self.dequant = DeQuantStub()

    def forward(self, x):
        q = self.quant(x)
        y, _ = self.attn(q, q, q, need_weights=True)
        return self.dequant(y)


def qparams(mod):
    s, z = mod.activation_post_process.calculate_qparams()
    return [float(s), int(z)]


def lstm_case(layers, seed):
    torch.manual_seed(seed)
    m = LSTMNet(layers).eval()
    calib = [torch.randn(12, 4, 8) for _ in range(6)]
    x = torch.randn(12, 4, 8)
    weights = {name: tensor(p) for name, p in m.rnn.named_parameters()}
    with torch.no_grad():
        want = m(x)
    m.qconfig = get_default_qconfig("qnnpack")
    prepare(m, inplace=True, prepare_custom_config_dict={
        "float_to_observed_custom_module_class": {nn.LSTM: nnqa.LSTM}})
    with torch.no_grad():
        for c in calib:
            m(c)
        m(x)
    obs = {"quant": qparams(m.quant)}
    for l, layer in enumerate(m.rnn.layers):
        cell = layer.layer_fw.cell
        for part in ("igates", "hgates", "gates", "fgate_cx", "igate_cgate", "fgate_cx_igate_cgate", "ogate_cy"):
            obs[f"rnn.layers.{l}.layer_fw.cell.{part}"] = qparams(getattr(cell, part))
    convert(m, inplace=True, convert_custom_config_dict={
        "observed_to_quantized_custom_module_class": {nnqa.LSTM: nnq.LSTM}})
    with torch.no_grad():
        y, (h, c) = m.rnn(m.quant(x))
        deq = m(x)
    return {"layers": layers, "weights": weights, "calib": [tensor(c) for c in calib], "x": tensor(x),
            "observed": obs, "float": tensor(want), "output": qtensor(y), "h_n": qtensor(h), "c_n": qtensor(c),
            "dequantized": tensor(deq)}


def attn_case(seed):
    torch.manual_seed(seed)
    m = AttnNet().eval()
    with torch.no_grad():  # non-zero projection biases, as after training
        m.attn.in_proj_bias.copy_(torch.randn(48) * 0.5)
        m.attn.out_proj.bias.copy_(torch.randn(16) * 0.5)
    calib = [torch.randn(6, 3, 16) for _ in range(6)]
    x = torch.randn(6, 3, 16)
    weights = {name: tensor(p) for name, p in m.attn.named_parameters()}
    with torch.no_grad():
        want = m(x)
    m.qconfig = get_default_qconfig("qnnpack")
    prepare(m, inplace=True, prepare_custom_config_dict={
        "float_to_observed_custom_module_class": {nn.MultiheadAttention: nnqa.MultiheadAttention}})
    with torch.no_grad():
        for c in calib:
            m(c)
        m(x)
    obs = {"quant": qparams(m.quant)}
    for part in ("linear_Q", "linear_K", "linear_V", "out_proj", "quant_attn_output", "quant_attn_output_weights"):
        obs["attn." + part] = qparams(getattr(m.attn, part))
    convert(m, inplace=True, convert_custom_config_dict={
        "observed_to_quantized_custom_module_class": {nnqa.MultiheadAttention: nnq.MultiheadAttention}})
    with torch.no_grad():
        q = m.quant(x)
        y, w = m.attn(q, q, q, need_weights=True)
        deq = m(x)
    return {"weights": weights, "calib": [tensor(c) for c in calib], "x": tensor(x), "observed": obs,
            "float": tensor(want), "output": qtensor(y), "attn_weights": qtensor(w), "dequantized": tensor(deq)}


def main():
    golden = {"torch": torch.__version__, "engine": "qnnpack",
              "lstm": [lstm_case(1, 1), lstm_case(2, 2)], "attention": attn_case(3)}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(golden, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
