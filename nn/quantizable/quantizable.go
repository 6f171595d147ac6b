// Package quantizable holds float modules rebuilt from observable parts so
// that eager-mode static quantization can quantize them, after PyTorch's
// torch.ao.nn.quantizable: LSTM (and its LSTMCell) and MultiheadAttention.
//
// A float nn.LSTM or nn.MultiheadAttention computes with weights it keeps
// itself, so Prepare has nothing to observe inside it. The forms here
// compute the same function (within float rounding) from nn.Linear
// projections, nn.FloatFunctional adds and multiplies, Sigmoid and Tanh
// modules, and (for attention) QuantStub/DeQuantStub pairs around the part
// that stays float. Every part is held in a field of interface type
// (nn.Layer, nn.Functional), so eager.Convert can swap it for its quantized
// module: Linear for quantized.Linear, FloatFunctional for
// quantized.QFunctional, the stubs for Quantize and DeQuantize. Sigmoid
// and Tanh are not swapped: on quint8 input they run the quantized kernels
// with PyTorch's fixed output qparams ((1/256, 0) and (2/256, 128)).
//
// Package eager swaps an nn.LSTM, nn.LSTMCell or nn.MultiheadAttention that
// has a qconfig for its form here during Prepare, so a model with an LSTM
// or attention between a QuantStub and a DeQuantStub is statically
// quantized by the ordinary Prepare, calibrate, Convert flow (PyTorch needs
// custom-module configurations for this). The same forward code runs on
// float tensors before conversion and on quint8 tensors after it.
//
// # Quantized semantics
//
// On quint8 input the forms follow PyTorch 1.13's quantizable and quantized
// modules step by step:
//
//   - LSTM: a missing initial state is quint8 zeros with scale 1 and zero
//     point 0 (torch.quantize_per_tensor(zeros, 1.0, 0)). Any qparams
//     represent zero exactly; a unit scale keeps the hidden projection's
//     int32 bias, RNE(b/(s_h*s_w)), at the weight's resolution, where the
//     all-zero range an observer would record gives scale 1.2e-7 and
//     overflows it. Given initial states must be quantized like the input.
//   - The hidden states of one direction all come from one ogate_cy, so
//     stacking them into the output sequence keeps their codes. The two
//     directions' outputs, and the final states of several layers or
//     directions, are joined by FloatFunctional.Cat children (a
//     bidirectional LSTMLayer's "cat", the LSTM's "hidden_cat" and
//     "cell_cat"), whose observed qparams cover every piece. This is a
//     deliberate divergence: PyTorch joins them with torch.cat and
//     torch.stack, which requantize every piece to the first piece's
//     qparams and clip the others (on a two-layer bidirectional LSTM the
//     reverse direction's output fell to 18 dB SQNR that way, against
//     32 dB for the forward one). A single-layer, single-direction LSTM
//     has none of these parts and computes as PyTorch's.
//   - MultiheadAttention scales the query with QFunctional.MulScalar (the
//     codes are kept, the scale multiplied), dequantizes q, k and v,
//     attends in float32, and quantizes the attention output (before
//     out_proj) and the per-head attention weights with their own observed
//     qparams. Head-averaged weights are dequantized, averaged and
//     quantized again with the per-head weights' qparams (ATen's quantized
//     mean).
//
// Unlike PyTorch 1.13's quantizable modules, batch-first attention keeps
// its layout (PyTorch's from_float drops batch_first and mixes heads in
// the batch-first reshape), and unbatched inputs are accepted, as the float
// modules accept them.
package quantizable

import (
	"fmt"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	oq "github.com/quanta-go/quanta/ops/quantized"
	"github.com/quanta-go/quanta/tensor"
)

// isQ reports whether x is a quantized tensor.
func isQ(x *tensor.Tensor) bool { return x != nil && x.DType().IsQuantized() }

// zeroState returns the initial state [batch, hidden]: float32 zeros, or
// quint8 zeros with scale 1 and zero point 0 when quantized (PyTorch's
// initialize_hidden).
func zeroState(batch, hidden int, quantized bool) *tensor.Tensor {
	if !quantized {
		return tensor.Zeros(batch, hidden)
	}
	q := tensor.PerTensor(1, 0)
	q.QuantMin, q.QuantMax = 0, 255
	return tensor.NewQuantized(tensor.QUInt8, make([]uint8, batch*hidden), q, batch, hidden)
}

// cat joins xs along dim. Quantized pieces are requantized to the first
// piece's qparams, as torch.cat does on quantized tensors.
func cat(xs []*tensor.Tensor, dim int) *tensor.Tensor {
	if !isQ(xs[0]) {
		return ops.Concat(xs, dim)
	}
	q := xs[0].QParams()
	y, err := oq.Cat(xs, dim, q.Scale[0], q.ZeroPoint[0])
	if err != nil {
		panic(fmt.Sprintf("quantizable: %v", err))
	}
	return y
}

// stack joins equally shaped xs along a new dimension dim, quantized ones
// as torch.stack does (requantized to the first one's qparams).
func stack(xs []*tensor.Tensor, dim int) *tensor.Tensor {
	if !isQ(xs[0]) {
		return ops.Stack(xs, dim)
	}
	u := make([]*tensor.Tensor, len(xs))
	for i, x := range xs {
		u[i] = ops.Unsqueeze(x, dim)
	}
	return cat(u, dim)
}

// newLinear returns an nn.Linear holding copies of weight [out, in] and
// bias [out] (nil for none), marked as parameters.
func newLinear(weight, bias *tensor.Tensor) *nn.Linear {
	l := &nn.Linear{InFeatures: weight.Dim(1), OutFeatures: weight.Dim(0), Weight: param(weight)}
	if bias != nil {
		l.Bias = param(bias)
	}
	return l
}

// param returns a detached copy of t that requires grad.
func param(t *tensor.Tensor) *tensor.Tensor {
	p := t.Detach().Clone()
	p.SetRequiresGrad(true)
	return p
}

// LSTMModule is what nn.LSTM, LSTM here and the dynamically quantized
// LSTM (nn/quantized/dynamic) have in common. Declare a model's LSTM field
// with it (as other replaceable children are declared nn.Layer), so that
// eager mode can put the quantizable or dynamically quantized form in its
// place.
type LSTMModule interface {
	nn.Module
	// Forward runs the LSTM over x from state (nil means zeros) and returns
	// the outputs and the final state; see nn.LSTM.Forward.
	Forward(x *tensor.Tensor, state *nn.LSTMState) (*tensor.Tensor, nn.LSTMState)
}

var (
	_ LSTMModule = (*nn.LSTM)(nil)
	_ LSTMModule = (*LSTM)(nil)
)
