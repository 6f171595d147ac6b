#!/usr/bin/python3
"""Writes npy/testdata/*.npy and *.npz with NumPy, for npy/golden_test.go.

Regenerate with Debian's NumPy (1.24):
    /usr/bin/python3 scripts/golden_npy.py
CI needs no Python: the files are committed. The values are simple
formulas and special values that the Go test states independently, so a
reading error cannot hide behind a regenerated file. Files written by plain
np.save are also compared byte for byte with npy.Write's output.
"""
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "npy", "testdata")

F32_SPECIAL = [0.0, -0.0, 1.5, -2.25, np.inf, -np.inf, np.nan, 1e-45,
               3.4028235e38, 1.0 / 3.0, -7.0, 65504.0]
F64_VALUES = [0.1, 1.0 / 3.0, -2.5, 1e300, -1e300, 1e-50, -1e-50, 3.4028235677973366e38,
              np.inf, 16777217.0, 2.0**-149, 0.0]


def save(name, arr, **kw):
    path = os.path.join(OUT, name + ".npy")
    if kw:
        with open(path, "wb") as f:
            np.lib.format.write_array(f, arr, **kw)
    else:
        np.save(path, arr)


def main():
    os.makedirs(OUT, exist_ok=True)
    # One file per dtype quanta reads natively, little-endian, version 1.0.
    save("f4", np.array(F32_SPECIAL, dtype="<f4").reshape(3, 4))
    save("i8", np.array([0, 1, -1, 2**63 - 1, -2**63, 1234567890123], dtype="<i8").reshape(2, 3))
    save("i4", np.array([0, 1, -1, 2**31 - 1, -2**31, 123456], dtype="<i4").reshape(3, 2))
    save("u1", np.arange(0, 256, 5, dtype="|u1").reshape(52, 1))
    save("i1", np.array([-128, -1, 0, 1, 127], dtype="|i1"))
    save("b1", np.array([[True, False, True], [False, False, True]]))
    # Shapes: 0-d, empty, one-dimensional with one element, a larger 3-d
    # float32 array of arange(24000) / 8 (exact in float32).
    save("scalar_f4", np.array(2.5, dtype="<f4"))
    save("empty_f4", np.zeros((0, 3), dtype="<f4"))
    save("one_i8", np.array([42], dtype="<i8"))
    save("arange_f4", (np.arange(24000, dtype="<f4") / 8).reshape(20, 30, 40))
    # Converted dtypes.
    save("f8", np.array(F64_VALUES, dtype="<f8").reshape(2, 6))
    save("f2", np.array([0.0, -0.0, 1.0, -2.0, 65504.0, 6.1e-5, 5.96e-8, np.inf, -np.inf, np.nan],
                        dtype="<f2"))
    save("i2", np.array([-32768, -1, 0, 1, 32767], dtype="<i2"))
    save("u2", np.array([0, 1, 65535], dtype="<u2"))
    save("u4", np.array([0, 1, 4294967295], dtype="<u4"))
    # Big-endian.
    save("be_f4", np.array([1.5, -2.0, np.inf, 1e-45], dtype=">f4").reshape(2, 2))
    save("be_i8", np.array([1, -2, 2**40 + 3], dtype=">i8"))
    save("be_f8", np.array([0.1, -3.0], dtype=">f8"))
    save("be_i4", np.array([7, -8], dtype=">i4"))
    # Other format versions.
    save("v2_i4", np.array([[1, 2, 3], [4, 5, 6]], dtype="<i4"), version=(2, 0))
    save("v3_f4", np.array([1.0, 2.0], dtype="<f4"), version=(3, 0))
    # Rejected: Fortran order, a structured dtype, a string dtype.
    save("fortran_f4", np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3)))
    save("structured", np.zeros(2, dtype=[("a", "<i4"), ("b", "<f4")]))
    save("unicode", np.array(["ab", "c"]))
    # Archives: savez_compressed and savez, keyword order kept.
    arrays = dict(
        weight=np.array([[1.0, -2.0], [0.5, 0.25]], dtype="<f4"),
        labels=np.array([3, 1, 4, 1, 5], dtype="<i8"),
        mask=np.array([True, False]),
        scalar=np.array(-7, dtype="<i4"),
        empty=np.zeros((2, 0), dtype="|u1"),
        pixels=np.arange(0, 42, 7, dtype="|u1").reshape(2, 3),
    )
    np.savez_compressed(os.path.join(OUT, "compressed.npz"), **arrays)
    np.savez(os.path.join(OUT, "stored.npz"), np.array([1.0, 2.0], dtype="<f4"), b=np.array([9], dtype="|i1"))


if __name__ == "__main__":
    main()
