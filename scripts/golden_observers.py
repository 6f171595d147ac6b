#!/usr/bin/python3
"""Writes quant/observer/testdata/golden_observers.json: PyTorch 1.13's
observers (MinMax, MovingAverageMinMax, PerChannelMinMax,
MovingAveragePerChannelMinMax, Histogram, FixedQParams) run on varied inputs
with every scheme, plus the ATen primitives whose rounding the histogram
observer depends on (sum, cumsum, floor division, histc, linspace).

Regenerate (the -update step for this package) with Debian's PyTorch:
    /usr/bin/python3 scripts/golden_observers.py
The Go test quant/observer/golden_test.go reads the file; CI needs no Python.
Inputs are generated here with a fixed seed and stored in the file (float32,
base64 little-endian), so the Go side never regenerates them.

HistogramObserver: PyTorch 1.13 bins with histc(min=int(min), max=int(max)),
bounds truncated toward zero, and restarts from scratch when its histogram
holds a single value. quanta fixes both. Every histogram case is therefore
run twice: with stock PyTorch ("stock") and with FixedHistogramObserver below,
which is PyTorch's own code with only those two defects corrected
("expect"). "stock_matches" records whether the two agree bit for bit, i.e.
whether the defects did not trigger on that input; the Go test requires
equality with "expect" always and with "stock" whenever stock_matches.
"""
import base64
import hashlib
import json
import os
import warnings

import numpy as np
import torch
from torch.ao.quantization.observer import (
    FixedQParamsObserver,
    HistogramObserver,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
    PerChannelMinMaxObserver,
)

warnings.filterwarnings("ignore")
torch.manual_seed(0)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "quant", "observer", "testdata", "golden_observers.json")
RNG = np.random.default_rng(20240611)


def b64(a):
    a = np.ascontiguousarray(np.asarray(a, dtype="<f4"))
    return base64.b64encode(a.tobytes()).decode()


def f32list(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


INPUTS = {}


def add(name, arr):
    arr = np.asarray(arr, dtype=np.float32)
    INPUTS[name] = arr
    return name


def with_int_extremes(a):
    """a with its min and max moved out to the nearest integers, so int()
    truncation of the extremes changes nothing."""
    a = np.array(a, dtype=np.float32)
    a[np.argmin(a)] = np.floor(a.min())
    a[np.argmax(a)] = np.ceil(a.max())
    return a


def make_inputs():
    n = 1000
    add("normal", RNG.normal(size=n) * 2)
    add("heavy", RNG.standard_t(2, size=n) * 1.5)
    add("positive", RNG.uniform(0.5, 7, size=n))
    add("negative", -RNG.uniform(0.25, 5, size=n))
    add("constant", np.full(300, 7.25))
    add("constant_neg", np.full(50, -0.3))
    add("zeros", np.zeros(64))
    add("single", [3.7])
    add("single_neg", [-0.3])
    add("huge", RNG.normal(size=n) * 1e30)
    add("tiny_offset", 1 + RNG.normal(size=n) * 1e-6)
    add("tiny", RNG.normal(size=n) * 1e-20)
    add("relu", np.maximum(RNG.normal(size=n), 0))
    add("outlier", np.concatenate([RNG.normal(size=n - 1), [50.0]]))
    add("uniform_wide", RNG.uniform(-2.7, 3.9, size=n))
    # Inputs whose extremes are integers (HistogramObserver stock parity).
    add("int_normal", with_int_extremes(RNG.normal(size=n) * 1.5))
    add("int_heavy", with_int_extremes(RNG.standard_t(3, size=n)))
    add("int_positive", with_int_extremes(RNG.gamma(2.0, 1.0, size=n)))
    add("int_wide", with_int_extremes(RNG.normal(size=n) * 3))
    # Sequences with changing ranges whose combined widths are integer
    # multiples of earlier ones (no truncation in stock PyTorch).
    a = RNG.normal(size=n) * 0.6
    a = np.clip(a, -1.9, 1.9)
    a[0], a[1] = -2, 2
    add("seq_a1", a)  # [-2, 2]
    b = RNG.uniform(-3, 5, size=n)
    b[0], b[1] = -3, 5
    add("seq_a2", b)  # [-3, 5]: width 8 = 2*4
    c = RNG.normal(size=n)
    c = np.clip(c, -2.5, 2.5)
    c[0], c[1] = -2, 3
    add("seq_a3", c)  # inside [-3, 5]
    d = RNG.uniform(0, 3, size=n)
    d[0], d[1] = 0, 3
    add("seq_b1", d)  # [0, 3]
    e = RNG.normal(size=n) + 2
    e = np.clip(e, -0.9, 4.9)
    e[0], e[1] = -1, 5
    add("seq_b2", e)  # [-1, 5]: width 6 = 2*3, offset not aligned
    f = RNG.standard_t(2, size=n)
    f = np.clip(f, -6.9, 10.9)
    f[0], f[1] = -7, 11
    add("seq_b3", f)  # [-7, 11]: width 18 = 3*6
    add("seq_b4", RNG.uniform(-1, 1, size=n))  # inside
    # Non-integer ranges (fixed vs stock differ).
    add("seq_c1", RNG.normal(size=n) * 0.7 + 0.3)
    add("seq_c2", RNG.normal(size=n) * 2.2 - 0.4)
    add("seq_c3", RNG.standard_t(2, size=n) * 3)
    add("seq_c4", RNG.uniform(0.1, 0.4, size=n))
    add("pos_small", RNG.uniform(0.1, 0.9, size=500))
    add("pos_big", RNG.uniform(0.0, 40.0, size=500))
    # Per-channel inputs.
    w = RNG.normal(size=(8, 3, 5, 5)) * RNG.uniform(0.01, 3, size=(8, 1, 1, 1))
    w[3] = np.abs(w[3])
    w[5] = -np.abs(w[5])
    w[6] = 0.0
    add("conv_w", w)
    w2 = RNG.normal(size=(8, 3, 5, 5)) * RNG.uniform(0.01, 5, size=(8, 1, 1, 1))
    add("conv_w2", w2)
    add("act4d", RNG.normal(size=(2, 6, 4, 4)) * RNG.uniform(0.1, 4, size=(1, 6, 1, 1)) + RNG.normal(size=(1, 6, 1, 1)))
    add("act4d_b", RNG.normal(size=(3, 6, 4, 4)) * 2)
    add("emb", RNG.normal(size=(20, 16)) * RNG.uniform(0.05, 2, size=(20, 1)) + 0.5)
    add("emb_b", RNG.uniform(-1, 3, size=(20, 16)))
    add("lin", RNG.normal(size=(12, 7)) * 0.3)


def t(name):
    return torch.from_numpy(INPUTS[name].copy())


DT = {"quint8": torch.quint8, "qint8": torch.qint8, "qint32": torch.qint32, "quint4x2": torch.quint4x2}
QS = {
    "per_tensor_affine": torch.per_tensor_affine,
    "per_tensor_symmetric": torch.per_tensor_symmetric,
    "per_channel_affine": torch.per_channel_affine,
    "per_channel_symmetric": torch.per_channel_symmetric,
    "per_channel_affine_float_qparams": torch.per_channel_affine_float_qparams,
}


def kwargs(cfg):
    kw = {"dtype": DT[cfg.get("dtype", "quint8")], "qscheme": QS[cfg["qscheme"]]}
    for k in ("reduce_range", "quant_min", "quant_max", "eps", "ch_axis", "averaging_constant", "bins", "upsample_rate"):
        if k in cfg:
            kw[k] = cfg[k]
    return kw


class FixedHistogramObserver(HistogramObserver):
    """PyTorch 1.13's HistogramObserver.forward with its two defects fixed:
    histc gets the true float bounds, and a histogram holding one value is
    kept (its count added at that value's bin) rather than discarded."""

    def forward(self, x_orig):
        if x_orig.numel() == 0:
            return x_orig
        x = x_orig.detach()
        min_val = self.min_val
        max_val = self.max_val
        same_values = min_val.item() == max_val.item()
        is_uninitialized = min_val == float("inf") and max_val == float("-inf")
        if is_uninitialized:
            min_val, max_val = torch.aminmax(x)
            self.min_val.resize_(min_val.shape)
            self.min_val.copy_(min_val)
            self.max_val.resize_(max_val.shape)
            self.max_val.copy_(max_val)
            torch.histc(x, self.bins, min=float(min_val), max=float(max_val), out=self.histogram)
        elif same_values:
            new_min, new_max = torch.aminmax(x)
            combined_min = torch.min(new_min, min_val)
            combined_max = torch.max(new_max, max_val)
            point = min_val.reshape(1).clone()
            h = torch.histc(x, self.bins, min=float(combined_min), max=float(combined_max))
            h += torch.histc(point, self.bins, min=float(combined_min), max=float(combined_max)) * torch.sum(self.histogram)
            self.histogram.copy_(h)
            self.min_val.copy_(combined_min)
            self.max_val.copy_(combined_max)
        else:
            new_min, new_max = torch.aminmax(x)
            combined_min = torch.min(new_min, min_val)
            combined_max = torch.max(new_max, max_val)
            (combined_min, combined_max, downsample_rate, start_idx) = self._adjust_min_max(
                combined_min, combined_max, self.upsample_rate)
            combined_histogram = torch.histc(x, self.bins, min=float(combined_min), max=float(combined_max))
            if combined_min == min_val and combined_max == max_val:
                combined_histogram += self.histogram
            else:
                combined_histogram = self._combine_histograms(
                    combined_histogram, self.histogram, self.upsample_rate, downsample_rate, start_idx, self.bins)
            self.histogram.detach_().resize_(combined_histogram.shape)
            self.histogram.copy_(combined_histogram)
            self.min_val.detach_().resize_(combined_min.shape)
            self.min_val.copy_(combined_min)
            self.max_val.detach_().resize_(combined_max.shape)
            self.max_val.copy_(combined_max)
        return x_orig


def qp(obs):
    s, z = obs.calculate_qparams()
    zf = z.dtype.is_floating_point
    return f32list(s), ([float(v) for v in z.reshape(-1).tolist()] if zf else [int(v) for v in z.reshape(-1).tolist()])


CASES = []


def run_case(kind, cfg, batches, name, full_histogram=False):
    cls = {
        "MinMaxObserver": MinMaxObserver,
        "MovingAverageMinMaxObserver": MovingAverageMinMaxObserver,
        "PerChannelMinMaxObserver": PerChannelMinMaxObserver,
        "MovingAveragePerChannelMinMaxObserver": MovingAveragePerChannelMinMaxObserver,
        "HistogramObserver": HistogramObserver,
    }[kind]
    case = {"name": name, "observer": kind, "config": cfg, "batches": batches}
    try:
        obs = cls(**kwargs(cfg))
    except (NotImplementedError, AssertionError) as e:
        case["error"] = type(e).__name__
        CASES.append(case)
        return
    stock_error = None
    for b in batches:
        try:
            obs(t(b))
        except RuntimeError as e:  # stock HistogramObserver: int() of a huge bound
            if kind != "HistogramObserver":
                raise
            stock_error = str(e)
            break
    if kind == "HistogramObserver":
        fixed = FixedHistogramObserver(**kwargs(cfg))
        for b in batches:
            fixed(t(b))
        s, z = qp(fixed)
        hist = np.ascontiguousarray(fixed.histogram.numpy(), dtype="<f4")
        case["expect"] = {"scale": s, "zero_point": z, "min_val": [float(fixed.min_val)], "max_val": [float(fixed.max_val)],
                          "histogram_sha256": hashlib.sha256(hist.tobytes()).hexdigest()}
        if full_histogram:
            case["expect"]["histogram"] = b64(hist)
        if stock_error is not None:
            case["stock"] = {"error": stock_error}
            case["stock_matches"] = False
            CASES.append(case)
            return
        s2, z2 = qp(obs)
        case["stock"] = {"scale": s2, "zero_point": z2, "min_val": [float(obs.min_val)], "max_val": [float(obs.max_val)]}
        case["stock_matches"] = bool(
            torch.equal(obs.histogram, fixed.histogram) and float(obs.min_val) == float(fixed.min_val)
            and float(obs.max_val) == float(fixed.max_val) and s == s2 and z == z2)
    else:
        s, z = qp(obs)
        case["expect"] = {"scale": s, "zero_point": z, "min_val": f32list(obs.min_val), "max_val": f32list(obs.max_val)}
    CASES.append(case)


PER_TENSOR = [
    {"qscheme": "per_tensor_affine"},
    {"qscheme": "per_tensor_affine", "reduce_range": True},
    {"qscheme": "per_tensor_affine", "dtype": "qint8"},
    {"qscheme": "per_tensor_affine", "dtype": "qint8", "reduce_range": True},
    {"qscheme": "per_tensor_symmetric", "dtype": "qint8"},
    {"qscheme": "per_tensor_symmetric", "dtype": "quint8"},
    {"qscheme": "per_tensor_symmetric", "dtype": "qint8", "reduce_range": True},
    {"qscheme": "per_tensor_symmetric", "dtype": "qint8", "quant_min": -127, "quant_max": 127, "eps": 2 ** -12},
    {"qscheme": "per_tensor_affine", "quant_min": 0, "quant_max": 15},
    {"qscheme": "per_tensor_affine", "quant_min": 0, "quant_max": 255, "reduce_range": True},
    {"qscheme": "per_tensor_symmetric", "quant_min": 0, "quant_max": 100},
    {"qscheme": "per_tensor_symmetric", "dtype": "qint8", "quant_min": -127, "quant_max": 127, "reduce_range": True},
    {"qscheme": "per_tensor_affine", "dtype": "qint32"},
    {"qscheme": "per_tensor_symmetric", "dtype": "qint32"},
    {"qscheme": "per_tensor_affine", "eps": 0.01},
]

PER_CHANNEL = [
    {"qscheme": "per_channel_affine"},
    {"qscheme": "per_channel_affine", "reduce_range": True},
    {"qscheme": "per_channel_symmetric", "dtype": "qint8"},
    {"qscheme": "per_channel_symmetric", "dtype": "quint8"},
    {"qscheme": "per_channel_symmetric", "dtype": "qint8", "quant_min": -127, "quant_max": 127, "eps": 2 ** -12},
    {"qscheme": "per_channel_affine", "dtype": "qint8"},
    {"qscheme": "per_channel_affine_float_qparams"},
    {"qscheme": "per_channel_affine_float_qparams", "dtype": "quint4x2"},
    {"qscheme": "per_channel_affine", "quant_min": 0, "quant_max": 15},
]

SINGLE = ["normal", "heavy", "positive", "negative", "constant", "constant_neg", "zeros", "single", "single_neg", "huge",
          "tiny_offset", "tiny", "relu", "outlier", "uniform_wide"]


def cfgname(cfg):
    return ",".join(f"{k}={v}" for k, v in sorted(cfg.items()))


def observer_cases():
    for cfg in PER_TENSOR:
        for x in SINGLE:
            run_case("MinMaxObserver", cfg, [x], f"minmax/{x}/{cfgname(cfg)}")
        run_case("MinMaxObserver", cfg, ["normal", "huge", "positive"], f"minmax/seq/{cfgname(cfg)}")
    for c in (None, 0.5, 1.0, 0.3):
        for cfg in (PER_TENSOR[0], PER_TENSOR[4], PER_TENSOR[1], PER_TENSOR[12]):
            cc = dict(cfg)
            if c is not None:
                cc["averaging_constant"] = c
            for seq in (["normal", "positive", "negative", "heavy"], ["constant", "relu", "tiny_offset"], ["single"], ["huge", "tiny"]):
                run_case("MovingAverageMinMaxObserver", cc, seq, f"movavg/{'+'.join(seq)}/{cfgname(cc)}")
    for cfg in PER_CHANNEL:
        for ax, seqs in ((0, [["conv_w"], ["conv_w", "conv_w2"]]), (1, [["act4d"], ["act4d", "act4d_b"]]), (-1, [["lin"]]),
                         (0, [["emb"], ["emb", "emb_b"]])):
            cc = dict(cfg)
            cc["ch_axis"] = ax
            for seq in seqs:
                run_case("PerChannelMinMaxObserver", cc, seq, f"perchannel/{'+'.join(seq)}/{cfgname(cc)}")
                for c in (None, 0.25):
                    c2 = dict(cc)
                    if c is not None:
                        c2["averaging_constant"] = c
                    run_case("MovingAveragePerChannelMinMaxObserver", c2, seq + ["conv_w"] if seq[0].startswith("conv") else seq,
                             f"movavg_perchannel/{'+'.join(seq)}/{cfgname(c2)}")
    # Configurations PyTorch rejects.
    for kind, cfg in (("MinMaxObserver", {"qscheme": "per_tensor_symmetric", "reduce_range": True}),
                      ("MinMaxObserver", {"qscheme": "per_channel_affine"}),
                      ("MinMaxObserver", {"qscheme": "per_tensor_affine", "quant_min": 1, "quant_max": 10}),
                      ("MinMaxObserver", {"qscheme": "per_tensor_affine", "dtype": "qint8", "quant_min": -200, "quant_max": 100}),
                      ("PerChannelMinMaxObserver", {"qscheme": "per_tensor_affine"}),
                      ("PerChannelMinMaxObserver", {"qscheme": "per_tensor_symmetric"}),
                      ("PerChannelMinMaxObserver", {"qscheme": "per_channel_symmetric", "reduce_range": True}),
                      ("HistogramObserver", {"qscheme": "per_channel_affine"})):
        run_case(kind, cfg, ["normal"], f"error/{kind}/{cfgname(cfg)}")


HIST_CFGS = [
    {"qscheme": "per_tensor_affine"},
    {"qscheme": "per_tensor_affine", "reduce_range": True},
    {"qscheme": "per_tensor_symmetric", "dtype": "qint8"},
    {"qscheme": "per_tensor_symmetric", "dtype": "quint8"},
    {"qscheme": "per_tensor_affine", "dtype": "qint8"},
    {"qscheme": "per_tensor_affine", "bins": 256, "upsample_rate": 16},
    {"qscheme": "per_tensor_affine", "bins": 2047},
    {"qscheme": "per_tensor_affine", "dtype": "qint32"},
]

HIST_SEQS = [
    ["int_normal"], ["int_heavy"], ["int_positive"], ["int_wide"], ["constant"], ["zeros"], ["single"],
    ["seq_a1", "seq_a2", "seq_a3"], ["seq_b1", "seq_b2", "seq_b3", "seq_b4"], ["seq_a1", "seq_a1"],
    ["pos_small"], ["normal"], ["heavy"], ["positive"], ["negative"], ["huge"], ["tiny_offset"], ["relu"],
    ["outlier"], ["uniform_wide"], ["seq_c1", "seq_c2", "seq_c3", "seq_c4"], ["pos_small", "pos_big"],
    ["constant", "normal"], ["constant", "constant"], ["single", "seq_b2", "single_neg"], ["seq_c4", "outlier"],
]


def histogram_cases():
    for cfg in HIST_CFGS:
        seqs = HIST_SEQS if cfg == HIST_CFGS[0] else HIST_SEQS[:12] + [HIST_SEQS[20]]
        for seq in seqs:
            run_case("HistogramObserver", cfg, seq, f"histogram/{'+'.join(seq)}/{cfgname(cfg)}",
                     full_histogram=cfg in (HIST_CFGS[0], HIST_CFGS[5]))


def fixed_cases():
    out = []
    for scale, zp, dt, qmin, qmax in ((1.0 / 256.0, 0, "quint8", 0, 255), (2.0 / 256.0, 128, "quint8", 0, 255),
                                      (2.0 / 256.0, 0, "qint8", -128, 127), (0.1, 3, "quint8", None, None)):
        kw = {"dtype": DT[dt]}
        if qmin is not None:
            kw["quant_min"], kw["quant_max"] = qmin, qmax
        o = FixedQParamsObserver(scale, zp, **kw)
        o(t("normal"))
        s, z = o.calculate_qparams()
        out.append({"scale_in": scale, "zero_point_in": zp, "dtype": dt, "quant_min": o.quant_min, "quant_max": o.quant_max,
                    "scale": float(s), "zero_point": int(z)})
    return out


def primitives():
    p = {"sum": [], "cumsum": [], "floor_div": [], "histc": [], "linspace": []}
    for n in (1, 3, 7, 8, 9, 15, 31, 32, 33, 100, 255, 256, 257, 1000, 2047, 2048, 2049, 4096, 5000, 9000):
        x = (RNG.standard_t(2, size=n) * 10 ** RNG.uniform(-3, 3, size=n)).astype(np.float32)
        p["sum"].append({"x": b64(x), "sum": float(torch.sum(torch.from_numpy(x)))})
    for n in (10, 2048):
        x = (np.abs(RNG.normal(size=n)) * 1000).astype(np.float32)
        p["cumsum"].append({"x": b64(x), "cumsum": b64(torch.cumsum(torch.from_numpy(x), 0).numpy())})
    a = (RNG.normal(size=4000) * 10 ** RNG.uniform(-3, 3, size=4000)).astype(np.float32)
    a[:8] = [0.0, -0.0, 1.5, -1.5, 3.0, -3.0, 7.0, -7.0]
    p["floor_div_a"] = b64(a)
    for b in (0.1, 0.37, 2.0, 1e-3, 0.5):
        r = torch.div(torch.from_numpy(a), b, rounding_mode="floor")
        p["floor_div"].append({"b": b, "out": b64(r.numpy())})
    for bins, lo, hi in ((2048, -2.5, 3.25), (2047, -1.1, 0.9), (15, 0.3, 0.9), (256, -7, 11), (31, -1e-3, 2e-3),
                         (2048, 0.0, 0.0), (100, 5.0, 5.0)):
        x = (RNG.normal(size=3000) * max(abs(lo), abs(hi), 1) * 0.7).astype(np.float32)
        x[:3] = [lo, hi, (lo + hi) / 2]
        h = torch.histc(torch.from_numpy(x), bins, min=lo, max=hi)
        p["histc"].append({"x": b64(x), "bins": bins, "min": lo, "max": hi, "hist": b64(h.numpy())})
    for steps in (16, 32, 256, 2048):
        for _ in range(200):
            lo = float(np.float32(RNG.normal() * 3))
            hi = float(np.float32(lo + abs(RNG.normal() * 5) + 0.1))
            last = float(torch.linspace(lo, hi, steps)[-1])
            p["linspace"].append({"start": lo, "end": hi, "steps": steps, "last": last})
    return p


def main():
    make_inputs()
    observer_cases()
    histogram_cases()
    doc = {
        "torch_version": torch.__version__,
        "inputs": {k: {"shape": list(v.shape), "data": b64(v)} for k, v in INPUTS.items()},
        "cases": CASES,
        "fixed_qparams": fixed_cases(),
        "primitives": primitives(),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    hist = [c for c in CASES if c["observer"] == "HistogramObserver" and "expect" in c]
    print(f"wrote {OUT}: {len(CASES)} cases ({len(hist)} histogram, "
          f"{sum(c['stock_matches'] for c in hist)} where stock PyTorch is unaffected by its defects)")


if __name__ == "__main__":
    main()
