package nn

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// CellOptions configure LSTMCell, GRUCell and RNNCell.
type CellOptions struct {
	// NoBias drops the biases (bias=False).
	NoBias bool
	// ReLU makes RNNCell use relu instead of tanh (nonlinearity="relu").
	ReLU bool
	// RNG draws the initial weights; nil means the global generator.
	RNG *tensor.RNG
}

// RNNCellBase holds the parameters LSTMCell, GRUCell and RNNCell share
// (torch.nn.RNNCellBase), under PyTorch's names; the biases are nil without
// bias.
type RNNCellBase struct {
	Base
	InputSize, HiddenSize int
	WeightIH              *tensor.Tensor `nn:"weight_ih"`
	WeightHH              *tensor.Tensor `nn:"weight_hh"`
	BiasIH                *tensor.Tensor `nn:"bias_ih"`
	BiasHH                *tensor.Tensor `nn:"bias_hh"`
}

func newCellBase(op string, in, hidden, gates int, o CellOptions) (RNNCellBase, error) {
	c := RNNCellBase{InputSize: in, HiddenSize: hidden}
	if in <= 0 || hidden <= 0 {
		return c, fmt.Errorf("nn: %s: sizes input=%d hidden=%d must be positive", op, in, hidden)
	}
	c.WeightIH, c.WeightHH = newParam(gates*hidden, in), newParam(gates*hidden, hidden)
	ps := []*tensor.Tensor{c.WeightIH, c.WeightHH}
	if !o.NoBias {
		c.BiasIH, c.BiasHH = newParam(gates*hidden), newParam(gates*hidden)
		ps = append(ps, c.BiasIH, c.BiasHH)
	}
	bound := float32(1 / math.Sqrt(float64(hidden)))
	withRNG(o.RNG, func(g *tensor.RNG) {
		for _, p := range ps {
			tensor.UniformFill(g, p, -bound, bound)
		}
	})
	return c, nil
}

func (c *RNNCellBase) weights() rnnWeights {
	return rnnWeights{c.WeightIH, c.WeightHH, c.BiasIH, c.BiasHH}
}

// batchInput returns x as [B, in] and whether it was unbatched ([in]).
func (c *RNNCellBase) batchInput(op string, x *tensor.Tensor) (*tensor.Tensor, bool) {
	unbatched := x.NDim() == 1
	if unbatched {
		x = ops.Unsqueeze(x, 0)
	}
	if x.NDim() != 2 || x.Dim(1) != c.InputSize {
		panic(fmt.Sprintf("nn: %s: input shape %v, want [batch, %d] or [%d]", op, x.Shape(), c.InputSize, c.InputSize))
	}
	return x, unbatched
}

// batchState returns the state s as [B, H] (zeros when nil).
func (c *RNNCellBase) batchState(op string, s *tensor.Tensor, batch int, unbatched bool) *tensor.Tensor {
	if s == nil {
		return tensor.Zeros(batch, c.HiddenSize)
	}
	if unbatched {
		s = ops.Unsqueeze(s, 0)
	}
	if s.NDim() != 2 || s.Dim(0) != batch || s.Dim(1) != c.HiddenSize {
		panic(fmt.Sprintf("nn: %s: state shape %v, want [%d, %d]", op, s.Shape(), batch, c.HiddenSize))
	}
	return s
}

func unbatch(t *tensor.Tensor, unbatched bool) *tensor.Tensor {
	if unbatched {
		return ops.Squeeze(t, 0)
	}
	return t
}

// LSTMCell is one LSTM step (torch.nn.LSTMCell), with parameters weight_ih
// [4H, in], weight_hh [4H, H], bias_ih, bias_hh [4H].
type LSTMCell struct{ RNNCellBase }

// NewLSTMCell returns an LSTMCell.
func NewLSTMCell(inputSize, hiddenSize int, o CellOptions) (*LSTMCell, error) {
	c, err := newCellBase("NewLSTMCell", inputSize, hiddenSize, 4, o)
	if err != nil {
		return nil, err
	}
	return &LSTMCell{c}, nil
}

// Forward computes the next state from x [batch, input] (or [input]) and
// state (nil means zeros).
func (c *LSTMCell) Forward(x *tensor.Tensor, state *LSTMState) LSTMState {
	var h0, c0 *tensor.Tensor
	if state != nil {
		h0, c0 = state.H, state.C
	}
	out := Call(c, []*tensor.Tensor{x, h0, c0}, func(in []*tensor.Tensor) []*tensor.Tensor {
		x, unbatched := c.batchInput("LSTMCell", in[0])
		h := c.batchState("LSTMCell", in[1], x.Dim(0), unbatched)
		cc := c.batchState("LSTMCell", in[2], x.Dim(0), unbatched)
		w := c.weights()
		s := lstmStep(w, ops.Linear(x, w.wih, w.bih), []*tensor.Tensor{h, cc})
		return []*tensor.Tensor{unbatch(s[0], unbatched), unbatch(s[1], unbatched)}
	})
	return LSTMState{H: out[0], C: out[1]}
}

// GRUCell is one GRU step (torch.nn.GRUCell), with parameters weight_ih
// [3H, in], weight_hh [3H, H], bias_ih, bias_hh [3H].
type GRUCell struct{ RNNCellBase }

// NewGRUCell returns a GRUCell.
func NewGRUCell(inputSize, hiddenSize int, o CellOptions) (*GRUCell, error) {
	c, err := newCellBase("NewGRUCell", inputSize, hiddenSize, 3, o)
	if err != nil {
		return nil, err
	}
	return &GRUCell{c}, nil
}

// Forward computes the next hidden state from x [batch, input] (or
// [input]) and h (nil means zeros).
func (c *GRUCell) Forward(x, h *tensor.Tensor) *tensor.Tensor {
	return Call(c, []*tensor.Tensor{x, h}, func(in []*tensor.Tensor) []*tensor.Tensor {
		x, unbatched := c.batchInput("GRUCell", in[0])
		h := c.batchState("GRUCell", in[1], x.Dim(0), unbatched)
		w := c.weights()
		s := gruStep(w, ops.Linear(x, w.wih, w.bih), []*tensor.Tensor{h})
		return []*tensor.Tensor{unbatch(s[0], unbatched)}
	})[0]
}

// RNNCell is an Elman RNN step h' = tanh(W_ih x + b_ih + W_hh h + b_hh)
// (relu instead of tanh with CellOptions.ReLU) (torch.nn.RNNCell).
type RNNCell struct {
	RNNCellBase
	// ReLU selects the relu nonlinearity.
	ReLU bool
}

// NewRNNCell returns an RNNCell.
func NewRNNCell(inputSize, hiddenSize int, o CellOptions) (*RNNCell, error) {
	c, err := newCellBase("NewRNNCell", inputSize, hiddenSize, 1, o)
	if err != nil {
		return nil, err
	}
	return &RNNCell{RNNCellBase: c, ReLU: o.ReLU}, nil
}

// Forward computes the next hidden state from x and h (nil means zeros).
func (c *RNNCell) Forward(x, h *tensor.Tensor) *tensor.Tensor {
	return Call(c, []*tensor.Tensor{x, h}, func(in []*tensor.Tensor) []*tensor.Tensor {
		x, unbatched := c.batchInput("RNNCell", in[0])
		h := c.batchState("RNNCell", in[1], x.Dim(0), unbatched)
		pre := ops.Add(ops.Linear(x, c.WeightIH, c.BiasIH), ops.Linear(h, c.WeightHH, c.BiasHH))
		var y *tensor.Tensor
		if c.ReLU {
			y = ops.ReLU(pre)
		} else {
			y = ops.Tanh(pre)
		}
		return []*tensor.Tensor{unbatch(y, unbatched)}
	})[0]
}
