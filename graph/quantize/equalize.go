package quantize

import (
	"fmt"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

// Input equalization of depthwise convolutions (after PyTorch's
// input-weight equalization, applied automatically): the channels of a
// depthwise convolution's input often span ranges a hundred times apart (a
// BatchNorm folded into the layer before scales each channel), so one
// per-tensor scale leaves the narrow channels a few levels, and the
// depthwise weights, large exactly on those channels, amplify the
// rounding noise. Each input channel c is multiplied by
//
//	s[c] = R / r[c]   (r[c] the channel's observed range, R the largest,
//	                   s[c] within [1/maxEqualize, maxEqualize])
//
// and the depthwise weights of channel c divided by s[c] (they are
// quantized per channel, so this costs nothing), which computes the same
// function in float while every channel uses the whole 8-bit range. The
// scaling is folded into the producing Conv's weights and bias when a
// Conv (with or without a Relu, which commutes with a positive scale)
// computes the input; otherwise a Mul by the per-channel constant is
// inserted before the quantization step. The input's qparams then come
// from the scaled per-channel ranges (min/max of the equalized tensor).
//
// Ungrouped convolutions and linear layers are not equalized: moving
// range from the activation into the weights' columns (PyTorch's
// sqrt(r_w/r_x) balance) cost more in weight rounding than it gained on
// the models measured (Silero VAD lost 1.7 points of decision agreement).

// EqualizationKey is the metadata key under which Convert records the
// equalizations it applied, as a JSON list of Equalization, so tools that
// compare the QDQ model with its float original (package numeric) can
// undo the per-channel scaling of the values and weights involved.
const EqualizationKey = "quanta.equalization"

// Equalization is one applied input equalization: the input Value of the
// depthwise Consumer was multiplied by Scales per channel (axis 1), and
// the consumer's weights divided by them. When a Conv computes the value
// (Producer), its weight rows and bias were multiplied instead of a Mul
// being inserted, so its output (and a Relu's after it) carry the scales.
type Equalization struct {
	Value    string    `json:"value"`
	Producer string    `json:"producer,omitempty"`
	Consumer string    `json:"consumer"`
	Scales   []float32 `json:"scales"`
}

// maxEqualize bounds s[c], so that nearly dead channels are not blown up.
const maxEqualize = 1000

// eqPoint is a depthwise convolution input to equalize.
type eqPoint struct {
	conv *Unit
	x    *graph.Value
	obs  *observer.PerChannelMinMax
	pt   *Point
}

// findEqualization picks the quantized depthwise convolutions (group =
// channels, weight [C,1,k,k]) whose input is a value with its own point
// (not shared, not fixed) that the convolution alone reads, with a known
// channel count.
func (a *analysis) findEqualization() []*eqPoint {
	var out []*eqPoint
	for _, u := range a.units {
		if !u.Quantized || u.Weight == nil || len(u.Inputs) != 1 {
			continue
		}
		d := u.Nodes[0]
		x := u.Inputs[0]
		w := d.Inputs[1].Const
		g, _ := d.Int("group", 1)
		if d.OpType != "Conv" || w.NDim() != 4 || w.Dim(1) != 1 || int64(w.Dim(0)) != g || g < 2 {
			continue
		}
		if !x.Type.HasShape || len(x.Type.Shape) != 4 || !x.Type.Shape[1].Known() || x.Type.Shape[1].Size != g {
			continue
		}
		pt := a.groupOf[x]
		if pt == nil || pt.group.find().fixed || len(pt.group.find().points) != 1 || a.outputs[x] || len(a.users[x]) != 1 {
			continue
		}
		out = append(out, &eqPoint{conv: u, x: x, pt: pt,
			obs: observer.NewPerChannelMinMax(observer.Config{ChAxis: 1})})
	}
	return out
}

// scales returns s[c] from the observed per-channel ranges: every
// channel is brought to the largest range.
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
	for c := range r {
		s[c] = 1
		if r[c] > 0 {
			s[c] = min(max(big/r[c], 1/maxEqualize), maxEqualize)
		}
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
func (c *converter) equalize(d *graph.Node, x *graph.Value, s []float32) (*graph.Value, *graph.Node, error) {
	g := d.Graph
	w := d.Inputs[1]
	wt := w.Const
	inner := wt.Numel() / wt.Dim(0)
	nw := append([]float32(nil), wt.F32()...)
	for i := range nw {
		nw[i] /= s[i/inner]
	}
	d.Inputs[1] = g.AddInitializer(c.unique(w.Name+"_equalized"), tensor.FromFloat32(nw, wt.Shape()...))
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
	sc := g.AddInitializer(c.unique(x.Name+"_equalize_scale"), tensor.FromFloat32(append([]float32(nil), s...), 1, len(s), 1, 1))
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
		if in.Producer == nil || len(p.Graph.Users()[in]) != 1 {
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

// errEqualize wraps an equalization failure with the convolution.
func errEqualize(d *graph.Node, err error) error {
	return fmt.Errorf("quantize: Convert: equalizing the input of %s: %w", d, err)
}
