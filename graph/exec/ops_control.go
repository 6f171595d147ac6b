package exec

import (
	"fmt"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// This file holds the control-flow operators If, Loop and Scan. Their
// bodies are compiled once with the node (CompileContext.CompileGraph) and
// run in child frames (Frame.Run), which capture the enclosing graphs'
// values the bodies read. Sequence- and optional-typed values are not
// supported: quanta values are tensors.

func init() {
	register("If", 1, compileIf)
	register("Loop", 1, compileLoop)
	register("Scan", 8, compileScan)
}

// frameKernel adapts a function that runs subgraphs to Kernel.
type frameKernel func(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error)

// bodiesKernel is a control-flow kernel with its compiled bodies exposed,
// so compile-time rewrites (QDQ fusion) reach the nodes inside them.
type bodiesKernel struct {
	frameKernel
	subs []*Subprogram
}

// bodies returns the compiled bodies.
func (k bodiesKernel) bodies() []*Subprogram { return k.subs }

// Run calls k(f, in).
func (k frameKernel) Run(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) { return k(f, in) }

// graphAttr returns the graph attribute name, which is required.
func graphAttr(n *graph.Node, name string) (*graph.Graph, error) {
	a, ok := n.Attrs[name]
	if !ok || a.Kind != graph.AttrGraph || a.G == nil {
		return nil, fmt.Errorf("graph attribute %q is required", name)
	}
	return a.G, nil
}

// boolScalar reads a one-element bool tensor.
func boolScalar(what string, t *tensor.Tensor) (bool, error) {
	if t == nil || t.DType() != tensor.Bool || t.Numel() != 1 {
		desc := "nothing"
		if t != nil {
			desc = fmt.Sprintf("%s%v", t.DType(), t.Shape())
		}
		return false, fmt.Errorf("%s must be one bool, got %s", what, desc)
	}
	return t.Bools()[0], nil
}

func compileIf(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 1, 1); err != nil {
		return nil, err
	}
	var branches [2]*Subprogram
	for i, name := range []string{"else_branch", "then_branch"} {
		g, err := graphAttr(n, name)
		if err != nil {
			return nil, err
		}
		if len(g.Inputs) != 0 {
			return nil, fmt.Errorf("%s takes %d inputs, want none", name, len(g.Inputs))
		}
		if len(g.Outputs) != len(n.Outputs) {
			return nil, fmt.Errorf("%s has %d outputs for the node's %d", name, len(g.Outputs), len(n.Outputs))
		}
		if branches[i], err = c.CompileGraph(g); err != nil {
			return nil, err
		}
	}
	return bodiesKernel{frameKernel(func(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		cond, err := boolScalar("cond", in[0])
		if err != nil {
			return nil, err
		}
		b := 0
		if cond {
			b = 1
		}
		return f.Run(branches[b], nil)
	}), branches[:]}, nil
}

// emptyScan returns the stacked scan output of a loop that ran no
// iteration: a tensor with a leading 0 and the declared dimensions (when
// known) and element type of the node's output, else of the body's.
func emptyScan(node, body *graph.Value) *tensor.Tensor {
	t := body.Type
	if node != nil && node.Type.Elem != graph.Undefined {
		t = node.Type
		if t.HasShape && len(t.Shape) > 0 {
			t.Shape = t.Shape[1:]
		}
	}
	dt, ok := t.Elem.DType()
	if !ok {
		dt = tensor.Float32
	}
	shape := []int{0}
	if s, ok := t.Static(); ok {
		shape = append(shape, s...)
	}
	return tensor.New(dt, shape...)
}

func compileLoop(c *CompileContext, n *graph.Node) (Kernel, error) {
	if len(n.Inputs) < 2 {
		return nil, fmt.Errorf("want at least 2 inputs (M, cond), got %d", len(n.Inputs))
	}
	body, err := graphAttr(n, "body")
	if err != nil {
		return nil, err
	}
	nCarried := len(n.Inputs) - 2
	nScan := len(n.Outputs) - nCarried
	if nScan < 0 {
		return nil, fmt.Errorf("%d loop-carried inputs but %d outputs", nCarried, len(n.Outputs))
	}
	if len(body.Inputs) != 2+nCarried {
		return nil, fmt.Errorf("body takes %d inputs, want %d (iteration, condition, %d carried)", len(body.Inputs), 2+nCarried, nCarried)
	}
	if len(body.Outputs) != 1+nCarried+nScan {
		return nil, fmt.Errorf("body has %d outputs, want %d (condition, %d carried, %d scan)", len(body.Outputs), 1+nCarried+nScan, nCarried, nScan)
	}
	sp, err := c.CompileGraph(body)
	if err != nil {
		return nil, err
	}
	return bodiesKernel{frameKernel(func(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		trip := int64(-1)
		if in[0] != nil {
			v, err := ints64(in[0])
			if err != nil || len(v) != 1 {
				return nil, fmt.Errorf("M must be one int64")
			}
			trip = max(v[0], 0)
		}
		cond, useCond := true, in[1] != nil
		if useCond {
			if cond, err = boolScalar("cond", in[1]); err != nil {
				return nil, err
			}
		}
		carried := make([]*tensor.Tensor, nCarried)
		for i := range carried {
			if carried[i] = in[2+i]; carried[i] == nil {
				return nil, fmt.Errorf("loop-carried input %d is missing", i)
			}
		}
		scans := make([][]*tensor.Tensor, nScan)
		args := make([]*tensor.Tensor, 2+nCarried)
		for it := int64(0); (trip < 0 || it < trip) && cond; it++ {
			if err := f.Context().Err(); err != nil {
				return nil, err
			}
			args[0] = tensor.FromInt64([]int64{it}).Reshape()
			args[1] = tensor.FromBool([]bool{cond}).Reshape()
			copy(args[2:], carried)
			outs, err := f.Run(sp, args)
			if err != nil {
				return nil, err
			}
			if useCond {
				if cond, err = boolScalar("the body's condition output", outs[0]); err != nil {
					return nil, err
				}
			}
			copy(carried, outs[1:1+nCarried])
			for k := range scans {
				scans[k] = append(scans[k], outs[1+nCarried+k])
			}
		}
		res := append([]*tensor.Tensor{}, carried...)
		for k, s := range scans {
			if len(s) == 0 {
				res = append(res, emptyScan(n.Outputs[nCarried+k], body.Outputs[1+nCarried+k]))
				continue
			}
			t, err := stackNew(s, 0)
			if err != nil {
				return nil, fmt.Errorf("scan output %d: %w", k, err)
			}
			res = append(res, t)
		}
		return res, nil
	}), []*Subprogram{sp}}, nil
}

// stackNew joins tensors of one dtype and shape along a new axis.
func stackNew(ts []*tensor.Tensor, ax int) (*tensor.Tensor, error) {
	if len(ts) == 0 {
		return nil, fmt.Errorf("nothing to stack")
	}
	for i, t := range ts {
		if t.DType() != ts[0].DType() || !tensor.SameShape(t.Shape(), ts[0].Shape()) {
			return nil, fmt.Errorf("iteration %d gives %s%v, iteration 0 gave %s%v", i, t.DType(), t.Shape(), ts[0].DType(), ts[0].Shape())
		}
	}
	sh := ts[0].Shape()
	u := make([]*tensor.Tensor, len(ts))
	shape := append(append(append([]int{}, sh[:ax]...), 1), sh[ax:]...)
	for i, t := range ts {
		u[i] = t.Reshape(shape...)
	}
	if shapeNumel(shape) == 0 {
		shape[ax] = len(ts)
		return tensor.New(ts[0].DType(), shape...), nil
	}
	return tensor.Concat(u, ax), nil
}

func compileScan(c *CompileContext, n *graph.Node) (Kernel, error) {
	body, err := graphAttr(n, "body")
	if err != nil {
		return nil, err
	}
	m, err := n.Int("num_scan_inputs", -1)
	if err != nil {
		return nil, err
	}
	v8 := c.Opset("") < 9 // Scan-8: a leading sequence_lens input and a batch axis
	inputs := n.Inputs
	if v8 {
		if len(inputs) == 0 {
			return nil, fmt.Errorf("no inputs")
		}
		inputs = inputs[1:]
	}
	if m < 1 || int(m) > len(inputs) {
		return nil, fmt.Errorf("num_scan_inputs %d for %d inputs", m, len(inputs))
	}
	nScanIn := int(m)
	nState := len(inputs) - nScanIn
	nScanOut := len(n.Outputs) - nState
	if nScanOut < 0 || len(body.Inputs) != nState+nScanIn || len(body.Outputs) != nState+nScanOut {
		return nil, fmt.Errorf("body with %d inputs and %d outputs for %d state and %d scan inputs, %d outputs",
			len(body.Inputs), len(body.Outputs), nState, nScanIn, len(n.Outputs))
	}
	ints := func(name string, k int) ([]int64, error) {
		v, err := n.Ints(name, nil)
		if err != nil {
			return nil, err
		}
		if v == nil {
			return make([]int64, k), nil
		}
		if len(v) != k {
			return nil, fmt.Errorf("%s has %d entries, want %d", name, len(v), k)
		}
		return v, nil
	}
	sc := &scanKernel{nState: nState, nScanOut: nScanOut, body: body, node: n}
	if v8 {
		if sc.inDirs, err = ints("directions", nScanIn); err != nil {
			return nil, err
		}
	} else {
		if sc.inAxes, err = ints("scan_input_axes", nScanIn); err != nil {
			return nil, err
		}
		if sc.inDirs, err = ints("scan_input_directions", nScanIn); err != nil {
			return nil, err
		}
		if sc.outAxes, err = ints("scan_output_axes", nScanOut); err != nil {
			return nil, err
		}
		if sc.outDirs, err = ints("scan_output_directions", nScanOut); err != nil {
			return nil, err
		}
	}
	if sc.sp, err = c.CompileGraph(body); err != nil {
		return nil, err
	}
	if v8 {
		return bodiesKernel{frameKernel(sc.run8), []*Subprogram{sc.sp}}, nil
	}
	return bodiesKernel{frameKernel(sc.run9), []*Subprogram{sc.sp}}, nil
}

// scanKernel runs Scan: in opsets 9+ over whole tensors with per-input
// scan axes and directions, in opset 8 per batch entry.
type scanKernel struct {
	nState, nScanOut int
	inAxes, inDirs   []int64
	outAxes, outDirs []int64
	body             *graph.Graph
	node             *graph.Node
	sp               *Subprogram
}

// loop runs the body over steps slices of seqs (scanned along axes) from
// the given state; it returns the final state and each scan output's
// per-step values.
func (k *scanKernel) loop(f *Frame, state, seqs []*tensor.Tensor, axes []int, steps int) ([]*tensor.Tensor, [][]*tensor.Tensor, error) {
	state = append([]*tensor.Tensor{}, state...)
	outs := make([][]*tensor.Tensor, k.nScanOut)
	args := make([]*tensor.Tensor, len(state)+len(seqs))
	for it := 0; it < steps; it++ {
		copy(args, state)
		for j, t := range seqs {
			at := it
			if k.inDirs[j] != 0 {
				at = steps - 1 - it
			}
			sh := t.Shape()
			sl := tensor.Slice(t, axes[j], at, at+1, 1)
			args[len(state)+j] = sl.Reshape(append(append([]int{}, sh[:axes[j]]...), sh[axes[j]+1:]...)...)
		}
		res, err := f.Run(k.sp, args)
		if err != nil {
			return nil, nil, err
		}
		copy(state, res[:len(state)])
		for o := range outs {
			outs[o] = append(outs[o], res[len(state)+o])
		}
	}
	return state, outs, nil
}

func (k *scanKernel) run9(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	for i, t := range in {
		if t == nil {
			return nil, fmt.Errorf("input %d is missing", i)
		}
	}
	seqs := in[k.nState:]
	axes := make([]int, len(seqs))
	steps := -1
	for j, t := range seqs {
		a, err := axis(k.inAxes[j], t.NDim())
		if err != nil {
			return nil, fmt.Errorf("scan input %d: %w", j, err)
		}
		axes[j] = a
		if steps >= 0 && t.Dim(a) != steps {
			return nil, fmt.Errorf("scan input %d has %d steps, scan input 0 has %d", j, t.Dim(a), steps)
		}
		steps = t.Dim(a)
	}
	state, outs, err := k.loop(f, in[:k.nState], seqs, axes, steps)
	if err != nil {
		return nil, err
	}
	final := state
	for o, s := range outs {
		if len(s) == 0 {
			final = append(final, emptyScan(k.node.Outputs[k.nState+o], k.body.Outputs[k.nState+o]))
			continue
		}
		if k.outDirs[o] != 0 {
			r := make([]*tensor.Tensor, len(s))
			for i := range s {
				r[i] = s[len(s)-1-i]
			}
			s = r
		}
		a, err := axis(k.outAxes[o], s[0].NDim()+1)
		if err != nil {
			return nil, fmt.Errorf("scan output %d: %w", o, err)
		}
		t, err := stackNew(s, a)
		if err != nil {
			return nil, fmt.Errorf("scan output %d: %w", o, err)
		}
		final = append(final, t)
	}
	return final, nil
}

// run8 is Scan-8: every input has a leading batch axis, scan inputs are
// scanned along axis 1 for sequence_lens[b] steps (all steps when absent),
// and scan outputs are [batch, steps, ...], zero past a sequence's length.
func (k *scanKernel) run8(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	lensT, rest := in[0], in[1:]
	for i, t := range rest {
		if t == nil || t.NDim() < 1 {
			return nil, fmt.Errorf("input %d must have a batch axis", i+1)
		}
	}
	batch := rest[0].Dim(0)
	seqs := rest[k.nState:]
	steps := 0
	for j, t := range seqs {
		if t.Dim(0) != batch || t.NDim() < 2 {
			return nil, fmt.Errorf("scan input %d has shape %v for batch %d", j, t.Shape(), batch)
		}
		if j > 0 && t.Dim(1) != steps {
			return nil, fmt.Errorf("scan input %d has %d steps, scan input 0 has %d", j, t.Dim(1), steps)
		}
		steps = t.Dim(1)
	}
	lens := make([]int64, batch)
	for b := range lens {
		lens[b] = int64(steps)
	}
	if lensT != nil {
		v, err := ints64(lensT)
		if err != nil || len(v) != batch {
			return nil, fmt.Errorf("sequence_lens must hold %d integers", batch)
		}
		for b, l := range v {
			if l < 0 || l > int64(steps) {
				return nil, fmt.Errorf("sequence_lens[%d] = %d outside [0, %d]", b, l, steps)
			}
		}
		lens = v
	}
	axes := make([]int, len(seqs))
	finals := make([][]*tensor.Tensor, k.nState)
	scans := make([][]*tensor.Tensor, k.nScanOut)
	for b := 0; b < batch; b++ {
		pick := func(t *tensor.Tensor, n int) *tensor.Tensor {
			sl := tensor.Slice(t, 0, b, b+1, 1)
			sh := sl.Shape()[1:]
			if n >= 0 {
				sl = tensor.Slice(sl.Reshape(sh...), 0, 0, n, 1)
				return sl
			}
			return sl.Reshape(sh...)
		}
		state := make([]*tensor.Tensor, k.nState)
		for i := range state {
			state[i] = pick(rest[i], -1)
		}
		bs := make([]*tensor.Tensor, len(seqs))
		for j, t := range seqs {
			bs[j] = pick(t, int(lens[b]))
		}
		st, outs, err := k.loop(f, state, bs, axes, int(lens[b]))
		if err != nil {
			return nil, err
		}
		for i, t := range st {
			finals[i] = append(finals[i], t)
		}
		for o, s := range outs {
			var elem *tensor.Tensor
			if len(s) > 0 {
				elem = s[0]
			} else {
				elem = emptyScan(nil, k.body.Outputs[k.nState+o])
				elem = tensor.New(elem.DType(), elem.Shape()[1:]...)
			}
			for len(s) < steps {
				s = append(s, tensor.New(elem.DType(), elem.Shape()...))
			}
			t := tensor.New(elem.DType(), append([]int{0}, elem.Shape()...)...)
			if len(s) > 0 {
				if t, err = stackNew(s, 0); err != nil {
					return nil, fmt.Errorf("scan output %d: %w", o, err)
				}
			}
			scans[o] = append(scans[o], t)
		}
	}
	var res []*tensor.Tensor
	for i, ts := range append(finals, scans...) {
		t, err := stackNew(ts, 0)
		if err != nil {
			return nil, fmt.Errorf("output %d: %w", i, err)
		}
		res = append(res, t)
	}
	return res, nil
}
