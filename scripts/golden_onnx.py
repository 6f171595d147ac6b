#!/usr/bin/python3
"""Writes onnx/testdata/node/reference.txt with the onnx Python package.

Regenerate with Debian's python3-onnx (1.12):
    /usr/bin/python3 scripts/golden_onnx.py
CI needs no Python: the file is committed. For every vendored ONNX node
test case it lists what the onnx package reads from model.onnx (opsets,
graph inputs and outputs with their types, initializers and constant values,
nodes with their inputs, outputs and attributes, subgraphs) and from each
test_data_set_0/*.pb (element type, dims, values). onnx/reference_test.go
prints the same text from quanta's import and ReadTensor and compares.

Floating-point values are printed as the bits of the float32 quanta holds
(float16, bfloat16 and double converted to float32 with NumPy, which rounds
to nearest even); types quanta cannot hold (strings, uint64,
complex) print as "unsupported".
"""
import glob
import os

import numpy as np
import onnx
from onnx import numpy_helper

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "onnx", "testdata", "node")

HELD = {onnx.TensorProto.FLOAT, onnx.TensorProto.UINT8, onnx.TensorProto.INT8, onnx.TensorProto.INT16, onnx.TensorProto.UINT16,
        onnx.TensorProto.INT32, onnx.TensorProto.INT64, onnx.TensorProto.BOOL, onnx.TensorProto.FLOAT16,
        onnx.TensorProto.DOUBLE, onnx.TensorProto.UINT32, onnx.TensorProto.BFLOAT16}
FLOATS = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16}


def f32bits(x):
    return "%08x" % np.array([x], dtype=np.float32).view(np.uint32)[0]


def tensor(t):
    dims = "[" + ",".join(str(d) for d in t.dims) + "]"
    if t.data_type not in HELD:
        return "%d %s unsupported" % (t.data_type, dims)
    a = numpy_helper.to_array(t).reshape(-1)
    if t.data_type in FLOATS:
        vals = [f32bits(v) for v in a.astype(np.float32)]
    elif t.data_type == onnx.TensorProto.BOOL:
        vals = ["1" if v else "0" for v in a]
    else:
        vals = [str(int(v)) for v in a]
    return "%d %s = %s" % (t.data_type, dims, " ".join(vals))


def vtype(tp):
    if not tp.HasField("tensor_type"):
        return "0 *"
    tt = tp.tensor_type
    if not tt.HasField("shape"):
        return "%d *" % tt.elem_type
    dims = []
    for d in tt.shape.dim:
        if d.HasField("dim_param") and d.dim_param:
            dims.append(d.dim_param)
        elif d.HasField("dim_value"):
            dims.append(str(d.dim_value))
        else:
            dims.append("?")
    return "%d [%s]" % (tt.elem_type, ",".join(dims))


def graph(g, ind, out):
    out.append("%sgraph %s" % (ind, g.name))
    inits = {t.name for t in g.initializer}
    for v in g.input:
        if v.name not in inits:
            out.append("%s  input %s %s" % (ind, v.name, vtype(v.type)))
    for t in g.initializer:
        out.append("%s  init %s %s" % (ind, t.name, tensor(t)))
    for n in g.node:
        ins = ",".join(i if i else "_" for i in n.input)
        outs = ",".join(o if o else "_" for o in n.output)
        dom = n.domain if n.domain != "ai.onnx" else ""
        out.append("%s  node %s %s in=%s out=%s" % (ind, n.op_type, dom or "-", ins, outs))
        for a in sorted(n.attribute, key=lambda a: a.name):
            p = "%s    attr %s %d" % (ind, a.name, a.type)
            if a.type == onnx.AttributeProto.FLOAT:
                out.append(p + " " + f32bits(a.f))
            elif a.type == onnx.AttributeProto.INT:
                out.append(p + " " + str(a.i))
            elif a.type == onnx.AttributeProto.STRING:
                out.append(p + " " + a.s.hex())
            elif a.type == onnx.AttributeProto.FLOATS:
                out.append(p + " " + " ".join(f32bits(f) for f in a.floats))
            elif a.type == onnx.AttributeProto.INTS:
                out.append(p + " " + " ".join(str(i) for i in a.ints))
            elif a.type == onnx.AttributeProto.STRINGS:
                out.append(p + " " + " ".join(s.hex() for s in a.strings))
            elif a.type == onnx.AttributeProto.TENSOR:
                out.append(p + " " + tensor(a.t))
            elif a.type == onnx.AttributeProto.GRAPH:
                out.append(p)
                graph(a.g, ind + "      ", out)
            else:
                out.append(p + " unsupported")
    for v in g.output:
        out.append("%s  output %s %s" % (ind, v.name, vtype(v.type)))


def main():
    out = []
    for d in sorted(glob.glob(os.path.join(ROOT, "*", ""))):
        name = os.path.basename(os.path.dirname(d))
        m = onnx.load(os.path.join(d, "model.onnx"))
        out.append("model %s ir %d" % (name, m.ir_version))
        for o in sorted(m.opset_import, key=lambda o: o.domain):
            out.append("  opset %s %d" % (o.domain or "-", o.version))
        graph(m.graph, "  ", out)
        for pb in sorted(glob.glob(os.path.join(d, "test_data_set_0", "*.pb"))):
            t = onnx.TensorProto()
            with open(pb, "rb") as f:
                t.ParseFromString(f.read())
            try:
                desc = tensor(t)
            except ValueError:  # a SequenceProto or OptionalProto, not a tensor
                desc = "invalid"
            out.append("  data %s %s" % (os.path.basename(pb), desc))
    with open(os.path.join(ROOT, "reference.txt"), "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
