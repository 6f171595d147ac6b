package nn

import (
	"fmt"

	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// EmbeddingOptions configure Embedding and EmbeddingBag.
type EmbeddingOptions struct {
	// Mode is EmbeddingBag's reduction: "sum", "mean" (also "") or "max".
	Mode string
	// RNG draws the initial weights; nil means the global generator.
	RNG *tensor.RNG
}

// Embedding looks up rows of Weight [num, dim] by int64 indices
// (torch.nn.Embedding). Weight starts as N(0, 1), PyTorch's default.
type Embedding struct {
	Base
	NumEmbeddings, EmbeddingDim int
	Weight                      *tensor.Tensor `nn:"weight"`
}

// NewEmbedding returns an Embedding of num rows of dim values.
func NewEmbedding(num, dim int, o EmbeddingOptions) (*Embedding, error) {
	if num <= 0 || dim <= 0 {
		return nil, fmt.Errorf("nn: NewEmbedding: sizes num=%d dim=%d must be positive", num, dim)
	}
	e := &Embedding{NumEmbeddings: num, EmbeddingDim: dim, Weight: newParam(num, dim)}
	withRNG(o.RNG, func(g *tensor.RNG) { tensor.NormalFill(g, e.Weight, 0, 1) })
	return e, nil
}

// Forward returns the rows of idx (int64 or int32, any shape): shape
// idx.Shape() + [dim].
func (e *Embedding) Forward(idx *tensor.Tensor) *tensor.Tensor {
	return Call1(e, idx, func(idx *tensor.Tensor) *tensor.Tensor { return ops.Embedding(idx, e.Weight) })
}

// EmbeddingBag sums, averages or takes the maximum of bags of embedding
// rows (torch.nn.EmbeddingBag). Weight starts as N(0, 1).
type EmbeddingBag struct {
	Base
	NumEmbeddings, EmbeddingDim int
	Mode                        string
	Weight                      *tensor.Tensor `nn:"weight"`
}

// NewEmbeddingBag returns an EmbeddingBag of num rows of dim values.
func NewEmbeddingBag(num, dim int, o EmbeddingOptions) (*EmbeddingBag, error) {
	if num <= 0 || dim <= 0 {
		return nil, fmt.Errorf("nn: NewEmbeddingBag: sizes num=%d dim=%d must be positive", num, dim)
	}
	mode := o.Mode
	switch mode {
	case "":
		mode = "mean"
	case "sum", "mean", "max":
	default:
		return nil, fmt.Errorf("nn: NewEmbeddingBag: unknown mode %q (want sum, mean or max)", o.Mode)
	}
	e := &EmbeddingBag{NumEmbeddings: num, EmbeddingDim: dim, Mode: mode, Weight: newParam(num, dim)}
	withRNG(o.RNG, func(g *tensor.RNG) { tensor.NormalFill(g, e.Weight, 0, 1) })
	return e, nil
}

// Forward reduces bags: either idx is [B, L] and offsets nil (one bag per
// row), or idx is 1-D and offsets [B] holds each bag's start. The result is
// [B, dim].
func (e *EmbeddingBag) Forward(idx, offsets *tensor.Tensor) *tensor.Tensor {
	in := []*tensor.Tensor{idx, offsets}
	return Call(e, in, func(in []*tensor.Tensor) []*tensor.Tensor {
		return []*tensor.Tensor{ops.EmbeddingBag(in[0], in[1], e.Weight, e.Mode)}
	})[0]
}
