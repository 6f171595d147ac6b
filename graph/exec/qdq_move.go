package exec

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/quanta-go/quanta/graph"

	"github.com/quanta-go/quanta/internal/kernels/qelem"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

// Data-movement, Concat, pooling and Resize QDQ patterns, all
// bit-identical to the literal graph:
//
//   - DQ(x) -> Reshape | Transpose | Flatten | Squeeze | Unsqueeze | Slice
//     | Gather | Split | Expand | Tile | Identity | DepthToSpace |
//     SpaceToDepth | MaxPool -> Q (one Q per output): the op's own kernel
//     runs on the 8-bit tensor (it moves values without changing them;
//     MaxPool picks the largest, and dequantization is increasing, so
//     max commutes with it), then, when an output's qparams differ from
//     the input's, the table Q(DQ(code)) maps the moved bytes.
//   - DQ(x1), DQ(x2), ... -> Concat -> Q: each input through its table
//     Q(DQ_i(code)) (none when its qparams are the output's), then the
//     byte concatenation.
//   - DQ(x) -> AveragePool | GlobalAveragePool | Resize | Upsample -> Q:
//     the input is dequantized into a scratch buffer, the float kernel
//     runs on it and the result is quantized, in one step: the literal
//     graph's arithmetic, without the float tensors of the graph.

// moveOps are the operators that only move (or, for MaxPool, select)
// their first input's values.
var moveOps = map[string]bool{
	"Reshape": true, "Transpose": true, "Flatten": true, "Squeeze": true, "Unsqueeze": true, "Slice": true,
	"Gather": true, "Split": true, "Expand": true, "Tile": true, "Identity": true, "DepthToSpace": true,
	"SpaceToDepth": true, "MaxPool": true,
}

// floatCoreOps are the operators run on dequantized scratch data.
var floatCoreOps = map[string]bool{"AveragePool": true, "GlobalAveragePool": true, "Resize": true, "Upsample": true}

// moveKernel runs a data-movement kernel on 8-bit data.
type moveKernel struct {
	qdqBase
	orig      Kernel
	inSigned  bool
	outSigned []bool
	tabs      []*qelem.Table // per output; nil: the bytes as moved
}

// requantTable returns the table Q(DQ(code)) from a to o, or nil when it
// is the identity on the same type.
func requantTable(a actQ, o outQ) *qelem.Table {
	t := new(qelem.Table)
	id := a.signed == o.signed
	lo, hi := int32(0), int32(255)
	if a.signed {
		lo, hi = -128, 127
	}
	for c := lo; c <= hi; c++ {
		v := qmath.Quantize(qmath.Dequantize(c, a.zp, a.scale), o.scale, o.zp, o.lo(), o.hi())
		t[byte(c)] = byte(v)
		id = id && v == c
	}
	if id {
		return nil
	}
	return t
}

// matchMove fuses data movement, Concat, pooling and Resize at step i.
func (m *qdqFuser) matchMove(i int) {
	st := &m.sp.steps[i]
	if st.node == nil || (st.node.Domain != "" && st.node.Domain != "ai.onnx") || !m.literal(st) || len(st.in) == 0 {
		return
	}
	op := st.node.OpType
	switch {
	case op == "Concat":
		m.matchConcat(i)
		return
	case moveOps[op], floatCoreOps[op]:
	default:
		return
	}
	x, ok := m.act(st.in[0])
	if !ok {
		return
	}
	for _, s := range st.in[1:] {
		if s == x.out {
			return
		}
	}
	consumed := []int{i}
	var qs []outQ
	for j, o := range st.out {
		if o < 0 {
			if op == "MaxPool" && j == 1 {
				continue
			}
			if op != "Split" {
				return
			}
			continue
		}
		if op == "MaxPool" && j > 0 {
			return
		}
		q, ok := m.quantOut(o)
		if !ok {
			return
		}
		qs = append(qs, q)
		consumed = append(consumed, q.q)
	}
	if len(qs) == 0 {
		return
	}
	ns := step{node: st.node, in: append([]int{x.src}, st.in[1:]...)}
	for _, q := range qs {
		ns.out = append(ns.out, q.out)
	}
	nodes := nodesOf(m, x.dq, i)
	for _, q := range qs {
		nodes = append(nodes, m.sp.steps[q.q].node)
	}
	if op == "GlobalAveragePool" {
		if len(qs) != 1 {
			return
		}
		k := &gapKernel{qdqBase: qdqBase{pattern: "QLinearGlobalAveragePool", nodes: nodes}, x: x, y: qs[0]}
		k.setTables()
		ns.kernel = k
	} else if op == "Resize" && resizeNearest(st) && m.constInputs(st) {
		if len(qs) != 1 {
			return
		}
		pat := "QLinearResize (nearest gather)"
		ns.kernel = &gatherKernel{qdqBase: qdqBase{pattern: pat, nodes: nodes}, orig: st.kernel, x: x, y: qs[0], tab: requantTable(x, qs[0]), maps: map[string]*gatherMap{}}
	} else if floatCoreOps[op] {
		if len(qs) != 1 {
			return
		}
		ns.kernel = &floatCoreKernel{qdqBase: qdqBase{pattern: "QLinear" + op + " (float32 core)", nodes: nodes}, orig: st.kernel, x: x, y: qs[0]}
	} else {
		k := &moveKernel{qdqBase: qdqBase{pattern: "QMove" + op, nodes: nodes}, orig: st.kernel, inSigned: x.signed}
		if op == "MaxPool" {
			k.pattern = "QLinearMaxPool"
		}
		for _, q := range qs {
			k.outSigned = append(k.outSigned, q.signed)
			k.tabs = append(k.tabs, requantTable(x, q))
		}
		ns.kernel = k
	}
	// Outputs omitted by the node stay omitted.
	if op == "Split" || op == "MaxPool" {
		ns.out = ns.out[:0]
		qi := 0
		for _, o := range st.out {
			if o < 0 {
				ns.out = append(ns.out, -1)
				continue
			}
			ns.out = append(ns.out, qs[qi].out)
			qi++
		}
	}
	m.commit(ns, consumed, []actQ{x})
}

// nodesOf returns the nodes of steps a and b.
func nodesOf(m *qdqFuser, a, b int) []*graph.Node {
	return []*graph.Node{m.sp.steps[a].node, m.sp.steps[b].node}
}

// Run moves the 8-bit data and requantizes the outputs that need it.
func (k *moveKernel) Run(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := wantBytes(in[0], k.inSigned); err != nil {
		return nil, err
	}
	outs, err := k.orig.Run(f, in)
	if err != nil {
		return nil, err
	}
	res := make([]*tensor.Tensor, len(outs))
	oi := 0
	for j, o := range outs {
		if o == nil {
			continue
		}
		if oi >= len(k.tabs) {
			break
		}
		if err := wantBytes(o, k.inSigned); err != nil {
			return nil, fmt.Errorf("output %d: %w", j, err)
		}
		if t := k.tabs[oi]; t != nil {
			y := f.allocBytes(o.Numel())
			qelem.Lookup(y, bytesOf(o), t)
			o = byteTensor(y, k.outSigned[oi], o.Shape()...)
		}
		res[j] = o
		oi++
	}
	return res, nil
}

// concatKernel concatenates 8-bit inputs, each through its table.
type concatKernel struct {
	qdqBase
	orig     Kernel
	inSigned []bool
	outSign  bool
	tabs     []*qelem.Table
	// axis is the node's axis attribute, math.MinInt64 when absent (the
	// op's own kernel then concatenates).
	axis int64
}

// matchConcat fuses DQ'd inputs -> Concat -> Q at step i.
func (m *qdqFuser) matchConcat(i int) {
	st := &m.sp.steps[i]
	if len(st.out) != 1 || len(st.in) == 0 {
		return
	}
	q, ok := m.quantOut(st.out[0])
	if !ok {
		return
	}
	k := &concatKernel{qdqBase: qdqBase{pattern: "QLinearConcat"}, orig: st.kernel, outSign: q.signed, axis: math.MinInt64}
	if a := st.node.Attrs["axis"]; a != nil && a.Kind == graph.AttrInt {
		k.axis = a.I
	}
	var acts []actQ
	ns := step{node: st.node, out: []int{q.out}}
	for _, s := range st.in {
		a, ok := m.act(s)
		if !ok {
			return
		}
		acts = append(acts, a)
		ns.in = append(ns.in, a.src)
		k.inSigned = append(k.inSigned, a.signed)
		k.tabs = append(k.tabs, requantTable(a, q))
		k.nodes = append(k.nodes, m.sp.steps[a.dq].node)
	}
	k.nodes = append(k.nodes, st.node, m.sp.steps[q.q].node)
	ns.kernel = k
	m.commit(ns, []int{i, q.q}, acts)
}

// Run concatenates.
func (k *concatKernel) Run(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	args := make([]*tensor.Tensor, len(in))
	for i, t := range in {
		if err := wantBytes(t, k.inSigned[i]); err != nil {
			return nil, fmt.Errorf("input %d: %w", i, err)
		}
		args[i] = t
	}
	if y, ok := k.direct(f, in); ok {
		return []*tensor.Tensor{y}, nil
	}
	for i, t := range in {
		if k.tabs[i] != nil {
			y := f.allocBytes(t.Numel())
			qelem.Lookup(y, bytesOf(t), k.tabs[i])
			args[i] = byteTensor(y, k.outSign, t.Shape()...)
		}
	}
	return k.orig.Run(f, args)
}

// direct writes each input, through its table, straight into its place
// in the output. It declines (ok false) when the axis is unknown or the
// shapes do not line up, leaving the error to the op's own kernel.
func (k *concatKernel) direct(f *Frame, in []*tensor.Tensor) (*tensor.Tensor, bool) {
	if k.axis == math.MinInt64 || len(in) == 0 {
		return nil, false
	}
	s0 := in[0].Shape()
	a, err := axis(k.axis, len(s0))
	if err != nil {
		return nil, false
	}
	shape := slices.Clone(s0)
	shape[a] = 0
	for _, t := range in {
		ts := t.Shape()
		if len(ts) != len(s0) {
			return nil, false
		}
		for d := range ts {
			if d != a && ts[d] != s0[d] {
				return nil, false
			}
		}
		shape[a] += ts[a]
	}
	y := f.allocBytes(shapeNumel(shape))
	concatPieces(in, a, shape, func(i, dst, src, n int) {
		d, x := y[dst:dst+n], bytesOf(in[i])[src:src+n]
		if k.tabs[i] != nil {
			qelem.LookupSerial(d, x, k.tabs[i])
		} else {
			copy(d, x)
		}
	})
	return byteTensor(y, k.outSign, shape...), true
}

// floatCoreKernel dequantizes, runs a float kernel and quantizes.
type floatCoreKernel struct {
	qdqBase
	orig Kernel
	x    actQ
	y    outQ
}

// Run computes Q(op(DQ(x), ...)).
func (k *floatCoreKernel) Run(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	if err := wantBytes(x, k.x.signed); err != nil {
		return nil, err
	}
	xf := f.allocF32(x.Numel())
	if k.x.signed {
		qelem.Dequantize(xf, x.I8(), k.x.scale, k.x.zp)
	} else {
		qelem.Dequantize(xf, x.U8(), k.x.scale, k.x.zp)
	}
	args := append([]*tensor.Tensor{nnTensor(xf, x.Shape())}, in[1:]...)
	outs, err := k.orig.Run(f, args)
	if err != nil {
		return nil, err
	}
	if len(outs) == 0 || outs[0] == nil || outs[0].DType() != tensor.Float32 {
		return nil, errNoOutput
	}
	yf := outs[0]
	y := f.allocBytes(yf.Numel())
	quantizeBytes(y, yf.F32(), k.y.scale, k.y.zp, k.y.lo(), k.y.hi(), k.y.signed)
	return []*tensor.Tensor{byteTensor(y, k.y.signed, yf.Shape()...)}, nil
}

// gapKernel is GlobalAveragePool on 8-bit data. The float kernel computes
// float32(sum / hw) with the sum of the plane's float32 values in
// float64; those values are dequantized codes, multiples of one power of
// two at most 2^9 times larger than their smallest, so for planes of up to
// 2^21 elements every partial sum is exact in float64 and the sum is
// sum over codes c of count[c] * DQ(c), whatever the order. The step forms
// that exact sum, so the float kernel's bits, one of three ways: planes
// under 8192 codes as integers through byte tables (qelem.SumLookupsRows,
// where it runs vector code), else short planes in four float64 running
// sums and long ones from the codes' counts.
type gapKernel struct {
	qdqBase
	x   actQ
	y   outQ
	tab [256]float64
	// When every tab[c] is (lo + v[c]) * unit with integers v[c] in
	// [0, 2^40), bytes holds the bytes of v (table k: bits 8k..8k+7),
	// and a plane's sum is (hw*lo + sum of v) * unit, summed exactly by
	// qelem.SumLookupsRows; sumOK says so. Run takes that path when qelem
	// sums lookups with vector code.
	bytes [qelem.SumTables]qelem.Table
	lo    int64
	unit  float64
	sumOK bool
}

// setTables fills tab with the dequantized codes and, when they allow,
// the byte tables.
func (k *gapKernel) setTables() {
	e := math.MaxInt
	for c := range k.tab {
		k.tab[c] = float64(qmath.Dequantize(storedValue(byte(c), k.x.signed), k.x.zp, k.x.scale))
		if v := k.tab[c]; v != 0 {
			if math.IsInf(v, 0) || math.IsNaN(v) {
				return
			}
			_, ex := math.Frexp(v)
			e = min(e, ex-24) // v is a float32: 24 significant bits
		}
	}
	if e == math.MaxInt {
		e = 0
	}
	if e < -1000 || e > 1000 {
		return
	}
	var iv [256]int64
	lo := int64(math.MaxInt64)
	for c, v := range k.tab {
		n := math.Ldexp(v, -e)
		if n != math.Trunc(n) || math.Abs(n) >= 1<<39 {
			return
		}
		iv[c] = int64(n)
		lo = min(lo, iv[c])
	}
	for c, v := range iv {
		for b := range k.bytes {
			k.bytes[b][c] = byte((v - lo) >> (8 * b))
		}
	}
	k.lo, k.unit, k.sumOK = lo, math.Ldexp(1, e), true
}

// gapSumPlane bounds the planes summed with the byte tables: the integer
// sum stays below 2^53, exact in float64.
const gapSumPlane = 1 << 13

// gapMaxPlane bounds the plane size of the exact histogram sum.
const gapMaxPlane = 1 << 21

// Run pools every plane.
func (k *gapKernel) Run(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	if err := wantBytes(x, k.x.signed); err != nil {
		return nil, err
	}
	xs := x.Shape()
	if len(xs) < 2 {
		return nil, fmt.Errorf("input has shape %v: want [N, C, ...]", xs)
	}
	planes, hw := xs[0]*xs[1], shapeNumel(xs[2:])
	if hw > gapMaxPlane {
		return nil, fmt.Errorf("planes of %d elements are over the %d the exact sum takes", hw, gapMaxPlane)
	}
	xb := bytesOf(x)
	yf := make([]float32, planes)
	if k.sumOK && hw < gapSumPlane && qelem.SumLookupsVectorized() {
		// The same exact sum, as integers: per plane, the sum over table
		// b of its byte sum * 256^b, plus hw*lo; planes in batches.
		parallel.For(planes, max(1, byteGrain/max(1, hw)), func(s, e int) {
			var sums [64][qelem.SumTables]uint64
			for p0 := s; p0 < e; p0 += len(sums) {
				rows := sums[:min(len(sums), e-p0)]
				qelem.SumLookupsRows(xb[p0*hw:(p0+len(rows))*hw], hw, &k.bytes, rows)
				for r, sr := range rows {
					n := int64(hw) * k.lo
					for b, v := range sr {
						n += int64(v) << (8 * b)
					}
					yf[p0+r] = float32(float64(n) * k.unit / float64(hw))
				}
			}
		})
		y := f.allocBytes(planes)
		quantizeBytes(y, yf, k.y.scale, k.y.zp, k.y.lo(), k.y.hi(), k.y.signed)
		return []*tensor.Tensor{byteTensor(y, k.y.signed, gapShape(xs)...)}, nil
	}
	parallel.For(planes, max(1, byteGrain/max(1, hw)), func(s, e int) {
		var cnt [4][256]int32
		for pl := s; pl < e; pl++ {
			if hw < 1024 {
				// Short planes: the same exact sum, element by element,
				// in four running sums (every partial sum is exact, so
				// the order does not change the bits).
				p := xb[pl*hw : (pl+1)*hw]
				var s0, s1, s2, s3 float64
				i := 0
				for ; i+4 <= len(p); i += 4 {
					s0 += k.tab[p[i]]
					s1 += k.tab[p[i+1]]
					s2 += k.tab[p[i+2]]
					s3 += k.tab[p[i+3]]
				}
				for ; i < len(p); i++ {
					s0 += k.tab[p[i]]
				}
				yf[pl] = float32(((s0 + s1) + (s2 + s3)) / float64(hw))
				continue
			}
			// Four histograms, so that runs of equal codes do not wait
			// on one counter.
			cnt = [4][256]int32{}
			p := xb[pl*hw : (pl+1)*hw]
			i := 0
			for ; i+4 <= len(p); i += 4 {
				q := p[i : i+4 : i+4]
				cnt[0][q[0]]++
				cnt[1][q[1]]++
				cnt[2][q[2]]++
				cnt[3][q[3]]++
			}
			for ; i < len(p); i++ {
				cnt[0][p[i]]++
			}
			var sum float64
			for c := range 256 {
				if n := cnt[0][c] + cnt[1][c] + cnt[2][c] + cnt[3][c]; n != 0 {
					sum += float64(n) * k.tab[c]
				}
			}
			yf[pl] = float32(sum / float64(hw))
		}
	})
	y := f.allocBytes(planes)
	quantizeBytes(y, yf, k.y.scale, k.y.zp, k.y.lo(), k.y.hi(), k.y.signed)
	return []*tensor.Tensor{byteTensor(y, k.y.signed, gapShape(xs)...)}, nil
}

// gapShape is GlobalAveragePool's output shape for input shape xs:
// [N, C, 1, ...].
func gapShape(xs []int) []int {
	shape := []int{xs[0], xs[1]}
	for range xs[2:] {
		shape = append(shape, 1)
	}
	return shape
}

// resizeNearest reports whether a Resize step picks input elements
// (mode nearest).
func resizeNearest(st *step) bool {
	mode, err := st.node.StringAttr("mode", "nearest")
	return err == nil && mode == "nearest"
}

// constInputs reports whether every input of st but the first is absent
// or a compile-time constant.
func (m *qdqFuser) constInputs(st *step) bool {
	for _, s := range st.in[1:] {
		if s >= 0 && m.si.constant(s) == nil {
			return false
		}
	}
	return true
}

// gatherKernel runs an op that copies input elements (nearest Resize) as
// a byte gather: per input shape, the op's own float kernel is run once
// on the element indices 0, 1, 2, ... (exact in float32 below 2^24), and
// the output holds the indices of the elements it copies.
type gatherKernel struct {
	qdqBase
	orig Kernel
	x    actQ
	y    outQ
	tab  *qelem.Table // nil: no requantization
	mu   sync.Mutex
	maps map[string]*gatherMap
}

// gatherMap is the gather of one input shape.
type gatherMap struct {
	idx   []int32
	shape []int
	// row is the length of the output's last axis; src[r] is the
	// earlier output row that output row r repeats (a nearest upsample's
	// copied rows), or -1 when row r is gathered.
	row int
	src []int32
	// When every output row gathers the same column pattern from its own
	// place in the input (a Resize of the last axis), base[r] is row r's
	// first input index and col the pattern relative to it; idx is then
	// dropped. dup2 says col is 0, 0, 1, 1, 2, 2, ... (a 2x upsample).
	base []int32
	col  []int32
	dup2 bool
}

// findColumns fills g.base, g.col and g.dup2 when the rows share one
// column pattern, and drops g.idx.
func (g *gatherMap) findColumns() {
	if len(g.shape) < 2 || g.shape[len(g.shape)-1] == 0 {
		return
	}
	w := g.shape[len(g.shape)-1]
	rows := len(g.idx) / w
	// The pattern is relative to the first row's smallest index, so every
	// offset is at least 0.
	lo := slices.Min(g.idx[:w])
	col := make([]int32, w)
	for i := range col {
		col[i] = g.idx[i] - lo
	}
	base := make([]int32, rows)
	for r := range base {
		b := g.idx[r*w] - col[0]
		for i, c := range col {
			if g.idx[r*w+i]-b != c {
				return
			}
		}
		base[r] = b
	}
	g.row, g.base, g.col, g.idx = w, base, col, nil
	g.dup2 = w%2 == 0
	for i, c := range col {
		g.dup2 = g.dup2 && int(c) == i/2
	}
}

// gatherRow writes output row r of g (g.row elements) from xb, through
// tab when it is not nil.
func (g *gatherMap) gatherRow(out, xb []byte, r int, tab *qelem.Table) {
	if g.col == nil {
		idx := g.idx[r*g.row : (r+1)*g.row]
		if tab == nil {
			for i, j := range idx {
				out[i] = xb[j]
			}
			return
		}
		for i, j := range idx {
			out[i] = tab[xb[j]]
		}
		return
	}
	b := xb[g.base[r]:]
	if g.dup2 {
		b = b[:len(out)/2]
		if tab == nil {
			// Eight bytes at a time, each doubled in a 64-bit word.
			j := 0
			for ; j+8 <= len(b); j += 8 {
				v := binary.LittleEndian.Uint64(b[j:])
				binary.LittleEndian.PutUint64(out[2*j:], dup4(uint32(v)))
				binary.LittleEndian.PutUint64(out[2*j+8:], dup4(uint32(v>>32)))
			}
			for ; j < len(b); j++ {
				out[2*j], out[2*j+1] = b[j], b[j]
			}
			return
		}
		for j, v := range b {
			t := tab[v]
			out[2*j], out[2*j+1] = t, t
		}
		return
	}
	if tab == nil {
		for i, c := range g.col {
			out[i] = b[c]
		}
		return
	}
	for i, c := range g.col {
		out[i] = tab[b[c]]
	}
}

// dup4 returns the four bytes of x, each twice, in order (little-endian):
// bytes a b c d become a a b b c c d d.
func dup4(x uint32) uint64 {
	s := uint64(x)
	s = (s | s<<16) & 0x0000ffff0000ffff
	s = (s | s<<8) & 0x00ff00ff00ff00ff
	return s | s<<8
}

// findRepeats fills g.row and g.src: output rows whose indices equal the
// previous row's repeat that row's source, so Run copies them instead of
// gathering element by element.
func (g *gatherMap) findRepeats() {
	if len(g.shape) < 2 || g.shape[len(g.shape)-1] == 0 {
		return
	}
	g.row = g.shape[len(g.shape)-1]
	rows := shapeNumel(g.shape) / g.row
	g.src = make([]int32, rows)
	repeats := 0
	for r := range g.src {
		g.src[r] = -1
		if r == 0 {
			continue
		}
		if g.same(r, r-1) {
			if g.src[r-1] >= 0 {
				g.src[r] = g.src[r-1]
			} else {
				g.src[r] = int32(r - 1)
			}
			repeats++
		}
	}
	if repeats == 0 {
		g.src = nil
	}
}

// same reports whether output rows r and q gather the same elements.
func (g *gatherMap) same(r, q int) bool {
	if g.col != nil {
		return g.base[r] == g.base[q]
	}
	return slices.Equal(g.idx[r*g.row:(r+1)*g.row], g.idx[q*g.row:(q+1)*g.row])
}

// maxGatherMaps bounds the cached input shapes.
const maxGatherMaps = 16

func (k *gatherKernel) gather(f *Frame, in []*tensor.Tensor) (*gatherMap, error) {
	x := in[0]
	key := fmt.Sprint(x.Shape())
	k.mu.Lock()
	g := k.maps[key]
	k.mu.Unlock()
	if g != nil {
		return g, nil
	}
	n := x.Numel()
	if n >= 1<<24 {
		return nil, fmt.Errorf("input of %d elements is too large for the gather map", n)
	}
	iota := make([]float32, n)
	for i := range iota {
		iota[i] = float32(i)
	}
	args := append([]*tensor.Tensor{tensor.FromFloat32(iota, x.Shape()...)}, in[1:]...)
	outs, err := k.orig.Run(&Frame{ctx: f.ctx}, args)
	if err != nil {
		return nil, err
	}
	if len(outs) == 0 || outs[0] == nil || outs[0].DType() != tensor.Float32 {
		return nil, errNoOutput
	}
	g = &gatherMap{idx: make([]int32, outs[0].Numel()), shape: outs[0].Shape()}
	for i, v := range outs[0].F32() {
		j := int32(v)
		if float32(j) != v || j < 0 || int(j) >= n {
			return nil, fmt.Errorf("the op does not copy input elements")
		}
		g.idx[i] = j
	}
	g.findColumns()
	g.findRepeats()
	k.mu.Lock()
	if len(k.maps) < maxGatherMaps {
		k.maps[key] = g
	}
	k.mu.Unlock()
	return g, nil
}

// Run gathers the bytes.
func (k *gatherKernel) Run(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	if err := wantBytes(x, k.x.signed); err != nil {
		return nil, err
	}
	g, err := k.gather(f, in)
	if err != nil {
		return nil, err
	}
	xb := bytesOf(x)
	y := f.allocBytes(shapeNumel(g.shape))
	if g.row > 0 {
		// Rows that repeat a row of the same chunk are copied; the
		// others (a chunk's first rows included) are gathered, so the
		// bytes do not depend on how the rows are split.
		w := g.row
		parallel.For(len(y)/w, max(1, (1<<14)/w), func(s, e int) {
			for r := s; r < e; r++ {
				out := y[r*w : (r+1)*w]
				if g.src != nil {
					if src := int(g.src[r]); src >= s {
						copy(out, y[src*w:(src+1)*w])
						continue
					}
				}
				g.gatherRow(out, xb, r, k.tab)
			}
		})
		return []*tensor.Tensor{byteTensor(y, k.y.signed, g.shape...)}, nil
	}
	parallel.For(len(y), 1<<14, func(s, e int) {
		if k.tab == nil {
			for i, j := range g.idx[s:e] {
				y[s+i] = xb[j]
			}
			return
		}
		for i, j := range g.idx[s:e] {
			y[s+i] = k.tab[xb[j]]
		}
	})
	return []*tensor.Tensor{byteTensor(y, k.y.signed, g.shape...)}, nil
}
