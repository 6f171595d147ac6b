package quantize

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

// Input equalization of depthwise convolutions (PyTorch's input-weight
// equalization, applied automatically): the channels of a depthwise
// convolution's input often span ranges a hundred times apart (a
// BatchNorm folded into the layer before scales each channel), so one
// per-tensor scale leaves the narrow channels a few levels, and the
// depthwise weights, large exactly on those channels, amplify the
// rounding noise. Each input channel c is multiplied by
//
//	s[c] = R / r[c]   (r[c] the channel's observed range, R the largest,
//	                   s[c] at most maxEqualize)
//
// and the depthwise weights of channel c divided by s[c], which computes
// the same function in float while every channel uses the whole 8-bit
// range. The scaling is folded into the producing Conv's weights and bias
// when a Conv (with or without a Relu, which commutes with a positive
// scale) computes the input; otherwise a Mul by the per-channel constant
// is inserted before the quantization step. The input's qparams then come
// from the scaled per-channel ranges (min/max of the equalized tensor).

// maxEqualize bounds s[c], so that nearly dead channels are not blown up.
const maxEqualize = 1000

// eqPoint is a depthwise convolution input to equalize.
type eqPoint struct {
	conv *Unit
	x    *graph.Value
	obs  *observer.PerChannelMinMax
	pt   *Point
	kind eqKind
	axis int // the channel axis of x
}

// findEqualization picks the quantized layers with a constant weight
// whose input can be equalized: depthwise convolutions (group = channels,
// weight [C,1,k,k]), ungrouped convolutions, and Gemm/MatMul layers,
// whose input is a value with its own point (not shared, not fixed) that
// the layer alone reads, with a known channel count.
func (a *analysis) findEqualization() []*eqPoint {
	var out []*eqPoint
	for _, u := range a.units {
		if !u.Quantized || u.Weight == nil || len(u.Inputs) != 1 {
			continue
		}
		d := u.Nodes[0]
		x := u.Inputs[0]
		w := d.Inputs[1].Const
		if !x.Type.HasShape || len(x.Type.Shape) < 2 {
			continue
		}
		var kind eqKind
		var axis int
		switch d.OpType {
		case "Conv":
			g, _ := d.Int("group", 1)
			switch {
			case w.NDim() == 4 && w.Dim(1) == 1 && int64(w.Dim(0)) == g && g > 1:
				kind = eqDepthwise
			case g == 1:
				kind = eqConv
			default:
				continue
			}
			axis = 1
		case "Gemm", "MatMul":
			if ta, _ := d.Int("transA", 0); ta != 0 || w.NDim() != 2 {
				continue
			}
			kind, axis = eqLinear, len(x.Type.Shape)-1
		default:
			continue
		}
		ch := x.Type.Shape[axis]
		if !ch.Known() || int(ch.Size) != inputChannels(d, w) {
			continue
		}
		pt := a.groupOf[x]
		if pt == nil || pt.group.find().fixed || len(pt.group.find().points) != 1 || a.outputs[x] || len(a.users[x]) != 1 {
			continue
		}
		out = append(out, &eqPoint{conv: u, x: x, pt: pt, kind: kind, axis: axis,
			obs: observer.NewPerChannelMinMax(observer.Config{ChAxis: axis})})
	}
	return out
}

// eqKind is the layout of an equalized layer.
type eqKind int

const (
	eqDepthwise eqKind = iota // Conv, weight [C,1,k,k], one channel per group
	eqConv                    // Conv, weight [O,C,k,k]
	eqLinear                  // Gemm or MatMul, weight [N,K] (transB) or [K,N]
)

// inputChannels returns the number of input channels a weight reads.
func inputChannels(d *graph.Node, w *tensor.Tensor) int {
	switch d.OpType {
	case "Conv":
		if g, _ := d.Int("group", 1); g > 1 {
			return w.Dim(0)
		}
		return w.Dim(1)
	case "Gemm":
		if tb, _ := d.Int("transB", 0); tb == 1 {
			return w.Dim(1)
		}
	}
	return w.Dim(0)
}

// colIndex maps a flat weight index to its input channel.
func colIndex(d *graph.Node, w *tensor.Tensor, kind eqKind) func(i int) int {
	sh := w.Shape()
	switch kind {
	case eqDepthwise:
		inner := w.Numel() / sh[0]
		return func(i int) int { return i / inner }
	case eqConv:
		inner := w.Numel() / (sh[0] * sh[1])
		return func(i int) int { return (i / inner) % sh[1] }
	}
	if tb, _ := d.Int("transB", 0); d.OpType == "Gemm" && tb == 1 {
		return func(i int) int { return i % sh[1] }
	}
	return func(i int) int { return i / sh[1] }
}

// scales returns s[c] from the observed per-channel ranges: for a
// depthwise convolution, whose weights are quantized per channel anyway,
// every channel is brought to the largest range; for other layers,
// PyTorch's input-weight balance s[c] = sqrt(rw[c] / rx[c]), with rw[c]
// the range of the weights reading channel c.
func (e *eqPoint) scales() ([]float32, error) {
	mins, maxs := e.obs.Ranges()
	if len(mins) == 0 {
		return nil, observer.ErrNotObserved
	}
	r := make([]float32, len(mins))
	var big float32
	for c := range mins {
		r[c] = max(maxs[c], 0) - min(mins[c], 0)
		big = max(big, r[c])
	}
	s := make([]float32, len(r))
	var rw []float32
	if e.kind != eqDepthwise {
		d := e.conv.Nodes[0]
		w := d.Inputs[1].Const
		lo := make([]float32, len(r))
		hi := make([]float32, len(r))
		col := colIndex(d, w, e.kind)
		for i, v := range w.F32() {
			c := col(i)
			lo[c], hi[c] = min(lo[c], v), max(hi[c], v)
		}
		rw = make([]float32, len(r))
		for c := range rw {
			rw[c] = hi[c] - lo[c]
		}
	}
	for c := range r {
		s[c] = 1
		switch {
		case r[c] <= 0:
		case e.kind == eqDepthwise:
			s[c] = big / r[c]
		case rw[c] > 0:
			s[c] = float32(math.Sqrt(float64(rw[c]) / float64(r[c])))
		}
		s[c] = min(max(s[c], 1/maxEqualize), maxEqualize)
	}
	return s, nil
}

// scaledQParams returns the activation qparams of the equalized input:
// the point's observer configuration applied to the min and max of the
// scaled channels.
func (e *eqPoint) scaledQParams(s []float32) (*tensor.QParams, error) {
	mins, maxs := e.obs.Ranges()
	lo, hi := float32(0), float32(0)
	for c := range s {
		lo = min(lo, mins[c]*s[c])
		hi = max(hi, maxs[c]*s[c])
	}
	o := observer.NewMinMax(e.pt.Observer.Config())
	if err := o.Observe(tensor.FromFloat32([]float32{lo, hi}, 2)); err != nil {
		return nil, err
	}
	return o.CalculateQParams()
}

// equalize applies one equalization to the converted graph: it scales
// the depthwise weights (a new initializer) and either the producing
// Conv's weights and bias or, failing that, inserts a Mul. It returns the
// value now carrying the equalized input (x itself, or the Mul's output)
// and the producing Conv whose weights were rescaled (nil if none).
func (c *converter) equalize(d *graph.Node, x *graph.Value, s []float32, e *eqPoint) (*graph.Value, *graph.Node, error) {
	g := d.Graph
	w := d.Inputs[1]
	wt := w.Const
	col := colIndex(d, wt, e.kind)
	nw := append([]float32(nil), wt.F32()...)
	for i := range nw {
		nw[i] /= s[col(i)]
	}
	d.Inputs[1] = g.AddInitializer(c.unique(w.Name+"_equalized"), tensor.FromFloat32(nw, wt.Shape()...))
	if e.kind != eqLinear {
		if p := scalableConv(x, len(s)); p != nil {
			pw := p.Inputs[1]
			pt := pw.Const
			pin := pt.Numel() / pt.Dim(0)
			sw := append([]float32(nil), pt.F32()...)
			for i := range sw {
				sw[i] *= s[i/pin]
			}
			p.Inputs[1] = p.Graph.AddInitializer(c.unique(pw.Name+"_equalized"), tensor.FromFloat32(sw, pt.Shape()...))
			if b := p.Input(2); b != nil {
				sb := append([]float32(nil), b.Const.F32()...)
				for i := range sb {
					sb[i] *= s[i]
				}
				p.Inputs[2] = p.Graph.AddInitializer(c.unique(b.Name+"_equalized"), tensor.FromFloat32(sb, len(sb)))
			}
			return x, p, nil
		}
	}
	shape := []int{len(s)}
	if e.kind != eqLinear {
		shape = make([]int, len(x.Type.Shape))
		for i := range shape {
			shape[i] = 1
		}
		shape[e.axis] = len(s)
	}
	sc := g.AddInitializer(c.unique(x.Name+"_equalize_scale"), tensor.FromFloat32(append([]float32(nil), s...), shape...))
	mul := g.AddNode(c.unique(x.Name+"_Equalize"), "Mul", []*graph.Value{x, sc}, []string{c.unique(x.Name + "_equalized")}, nil)
	mul.Outputs[0].Type = x.Type
	for i, in := range d.Inputs {
		if in == x {
			d.Inputs[i] = mul.Outputs[0]
		}
	}
	return mul.Outputs[0], nil, nil
}

// scalableConv returns the Conv computing x (directly or through a Relu)
// with constant float weights of c output channels, ungrouped-or-grouped,
// whose output nothing else reads, or nil.
func scalableConv(x *graph.Value, c int) *graph.Node {
	p := x.Producer
	if p == nil {
		return nil
	}
	if p.OpType == "Relu" {
		in := p.Inputs[0]
		if in.Producer == nil || len(usersOf(p.Graph, in)) != 1 {
			return nil
		}
		p = in.Producer
	}
	if p.OpType != "Conv" || !p.Inputs[1].IsConst() || p.Inputs[1].Const.DType() != tensor.Float32 || p.Inputs[1].Const.Dim(0) != c {
		return nil
	}
	if b := p.Input(2); b != nil && (!b.IsConst() || b.Const.NDim() != 1 || b.Const.Dim(0) != c) {
		return nil
	}
	return p
}

// usersOf returns the nodes of g reading v.
func usersOf(g *graph.Graph, v *graph.Value) []*graph.Node {
	var out []*graph.Node
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			if in == v {
				out = append(out, n)
				break
			}
		}
	}
	return out
}

// errEqualize wraps an equalization failure with the convolution.
func errEqualize(d *graph.Node, err error) error {
	return fmt.Errorf("quantize: Convert: equalizing the input of %s: %w", d, err)
}
