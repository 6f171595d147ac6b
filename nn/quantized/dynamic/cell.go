package dynamic

import (
	"fmt"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/tensor"
)

// cell is the state LSTMCell, GRUCell and RNNCell share: the packed input
// and hidden projections, whose state dict entries are weight_ih,
// weight_hh (qint8 with qparams, or float32 half values), bias_ih and
// bias_hh (float32). See Options.Rule for the rule PyTorch's engines use
// in cells.
type cell struct {
	nn.Base
	InputSize, HiddenSize int
	kind                  string
	ih, hh                *gemm
}

func newCell(op, kind string, f *nn.RNNCellBase, gates int, o Options) (cell, error) {
	c := cell{InputSize: f.InputSize, HiddenSize: f.HiddenSize, kind: kind}
	var err error
	if c.ih, err = newGemm(op, f.WeightIH, f.BiasIH, o); err != nil {
		return c, err
	}
	if c.hh, err = newGemm(op, f.WeightHH, f.BiasHH, o); err != nil {
		return c, err
	}
	if c.ih.out != gates*c.HiddenSize || c.hh.out != gates*c.HiddenSize || c.hh.in != c.HiddenSize || c.ih.in != c.InputSize {
		return c, fmt.Errorf("dynamic: %s: weights %v and %v do not fit input %d and hidden %d", op, f.WeightIH.Shape(), f.WeightHH.Shape(), c.InputSize, c.HiddenSize)
	}
	c.RegisterBuffer("weight_ih", c.ih.weight)
	c.RegisterBuffer("weight_hh", c.hh.weight)
	if c.ih.bias != nil {
		c.RegisterBuffer("bias_ih", c.ih.bias)
	}
	if c.hh.bias != nil {
		c.RegisterBuffer("bias_hh", c.hh.bias)
	}
	return c, nil
}

// fromFloat converts the float module f with build, which is not called
// when f is nil, and returns the converted module in eval mode.
func fromFloat[F any, M nn.Module](op string, f *F, build func(*F) (M, error)) (M, error) {
	var none M
	if f == nil {
		return none, fmt.Errorf("dynamic: %s: nil module", op)
	}
	m, err := build(f)
	if err != nil {
		return none, err
	}
	nn.Eval(m)
	return m, nil
}

func (c *cell) reload(prefix string, sd map[string]*tensor.Tensor) ([]func(), error) {
	fi, err := c.ih.prepare(prefix+"weight_ih", sd[prefix+"weight_ih"], sd[prefix+"bias_ih"])
	if err != nil {
		return nil, err
	}
	fh, err := c.hh.prepare(prefix+"weight_hh", sd[prefix+"weight_hh"], sd[prefix+"bias_hh"])
	if err != nil {
		return nil, err
	}
	return []func(){fi, fh}, nil
}

// input checks x [B, in] or [in] and returns B and whether it was
// unbatched.
func (c *cell) input(x *tensor.Tensor) (int, bool) {
	if x != nil && x.DType() == tensor.Float32 {
		if x.NDim() == 1 && x.Dim(0) == c.InputSize {
			return 1, true
		}
		if x.NDim() == 2 && x.Dim(1) == c.InputSize {
			return x.Dim(0), false
		}
	}
	panic(fmt.Sprintf("dynamic: %s: input %v, want float32 [batch, %d] or [%d]", c.kind, desc(x), c.InputSize, c.InputSize))
}

// state returns a copy of s [B, H] ([H] unbatched), zeros for nil.
func (c *cell) state(name string, s *tensor.Tensor, B int, unbatched bool) []float32 {
	if s == nil {
		return make([]float32, B*c.HiddenSize)
	}
	want := []int{B, c.HiddenSize}
	if unbatched {
		want = want[1:]
	}
	if s.DType() != tensor.Float32 || !tensor.SameShape(s.Shape(), want) {
		panic(fmt.Sprintf("dynamic: %s: %s %v, want float32 %v", c.kind, name, desc(s), want))
	}
	return append([]float32(nil), s.F32()...)
}

// project returns the input and hidden projections [B, G*H] of x and h.
func (c *cell) project(x *tensor.Tensor, h []float32, B int) (xg, hg []float32) {
	G := c.ih.out
	xg, hg = make([]float32, B*G), make([]float32, B*G)
	c.ih.rows(B, x.F32(), c.ih.view(x.F32(), B, c.InputSize), xg, c.ih.view(xg, B, G))
	c.hh.rows(B, h, c.hh.view(h, B, c.HiddenSize), hg, c.hh.view(hg, B, G))
	return xg, hg
}

func (c *cell) shape(B int, unbatched bool) []int {
	if unbatched {
		return []int{c.HiddenSize}
	}
	return []int{B, c.HiddenSize}
}

// LSTMCell is a dynamic quantized LSTM step
// (torch.ao.nn.quantized.dynamic.LSTMCell) with nn.LSTMCell's Forward.
type LSTMCell struct{ cell }

// LSTMCellFromFloat converts a float LSTMCell.
func LSTMCellFromFloat(f *nn.LSTMCell, o Options) (*LSTMCell, error) {
	return fromFloat("LSTMCellFromFloat", f, func(f *nn.LSTMCell) (*LSTMCell, error) {
		c, err := newCell("LSTMCellFromFloat", "LSTMCell", &f.RNNCellBase, 4, o)
		return &LSTMCell{c}, err
	})
}

// TypeName returns "quantized.dynamic.LSTMCell".
func (m *LSTMCell) TypeName() string { return "quantized.dynamic.LSTMCell" }

// Forward computes the next state from x [batch, input] (or [input]) and
// state (nil means zeros), as nn.LSTMCell.Forward.
func (m *LSTMCell) Forward(x *tensor.Tensor, state *nn.LSTMState) nn.LSTMState {
	var h0, c0 *tensor.Tensor
	if state != nil {
		h0, c0 = state.H, state.C
	}
	res := nn.Call(m, []*tensor.Tensor{x, h0, c0}, func(in []*tensor.Tensor) []*tensor.Tensor {
		B, unbatched := m.input(in[0])
		h := m.state("h", in[1], B, unbatched)
		c := m.state("c", in[2], B, unbatched)
		xg, hg := m.project(in[0], h, B)
		H := m.HiddenSize
		for b := 0; b < B; b++ {
			lstmGates(xg[b*4*H:(b+1)*4*H], hg[b*4*H:(b+1)*4*H], h[b*H:(b+1)*H], c[b*H:(b+1)*H])
		}
		s := m.shape(B, unbatched)
		return []*tensor.Tensor{tensor.FromFloat32(h, s...), tensor.FromFloat32(c, s...)}
	})
	return nn.LSTMState{H: res[0], C: res[1]}
}

// GRUCell is a dynamic quantized GRU step
// (torch.ao.nn.quantized.dynamic.GRUCell) with nn.GRUCell's Forward.
type GRUCell struct{ cell }

// GRUCellFromFloat converts a float GRUCell.
func GRUCellFromFloat(f *nn.GRUCell, o Options) (*GRUCell, error) {
	return fromFloat("GRUCellFromFloat", f, func(f *nn.GRUCell) (*GRUCell, error) {
		c, err := newCell("GRUCellFromFloat", "GRUCell", &f.RNNCellBase, 3, o)
		return &GRUCell{c}, err
	})
}

// TypeName returns "quantized.dynamic.GRUCell".
func (m *GRUCell) TypeName() string { return "quantized.dynamic.GRUCell" }

// Forward computes the next hidden state from x [batch, input] (or
// [input]) and h (nil means zeros), as nn.GRUCell.Forward.
func (m *GRUCell) Forward(x, h *tensor.Tensor) *tensor.Tensor {
	return nn.Call(m, []*tensor.Tensor{x, h}, func(in []*tensor.Tensor) []*tensor.Tensor {
		B, unbatched := m.input(in[0])
		hv := m.state("h", in[1], B, unbatched)
		xg, hg := m.project(in[0], hv, B)
		H := m.HiddenSize
		for b := 0; b < B; b++ {
			gruGates(xg[b*3*H:(b+1)*3*H], hg[b*3*H:(b+1)*3*H], hv[b*H:(b+1)*H])
		}
		return []*tensor.Tensor{tensor.FromFloat32(hv, m.shape(B, unbatched)...)}
	})[0]
}

// RNNCell is a dynamic quantized Elman RNN step
// (torch.ao.nn.quantized.dynamic.RNNCell): h' = tanh(W_ih x + b_ih +
// W_hh h + b_hh), or relu with ReLU.
type RNNCell struct {
	cell
	// ReLU selects the relu nonlinearity.
	ReLU bool
}

// RNNCellFromFloat converts a float RNNCell (keeping its nonlinearity).
func RNNCellFromFloat(f *nn.RNNCell, o Options) (*RNNCell, error) {
	return fromFloat("RNNCellFromFloat", f, func(f *nn.RNNCell) (*RNNCell, error) {
		c, err := newCell("RNNCellFromFloat", "RNNCell", &f.RNNCellBase, 1, o)
		return &RNNCell{c, f.ReLU}, err
	})
}

// TypeName returns "quantized.dynamic.RNNCell".
func (m *RNNCell) TypeName() string { return "quantized.dynamic.RNNCell" }

// Forward computes the next hidden state from x [batch, input] (or
// [input]) and h (nil means zeros), as nn.RNNCell.Forward.
func (m *RNNCell) Forward(x, h *tensor.Tensor) *tensor.Tensor {
	return nn.Call(m, []*tensor.Tensor{x, h}, func(in []*tensor.Tensor) []*tensor.Tensor {
		B, unbatched := m.input(in[0])
		hv := m.state("h", in[1], B, unbatched)
		xg, hg := m.project(in[0], hv, B)
		for i := range hv {
			// PyTorch: linear_hh(h) + linear_ih(x), then the nonlinearity.
			v := hg[i] + xg[i]
			if m.ReLU {
				hv[i] = max(v, 0)
			} else {
				hv[i] = tanh(v)
			}
		}
		return []*tensor.Tensor{tensor.FromFloat32(hv, m.shape(B, unbatched)...)}
	})[0]
}
