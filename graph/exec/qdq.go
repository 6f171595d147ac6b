package exec

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"unsafe"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/internal/kernels/qelem"
	"github.com/quanta-go/quanta/tensor"
)

// QDQ fusion (DESIGN.md principle 5): a compile-time rewrite of a compiled
// graph (the main graph and, through the control-flow kernels that expose
// them, their bodies) that runs the quantized regions of a QDQ model on
// 8-bit data. Every pattern reads 8-bit tensors (the inputs of
// DequantizeLinear nodes with one scale and zero point) and writes the
// 8-bit output of a QuantizeLinear node, so consecutive patterns pass
// uint8 (or int8) tensors to each other with no float in between:
//
//   - qdq_linear.go: DQ(x) and DQ(const int8 w) -> Conv | ConvTranspose |
//     MatMul | Gemm [-> Relu | Clip] -> Q as one int8 kernel (QLinearConv
//     semantics: int32 accumulation, int32 bias, float multiplier; a
//     Relu or Clip is a saturate bound; a BatchNormalization or Mul/Add
//     by per-channel constants the float rewrite folded into the Conv
//     goes into the multipliers and bias). Not bit-identical to the
//     literal graph: the float path rounds every product and sum, the
//     int8 path rounds once. qdq_tail.go: a float elementwise region
//     between the op and the Q (HardSwish written out after a Conv) runs
//     in the same step on the dequantized int32 result.
//   - qdq_elem.go: regions of float elementwise nodes between one DQ and
//     one Q become a 256-entry table (one per channel with per-channel
//     constants or a BatchNormalization); qdq_binary.go: Add, Sub, Mul,
//     Div of two DQ'd activations [then ops by constants, Relu, Clip]
//     compute dequantize, float op, quantize per element in one pass;
//     all bit-identical to the literal graph.
//   - qdq_move.go: Concat, data movement (Reshape, Transpose, Slice,
//     Gather, Split, ...) and MaxPool move bytes (a requantizing table
//     when the output's qparams differ from the input's); nearest Resize
//     gathers bytes; GlobalAveragePool sums codes exactly; AveragePool
//     and linear Resize dequantize into a scratch buffer, run the float
//     kernel and quantize: bit-identical to the literal graph.
//   - qdq_dyn.go: DynamicQuantizeLinear -> DQ -> MatMul | Gemm | Conv with
//     a DQ'd constant int8 weight: one step quantizing x with ONNX's rule,
//     an int32 product and float32(acc)*(sx*sw[c]) + bias.
//
// The DequantizeLinear and QuantizeLinear steps left at the edges of the
// 8-bit regions run on qelem's vector kernels (the same values).
//
// A value a pattern removes (the op's float output, a Relu's) must have no
// reader outside the pattern and must not be returned by the graph or
// read by a subgraph. A DequantizeLinear of an activation is treated as
// one per reader (ONNX Runtime's EnsureUniqueDQForNodeUnit): each fused
// reader reads the quantized tensor itself, and the DequantizeLinear step
// stays for the readers that are not fused (it goes when none is left).
// Options.Reference turns fusion off: the graph then runs literally.

// qdqKernel is implemented by every fused step's kernel.
type qdqKernel interface {
	Kernel
	// qdq returns the pattern's name and the nodes it runs, in graph
	// order.
	qdq() (pattern string, nodes []*graph.Node)
}

// qdqBase holds what every fused kernel reports.
type qdqBase struct {
	pattern string
	nodes   []*graph.Node
}

func (b *qdqBase) qdq() (string, []*graph.Node) { return b.pattern, b.nodes }

// qdqFuser rewrites one subprogram.
type qdqFuser struct {
	sp       *Subprogram
	si       *stepInfo
	producer map[int]int
	readers  map[int][]int
	removed  []bool
	replaced map[int]step
	// dqReads counts, per activation DequantizeLinear step, the reads of
	// its output taken over by fused patterns.
	dqReads map[int]int
}

// fuseQDQ rewrites sp's QDQ patterns, and those of the bodies of its
// control-flow steps, into fused steps.
func fuseQDQ(sp *Subprogram) {
	for _, st := range sp.steps {
		for _, b := range bodiesOf(st.kernel) {
			fuseQDQ(b)
		}
	}
	m := &qdqFuser{sp: sp, si: newStepInfo(sp), producer: map[int]int{}, readers: map[int][]int{},
		removed: make([]bool, len(sp.steps)), replaced: map[int]step{}, dqReads: map[int]int{}}
	for i, st := range sp.steps {
		for _, s := range st.out {
			if s >= 0 {
				m.producer[s] = i
			}
		}
		for _, s := range st.in {
			if s >= 0 {
				m.readers[s] = append(m.readers[s], i)
			}
		}
	}
	// Dynamic and linear patterns first (anchored at the op), then the
	// other ops, then elementwise regions (anchored at the QuantizeLinear).
	for i := range sp.steps {
		if !m.removed[i] {
			m.matchDynamic(i)
		}
	}
	for i := range sp.steps {
		if !m.removed[i] {
			m.matchLinear(i)
		}
	}
	for i := range sp.steps {
		if !m.removed[i] {
			m.matchBinary(i)
		}
	}
	for i := range sp.steps {
		if !m.removed[i] {
			m.matchMove(i)
		}
	}
	for i := range sp.steps {
		if !m.removed[i] {
			m.matchRegion(i)
		}
	}
	m.fastEdges()
	for dq, n := range m.dqReads {
		o := sp.steps[dq].out[0]
		if n == m.si.uses[o] && !m.si.pinned[o] {
			m.removed[dq] = true
		}
	}
	// A DynamicQuantizeLinear whose outputs only removed steps read goes.
	for i := range sp.steps {
		st := &sp.steps[i]
		if !m.live(i) || !isOp(st, "DynamicQuantizeLinear") {
			continue
		}
		dead := true
		for _, o := range st.out {
			if o < 0 {
				continue
			}
			dead = dead && !m.si.pinned[o]
			for _, r := range m.readers[o] {
				dead = dead && m.removed[r]
			}
		}
		m.removed[i] = dead
	}
	var steps []step
	for i, st := range sp.steps {
		if ns, ok := m.replaced[i]; ok {
			steps = append(steps, ns)
		} else if !m.removed[i] {
			steps = append(steps, st)
		}
	}
	sp.steps = steps
	if sp.release != nil {
		sp.release = releasePlan(sp)
	}
}

// fastEdges gives the per-tensor DequantizeLinear and QuantizeLinear
// steps left at the edges of the 8-bit regions qelem's kernels, which
// compute the same values as the reference kernels (qmath's formulas)
// with vector code.
func (m *qdqFuser) fastEdges() {
	for i := range m.sp.steps {
		st := &m.sp.steps[i]
		if !m.live(i) || len(st.out) != 1 || st.out[0] < 0 {
			continue
		}
		if isOp(st, "DequantizeLinear") {
			if a, ok := m.act(st.out[0]); ok && a.dq == i {
				m.sp.steps[i].kernel = &dqFastKernel{a: a}
			}
		} else if isOp(st, "QuantizeLinear") {
			if q, ok := m.quantStep(i); ok && q.scales == nil {
				m.sp.steps[i].kernel = &qFastKernel{q: q, orig: st.kernel}
			}
		}
	}
}

// dqFastKernel is a per-tensor DequantizeLinear.
type dqFastKernel struct{ a actQ }

// Run dequantizes in[0].
func (k *dqFastKernel) Run(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	if err := wantBytes(x, k.a.signed); err != nil {
		return nil, err
	}
	y := f.allocF32(x.Numel())
	if k.a.signed {
		qelem.Dequantize(y, x.I8(), k.a.scale, k.a.zp)
	} else {
		qelem.Dequantize(y, x.U8(), k.a.scale, k.a.zp)
	}
	return []*tensor.Tensor{nnTensor(y, x.Shape())}, nil
}

// qFastKernel is a per-tensor QuantizeLinear of float32 data.
type qFastKernel struct {
	q    outQ
	orig Kernel // for int32 input
}

// Run quantizes in[0].
func (k *qFastKernel) Run(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	if x == nil || x.DType() != tensor.Float32 {
		return k.orig.Run(f, in)
	}
	y := f.allocBytes(x.Numel())
	quantizeBytes(y, x.F32(), k.q.scale, k.q.zp, k.q.lo(), k.q.hi(), k.q.signed)
	return []*tensor.Tensor{byteTensor(y, k.q.signed, x.Shape()...)}, nil
}

// bodyKernel is implemented by control-flow kernels to expose their
// compiled bodies.
type bodyKernel interface {
	bodies() []*Subprogram
}

// bodiesOf returns the compiled bodies of a control-flow kernel.
func bodiesOf(k Kernel) []*Subprogram {
	if b, ok := k.(bodyKernel); ok {
		return b.bodies()
	}
	return nil
}

// slotOf returns the slot of v, -1 for nil, or -2 when it has none.
func (m *qdqFuser) slotOf(v *graph.Value) int {
	if v == nil {
		return -1
	}
	if s, ok := m.sp.slots[v]; ok {
		return s
	}
	return -2
}

// constOf returns the compile-time value of v, or nil.
func (m *qdqFuser) constOf(v *graph.Value) *tensor.Tensor {
	s := m.slotOf(v)
	if s < 0 {
		return nil
	}
	return m.si.constant(s)
}

// private reports whether slot s is read by exactly one step and is
// neither returned nor read by a subgraph.
func (m *qdqFuser) private(s int) bool {
	return s >= 0 && m.si.uses[s] == 1 && !m.si.pinned[s] && len(m.readers[s]) == 1
}

// literal reports whether st runs its node unchanged: its inputs and
// outputs are the node's values.
func (m *qdqFuser) literal(st *step) bool {
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

// live reports whether step j exists and is neither removed nor replaced.
func (m *qdqFuser) live(j int) bool {
	_, rep := m.replaced[j]
	return j >= 0 && j < len(m.sp.steps) && !m.removed[j] && !rep
}

// actQ is an activation read through a DequantizeLinear: the quantized
// tensor's slot and its scale and zero point.
type actQ struct {
	dq     int // the DequantizeLinear step
	src    int // the slot of the 8-bit tensor
	out    int // the slot of the dequantized value
	scale  float32
	zp     int32
	signed bool
	// scales, from actAxis, holds one scale per channel (axis 1); the
	// zero points are all zp.
	scales []float32
}

// act returns the activation DequantizeLinear producing float slot s: one
// scale and zero point, uint8 or int8 data.
func (m *qdqFuser) act(s int) (actQ, bool) {
	di, ok := m.producer[s]
	if s < 0 || !ok || !m.live(di) {
		return actQ{}, false
	}
	dq := &m.sp.steps[di]
	if !isOp(dq, "DequantizeLinear") || !m.literal(dq) || len(dq.out) != 1 || dq.in[0] < 0 || m.si.constant(dq.in[0]) != nil {
		return actQ{}, false
	}
	n := dq.node
	if bs, err := n.Int("block_size", 0); err != nil || bs != 0 {
		return actQ{}, false
	}
	scale, zpv := m.constOf(n.Inputs[1]), optValue(n, 2)
	zp := m.constOf(zpv)
	if scale == nil || scale.DType() != tensor.Float32 || scale.Numel() != 1 || !(scale.F32()[0] > 0) || (zpv != nil && (zp == nil || zp.Numel() != 1)) {
		return actQ{}, false
	}
	a := actQ{dq: di, src: dq.in[0], out: dq.out[0], scale: scale.F32()[0]}
	switch {
	case zp != nil && zp.DType() == tensor.Uint8:
		a.zp = int32(zp.U8()[0])
	case zp != nil && zp.DType() == tensor.Int8:
		a.zp, a.signed = int32(zp.I8()[0]), true
	case zp == nil && n.Inputs[0].Type.Elem == graph.Uint8:
	case zp == nil && n.Inputs[0].Type.Elem == graph.Int8:
		a.signed = true
	default:
		return actQ{}, false
	}
	return a, true
}

// outQ is the QuantizeLinear a pattern ends with.
type outQ struct {
	q      int // the step
	out    int // the slot of the 8-bit result
	scale  float32
	zp     int32
	signed bool
	// scales, from quantOutAxis, holds one scale per channel (axis 1);
	// the zero points are all zp.
	scales []float32
}

// axisQ reads per-channel (axis 1) qparams with one zero point value: the
// scales, the zero point and its signedness.
func (m *qdqFuser) axisQ(n *graph.Node) ([]float32, int32, bool, bool) {
	if bs, err := n.Int("block_size", 0); err != nil || bs != 0 {
		return nil, 0, false, false
	}
	if ax, err := n.Int("axis", 1); err != nil || ax != 1 {
		return nil, 0, false, false
	}
	scale, zp := m.constOf(n.Inputs[1]), m.constOf(optValue(n, 2))
	if scale == nil || scale.DType() != tensor.Float32 || scale.NDim() != 1 || zp == nil || zp.Numel() != scale.Numel() {
		return nil, 0, false, false
	}
	for _, v := range scale.F32() {
		if !(v > 0) {
			return nil, 0, false, false
		}
	}
	var zs []int32
	signed := false
	switch zp.DType() {
	case tensor.Uint8:
		zs, _ = int32s(zp)
	case tensor.Int8:
		zs, _ = int32s(zp)
		signed = true
	default:
		return nil, 0, false, false
	}
	for _, z := range zs {
		if z != zs[0] {
			return nil, 0, false, false
		}
	}
	return scale.F32(), zs[0], signed, true
}

// actAxis is act for a DequantizeLinear with one scale per channel
// (axis 1) and equal zero points.
func (m *qdqFuser) actAxis(s int) (actQ, bool) {
	di, ok := m.producer[s]
	if s < 0 || !ok || !m.live(di) {
		return actQ{}, false
	}
	dq := &m.sp.steps[di]
	if !isOp(dq, "DequantizeLinear") || !m.literal(dq) || len(dq.out) != 1 || len(dq.in) != 3 || dq.in[0] < 0 || m.si.constant(dq.in[0]) != nil {
		return actQ{}, false
	}
	sc, zp, signed, ok := m.axisQ(dq.node)
	if !ok {
		return actQ{}, false
	}
	return actQ{dq: di, src: dq.in[0], out: dq.out[0], scale: sc[0], zp: zp, signed: signed, scales: sc}, true
}

// quantOutAxis is quantOut for a QuantizeLinear with one scale per
// channel (axis 1) and equal zero points.
func (m *qdqFuser) quantOutAxis(s int) (outQ, bool) {
	if !m.private(s) {
		return outQ{}, false
	}
	j := m.readers[s][0]
	r := &m.sp.steps[j]
	if !m.live(j) || !isOp(r, "QuantizeLinear") || !m.literal(r) || len(r.out) != 1 || len(r.in) != 3 || r.in[0] != s || r.out[0] < 0 {
		return outQ{}, false
	}
	sc, zp, signed, ok := m.axisQ(r.node)
	if !ok {
		return outQ{}, false
	}
	return outQ{q: j, out: r.out[0], scale: sc[0], zp: zp, signed: signed, scales: sc}, true
}

// lo and hi return the output type's range.
func (o outQ) lo() int32 {
	if o.signed {
		return -128
	}
	return 0
}

func (o outQ) hi() int32 {
	if o.signed {
		return 127
	}
	return 255
}

// quantOut returns the QuantizeLinear that is the only reader of float
// slot s, with one scale and zero point.
func (m *qdqFuser) quantOut(s int) (outQ, bool) {
	if !m.private(s) {
		return outQ{}, false
	}
	j := m.readers[s][0]
	r := &m.sp.steps[j]
	if !m.live(j) || !isOp(r, "QuantizeLinear") || !m.literal(r) || len(r.out) != 1 || r.in[0] != s || r.out[0] < 0 {
		return outQ{}, false
	}
	n := r.node
	if bs, err := n.Int("block_size", 0); err != nil || bs != 0 {
		return outQ{}, false
	}
	scale, zpv := m.constOf(n.Inputs[1]), optValue(n, 2)
	zp := m.constOf(zpv)
	if scale == nil || scale.DType() != tensor.Float32 || scale.Numel() != 1 || !(scale.F32()[0] > 0) || (zpv != nil && (zp == nil || zp.Numel() != 1)) {
		return outQ{}, false
	}
	o := outQ{q: j, out: r.out[0], scale: scale.F32()[0]}
	switch {
	case zp != nil && zp.DType() == tensor.Uint8:
		o.zp = int32(zp.U8()[0])
	case zp != nil && zp.DType() == tensor.Int8:
		o.zp, o.signed = int32(zp.I8()[0]), true
	case zp == nil:
		if _, has := n.Attrs["output_dtype"]; has {
			return outQ{}, false
		}
	default:
		return outQ{}, false
	}
	return o, true
}

// commit installs a fused step replacing the steps consumed (the
// pattern's own steps, not the activation DequantizeLinears, whose reads
// by consumed steps are counted). It reports false, changing nothing,
// when the fused step cannot take the place of the last consumed step.
func (m *qdqFuser) commit(ns step, consumed []int, acts []actQ) bool {
	at := -1
	for _, j := range consumed {
		if !m.live(j) {
			return false
		}
		at = max(at, j)
	}
	for _, o := range ns.out {
		for _, r := range m.readers[o] {
			if r <= at {
				return false
			}
		}
	}
	for _, s := range ns.in {
		if p, ok := m.producer[s]; ok && s >= 0 && p >= at {
			return false
		}
	}
	in := map[int]bool{}
	for _, j := range consumed {
		in[j] = true
	}
	seen := map[int]bool{}
	for _, a := range acts {
		if seen[a.dq] {
			continue
		}
		seen[a.dq] = true
		for _, r := range m.readers[a.out] {
			if in[r] {
				m.dqReads[a.dq]++
			}
		}
	}
	for _, j := range consumed {
		m.removed[j] = true
	}
	m.removed[at] = false
	m.replaced[at] = ns
	return true
}

// optValue returns input i of n, or nil when absent.
func optValue(n *graph.Node, i int) *graph.Value {
	if i < len(n.Inputs) {
		return n.Inputs[i]
	}
	return nil
}

// bytesOf returns the 8-bit data of a uint8 or int8 tensor as bytes.
func bytesOf(t *tensor.Tensor) []byte {
	if t.DType() == tensor.Int8 {
		s := t.I8()
		if len(s) == 0 {
			return nil
		}
		return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s))
	}
	return t.U8()
}

// byteTensor wraps bytes as a uint8 or (signed) int8 tensor.
func byteTensor(b []byte, signed bool, shape ...int) *tensor.Tensor {
	if !signed {
		return tensor.FromUint8(b, shape...)
	}
	s := asInt8(b)
	if s == nil {
		s = []int8{}
	}
	return tensor.FromInt8(s, shape...)
}

// wantBytes checks that t is 8-bit data of the expected signedness.
func wantBytes(t *tensor.Tensor, signed bool) error {
	want := tensor.Uint8
	if signed {
		want = tensor.Int8
	}
	if t == nil || t.DType() != want {
		got := "nothing"
		if t != nil {
			got = t.DType().String()
		}
		return fmt.Errorf("the quantized input must be %s, got %s", want, got)
	}
	return nil
}

// QuantNode is one row of Program.QuantReport: how one node of a
// quantized model runs.
type QuantNode struct {
	// Graph is the name of the graph holding the node: "" for the main
	// graph, else the If/Loop/Scan body's name.
	Graph string
	// Node and Op are the node's name and operator type.
	Node, Op string
	// Int8 is true when the node runs inside a fused 8-bit step.
	Int8 bool
	// Pattern names the fused step ("QLinearConv", "LUT", ...); empty
	// for float nodes.
	Pattern string
}

// QuantReport returns, in execution order, one row per node the program
// runs (constant-folded nodes and nodes a float rewrite removed are not
// listed), saying whether it runs inside a fused 8-bit step or as a float
// kernel; the bodies of control-flow nodes follow their node.
func (p *Program) QuantReport() []QuantNode {
	return quantReport(p.main, "")
}

func quantReport(sp *Subprogram, name string) []QuantNode {
	var rows []QuantNode
	for _, st := range sp.steps {
		if k, ok := st.kernel.(qdqKernel); ok {
			pat, nodes := k.qdq()
			for _, n := range nodes {
				rows = append(rows, QuantNode{Graph: name, Node: n.Name, Op: n.OpType, Int8: true, Pattern: pat})
			}
			continue
		}
		if ew, ok := st.kernel.(*ewFused); ok {
			for _, o := range ew.orig {
				rows = append(rows, floatRows(name, o)...)
			}
			continue
		}
		if st.node != nil {
			rows = append(rows, floatRows(name, st)...)
		}
		for _, b := range bodiesOf(st.kernel) {
			bn := b.g.Name
			if name != "" {
				bn = name + "/" + bn
			}
			rows = append(rows, quantReport(b, bn)...)
		}
	}
	return rows
}

// floatRows returns the report rows of a float step: its node's, or a
// 16-bit round trip's two nodes.
func floatRows(name string, st step) []QuantNode {
	if rt, ok := st.kernel.(*roundTrip16); ok {
		return []QuantNode{{Graph: name, Node: rt.q.Name, Op: rt.q.OpType}, {Graph: name, Node: rt.dq.Name, Op: rt.dq.OpType}}
	}
	return []QuantNode{{Graph: name, Node: st.node.Name, Op: st.node.OpType}}
}

// QuantSummary counts a report's rows per operator type.
type QuantSummary struct {
	Op          string
	Int8, Float int
}

// SummarizeQuant returns the counts of rows per operator type, sorted by
// operator type.
func SummarizeQuant(rows []QuantNode) []QuantSummary {
	by := map[string]*QuantSummary{}
	for _, r := range rows {
		s := by[r.Op]
		if s == nil {
			s = &QuantSummary{Op: r.Op}
			by[r.Op] = s
		}
		if r.Int8 {
			s.Int8++
		} else {
			s.Float++
		}
	}
	out := make([]QuantSummary, 0, len(by))
	for _, s := range by {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Op < out[j].Op })
	return out
}

// Fused reports how the main graph's quantized nodes run: one line
// "int8 PATTERN: node (DequantizeLinear) -> ... -> node (QuantizeLinear)"
// per fused step, and one line "float: node (op)" per DequantizeLinear or
// QuantizeLinear step that still runs on its own (with Options.Reference,
// all of them). Weight dequantizations computed at compile time are not
// steps and are not listed. QuantReport has every node.
func (p *Program) Fused() []string {
	var s []string
	for _, st := range p.main.steps {
		if k, ok := st.kernel.(qdqKernel); ok {
			pat, nodes := k.qdq()
			names := make([]string, len(nodes))
			for i, n := range nodes {
				names[i] = n.String()
			}
			s = append(s, fmt.Sprintf("int8 %s: %s", pat, strings.Join(names, " -> ")))
			continue
		}
		if isOp(&st, "DequantizeLinear") || isOp(&st, "QuantizeLinear") {
			s = append(s, "float: "+st.node.String())
		}
	}
	return s
}

// runSteps runs steps of sp at compile time on the given slot values
// (others come from sp's constants) and returns the values computed.
func runSteps(sp *Subprogram, si *stepInfo, idx []int, vals map[int]*tensor.Tensor) (map[int]*tensor.Tensor, error) {
	f := &Frame{ctx: context.Background(), sp: sp}
	for _, j := range idx {
		st := &sp.steps[j]
		in := make([]*tensor.Tensor, len(st.in))
		for i, s := range st.in {
			if s < 0 {
				continue
			}
			if v, ok := vals[s]; ok {
				in[i] = v
			} else if c := si.constant(s); c != nil {
				in[i] = c
			} else {
				return nil, fmt.Errorf("value %d is not known", s)
			}
		}
		out, err := safeRun(st.kernel, f, in)
		if err != nil {
			return nil, err
		}
		for i, s := range st.out {
			if s >= 0 {
				if i >= len(out) || out[i] == nil {
					return nil, errNoOutput
				}
				vals[s] = out[i]
			}
		}
	}
	return vals, nil
}

// safeRun runs a kernel, turning a panic into an error.
func safeRun(k Kernel, f *Frame, in []*tensor.Tensor) (out []*tensor.Tensor, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%v", r)
		}
	}()
	return k.Run(f, in)
}
