package modeleval

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/tensor"
)

// InteropFeeds returns the fixed inputs on which ONNX Runtime's outputs of
// a quantized model are compared with quanta's: the first 2 evaluation
// pages of the detector; for the recognizer the first evaluation line at
// most InteropRecWidth pixels wide, padded to that width only (the
// recognizer takes any width; its output, 6625 float probabilities per
// step, is the largest reference, so the line is short); the first 64
// evaluation crops of the classifier; and Silero's chunks 8-23 of the
// first evaluation clip, each with the state the float program float
// produced on the chunks before it (float is only used for Silero).
func (d *Data) InteropFeeds(ctx context.Context, m Model, float *exec.Program) ([]map[string]*tensor.Tensor, error) {
	if m == Rec {
		for i := RecCalib; i < d.Rec.Len(); i++ {
			if d.Rec.Widths[i] <= InteropRecWidth {
				x := lineInput(d.Rec.Image(i), RecWidth, d.Rec.Widths[i], InteropRecWidth)
				return []map[string]*tensor.Tensor{{"x": x}}, nil
			}
		}
		return nil, fmt.Errorf("modeleval: no evaluation line is at most %d pixels wide", InteropRecWidth)
	}
	if m != Silero {
		n := map[Model]int{Det: 2, Cls: 64}[m]
		samples, err := d.imageSamples(m, false)
		if err != nil {
			return nil, err
		}
		var feeds []map[string]*tensor.Tensor
		for _, s := range samples[:min(n, len(samples))] {
			feeds = append(feeds, s.feed)
		}
		return feeds, nil
	}
	if float == nil {
		return nil, fmt.Errorf("modeleval: Silero's interop feeds need the float program")
	}
	const first, count = 8, 16
	clip := d.Silero.Eval[0]
	state := sileroZeroState()
	var feeds []map[string]*tensor.Tensor
	for i := 0; i < first+count && (i+1)*ChunkSize <= len(clip); i++ {
		feed := sileroFeed(clip[i*ChunkSize:(i+1)*ChunkSize], state)
		if i >= first {
			feeds = append(feeds, feed)
		}
		_, next, err := runSilero(ctx, float, feed)
		if err != nil {
			return nil, fmt.Errorf("modeleval: interop chunk %d: %w", i, err)
		}
		state = next
	}
	return feeds, nil
}

// InteropRecWidth is the recognizer's input width in InteropFeeds.
const InteropRecWidth = 160

// StackFeeds stacks feeds along a new first axis, one array per input (an
// array one rank higher than the input: one whole feed per index), in
// sorted key order. All feeds must have the same inputs, shapes and
// dtypes.
func StackFeeds(feeds []map[string]*tensor.Tensor) (map[string]*tensor.Tensor, []string, error) {
	if len(feeds) == 0 {
		return nil, nil, fmt.Errorf("modeleval: no feeds to stack")
	}
	var keys []string
	for k := range feeds[0] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make(map[string]*tensor.Tensor, len(keys))
	for _, k := range keys {
		ts := make([]*tensor.Tensor, len(feeds))
		for i, f := range feeds {
			t, ok := f[k]
			if !ok {
				return nil, nil, fmt.Errorf("modeleval: feed %d has no input %q", i, k)
			}
			if !slices.Equal(t.Shape(), feeds[0][k].Shape()) || t.DType() != feeds[0][k].DType() {
				return nil, nil, fmt.Errorf("modeleval: input %q of feed %d is %v %v, feed 0's %v %v", k, i, t.DType(), t.Shape(), feeds[0][k].DType(), feeds[0][k].Shape())
			}
			ts[i] = t
		}
		out[k] = tensor.Stack(ts, 0)
	}
	return out, keys, nil
}

// OutputSteps returns each output's quantization step in the QDQ model q
// for one feed: the scale of the DequantizeLinear that produces the
// output, or for a float output the scale of the nearest DequantizeLinear
// of an activation (not of a constant weight or bias) that the output is
// computed from, searching breadth-first back through producers and into
// If/Loop bodies; 0 when no quantized activation feeds it. The search
// follows only values a reference run of q on feed computes, so the
// branch of an If that did not run is not taken; scales computed at run
// time (DynamicQuantizeLinear's) are read from that run.
func OutputSteps(ctx context.Context, q *graph.Model, feed map[string]*tensor.Tensor) (map[string]float32, error) {
	p, err := exec.Compile(q, exec.Options{Reference: true, Unoptimized: true})
	if err != nil {
		return nil, fmt.Errorf("modeleval: %w", err)
	}
	computed := map[*graph.Value]bool{}
	scalars := map[*graph.Value]float32{}
	_, err = p.RunWith(ctx, feed, exec.RunOptions{Observe: func(v *graph.Value, t *tensor.Tensor) error {
		computed[v] = true
		if t.DType() == tensor.Float32 && t.Numel() == 1 {
			scalars[v] = t.F32()[0]
		}
		return nil
	}})
	if err != nil {
		return nil, fmt.Errorf("modeleval: %w", err)
	}
	steps := map[string]float32{}
	for _, out := range q.Graph.Outputs {
		dq := stepSource(out, computed)
		if dq == nil {
			steps[out.Name] = 0
			continue
		}
		scale := dq.Inputs[1]
		switch {
		case scale.IsConst():
			s, err := scalarOf(scale.Const)
			if err != nil {
				return nil, fmt.Errorf("modeleval: output %q: %s: %w", out.Name, scale.Name, err)
			}
			steps[out.Name] = s
		default:
			s, ok := scalars[scale]
			if !ok {
				return nil, fmt.Errorf("modeleval: output %q: the scale %s is not a computed float32 scalar", out.Name, scale.Name)
			}
			steps[out.Name] = s
		}
	}
	return steps, nil
}

// stepSource returns the DequantizeLinear whose scale is output v's step
// (see OutputSteps), following only computed values; nil if none.
func stepSource(v *graph.Value, computed map[*graph.Value]bool) *graph.Node {
	seen := map[*graph.Value]bool{v: true}
	queue := []*graph.Value{v}
	for len(queue) > 0 {
		x := queue[0]
		queue = queue[1:]
		p := x.Producer
		if p == nil || !computed[x] {
			continue
		}
		if p.OpType == "DequantizeLinear" && len(p.Inputs) > 1 && !p.Inputs[0].IsConst() {
			return p
		}
		next := slices.Clone(p.Inputs)
		for _, sg := range p.Subgraphs() {
			next = append(next, sg.Outputs...)
		}
		for _, in := range next {
			if in != nil && !in.IsConst() && !seen[in] {
				seen[in] = true
				queue = append(queue, in)
			}
		}
	}
	return nil
}

// scalarOf returns the value of a one-element float32 tensor.
func scalarOf(t *tensor.Tensor) (float32, error) {
	if t.DType() != tensor.Float32 || t.Numel() != 1 {
		return 0, fmt.Errorf("scale is %v %v, want one float32", t.DType(), t.Shape())
	}
	return t.F32()[0], nil
}

// WithinStep counts the elements where |a[i]-b[i]| <= step (with a
// relative slack of 1e-5 for the float arithmetic around the step, and
// for step 0 a tolerance of 1e-5*max(1,|b|)); NaNs never count.
func WithinStep(a, b []float32, step float32) int {
	n := 0
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		tol := float64(step) * (1 + 1e-5)
		if step == 0 {
			tol = 1e-5 * math.Max(1, math.Abs(float64(b[i])))
		}
		if d <= tol {
			n++
		}
	}
	return n
}
