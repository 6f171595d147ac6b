package quantizable

import (
	"errors"
	"fmt"
	"math"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// MultiheadAttention is multi-head attention built from observable parts
// (torch.ao.nn.quantizable.MultiheadAttention), with PyTorch's child names:
//
//	linear_Q, linear_K, linear_V  Linear projections of query, key, value
//	q_scaling_product             FloatFunctional: q * head_dim^-0.5 (MulScalar)
//	dequant_q, dequant_k, dequant_v DeQuantStubs: the attention itself is float
//	quant_attn_output             QuantStub before out_proj
//	out_proj                      Linear
//	quant_attn_output_weights     QuantStub of the per-head attention weights
//
// It computes what nn.MultiheadAttention computes and takes the same
// arguments (it implements nn.Attention, so it can stand where a
// TransformerEncoderLayer's self-attention stands). Dropout is recorded
// but never applied: this form is for inference.
type MultiheadAttention struct {
	nn.Base
	EmbedDim, NumHeads, KDim, VDim int
	Dropout                        float32
	BatchFirst                     bool

	LinearQ                nn.Layer      `nn:"linear_Q"`
	LinearK                nn.Layer      `nn:"linear_K"`
	LinearV                nn.Layer      `nn:"linear_V"`
	OutProj                nn.Layer      `nn:"out_proj"`
	QScalingProduct        nn.Functional `nn:"q_scaling_product"`
	QuantAttnOutput        nn.Layer      `nn:"quant_attn_output"`
	QuantAttnOutputWeights nn.Layer      `nn:"quant_attn_output_weights"`
	DequantQ               nn.Layer      `nn:"dequant_q"`
	DequantK               nn.Layer      `nn:"dequant_k"`
	DequantV               nn.Layer      `nn:"dequant_v"`
}

var _ nn.Attention = (*MultiheadAttention)(nil)

// NewMultiheadAttention returns a quantizable MultiheadAttention
// initialized as nn.NewMultiheadAttention initializes a float one.
func NewMultiheadAttention(embedDim, numHeads int, o nn.MultiheadAttentionOptions) (*MultiheadAttention, error) {
	f, err := nn.NewMultiheadAttention(embedDim, numHeads, o)
	if err != nil {
		return nil, fmt.Errorf("quantizable: NewMultiheadAttention: %w", err)
	}
	return MultiheadAttentionFromFloat(f)
}

// MultiheadAttentionFromFloat returns the quantizable form of a float
// MultiheadAttention with copies of its weights: in_proj_weight and
// in_proj_bias are split into linear_Q, linear_K and linear_V (or
// q_proj_weight, k_proj_weight and v_proj_weight are used when the key or
// value size differs), and out_proj, which must be an *nn.Linear, is
// copied (PyTorch's from_float, keeping batch_first).
func MultiheadAttentionFromFloat(f *nn.MultiheadAttention) (*MultiheadAttention, error) {
	if f == nil {
		return nil, errors.New("quantizable: MultiheadAttentionFromFloat: nil module")
	}
	E := f.EmbedDim
	if E <= 0 || f.NumHeads <= 0 || E%f.NumHeads != 0 {
		return nil, fmt.Errorf("quantizable: MultiheadAttentionFromFloat: embed_dim %d is not a positive multiple of num_heads %d", E, f.NumHeads)
	}
	out, ok := f.OutProj.(*nn.Linear)
	if !ok {
		return nil, fmt.Errorf("quantizable: MultiheadAttentionFromFloat: out_proj is a %s, want a float Linear", typeOf(f.OutProj))
	}
	if out.Weight == nil || out.Weight.NDim() != 2 || out.Weight.Dim(0) != E || out.Weight.Dim(1) != E {
		return nil, fmt.Errorf("quantizable: MultiheadAttentionFromFloat: out_proj weight does not have shape [%d, %d]", E, E)
	}
	var w [3]*tensor.Tensor
	dims := [3]int{E, f.KDim, f.VDim}
	if f.InProjWeight != nil {
		if f.InProjWeight.NDim() != 2 || f.InProjWeight.Dim(0) != 3*E || f.InProjWeight.Dim(1) != E || f.KDim != E || f.VDim != E {
			return nil, fmt.Errorf("quantizable: MultiheadAttentionFromFloat: in_proj_weight shape %v, want [%d, %d]", f.InProjWeight.Shape(), 3*E, E)
		}
		for i := range w {
			w[i] = tensor.Narrow(f.InProjWeight.Detach(), 0, i*E, E)
		}
	} else {
		w = [3]*tensor.Tensor{f.QProjWeight, f.KProjWeight, f.VProjWeight}
		for i, t := range w {
			if t == nil || t.NDim() != 2 || t.Dim(0) != E || t.Dim(1) != dims[i] {
				return nil, fmt.Errorf("quantizable: MultiheadAttentionFromFloat: projection %d is missing or not [%d, %d]", i, E, dims[i])
			}
		}
	}
	var b [3]*tensor.Tensor
	if f.InProjBias != nil {
		if f.InProjBias.NDim() != 1 || f.InProjBias.Dim(0) != 3*E {
			return nil, fmt.Errorf("quantizable: MultiheadAttentionFromFloat: in_proj_bias shape %v, want [%d]", f.InProjBias.Shape(), 3*E)
		}
		for i := range b {
			b[i] = tensor.Narrow(f.InProjBias.Detach(), 0, i*E, E)
		}
	}
	m := &MultiheadAttention{
		EmbedDim: E, NumHeads: f.NumHeads, KDim: f.KDim, VDim: f.VDim, Dropout: f.Dropout, BatchFirst: f.BatchFirst,
		LinearQ: newLinear(w[0], b[0]), LinearK: newLinear(w[1], b[1]), LinearV: newLinear(w[2], b[2]),
		OutProj:                newLinear(out.Weight, out.Bias),
		QScalingProduct:        nn.NewFloatFunctional(),
		QuantAttnOutput:        nn.NewQuantStub(nil),
		QuantAttnOutputWeights: nn.NewQuantStub(nil),
		DequantQ:               nn.NewDeQuantStub(nil),
		DequantK:               nn.NewDeQuantStub(nil),
		DequantV:               nn.NewDeQuantStub(nil),
	}
	if !f.Training() {
		nn.Eval(m)
	}
	return m, nil
}

func typeOf(m nn.Module) string {
	if m == nil {
		return "nil module"
	}
	return nn.TypeName(m)
}

// TypeName returns "quantizable.MultiheadAttention".
func (m *MultiheadAttention) TypeName() string { return "quantizable.MultiheadAttention" }

// Forward attends from query [L, N, E] to key [S, N, KDim] and value
// [S, N, VDim] ([N, L, E] etc. with BatchFirst; [L, E] etc. unbatched), as
// nn.MultiheadAttention.Forward, with the same options. On quint8 inputs
// (after eager.Convert) the output is quint8 and the weights, when asked
// for, are quint8 with the qparams observed for them; masks stay float or
// bool.
func (m *MultiheadAttention) Forward(query, key, value *tensor.Tensor, o nn.AttentionOptions) (out, weights *tensor.Tensor) {
	in := []*tensor.Tensor{query, key, value, o.KeyPaddingMask, o.AttnMask}
	res := nn.Call(m, in, func(in []*tensor.Tensor) []*tensor.Tensor {
		o.KeyPaddingMask, o.AttnMask = in[3], in[4]
		y, w := m.attend(in[0], in[1], in[2], o)
		return []*tensor.Tensor{y, w}
	})
	return res[0], res[1]
}

func (m *MultiheadAttention) attend(query, key, value *tensor.Tensor, o nn.AttentionOptions) (*tensor.Tensor, *tensor.Tensor) {
	return nn.MultiheadAttend(query, key, value, o, nn.AttentionSpec{
		Name:     "quantizable: MultiheadAttention",
		EmbedDim: m.EmbedDim, NumHeads: m.NumHeads, KDim: m.KDim, VDim: m.VDim, BatchFirst: m.BatchFirst,
		Project: func(query, key, value *tensor.Tensor) (q, k, v *tensor.Tensor) {
			q = m.LinearQ.Forward(query)
			k = m.LinearK.Forward(key)
			v = m.LinearV.Forward(value)
			q = m.QScalingProduct.MulScalar(q, float32(math.Pow(float64(m.EmbedDim/m.NumHeads), -0.5)))
			// Leaving the quantized part: the attention itself is float.
			return m.DequantQ.Forward(q), m.DequantK.Forward(k), m.DequantV.Forward(v)
		},
		Output: func(y, attn *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
			// Back into the quantized part.
			y = m.OutProj.Forward(m.QuantAttnOutput.Forward(y))
			return y, m.QuantAttnOutputWeights.Forward(attn) // observed on every call, as in PyTorch
		},
		MeanHeads: meanHeads,
	})
}

// meanHeads averages attention weights [N, h, L, S] over the heads; a
// quantized tensor is dequantized, averaged and quantized again with its
// own qparams (ATen's mean on a quantized tensor).
func meanHeads(w *tensor.Tensor) *tensor.Tensor {
	if !isQ(w) {
		return ops.Mean(w, []int{1}, false)
	}
	q := w.QParams()
	return ops.QuantizePerTensor(ops.Mean(ops.Dequantize(w), []int{1}, false), q.Scale[0], q.ZeroPoint[0], w.DType())
}
