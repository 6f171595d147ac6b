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
	unbatched := query.NDim() == 2
	if unbatched {
		query, key, value = ops.Unsqueeze(query, 1), ops.Unsqueeze(key, 1), ops.Unsqueeze(value, 1)
	} else if m.BatchFirst {
		query, key, value = ops.Transpose(query, 0, 1), ops.Transpose(key, 0, 1), ops.Transpose(value, 0, 1)
	}
	if query.NDim() != 3 || key.NDim() != 3 || value.NDim() != 3 || query.Dim(2) != m.EmbedDim ||
		key.Dim(2) != m.KDim || value.Dim(2) != m.VDim || key.Dim(0) != value.Dim(0) ||
		key.Dim(1) != query.Dim(1) || value.Dim(1) != query.Dim(1) {
		panic(fmt.Sprintf("quantizable: MultiheadAttention: query %v, key %v, value %v do not fit embed_dim %d, kdim %d, vdim %d",
			query.Shape(), key.Shape(), value.Shape(), m.EmbedDim, m.KDim, m.VDim))
	}
	L, N, S := query.Dim(0), query.Dim(1), key.Dim(0)
	E, h := m.EmbedDim, m.NumHeads
	d := E / h
	q := m.LinearQ.Forward(query)
	k := m.LinearK.Forward(key)
	v := m.LinearV.Forward(value)
	q = m.QScalingProduct.MulScalar(q, float32(math.Pow(float64(d), -0.5)))
	// Leaving the quantized part: the attention itself is float.
	q, k, v = m.DequantQ.Forward(q), m.DequantK.Forward(k), m.DequantV.Forward(v)
	heads := func(x *tensor.Tensor, T int) *tensor.Tensor { // [T, N, E] -> [N, h, T, d]
		return ops.Permute(ops.Reshape(x, T, N, h, d), 1, 2, 0, 3)
	}
	kT := ops.Permute(ops.Reshape(k, S, N, h, d), 1, 2, 3, 0) // [N, h, d, S]
	scores := ops.MatMul(heads(q, L), kT)                     // [N, h, L, S]
	if mask := m.mask(o, N, L, S); mask != nil {
		scores = ops.Add(scores, mask)
	}
	attn := ops.Softmax(scores, -1)
	y := ops.MatMul(attn, heads(v, S))                   // [N, h, L, d]
	y = ops.Reshape(ops.Permute(y, 2, 0, 1, 3), L, N, E) // [L, N, E]
	// Back into the quantized part.
	y = m.OutProj.Forward(m.QuantAttnOutput.Forward(y))
	w := m.QuantAttnOutputWeights.Forward(attn) // observed on every call, as in PyTorch
	var weights *tensor.Tensor
	if o.NeedWeights {
		weights = w
		if !o.PerHeadWeights {
			weights = meanHeads(w)
		}
		if unbatched {
			weights = ops.Squeeze(weights, 0)
		}
	}
	switch {
	case unbatched:
		y = ops.Squeeze(y, 1)
	case m.BatchFirst:
		y = ops.Transpose(y, 0, 1)
	}
	return y, weights
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

// mask combines the attention mask, the key padding mask and the causal
// mask into one additive float mask broadcastable to [N, h, L, S], or nil
// (nn.MultiheadAttention's rules).
func (m *MultiheadAttention) mask(o nn.AttentionOptions, N, L, S int) *tensor.Tensor {
	var mask *tensor.Tensor
	add := func(x *tensor.Tensor) {
		if mask == nil {
			mask = x
		} else {
			mask = ops.Add(mask, x)
		}
	}
	if a := o.AttnMask; a != nil {
		a = additive(a)
		switch {
		case a.NDim() == 2 && a.Dim(0) == L && a.Dim(1) == S:
		case a.NDim() == 3 && a.Dim(0) == N*m.NumHeads && a.Dim(1) == L && a.Dim(2) == S:
			a = ops.Reshape(a, N, m.NumHeads, L, S)
		default:
			panic(fmt.Sprintf("quantizable: MultiheadAttention: attn_mask shape %v, want [%d, %d] or [%d, %d, %d]",
				a.Shape(), L, S, N*m.NumHeads, L, S))
		}
		add(a)
	}
	if kp := o.KeyPaddingMask; kp != nil {
		if !(kp.NDim() == 2 && kp.Dim(0) == N && kp.Dim(1) == S) && !(kp.NDim() == 1 && N == 1 && kp.Dim(0) == S) {
			panic(fmt.Sprintf("quantizable: MultiheadAttention: key_padding_mask shape %v, want [%d, %d]", kp.Shape(), N, S))
		}
		add(ops.Reshape(additive(kp), N, 1, 1, S))
	}
	if o.IsCausal {
		c := tensor.Zeros(L, S)
		for i := 0; i < L; i++ {
			for j := i + 1; j < S; j++ {
				c.F32()[i*S+j] = float32(math.Inf(-1))
			}
		}
		add(c)
	}
	return mask
}

// additive turns a bool mask (true = masked) into a float mask of 0 and
// -inf; float masks are returned unchanged.
func additive(mask *tensor.Tensor) *tensor.Tensor {
	switch mask.DType() {
	case tensor.Float32:
		return mask
	case tensor.Bool:
		out := tensor.Zeros(mask.Shape()...)
		for i, b := range mask.Bools() {
			if b {
				out.F32()[i] = float32(math.Inf(-1))
			}
		}
		return out
	}
	panic(fmt.Sprintf("quantizable: MultiheadAttention: mask dtype %v, want bool or float32", mask.DType()))
}
