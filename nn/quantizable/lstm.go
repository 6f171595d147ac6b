package quantizable

import (
	"errors"
	"fmt"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// LSTMCell is one LSTM step built from observable parts
// (torch.ao.nn.quantizable.LSTMCell), with PyTorch's child names:
//
//	igates, hgates    Linear(input, 4H) and Linear(H, 4H)
//	gates             FloatFunctional: igates(x) + hgates(h), chunked i, f, g, o
//	input_gate, forget_gate, out_gate: Sigmoid; cell_gate: Tanh
//	fgate_cx          FloatFunctional: f * c
//	igate_cgate       FloatFunctional: i * g
//	fgate_cx_igate_cgate FloatFunctional: c' = f*c + i*g
//	tanh_cy           Tanh of c'
//	ogate_cy          FloatFunctional: h' = o * tanh(c')
//
// Its parameters are igates.weight (PyTorch's weight_ih), igates.bias
// (bias_ih), hgates.weight (weight_hh) and hgates.bias (bias_hh).
type LSTMCell struct {
	nn.Base
	InputSize, HiddenSize int

	Igates            nn.Layer      `nn:"igates"`
	Hgates            nn.Layer      `nn:"hgates"`
	Gates             nn.Functional `nn:"gates"`
	InputGate         nn.Layer      `nn:"input_gate"`
	ForgetGate        nn.Layer      `nn:"forget_gate"`
	CellGate          nn.Layer      `nn:"cell_gate"`
	OutGate           nn.Layer      `nn:"out_gate"`
	FgateCx           nn.Functional `nn:"fgate_cx"`
	IgateCgate        nn.Functional `nn:"igate_cgate"`
	FgateCxIgateCgate nn.Functional `nn:"fgate_cx_igate_cgate"`
	TanhCy            nn.Layer      `nn:"tanh_cy"`
	OgateCy           nn.Functional `nn:"ogate_cy"`
}

// newCell builds a cell from weight_ih [4H, in], weight_hh [4H, H] and the
// biases [4H] (both nil or both set), copying them.
func newCell(wih, whh, bih, bhh *tensor.Tensor) (*LSTMCell, error) {
	if wih == nil || whh == nil || wih.NDim() != 2 || whh.NDim() != 2 {
		return nil, errors.New("missing or non-2-D weights")
	}
	h := whh.Dim(1)
	if h == 0 || whh.Dim(0) != 4*h || wih.Dim(0) != 4*h || wih.Dim(1) == 0 {
		return nil, fmt.Errorf("weight_ih %v and weight_hh %v do not fit an LSTM (want [4H, in] and [4H, H])", wih.Shape(), whh.Shape())
	}
	if (bih == nil) != (bhh == nil) {
		return nil, errors.New("bias_ih and bias_hh must both be present or both absent")
	}
	if bih != nil && (bih.NDim() != 1 || bih.Dim(0) != 4*h || bhh.NDim() != 1 || bhh.Dim(0) != 4*h) {
		return nil, fmt.Errorf("biases %v and %v, want [%d]", bih.Shape(), bhh.Shape(), 4*h)
	}
	for _, t := range []*tensor.Tensor{wih, whh, bih, bhh} {
		if t != nil && t.DType() != tensor.Float32 {
			return nil, fmt.Errorf("weights must be float32, got %v", t.DType())
		}
	}
	return &LSTMCell{
		InputSize: wih.Dim(1), HiddenSize: h,
		Igates: newLinear(wih, bih), Hgates: newLinear(whh, bhh),
		Gates:      nn.NewFloatFunctional(),
		InputGate:  nn.NewSigmoid(),
		ForgetGate: nn.NewSigmoid(),
		CellGate:   nn.NewTanh(),
		OutGate:    nn.NewSigmoid(),
		FgateCx:    nn.NewFloatFunctional(), IgateCgate: nn.NewFloatFunctional(),
		FgateCxIgateCgate: nn.NewFloatFunctional(),
		TanhCy:            nn.NewTanh(),
		OgateCy:           nn.NewFloatFunctional(),
	}, nil
}

// NewLSTMCell returns a quantizable LSTMCell initialized as nn.NewLSTMCell
// initializes a float one.
func NewLSTMCell(inputSize, hiddenSize int, o nn.CellOptions) (*LSTMCell, error) {
	f, err := nn.NewLSTMCell(inputSize, hiddenSize, o)
	if err != nil {
		return nil, fmt.Errorf("quantizable: NewLSTMCell: %w", err)
	}
	return LSTMCellFromFloat(f)
}

// LSTMCellFromFloat returns the quantizable form of a float LSTMCell, with
// copies of its weights (PyTorch's LSTMCell.from_float without the
// qconfig, which eager.Prepare propagates).
func LSTMCellFromFloat(f *nn.LSTMCell) (*LSTMCell, error) {
	if f == nil {
		return nil, errors.New("quantizable: LSTMCellFromFloat: nil cell")
	}
	c, err := newCell(f.WeightIH, f.WeightHH, f.BiasIH, f.BiasHH)
	if err != nil {
		return nil, fmt.Errorf("quantizable: LSTMCellFromFloat: %w", err)
	}
	if !f.Training() {
		nn.Eval(c)
	}
	return c, nil
}

// TypeName returns "quantizable.LSTMCell".
func (c *LSTMCell) TypeName() string { return "quantizable.LSTMCell" }

// Forward computes the next state from x [batch, input] (or [input]) and
// state (nil, or a nil part, means zeros: float32, or quint8 zeros with
// scale 1 and zero point 0 when x is quantized). The state must be in x's
// domain: float with float input, quantized with quantized input.
func (c *LSTMCell) Forward(x *tensor.Tensor, state *nn.LSTMState) nn.LSTMState {
	var h0, c0 *tensor.Tensor
	if state != nil {
		h0, c0 = state.H, state.C
	}
	out := nn.Call(c, []*tensor.Tensor{x, h0, c0}, func(in []*tensor.Tensor) []*tensor.Tensor {
		x := in[0]
		unbatched := x.NDim() == 1
		if unbatched {
			x = ops.Unsqueeze(x, 0)
		}
		if x.NDim() != 2 || x.Dim(1) != c.InputSize {
			panic(fmt.Sprintf("quantizable: LSTMCell: input shape %v, want [batch, %d] or [%d]", x.Shape(), c.InputSize, c.InputSize))
		}
		h := c.stateArg("hidden", in[1], x, unbatched)
		cc := c.stateArg("cell", in[2], x, unbatched)
		h, cc = c.step(x, h, cc)
		if unbatched {
			h, cc = ops.Squeeze(h, 0), ops.Squeeze(cc, 0)
		}
		return []*tensor.Tensor{h, cc}
	})
	return nn.LSTMState{H: out[0], C: out[1]}
}

// stateArg returns a state as [B, H] (zeros when s is nil).
func (c *LSTMCell) stateArg(what string, s, x *tensor.Tensor, unbatched bool) *tensor.Tensor {
	b := x.Dim(0)
	if s == nil {
		return zeroState(b, c.HiddenSize, isQ(x))
	}
	if unbatched {
		s = ops.Unsqueeze(s, 0)
	}
	if s.NDim() != 2 || s.Dim(0) != b || s.Dim(1) != c.HiddenSize {
		panic(fmt.Sprintf("quantizable: LSTMCell: %s state shape %v, want [%d, %d]", what, s.Shape(), b, c.HiddenSize))
	}
	if isQ(s) != isQ(x) {
		panic(fmt.Sprintf("quantizable: LSTMCell: %s state is %v and the input %v; pass a state in the input's domain", what, s.DType(), x.DType()))
	}
	return s
}

// step is the cell's computation on [B, in] and [B, H] tensors.
func (c *LSTMCell) step(x, h, cx *tensor.Tensor) (hy, cy *tensor.Tensor) {
	gates := c.Gates.Add(c.Igates.Forward(x), c.Hgates.Forward(h))
	g := ops.Chunk(gates, 4, 1)
	i := c.InputGate.Forward(g[0])
	f := c.ForgetGate.Forward(g[1])
	cg := c.CellGate.Forward(g[2])
	o := c.OutGate.Forward(g[3])
	cy = c.FgateCxIgateCgate.Add(c.FgateCx.Mul(f, cx), c.IgateCgate.Mul(i, cg))
	hy = c.OgateCy.Mul(o, c.TanhCy.Forward(cy))
	return hy, cy
}

// LSTMSingleLayer runs one LSTMCell (child "cell") over a sequence in one
// direction (PyTorch's _LSTMSingleLayer).
type LSTMSingleLayer struct {
	nn.Base
	Cell *LSTMCell `nn:"cell"`
}

// TypeName returns "quantizable.LSTMSingleLayer".
func (l *LSTMSingleLayer) TypeName() string { return "quantizable.LSTMSingleLayer" }

// Forward runs the cell over x [seq, batch, input] from state (states
// [batch, hidden]; nil means zeros) and returns every step's hidden state
// [seq, batch, hidden] and the final state.
func (l *LSTMSingleLayer) Forward(x *tensor.Tensor, state *nn.LSTMState) (*tensor.Tensor, nn.LSTMState) {
	if x.NDim() != 3 {
		panic(fmt.Sprintf("quantizable: LSTMSingleLayer: input shape %v, want [seq, batch, %d]", x.Shape(), l.Cell.InputSize))
	}
	hs, st := l.run(timeSteps(x), x, state)
	return joinSteps(hs, x, l.Cell.HiddenSize), st
}

// run feeds the [B, in] steps to the cell in order and returns the hidden
// states. x (the whole sequence) gives the batch size and the domain.
func (l *LSTMSingleLayer) run(steps []*tensor.Tensor, x *tensor.Tensor, state *nn.LSTMState) ([]*tensor.Tensor, nn.LSTMState) {
	var st nn.LSTMState
	if state != nil {
		st = *state
	}
	if st.H == nil {
		st.H = zeroState(x.Dim(1), l.Cell.HiddenSize, isQ(x))
	}
	if st.C == nil {
		st.C = zeroState(x.Dim(1), l.Cell.HiddenSize, isQ(x))
	}
	hs := make([]*tensor.Tensor, len(steps))
	for t, xt := range steps {
		st = l.Cell.Forward(xt, &st)
		hs[t] = st.H
	}
	return hs, st
}

// timeSteps splits x [T, B, F] into T tensors [B, F].
func timeSteps(x *tensor.Tensor) []*tensor.Tensor {
	T := x.Dim(0)
	if T == 0 {
		return nil
	}
	ones := make([]int, T)
	for i := range ones {
		ones[i] = 1
	}
	steps := ops.Split(x, ones, 0)
	for i, s := range steps {
		steps[i] = ops.Reshape(s, x.Dim(1), x.Dim(2))
	}
	return steps
}

// joinSteps stacks hidden states into [T, B, H]; for an empty sequence it
// returns an empty tensor in x's domain.
func joinSteps(hs []*tensor.Tensor, x *tensor.Tensor, hidden int) *tensor.Tensor {
	if len(hs) > 0 {
		return stack(hs, 0)
	}
	if !isQ(x) {
		return tensor.Zeros(0, x.Dim(1), hidden)
	}
	return zeroState(0, hidden, true).Reshape(0, x.Dim(1), hidden)
}

// LSTMLayer is one LSTM layer in one or both directions (PyTorch's
// _LSTMLayer): children layer_fw and, when bidirectional, layer_bw, and
// cat, the FloatFunctional that joins the two directions' outputs (so the
// joined output gets qparams observed for both; PyTorch's torch.cat keeps
// the forward direction's and clips the reverse one to them).
type LSTMLayer struct {
	nn.Base
	LayerFw *LSTMSingleLayer `nn:"layer_fw"`
	LayerBw *LSTMSingleLayer `nn:"layer_bw"`
	Cat     nn.Functional    `nn:"cat"`
}

// TypeName returns "quantizable.LSTMLayer".
func (l *LSTMLayer) TypeName() string { return "quantizable.LSTMLayer" }

// Forward runs the layer over x [seq, batch, input] from one state per
// direction (forward, then reverse; states [batch, hidden]; nil, or a nil
// part, means zeros) and returns the outputs [seq, batch,
// directions*hidden] (the reverse direction's after the forward one's) and
// the final state of each direction.
func (l *LSTMLayer) Forward(x *tensor.Tensor, states []nn.LSTMState) (*tensor.Tensor, []nn.LSTMState) {
	if x.NDim() != 3 {
		panic(fmt.Sprintf("quantizable: LSTMLayer: input shape %v, want [seq, batch, %d]", x.Shape(), l.LayerFw.Cell.InputSize))
	}
	dirs := 1
	if l.LayerBw != nil {
		dirs = 2
	}
	if states != nil && len(states) != dirs {
		panic(fmt.Sprintf("quantizable: LSTMLayer: %d states for %d directions", len(states), dirs))
	}
	st := func(d int) *nn.LSTMState {
		if states == nil {
			return nil
		}
		return &states[d]
	}
	steps := timeSteps(x)
	H := l.LayerFw.Cell.HiddenSize
	hsF, stF := l.LayerFw.run(steps, x, st(0))
	if dirs == 1 {
		return joinSteps(hsF, x, H), []nn.LSTMState{stF}
	}
	rev := make([]*tensor.Tensor, len(steps))
	for i, s := range steps {
		rev[len(steps)-1-i] = s
	}
	hsB, stB := l.LayerBw.run(rev, x, st(1))
	for i, j := 0, len(hsB)-1; i < j; i, j = i+1, j-1 {
		hsB[i], hsB[j] = hsB[j], hsB[i]
	}
	out := l.Cat.Cat([]*tensor.Tensor{joinSteps(hsF, x, H), joinSteps(hsB, x, H)}, 2)
	return out, []nn.LSTMState{stF, stB}
}

// LSTM is a multi-layer, optionally bidirectional LSTM built from
// LSTMCells (torch.ao.nn.quantizable.LSTM): child "layers" is a ModuleList
// of LSTMLayers, so a cell's parameters are named like
// "layers.0.layer_fw.cell.igates.weight" (PyTorch's weight_ih_l0) and
// "layers.0.layer_bw.cell.hgates.bias" (bias_hh_l0_reverse). It takes and
// returns tensors in nn.LSTM's layouts. With more than one layer or
// direction, the FloatFunctionals hidden_cat and cell_cat join the final
// states of all of them into h_n and c_n, so each gets qparams observed
// over every layer's state (PyTorch's torch.stack keeps the first layer's
// and clips the others to them). Dropout is recorded but never applied:
// this form is for inference, as PyTorch's.
type LSTM struct {
	nn.Base
	InputSize, HiddenSize, NumLayers   int
	HasBias, BatchFirst, Bidirectional bool
	Dropout                            float32
	Layers                             *nn.ModuleList `nn:"layers"`
	HiddenCat                          nn.Functional  `nn:"hidden_cat"`
	CellCat                            nn.Functional  `nn:"cell_cat"`
}

// NewLSTM returns a quantizable LSTM initialized as nn.NewLSTM initializes
// a float one.
func NewLSTM(inputSize, hiddenSize int, o nn.RNNOptions) (*LSTM, error) {
	f, err := nn.NewLSTM(inputSize, hiddenSize, o)
	if err != nil {
		return nil, fmt.Errorf("quantizable: NewLSTM: %w", err)
	}
	return LSTMFromFloat(f)
}

// LSTMFromFloat returns the quantizable form of a float LSTM with copies
// of its weights (PyTorch's quantizable LSTM.from_float, without the
// qconfig and prepare, which eager.Prepare does).
func LSTMFromFloat(f *nn.LSTM) (*LSTM, error) {
	if f == nil {
		return nil, errors.New("quantizable: LSTMFromFloat: nil LSTM")
	}
	m := &LSTM{InputSize: f.InputSize, HiddenSize: f.HiddenSize, NumLayers: f.NumLayers, HasBias: f.HasBias,
		BatchFirst: f.BatchFirst, Bidirectional: f.Bidirectional, Dropout: f.Dropout, Layers: nn.NewModuleList()}
	dirs := 1
	if f.Bidirectional {
		dirs = 2
	}
	for l := 0; l < f.NumLayers; l++ {
		layer := &LSTMLayer{}
		for d := 0; d < dirs; d++ {
			wih, whh, bih, bhh := f.Weights(l, d)
			cell, err := newCell(wih, whh, bih, bhh)
			if err != nil {
				return nil, fmt.Errorf("quantizable: LSTMFromFloat: layer %d direction %d: %w", l, d, err)
			}
			want := f.InputSize
			if l > 0 {
				want = dirs * f.HiddenSize
			}
			if cell.InputSize != want || cell.HiddenSize != f.HiddenSize {
				return nil, fmt.Errorf("quantizable: LSTMFromFloat: layer %d direction %d has weights for input %d, hidden %d; want %d, %d",
					l, d, cell.InputSize, cell.HiddenSize, want, f.HiddenSize)
			}
			if d == 0 {
				layer.LayerFw = &LSTMSingleLayer{Cell: cell}
			} else {
				layer.LayerBw = &LSTMSingleLayer{Cell: cell}
				layer.Cat = nn.NewFloatFunctional()
			}
		}
		m.Layers.Append(layer)
	}
	if f.NumLayers*dirs > 1 {
		m.HiddenCat, m.CellCat = nn.NewFloatFunctional(), nn.NewFloatFunctional()
	}
	if f.Training() {
		nn.Train(m)
	} else {
		nn.Eval(m)
	}
	return m, nil
}

// TypeName returns "quantizable.LSTM".
func (m *LSTM) TypeName() string { return "quantizable.LSTM" }

func (m *LSTM) dirs() int {
	if m.Bidirectional {
		return 2
	}
	return 1
}

// Layer returns layer i.
func (m *LSTM) Layer(i int) *LSTMLayer { return m.Layers.At(i).(*LSTMLayer) }

// Forward runs the LSTM over x [seq, batch, input] ([batch, seq, input]
// with BatchFirst, or [seq, input] unbatched) from state (H and C
// [layers*directions, batch, hidden]; nil, or a nil part, means zeros) and
// returns the top layer's outputs [seq, batch, directions*hidden] in x's
// layout and the final state, as nn.LSTM.Forward. On quint8 input (after
// eager.Convert) the outputs and states are quint8; a given state must
// then be quantized too (a state the LSTM returned is).
func (m *LSTM) Forward(x *tensor.Tensor, state *nn.LSTMState) (*tensor.Tensor, nn.LSTMState) {
	var h0, c0 *tensor.Tensor
	if state != nil {
		h0, c0 = state.H, state.C
	}
	out := nn.Call(m, []*tensor.Tensor{x, h0, c0}, func(in []*tensor.Tensor) []*tensor.Tensor {
		x := in[0]
		unbatched := x.NDim() == 2
		switch {
		case unbatched:
			x = ops.Unsqueeze(x, 1)
		case x.NDim() == 3 && m.BatchFirst:
			x = ops.Transpose(x, 0, 1)
		}
		if x.NDim() != 3 || x.Dim(2) != m.InputSize {
			panic(fmt.Sprintf("quantizable: LSTM: input shape %v, want [seq, batch, %d] (batch first: %v) or [seq, %d]", in[0].Shape(), m.InputSize, m.BatchFirst, m.InputSize))
		}
		hs := m.initial("hidden", in[1], x, unbatched)
		cs := m.initial("cell", in[2], x, unbatched)
		D := m.dirs()
		var hn, cn []*tensor.Tensor // [1, B, H] each, layer-major
		for l := 0; l < m.NumLayers; l++ {
			var st []nn.LSTMState
			if hs != nil || cs != nil {
				st = make([]nn.LSTMState, D)
				for d := range st {
					if hs != nil {
						st[d].H = hs[l*D+d]
					}
					if cs != nil {
						st[d].C = cs[l*D+d]
					}
				}
			}
			var fin []nn.LSTMState
			x, fin = m.Layer(l).Forward(x, st)
			for _, s := range fin {
				hn = append(hn, ops.Unsqueeze(s.H, 0))
				cn = append(cn, ops.Unsqueeze(s.C, 0))
			}
		}
		h, c := hn[0], cn[0]
		if len(hn) > 1 {
			h, c = m.HiddenCat.Cat(hn, 0), m.CellCat.Cat(cn, 0)
		}
		switch {
		case unbatched:
			x, h, c = ops.Squeeze(x, 1), ops.Squeeze(h, 1), ops.Squeeze(c, 1)
		case m.BatchFirst:
			x = ops.Transpose(x, 0, 1)
		}
		return []*tensor.Tensor{x, h, c}
	})
	return out[0], nn.LSTMState{H: out[1], C: out[2]}
}

// initial splits a given state [L*D, B, H] ([L*D, H] unbatched) into
// [B, H] states, layer-major. It returns nil for a nil state.
func (m *LSTM) initial(what string, s, x *tensor.Tensor, unbatched bool) []*tensor.Tensor {
	if s == nil {
		return nil
	}
	if unbatched {
		s = ops.Unsqueeze(s, 1)
	}
	n, B, H := m.NumLayers*m.dirs(), x.Dim(1), m.HiddenSize
	if s.NDim() != 3 || s.Dim(0) != n || s.Dim(1) != B || s.Dim(2) != H {
		panic(fmt.Sprintf("quantizable: LSTM: initial %s state shape %v, want [%d, %d, %d]", what, s.Shape(), n, B, H))
	}
	if isQ(s) != isQ(x) {
		panic(fmt.Sprintf("quantizable: LSTM: initial %s state is %v and the input %v; pass a state in the input's domain", what, s.DType(), x.DType()))
	}
	ones := make([]int, n)
	for i := range ones {
		ones[i] = 1
	}
	out := ops.Split(s, ones, 0)
	for i, p := range out {
		out[i] = ops.Reshape(p, B, H)
	}
	return out
}
