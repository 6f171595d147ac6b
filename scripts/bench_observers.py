#!/usr/bin/python3
"""Calibration speed of quanta's observers against PyTorch 1.13's, on the
same 1M-element tensor, in one run.

    /usr/bin/python3 scripts/bench_observers.py

It times PyTorch's observers (MinMaxObserver, PerChannelMinMaxObserver,
HistogramObserver's first observe and a range-widening observe, and
HistogramObserver.calculate_qparams) with 1 and 2 threads, writes the tensor
to a temporary file, runs quanta's BenchmarkObserve on that file
(QUANTA_BENCH_DATA) and prints elements/s for both and the ratio.
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import torch
from torch.ao.quantization.observer import HistogramObserver, MinMaxObserver, PerChannelMinMaxObserver

warnings.filterwarnings("ignore")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
N = 1 << 20
REPS = 30


def timeit(fn, setup=None, reps=REPS):
    """Median seconds of fn() over reps runs (setup() untimed before each)."""
    out = []
    for _ in range(reps + 2):
        arg = setup() if setup else None
        t0 = time.perf_counter()
        fn(arg)
        out.append(time.perf_counter() - t0)
    return statistics.median(out[2:])


def torch_times(x):
    half = x * 0.5
    pc = x.reshape(64, -1)
    res = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        mm = MinMaxObserver()
        res[("MinMax", threads)] = timeit(lambda _: mm(x))
        pco = PerChannelMinMaxObserver()
        res[("PerChannelMinMax", threads)] = timeit(lambda _: pco(pc))
        res[("HistogramFirst", threads)] = timeit(lambda _: HistogramObserver()(x))

        def seeded():
            h = HistogramObserver()
            h(half)
            return h
        res[("HistogramCombine", threads)] = timeit(lambda h: h(x), setup=seeded)
    h = HistogramObserver()
    h(x)
    res[("HistogramQParams", 0)] = timeit(lambda _: h.calculate_qparams(), reps=5)
    return res


def go_times(path):
    env = dict(os.environ, QUANTA_BENCH_DATA=path)
    cmd = ["go", "test", "-run", "^$", "-bench", "BenchmarkObserve", "-benchtime", f"{REPS}x", "./quant/observer/"]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    res = {}
    for line in out.splitlines():
        m = re.match(r"BenchmarkObserve/(\w+?)(?:/threads=(\d))?-\d+\s+\d+\s+([\d.]+) ns/op", line)
        if m:
            res[(m.group(1), int(m.group(2) or 0))] = float(m.group(3)) * 1e-9
    return res, out


def main():
    rng = np.random.default_rng(0)
    data = rng.standard_normal(N).astype("<f4")
    x = torch.from_numpy(data.copy())
    pt = torch_times(x)
    with tempfile.NamedTemporaryFile(suffix=".f32", delete=False) as f:
        f.write(data.tobytes())
        path = f.name
    try:
        gt, raw = go_times(path)
    finally:
        os.unlink(path)
    print(f"torch {torch.__version__}, {N} float32 elements, load average {os.getloadavg()[0]:.2f}")
    print(f"{'observer':<18}{'threads':>8}{'PyTorch Melem/s':>17}{'quanta Melem/s':>16}{'quanta/PyTorch':>16}")
    for key in sorted(pt, key=lambda k: (k[0], k[1])):
        if key not in gt:
            continue
        name, threads = key
        if name == "HistogramQParams":
            print(f"{name:<18}{'-':>8}{pt[key] * 1e3:>14.2f} ms{gt[key] * 1e3:>13.2f} ms{pt[key] / gt[key]:>15.2f}x")
            continue
        p, g = N / pt[key] / 1e6, N / gt[key] / 1e6
        print(f"{name:<18}{threads:>8}{p:>17.1f}{g:>16.1f}{g / p:>15.2f}x")
    if "-v" in sys.argv:
        print(raw)


if __name__ == "__main__":
    main()
