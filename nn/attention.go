package nn

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// Attention is implemented by MultiheadAttention and by modules that
// replace it (TransformerEncoderLayer.SelfAttn holds one).
type Attention interface {
	Module
	// Forward attends from query to key/value; see
	// MultiheadAttention.Forward.
	Forward(query, key, value *tensor.Tensor, o AttentionOptions) (out, weights *tensor.Tensor)
}

// AttentionOptions are the per-call arguments of MultiheadAttention.Forward.
// The zero value attends without masks and returns no weights.
type AttentionOptions struct {
	// KeyPaddingMask [batch, S] (or [S] unbatched) marks keys to ignore:
	// bool true means ignore; a float mask is added to the scores.
	KeyPaddingMask *tensor.Tensor
	// AttnMask [L, S] or [batch*heads, L, S] restricts attention: bool true
	// means not allowed; a float mask is added to the scores.
	AttnMask *tensor.Tensor
	// IsCausal adds a causal mask (position i attends to j <= i).
	IsCausal bool
	// NeedWeights returns the attention weights (PyTorch's default is
	// true; here it must be asked for).
	NeedWeights bool
	// PerHeadWeights returns weights per head [batch, heads, L, S] instead
	// of averaged over heads [batch, L, S] (average_attn_weights=False).
	PerHeadWeights bool
}

// MultiheadAttentionOptions configure MultiheadAttention. The zero value is
// PyTorch's default: no dropout, with biases, sequence-first, key and value
// dimensions equal to the embedding dimension.
type MultiheadAttentionOptions struct {
	// Dropout is applied to the attention weights in training mode.
	Dropout float32
	// NoBias drops in_proj_bias and out_proj's bias (bias=False).
	NoBias bool
	// BatchFirst makes inputs and outputs [batch, seq, feature].
	BatchFirst bool
	// KDim and VDim are the key and value feature sizes; 0 means embedDim.
	KDim, VDim int
	// RNG draws the initial weights (and dropout masks); nil means the
	// global generator.
	RNG *tensor.RNG
}

// MultiheadAttention is torch.nn.MultiheadAttention: queries, keys and
// values are projected (in_proj_weight [3E, E] and in_proj_bias [3E], or
// q_proj_weight, k_proj_weight, v_proj_weight when KDim or VDim differ from
// E), split into heads, attended with scaled dot products
// softmax(q k^T / sqrt(E/heads) + mask) v, and projected by OutProj (a
// Linear called "out_proj"). Initialization is PyTorch's: xavier_uniform
// projections, zero in_proj_bias and out_proj.bias, and out_proj.weight as
// a Linear's.
type MultiheadAttention struct {
	Base
	EmbedDim, NumHeads, KDim, VDim int
	Dropout                        float32
	BatchFirst                     bool
	InProjWeight                   *tensor.Tensor `nn:"in_proj_weight"`
	QProjWeight                    *tensor.Tensor `nn:"q_proj_weight"`
	KProjWeight                    *tensor.Tensor `nn:"k_proj_weight"`
	VProjWeight                    *tensor.Tensor `nn:"v_proj_weight"`
	InProjBias                     *tensor.Tensor `nn:"in_proj_bias"`
	OutProj                        Layer          `nn:"out_proj"`
	rng                            *tensor.RNG
}

// NewMultiheadAttention returns a MultiheadAttention over embedDim
// features split into numHeads heads.
func NewMultiheadAttention(embedDim, numHeads int, o MultiheadAttentionOptions) (*MultiheadAttention, error) {
	if embedDim <= 0 || numHeads <= 0 || embedDim%numHeads != 0 {
		return nil, fmt.Errorf("nn: NewMultiheadAttention: embed_dim %d must be a positive multiple of num_heads %d", embedDim, numHeads)
	}
	if o.Dropout < 0 || o.Dropout > 1 || o.KDim < 0 || o.VDim < 0 {
		return nil, fmt.Errorf("nn: NewMultiheadAttention: invalid dropout %g or kdim %d / vdim %d", o.Dropout, o.KDim, o.VDim)
	}
	m := &MultiheadAttention{EmbedDim: embedDim, NumHeads: numHeads, KDim: o.KDim, VDim: o.VDim, Dropout: o.Dropout,
		BatchFirst: o.BatchFirst}
	if m.KDim == 0 {
		m.KDim = embedDim
	}
	if m.VDim == 0 {
		m.VDim = embedDim
	}
	out, err := NewLinear(embedDim, embedDim, LinearOptions{NoBias: o.NoBias, RNG: o.RNG})
	if err != nil {
		return nil, err
	}
	m.OutProj = out
	withRNG(o.RNG, func(g *tensor.RNG) {
		if m.packed() {
			m.InProjWeight = newParam(3*embedDim, embedDim)
			tensor.XavierUniform(g, m.InProjWeight, 1)
		} else {
			m.QProjWeight = newParam(embedDim, embedDim)
			m.KProjWeight = newParam(embedDim, m.KDim)
			m.VProjWeight = newParam(embedDim, m.VDim)
			for _, w := range []*tensor.Tensor{m.QProjWeight, m.KProjWeight, m.VProjWeight} {
				tensor.XavierUniform(g, w, 1)
			}
		}
	})
	if !o.NoBias {
		m.InProjBias = newParam(3 * embedDim)
		clear(out.Bias.F32()) // PyTorch's _reset_parameters zeroes out_proj.bias
	}
	m.rng = childRNG(o.RNG)
	return m, nil
}

func (m *MultiheadAttention) packed() bool { return m.KDim == m.EmbedDim && m.VDim == m.EmbedDim }

// projections returns the q, k, v weights [E, *] and biases [E] (nil
// without bias).
func (m *MultiheadAttention) projections() (w [3]*tensor.Tensor, b [3]*tensor.Tensor) {
	E := m.EmbedDim
	for i := range 3 {
		if m.packed() {
			w[i] = ops.Narrow(m.InProjWeight, 0, i*E, E)
		}
		if m.InProjBias != nil {
			b[i] = ops.Narrow(m.InProjBias, 0, i*E, E)
		}
	}
	if !m.packed() {
		w = [3]*tensor.Tensor{m.QProjWeight, m.KProjWeight, m.VProjWeight}
	}
	return w, b
}

// Forward attends from query [L, N, E] to key [S, N, KDim] and value
// [S, N, VDim] ([N, L, E] etc. with BatchFirst; [L, E] etc. unbatched) and
// returns the output in query's layout and, with o.NeedWeights, the
// attention weights [N, L, S] averaged over heads (or [N, heads, L, S]).
// Masked positions get -inf scores, so a query whose keys are all masked
// yields NaN, as in PyTorch.
func (m *MultiheadAttention) Forward(query, key, value *tensor.Tensor, o AttentionOptions) (out, weights *tensor.Tensor) {
	in := []*tensor.Tensor{query, key, value, o.KeyPaddingMask, o.AttnMask}
	res := Call(m, in, func(in []*tensor.Tensor) []*tensor.Tensor {
		o.KeyPaddingMask, o.AttnMask = in[3], in[4]
		y, w := m.attend(in[0], in[1], in[2], o)
		return []*tensor.Tensor{y, w}
	})
	return res[0], res[1]
}

func (m *MultiheadAttention) attend(query, key, value *tensor.Tensor, o AttentionOptions) (*tensor.Tensor, *tensor.Tensor) {
	self := query == key && key == value
	unbatched := query.NDim() == 2
	if unbatched {
		query, key, value = ops.Unsqueeze(query, 1), ops.Unsqueeze(key, 1), ops.Unsqueeze(value, 1)
	} else if m.BatchFirst {
		query, key, value = ops.Transpose(query, 0, 1), ops.Transpose(key, 0, 1), ops.Transpose(value, 0, 1)
	}
	// Now sequence-first: query [L, N, E], key [S, N, KDim], value [S, N, VDim].
	if query.NDim() != 3 || key.NDim() != 3 || value.NDim() != 3 || query.Dim(2) != m.EmbedDim ||
		key.Dim(2) != m.KDim || value.Dim(2) != m.VDim || key.Dim(0) != value.Dim(0) ||
		key.Dim(1) != query.Dim(1) || value.Dim(1) != query.Dim(1) {
		panic(fmt.Sprintf("nn: MultiheadAttention: query %v, key %v, value %v do not fit embed_dim %d, kdim %d, vdim %d",
			query.Shape(), key.Shape(), value.Shape(), m.EmbedDim, m.KDim, m.VDim))
	}
	L, N, S := query.Dim(0), query.Dim(1), key.Dim(0)
	E, h := m.EmbedDim, m.NumHeads
	d := E / h
	var q, k, v *tensor.Tensor
	if self && m.packed() {
		qkv := ops.Chunk(ops.Linear(query, m.InProjWeight, m.InProjBias), 3, 2)
		q, k, v = qkv[0], qkv[1], qkv[2]
	} else {
		w, b := m.projections()
		q, k, v = ops.Linear(query, w[0], b[0]), ops.Linear(key, w[1], b[1]), ops.Linear(value, w[2], b[2])
	}
	// Heads: [T, N, E] -> [N, h, T, d].
	heads := func(x *tensor.Tensor, T int) *tensor.Tensor {
		return ops.Permute(ops.Reshape(x, T, N, h, d), 1, 2, 0, 3)
	}
	q = ops.MulScalar(heads(q, L), float32(math.Sqrt(1/float64(d))))
	kT := ops.Permute(ops.Reshape(k, S, N, h, d), 1, 2, 3, 0) // [N, h, d, S]
	scores := ops.MatMul(q, kT)                               // [N, h, L, S]
	if mask := m.mask(o, N, L, S); mask != nil {
		scores = ops.Add(scores, mask)
	}
	attn := ops.Softmax(scores, -1)
	if m.Dropout > 0 {
		attn = ops.Dropout(attn, m.Dropout, m.Training(), m.rng)
	}
	y := ops.MatMul(attn, heads(v, S))                   // [N, h, L, d]
	y = ops.Reshape(ops.Permute(y, 2, 0, 1, 3), L, N, E) // [L, N, E]
	y = m.OutProj.Forward(y)
	var weights *tensor.Tensor
	if o.NeedWeights {
		weights = attn
		if !o.PerHeadWeights {
			weights = ops.Mean(attn, []int{1}, false)
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

// mask combines the attention mask, the key padding mask and the causal
// mask into one additive float mask broadcastable to [N, h, L, S], or nil.
func (m *MultiheadAttention) mask(o AttentionOptions, N, L, S int) *tensor.Tensor {
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
			panic(fmt.Sprintf("nn: MultiheadAttention: attn_mask shape %v, want [%d, %d] or [%d, %d, %d]",
				a.Shape(), L, S, N*m.NumHeads, L, S))
		}
		add(a)
	}
	if kp := o.KeyPaddingMask; kp != nil {
		if !(kp.NDim() == 2 && kp.Dim(0) == N && kp.Dim(1) == S) && !(kp.NDim() == 1 && N == 1 && kp.Dim(0) == S) {
			panic(fmt.Sprintf("nn: MultiheadAttention: key_padding_mask shape %v, want [%d, %d]", kp.Shape(), N, S))
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
	panic(fmt.Sprintf("nn: MultiheadAttention: mask dtype %v, want bool or float32", mask.DType()))
}
