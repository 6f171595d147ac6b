package nn

import (
	"fmt"

	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// TransformerEncoderLayerOptions configure TransformerEncoderLayer.
type TransformerEncoderLayerOptions struct {
	// DimFeedforward is the hidden size of the feed-forward block; 0 means
	// 2048, PyTorch's default.
	DimFeedforward int
	// Dropout is used after attention, inside and after the feed-forward
	// block. The zero value means no dropout; PyTorch's default is 0.1.
	Dropout float32
	// Activation is "relu" (also "") or "gelu".
	Activation string
	// LayerNormEps is the norms' eps; 0 means 1e-5.
	LayerNormEps float32
	// BatchFirst makes inputs and outputs [batch, seq, feature].
	BatchFirst bool
	// NormFirst applies the norms before attention and feed-forward
	// (pre-norm) instead of after the residual additions.
	NormFirst bool
	// NoBias drops the biases of the linear layers and norms (bias=False).
	NoBias bool
	// RNG draws the initial weights (and dropout masks); nil means the
	// global generator.
	RNG *tensor.RNG
}

// TransformerEncoderLayer is torch.nn.TransformerEncoderLayer: self
// attention and a feed-forward block linear2(dropout(act(linear1(x)))),
// each with dropout, a residual connection and a LayerNorm, post-norm by
// default:
//
//	x = norm1(x + dropout1(self_attn(x)));  x = norm2(x + dropout2(ff(x)))
//
// or pre-norm with NormFirst:
//
//	x = x + dropout1(self_attn(norm1(x)));  x = x + dropout2(ff(norm2(x)))
//
// Children carry PyTorch's names (self_attn, linear1, dropout, linear2,
// norm1, norm2, dropout1, dropout2), so state dicts match PyTorch's.
// Linear, norm and dropout children are held as Layers so quantization can
// replace them.
type TransformerEncoderLayer struct {
	Base
	SelfAttn   Attention `nn:"self_attn"`
	Linear1    Layer     `nn:"linear1"`
	Dropout    Layer     `nn:"dropout"`
	Linear2    Layer     `nn:"linear2"`
	Norm1      Layer     `nn:"norm1"`
	Norm2      Layer     `nn:"norm2"`
	Dropout1   Layer     `nn:"dropout1"`
	Dropout2   Layer     `nn:"dropout2"`
	Activation string
	NormFirst  bool
	BatchFirst bool
}

// NewTransformerEncoderLayer returns an encoder layer of width dModel with
// nhead attention heads.
func NewTransformerEncoderLayer(dModel, nhead int, o TransformerEncoderLayerOptions) (*TransformerEncoderLayer, error) {
	act := o.Activation
	switch act {
	case "":
		act = "relu"
	case "relu", "gelu":
	default:
		return nil, fmt.Errorf("nn: NewTransformerEncoderLayer: unknown activation %q (want relu or gelu)", o.Activation)
	}
	ff := o.DimFeedforward
	if ff == 0 {
		ff = 2048
	}
	if ff < 0 {
		return nil, fmt.Errorf("nn: NewTransformerEncoderLayer: negative dim_feedforward %d", ff)
	}
	attn, err := NewMultiheadAttention(dModel, nhead, MultiheadAttentionOptions{Dropout: o.Dropout, NoBias: o.NoBias,
		BatchFirst: o.BatchFirst, RNG: o.RNG})
	if err != nil {
		return nil, fmt.Errorf("nn: NewTransformerEncoderLayer: %w", err)
	}
	l := &TransformerEncoderLayer{SelfAttn: attn, Activation: act, NormFirst: o.NormFirst, BatchFirst: o.BatchFirst}
	if l.Linear1, err = NewLinear(dModel, ff, LinearOptions{NoBias: o.NoBias, RNG: o.RNG}); err != nil {
		return nil, err
	}
	if l.Linear2, err = NewLinear(ff, dModel, LinearOptions{NoBias: o.NoBias, RNG: o.RNG}); err != nil {
		return nil, err
	}
	for _, p := range []*Layer{&l.Norm1, &l.Norm2} {
		n, err := NewLayerNorm([]int{dModel}, LayerNormOptions{Eps: o.LayerNormEps, NoBias: o.NoBias})
		if err != nil {
			return nil, err
		}
		*p = n
	}
	for _, p := range []*Layer{&l.Dropout, &l.Dropout1, &l.Dropout2} {
		d, err := NewDropout(o.Dropout, o.RNG)
		if err != nil {
			return nil, fmt.Errorf("nn: NewTransformerEncoderLayer: %w", err)
		}
		*p = d
	}
	return l, nil
}

// Forward encodes src [S, N, E] ([N, S, E] with BatchFirst, [S, E]
// unbatched) without masks.
func (l *TransformerEncoderLayer) Forward(src *tensor.Tensor) *tensor.Tensor {
	return l.ForwardMasked(src, nil, nil)
}

// ForwardMasked encodes src with an attention mask (src_mask) and a key
// padding mask (src_key_padding_mask), either possibly nil; see
// AttentionOptions for their shapes and meaning.
func (l *TransformerEncoderLayer) ForwardMasked(src, mask, keyPaddingMask *tensor.Tensor) *tensor.Tensor {
	return Call(l, []*tensor.Tensor{src, mask, keyPaddingMask}, func(in []*tensor.Tensor) []*tensor.Tensor {
		x := in[0]
		sa := func(x *tensor.Tensor) *tensor.Tensor {
			y, _ := l.SelfAttn.Forward(x, x, x, AttentionOptions{AttnMask: in[1], KeyPaddingMask: in[2]})
			return l.Dropout1.Forward(y)
		}
		ff := func(x *tensor.Tensor) *tensor.Tensor {
			h := l.Linear1.Forward(x)
			if l.Activation == "gelu" {
				h = ops.GELU(h, false)
			} else {
				h = ops.ReLU(h)
			}
			return l.Dropout2.Forward(l.Linear2.Forward(l.Dropout.Forward(h)))
		}
		if l.NormFirst {
			x = ops.Add(x, sa(l.Norm1.Forward(x)))
			x = ops.Add(x, ff(l.Norm2.Forward(x)))
		} else {
			x = l.Norm1.Forward(ops.Add(x, sa(x)))
			x = l.Norm2.Forward(ops.Add(x, ff(x)))
		}
		return []*tensor.Tensor{x}
	})[0]
}
