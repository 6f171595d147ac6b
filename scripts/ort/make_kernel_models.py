#!/usr/bin/python3
"""Builds the small ONNX models used to time ONNX Runtime's int8 and fp32
kernels on the shapes quanta's kernel benchmarks use (BENCHMARKS.md).

    /usr/bin/python3 scripts/ort/make_kernel_models.py OUTDIR

Needs Debian's python3-onnx and python3-numpy. The models get random
weights; only their timing matters.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1] if len(sys.argv) > 1 else "ort-models"
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(0)


def save(name, nodes, inputs, outputs, inits):
    g = helper.make_graph(nodes, name, inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, os.path.join(out, name + ".onnx"))


for (m, n, k) in [(1, 768, 768), (1, 3072, 768), (16, 768, 768), (128, 1024, 1024), (512, 512, 512), (1024, 1024, 1024)]:
    tag = f"{m}x{n}x{k}"
    b = numpy_helper.from_array(rng.integers(-128, 128, (k, n), dtype=np.int8), "B")
    save("matmulinteger_" + tag,
         [helper.make_node("MatMulInteger", ["A", "B", "azp"], ["Y"])],
         [helper.make_tensor_value_info("A", TensorProto.UINT8, [m, k])],
         [helper.make_tensor_value_info("Y", TensorProto.INT32, [m, n])],
         [b, numpy_helper.from_array(np.array(3, dtype=np.uint8), "azp")])
    w = numpy_helper.from_array(rng.standard_normal((k, n)).astype(np.float32), "W")
    save("matmul_" + tag,
         [helper.make_node("MatMul", ["A", "W"], ["Y"])],
         [helper.make_tensor_value_info("A", TensorProto.FLOAT, [m, k])],
         [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])],
         [w])

for (name, c, h, oc, kk, groups, pad) in [("3x3_64x64_56", 64, 56, 64, 3, 1, 1), ("3x3_128x128_28", 128, 28, 128, 3, 1, 1),
                                          ("1x1_256x256_14", 256, 14, 256, 1, 1, 0), ("dw3x3_144_56", 144, 56, 144, 3, 144, 1)]:
    wshape = (oc, c // groups, kk, kk)
    wq = numpy_helper.from_array(rng.integers(-127, 128, wshape, dtype=np.int8), "w")
    inits = [wq,
             numpy_helper.from_array(np.array(0.02, dtype=np.float32), "xs"), numpy_helper.from_array(np.array(3, dtype=np.uint8), "xz"),
             numpy_helper.from_array(np.array(0.01, dtype=np.float32), "ws"), numpy_helper.from_array(np.array(0, dtype=np.int8), "wz"),
             numpy_helper.from_array(np.array(0.05, dtype=np.float32), "ys"), numpy_helper.from_array(np.array(5, dtype=np.uint8), "yz"),
             numpy_helper.from_array(rng.integers(-1000, 1000, (oc,), dtype=np.int32), "bias")]
    attrs = dict(kernel_shape=[kk, kk], pads=[pad] * 4, group=groups)
    save("qlinearconv_" + name,
         [helper.make_node("QLinearConv", ["X", "xs", "xz", "w", "ws", "wz", "ys", "yz", "bias"], ["Y"], **attrs)],
         [helper.make_tensor_value_info("X", TensorProto.UINT8, [1, c, h, h])],
         [helper.make_tensor_value_info("Y", TensorProto.UINT8, None)], inits)
    wf = numpy_helper.from_array(rng.standard_normal(wshape).astype(np.float32), "w")
    bf = numpy_helper.from_array(rng.standard_normal((oc,)).astype(np.float32), "b")
    save("conv_" + name,
         [helper.make_node("Conv", ["X", "w", "b"], ["Y"], **attrs)],
         [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, c, h, h])],
         [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], [wf, bf])
print("wrote models to", out)
