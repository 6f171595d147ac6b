package exec

import (
	"fmt"
	"math"
	"strings"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/internal/kernels/conv"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// This file holds ONNX's recurrent operators RNN, GRU and LSTM with their
// exact equations: gate orders (GRU z,r,h; LSTM i,o,f,c), directions
// forward, reverse and bidirectional, per-batch sequence_lens (steps past a
// sequence's length leave its state unchanged and output zeros), initial
// states, the two bias halves Wb and Rb, GRU's linear_before_reset, LSTM's
// peepholes and input_forget, clip (applied to every activation's input),
// every activation ONNX lists, and layout 1 (batch first) from opset 14.
// The input projection X·Wᵀ of all steps is one fp32 GEMM; each step adds
// H·Rᵀ with another.

func init() {
	register("RNN", 7, func(c *CompileContext, n *graph.Node) (Kernel, error) { return compileRNN(c, n, rnnPlain) })
	register("GRU", 7, func(c *CompileContext, n *graph.Node) (Kernel, error) { return compileRNN(c, n, rnnGRU) })
	register("LSTM", 7, func(c *CompileContext, n *graph.Node) (Kernel, error) { return compileRNN(c, n, rnnLSTM) })
}

type rnnKind int

const (
	rnnPlain rnnKind = iota
	rnnGRU
	rnnLSTM
)

// gates is the scatterNum of gate blocks in W and R; acts the scatterNum of
// activation functions per direction.
func (k rnnKind) gates() int { return [...]int{1, 3, 4}[k] }
func (k rnnKind) acts() int  { return [...]int{1, 2, 3}[k] }

var defaultActs = [...][]string{{"Tanh"}, {"Sigmoid", "Tanh"}, {"Sigmoid", "Tanh", "Tanh"}}

type rnnAct func(x float32) float32

// rnnActivation returns ONNX's recurrent activation name; alpha and beta are
// taken from the lists when the function uses them (with ONNX Runtime's
// defaults when the lists run out).
func rnnActivation(name string, alphas, betas *[]float32) (rnnAct, error) {
	take := func(l *[]float32, def float32) float32 {
		if len(*l) == 0 {
			return def
		}
		v := (*l)[0]
		*l = (*l)[1:]
		return v
	}
	f64 := func(f func(float64) float64) rnnAct { return func(x float32) float32 { return float32(f(float64(x))) } }
	switch strings.ToLower(name) {
	case "relu":
		return func(x float32) float32 { return max(x, 0) }, nil
	case "tanh":
		return f64(math.Tanh), nil
	case "sigmoid":
		return f64(func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }), nil
	case "affine":
		a, b := take(alphas, 1), take(betas, 0)
		return func(x float32) float32 { return a*x + b }, nil
	case "leakyrelu":
		a := take(alphas, 0.01)
		return func(x float32) float32 {
			if x < 0 {
				return a * x
			}
			return x
		}, nil
	case "thresholdedrelu":
		a := take(alphas, 1)
		return func(x float32) float32 {
			if x > a {
				return x
			}
			return 0
		}, nil
	case "scaledtanh":
		a, b := take(alphas, 1), take(betas, 1)
		return func(x float32) float32 { return a * float32(math.Tanh(float64(b*x))) }, nil
	case "hardsigmoid":
		a, b := take(alphas, 0.2), take(betas, 0.5)
		return func(x float32) float32 { return max(0, min(1, a*x+b)) }, nil
	case "elu":
		a := take(alphas, 1)
		return func(x float32) float32 {
			if x < 0 {
				return a * float32(math.Expm1(float64(x)))
			}
			return x
		}, nil
	case "softsign":
		return func(x float32) float32 { return x / (1 + float32(math.Abs(float64(x)))) }, nil
	case "softplus":
		return f64(func(x float64) float64 { return math.Log1p(math.Exp(x)) }), nil
	}
	return nil, fmt.Errorf("unknown activation %q", name)
}

type rnnSpec struct {
	kind    rnnKind
	hidden  int
	dirs    int
	reverse bool // one direction, reversed
	acts    [][]rnnAct
	// names holds each direction's activation names, lower case.
	names       [][]string
	clip        float32
	batchFirst  bool
	linearReset bool
	inputForget bool
}

func compileRNN(c *CompileContext, n *graph.Node, kind rnnKind) (Kernel, error) {
	maxIn := 6
	if kind == rnnLSTM {
		maxIn = 8
	}
	if err := nIn(n, 3, maxIn); err != nil {
		return nil, err
	}
	s := &rnnSpec{kind: kind}
	hidden, err := n.Int("hidden_size", 0)
	if err != nil {
		return nil, err
	}
	s.hidden = int(hidden)
	dir, err := n.StringAttr("direction", "forward")
	if err != nil {
		return nil, err
	}
	switch dir {
	case "forward":
		s.dirs = 1
	case "reverse":
		s.dirs, s.reverse = 1, true
	case "bidirectional":
		s.dirs = 2
	default:
		return nil, fmt.Errorf("direction %q, want forward, reverse or bidirectional", dir)
	}
	var names []string
	if a, ok := n.Attrs["activations"]; ok {
		if a.Kind != graph.AttrStrings {
			return nil, fmt.Errorf("attribute \"activations\" is %s, want strings", a.Kind)
		}
		names = append(names, a.Ss...)
	}
	alphas, err := n.Floats("activation_alpha", nil)
	if err != nil {
		return nil, err
	}
	betas, err := n.Floats("activation_beta", nil)
	if err != nil {
		return nil, err
	}
	alphas, betas = append([]float32(nil), alphas...), append([]float32(nil), betas...)
	k := kind.acts()
	switch {
	case names == nil:
		for d := 0; d < s.dirs; d++ {
			names = append(names, defaultActs[kind]...)
		}
	case len(names) == k && s.dirs == 2:
		names = append(names, names...)
	case len(names) != k*s.dirs:
		return nil, fmt.Errorf("%d activations, want %d per direction", len(names), k)
	}
	for d := 0; d < s.dirs; d++ {
		s.names = append(s.names, strings.Split(strings.ToLower(strings.Join(names[d*k:(d+1)*k], ",")), ","))
		var fs []rnnAct
		for _, name := range names[d*k : (d+1)*k] {
			f, err := rnnActivation(name, &alphas, &betas)
			if err != nil {
				return nil, err
			}
			fs = append(fs, f)
		}
		s.acts = append(s.acts, fs)
	}
	if s.clip, err = n.Float("clip", 0); err != nil {
		return nil, err
	}
	if s.clip < 0 {
		return nil, fmt.Errorf("clip %g must be positive", s.clip)
	}
	if c.Opset("") >= 14 {
		layout, err := n.Int("layout", 0)
		if err != nil {
			return nil, err
		}
		s.batchFirst = layout != 0
	}
	lbr, err := n.Int("linear_before_reset", 0)
	if err != nil {
		return nil, err
	}
	s.linearReset = lbr != 0
	inf, err := n.Int("input_forget", 0)
	if err != nil {
		return nil, err
	}
	s.inputForget = inf != 0
	nOut := len(n.Outputs)
	return KernelFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		outs, err := s.run(in)
		if err != nil {
			return nil, err
		}
		return outs[:min(nOut, len(outs))], nil
	}), nil
}

// optIn returns input i of in, or nil.
func optIn(in []*tensor.Tensor, i int) *tensor.Tensor {
	if i < len(in) {
		return in[i]
	}
	return nil
}

// dirState returns direction d of a state tensor given as [dirs, B, H]
// (or [B, dirs, H] batch first) as B*H floats, or zeros.
func (s *rnnSpec) dirState(what string, t *tensor.Tensor, d, batch int) ([]float32, error) {
	h := s.hidden
	out := make([]float32, batch*h)
	if t == nil {
		return out, nil
	}
	want := []int{s.dirs, batch, h}
	if s.batchFirst {
		want = []int{batch, s.dirs, h}
	}
	if err := wantFloat(what, t); err != nil {
		return nil, err
	}
	if !tensor.SameShape(t.Shape(), want) {
		return nil, fmt.Errorf("%s has shape %v, want %v", what, t.Shape(), want)
	}
	v := t.F32()
	for b := 0; b < batch; b++ {
		src := (d*batch + b) * h
		if s.batchFirst {
			src = (b*s.dirs + d) * h
		}
		copy(out[b*h:(b+1)*h], v[src:src+h])
	}
	return out, nil
}

func (s *rnnSpec) run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, w, r := in[0], in[1], in[2]
	for i, t := range []*tensor.Tensor{x, w, r} {
		if err := wantFloat([]string{"X", "W", "R"}[i], t); err != nil {
			return nil, err
		}
	}
	if x.NDim() != 3 || w.NDim() != 3 || r.NDim() != 3 {
		return nil, fmt.Errorf("X %v, W %v and R %v must have rank 3", x.Shape(), w.Shape(), r.Shape())
	}
	if s.batchFirst {
		x = tensor.Permute(x, 1, 0, 2)
	}
	steps, batch, inSize := x.Dim(0), x.Dim(1), x.Dim(2)
	g := s.kind.gates()
	h := s.hidden
	if h == 0 {
		h = r.Dim(2)
	}
	s2 := *s
	s2.hidden = h
	s = &s2
	gh := g * h
	if !tensor.SameShape(w.Shape(), []int{s.dirs, gh, inSize}) || !tensor.SameShape(r.Shape(), []int{s.dirs, gh, h}) {
		return nil, fmt.Errorf("W %v and R %v, want [%d %d %d] and [%d %d %d]", w.Shape(), r.Shape(), s.dirs, gh, inSize, s.dirs, gh, h)
	}
	bias := optIn(in, 3)
	if bias != nil {
		if err := wantFloat("B", bias); err != nil {
			return nil, err
		}
		if !tensor.SameShape(bias.Shape(), []int{s.dirs, 2 * gh}) {
			return nil, fmt.Errorf("B has shape %v, want [%d %d]", bias.Shape(), s.dirs, 2*gh)
		}
	}
	lens := make([]int, batch)
	for b := range lens {
		lens[b] = steps
	}
	if sl := optIn(in, 4); sl != nil {
		v, err := ints64(sl)
		if err != nil || len(v) != batch {
			return nil, fmt.Errorf("sequence_lens must hold %d integers", batch)
		}
		for b, l := range v {
			if l < 0 || l > int64(steps) {
				return nil, fmt.Errorf("sequence_lens[%d] = %d outside [0, %d]", b, l, steps)
			}
			lens[b] = int(l)
		}
	}
	var peep *tensor.Tensor
	if s.kind == rnnLSTM {
		if peep = optIn(in, 7); peep != nil {
			if err := wantFloat("P", peep); err != nil {
				return nil, err
			}
			if !tensor.SameShape(peep.Shape(), []int{s.dirs, 3 * h}) {
				return nil, fmt.Errorf("P has shape %v, want [%d %d]", peep.Shape(), s.dirs, 3*h)
			}
		}
	}
	y := make([]float32, steps*s.dirs*batch*h) // [S, dirs, B, H]
	yh := make([]float32, s.dirs*batch*h)
	yc := make([]float32, s.dirs*batch*h)
	xf := x.Reshape(steps*batch, inSize)
	for d := 0; d < s.dirs; d++ {
		hs, err := s.dirState("initial_h", optIn(in, 5), d, batch)
		if err != nil {
			return nil, err
		}
		cs, err := s.dirState("initial_c", optIn(in, 6), d, batch)
		if err != nil {
			return nil, err
		}
		wd := tensor.FromFloat32(w.F32()[d*gh*inSize:(d+1)*gh*inSize], gh, inSize)
		rd := tensor.FromFloat32(r.F32()[d*gh*h:(d+1)*gh*h], gh, h)
		// Input bias folds into the projection; the recurrent one too,
		// except GRU's Rbh with linear_before_reset, which r multiplies.
		var wb, rb []float32
		xb := make([]float32, gh)
		if bias != nil {
			wb = bias.F32()[d*2*gh : d*2*gh+gh]
			rb = bias.F32()[d*2*gh+gh : (d+1)*2*gh]
			for j := range xb {
				xb[j] = wb[j] + rb[j]
				if s.kind == rnnGRU && j >= 2*h && s.linearReset {
					xb[j] = wb[j]
				}
			}
		}
		var rbh []float32
		if s.kind == rnnGRU {
			rbh = make([]float32, h)
			if rb != nil {
				copy(rbh, rb[2*h:])
			}
		}
		xw := ops.Linear(xf, wd, tensor.FromFloat32(xb, gh)).F32() // [S*B, G*H]
		var p []float32
		if peep != nil {
			p = peep.F32()[d*3*h : (d+1)*3*h]
		}
		reverse := s.reverse || d == 1
		st := rnnStep{spec: s, acts: s.acts[d], h: h, batch: batch, rd: rd, rbh: rbh, p: p}
		if s.kind == rnnLSTM && s.names[d][0] == "sigmoid" && p == nil {
			st.pre = make([]float32, gh+h)
			st.tanhG, st.tanhH = s.names[d][1] == "tanh", s.names[d][2] == "tanh"
		}
		for i := 0; i < steps; i++ {
			t := i
			if reverse {
				t = steps - 1 - i
			}
			st.step(xw[t*batch*gh:(t+1)*batch*gh], hs, cs, lens, t)
			for b := 0; b < batch; b++ {
				if t < lens[b] {
					off := ((t*s.dirs+d)*batch + b) * h
					copy(y[off:off+h], hs[b*h:(b+1)*h])
				}
			}
		}
		copy(yh[d*batch*h:], hs)
		copy(yc[d*batch*h:], cs)
	}
	Y := tensor.FromFloat32(y, steps, s.dirs, batch, h)
	Yh := tensor.FromFloat32(yh, s.dirs, batch, h)
	Yc := tensor.FromFloat32(yc, s.dirs, batch, h)
	if s.batchFirst {
		Y = tensor.Permute(Y, 2, 0, 1, 3)
		Yh = tensor.Permute(Yh, 1, 0, 2)
		Yc = tensor.Permute(Yc, 1, 0, 2)
	}
	if s.kind == rnnLSTM {
		return []*tensor.Tensor{Y, Yh, Yc}, nil
	}
	return []*tensor.Tensor{Y, Yh}, nil
}

// rnnStep computes one time step of one direction for the whole batch.
type rnnStep struct {
	spec  *rnnSpec
	acts  []rnnAct
	h     int
	batch int
	rd    *tensor.Tensor // [G*H, H]
	rbh   []float32      // GRU's Rbh
	p     []float32      // LSTM peepholes (i, o, f), or nil
	// pre, when set, is an LSTM's scratch row of gate pre-activations
	// (i, o, f, c) and h more values: without peepholes the sigmoid gates
	// i, o and f are one run of 3*h values, activated by one
	// conv.EwSigmoid call. tanhG and tanhH say the cell and hidden
	// activations are Tanh, computed by conv.EwTanh a row at a time.
	pre          []float32
	tanhG, tanhH bool
}

func (st *rnnStep) clip(v float32) float32 {
	if c := st.spec.clip; c > 0 {
		return max(-c, min(c, v))
	}
	return v
}

// step updates hs (and cs) in place for the batch entries whose sequence
// includes step t; xw holds X·Wᵀ + biases of step t, [B, G*H].
func (st *rnnStep) step(xw, hs, cs []float32, lens []int, t int) {
	h, batch := st.h, st.batch
	g := st.spec.kind.gates()
	gh := g * h
	hr := ops.Linear(tensor.FromFloat32(hs, batch, h), st.rd, nil).F32() // [B, G*H]
	f := st.acts[0]
	switch st.spec.kind {
	case rnnPlain:
		for b := 0; b < batch; b++ {
			if t >= lens[b] {
				continue
			}
			for j := 0; j < h; j++ {
				hs[b*h+j] = f(st.clip(xw[b*gh+j] + hr[b*gh+j]))
			}
		}
	case rnnGRU:
		gact := st.acts[1]
		z := make([]float32, batch*h)
		rh := make([]float32, batch*h) // r ⊙ H(t-1), for linear_before_reset = 0
		for b := 0; b < batch; b++ {
			for j := 0; j < h; j++ {
				z[b*h+j] = f(st.clip(xw[b*gh+j] + hr[b*gh+j]))
				r := f(st.clip(xw[b*gh+h+j] + hr[b*gh+h+j]))
				if st.spec.linearReset {
					rh[b*h+j] = r * (hr[b*gh+2*h+j] + st.rbh[j])
				} else {
					rh[b*h+j] = r * hs[b*h+j]
				}
			}
		}
		var rr []float32 // (r ⊙ H(t-1))·Rhᵀ
		if !st.spec.linearReset {
			rhT := tensor.FromFloat32(st.rd.F32()[2*h*h:], h, h)
			rr = ops.Linear(tensor.FromFloat32(rh, batch, h), rhT, nil).F32()
		}
		for b := 0; b < batch; b++ {
			if t >= lens[b] {
				continue
			}
			for j := 0; j < h; j++ {
				var pre float32
				if st.spec.linearReset {
					pre = xw[b*gh+2*h+j] + rh[b*h+j]
				} else {
					pre = xw[b*gh+2*h+j] + rr[b*h+j]
				}
				hh := gact(st.clip(pre))
				zz := z[b*h+j]
				hs[b*h+j] = (1-zz)*hh + zz*hs[b*h+j]
			}
		}
	case rnnLSTM:
		gact, hact := st.acts[1], st.acts[2]
		if st.pre != nil {
			st.lstmSigmoidRows(xw, hr, hs, cs, lens, t)
			return
		}
		for b := 0; b < batch; b++ {
			if t >= lens[b] {
				continue
			}
			x, r := xw[b*gh:(b+1)*gh], hr[b*gh:(b+1)*gh]
			for j := 0; j < h; j++ {
				cPrev := cs[b*h+j]
				pi, po, pf := float32(0), float32(0), float32(0)
				if st.p != nil {
					pi, po, pf = st.p[j], st.p[h+j], st.p[2*h+j]
				}
				i := f(st.clip(x[j] + r[j] + pi*cPrev))
				var fg float32
				if st.spec.inputForget {
					fg = 1 - i
				} else {
					fg = f(st.clip(x[2*h+j] + r[2*h+j] + pf*cPrev))
				}
				cc := gact(st.clip(x[3*h+j] + r[3*h+j]))
				c := fg*cPrev + i*cc
				o := f(st.clip(x[h+j] + r[h+j] + po*c))
				cs[b*h+j] = c
				hs[b*h+j] = o * hact(c)
			}
		}
	}
}

// lstmSigmoidRows is the LSTM case of step without peepholes and with
// Sigmoid gates: per batch row, the four gates' pre-activations X·Wᵀ +
// H·Rᵀ + biases (clipped when the node clips), conv.EwSigmoid over the
// i, o and f gates at once and conv.EwTanh (or the activation) over the
// cell gate, the cell update, then its activation and the hidden state.
func (st *rnnStep) lstmSigmoidRows(xw, hr, hs, cs []float32, lens []int, t int) {
	h := st.h
	gh := 4 * h
	gact, hact := st.acts[1], st.acts[2]
	pre, act := st.pre[:gh], st.pre[gh:gh+h]
	for b := 0; b < st.batch; b++ {
		if t >= lens[b] {
			continue
		}
		conv.EwVV(conv.EwAdd, pre, xw[b*gh:(b+1)*gh], hr[b*gh:(b+1)*gh])
		if c := st.spec.clip; c > 0 {
			conv.EwClip(pre, pre, -c, c)
		}
		conv.EwSigmoid(pre[:3*h], pre[:3*h])
		cc := pre[3*h:]
		if st.tanhG {
			conv.EwTanh(cc, cc)
		} else {
			for j, v := range cc {
				cc[j] = gact(v)
			}
		}
		hb, cb := hs[b*h:(b+1)*h], cs[b*h:(b+1)*h]
		for j := range cb {
			i, fg := pre[j], pre[2*h+j]
			if st.spec.inputForget {
				fg = 1 - i
			}
			cb[j] = float32(fg*cb[j]) + float32(i*cc[j]) // rounded products: no fused multiply-add on any CPU
		}
		if st.tanhH {
			conv.EwTanh(act, cb)
		} else {
			for j, v := range cb {
				act[j] = hact(v)
			}
		}
		for j := range hb {
			hb[j] = pre[h+j] * act[j]
		}
	}
}
