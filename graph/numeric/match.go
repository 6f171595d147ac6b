package numeric

import (
	"fmt"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// This file pairs the float model's nodes and values with the quantized
// model's. Converters keep node names (and, for values they do not
// quantize, value names), so a layer is a float node with a same-named
// node in the quantized model. What consumers of the quantized node read
// is its activation: the DequantizeLinear output after the QuantizeLinear
// of its output, when there is one.

// probe pairs a float value with the quantized model's value compared to
// it, and accumulates their statistics.
type probe struct {
	fv, qv *graph.Value
	// deq dequantizes the quantized value (the uint8 output of a
	// QLinearConv or QLinearMatMul); nil when it is float already.
	deq *affine
	acc acc
	// pending holds the float data observed in the current feed, in
	// order (a value inside a Loop body is observed once per iteration).
	pending []observed
	// skip marks a value that is not float32 in one of the models: it is
	// not compared.
	skip bool
	// unscale divides the quantized value per channel (axis 1): the
	// value was equalized (quantize.Equalization), the float one not.
	unscale []float32
}

// observed is a copy of one float tensor of the current feed.
type observed struct {
	data  []float32
	shape []int
}

// affine is a per-tensor scale and zero point.
type affine struct {
	scale float32
	zp    int32
}

// weightOps are the op types whose weight is input 1.
var weightOps = map[string]bool{"Conv": true, "ConvTranspose": true, "Gemm": true, "MatMul": true}

// qlinearOps are quantized-operator ops (ONNX Runtime's QOperator format)
// matched loosely: their weight input, weight qparams and output qparams.
var qlinearOps = map[string]struct{ w, ws, wz, ys, yz, axis int }{
	"QLinearConv":   {3, 4, 5, 6, 7, 0},
	"QLinearMatMul": {3, 4, 5, 6, 7, -1},
}

// allNodes returns g's nodes in graph order, each node's subgraph nodes
// right after it.
func allNodes(g *graph.Graph) []*graph.Node {
	var out []*graph.Node
	var walk func(g *graph.Graph)
	walk = func(g *graph.Graph) {
		for _, n := range g.Nodes {
			out = append(out, n)
			for _, sg := range n.Subgraphs() {
				walk(sg)
			}
		}
	}
	walk(g)
	return out
}

// index is what matching needs to know of a model.
type index struct {
	nodes  []*graph.Node
	byName map[string][]*graph.Node
	users  map[*graph.Value][]*graph.Node
	values map[string]*graph.Value
}

func newIndex(m *graph.Model) *index {
	ix := &index{nodes: allNodes(m.Graph), byName: map[string][]*graph.Node{}, users: map[*graph.Value][]*graph.Node{}, values: map[string]*graph.Value{}}
	for _, v := range m.Graph.Inputs {
		ix.values[v.Name] = v
	}
	for _, n := range ix.nodes {
		ix.byName[n.Name] = append(ix.byName[n.Name], n)
		seen := map[*graph.Value]bool{}
		for _, in := range n.Inputs {
			if in != nil && !seen[in] {
				seen[in] = true
				ix.users[in] = append(ix.users[in], n)
			}
		}
		for _, o := range n.Outputs {
			if o != nil {
				ix.values[o.Name] = o
			}
		}
	}
	return ix
}

func isDefault(n *graph.Node) bool { return n.Domain == "" || n.Domain == "ai.onnx" }

func isOp(n *graph.Node, op string) bool { return n != nil && n.OpType == op && isDefault(n) }

// dequantized returns the DequantizeLinear output that consumers of v read
// when v is quantized (v -> QuantizeLinear -> DequantizeLinear), else nil.
func (ix *index) dequantized(v *graph.Value) *graph.Value {
	for _, q := range ix.users[v] {
		if !isOp(q, "QuantizeLinear") || q.Input(0) != v || q.Output(0) == nil {
			continue
		}
		for _, d := range ix.users[q.Outputs[0]] {
			if isOp(d, "DequantizeLinear") && d.Input(0) == q.Outputs[0] && d.Output(0) != nil {
				return d.Outputs[0]
			}
		}
	}
	return nil
}

// counterpart returns the quantized node matching float node nf, the k-th
// float node of its name: the k-th quantized node of that name, or a
// QLinearConv/QLinearMatMul named name+"_quant".
func (ix *index) counterpart(nf *graph.Node, k int) *graph.Node {
	if ns := ix.byName[nf.Name]; k < len(ns) {
		return ns[k]
	}
	for _, n := range ix.byName[nf.Name+"_quant"] {
		if _, ok := qlinearOps[n.OpType]; ok {
			return n
		}
	}
	return nil
}

// activation returns the float value of layer nf (matched with nq) and
// the quantized value compared with it (plus the dequantization of a
// QLinear op's integer output), or ok false when there is none.
func activation(qx *index, nf, nq *graph.Node) (fv, qv *graph.Value, deq *affine, ok bool) {
	vq := nq.Output(0)
	if vq == nil || nf.Output(0) == nil {
		return nil, nil, nil, false
	}
	// A batch norm the quantized model folded is folded in the float
	// model too (Compare), so nf computes the batch norm's output as nq.
	fv = nf.Outputs[0]
	if spec, isQ := qlinearOps[nq.OpType]; isQ {
		s, z := constOf(nq.Input(spec.ys)), constOf(nq.Input(spec.yz))
		if s == nil || s.Numel() != 1 || s.DType() != tensor.Float32 {
			return nil, nil, nil, false
		}
		a := &affine{scale: s.F32()[0]}
		if z != nil {
			zs, err := ints(z)
			if err != nil || len(zs) != 1 {
				return nil, nil, nil, false
			}
			a.zp = zs[0]
		}
		if d := qx.dequantDirect(vq); d != nil {
			return fv, d, nil, true
		}
		return fv, vq, a, true
	}
	if d := qx.dequantized(vq); d != nil {
		return fv, d, nil, true
	}
	return fv, vq, nil, true
}

// dequantDirect returns the output of a DequantizeLinear reading v, or nil.
func (ix *index) dequantDirect(v *graph.Value) *graph.Value {
	for _, d := range ix.users[v] {
		if isOp(d, "DequantizeLinear") && d.Input(0) == v && d.Output(0) != nil {
			return d.Outputs[0]
		}
	}
	return nil
}

// constOf returns the constant value of v (an initializer or a Constant
// node's value), or nil.
func constOf(v *graph.Value) *tensor.Tensor {
	if v == nil {
		return nil
	}
	if v.Const != nil {
		return v.Const
	}
	if p := v.Producer; p != nil && isOp(p, "Constant") {
		if t, err := p.Tensor("value"); err == nil {
			return t
		}
	}
	return nil
}

// ints returns the elements of an 8- or 32-bit integer tensor as int32.
func ints(t *tensor.Tensor) ([]int32, error) {
	out := make([]int32, t.Numel())
	switch t.DType().Storage() {
	case tensor.Int8:
		for i, v := range t.I8() {
			out[i] = int32(v)
		}
	case tensor.Uint8:
		for i, v := range t.U8() {
			out[i] = int32(v)
		}
	case tensor.Int32:
		copy(out, t.I32())
	default:
		return nil, fmt.Errorf("quantized data must be int8, uint8 or int32, not %s", t.DType())
	}
	return out, nil
}

// dequantize computes float32(q - zp) * scale as ONNX's DequantizeLinear:
// one scale (and zero point) per tensor, or one per index of axis.
func dequantize(q, scale, zp *tensor.Tensor, axis int64) ([]float32, error) {
	if scale == nil || scale.DType() != tensor.Float32 {
		return nil, fmt.Errorf("the scale must be a float32 constant")
	}
	qs, err := ints(q)
	if err != nil {
		return nil, err
	}
	s := scale.F32()
	z := make([]int32, len(s))
	if zp != nil {
		if z, err = ints(zp); err != nil {
			return nil, fmt.Errorf("zero point: %w", err)
		}
		if len(z) != len(s) {
			return nil, fmt.Errorf("%d zero points for %d scales", len(z), len(s))
		}
	}
	inner, c := 1, 1
	if len(s) != 1 {
		sh := q.Shape()
		if axis < 0 {
			axis += int64(len(sh))
		}
		if axis < 0 || axis >= int64(len(sh)) || sh[axis] != len(s) {
			return nil, fmt.Errorf("%d scales do not fit axis %d of shape %v", len(s), axis, sh)
		}
		c = sh[axis]
		for _, d := range sh[axis+1:] {
			inner *= d
		}
	}
	out := make([]float32, len(qs))
	for i, v := range qs {
		ch := 0
		if c > 1 {
			ch = i / inner % c
		}
		out[i] = float32(v-z[ch]) * s[ch]
	}
	return out, nil
}

// weight returns the float weight of layer nf and the (dequantized)
// weight of its quantized counterpart nq, with the float weight's value:
// input 1 of a Conv, ConvTranspose, Gemm or MatMul, otherwise the first
// float constant input the quantized node reads through a
// DequantizeLinear. ok is false when the layer has no weight to compare.
func weight(nf, nq *graph.Node) (fw *graph.Value, x, q []float32, ok bool, err error) {
	if spec, isQ := qlinearOps[nq.OpType]; isQ {
		if !weightOps[nf.OpType] {
			return nil, nil, nil, false, nil
		}
		wt := constOf(nf.Input(1))
		qt := constOf(nq.Input(spec.w))
		if wt == nil || wt.DType() != tensor.Float32 || qt == nil {
			return nil, nil, nil, false, nil
		}
		q, err = dequantize(qt, constOf(nq.Input(spec.ws)), constOf(nq.Input(spec.wz)), int64(spec.axis))
		if err != nil {
			return nil, nil, nil, false, fmt.Errorf("weight %s: %w", nq.Input(spec.w), err)
		}
		return nf.Inputs[1], wt.F32(), q, true, nil
	}
	candidates := []int{1}
	if !weightOps[nf.OpType] {
		candidates = candidates[:0]
		for i := range nf.Inputs {
			candidates = append(candidates, i)
		}
	}
	for _, i := range candidates {
		wt := constOf(nf.Input(i))
		if wt == nil || wt.DType() != tensor.Float32 {
			continue
		}
		qv := nq.Input(i)
		if qv == nil {
			continue
		}
		var qd []float32
		switch p := qv.Producer; {
		case p != nil && isOp(p, "DequantizeLinear") && constOf(p.Input(0)) != nil:
			ax, err := p.Int("axis", 1)
			if err != nil {
				return nil, nil, nil, false, err
			}
			qd, err = dequantize(constOf(p.Input(0)), constOf(p.Input(1)), constOf(p.Input(2)), ax)
			if err != nil {
				return nil, nil, nil, false, fmt.Errorf("weight %s: %w", p.Input(0), err)
			}
		case weightOps[nf.OpType] && constOf(qv) != nil && constOf(qv).DType() == tensor.Float32:
			qd = constOf(qv).F32()
		default:
			continue
		}
		if len(qd) != wt.Numel() {
			return nil, nil, nil, false, fmt.Errorf("float weight %s has %d elements, the quantized weight %s has %d", nf.Inputs[i], wt.Numel(), qv, len(qd))
		}
		return nf.Inputs[i], wt.F32(), qd, true, nil
	}
	return nil, nil, nil, false, nil
}
