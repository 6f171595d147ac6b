package nn

import (
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// Reduction says how a loss combines per-element losses.
type Reduction string

const (
	// ReductionMean averages (the zero value "" means the same).
	ReductionMean Reduction = "mean"
	// ReductionSum adds.
	ReductionSum Reduction = "sum"
	// ReductionNone returns the per-element losses.
	ReductionNone Reduction = "none"
)

// CrossEntropyLoss is torch.nn.CrossEntropyLoss: log-softmax over the class
// dimension of logits [N, C] (or [N, C, d...]) and the negative log
// likelihood of class-index targets (or probability targets).
type CrossEntropyLoss struct {
	Base
	Reduction      Reduction
	LabelSmoothing float32
	// IgnoreIndex is a class-index target value that contributes nothing
	// (PyTorch's default -100, which NewCrossEntropyLoss sets).
	IgnoreIndex int64
}

// NewCrossEntropyLoss returns the loss with PyTorch's defaults: mean
// reduction, no label smoothing, ignore_index -100.
func NewCrossEntropyLoss() *CrossEntropyLoss {
	return &CrossEntropyLoss{Reduction: ReductionMean, IgnoreIndex: ops.DefaultIgnoreIndex}
}

// Forward returns the loss of logits against target.
func (l *CrossEntropyLoss) Forward(logits, target *tensor.Tensor) *tensor.Tensor {
	return Call(l, []*tensor.Tensor{logits, target}, func(in []*tensor.Tensor) []*tensor.Tensor {
		return []*tensor.Tensor{ops.CrossEntropyWith(in[0], in[1], ops.CrossEntropyAttrs{Reduction: string(l.Reduction),
			LabelSmoothing: l.LabelSmoothing, UseIgnoreIndex: true, IgnoreIndex: l.IgnoreIndex})}
	})[0]
}

// MSELoss is the mean squared error (torch.nn.MSELoss).
type MSELoss struct {
	Base
	Reduction Reduction
}

// NewMSELoss returns the loss with mean reduction.
func NewMSELoss() *MSELoss { return &MSELoss{Reduction: ReductionMean} }

// Forward returns the loss of input against target (same shape).
func (l *MSELoss) Forward(input, target *tensor.Tensor) *tensor.Tensor {
	return Call(l, []*tensor.Tensor{input, target}, func(in []*tensor.Tensor) []*tensor.Tensor {
		return []*tensor.Tensor{ops.MSELoss(in[0], in[1], string(l.Reduction))}
	})[0]
}

// BCEWithLogitsLoss is binary cross entropy on logits, computed stably
// (torch.nn.BCEWithLogitsLoss).
type BCEWithLogitsLoss struct {
	Base
	Reduction Reduction
}

// NewBCEWithLogitsLoss returns the loss with mean reduction.
func NewBCEWithLogitsLoss() *BCEWithLogitsLoss { return &BCEWithLogitsLoss{Reduction: ReductionMean} }

// Forward returns the loss of logits against targets in [0, 1].
func (l *BCEWithLogitsLoss) Forward(logits, target *tensor.Tensor) *tensor.Tensor {
	return Call(l, []*tensor.Tensor{logits, target}, func(in []*tensor.Tensor) []*tensor.Tensor {
		return []*tensor.Tensor{ops.BCEWithLogits(in[0], in[1], string(l.Reduction))}
	})[0]
}
