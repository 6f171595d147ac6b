#!/usr/bin/python3
"""Writes ops/testdata/upsample_golden.json: PyTorch 1.13's float
torch.nn.functional.interpolate in modes "nearest" and "bilinear"
(align_corners False and True), outputs and input gradients, for up- and
downsampling by size and by (non-integer) scale factor.

Each case is computed twice, in child processes running PyTorch's default
(scalar, no FMA) kernels and its AVX2 kernels (ATEN_CPU_CAPABILITY=default
and avx2): GCC contracts some of the AVX2 build's multiply-adds into fused
multiply-adds, so the two differ in the last bits. quanta computes the
former exactly.

Regenerate with Debian's PyTorch (apt-get install python3-torch):
    /usr/bin/python3 scripts/golden_upsample.py
The Go test ops/upsample_test.go reads the file; CI needs no Python.
"""
import json
import os
import random
import subprocess
import sys

OUT = os.path.join(os.path.dirname(__file__), "..", "ops", "testdata", "upsample_golden.json")

# (mode, input shape, size or None, scale factor or None, align_corners)
CASES = []
for shape, size, scale in [
    ((1, 2, 4, 5), None, (2.0, 2.0)),      # doubling shortcut
    ((1, 2, 5, 3), None, (1.5, 2.7)),
    ((2, 3, 7, 9), (3, 4), None),          # downsampling by size
    ((1, 1, 5, 6), (11, 13), None),
    ((1, 2, 6, 6), None, (0.5, 0.75)),     # downsampling by factor
    ((1, 2, 3, 4), None, (1.2, 1.0)),      # equal size despite a factor
    ((1, 2, 4, 4), None, (2.5, 3.3)),
    ((1, 3, 1, 1), (3, 4), None),
    ((1, 1, 3, 4), None, (1.2, 1.0)),      # C=1: nearest_idx's shortcut
    ((1, 2, 1, 5), None, (1.0, 2.1)),      # doubled size despite a factor
    ((1, 1, 1, 5), None, (1.0, 2.1)),
]:
    CASES.append(("nearest", shape, size, scale, None))
for ac in (False, True):
    for shape, size, scale in [
        ((2, 3, 5, 7), None, (1.7, 2.3)),
        ((1, 1, 5, 7), None, (1.7, 2.3)),  # C=1: PyTorch's channels-last kernel
        ((1, 4, 9, 6), (4, 11), None),
        ((1, 3, 1, 1), (3, 4), None),      # H=W=1: channels-last kernel too
        ((1, 2, 4, 4), None, (2.0, 2.0)),
        ((1, 2, 6, 8), None, (0.5, 0.6)),
        ((1, 2, 3, 4), None, (1.2, 1.0)),
        ((1, 2, 5, 5), (1, 1), None),
        ((1, 16, 4, 3), (7, 5), None),
        ((1, 2, 2, 9), (5, 4), None),
        ((2, 1, 3, 3), (8, 2), None),
        ((1, 3, 4, 5), (1, 1), None),
        ((1, 2, 1, 6), (3, 6), None),
    ]:
        CASES.append(("bilinear", shape, size, scale, ac))


def f32(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def compute():
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(1)
    # Inputs come from Python's own generator: torch.randn's kernels differ
    # between the two capabilities.
    rng = random.Random(5)

    def uniform(shape):
        n = 1
        for d in shape:
            n *= d
        return torch.tensor([rng.uniform(-2, 2) for _ in range(n)], dtype=torch.float32).reshape(shape)

    out = []
    for mode, shape, size, scale, ac in CASES:
        x = uniform(shape).requires_grad_(True)
        y = F.interpolate(x, size=size, scale_factor=scale, mode=mode, align_corners=ac)
        gy = uniform(y.shape)
        y.backward(gy)
        out.append({
            "mode": mode, "shape": list(shape), "size": list(size) if size else None,
            "scale": list(scale) if scale else None, "align_corners": bool(ac),
            "out_shape": list(y.shape), "x": f32(x), "gy": f32(gy), "y": f32(y), "gx": f32(x.grad),
        })
    return {"torch": torch.__version__, "capability": os.environ.get("ATEN_CPU_CAPABILITY"), "cases": out}


def encode(v):
    """JSON with float32 values written in 9 significant digits (enough to
    round-trip a float32), one case per line."""
    if isinstance(v, float):
        return "%.9g" % v
    if isinstance(v, list):
        sep = ",\n" if v and isinstance(v[0], dict) else ","
        return "[" + sep.join(encode(e) for e in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k) + ":" + encode(e) for k, e in v.items()) + "}"
    return json.dumps(v)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        json.dump(compute(), sys.stdout)
        return
    runs = {}
    for cap in ("default", "avx2"):
        env = dict(os.environ, ATEN_CPU_CAPABILITY=cap)
        res = subprocess.run([sys.executable, __file__, "--child"], env=env, check=True, capture_output=True, text=True)
        runs[cap] = json.loads(res.stdout)
    cases = runs["default"]["cases"]
    for c, a in zip(cases, runs["avx2"]["cases"]):
        assert c["x"] == a["x"] and c["gy"] == a["gy"]
        c["y_avx2"], c["gx_avx2"] = a["y"], a["gx"]
    with open(OUT, "w") as f:
        f.write(encode({"torch": runs["default"]["torch"], "cases": cases}) + "\n")
    diff = sum(c["y"] != c["y_avx2"] or c["gx"] != c["gx_avx2"] for c in cases)
    print(f"wrote {OUT}: {len(cases)} cases, {diff} differ between default and avx2 kernels")


if __name__ == "__main__":
    main()
