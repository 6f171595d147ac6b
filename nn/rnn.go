package nn

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// RNNOptions configure LSTM and GRU. The zero value is PyTorch's default:
// one layer, with biases, sequence-first, no dropout, one direction.
type RNNOptions struct {
	// NumLayers stacks recurrent layers; 0 means 1.
	NumLayers int
	// NoBias drops the biases (bias=False).
	NoBias bool
	// BatchFirst makes inputs and outputs [batch, seq, feature].
	BatchFirst bool
	// Dropout is applied to the outputs of every layer but the last in
	// training mode.
	Dropout float32
	// Bidirectional adds a reverse-direction layer for each layer.
	Bidirectional bool
	// RNG draws the initial weights (and dropout masks); nil means the
	// global generator.
	RNG *tensor.RNG
}

// RNNBase is the state LSTM and GRU share (torch.nn.RNNBase): sizes,
// flags and the per-layer parameters, registered on the Base under
// PyTorch's names (see Weights). HasBias is PyTorch's bias flag.
type RNNBase struct {
	Base
	InputSize, HiddenSize, NumLayers   int
	HasBias, BatchFirst, Bidirectional bool
	Dropout                            float32
	gates                              int
	layers                             [][]rnnWeights // [layer][direction]
	rng                                *tensor.RNG
}

type rnnWeights struct{ wih, whh, bih, bhh *tensor.Tensor }

func newRNNBase(op string, in, hidden, gates int, o RNNOptions) (RNNBase, error) {
	r := RNNBase{InputSize: in, HiddenSize: hidden, NumLayers: or1(o.NumLayers), HasBias: !o.NoBias,
		BatchFirst: o.BatchFirst, Bidirectional: o.Bidirectional, Dropout: o.Dropout, gates: gates}
	if in <= 0 || hidden <= 0 || o.NumLayers < 0 {
		return r, fmt.Errorf("nn: %s: sizes input=%d hidden=%d layers=%d must be positive", op, in, hidden, o.NumLayers)
	}
	if o.Dropout < 0 || o.Dropout > 1 {
		return r, fmt.Errorf("nn: %s: dropout %g outside [0, 1]", op, o.Dropout)
	}
	dirs := r.dirs()
	for l := 0; l < r.NumLayers; l++ {
		layerIn := in
		if l > 0 {
			layerIn = hidden * dirs
		}
		var ws []rnnWeights
		for d := 0; d < dirs; d++ {
			suffix := fmt.Sprintf("_l%d", l)
			if d == 1 {
				suffix += "_reverse"
			}
			w := rnnWeights{wih: tensor.Zeros(gates*hidden, layerIn), whh: tensor.Zeros(gates*hidden, hidden)}
			r.RegisterParameter("weight_ih"+suffix, w.wih)
			r.RegisterParameter("weight_hh"+suffix, w.whh)
			if r.HasBias {
				w.bih, w.bhh = tensor.Zeros(gates*hidden), tensor.Zeros(gates*hidden)
				r.RegisterParameter("bias_ih"+suffix, w.bih)
				r.RegisterParameter("bias_hh"+suffix, w.bhh)
			}
			ws = append(ws, w)
		}
		r.layers = append(r.layers, ws)
	}
	// PyTorch: every parameter, in registration order, ~ U(-1/sqrt(H), 1/sqrt(H)).
	bound := float32(1 / math.Sqrt(float64(hidden)))
	withRNG(o.RNG, func(g *tensor.RNG) {
		for _, p := range r.params {
			tensor.UniformFill(g, p.Tensor, -bound, bound)
		}
	})
	r.rng = childRNG(o.RNG)
	return r, nil
}

func (r *RNNBase) dirs() int {
	if r.Bidirectional {
		return 2
	}
	return 1
}

// prepare puts x into [T, B, F] form and returns whether it was unbatched.
func (r *RNNBase) prepare(op string, x *tensor.Tensor) (*tensor.Tensor, bool) {
	switch x.NDim() {
	case 2:
		if x.Dim(1) != r.InputSize {
			panic(fmt.Sprintf("nn: %s: input shape %v, want [seq, %d]", op, x.Shape(), r.InputSize))
		}
		return ops.Unsqueeze(x, 1), true
	case 3:
		if x.Dim(2) != r.InputSize {
			panic(fmt.Sprintf("nn: %s: input shape %v has %d features, want %d", op, x.Shape(), x.Dim(2), r.InputSize))
		}
		if r.BatchFirst {
			x = ops.Transpose(x, 0, 1)
		}
		return x, false
	}
	panic(fmt.Sprintf("nn: %s: input must be 2-D or 3-D, got shape %v", op, x.Shape()))
}

// initial returns the initial state h0 [L*D, B, H] as one tensor per layer
// and direction (zeros when h0 is nil).
func (r *RNNBase) initial(op string, h0 *tensor.Tensor, unbatched bool, batch int) []*tensor.Tensor {
	n := r.NumLayers * r.dirs()
	out := make([]*tensor.Tensor, n)
	if h0 == nil {
		for i := range out {
			out[i] = tensor.Zeros(batch, r.HiddenSize)
		}
		return out
	}
	if unbatched {
		h0 = ops.Unsqueeze(h0, 1)
	}
	if h0.NDim() != 3 || h0.Dim(0) != n || h0.Dim(1) != batch || h0.Dim(2) != r.HiddenSize {
		panic(fmt.Sprintf("nn: %s: initial state shape %v, want [%d, %d, %d]", op, h0.Shape(), n, batch, r.HiddenSize))
	}
	for i := range out {
		out[i] = ops.Reshape(ops.Narrow(h0, 0, i, 1), batch, r.HiddenSize)
	}
	return out
}

// run executes all layers and directions. step advances one time step
// given the input projection xg [B, G*H] and the state (h, and c for LSTM)
// and returns the new state; states[0] of the result is h.
func (r *RNNBase) run(x *tensor.Tensor, init [][]*tensor.Tensor,
	step func(w rnnWeights, xg *tensor.Tensor, state []*tensor.Tensor) []*tensor.Tensor) (*tensor.Tensor, [][]*tensor.Tensor) {
	T, B := x.Dim(0), x.Dim(1)
	dirs := r.dirs()
	final := make([][]*tensor.Tensor, len(init))
	input := x
	for l, ws := range r.layers {
		var dirOut []*tensor.Tensor
		for d, w := range ws {
			k := l*dirs + d
			xp := ops.Linear(input, w.wih, w.bih) // [T, B, G*H]
			state := init[k]
			hs := make([]*tensor.Tensor, T)
			for s := 0; s < T; s++ {
				t := s
				if d == 1 {
					t = T - 1 - s
				}
				xg := ops.Reshape(ops.Narrow(xp, 0, t, 1), B, r.gates*r.HiddenSize)
				state = step(w, xg, state)
				hs[t] = state[0]
			}
			final[k] = state
			if T == 0 {
				dirOut = append(dirOut, tensor.Zeros(0, B, r.HiddenSize))
			} else {
				dirOut = append(dirOut, ops.Stack(hs, 0))
			}
		}
		out := dirOut[0]
		if dirs == 2 {
			out = ops.Concat(dirOut, 2)
		}
		if l < len(r.layers)-1 && r.Dropout > 0 {
			out = ops.Dropout(out, r.Dropout, r.Training(), r.rng)
		}
		input = out
	}
	return input, final
}

// finish turns [T, B, F] output back into the caller's layout.
func (r *RNNBase) finish(out *tensor.Tensor, unbatched bool) *tensor.Tensor {
	if unbatched {
		return ops.Squeeze(out, 1)
	}
	if r.BatchFirst {
		return ops.Transpose(out, 0, 1)
	}
	return out
}

// stackStates stacks final per-layer states to [L*D, B, H] (or [L*D, H]
// unbatched).
func stackStates(finals []*tensor.Tensor, unbatched bool) *tensor.Tensor {
	hn := ops.Stack(finals, 0)
	if unbatched {
		return ops.Squeeze(hn, 1)
	}
	return hn
}

// lstmStep is PyTorch's LSTM cell on precomputed input gates xg:
// gates = xg + h W_hh^T + b_hh, chunked i, f, g, o;
// c' = sigmoid(f)*c + sigmoid(i)*tanh(g), h' = sigmoid(o)*tanh(c').
func lstmStep(w rnnWeights, xg *tensor.Tensor, state []*tensor.Tensor) []*tensor.Tensor {
	h, c := state[0], state[1]
	gates := ops.Add(ops.Linear(h, w.whh, w.bhh), xg)
	g := ops.Chunk(gates, 4, 1)
	i, f, cg, o := ops.Sigmoid(g[0]), ops.Sigmoid(g[1]), ops.Tanh(g[2]), ops.Sigmoid(g[3])
	c2 := ops.Add(ops.Mul(f, c), ops.Mul(i, cg))
	h2 := ops.Mul(o, ops.Tanh(c2))
	return []*tensor.Tensor{h2, c2}
}

// gruStep is PyTorch's GRU cell on precomputed input gates xg = W_i x + b_i
// chunked r, z, n: r = sigmoid(x_r + h_r), z = sigmoid(x_z + h_z),
// n = tanh(x_n + r*(W_hn h + b_hn)), h' = (h - n)*z + n.
func gruStep(w rnnWeights, xg *tensor.Tensor, state []*tensor.Tensor) []*tensor.Tensor {
	h := state[0]
	hg := ops.Chunk(ops.Linear(h, w.whh, w.bhh), 3, 1)
	xgs := ops.Chunk(xg, 3, 1)
	r := ops.Sigmoid(ops.Add(hg[0], xgs[0]))
	z := ops.Sigmoid(ops.Add(hg[1], xgs[1]))
	n := ops.Tanh(ops.Add(xgs[2], ops.Mul(hg[2], r)))
	h2 := ops.Add(ops.Mul(ops.Sub(h, n), z), n)
	return []*tensor.Tensor{h2}
}

// LSTMState is an LSTM's hidden and cell state. For LSTM both are
// [layers*directions, batch, hidden] ([layers*directions, hidden] for
// unbatched input); for LSTMCell they are [batch, hidden] (or [hidden]).
type LSTMState struct {
	H, C *tensor.Tensor
}

// LSTM is a multi-layer long short-term memory network (torch.nn.LSTM) with
// PyTorch's gate order i, f, g, o and parameters weight_ih_l{k},
// weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k} (and *_reverse), all
// initialized U(-1/sqrt(hidden), 1/sqrt(hidden)).
type LSTM struct{ RNNBase }

// NewLSTM returns an LSTM from input to hidden features.
func NewLSTM(inputSize, hiddenSize int, o RNNOptions) (*LSTM, error) {
	r, err := newRNNBase("NewLSTM", inputSize, hiddenSize, 4, o)
	if err != nil {
		return nil, err
	}
	return &LSTM{r}, nil
}

// Weights returns layer's parameters for direction dir (0 forward, 1
// reverse): weight_ih, weight_hh, bias_ih, bias_hh (biases nil without
// bias).
func (r *RNNBase) Weights(layer, dir int) (wih, whh, bih, bhh *tensor.Tensor) {
	w := r.layers[layer][dir]
	return w.wih, w.whh, w.bih, w.bhh
}

// Forward runs the LSTM over x [seq, batch, input] ([batch, seq, input]
// with BatchFirst, or [seq, input] unbatched) from state (nil means zeros)
// and returns the top layer's outputs [seq, batch, directions*hidden] (in
// x's layout) and the final state.
func (m *LSTM) Forward(x *tensor.Tensor, state *LSTMState) (*tensor.Tensor, LSTMState) {
	var h0, c0 *tensor.Tensor
	if state != nil {
		h0, c0 = state.H, state.C
	}
	out := Call(m, []*tensor.Tensor{x, h0, c0}, func(in []*tensor.Tensor) []*tensor.Tensor {
		xs, unbatched := m.prepare("LSTM", in[0])
		hs := m.initial("LSTM", in[1], unbatched, xs.Dim(1))
		cs := m.initial("LSTM", in[2], unbatched, xs.Dim(1))
		init := make([][]*tensor.Tensor, len(hs))
		for i := range hs {
			init[i] = []*tensor.Tensor{hs[i], cs[i]}
		}
		y, finals := m.run(xs, init, lstmStep)
		fh, fc := make([]*tensor.Tensor, len(finals)), make([]*tensor.Tensor, len(finals))
		for i, f := range finals {
			fh[i], fc[i] = f[0], f[1]
		}
		return []*tensor.Tensor{m.finish(y, unbatched), stackStates(fh, unbatched), stackStates(fc, unbatched)}
	})
	return out[0], LSTMState{H: out[1], C: out[2]}
}

// GRU is a multi-layer gated recurrent unit network (torch.nn.GRU) with
// PyTorch's gate order r, z, n and exact equations
// (n = tanh(W_in x + b_in + r*(W_hn h + b_hn))), parameters named as LSTM's.
type GRU struct{ RNNBase }

// NewGRU returns a GRU from input to hidden features.
func NewGRU(inputSize, hiddenSize int, o RNNOptions) (*GRU, error) {
	r, err := newRNNBase("NewGRU", inputSize, hiddenSize, 3, o)
	if err != nil {
		return nil, err
	}
	return &GRU{r}, nil
}

// Forward runs the GRU over x (layouts as LSTM.Forward) from h0 (nil means
// zeros) and returns the outputs and the final hidden state
// [layers*directions, batch, hidden].
func (m *GRU) Forward(x, h0 *tensor.Tensor) (out, hn *tensor.Tensor) {
	res := Call(m, []*tensor.Tensor{x, h0}, func(in []*tensor.Tensor) []*tensor.Tensor {
		xs, unbatched := m.prepare("GRU", in[0])
		hs := m.initial("GRU", in[1], unbatched, xs.Dim(1))
		init := make([][]*tensor.Tensor, len(hs))
		for i := range hs {
			init[i] = []*tensor.Tensor{hs[i]}
		}
		y, finals := m.run(xs, init, gruStep)
		fh := make([]*tensor.Tensor, len(finals))
		for i, f := range finals {
			fh[i] = f[0]
		}
		return []*tensor.Tensor{m.finish(y, unbatched), stackStates(fh, unbatched)}
	})
	return res[0], res[1]
}
