# Writes torch_conv.json: conv2d and conv_transpose2d outputs and gradients
# computed by PyTorch on small random inputs. Run from this directory:
#   python3 gen_torch.py
import json
import torch

torch.manual_seed(0)
cases = []


def t(v):
    return [float(f"{e:.9g}") for e in v.detach().reshape(-1).tolist()]


def add(kind, n, c, h, w, oc, kh, kw, s, p, d, g, op=(0, 0)):
    x = torch.randn(n, c, h, w, requires_grad=True)
    if kind == "conv":
        wt = torch.randn(oc, c // g, kh, kw, requires_grad=True)
    else:
        wt = torch.randn(c, oc // g, kh, kw, requires_grad=True)
    b = torch.randn(oc, requires_grad=True)
    if kind == "conv":
        y = torch.nn.functional.conv2d(x, wt, b, s, p, d, g)
    else:
        y = torch.nn.functional.conv_transpose2d(x, wt, b, s, p, op, g, d)
    gy = torch.randn_like(y)
    y.backward(gy)
    cases.append(dict(kind=kind, n=n, c=c, h=h, w=w, oc=oc, kh=kh, kw=kw, s=list(s), p=list(p),
                      d=list(d), g=g, op=list(op), oh=y.shape[2], ow=y.shape[3],
                      x=t(x), wt=t(wt), b=t(b), y=t(y), gy=t(gy), gx=t(x.grad), gw=t(wt.grad), gb=t(b.grad)))


add("conv", 2, 4, 7, 6, 6, 3, 3, (2, 1), (1, 2), (1, 2), 2)
add("conv", 1, 6, 9, 9, 12, 3, 3, (2, 2), (1, 1), (1, 1), 6)
add("conv", 1, 3, 5, 5, 2, 1, 1, (1, 1), (0, 0), (1, 1), 1)
add("convT", 2, 4, 3, 4, 6, 3, 3, (2, 3), (1, 0), (1, 1), 2, (1, 2))
add("convT", 1, 3, 4, 3, 3, 3, 2, (1, 2), (2, 1), (3, 1), 3, (2, 1))
add("convT", 1, 2, 3, 3, 4, 4, 4, (2, 2), (1, 1), (1, 1), 1)

with open("torch_conv.json", "w") as f:
    json.dump(dict(torch=torch.__version__, cases=cases), f, separators=(",", ":"))
