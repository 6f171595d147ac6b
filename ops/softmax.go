package ops

import (
	"math"

	"github.com/quanta-go/quanta/tensor"
)

// Softmax returns exp(x)/sum(exp(x)) along dim, computed stably
// (torch.softmax). Its gradient is PyTorch's
// _softmax_backward_data: y * (g - sum(g*y, dim)).
func Softmax(x *tensor.Tensor, dim int) *tensor.Tensor {
	y := tensor.Softmax(x, dim)
	return Apply("Softmax", DimAttrs{dim}, Ts(x), Ts(y), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(shSoftmaxGrad(y, g[0], dim, false))
	})
}

// LogSoftmax returns x - log(sum(exp(x))) along dim, computed stably
// (torch.log_softmax). Its gradient is PyTorch's
// _log_softmax_backward_data: g - exp(y) * sum(g, dim).
func LogSoftmax(x *tensor.Tensor, dim int) *tensor.Tensor {
	y := tensor.LogSoftmax(x, dim)
	return Apply("LogSoftmax", DimAttrs{dim}, Ts(x), Ts(y), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(shSoftmaxGrad(y, g[0], dim, true))
	})
}

// shSoftmaxGrad is the input gradient of softmax (log false) or
// log-softmax (log true) from the output y and output gradient g. Sums
// along dim are accumulated in float64.
func shSoftmaxGrad(y, g *tensor.Tensor, dim int, log bool) *tensor.Tensor {
	ys := y.Shape()
	o, n, in := 1, 1, 1
	if len(ys) > 0 {
		d := y.Axis(dim)
		for _, s := range ys[:d] {
			o *= s
		}
		n = ys[d]
		for _, s := range ys[d+1:] {
			in *= s
		}
	}
	out := tensor.Zeros(ys...)
	yv, gv, dx := y.F32(), g.F32(), out.F32()
	s := make([]float64, in)
	for a := 0; a < o; a++ {
		base := a * n * in
		clear(s)
		for i := 0; i < n; i++ {
			row := base + i*in
			for j := 0; j < in; j++ {
				if log {
					s[j] += float64(gv[row+j])
				} else {
					s[j] += float64(gv[row+j]) * float64(yv[row+j])
				}
			}
		}
		for i := 0; i < n; i++ {
			row := base + i*in
			for j := 0; j < in; j++ {
				yy, gg := float64(yv[row+j]), float64(gv[row+j])
				if log {
					dx[row+j] = float32(gg - math.Exp(yy)*s[j])
				} else {
					dx[row+j] = float32(yy * (gg - s[j]))
				}
			}
		}
	}
	return out
}
