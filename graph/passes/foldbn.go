// Package passes holds the graph passes of graph-mode quantization that
// rewrite or analyse a graph before observers are inserted: FoldBatchNorm
// folds inference batch norms into the convolution or Gemm before them,
// and FusePatterns finds the op sequences of a quant.BackendConfig that
// are quantized as one. The passes know operators only through their ONNX
// op types and attributes; they never import nn.
package passes

import (
	"errors"
	"fmt"
	"math"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// FoldBatchNorm folds every inference BatchNormalization of g (and of its
// subgraphs) whose input is computed by a Conv, ConvTranspose or Gemm into
// that node's weight and bias, and returns how many it folded. A batch
// norm is folded when:
//   - it is in the default domain, not in training mode, its scale, bias,
//     mean and variance are float32 initializers of the producer's output
//     channel count, and only its first output is used;
//   - the producer's weight (and bias, if any) are float32 initializers
//     (not graph inputs, which callers may override);
//   - the producer's output has no other user and is not a graph output;
//   - for Gemm: alpha = 1, transA = 0, beta = 1 when C is present, and C
//     (if present) is a 1-D tensor of N entries.
//
// The folded weight and bias are new initializers (the old ones stay if
// anything else reads them) computed as PyTorch's fuse_conv_bn_eval and
// fuse_linear_bn_eval do, with their float32 roundings, the same
// arithmetic as nn/intrinsic's FoldConvBN2d and FoldLinearBN:
//
//	rsqrt = 1/float32(sqrt(float32(var+eps)))
//	scale = float32(gamma*rsqrt)
//	w'    = float32(w*scale)
//	conv: b' = float32(float32(float32(b-mean)*rsqrt)*gamma) + beta
//	gemm: b' = float32(float32(b-mean)*scale) + beta
//
// The producer then computes the batch norm's output value directly and
// the BatchNormalization node is removed. A batch norm whose parameters
// disagree in length or with its producer's channel count is an error
// naming it (folds already done stay).
func FoldBatchNorm(g *graph.Graph) (int, error) {
	if g == nil {
		return 0, errors.New("passes: FoldBatchNorm: nil graph")
	}
	total := 0
	for _, n := range g.Nodes {
		for _, sg := range n.Subgraphs() {
			k, err := FoldBatchNorm(sg)
			if err != nil {
				return total, err
			}
			total += k
		}
	}
	names := graph.NamesOf(rootGraph(g))
	users := g.Users()
	outputs := map[*graph.Value]bool{}
	for _, o := range g.Outputs {
		outputs[o] = true
	}
	removed := map[*graph.Node]bool{}
	var replaced []*graph.Value
	for _, bn := range g.Nodes {
		if !isDefault(bn) || bn.OpType != "BatchNormalization" {
			continue
		}
		ok, old, err := foldOne(g, bn, users, outputs, names)
		if err != nil {
			return total, err
		}
		if ok {
			removed[bn] = true
			replaced = append(replaced, old...)
			total++
		}
	}
	if len(removed) == 0 {
		return total, nil
	}
	nodes := g.Nodes[:0:0]
	for _, n := range g.Nodes {
		if !removed[n] {
			nodes = append(nodes, n)
		}
	}
	g.Nodes = nodes
	dropUnused(g, replaced)
	return total, nil
}

// bnParams are a batch norm's float32 constants.
type bnParams struct {
	gamma, beta, mean, vr []float32
	eps                   float32
}

// foldOne folds bn into its producer when every condition holds; it
// returns the initializers the producer no longer reads.
func foldOne(g *graph.Graph, bn *graph.Node, users map[*graph.Value][]*graph.Node, outputs map[*graph.Value]bool, names graph.Names) (bool, []*graph.Value, error) {
	if len(bn.Inputs) != 5 || len(bn.Outputs) < 1 || bn.Outputs[0] == nil {
		return false, nil, nil
	}
	if tm, err := bn.Int("training_mode", 0); err != nil || tm != 0 {
		return false, nil, nil
	}
	for _, o := range bn.Outputs[1:] {
		if o != nil && (len(users[o]) > 0 || outputs[o]) {
			return false, nil, nil
		}
	}
	x := bn.Inputs[0]
	if x == nil || x.Producer == nil || x.Producer.Graph != g || outputs[x] || len(users[x]) != 1 {
		return false, nil, nil
	}
	p := x.Producer
	if !isDefault(p) || len(p.Outputs) != 1 || len(p.Inputs) < 2 {
		return false, nil, nil
	}
	var params bnParams
	for i, dst := range []*[]float32{&params.gamma, &params.beta, &params.mean, &params.vr} {
		t := constF32(g, bn.Inputs[i+1])
		if t == nil || t.NDim() != 1 {
			return false, nil, nil
		}
		*dst = t.F32()
	}
	eps, err := bn.Float("epsilon", 1e-5)
	if err != nil {
		return false, nil, nil
	}
	params.eps = eps
	c := len(params.gamma)
	for _, s := range [][]float32{params.beta, params.mean, params.vr} {
		if len(s) != c {
			return false, nil, fmt.Errorf("passes: FoldBatchNorm: node %s: scale, bias, mean and variance have different lengths", bn)
		}
	}
	w := constF32(g, p.Inputs[1])
	if w == nil || w.NDim() < 2 {
		return false, nil, nil
	}
	var b *tensor.Tensor
	if bi := p.Input(2); bi != nil {
		if b = constF32(g, bi); b == nil || b.NDim() != 1 {
			return false, nil, nil
		}
	}
	sh := w.Shape()
	var chanOf func(i int) int
	linear := false
	switch p.OpType {
	case "Conv":
		if sh[0] != c {
			return false, nil, fmt.Errorf("passes: FoldBatchNorm: node %s has %d channels, its input %s has %d", bn, c, p, sh[0])
		}
		per := w.Numel() / c
		chanOf = func(i int) int { return i / per }
	case "ConvTranspose":
		groups, err := p.Int("group", 1)
		if err != nil || groups < 1 || sh[0]%int(groups) != 0 {
			return false, nil, nil
		}
		gr := int(groups)
		inPer, outPer, k := sh[0]/gr, sh[1], w.Numel()/(sh[0]*sh[1])
		if outPer*gr != c {
			return false, nil, fmt.Errorf("passes: FoldBatchNorm: node %s has %d channels, its input %s has %d", bn, c, p, outPer*gr)
		}
		chanOf = func(i int) int {
			r := i / k
			in, j := r/outPer, r%outPer
			return (in/inPer)*outPer + j
		}
	case "Gemm":
		if len(sh) != 2 || !gemmFoldable(p, b != nil) {
			return false, nil, nil
		}
		transB, _ := p.Int("transB", 0)
		linear = true
		if transB != 0 {
			if sh[0] != c {
				return false, nil, nil
			}
			chanOf = func(i int) int { return i / sh[1] }
		} else {
			if sh[1] != c {
				return false, nil, nil
			}
			chanOf = func(i int) int { return i % sh[1] }
		}
	default:
		return false, nil, nil
	}
	if b != nil && b.Numel() != c {
		return false, nil, nil
	}
	wf, bf := foldWeights(w.F32(), f32(b), c, params, chanOf, linear)
	nw := g.AddInitializer(names.Unique(p.Inputs[1].Name+"_bnfold"), tensor.FromFloat32(wf, sh...))
	nb := g.AddInitializer(names.Unique(p.Name+"_bias_bnfold"), tensor.FromFloat32(bf, c))
	old := []*graph.Value{p.Inputs[1]}
	if b != nil {
		old = append(old, p.Inputs[2])
	}
	for _, v := range bn.Inputs[1:] {
		old = append(old, v)
	}
	p.Inputs[1] = nw
	if len(p.Inputs) < 3 {
		p.Inputs = append(p.Inputs, nb)
	} else {
		p.Inputs[2] = nb
	}
	if p.OpType == "Gemm" && p.Has("beta") {
		p.Attrs["beta"] = graph.AFloat(1)
	}
	y := bn.Outputs[0]
	y.Producer = p
	p.Outputs[0] = y
	if y.Type.Elem == graph.Undefined {
		y.Type = x.Type
	}
	return true, old, nil
}

// gemmFoldable reports whether a Gemm computes A·B (+C) with no scaling.
func gemmFoldable(p *graph.Node, hasC bool) bool {
	alpha, err1 := p.Float("alpha", 1)
	beta, err2 := p.Float("beta", 1)
	transA, err3 := p.Int("transA", 0)
	if err1 != nil || err2 != nil || err3 != nil {
		return false
	}
	return alpha == 1 && transA == 0 && (!hasC || beta == 1)
}

// foldWeights is torch.nn.utils.fusion.fuse_conv_bn_weights (linear false)
// or fuse_linear_bn_weights (linear true) on raw slices, each operation
// rounded to float32 in PyTorch's order (as nn/intrinsic's foldWeights and
// foldLinearWeights). chanOf maps a weight index to its output channel; b
// may be nil (zeros).
func foldWeights(w, b []float32, c int, p bnParams, chanOf func(int) int, linear bool) (wf, bf []float32) {
	scale := make([]float32, c)
	rsqrt := make([]float32, c)
	for i, v := range p.vr {
		s := float32(math.Sqrt(float64(float32(v + p.eps))))
		rsqrt[i] = float32(1) / s
		scale[i] = float32(p.gamma[i] * rsqrt[i])
	}
	wf = make([]float32, len(w))
	for i, v := range w {
		wf[i] = float32(v * scale[chanOf(i)])
	}
	bf = make([]float32, c)
	for i := range bf {
		var bc float32
		if b != nil {
			bc = b[i]
		}
		d := float32(bc - p.mean[i])
		if linear {
			bf[i] = float32(d*scale[i]) + p.beta[i]
		} else {
			t := float32(d * rsqrt[i])
			bf[i] = float32(t*p.gamma[i]) + p.beta[i]
		}
	}
	return wf, bf
}

// constF32 returns v's value when v is a float32 initializer of g (not a
// graph input with a default, which callers may override), else nil.
func constF32(g *graph.Graph, v *graph.Value) *tensor.Tensor {
	if v == nil || v.Const == nil || v.Producer != nil || v.Const.DType() != tensor.Float32 {
		return nil
	}
	for h := v.Graph; h != nil; h = parentOf(h) {
		for _, in := range h.Inputs {
			if in == v {
				return nil
			}
		}
	}
	return v.Const
}

func f32(t *tensor.Tensor) []float32 {
	if t == nil {
		return nil
	}
	return t.F32()
}

func isDefault(n *graph.Node) bool { return n.Domain == "" || n.Domain == "ai.onnx" }

func parentOf(g *graph.Graph) *graph.Graph {
	if g.Parent == nil {
		return nil
	}
	return g.Parent.Graph
}

func rootGraph(g *graph.Graph) *graph.Graph {
	for p := parentOf(g); p != nil; p = parentOf(g) {
		g = p
	}
	return g
}

// dropUnused removes from g's initializers those of cands that nothing
// reads any more and that are not graph outputs.
func dropUnused(g *graph.Graph, cands []*graph.Value) {
	users := g.Users()
	drop := map[*graph.Value]bool{}
	for _, v := range cands {
		if len(users[v]) == 0 {
			drop[v] = true
		}
	}
	for _, o := range g.Outputs {
		delete(drop, o)
	}
	inits := g.Initializers[:0:0]
	for _, v := range g.Initializers {
		if !drop[v] {
			inits = append(inits, v)
		}
	}
	g.Initializers = inits
}
