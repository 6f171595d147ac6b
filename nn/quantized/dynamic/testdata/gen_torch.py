# Writes the PyTorch 1.13 golden file of quanta's dynamic quantized modules
# (torch.ao.nn.quantized.dynamic on the qnnpack engine). Run from this
# directory with Debian's python3-torch:
#
#   /usr/bin/python3 gen_torch.py
#
# torch_modules.json holds, per case, the float module's state_dict, the
# inputs, and the outputs of the module torch.ao.quantization.quantize_dynamic
# made from it (default_dynamic_qconfig: per-tensor symmetric qint8 weights;
# per_channel_dynamic_qconfig for the per-channel case). Every float is a
# float32 value printed exactly.
import json

import numpy as np
import torch
import torch.nn as nn
import torch.nn.intrinsic as nni
from torch.ao.quantization import (default_dynamic_qconfig,
                                   per_channel_dynamic_qconfig,
                                   quantize_dynamic)

torch.manual_seed(0)
torch.backends.quantized.engine = "qnnpack"


def fl(t):
    return [float(v) for v in np.asarray(t.detach(), dtype=np.float32).reshape(-1)]


def state(m):
    return {k: dict(shape=list(v.shape), data=fl(v)) for k, v in m.state_dict().items()}


def tens(t):
    return dict(shape=list(t.shape), data=fl(t))


class LSTMNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 5, num_layers=2, bidirectional=True)
        self.fc = nn.Linear(10, 4)

    def forward(self, x, h0, c0):
        out, (h, c) = self.lstm(x, (h0, c0))
        return self.fc(out), h, c


class GRUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(6, 5, num_layers=2, bidirectional=True, batch_first=True)

    def forward(self, x, h0):
        return self.gru(x, h0)


cases = {}

# LSTM + Linear through quantize_dynamic.
net = LSTMNet().eval()
x = torch.randn(7, 3, 6) * 2
h0 = torch.randn(4, 3, 5) * 0.5
c0 = torch.randn(4, 3, 5) * 0.5
q = quantize_dynamic(net, {nn.LSTM, nn.Linear}, dtype=torch.qint8)
assert "DynamicQuantized" in type(q.lstm).__module__ or "dynamic" in type(q.lstm).__module__
y, h, c = q(x, h0, c0)
cases["lstm_linear"] = dict(state=state(net), x=tens(x), h0=tens(h0), c0=tens(c0), y=tens(y), h=tens(h), c=tens(c),
                            lstm_out=tens(q.lstm(x, (h0, c0))[0]))

# GRU, batch first, bidirectional, two layers.
g = GRUNet().eval()
x = torch.randn(3, 7, 6) * 2
h0 = torch.randn(4, 3, 5) * 0.5
qg = quantize_dynamic(g, {nn.GRU}, dtype=torch.qint8)
y, h = qg(x, h0)
cases["gru"] = dict(state=state(g), x=tens(x), h0=tens(h0), y=tens(y), h=tens(h))

# Cells.
for name, cell in [("lstm_cell", nn.LSTMCell(6, 5)), ("gru_cell", nn.GRUCell(6, 5)),
                   ("rnn_cell_tanh", nn.RNNCell(6, 5)), ("rnn_cell_relu", nn.RNNCell(6, 5, nonlinearity="relu"))]:
    wrap = nn.Sequential(cell).eval()
    qc = quantize_dynamic(wrap, {type(cell)}, dtype=torch.qint8)[0]
    x = torch.randn(3, 6) * 2
    h0 = torch.randn(3, 5) * 0.5
    d = dict(state=state(cell), x=tens(x), h0=tens(h0))
    if name == "lstm_cell":
        c0 = torch.randn(3, 5) * 0.5
        h, c = qc(x, (h0, c0))
        d.update(c0=tens(c0), h=tens(h), c=tens(c))
    else:
        d.update(h=tens(qc(x, h0)))
    cases[name] = d

# Linear per channel, and the fused LinearReLU.
lin = nn.Sequential(nn.Linear(9, 6)).eval()
x = torch.randn(4, 9) * 3
ql = quantize_dynamic(lin, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
cases["linear_per_channel"] = dict(state=state(lin[0]), x=tens(x), y=tens(ql(x)))
lr = nn.Sequential(nni.LinearReLU(nn.Linear(9, 6), nn.ReLU())).eval()
qlr = quantize_dynamic(lr, {nni.LinearReLU: default_dynamic_qconfig}, dtype=torch.qint8)
assert "LinearReLU" in type(qlr[0]).__name__, type(qlr[0])
cases["linear_relu"] = dict(state=state(lr[0][0]), x=tens(x), y=tens(qlr(x)))

with open("torch_modules.json", "w") as f:
    json.dump(dict(torch=torch.__version__, engine="qnnpack", cases=cases), f, separators=(",", ":"))
