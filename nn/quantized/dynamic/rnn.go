package dynamic

import (
	"fmt"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/tensor"
)

// rnn is the state LSTM and GRU share: sizes, flags and per layer and
// direction the packed input and hidden projections.
type rnn struct {
	nn.Base
	InputSize, HiddenSize, NumLayers   int
	HasBias, BatchFirst, Bidirectional bool
	gates                              int
	kind                               string
	ih, hh                             [][]*gemm // [layer][direction]
}

func newRNN(op, kind string, f *nn.RNNBase, gates int, o Options) (rnn, error) {
	r := rnn{InputSize: f.InputSize, HiddenSize: f.HiddenSize, NumLayers: f.NumLayers, HasBias: f.HasBias,
		BatchFirst: f.BatchFirst, Bidirectional: f.Bidirectional, gates: gates, kind: kind}
	for l := 0; l < f.NumLayers; l++ {
		var ihs, hhs []*gemm
		for d := 0; d < r.dirs(); d++ {
			wih, whh, bih, bhh := f.Weights(l, d)
			gi, err := newGemm(op, wih, bih, o)
			if err != nil {
				return r, err
			}
			gh, err := newGemm(op, whh, bhh, o)
			if err != nil {
				return r, err
			}
			if gi.out != gates*r.HiddenSize || gh.out != gates*r.HiddenSize || gh.in != r.HiddenSize {
				return r, fmt.Errorf("dynamic: %s: layer %d weights %v and %v do not fit hidden size %d", op, l, wih.Shape(), whh.Shape(), r.HiddenSize)
			}
			suffix := fmt.Sprintf("_l%d", l)
			if d == 1 {
				suffix += "_reverse"
			}
			r.RegisterBuffer("weight_ih"+suffix, gi.weight)
			r.RegisterBuffer("weight_hh"+suffix, gh.weight)
			if gi.bias != nil {
				r.RegisterBuffer("bias_ih"+suffix, gi.bias)
			}
			if gh.bias != nil {
				r.RegisterBuffer("bias_hh"+suffix, gh.bias)
			}
			ihs, hhs = append(ihs, gi), append(hhs, gh)
		}
		r.ih, r.hh = append(r.ih, ihs), append(r.hh, hhs)
	}
	return r, nil
}

func (r *rnn) dirs() int {
	if r.Bidirectional {
		return 2
	}
	return 1
}

func (r *rnn) reload(prefix string, sd map[string]*tensor.Tensor) ([]func(), error) {
	var fs []func()
	for l := range r.ih {
		for d := range r.ih[l] {
			suffix := fmt.Sprintf("_l%d", l)
			if d == 1 {
				suffix += "_reverse"
			}
			for _, p := range []struct {
				g    *gemm
				kind string
			}{{r.ih[l][d], "ih"}, {r.hh[l][d], "hh"}} {
				w := prefix + "weight_" + p.kind + suffix
				f, err := p.g.prepare(w, sd[w], sd[prefix+"bias_"+p.kind+suffix])
				if err != nil {
					return nil, err
				}
				fs = append(fs, f)
			}
		}
	}
	return fs, nil
}

// input returns x as a contiguous [T, B, F] slice with T and B, and whether
// x was unbatched.
func (r *rnn) input(x *tensor.Tensor) (seq []float32, T, B int, unbatched bool) {
	if x == nil || x.DType() != tensor.Float32 {
		panic(fmt.Sprintf("dynamic: %s: input must be float32, got %v", r.kind, desc(x)))
	}
	switch {
	case x.NDim() == 2 && x.Dim(1) == r.InputSize:
		return x.F32(), x.Dim(0), 1, true
	case x.NDim() == 3 && x.Dim(2) == r.InputSize:
		if !r.BatchFirst {
			return x.F32(), x.Dim(0), x.Dim(1), false
		}
		B, T = x.Dim(0), x.Dim(1)
		return transposeTB(x.F32(), B, T, r.InputSize), T, B, false
	}
	panic(fmt.Sprintf("dynamic: %s: input shape %v, want [seq, batch, %d] (batch first: [batch, seq, %d]) or [seq, %d]",
		r.kind, x.Shape(), r.InputSize, r.InputSize, r.InputSize))
}

// transposeTB swaps the first two dimensions of a [A, B, F] array.
func transposeTB(v []float32, A, B, F int) []float32 {
	out := make([]float32, len(v))
	for a := 0; a < A; a++ {
		for b := 0; b < B; b++ {
			copy(out[(b*A+a)*F:(b*A+a+1)*F], v[(a*B+b)*F:(a*B+b+1)*F])
		}
	}
	return out
}

// state returns a copy of the initial state s [L*D, B, H] ([L*D, H]
// unbatched), or zeros when s is nil.
func (r *rnn) state(name string, s *tensor.Tensor, B int, unbatched bool) []float32 {
	n := r.NumLayers * r.dirs()
	if s == nil {
		return make([]float32, n*B*r.HiddenSize)
	}
	want := []int{n, B, r.HiddenSize}
	if unbatched {
		want = []int{n, r.HiddenSize}
	}
	if s.DType() != tensor.Float32 || !tensor.SameShape(s.Shape(), want) {
		panic(fmt.Sprintf("dynamic: %s: %s shape %v, want float32 %v", r.kind, name, desc(s), want))
	}
	return append([]float32(nil), s.F32()...)
}

// output shapes the [T, B, F] result in the caller's layout.
func (r *rnn) output(y []float32, T, B, F int, unbatched bool) *tensor.Tensor {
	switch {
	case unbatched:
		return tensor.FromFloat32(y, T, F)
	case r.BatchFirst:
		return tensor.FromFloat32(transposeTB(y, T, B, F), B, T, F)
	}
	return tensor.FromFloat32(y, T, B, F)
}

// finalShape is the shape of a final state.
func (r *rnn) finalShape(B int, unbatched bool) []int {
	if unbatched {
		return []int{r.NumLayers * r.dirs(), r.HiddenSize}
	}
	return []int{r.NumLayers * r.dirs(), B, r.HiddenSize}
}

// run executes every layer and direction over seq [T, B, InputSize]. h
// (and c for LSTM) hold the initial states [L*D, B, H] and receive the
// final ones. step applies the gate math for one time step: xg and hg are
// the input and hidden projections [B, G*H], h and c the state [B, H],
// updated in place.
func (r *rnn) run(seq []float32, T, B int, h, c []float32, step func(xg, hg, h, c []float32)) []float32 {
	H, G, D := r.HiddenSize, r.gates, r.dirs()
	in := seq
	F := r.InputSize
	xg := make([]float32, T*B*G*H)
	hg := make([]float32, B*G*H)
	var out []float32
	for l := range r.ih {
		out = make([]float32, T*B*D*H)
		for d := 0; d < D; d++ {
			gi, gh := r.ih[l][d], r.hh[l][d]
			k := l*D + d
			// One dynamic product for the whole sequence: one set of
			// activation qparams for all T*B rows, as PyTorch's CPU path.
			if T*B > 0 {
				gi.rows(T*B, in, gi.view(in, T*B, F), xg, gi.view(xg, T*B, G*H))
			}
			hk := h[k*B*H : (k+1)*B*H]
			var ck []float32
			if c != nil {
				ck = c[k*B*H : (k+1)*B*H]
			}
			ht, hgt := gh.view(hk, B, H), gh.view(hg, B, G*H)
			for s := 0; s < T; s++ {
				t := s
				if d == 1 {
					t = T - 1 - s
				}
				gh.rows(B, hk, ht, hg, hgt)
				step(xg[t*B*G*H:(t+1)*B*G*H], hg, hk, ck)
				for b := 0; b < B; b++ {
					copy(out[(t*B+b)*D*H+d*H:(t*B+b)*D*H+(d+1)*H], hk[b*H:(b+1)*H])
				}
			}
		}
		in, F = out, D*H
	}
	if len(r.ih) == 0 {
		return nil
	}
	return out
}

// LSTM is a dynamic quantized multi-layer LSTM
// (torch.ao.nn.quantized.dynamic.LSTM) with nn.LSTM's Forward. Its state
// dict holds weight_ih_l{k}, weight_hh_l{k} (qint8 with qparams, or float32
// half values), bias_ih_l{k}, bias_hh_l{k} (float32), and *_reverse.
type LSTM struct{ rnn }

// LSTMFromFloat converts a float LSTM.
func LSTMFromFloat(f *nn.LSTM, o Options) (*LSTM, error) {
	return fromFloat("LSTMFromFloat", f, func(f *nn.LSTM) (*LSTM, error) {
		r, err := newRNN("LSTMFromFloat", "LSTM", &f.RNNBase, 4, o)
		return &LSTM{r}, err
	})
}

// TypeName returns "quantized.dynamic.LSTM".
func (m *LSTM) TypeName() string { return "quantized.dynamic.LSTM" }

// Forward runs the LSTM over x [seq, batch, input] ([batch, seq, input]
// with BatchFirst, or [seq, input] unbatched) from state (nil means zeros)
// and returns the top layer's outputs [seq, batch, directions*hidden] (in
// x's layout) and the final state [layers*directions, batch, hidden], as
// nn.LSTM.Forward.
func (m *LSTM) Forward(x *tensor.Tensor, state *nn.LSTMState) (*tensor.Tensor, nn.LSTMState) {
	var h0, c0 *tensor.Tensor
	if state != nil {
		h0, c0 = state.H, state.C
	}
	res := nn.Call(m, []*tensor.Tensor{x, h0, c0}, func(in []*tensor.Tensor) []*tensor.Tensor {
		seq, T, B, unbatched := m.input(in[0])
		h := m.state("h0", in[1], B, unbatched)
		c := m.state("c0", in[2], B, unbatched)
		H := m.HiddenSize
		y := m.run(seq, T, B, h, c, func(xg, hg, h, c []float32) {
			for b := 0; b < B; b++ {
				lstmGates(xg[b*4*H:(b+1)*4*H], hg[b*4*H:(b+1)*4*H], h[b*H:(b+1)*H], c[b*H:(b+1)*H])
			}
		})
		shape := m.finalShape(B, unbatched)
		return []*tensor.Tensor{m.output(y, T, B, m.dirs()*H, unbatched),
			tensor.FromFloat32(h, shape...), tensor.FromFloat32(c, shape...)}
	})
	return res[0], nn.LSTMState{H: res[1], C: res[2]}
}

// GRU is a dynamic quantized multi-layer GRU
// (torch.ao.nn.quantized.dynamic.GRU) with nn.GRU's Forward and PyTorch's
// equations (n = tanh(W_in x + b_in + r*(W_hn h + b_hn))). Its state dict
// is named as LSTM's.
type GRU struct{ rnn }

// GRUFromFloat converts a float GRU.
func GRUFromFloat(f *nn.GRU, o Options) (*GRU, error) {
	return fromFloat("GRUFromFloat", f, func(f *nn.GRU) (*GRU, error) {
		r, err := newRNN("GRUFromFloat", "GRU", &f.RNNBase, 3, o)
		return &GRU{r}, err
	})
}

// TypeName returns "quantized.dynamic.GRU".
func (m *GRU) TypeName() string { return "quantized.dynamic.GRU" }

// Forward runs the GRU over x (layouts as LSTM.Forward) from h0 (nil means
// zeros) and returns the outputs and the final hidden state
// [layers*directions, batch, hidden], as nn.GRU.Forward.
func (m *GRU) Forward(x, h0 *tensor.Tensor) (out, hn *tensor.Tensor) {
	res := nn.Call(m, []*tensor.Tensor{x, h0}, func(in []*tensor.Tensor) []*tensor.Tensor {
		seq, T, B, unbatched := m.input(in[0])
		h := m.state("h0", in[1], B, unbatched)
		H := m.HiddenSize
		y := m.run(seq, T, B, h, nil, func(xg, hg, h, _ []float32) {
			for b := 0; b < B; b++ {
				gruGates(xg[b*3*H:(b+1)*3*H], hg[b*3*H:(b+1)*3*H], h[b*H:(b+1)*H])
			}
		})
		return []*tensor.Tensor{m.output(y, T, B, m.dirs()*H, unbatched), tensor.FromFloat32(h, m.finalShape(B, unbatched)...)}
	})
	return res[0], res[1]
}

// lstmGates updates one row's hidden and cell states h, c [H] from its
// input and hidden projections xg, hg [4H] (chunks i, f, g, o), as
// PyTorch's LSTMCell with gates = linear_hh(h) + linear_ih(x):
// c' = f*c + i*g, h' = o*tanh(c').
func lstmGates(xg, hg, h, c []float32) {
	H := len(h)
	for j := 0; j < H; j++ {
		i := sigmoid(hg[j] + xg[j])
		f := sigmoid(hg[H+j] + xg[H+j])
		g := tanh(hg[2*H+j] + xg[2*H+j])
		o := sigmoid(hg[3*H+j] + xg[3*H+j])
		cv := float32(f*c[j]) + float32(i*g)
		c[j] = cv
		h[j] = o * tanh(cv)
	}
}

// gruGates updates one row's hidden state h [H] from its input and hidden
// projections xg, hg [3H] (chunks r, z, n), as PyTorch's GRUCell:
// r = σ(h_r + x_r), z = σ(h_z + x_z), n = tanh(x_n + h_n*r),
// h' = (h - n)*z + n.
func gruGates(xg, hg, h []float32) {
	H := len(h)
	for j := 0; j < H; j++ {
		r := sigmoid(hg[j] + xg[j])
		z := sigmoid(hg[H+j] + xg[H+j])
		n := tanh(xg[2*H+j] + float32(hg[2*H+j]*r))
		h[j] = float32((h[j]-n)*z) + n
	}
}
