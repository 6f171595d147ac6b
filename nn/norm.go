package nn

import (
	"fmt"

	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// BatchNormOptions configure BatchNorm1d and BatchNorm2d. The zero value is
// PyTorch's default: eps 1e-5, momentum 0.1, affine, tracking running
// statistics.
type BatchNormOptions struct {
	// Eps is added to the variance; 0 means 1e-5.
	Eps float32
	// Momentum weighs the batch statistics in the running ones; 0 means 0.1.
	Momentum float32
	// CumulativeAverage uses the cumulative moving average 1/num_batches
	// instead of Momentum (momentum=None).
	CumulativeAverage bool
	// NoAffine drops the learnable weight and bias (affine=False).
	NoAffine bool
	// NoTrackRunningStats always normalizes with batch statistics and keeps
	// no running buffers (track_running_stats=False).
	NoTrackRunningStats bool
}

// BatchNorm holds the state BatchNorm1d and BatchNorm2d share, with
// PyTorch's names: weight (ones) and bias (zeros) parameters, and
// running_mean (zeros), running_var (ones) and num_batches_tracked buffers.
// Weight and Bias are nil without affine; the buffers are nil without
// running statistics. NumBatchesTracked is a 0-dimensional int64 tensor, as in PyTorch.
type BatchNorm struct {
	Base
	NumFeatures       int
	Eps, Momentum     float32
	CumulativeAverage bool
	Weight            *tensor.Tensor `nn:"weight"`
	Bias              *tensor.Tensor `nn:"bias"`
	RunningMean       *tensor.Tensor `nn:"running_mean,buffer"`
	RunningVar        *tensor.Tensor `nn:"running_var,buffer"`
	NumBatchesTracked *tensor.Tensor `nn:"num_batches_tracked,buffer"`
}

func newBatchNorm(op string, n int, o BatchNormOptions) (BatchNorm, error) {
	if n <= 0 {
		return BatchNorm{}, fmt.Errorf("nn: %s: number of features %d must be positive", op, n)
	}
	if o.Eps < 0 || o.Momentum < 0 || o.Momentum > 1 {
		return BatchNorm{}, fmt.Errorf("nn: %s: invalid eps %g or momentum %g", op, o.Eps, o.Momentum)
	}
	b := BatchNorm{NumFeatures: n, Eps: orF(o.Eps, 1e-5), Momentum: orF(o.Momentum, 0.1), CumulativeAverage: o.CumulativeAverage}
	if !o.NoAffine {
		b.Weight = tensor.Ones(n).SetRequiresGrad(true)
		b.Bias = newParam(n)
	}
	if !o.NoTrackRunningStats {
		b.RunningMean = tensor.Zeros(n)
		b.RunningVar = tensor.Ones(n)
		b.NumBatchesTracked = tensor.New(tensor.Int64)
	}
	return b, nil
}

// forward is torch's _BatchNorm.forward for module m (the embedding
// BatchNorm1d or BatchNorm2d).
func (b *BatchNorm) forward(x *tensor.Tensor) *tensor.Tensor {
	training := b.Training()
	factor := b.Momentum
	if training && b.NumBatchesTracked != nil {
		b.NumBatchesTracked.I64()[0]++
		if b.CumulativeAverage {
			factor = float32(1 / float64(b.NumBatchesTracked.I64()[0]))
		}
	}
	useBatch := training || b.RunningMean == nil
	return ops.BatchNorm(x, b.RunningMean, b.RunningVar, b.Weight, b.Bias, useBatch, factor, b.Eps)
}

// BatchNorm1d is batch normalization over [N, C] or [N, C, L] inputs
// (torch.nn.BatchNorm1d).
type BatchNorm1d struct{ BatchNorm }

// NewBatchNorm1d returns a BatchNorm1d over numFeatures channels.
func NewBatchNorm1d(numFeatures int, o BatchNormOptions) (*BatchNorm1d, error) {
	b, err := newBatchNorm("NewBatchNorm1d", numFeatures, o)
	if err != nil {
		return nil, err
	}
	return &BatchNorm1d{b}, nil
}

// Forward normalizes x [N, C] or [N, C, L]; other ranks panic.
func (m *BatchNorm1d) Forward(x *tensor.Tensor) *tensor.Tensor {
	if x.NDim() != 2 && x.NDim() != 3 {
		panic(fmt.Sprintf("nn: BatchNorm1d: expected 2-D or 3-D input, got shape %v", x.Shape()))
	}
	return Call1(m, x, m.forward)
}

// BatchNorm2d is batch normalization over [N, C, H, W] inputs
// (torch.nn.BatchNorm2d).
type BatchNorm2d struct{ BatchNorm }

// NewBatchNorm2d returns a BatchNorm2d over numFeatures channels.
func NewBatchNorm2d(numFeatures int, o BatchNormOptions) (*BatchNorm2d, error) {
	b, err := newBatchNorm("NewBatchNorm2d", numFeatures, o)
	if err != nil {
		return nil, err
	}
	return &BatchNorm2d{b}, nil
}

// Forward normalizes x [N, C, H, W]; other ranks panic.
func (m *BatchNorm2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	if x.NDim() != 4 {
		panic(fmt.Sprintf("nn: BatchNorm2d: expected 4-D input, got shape %v", x.Shape()))
	}
	return Call1(m, x, m.forward)
}

// LayerNormOptions configure LayerNorm; the zero value is PyTorch's default
// (eps 1e-5, elementwise affine with bias).
type LayerNormOptions struct {
	// Eps is added to the variance; 0 means 1e-5.
	Eps float32
	// NoAffine drops weight and bias (elementwise_affine=False).
	NoAffine bool
	// NoBias keeps the weight but drops the bias (bias=False).
	NoBias bool
}

// LayerNorm normalizes over the trailing NormalizedShape dimensions
// (torch.nn.LayerNorm). Weight starts at ones and Bias at zeros.
type LayerNorm struct {
	Base
	NormalizedShape []int
	Eps             float32
	Weight          *tensor.Tensor `nn:"weight"`
	Bias            *tensor.Tensor `nn:"bias"`
}

// NewLayerNorm returns a LayerNorm over the trailing dimensions shape.
func NewLayerNorm(shape []int, o LayerNormOptions) (*LayerNorm, error) {
	if len(shape) == 0 {
		return nil, fmt.Errorf("nn: NewLayerNorm: empty normalized shape")
	}
	for _, d := range shape {
		if d <= 0 {
			return nil, fmt.Errorf("nn: NewLayerNorm: normalized shape %v must be positive", shape)
		}
	}
	if o.Eps < 0 {
		return nil, fmt.Errorf("nn: NewLayerNorm: negative eps %g", o.Eps)
	}
	l := &LayerNorm{NormalizedShape: append([]int(nil), shape...), Eps: orF(o.Eps, 1e-5)}
	if !o.NoAffine {
		l.Weight = tensor.Ones(shape...).SetRequiresGrad(true)
		if !o.NoBias {
			l.Bias = newParam(shape...)
		}
	}
	return l, nil
}

// Forward normalizes x.
func (l *LayerNorm) Forward(x *tensor.Tensor) *tensor.Tensor {
	return Call1(l, x, func(x *tensor.Tensor) *tensor.Tensor {
		return ops.LayerNorm(x, l.NormalizedShape, l.Weight, l.Bias, l.Eps)
	})
}
