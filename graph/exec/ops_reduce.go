package exec

import (
	"fmt"
	"math"
	"slices"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

// Reductions: ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd,
// ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum and ReduceLogSumExp
// (opset 1 on; axes is an attribute before opset 18 — 13 for ReduceSum —
// and an optional input from then on, with noop_with_empty_axes), ArgMax
// and ArgMin (opset 1 on, select_last_index from 12), TopK (opset 1 on: k
// an attribute before 10, an input after; largest and sorted from 11) and
// CumSum (opset 11 on). Float32 sums accumulate in float64; integer
// reductions (int32, int64; int8 and uint8 for Max and Min) are exact in
// int64.

var reduceOps = []string{"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
	"ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"}

func init() {
	for _, op := range reduceOps {
		register(op, 1, func(c *CompileContext, n *graph.Node) (Kernel, error) { return compileReduce(c, n, op) })
	}
	register("ArgMax", 1, func(c *CompileContext, n *graph.Node) (Kernel, error) { return compileArg(n, true) })
	register("ArgMin", 1, func(c *CompileContext, n *graph.Node) (Kernel, error) { return compileArg(n, false) })
	register("TopK", 1, compileTopK)
	register("CumSum", 11, compileCumSum)
}

// reduceKernel is a compiled Reduce* node.
type reduceKernel struct {
	op        string
	axes      []int64 // from the attribute
	axesInput bool    // axes come from input 1
	keepdims  bool
	noop      bool // noop_with_empty_axes
}

func compileReduce(c *CompileContext, n *graph.Node, op string) (Kernel, error) {
	k := &reduceKernel{op: op}
	since := int64(18)
	if op == "ReduceSum" {
		since = 13
	}
	kd, err := n.Int("keepdims", 1)
	if err != nil {
		return nil, err
	}
	k.keepdims = kd != 0
	if c.Opset("") >= since {
		if err := nIn(n, 1, 2); err != nil {
			return nil, err
		}
		k.axesInput = true
		noop, err := n.Int("noop_with_empty_axes", 0)
		if err != nil {
			return nil, err
		}
		k.noop = noop != 0
		if n.Has("axes") {
			return nil, fmt.Errorf("axes is an input from opset %d on, not an attribute", since)
		}
		return k, nil
	}
	if err := nIn(n, 1, 1); err != nil {
		return nil, err
	}
	if k.axes, err = n.Ints("axes", nil); err != nil {
		return nil, err
	}
	return k, nil
}

// Run reduces the input over the axes.
func (k *reduceKernel) Run(_ *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	axes := k.axes
	if k.axesInput && len(in) > 1 && in[1] != nil {
		var err error
		if axes, err = ints64(in[1]); err != nil {
			return nil, fmt.Errorf("axes: %w", err)
		}
	}
	switch x.DType() {
	case tensor.Float32, tensor.Int32, tensor.Int64:
	case tensor.Int8, tensor.Uint8:
		if k.op != "ReduceMax" && k.op != "ReduceMin" {
			return nil, fmt.Errorf("%s of %s is not supported", k.op, x.DType())
		}
	default:
		return nil, fmt.Errorf("input of type %s is not supported", x.DType())
	}
	if len(axes) == 0 && k.noop {
		return []*tensor.Tensor{x}, nil
	}
	xs := x.Shape()
	r := len(xs)
	red := make([]bool, r)
	if len(axes) == 0 {
		for i := range red {
			red[i] = true
		}
	} else {
		ax, err := nnAxes(axes, r)
		if err != nil {
			return nil, err
		}
		for _, a := range ax {
			red[a] = true
		}
	}
	var perm, outShape []int
	outer := 1
	for i, d := range xs {
		if !red[i] {
			perm = append(perm, i)
			outShape = append(outShape, d)
			outer *= d
		} else if k.keepdims {
			outShape = append(outShape, 1)
		}
	}
	if !k.keepdims {
		outShape = outShape[:0]
		for i, d := range xs {
			if !red[i] {
				outShape = append(outShape, d)
			}
		}
	}
	for i := range xs {
		if red[i] {
			perm = append(perm, i)
		}
	}
	inner := 1
	if outer > 0 {
		inner = x.Numel() / outer
	} else {
		for i, d := range xs {
			if red[i] {
				inner *= d
			}
		}
	}
	src := x
	if !slices.IsSorted(perm) {
		src = tensor.Permute(x, perm...)
	}
	if x.DType() == tensor.Float32 {
		y := make([]float32, outer)
		xv := src.F32()
		parallel.For(outer, 64, func(s, e int) {
			for o := s; o < e; o++ {
				y[o] = reduceFloat(k.op, xv[o*inner:(o+1)*inner])
			}
		})
		return []*tensor.Tensor{nnTensor(y, outShape)}, nil
	}
	iv := tensor.Cast(src, tensor.Int64).I64()
	y := make([]int64, outer)
	parallel.For(outer, 64, func(s, e int) {
		for o := s; o < e; o++ {
			y[o] = reduceInt(k.op, iv[o*inner:(o+1)*inner])
		}
	})
	out := nnInt64Tensor(y, outShape)
	if x.DType() != tensor.Int64 {
		out = tensor.Cast(out, x.DType())
	}
	return []*tensor.Tensor{out}, nil
}

// reduceFloat reduces one row of float32 values.
func reduceFloat(op string, v []float32) float32 {
	switch op {
	case "ReduceMax", "ReduceMin":
		if len(v) == 0 {
			if op == "ReduceMax" {
				return float32(math.Inf(-1))
			}
			return float32(math.Inf(1))
		}
		m := v[0]
		for _, x := range v[1:] {
			if x != x {
				return x
			}
			if (op == "ReduceMax" && x > m) || (op == "ReduceMin" && x < m) {
				m = x
			}
		}
		return m
	case "ReduceProd":
		p := 1.0
		for _, x := range v {
			p *= float64(x)
		}
		return float32(p)
	case "ReduceLogSumExp":
		m := math.Inf(-1)
		for _, x := range v {
			m = math.Max(m, float64(x))
		}
		if math.IsInf(m, 0) || math.IsNaN(m) {
			if len(v) == 0 || math.IsInf(m, -1) {
				return float32(math.Inf(-1))
			}
			return float32(m)
		}
		var s float64
		for _, x := range v {
			s += math.Exp(float64(x) - m)
		}
		return float32(m + math.Log(s))
	}
	var s float64
	for _, x := range v {
		f := float64(x)
		switch op {
		case "ReduceL1":
			f = math.Abs(f)
		case "ReduceL2", "ReduceSumSquare":
			f *= f
		}
		s += f
	}
	switch op {
	case "ReduceMean":
		s /= float64(len(v))
	case "ReduceL2":
		s = math.Sqrt(s)
	case "ReduceLogSum":
		s = math.Log(s)
	}
	return float32(s)
}

// reduceInt reduces one row of integers (as int64).
func reduceInt(op string, v []int64) int64 {
	switch op {
	case "ReduceMax", "ReduceMin":
		if len(v) == 0 {
			if op == "ReduceMax" {
				return math.MinInt64
			}
			return math.MaxInt64
		}
		m := v[0]
		for _, x := range v[1:] {
			if (op == "ReduceMax" && x > m) || (op == "ReduceMin" && x < m) {
				m = x
			}
		}
		return m
	case "ReduceProd":
		p := int64(1)
		for _, x := range v {
			p *= x
		}
		return p
	case "ReduceL2", "ReduceLogSum", "ReduceLogSumExp":
		f := make([]float32, len(v))
		for i, x := range v {
			f[i] = float32(x)
		}
		return int64(reduceFloat(op, f))
	}
	var s int64
	for _, x := range v {
		switch op {
		case "ReduceL1":
			if x < 0 {
				x = -x
			}
		case "ReduceSumSquare":
			x *= x
		}
		s += x
	}
	if op == "ReduceMean" && len(v) > 0 {
		s /= int64(len(v))
	}
	return s
}

// argKernel is ArgMax or ArgMin.
type argKernel struct {
	max      bool
	axis     int64
	keepdims bool
	last     bool
}

func compileArg(n *graph.Node, isMax bool) (Kernel, error) {
	if err := nIn(n, 1, 1); err != nil {
		return nil, err
	}
	k := &argKernel{max: isMax}
	var err error
	if k.axis, err = n.Int("axis", 0); err != nil {
		return nil, err
	}
	kd, err := n.Int("keepdims", 1)
	if err != nil {
		return nil, err
	}
	last, err := n.Int("select_last_index", 0)
	if err != nil {
		return nil, err
	}
	k.keepdims, k.last = kd != 0, last != 0
	return k, nil
}

// Run returns the int64 index of the largest (smallest) value along the
// axis: the first one, or the last with select_last_index. A NaN counts as
// the extreme value.
func (k *argKernel) Run(_ *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	switch x.DType() {
	case tensor.Float32, tensor.Int32, tensor.Int64, tensor.Int8, tensor.Uint8:
	default:
		return nil, fmt.Errorf("input of type %s is not supported", x.DType())
	}
	xs := x.Shape()
	ax, err := axis(k.axis, len(xs))
	if err != nil {
		return nil, err
	}
	outer, n, inner := nnProd(xs[:ax]), xs[ax], nnProd(xs[ax+1:])
	if n == 0 {
		return nil, fmt.Errorf("axis %d of %v is empty", ax, xs)
	}
	var v []float64
	var fv []float32
	if x.DType() == tensor.Float32 {
		fv = x.F32()
	} else {
		v = x.Float64s()
	}
	at := func(i int) float64 {
		if fv != nil {
			return float64(fv[i])
		}
		return v[i]
	}
	y := make([]int64, outer*inner)
	parallel.For(outer*inner, 256, func(s, e int) {
		for o := s; o < e; o++ {
			base := (o/inner)*n*inner + o%inner
			best, bi := at(base), 0
			for j := 1; j < n && best == best; j++ {
				c := at(base + j*inner)
				better := c != c
				if !better {
					if k.max {
						better = c > best || (k.last && c == best)
					} else {
						better = c < best || (k.last && c == best)
					}
				}
				if better {
					best, bi = c, j
				}
			}
			y[o] = int64(bi)
		}
	})
	shape := append([]int(nil), xs[:ax]...)
	if k.keepdims {
		shape = append(shape, 1)
	}
	shape = append(shape, xs[ax+1:]...)
	return []*tensor.Tensor{nnInt64Tensor(y, shape)}, nil
}

// topKKernel is a compiled TopK node.
type topKKernel struct {
	k       int64 // from the attribute (opsets before 10), else -1
	axis    int64
	largest bool
}

func compileTopK(c *CompileContext, n *graph.Node) (Kernel, error) {
	t := &topKKernel{k: -1}
	var err error
	if t.axis, err = n.Int("axis", -1); err != nil {
		return nil, err
	}
	largest, err := n.Int("largest", 1)
	if err != nil {
		return nil, err
	}
	t.largest = largest != 0
	if _, err := n.Int("sorted", 1); err != nil {
		return nil, err
	}
	if c.Opset("") < 10 {
		if err := nIn(n, 1, 1); err != nil {
			return nil, err
		}
		if t.k, err = n.Int("k", -1); err != nil {
			return nil, err
		}
		if t.k < 0 {
			return nil, fmt.Errorf("attribute k is required")
		}
		return t, nil
	}
	if err := nIn(n, 2, 2); err != nil {
		return nil, err
	}
	return t, nil
}

// Run returns the k largest (smallest) values along the axis and their
// int64 indices, sorted (the order sorted=0 leaves unspecified is the
// sorted one); equal values keep their index order.
func (t *topKKernel) Run(_ *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	switch x.DType() {
	case tensor.Float32, tensor.Int32, tensor.Int64, tensor.Int8, tensor.Uint8:
	default:
		return nil, fmt.Errorf("input of type %s is not supported", x.DType())
	}
	k := t.k
	if k < 0 {
		var err error
		if k, err = nnScalarInt("K", in[1]); err != nil {
			return nil, err
		}
	}
	xs := x.Shape()
	ax, err := axis(t.axis, len(xs))
	if err != nil {
		return nil, err
	}
	if k < 0 || k > int64(xs[ax]) {
		return nil, fmt.Errorf("k %d is out of range for axis %d of %v", k, ax, xs)
	}
	if k == 0 || x.Numel() == 0 {
		shape := slices.Clone(xs)
		shape[ax] = int(k)
		return []*tensor.Tensor{tensor.New(x.DType(), shape...), tensor.New(tensor.Int64, shape...)}, nil
	}
	vals, idx := tensor.TopK(x, int(k), ax, t.largest)
	return []*tensor.Tensor{vals, idx}, nil
}

// cumSumKernel is a compiled CumSum node.
type cumSumKernel struct{ exclusive, reverse bool }

func compileCumSum(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 2, 2); err != nil {
		return nil, err
	}
	ex, err := n.Int("exclusive", 0)
	if err != nil {
		return nil, err
	}
	rev, err := n.Int("reverse", 0)
	if err != nil {
		return nil, err
	}
	return &cumSumKernel{exclusive: ex != 0, reverse: rev != 0}, nil
}

// Run computes running sums along the axis (sequentially in float32 for
// float inputs, as NumPy's cumsum).
func (k *cumSumKernel) Run(_ *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	a, err := nnScalarInt("axis", in[1])
	if err != nil {
		return nil, err
	}
	xs := x.Shape()
	ax, err := axis(a, len(xs))
	if err != nil {
		return nil, err
	}
	outer, n, inner := nnProd(xs[:ax]), xs[ax], nnProd(xs[ax+1:])
	switch x.DType() {
	case tensor.Float32:
		y := make([]float32, x.Numel())
		cumSum(x.F32(), y, outer, n, inner, k.exclusive, k.reverse)
		return []*tensor.Tensor{nnTensor(y, xs)}, nil
	case tensor.Int32:
		y := make([]int32, x.Numel())
		cumSum(x.I32(), y, outer, n, inner, k.exclusive, k.reverse)
		return []*tensor.Tensor{nnReshape(tensor.FromInt32(y, len(y)), xs)}, nil
	case tensor.Int64:
		y := make([]int64, x.Numel())
		cumSum(x.I64(), y, outer, n, inner, k.exclusive, k.reverse)
		return []*tensor.Tensor{nnInt64Tensor(y, xs)}, nil
	}
	return nil, fmt.Errorf("input of type %s is not supported", x.DType())
}

// cumSum writes the running sums of x [outer, n, inner] along n into y.
func cumSum[T float32 | int32 | int64](x, y []T, outer, n, inner int, exclusive, reverse bool) {
	parallel.For(outer*inner, 256, func(s, e int) {
		for o := s; o < e; o++ {
			base := (o/inner)*n*inner + o%inner
			var acc T
			for j := range n {
				jj := j
				if reverse {
					jj = n - 1 - j
				}
				i := base + jj*inner
				if exclusive {
					y[i] = acc
					acc += x[i]
				} else {
					acc += x[i]
					y[i] = acc
				}
			}
		}
	})
}
