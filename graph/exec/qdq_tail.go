package exec

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/internal/kernels/qgemm"
	"github.com/quanta-go/quanta/tensor"
)

// Affine maps folded after an int8 Conv, and float tails between an int8
// Conv/MatMul/Gemm and its QuantizeLinear (see qdq_linear.go).

// bnAffine is a folded BatchNormalization: y = a[c]*x + t[c].
type bnAffine struct {
	node  *graph.Node
	nodes []*graph.Node // further nodes composed into a and t
	a, t  []float32
}

// foldedBN returns the per-channel affine map the float rewrite folded
// into Conv or ConvTranspose step st (with the node's own inputs): the
// chain of BatchNormalization, and Mul and Add by per-channel constants,
// each the only reader of the value before it, from the node's output to
// the step's.
func (m *qdqFuser) foldedBN(st *step) (*bnAffine, bool) {
	n := st.node
	if !(isOp(st, "Conv") || isOp(st, "ConvTranspose")) || len(st.in) != len(n.Inputs) || len(n.Outputs) != 1 {
		return nil, false
	}
	for i, v := range n.Inputs {
		if st.in[i] != m.slotOf(v) {
			return nil, false
		}
	}
	var r *bnAffine
	v := n.Outputs[0]
	for steps := 0; steps < 8; steps++ {
		if m.slotOf(v) == st.out[0] {
			return r, r != nil
		}
		var next *graph.Node
		for _, c := range m.sp.g.Nodes {
			for _, in := range c.Inputs {
				if in == v {
					if next != nil && next != c {
						return nil, false
					}
					next = c
				}
			}
		}
		for _, o := range m.sp.g.Outputs {
			if o == v {
				return nil, false
			}
		}
		if next == nil || (next.Domain != "" && next.Domain != "ai.onnx") || len(next.Outputs) < 1 {
			return nil, false
		}
		a, t, ok := m.affineOf(next, v)
		if !ok {
			return nil, false
		}
		if r == nil {
			r = &bnAffine{node: next, a: a, t: t}
		} else {
			if len(a) != len(r.a) {
				if len(a) != 1 && len(r.a) != 1 {
					return nil, false
				}
				nc := max(len(a), len(r.a))
				a, t, r.a, r.t = widen(a, nc), widen(t, nc), widen(r.a, nc), widen(r.t, nc)
			}
			for c := range r.a {
				r.a[c], r.t[c] = r.a[c]*a[c], r.t[c]*a[c]+t[c]
			}
			r.nodes = append(r.nodes, next)
		}
		v = next.Outputs[0]
	}
	return nil, false
}

// widen repeats a one-element slice n times.
func widen(v []float32, n int) []float32 {
	if len(v) != 1 {
		return v
	}
	w := make([]float32, n)
	for i := range w {
		w[i] = v[0]
	}
	return w
}

// affineOf returns node n (reading v) as y = a[c]*v + t[c]: a
// BatchNormalization, or a Mul or Add by a per-channel constant.
func (m *qdqFuser) affineOf(n *graph.Node, v *graph.Value) (a, t []float32, ok bool) {
	switch n.OpType {
	case "BatchNormalization":
		if len(n.Inputs) != 5 || n.Inputs[0] != v {
			return nil, nil, false
		}
		eps, err := n.Float("epsilon", 1e-5)
		if err != nil {
			return nil, nil, false
		}
		var p [4][]float32
		for i := range p {
			c := m.constOf(n.Inputs[1+i])
			if c == nil || c.DType() != tensor.Float32 || (i > 0 && c.Numel() != len(p[0])) {
				return nil, nil, false
			}
			p[i] = c.F32()
		}
		a, t = make([]float32, len(p[0])), make([]float32, len(p[0]))
		for c := range a {
			a[c] = p[0][c] / float32(math.Sqrt(float64(p[3][c]+eps)))
			t[c] = p[1][c] - p[2][c]*a[c]
		}
	case "Mul", "Add":
		if len(n.Inputs) != 2 || (n.Inputs[0] == v) == (n.Inputs[1] == v) {
			return nil, nil, false
		}
		other := n.Inputs[0]
		if other == v {
			other = n.Inputs[1]
		}
		c := m.constOf(other)
		if c == nil || c.DType() != tensor.Float32 || c.NDim() > 4 {
			return nil, nil, false
		}
		// One value, or one per channel on axis 1 of an NC... output.
		for d, sz := range c.Shape() {
			if sz != 1 && (c.NDim() < 3 || d != c.NDim()-3) {
				return nil, nil, false
			}
		}
		cv := c.F32()
		a, t = make([]float32, len(cv)), make([]float32, len(cv))
		for i, x := range cv {
			if n.OpType == "Mul" {
				a[i] = x
			} else {
				a[i], t[i] = 1, x
			}
		}
	default:
		return nil, nil, false
	}
	for c := range a {
		if !(a[c] != 0) || math.IsInf(float64(a[c]), 0) {
			return nil, nil, false
		}
	}
	return a, t, true
}

// floatTail is a region of float elementwise steps between an int8
// Conv/MatMul/Gemm (whose float result it reads) and a QuantizeLinear:
// the step computes the float result with the dequantizing epilogue
// y = float32(acc)*float32(sx*sw[c]) + b[c] (as the literal graph, up to
// its rounding of each product and sum), runs the region's own kernels on
// it and quantizes.
type floatTail struct {
	idx    []int  // the region's steps, in order
	steps  []step // their copies
	consts map[int]*tensor.Tensor
	src    int // the slot of the op's float result
	out    int // the slot the QuantizeLinear reads
	q      outQ
	sx     float32
	scaleW []float32
	bias   []float32
}

// floatTail finds the elementwise region from float slot o (the op's
// result) to one QuantizeLinear: every value in it is read only inside
// it (or by the QuantizeLinear) and is not returned.
func (m *qdqFuser) floatTail(o int) (*floatTail, bool) {
	if m.si.pinned[o] || len(m.readers[o]) == 0 {
		return nil, false
	}
	region := map[int]bool{}
	qi := -1
	work := []int{o}
	for len(work) > 0 && len(region) <= maxRegion {
		s := work[len(work)-1]
		work = work[:len(work)-1]
		for _, r := range m.readers[s] {
			if region[r] || r == qi {
				continue
			}
			st := &m.sp.steps[r]
			if !m.live(r) {
				return nil, false
			}
			if isOp(st, "QuantizeLinear") {
				if qi >= 0 || st.in[0] != s || s == o {
					return nil, false
				}
				qi = r
				continue
			}
			if !elementwise(st) {
				return nil, false
			}
			region[r] = true
			work = append(work, st.out[0])
		}
	}
	if qi < 0 || len(region) == 0 || len(region) > maxRegion {
		return nil, false
	}
	// Relu and Clip alone are saturate bounds of the int8 kernel.
	clampsOnly := true
	for r := range region {
		st := &m.sp.steps[r]
		clampsOnly = clampsOnly && (isOp(st, "Relu") || isOp(st, "Clip"))
		if ew, ok := st.kernel.(*ewFused); ok {
			for _, o := range ew.orig {
				clampsOnly = clampsOnly && (isOp(&o, "Relu") || isOp(&o, "Clip"))
			}
		}
	}
	if clampsOnly {
		return nil, false
	}
	q, ok := m.quantOut(m.sp.steps[qi].in[0])
	if !ok {
		return nil, false
	}
	t := &floatTail{src: o, out: m.sp.steps[qi].in[0], q: q, consts: map[int]*tensor.Tensor{}}
	for r := range region {
		t.idx = append(t.idx, r)
	}
	sortInts(t.idx)
	for _, r := range t.idx {
		st := m.sp.steps[r]
		if m.si.pinned[st.out[0]] {
			return nil, false
		}
		for _, rr := range m.readers[st.out[0]] {
			if !region[rr] && rr != qi {
				return nil, false
			}
		}
		for _, in := range st.in {
			if in < 0 || in == o {
				continue
			}
			if c := m.si.constant(in); c != nil {
				t.consts[in] = c
				continue
			}
			if p, has := m.producer[in]; !has || !region[p] {
				return nil, false
			}
		}
		t.steps = append(t.steps, st)
	}
	return t, true
}

// foldBias moves a first step that adds a constant row vector to a
// MatMul's float result (a Linear layer's bias, as exporters write it)
// into the epilogue, whose bias is then that vector: the step computed
// float32(y + b[j]) from y = float32(float32(acc)*s) + 0, the epilogue
// computes float32(float32(float32(acc)*s) + b[j]), the same value
// (signed zeros aside, which quantize alike), without a pass over y.
// t.bias must be all zeros (no other bias).
func (t *floatTail) foldBias(m *qdqFuser) {
	if len(t.steps) == 0 || len(m.readers[t.src]) != 1 {
		return
	}
	st := &t.steps[0]
	if !isOp(st, "Add") || !m.literal(st) || len(st.in) != 2 || len(st.out) != 1 {
		return
	}
	c := st.in[1]
	switch t.src {
	case st.in[0]:
	case st.in[1]:
		c = st.in[0]
	default:
		return
	}
	b := t.consts[c]
	if b == nil || b.DType() != tensor.Float32 || b.NDim() != 1 || b.Numel() != len(t.bias) {
		return
	}
	copy(t.bias, b.F32())
	t.src = st.out[0]
	t.steps = t.steps[1:]
}

// run runs the region on the op's float result y and quantizes.
func (t *floatTail) run(f *Frame, y *tensor.Tensor) ([]byte, []int, error) {
	vals := map[int]*tensor.Tensor{t.src: y}
	for _, st := range t.steps {
		in := make([]*tensor.Tensor, len(st.in))
		for i, s := range st.in {
			if s < 0 {
				continue
			}
			if v, ok := vals[s]; ok {
				in[i] = v
			} else {
				in[i] = t.consts[s]
			}
		}
		out, err := st.kernel.Run(f, in)
		if err != nil {
			return nil, nil, errAt(st.node, err)
		}
		if len(out) < 1 || out[0] == nil {
			return nil, nil, errAt(st.node, errNoOutput)
		}
		vals[st.out[0]] = out[0]
	}
	r := vals[t.out]
	if r == nil || r.DType() != tensor.Float32 {
		return nil, nil, errNoOutput
	}
	b := f.allocBytes(r.Numel())
	quantizeBytes(b, r.F32(), t.q.scale, t.q.zp, t.q.lo(), t.q.hi(), t.q.signed)
	return b, r.Shape(), nil
}

// runFloat computes the op's float result from uint8 data with the
// dequantizing epilogue: the rows of x times the packed weights
// (MatMul/Gemm), or per group, input patches times them (Conv).
func (k *qlinearKernel) runFloat(f *Frame, xv []byte, xsh []int) (*tensor.Tensor, error) {
	t := k.tail
	if k.kind != qlinConv {
		if len(xsh) < 1 || xsh[len(xsh)-1] != k.k {
			return nil, fmt.Errorf("x %v does not fit a weight of %d rows", xsh, k.k)
		}
		rows := shapeNumel(xsh[:len(xsh)-1])
		shape := append(append([]int{}, xsh[:len(xsh)-1]...), k.n)
		y := f.allocF32(rows * k.n)
		if rows > 0 && k.n > 0 {
			qgemm.GemmF32(rows, xv, k.k, k.zx, k.pack, &qgemm.Dequant{ScaleA: t.sx, ScaleW: t.scaleW, Bias: t.bias}, y, k.n)
		}
		return nnTensor(y, shape), nil
	}
	g, osh, err := k.geo.get(k.attrs, xsh, k.wsh)
	if err != nil {
		return nil, err
	}
	K, P, S := shapeNumel(g.k), shapeNumel(g.out), shapeNumel(g.in)
	out := f.allocF32(g.batch * g.cout * P)
	cg, mg := g.cin/g.group, g.cout/g.group
	q := cg * K
	if P == 0 || len(out) == 0 {
		return nnTensor(out, osh), nil
	}
	if q == 0 || mg == 0 {
		return nil, fmt.Errorf("empty convolution %v x %v", xsh, k.wsh)
	}
	var src []int
	pw := pointwise(k.attrs, k.wsh) && P == S
	if !pw {
		src = g.taps()
	}
	a := make([]uint8, P*q)
	c := make([]float32, P*mg)
	for b := 0; b < g.batch; b++ {
		for gr := 0; gr < g.group; gr++ {
			g.patches(xv, b, gr, src, uint8(k.zx), a) // src nil: 1x1, the patches are the pixels
			d := &qgemm.Dequant{ScaleA: t.sx, ScaleW: t.scaleW[gr*mg : (gr+1)*mg], Bias: t.bias[gr*mg : (gr+1)*mg]}
			qgemm.GemmF32(P, a, q, k.zx, k.packs[gr], d, c, mg)
			base := (b*g.cout + gr*mg) * P
			for m := 0; m < mg; m++ {
				dst := out[base+m*P : base+(m+1)*P]
				for p := range dst {
					dst[p] = c[p*mg+m]
				}
			}
		}
	}
	return nnTensor(out, osh), nil
}

// pointwise reports whether a convolution is 1x1 with stride 1 and no
// padding.
func pointwise(a qconvAttrs, wsh []int) bool {
	for _, d := range wsh[2:] {
		if d != 1 {
			return false
		}
	}
	for _, v := range a.strides {
		if v != 1 {
			return false
		}
	}
	for _, v := range a.pads {
		if v != 0 {
			return false
		}
	}
	return a.autoPad == "NOTSET" || a.autoPad == "VALID"
}
