#!/usr/bin/env python3
"""OpenBLAS anchor for BenchmarkSgemm: times float32 numpy.dot on the same
shapes, one thread, and prints GFLOP/s (and GB/s of B for single-row
products), the median of several repeats.

Run with Debian's numpy on OpenBLAS (python3-numpy, libopenblas0-pthread,
libblas.so.3 pointing at openblas-pthread via update-alternatives):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 \
        /usr/bin/python3 scripts/bench_openblas.py

The script checks that the BLAS loaded into the process is OpenBLAS and
prints its build configuration.
"""

import ctypes
import os
import statistics
import sys
import time

import numpy as np

SHAPES = [(512, 512, 512), (1024, 1024, 1024), (1, 3072, 768), (1, 768, 768)]
REPEATS = 7


def loaded_blas():
    """Return the path of the OpenBLAS library mapped into this process."""
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if ".so" in line}
    blas = sorted(p for p in paths if "blas" in p)
    for p in blas:
        if "openblas" in p:
            return p, blas
    return None, blas


def openblas_config(path):
    lib = ctypes.CDLL(path)
    lib.openblas_get_config.restype = ctypes.c_char_p
    lib.openblas_get_corename.restype = ctypes.c_char_p
    lib.openblas_get_num_threads.restype = ctypes.c_int
    return (lib.openblas_get_config().decode(), lib.openblas_get_corename().decode(),
            lib.openblas_get_num_threads())


def bench(f, flops_per_call):
    """Median GFLOP/s and seconds per call of f over REPEATS timed batches."""
    f()
    t = time.perf_counter()
    f()
    once = time.perf_counter() - t
    inner = max(1, int(0.2 / max(once, 1e-9)))
    secs = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        for _ in range(inner):
            f()
        secs.append((time.perf_counter() - t) / inner)
    s = statistics.median(secs)
    return flops_per_call / s / 1e9, s


def main():
    rng = np.random.default_rng(1)
    # Load BLAS by running one product before inspecting the process.
    np.dot(np.ones((4, 4), np.float32), np.ones((4, 4), np.float32))
    path, all_blas = loaded_blas()
    if path is None:
        sys.exit("numpy is not using OpenBLAS (loaded: %s); select openblas-pthread with "
                 "update-alternatives --config libblas.so.3-x86_64-linux-gnu" % all_blas)
    config, core, threads = openblas_config(path)
    print("numpy %s, %s" % (np.__version__, path))
    print("OpenBLAS: %s; core %s; threads %d" % (config, core, threads))
    if os.environ.get("OPENBLAS_NUM_THREADS") != "1":
        print("warning: OPENBLAS_NUM_THREADS is not 1")
    for m, n, k in SHAPES:
        a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
        b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
        w = np.ascontiguousarray(b.T)  # n×k, a linear layer's weight
        c = np.empty((m, n), np.float32)
        flops = 2.0 * m * n * k
        cases = [("B k×n", lambda: np.dot(a, b, out=c)),
                 ("x·Wᵀ (W n×k)", lambda: np.dot(a, w.T, out=c))]
        for name, f in cases:
            gflops, s = bench(f, flops)
            line = "sgemm %dx%dx%d %-13s %8.1f GFLOP/s  %9.1f us" % (m, n, k, name, gflops, s * 1e6)
            if m == 1:
                line += "  %6.1f GB/s" % (4.0 * k * n / s / 1e9)
            print(line)


if __name__ == "__main__":
    main()
