package exec

import (
	"fmt"
	"strings"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/internal/kernels/qgemm"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/tensor"
)

// QDQ fusion (DESIGN.md principle 5): a compile-time rewrite of the main
// graph that runs
//
//	DequantizeLinear(x_q) ─┐
//	DequantizeLinear(w_q) ─┴─ Conv | MatMul | Gemm [─ Relu] ─ QuantizeLinear
//
// as one int8 step with QLinearConv / QLinearMatMul semantics: exact int32
// accumulation of (x - zx)(w - zw) on the qgemm kernels, plus the float
// bias as int32 RNE(b / float32(sx*sw)), requantized with
// M = float32(float32(sx*sw)/sy) (a Relu clamps at the output zero point,
// which is exact). The patterns it takes: uint8 activations with one scale
// and zero point, a constant int8 weight with one scale or one per output
// channel, an optional constant float bias, one output scale and zero
// point. Every value it removes must have no other reader and must not be
// returned by the graph or read by a subgraph. Options.Reference turns it
// off: the graph then runs literally (dequantize, float op, quantize).

// qdqKernel is the int8 step of a fused DQ -> op [-> Relu] -> Q pattern.
type qdqKernel struct {
	nodes []*graph.Node // the nodes it replaces, in graph order
	conv  bool
	attrs qconvAttrs // Conv
	wsh   []int      // Conv: the weight shape
	k, n  int        // MatMul/Gemm: weight [K, N]
	packs []*qgemm.Packed
	req   []*qgemm.Requant // one per group (Conv) or one (MatMul/Gemm)
	zx    int32
	dt    tensor.DType // the output type, uint8 or int8
}

// fuseQDQ rewrites sp's QDQ patterns into qdqKernel steps.
func fuseQDQ(sp *Subprogram) {
	si := newStepInfo(sp)
	producer := map[int]int{}
	readers := map[int][]int{}
	for i, st := range sp.steps {
		for _, s := range st.out {
			if s >= 0 {
				producer[s] = i
			}
		}
		for _, s := range st.in {
			if s >= 0 {
				readers[s] = append(readers[s], i)
			}
		}
	}
	removed := make([]bool, len(sp.steps))
	replaced := map[int]step{}
	changed := false
	for i := range sp.steps {
		st := &sp.steps[i]
		if removed[i] || !(isOp(st, "Conv") || isOp(st, "MatMul") || isOp(st, "Gemm")) {
			continue
		}
		m := &qdqMatch{sp: sp, si: si, producer: producer, readers: readers, removed: removed}
		ns, drop, ok := m.match(i)
		if !ok {
			continue
		}
		for _, j := range drop {
			removed[j] = true
		}
		q := drop[len(drop)-1]
		replaced[q] = ns
		removed[q] = false
		changed = true
	}
	if !changed {
		return
	}
	var steps []step
	for i, st := range sp.steps {
		if ns, ok := replaced[i]; ok {
			steps = append(steps, ns)
		} else if !removed[i] {
			steps = append(steps, st)
		}
	}
	sp.steps = steps
	if sp.release != nil {
		sp.release = releasePlan(sp)
	}
}

// qdqMatch holds what matching one pattern needs.
type qdqMatch struct {
	sp       *Subprogram
	si       *stepInfo
	producer map[int]int
	readers  map[int][]int
	removed  []bool
}

// slotOf returns the slot of v, or -2 when it has none.
func (m *qdqMatch) slotOf(v *graph.Value) int {
	if v == nil {
		return -1
	}
	if s, ok := m.sp.slots[v]; ok {
		return s
	}
	return -2
}

// constOf returns the compile-time value of v, or nil.
func (m *qdqMatch) constOf(v *graph.Value) *tensor.Tensor {
	s := m.slotOf(v)
	if s < 0 {
		return nil
	}
	return m.si.constant(s)
}

// private reports whether slot s is read by exactly one step and is
// neither returned nor read by a subgraph.
func (m *qdqMatch) private(s int) bool {
	return s >= 0 && m.si.uses[s] == 1 && !m.si.pinned[s] && len(m.readers[s]) == 1
}

// literal reports whether st runs its node unchanged: its inputs and
// outputs are the node's values.
func (m *qdqMatch) literal(st *step) bool {
	n := st.node
	if n == nil || len(st.in) != len(n.Inputs) || len(st.out) != len(n.Outputs) {
		return false
	}
	for i, v := range n.Inputs {
		if st.in[i] != m.slotOf(v) {
			return false
		}
	}
	for i, v := range n.Outputs {
		if st.out[i] != m.slotOf(v) {
			return false
		}
	}
	return true
}

// scalarQ reads a positive per-tensor float32 scale and checks that the
// zero point, when given, is one value (the caller checks its type).
func scalarQ(scale, zp *tensor.Tensor) (float32, *tensor.Tensor, bool) {
	if scale == nil || scale.DType() != tensor.Float32 || scale.Numel() != 1 {
		return 0, nil, false
	}
	if zp != nil && zp.Numel() != 1 {
		return 0, nil, false
	}
	s := scale.F32()[0]
	if !(s > 0) {
		return 0, nil, false
	}
	return s, zp, true
}

// match matches the pattern around the Conv/MatMul/Gemm step i. It returns
// the fused step and the indices of the steps it replaces, the
// QuantizeLinear step last.
func (m *qdqMatch) match(i int) (step, []int, bool) {
	st := &m.sp.steps[i]
	n := st.node
	if !m.literal(st) || len(st.out) != 1 || len(n.Inputs) < 2 {
		return step{}, nil, false
	}
	drop := []int{}
	// The activation: DequantizeLinear(x_q), uint8, one scale and zero point.
	xs := st.in[0]
	di, ok := m.producer[xs]
	if !ok || !m.private(xs) || m.removed[di] {
		return step{}, nil, false
	}
	dq := &m.sp.steps[di]
	if !isOp(dq, "DequantizeLinear") || !m.literal(dq) || len(dq.out) != 1 {
		return step{}, nil, false
	}
	sx, zxT, ok := scalarQ(m.constOf(dq.node.Inputs[1]), m.constOf(optValue(dq.node, 2)))
	if !ok || (optValue(dq.node, 2) != nil && zxT == nil) {
		return step{}, nil, false
	}
	var zx int32
	if zxT != nil {
		if zxT.DType() != tensor.Uint8 {
			return step{}, nil, false
		}
		zx = int32(zxT.U8()[0])
	} else if dq.node.Inputs[0].Type.Elem != graph.Uint8 {
		return step{}, nil, false
	}
	drop = append(drop, di)
	k := &qdqKernel{nodes: []*graph.Node{dq.node}, zx: zx, conv: isOp(st, "Conv")}
	// The weight: DequantizeLinear of a constant int8 tensor.
	w, sw, wdq, ok := m.weight(n.Inputs[1], st.in[1])
	if !ok {
		return step{}, nil, false
	}
	if wdq >= 0 {
		drop = append(drop, wdq)
	}
	k.nodes = append(k.nodes, n)
	drop = append(drop, i)
	var cout int
	var bias *tensor.Tensor
	switch {
	case k.conv:
		a, err := parseQConv(n)
		if err != nil || w.NDim() < 3 || (sw.axis >= 0 && sw.axis != 0) {
			return step{}, nil, false
		}
		k.attrs, k.wsh, cout = a, w.Shape(), w.Dim(0)
		if cout%a.group != 0 {
			return step{}, nil, false
		}
		bias = m.constOf(optValue(n, 2))
		if optValue(n, 2) != nil && bias == nil {
			return step{}, nil, false
		}
	case isOp(st, "MatMul"):
		if w.NDim() != 2 || (sw.axis >= 0 && sw.axis != 1) {
			return step{}, nil, false
		}
		k.k, k.n, cout = w.Dim(0), w.Dim(1), w.Dim(1)
		w = transposeI8(w)
	default: // Gemm
		alpha, err1 := n.Float("alpha", 1)
		beta, err2 := n.Float("beta", 1)
		ta, err3 := n.Int("transA", 0)
		tb, err4 := n.Int("transB", 0)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil || alpha != 1 || ta != 0 || w.NDim() != 2 {
			return step{}, nil, false
		}
		if tb == 0 {
			if sw.axis >= 0 && sw.axis != 1 {
				return step{}, nil, false
			}
			k.k, k.n = w.Dim(0), w.Dim(1)
			w = transposeI8(w)
		} else {
			if sw.axis >= 0 && sw.axis != 0 {
				return step{}, nil, false
			}
			k.k, k.n = w.Dim(1), w.Dim(0)
		}
		cout = k.n
		if optValue(n, 2) != nil {
			bias = m.constOf(optValue(n, 2))
			if bias == nil || beta != 1 || (bias.NDim() == 2 && bias.Dim(0) != 1) || bias.NDim() > 2 {
				return step{}, nil, false
			}
		}
	}
	if bias != nil && (bias.DType() != tensor.Float32 || bias.Numel() != cout) {
		return step{}, nil, false
	}
	// The output: [Relu ->] QuantizeLinear with one scale and zero point.
	o, relu := st.out[0], false
	var qs *step
	for {
		if !m.private(o) {
			return step{}, nil, false
		}
		j := m.readers[o][0]
		r := &m.sp.steps[j]
		if m.removed[j] || !m.literal(r) || len(r.out) != 1 || r.in[0] != o {
			return step{}, nil, false
		}
		if isOp(r, "Relu") && !relu {
			relu = true
			k.nodes = append(k.nodes, r.node)
			drop = append(drop, j)
			o = r.out[0]
			continue
		}
		if !isOp(r, "QuantizeLinear") {
			return step{}, nil, false
		}
		qs = r
		drop = append(drop, j)
		break
	}
	zyv := optValue(qs.node, 2)
	sy, zyT, ok := scalarQ(m.constOf(qs.node.Inputs[1]), m.constOf(zyv))
	if !ok || (zyv != nil && zyT == nil) {
		return step{}, nil, false
	}
	zy, dt := int32(0), tensor.Uint8
	if zyT != nil {
		if zyT.DType() != tensor.Uint8 && zyT.DType() != tensor.Int8 {
			return step{}, nil, false
		}
		v, _ := int32s(zyT)
		zy, dt = v[0], zyT.DType()
	} else if _, has := qs.node.Attrs["output_dtype"]; has {
		return step{}, nil, false
	}
	k.nodes = append(k.nodes, qs.node)
	k.dt = dt
	lo, hi, _ := qRange(dt)
	if relu {
		lo = max(lo, zy)
	}
	// Per-channel multipliers and int32 biases, and the packed weights.
	blo, bhi, _ := qRange(tensor.Int32)
	mult := make([]float32, cout)
	var b32 []int32
	if bias != nil {
		b32 = make([]int32, cout)
	}
	zws := make([]int32, cout)
	for oc := range mult {
		s, z := sw.scale[0], sw.zp[0]
		if sw.axis >= 0 {
			s, z = sw.scale[oc], sw.zp[oc]
		}
		mult[oc] = qmath.Multiplier(sx, s, sy)
		zws[oc] = z
		if b32 != nil {
			b32[oc] = qmath.Quantize(bias.F32()[oc], sx*s, 0, blo, bhi)
		}
	}
	groups, per := 1, k.k
	if k.conv {
		groups, per = k.attrs.group, w.Numel()/max(cout, 1)
	}
	mg := cout / groups
	wv := w.I8()
	for gr := 0; gr < groups; gr++ {
		r := &qgemm.Requant{Multiplier: mult[gr*mg : (gr+1)*mg], ZeroPoint: zy, Min: lo, Max: hi}
		if b32 != nil {
			r.Bias = b32[gr*mg : (gr+1)*mg]
		}
		k.req = append(k.req, r)
		k.packs = append(k.packs, qgemm.Pack(mg, per, wv[gr*mg*per:(gr+1)*mg*per], per, zws[gr*mg:(gr+1)*mg]))
	}
	return step{node: n, kernel: k, in: []int{dq.in[0]}, out: []int{qs.out[0]}}, drop, true
}

// weight finds the constant int8 weight behind value v (slot s): the
// DequantizeLinear producing it, folded at compile time or a step (whose
// index it returns, else -1), and its scales and zero points.
func (m *qdqMatch) weight(v *graph.Value, s int) (w *tensor.Tensor, q qparams, step int, ok bool) {
	p := v.Producer
	step = -1
	if p == nil || p.OpType != "DequantizeLinear" || (p.Domain != "" && p.Domain != "ai.onnx") || len(p.Inputs) < 2 {
		return nil, q, -1, false
	}
	if m.si.constant(s) == nil {
		j, has := m.producer[s]
		if !has || m.sp.steps[j].node != p || !m.private(s) || m.removed[j] {
			return nil, q, -1, false
		}
		step = j
	}
	w = m.constOf(p.Inputs[0])
	if w == nil || w.DType() != tensor.Int8 {
		return nil, q, -1, false
	}
	scale, zp := m.constOf(p.Inputs[1]), m.constOf(optValue(p, 2))
	if scale == nil || (optValue(p, 2) != nil && zp == nil) || (zp != nil && zp.DType() != tensor.Int8) {
		return nil, q, -1, false
	}
	ax, err := p.Int("axis", 1)
	if err != nil {
		return nil, q, -1, false
	}
	if bs, err := p.Int("block_size", 0); err != nil || bs != 0 {
		return nil, q, -1, false
	}
	q, err = readQParams(scale, zp, w.Shape(), ax)
	if err != nil {
		return nil, q, -1, false
	}
	for _, sc := range q.scale {
		if !(sc > 0) {
			return nil, q, -1, false
		}
	}
	return w, q, step, true
}

// optValue returns input i of n, or nil when absent.
func optValue(n *graph.Node, i int) *graph.Value {
	if i < len(n.Inputs) {
		return n.Inputs[i]
	}
	return nil
}

// transposeI8 returns the transpose of a 2-D int8 tensor.
func transposeI8(w *tensor.Tensor) *tensor.Tensor {
	r, c := w.Dim(0), w.Dim(1)
	src := w.I8()
	dst := make([]int8, len(src))
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			dst[j*r+i] = src[i*c+j]
		}
	}
	return tensor.FromInt8(dst, c, r)
}

// Run computes the fused pattern from x_q.
func (k *qdqKernel) Run(_ *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	if x.DType() != tensor.Uint8 {
		return nil, fmt.Errorf("x must be uint8 for the int8 kernel, got %s", x.DType())
	}
	if k.conv {
		return k.runConv(x)
	}
	if x.NDim() < 1 || x.Dim(-1) != k.k {
		return nil, fmt.Errorf("x %v does not fit a weight of %d rows", x.Shape(), k.k)
	}
	rows := shapeNumel(x.Shape()[:x.NDim()-1])
	shape := append(append([]int{}, x.Shape()[:x.NDim()-1]...), k.n)
	if k.dt == tensor.Int8 {
		c := make([]int8, rows*k.n)
		if rows > 0 && k.n > 0 {
			qgemm.GemmS8(rows, x.U8(), k.k, k.zx, k.packs[0], k.req[0], c, k.n)
		}
		return []*tensor.Tensor{tensor.FromInt8(c, shape...)}, nil
	}
	c := make([]uint8, rows*k.n)
	if rows > 0 && k.n > 0 {
		qgemm.GemmU8(rows, x.U8(), k.k, k.zx, k.packs[0], k.req[0], c, k.n)
	}
	return []*tensor.Tensor{tensor.FromUint8(c, shape...)}, nil
}

// runConv is convU8S8 with the weights packed at compile time and the
// requantizing epilogue: per batch entry and group, the input patches
// [P, C/group*K] (padding holds the zero point) times the weights.
func (k *qdqKernel) runConv(x *tensor.Tensor) ([]*tensor.Tensor, error) {
	g, err := k.attrs.geometry(x.Shape(), k.wsh)
	if err != nil {
		return nil, err
	}
	K, P, S := shapeNumel(g.k), shapeNumel(g.out), shapeNumel(g.in)
	cg, mg := g.cin/g.group, g.cout/g.group
	q := cg * K
	n := g.batch * g.cout * P
	var o8 []int8
	var ou []uint8
	if k.dt == tensor.Int8 {
		o8 = make([]int8, n)
	} else {
		ou = make([]uint8, n)
	}
	if P > 0 && q > 0 && mg > 0 {
		src := g.taps()
		xv := x.U8()
		a := make([]uint8, P*q)
		cu := make([]uint8, P*mg)
		c8 := make([]int8, P*mg)
		for b := 0; b < g.batch; b++ {
			for gr := 0; gr < g.group; gr++ {
				for ch := 0; ch < cg; ch++ {
					plane := xv[(b*g.cin+gr*cg+ch)*S : (b*g.cin+gr*cg+ch+1)*S]
					for kk := 0; kk < K; kk++ {
						col := ch*K + kk
						for p, s := range src[kk*P : (kk+1)*P] {
							if s >= 0 {
								a[p*q+col] = plane[s]
							} else {
								a[p*q+col] = uint8(k.zx)
							}
						}
					}
				}
				base := (b*g.cout + gr*mg) * P
				if o8 != nil {
					qgemm.GemmS8(P, a, q, k.zx, k.packs[gr], k.req[gr], c8, mg)
					for m := 0; m < mg; m++ {
						dst := o8[base+m*P : base+(m+1)*P]
						for p := range dst {
							dst[p] = c8[p*mg+m]
						}
					}
				} else {
					qgemm.GemmU8(P, a, q, k.zx, k.packs[gr], k.req[gr], cu, mg)
					for m := 0; m < mg; m++ {
						dst := ou[base+m*P : base+(m+1)*P]
						for p := range dst {
							dst[p] = cu[p*mg+m]
						}
					}
				}
			}
		}
	}
	if o8 != nil {
		return []*tensor.Tensor{tensor.FromInt8(o8, g.outShape()...)}, nil
	}
	return []*tensor.Tensor{tensor.FromUint8(ou, g.outShape()...)}, nil
}

// Fused reports how the main graph's quantized nodes run: one line
// "int8 OP: node (DequantizeLinear) -> ... -> node (QuantizeLinear)" per
// pattern fused into an int8 kernel, and one line "float: node (op)" per
// DequantizeLinear or QuantizeLinear step that still runs on its own
// (with Options.Reference, all of them). Weight dequantizations computed
// at compile time are not steps and are not listed.
func (p *Program) Fused() []string {
	var s []string
	for _, st := range p.main.steps {
		if k, ok := st.kernel.(*qdqKernel); ok {
			names := make([]string, len(k.nodes))
			for i, n := range k.nodes {
				names[i] = n.String()
			}
			op := "QLinearMatMul"
			if k.conv {
				op = "QLinearConv"
			}
			s = append(s, fmt.Sprintf("int8 %s: %s", op, strings.Join(names, " -> ")))
			continue
		}
		if isOp(&st, "DequantizeLinear") || isOp(&st, "QuantizeLinear") {
			s = append(s, "float: "+st.node.String())
		}
	}
	return s
}
