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
	a := attention{
		AttentionSpec: AttentionSpec{
			Name:     "nn: MultiheadAttention",
			EmbedDim: m.EmbedDim, NumHeads: m.NumHeads, KDim: m.KDim, VDim: m.VDim, BatchFirst: m.BatchFirst,
			Project: func(query, key, value *tensor.Tensor) (q, k, v *tensor.Tensor) {
				if self && m.packed() {
					qkv := ops.Chunk(ops.Linear(query, m.InProjWeight, m.InProjBias), 3, 2)
					return qkv[0], qkv[1], qkv[2]
				}
				w, b := m.projections()
				return ops.Linear(query, w[0], b[0]), ops.Linear(key, w[1], b[1]), ops.Linear(value, w[2], b[2])
			},
			Output: func(y, attn *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) { return m.OutProj.Forward(y), attn },
		},
		scaleHeads: true,
	}
	if m.Dropout > 0 {
		a.dropout = func(attn *tensor.Tensor) *tensor.Tensor { return ops.Dropout(attn, m.Dropout, m.Training(), m.rng) }
	}
	return a.forward(query, key, value, o)
}

// AttentionSpec describes a multi-head attention module to MultiheadAttend:
// its sizes and layout, as in MultiheadAttention, and the steps it computes
// its own way (package quantizable's MultiheadAttention projects with
// observable Linear children, for one).
type AttentionSpec struct {
	// Name begins panic messages, as in "nn: MultiheadAttention".
	Name string
	// EmbedDim, NumHeads, KDim, VDim and BatchFirst are as in
	// MultiheadAttention.
	EmbedDim, NumHeads, KDim, VDim int
	BatchFirst                     bool
	// Project maps the sequence-first query [L, N, E], key [S, N, KDim]
	// and value [S, N, VDim] to float32 q [L, N, E], k [S, N, E] and
	// v [S, N, E]. MultiheadAttend does not scale q: Project multiplies it
	// by head_dim^-0.5.
	Project func(query, key, value *tensor.Tensor) (q, k, v *tensor.Tensor)
	// Output maps the attention output [L, N, E] and the attention weights
	// [N, heads, L, S] to the module's output (sequence-first) and the
	// weights it reports. It is called on every call, whether or not the
	// weights are asked for.
	Output func(y, attn *tensor.Tensor) (out, weights *tensor.Tensor)
	// MeanHeads averages the reported weights [N, heads, L, S] over the
	// heads; nil means ops.Mean over dimension 1.
	MeanHeads func(w *tensor.Tensor) *tensor.Tensor
}

// MultiheadAttend computes MultiheadAttention.Forward for the module s
// describes: it checks and lays out query, key and value as
// MultiheadAttention does, calls s.Project, splits q, k and v into heads,
// attends with softmax(q k^T + mask) v under o's masks, merges the heads,
// calls s.Output and returns its output and, with o.NeedWeights, its
// weights, in the layout of the inputs. It panics as
// MultiheadAttention.Forward does when the shapes do not fit. s must set
// Project and Output, and NumHeads must divide EmbedDim.
func MultiheadAttend(query, key, value *tensor.Tensor, o AttentionOptions, s AttentionSpec) (out, weights *tensor.Tensor) {
	return attention{AttentionSpec: s}.forward(query, key, value, o)
}

// attention is an AttentionSpec with the steps MultiheadAttention adds.
type attention struct {
	AttentionSpec
	// scaleHeads multiplies q by head_dim^-0.5 after its split into heads
	// (Project leaves q unscaled).
	scaleHeads bool
	// dropout, when not nil, is applied to the attention weights.
	dropout func(attn *tensor.Tensor) *tensor.Tensor
}

func (a attention) forward(query, key, value *tensor.Tensor, o AttentionOptions) (*tensor.Tensor, *tensor.Tensor) {
	unbatched := query.NDim() == 2
	if unbatched {
		query, key, value = ops.Unsqueeze(query, 1), ops.Unsqueeze(key, 1), ops.Unsqueeze(value, 1)
	} else if a.BatchFirst {
		query, key, value = ops.Transpose(query, 0, 1), ops.Transpose(key, 0, 1), ops.Transpose(value, 0, 1)
	}
	// Now sequence-first: query [L, N, E], key [S, N, KDim], value [S, N, VDim].
	if query.NDim() != 3 || key.NDim() != 3 || value.NDim() != 3 || query.Dim(2) != a.EmbedDim ||
		key.Dim(2) != a.KDim || value.Dim(2) != a.VDim || key.Dim(0) != value.Dim(0) ||
		key.Dim(1) != query.Dim(1) || value.Dim(1) != query.Dim(1) {
		panic(fmt.Sprintf("%s: query %v, key %v, value %v do not fit embed_dim %d, kdim %d, vdim %d",
			a.Name, query.Shape(), key.Shape(), value.Shape(), a.EmbedDim, a.KDim, a.VDim))
	}
	L, N, S := query.Dim(0), query.Dim(1), key.Dim(0)
	E, h := a.EmbedDim, a.NumHeads
	d := E / h
	q, k, v := a.Project(query, key, value)
	// Heads: [T, N, E] -> [N, h, T, d].
	heads := func(x *tensor.Tensor, T int) *tensor.Tensor {
		return ops.Permute(ops.Reshape(x, T, N, h, d), 1, 2, 0, 3)
	}
	q = heads(q, L)
	if a.scaleHeads {
		q = ops.MulScalar(q, float32(math.Sqrt(1/float64(d))))
	}
	kT := ops.Permute(ops.Reshape(k, S, N, h, d), 1, 2, 3, 0) // [N, h, d, S]
	scores := ops.MatMul(q, kT)                               // [N, h, L, S]
	if mask := a.mask(o, N, L, S); mask != nil {
		scores = ops.Add(scores, mask)
	}
	attn := ops.Softmax(scores, -1)
	if a.dropout != nil {
		attn = a.dropout(attn)
	}
	y := ops.MatMul(attn, heads(v, S))                   // [N, h, L, d]
	y = ops.Reshape(ops.Permute(y, 2, 0, 1, 3), L, N, E) // [L, N, E]
	y, w := a.Output(y, attn)
	var weights *tensor.Tensor
	if o.NeedWeights {
		weights = w
		if !o.PerHeadWeights {
			if a.MeanHeads != nil {
				weights = a.MeanHeads(w)
			} else {
				weights = ops.Mean(w, []int{1}, false)
			}
		}
		if unbatched {
			weights = ops.Squeeze(weights, 0)
		}
	}
	switch {
	case unbatched:
		y = ops.Squeeze(y, 1)
	case a.BatchFirst:
		y = ops.Transpose(y, 0, 1)
	}
	return y, weights
}

// mask combines the attention mask, the key padding mask and the causal
// mask into one additive float mask broadcastable to [N, h, L, S], or nil.
func (a attention) mask(o AttentionOptions, N, L, S int) *tensor.Tensor {
	var mask *tensor.Tensor
	add := func(x *tensor.Tensor) {
		if mask == nil {
			mask = x
		} else {
			mask = ops.Add(mask, x)
		}
	}
	h := a.NumHeads
	if am := o.AttnMask; am != nil {
		am = a.additive(am)
		switch {
		case am.NDim() == 2 && am.Dim(0) == L && am.Dim(1) == S:
		case am.NDim() == 3 && am.Dim(0) == N*h && am.Dim(1) == L && am.Dim(2) == S:
			am = ops.Reshape(am, N, h, L, S)
		default:
			panic(fmt.Sprintf("%s: attn_mask shape %v, want [%d, %d] or [%d, %d, %d]",
				a.Name, am.Shape(), L, S, N*h, L, S))
		}
		add(am)
	}
	if kp := o.KeyPaddingMask; kp != nil {
		if !(kp.NDim() == 2 && kp.Dim(0) == N && kp.Dim(1) == S) && !(kp.NDim() == 1 && N == 1 && kp.Dim(0) == S) {
			panic(fmt.Sprintf("%s: key_padding_mask shape %v, want [%d, %d]", a.Name, kp.Shape(), N, S))
		}
		add(ops.Reshape(a.additive(kp), N, 1, 1, S))
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
func (a attention) additive(mask *tensor.Tensor) *tensor.Tensor {
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
	panic(fmt.Sprintf("%s: mask dtype %v, want bool or float32", a.Name, mask.DType()))
}
