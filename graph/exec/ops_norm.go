package exec

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

// Normalization operators for inference: BatchNormalization (opsets 7 to
// 21; training_mode must be 0), InstanceNormalization (opset 6 on),
// LayerNormalization (opset 17 on, with the optional Mean and InvStdDev
// outputs), LRN (opset 1 on) and Dropout (opsets 7 to 21, the identity).
// Statistics are accumulated in float64.

func init() {
	register("BatchNormalization", 7, compileBatchNorm)
	register("InstanceNormalization", 6, compileInstanceNorm)
	register("LayerNormalization", 17, compileLayerNorm)
	register("LRN", 1, compileLRN)
	register("Dropout", 7, compileDropout)
}

// bnKernel is BatchNormalization in inference mode:
// Y = (X - mean) / sqrt(var + epsilon) * scale + B.
type bnKernel struct{ eps float32 }

func compileBatchNorm(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 5, 5); err != nil {
		return nil, err
	}
	eps, err := n.Float("epsilon", 1e-5)
	if err != nil {
		return nil, err
	}
	training, err := n.Int("training_mode", 0)
	if err != nil {
		return nil, err
	}
	if training != 0 {
		return nil, fmt.Errorf("training_mode=1 is not supported (inference only)")
	}
	for i := 1; i < len(n.Outputs); i++ {
		if n.Outputs[i] != nil {
			return nil, fmt.Errorf("output %d (%s) exists only in training mode, which is not supported", i, n.Outputs[i].Name)
		}
	}
	return &bnKernel{eps: eps}, nil
}

// Run normalizes X [N, C, ...]. The parameters are [C] (or, for opsets 7
// and 8 with spatial=0, [C, D1, ...]: one value per position).
func (k *bnKernel) Run(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	for i, name := range []string{"X", "scale", "B", "input_mean", "input_var"} {
		if err := wantFloat(name, in[i]); err != nil {
			return nil, err
		}
	}
	xs := x.Shape()
	if len(xs) < 2 {
		return nil, fmt.Errorf("X has shape %v: want [N, C, ...]", xs)
	}
	c := xs[1]
	s := nnProd(xs[2:])
	per := in[1].Numel()
	if per != c && per != c*s {
		return nil, fmt.Errorf("scale has shape %v for X %v", in[1].Shape(), xs)
	}
	for i := 2; i < 5; i++ {
		if in[i].Numel() != per {
			return nil, fmt.Errorf("parameter %d has shape %v, scale %v", i, in[i].Shape(), in[1].Shape())
		}
	}
	scale, bias, mean, vr := in[1].F32(), in[2].F32(), in[3].F32(), in[4].F32()
	a := make([]float32, per)
	for i := range a {
		a[i] = scale[i] / float32(math.Sqrt(float64(vr[i]+k.eps)))
	}
	xv := x.F32()
	y := f.allocF32(len(xv))
	planes := xs[0] * c
	parallel.For(planes, 4, func(p0, p1 int) {
		for p := p0; p < p1; p++ {
			ch := p % c
			src, dst := xv[p*s:(p+1)*s], y[p*s:(p+1)*s]
			if per == c {
				m, ai, bi := mean[ch], a[ch], bias[ch]
				for i, v := range src {
					dst[i] = (v-m)*ai + bi
				}
				continue
			}
			o := ch * s
			for i, v := range src {
				dst[i] = (v-mean[o+i])*a[o+i] + bias[o+i]
			}
		}
	})
	return []*tensor.Tensor{nnTensor(y, xs)}, nil
}

// instNormKernel is InstanceNormalization: every (n, c) plane is
// normalized by its own mean and biased variance, then scaled and shifted
// per channel.
type instNormKernel struct{ eps float32 }

func compileInstanceNorm(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 3, 3); err != nil {
		return nil, err
	}
	eps, err := n.Float("epsilon", 1e-5)
	if err != nil {
		return nil, err
	}
	return &instNormKernel{eps: eps}, nil
}

// Run normalizes X [N, C, ...] with scale and B of shape [C].
func (k *instNormKernel) Run(_ *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	for i, name := range []string{"input", "scale", "B"} {
		if err := wantFloat(name, in[i]); err != nil {
			return nil, err
		}
	}
	xs := x.Shape()
	if len(xs) < 3 {
		return nil, fmt.Errorf("input has shape %v: want [N, C, D1, ...]", xs)
	}
	c, s := xs[1], nnProd(xs[2:])
	if in[1].Numel() != c || in[2].Numel() != c {
		return nil, fmt.Errorf("scale %v and B %v must have %d values", in[1].Shape(), in[2].Shape(), c)
	}
	scale, bias, xv := in[1].F32(), in[2].F32(), x.F32()
	y := make([]float32, len(xv))
	parallel.For(xs[0]*c, 1, func(p0, p1 int) {
		for p := p0; p < p1; p++ {
			ch := p % c
			src, dst := xv[p*s:(p+1)*s], y[p*s:(p+1)*s]
			mean, inv := nnMoments(src, k.eps)
			a := float32(inv) * scale[ch]
			m := float32(mean)
			for i, v := range src {
				dst[i] = (v-m)*a + bias[ch]
			}
		}
	})
	return []*tensor.Tensor{nnTensor(y, xs)}, nil
}

// nnMoments returns the mean of v and 1/sqrt(biased variance + eps),
// accumulated in float64.
func nnMoments(v []float32, eps float32) (mean, invStd float64) {
	if len(v) == 0 {
		return 0, 1 / math.Sqrt(float64(eps))
	}
	var s float64
	for _, x := range v {
		s += float64(x)
	}
	mean = s / float64(len(v))
	var q float64
	for _, x := range v {
		d := float64(x) - mean
		q += d * d
	}
	return mean, 1 / math.Sqrt(q/float64(len(v))+float64(eps))
}

// lnKernel is LayerNormalization over the dimensions from axis on.
type lnKernel struct {
	axis int64
	eps  float32
	nOut int
}

func compileLayerNorm(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 2, 3); err != nil {
		return nil, err
	}
	ax, err := n.Int("axis", -1)
	if err != nil {
		return nil, err
	}
	eps, err := n.Float("epsilon", 1e-5)
	if err != nil {
		return nil, err
	}
	stash, err := n.Int("stash_type", 1)
	if err != nil {
		return nil, err
	}
	if stash != 1 {
		return nil, fmt.Errorf("stash_type %d is not supported (want 1, float32)", stash)
	}
	return &lnKernel{axis: ax, eps: eps, nOut: len(n.Outputs)}, nil
}

// Run computes Y and the Mean and InvStdDev outputs ([..., 1, ...] with
// the normalized dimensions kept as 1). Scale and B broadcast to X.
func (k *lnKernel) Run(_ *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	if err := wantFloat("X", x); err != nil {
		return nil, err
	}
	xs := x.Shape()
	ax, err := axis(k.axis, len(xs))
	if err != nil {
		return nil, err
	}
	d := nnProd(xs[ax:])
	rows := nnProd(xs[:ax])
	param := func(i int, name string) ([]float32, bool, error) {
		if i >= len(in) || in[i] == nil {
			return nil, false, nil
		}
		t := in[i]
		if err := wantFloat(name, t); err != nil {
			return nil, false, err
		}
		if bs, err := tensor.BroadcastShapes(t.Shape(), xs[ax:]); err == nil && t.Numel() == d && tensor.SameShape(bs, xs[ax:]) {
			return t.F32(), false, nil
		}
		bs, err := tensor.BroadcastShapes(t.Shape(), xs)
		if err != nil || !tensor.SameShape(bs, xs) {
			return nil, false, fmt.Errorf("%s has shape %v, which does not broadcast to X %v", name, t.Shape(), xs)
		}
		return tensor.Expand(t, xs...).F32(), true, nil
	}
	scale, scaleFull, err := param(1, "Scale")
	if err != nil {
		return nil, err
	}
	bias, biasFull, err := param(2, "B")
	if err != nil {
		return nil, err
	}
	xv := x.F32()
	y := make([]float32, len(xv))
	means := make([]float32, rows)
	invs := make([]float32, rows)
	parallel.For(rows, 4, func(r0, r1 int) {
		for r := r0; r < r1; r++ {
			src, dst := xv[r*d:(r+1)*d], y[r*d:(r+1)*d]
			mean, inv := nnMoments(src, k.eps)
			means[r], invs[r] = float32(mean), float32(inv)
			m, is := float32(mean), float32(inv)
			so, bo := 0, 0
			if scaleFull {
				so = r * d
			}
			if biasFull {
				bo = r * d
			}
			for i, v := range src {
				h := (v - m) * is * scale[so+i]
				if bias != nil {
					h += bias[bo+i]
				}
				dst[i] = h
			}
		}
	})
	stat := append([]int(nil), xs[:ax]...)
	for range xs[ax:] {
		stat = append(stat, 1)
	}
	return []*tensor.Tensor{nnTensor(y, xs), nnTensor(means, stat), nnTensor(invs, stat)}[:min(k.nOut, 3)], nil
}

// lrnKernel is LRN: y = x / (bias + alpha/size * sum of x^2 over the
// channels c - floor((size-1)/2) .. c + ceil((size-1)/2)) ^ beta.
type lrnKernel struct {
	alpha, beta, bias float32
	size              int
}

func compileLRN(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 1, 1); err != nil {
		return nil, err
	}
	k := &lrnKernel{}
	var err error
	if k.alpha, err = n.Float("alpha", 1e-4); err != nil {
		return nil, err
	}
	if k.beta, err = n.Float("beta", 0.75); err != nil {
		return nil, err
	}
	if k.bias, err = n.Float("bias", 1); err != nil {
		return nil, err
	}
	size, err := n.Int("size", 0)
	if err != nil {
		return nil, err
	}
	if size < 1 {
		return nil, fmt.Errorf("attribute size is required and must be positive, got %d", size)
	}
	k.size = int(size)
	return k, nil
}

// Run computes LRN over X [N, C, ...].
func (k *lrnKernel) Run(_ *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	if err := wantFloat("X", x); err != nil {
		return nil, err
	}
	xs := x.Shape()
	if len(xs) < 3 {
		return nil, fmt.Errorf("X has shape %v: want [N, C, D1, ...]", xs)
	}
	c, s := xs[1], nnProd(xs[2:])
	lo, hi := (k.size-1)/2, (k.size-1)-(k.size-1)/2
	xv := x.F32()
	y := make([]float32, len(xv))
	coef := float64(k.alpha) / float64(k.size)
	parallel.For(xs[0]*c, 1, func(p0, p1 int) {
		for p := p0; p < p1; p++ {
			n, ch := p/c, p%c
			c0, c1 := max(0, ch-lo), min(c-1, ch+hi)
			for i := range s {
				var sq float64
				for cc := c0; cc <= c1; cc++ {
					v := float64(xv[(n*c+cc)*s+i])
					sq += v * v
				}
				y[p*s+i] = float32(float64(xv[p*s+i]) / math.Pow(float64(k.bias)+coef*sq, float64(k.beta)))
			}
		}
	})
	return []*tensor.Tensor{nnTensor(y, xs)}, nil
}

// dropoutKernel is Dropout in inference: Y = X and a mask of ones.
type dropoutKernel struct {
	opset int64
	mask  bool
}

func compileDropout(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 1, 3); err != nil {
		return nil, err
	}
	k := &dropoutKernel{opset: c.Opset(""), mask: n.Output(1) != nil}
	if _, err := n.Float("ratio", 0.5); err != nil {
		return nil, err
	}
	return k, nil
}

// Run returns the input and, when asked, a mask of ones (bool from opset
// 10 on, the input's type before). From opset 12, training_mode true is an
// error unless the ratio is 0.
func (k *dropoutKernel) Run(_ *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	if k.opset >= 12 && len(in) > 2 && in[2] != nil {
		t := in[2]
		if t.DType() != tensor.Bool || t.Numel() != 1 {
			return nil, fmt.Errorf("training_mode must be one bool, got %s %v", t.DType(), t.Shape())
		}
		if t.Bools()[0] {
			ratio := float32(0.5)
			if len(in) > 1 && in[1] != nil {
				r, err := nnScalarFloat("ratio", in[1])
				if err != nil {
					return nil, err
				}
				ratio = r
			}
			if ratio != 0 {
				return nil, fmt.Errorf("training_mode=true with ratio %v is not supported (inference only)", ratio)
			}
		}
	}
	if !k.mask {
		return []*tensor.Tensor{x}, nil
	}
	var mask *tensor.Tensor
	if k.opset >= 10 {
		m := make([]bool, x.Numel())
		for i := range m {
			m[i] = true
		}
		mask = tensor.FromBool(m, len(m))
	} else {
		mask = tensor.Cast(tensor.Full(1, x.Numel()), x.DType())
	}
	mask = nnReshape(mask, x.Shape())
	return []*tensor.Tensor{x, mask}, nil
}
