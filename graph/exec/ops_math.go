package exec

import (
	"fmt"
	"math"
	"sync"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/internal/kernels/conv"
	"github.com/quanta-go/quanta/internal/kernels/qdyn"
	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

// Softmax, LogSoftmax and Hardmax (opset 1 on) and Clip (opset 6 on).
//
// Before opset 13 the softmax family coerces the input to 2-D at axis
// (default 1): each row [prod(shape[:axis]), prod(shape[axis:])] is
// normalized as a whole. From opset 13 it normalizes along the one axis
// (default -1).

func init() {
	for _, op := range []string{"Softmax", "LogSoftmax", "Hardmax"} {
		register(op, 1, func(c *CompileContext, n *graph.Node) (Kernel, error) { return compileSoftmax(c, n, op) })
	}
	register("Clip", 6, compileClip)
}

// softmaxKernel is a compiled Softmax, LogSoftmax or Hardmax node.
type softmaxKernel struct {
	op      string
	axis    int64
	coerce2 bool // pre-13 semantics
}

func compileSoftmax(c *CompileContext, n *graph.Node, op string) (Kernel, error) {
	if err := nIn(n, 1, 1); err != nil {
		return nil, err
	}
	k := &softmaxKernel{op: op, coerce2: c.Opset("") < 13}
	def := int64(-1)
	if k.coerce2 {
		def = 1
	}
	var err error
	if k.axis, err = n.Int("axis", def); err != nil {
		return nil, err
	}
	return k, nil
}

// Run normalizes the input.
func (k *softmaxKernel) Run(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	if err := wantFloat("the input", x); err != nil {
		return nil, err
	}
	xs := x.Shape()
	r := len(xs)
	if r == 0 {
		return nil, fmt.Errorf("the input must have at least one dimension")
	}
	ax, err := axis(k.axis, r)
	if err != nil {
		return nil, err
	}
	var outer, n, inner int
	if k.coerce2 {
		outer, n, inner = nnProd(xs[:ax]), nnProd(xs[ax:]), 1
	} else {
		outer, n, inner = nnProd(xs[:ax]), xs[ax], nnProd(xs[ax+1:])
	}
	xv := x.F32()
	y := f.allocF32(len(xv)) // every line writes all its n outputs
	if n > 0 {
		parallel.For(outer*inner, 16, func(s, e int) {
			for o := s; o < e; o++ {
				base := (o/inner)*n*inner + o%inner
				softmaxLine(k.op, xv, y, base, n, inner)
			}
		})
	}
	return []*tensor.Tensor{nnTensor(y, xs)}, nil
}

// softmaxScratch and softmaxScratch32 hold the exponentials of a Softmax
// line.
var (
	softmaxScratch   = sync.Pool{New: func() any { return new([]float64) }}
	softmaxScratch32 = sync.Pool{New: func() any { return new([]float32) }}
)

// softmaxLine normalizes the n values x[base + j*stride].
func softmaxLine(op string, x, y []float32, base, n, stride int) {
	if op == "Softmax" && stride == 1 {
		if _, m, nan := qdyn.MinMax(x[base : base+n]); !nan {
			// The vectorized scan gives the same maximum as the loop
			// below (a zero maximum may differ in sign, which x - m and
			// its exponential do not see).
			softmaxContiguous(x[base:base+n], y[base:base+n], m)
			return
		}
	}
	m := float32(math.Inf(-1))
	arg := 0
	for j := range n {
		if v := x[base+j*stride]; v > m {
			m, arg = v, j
		}
	}
	if op == "Hardmax" {
		for j := range n {
			y[base+j*stride] = 0
		}
		y[base+arg*stride] = 1
		return
	}
	if op == "Softmax" && stride == 1 {
		softmaxContiguous(x[base:base+n], y[base:base+n], m)
		return
	}
	if op == "Softmax" {
		// Each exponential once, kept in float64 for the division.
		bp := softmaxScratch.Get().(*[]float64)
		if cap(*bp) < n {
			*bp = make([]float64, n)
		}
		e := (*bp)[:n]
		var s float64
		for j := range e {
			e[j] = math.Exp(float64(x[base+j*stride] - m))
			s += e[j]
		}
		for j, v := range e {
			y[base+j*stride] = float32(v / s)
		}
		softmaxScratch.Put(bp)
		return
	}
	var s float64
	for j := range n {
		s += math.Exp(float64(x[base+j*stride] - m))
	}
	if op == "LogSoftmax" {
		ls := math.Log(s)
		for j := range n {
			y[base+j*stride] = float32(float64(x[base+j*stride]-m) - ls)
		}
		return
	}
	for j := range n {
		i := base + j*stride
		y[i] = float32(math.Exp(float64(x[i]-m)) / s)
	}
}

// softmaxContiguous is Softmax of a contiguous line x with maximum m, on
// the vectorized float32 kernels: x - m, conv.EwExp's exponential (within
// 4 ulps, see its documentation; ONNX Runtime's is a float32
// approximation too), their float64 sum, one float32 division each.
func softmaxContiguous(x, y []float32, m float32) {
	n := len(x)
	bp := softmaxScratch32.Get().(*[]float32)
	if cap(*bp) < n {
		*bp = make([]float32, n)
	}
	e := (*bp)[:n]
	conv.EwVS(conv.EwSub, e, x, m)
	conv.EwExp(e, e)
	s := conv.SumF64(e)
	conv.EwVS(conv.EwDiv, y, e, float32(s))
	softmaxScratch32.Put(bp)
}

// clipKernel is a compiled Clip node.
type clipKernel struct {
	attrs    bool // opsets 6 to 10: bounds are attributes
	min, max float32
}

func compileClip(c *CompileContext, n *graph.Node) (Kernel, error) {
	k := &clipKernel{}
	if c.Opset("") < 11 {
		if err := nIn(n, 1, 1); err != nil {
			return nil, err
		}
		k.attrs = true
		var err error
		if k.min, err = n.Float("min", -math.MaxFloat32); err != nil {
			return nil, err
		}
		if k.max, err = n.Float("max", math.MaxFloat32); err != nil {
			return nil, err
		}
		return k, nil
	}
	if err := nIn(n, 1, 3); err != nil {
		return nil, err
	}
	return k, nil
}

// Run computes min(max(x, lo), hi) (so hi wins when lo > hi, as NumPy's
// clip); NaN stays NaN. Integer inputs (opset 12 on) clip exactly.
func (k *clipKernel) Run(_ *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	bound := func(i int) (*tensor.Tensor, error) {
		if k.attrs || i >= len(in) || in[i] == nil {
			return nil, nil
		}
		b := in[i]
		if b.DType() != x.DType() {
			return nil, fmt.Errorf("bound %d is %s, the input %s", i, b.DType(), x.DType())
		}
		if b.Numel() != 1 {
			return nil, fmt.Errorf("bound %d must be a scalar, got shape %v", i, b.Shape())
		}
		return b, nil
	}
	lo, err := bound(1)
	if err != nil {
		return nil, err
	}
	hi, err := bound(2)
	if err != nil {
		return nil, err
	}
	switch x.DType() {
	case tensor.Float32:
		l, h := float32(math.Inf(-1)), float32(math.Inf(1))
		if k.attrs {
			l, h = k.min, k.max
		}
		if lo != nil {
			l = lo.F32()[0]
		}
		if hi != nil {
			h = hi.F32()[0]
		}
		xv := x.F32()
		y := make([]float32, len(xv))
		for i, v := range xv {
			if v < l {
				v = l
			}
			if v > h {
				v = h
			}
			y[i] = v
		}
		return []*tensor.Tensor{nnTensor(y, x.Shape())}, nil
	case tensor.Int8, tensor.Uint8, tensor.Int32, tensor.Int64:
		if k.attrs {
			return nil, fmt.Errorf("Clip of %s needs opset 12 or later", x.DType())
		}
		l, h := int64(math.MinInt64), int64(math.MaxInt64)
		if lo != nil {
			l = int64(lo.Float64s()[0])
			if v, err := ints64(lo); err == nil {
				l = v[0]
			}
		}
		if hi != nil {
			h = int64(hi.Float64s()[0])
			if v, err := ints64(hi); err == nil {
				h = v[0]
			}
		}
		v := tensor.Cast(x, tensor.Int64).I64()
		y := make([]int64, len(v))
		for i, e := range v {
			y[i] = min(max(e, l), h)
		}
		return []*tensor.Tensor{tensor.Cast(nnInt64Tensor(y, x.Shape()), x.DType())}, nil
	}
	return nil, fmt.Errorf("input of type %s is not supported", x.DType())
}
