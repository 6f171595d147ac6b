# Writes torch_pool.json: max/avg/adaptive pooling outputs, indices and
# input gradients computed by PyTorch on small random inputs. Run from this
# directory:  python3 gen_torch.py
import json
import torch
import torch.nn.functional as F

torch.manual_seed(0)
cases = []


def t(v):
    return [float(f"{e:.9g}") for e in v.detach().reshape(-1).tolist()]


def run(kind, n, c, h, w, **kw):
    x = torch.randn(n, c, h, w, requires_grad=True)
    idx = None
    if kind == "max":
        y, idx = F.max_pool2d(x, kw["k"], kw["s"], kw["p"], kw["d"], kw["ceil"], return_indices=True)
    elif kind == "avg":
        y = F.avg_pool2d(x, kw["k"], kw["s"], kw["p"], kw["ceil"], kw["cip"], kw["div"])
    elif kind == "aavg":
        y = F.adaptive_avg_pool2d(x, kw["o"])
    elif kind == "amax":
        y, idx = F.adaptive_max_pool2d(x, kw["o"], return_indices=True)
    gy = torch.randn_like(y)
    y.backward(gy)
    d = dict(kind=kind, n=n, c=c, h=h, w=w, oh=y.shape[2], ow=y.shape[3], x=t(x), y=t(y), gy=t(gy), gx=t(x.grad))
    if idx is not None:
        d["idx"] = idx.reshape(-1).tolist()
    for key, v in kw.items():
        d[key] = list(v) if isinstance(v, tuple) else v
    cases.append(d)


run("max", 2, 3, 7, 8, k=(3, 3), s=(2, 2), p=(1, 1), d=(1, 1), ceil=False)
run("max", 1, 2, 7, 8, k=(3, 2), s=(2, 3), p=(1, 1), d=(1, 1), ceil=True)
run("max", 1, 2, 9, 10, k=(3, 3), s=(2, 1), p=(1, 0), d=(2, 3), ceil=True)
run("max", 1, 1, 6, 6, k=(2, 2), s=(2, 2), p=(0, 0), d=(1, 1), ceil=False)
run("max", 1, 2, 5, 5, k=(2, 2), s=(2, 2), p=(1, 1), d=(1, 1), ceil=True)
run("avg", 2, 2, 7, 8, k=(3, 3), s=(2, 2), p=(1, 1), ceil=False, cip=True, div=None)
run("avg", 1, 2, 7, 8, k=(3, 3), s=(2, 2), p=(1, 1), ceil=True, cip=False, div=None)
run("avg", 1, 2, 7, 8, k=(3, 2), s=(2, 3), p=(1, 1), ceil=True, cip=True, div=None)
run("avg", 1, 2, 5, 6, k=(2, 3), s=(1, 2), p=(0, 1), ceil=False, cip=True, div=5)
run("avg", 1, 1, 5, 5, k=(2, 2), s=(2, 2), p=(1, 1), ceil=True, cip=True, div=None)
run("aavg", 2, 3, 7, 9, o=(3, 4))
run("aavg", 1, 2, 5, 5, o=(7, 3))
run("aavg", 1, 2, 10, 6, o=(1, 1))
run("amax", 1, 3, 7, 9, o=(3, 4))
run("amax", 1, 2, 4, 5, o=(6, 2))

with open("torch_pool.json", "w") as f:
    json.dump(dict(torch=torch.__version__, cases=cases), f, separators=(",", ":"))
