package nn

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// GroupNormOptions configure GroupNorm; the zero value is PyTorch's
// default (eps 1e-5, affine).
type GroupNormOptions struct {
	// Eps is added to the variance; 0 means 1e-5.
	Eps float32
	// NoAffine drops the learnable weight and bias (affine=False).
	NoAffine bool
}

// GroupNorm normalizes [N, C, ...] inputs over groups of C/NumGroups
// channels and all positions, per sample, with the biased variance
// (torch.nn.GroupNorm), then applies the per-channel Weight (ones) and
// Bias (zeros), which are nil without affine. It uses ops.GroupNorm in
// training and evaluation alike.
type GroupNorm struct {
	Base
	NumGroups, NumChannels int
	Eps                    float32
	Weight                 *tensor.Tensor `nn:"weight"`
	Bias                   *tensor.Tensor `nn:"bias"`
}

// NewGroupNorm returns a GroupNorm of numChannels channels split into
// numGroups groups (numGroups must divide numChannels).
func NewGroupNorm(numGroups, numChannels int, o GroupNormOptions) (*GroupNorm, error) {
	if numGroups <= 0 || numChannels <= 0 || numChannels%numGroups != 0 {
		return nil, fmt.Errorf("nn: NewGroupNorm: %d channels cannot be split into %d groups", numChannels, numGroups)
	}
	if !(o.Eps >= 0) || math.IsInf(float64(o.Eps), 0) {
		return nil, fmt.Errorf("nn: NewGroupNorm: invalid eps %g", o.Eps)
	}
	g := &GroupNorm{NumGroups: numGroups, NumChannels: numChannels, Eps: orF(o.Eps, 1e-5)}
	if !o.NoAffine {
		g.Weight = tensor.Ones(numChannels).SetRequiresGrad(true)
		g.Bias = newParam(numChannels)
	}
	return g, nil
}

// Forward normalizes x [N, C, ...]; an input without NumChannels channels
// in dimension 1 panics.
func (g *GroupNorm) Forward(x *tensor.Tensor) *tensor.Tensor {
	return Call1(g, x, func(x *tensor.Tensor) *tensor.Tensor {
		if x.NDim() < 2 || x.Dim(1) != g.NumChannels {
			panic(fmt.Sprintf("nn: GroupNorm: expected input [N, %d, ...], got shape %v", g.NumChannels, x.Shape()))
		}
		return ops.GroupNorm(x, g.NumGroups, g.Weight, g.Bias, g.Eps)
	})
}

// InstanceNormOptions configure InstanceNorm1d and InstanceNorm2d. The zero
// value is PyTorch's default, which differs from BatchNorm's: eps 1e-5,
// momentum 0.1, no affine parameters, no running statistics.
type InstanceNormOptions struct {
	// Eps is added to the variance; 0 means 1e-5.
	Eps float32
	// Momentum weighs the batch statistics in the running ones; 0 means 0.1.
	Momentum float32
	// Affine adds the learnable per-channel weight and bias (affine=True).
	Affine bool
	// TrackRunningStats keeps running_mean and running_var, updated in
	// training and used for normalization in evaluation
	// (track_running_stats=True).
	TrackRunningStats bool
}

// InstanceNorm holds the state InstanceNorm1d and InstanceNorm2d share,
// with PyTorch's names: weight (ones) and bias (zeros) parameters with
// affine, and running_mean (zeros), running_var (ones) and
// num_batches_tracked buffers with running statistics (PyTorch registers
// num_batches_tracked for instance norms too but never advances it; neither
// does quanta). Fields that the options leave out are nil.
type InstanceNorm struct {
	Base
	NumFeatures       int
	Eps, Momentum     float32
	Weight            *tensor.Tensor `nn:"weight"`
	Bias              *tensor.Tensor `nn:"bias"`
	RunningMean       *tensor.Tensor `nn:"running_mean,buffer"`
	RunningVar        *tensor.Tensor `nn:"running_var,buffer"`
	NumBatchesTracked *tensor.Tensor `nn:"num_batches_tracked,buffer"`

	rank int // of a batched input
}

func newInstanceNorm(op string, rank, n int, o InstanceNormOptions) (InstanceNorm, error) {
	if n <= 0 {
		return InstanceNorm{}, fmt.Errorf("nn: %s: number of features %d must be positive", op, n)
	}
	if !(o.Eps >= 0) || math.IsInf(float64(o.Eps), 0) || !(o.Momentum >= 0 && o.Momentum <= 1) {
		return InstanceNorm{}, fmt.Errorf("nn: %s: invalid eps %g or momentum %g", op, o.Eps, o.Momentum)
	}
	m := InstanceNorm{NumFeatures: n, Eps: orF(o.Eps, 1e-5), Momentum: orF(o.Momentum, 0.1), rank: rank}
	if o.Affine {
		m.Weight = tensor.Ones(n).SetRequiresGrad(true)
		m.Bias = newParam(n)
	}
	if o.TrackRunningStats {
		m.RunningMean = tensor.Zeros(n)
		m.RunningVar = tensor.Ones(n)
		m.NumBatchesTracked = tensor.New(tensor.Int64)
	}
	return m, nil
}

// forward is torch's _InstanceNorm.forward for inputs of rank m.rank
// (batched) or m.rank-1 (unbatched); op names the module in panics.
func (m *InstanceNorm) forward(op string, x *tensor.Tensor) *tensor.Tensor {
	if x.NDim() != m.rank && x.NDim() != m.rank-1 {
		panic(fmt.Sprintf("nn: %s: expected %d-D or %d-D input, got shape %v", op, m.rank-1, m.rank, x.Shape()))
	}
	unbatched := x.NDim() == m.rank-1
	if unbatched {
		x = ops.Unsqueeze(x, 0)
	}
	if c := x.Dim(1); c != m.NumFeatures && (m.Weight != nil || m.RunningMean != nil) {
		panic(fmt.Sprintf("nn: %s: input has %d channels, want %d", op, c, m.NumFeatures))
	}
	var y *tensor.Tensor
	if m.Training() || m.RunningMean == nil {
		if x.Numel() > 0 && x.Numel() == x.Dim(0)*x.Dim(1) {
			panic(fmt.Sprintf("nn: %s: expected more than 1 spatial element when training, got input %v", op, x.Shape()))
		}
		if m.RunningMean != nil {
			m.updateRunningStats(x)
		}
		y = ops.GroupNorm(x, x.Dim(1), m.Weight, m.Bias, m.Eps)
	} else {
		y = ops.BatchNorm(x, m.RunningMean, m.RunningVar, m.Weight, m.Bias, false, 0, m.Eps)
	}
	if unbatched {
		y = ops.Squeeze(y, 0)
	}
	return y
}

// updateRunningStats is the running-statistics update of PyTorch's
// instance_norm, which runs batch_norm on the input viewed as
// [1, N*C, ...] with the running buffers repeated N times and then
// averages the N updated copies: per channel,
//
//	running_mean = mean over n of float32((1-m)*running_mean + m*mean[n,c])
//	running_var  = mean over n of float32((1-m)*running_var + m*var[n,c])
//
// with var the unbiased variance of sample n's channel c; statistics are
// computed in float64.
func (m *InstanceNorm) updateRunningStats(x *tensor.Tensor) {
	n, c := x.Dim(0), x.Dim(1)
	if n == 0 {
		return
	}
	s := x.Numel() / (n * c)
	xv := x.F32()
	mom := float64(m.Momentum)
	rm, rv := m.RunningMean.F32(), m.RunningVar.F32()
	for ch := 0; ch < c; ch++ {
		var sumMean, sumVar float64
		for i := 0; i < n; i++ {
			row := xv[(i*c+ch)*s : (i*c+ch+1)*s]
			var sum float64
			for _, v := range row {
				sum += float64(v)
			}
			mu := sum / float64(s)
			var sq float64
			for _, v := range row {
				d := float64(v) - mu
				sq += d * d
			}
			sumMean += float64(float32(mom*mu + (1-mom)*float64(rm[ch])))
			sumVar += float64(float32(mom*(sq/float64(s-1)) + (1-mom)*float64(rv[ch])))
		}
		rm[ch] = float32(sumMean / float64(n))
		rv[ch] = float32(sumVar / float64(n))
	}
}

// InstanceNorm1d normalizes each channel of each sample of [N, C, L] (or
// unbatched [C, L]) inputs over its L values (torch.nn.InstanceNorm1d).
// In training, or without running statistics, it is ops.GroupNorm with one
// channel per group (and updates the running statistics if kept); in
// evaluation with running statistics it is ops.BatchNorm on them.
type InstanceNorm1d struct{ InstanceNorm }

// NewInstanceNorm1d returns an InstanceNorm1d over numFeatures channels.
func NewInstanceNorm1d(numFeatures int, o InstanceNormOptions) (*InstanceNorm1d, error) {
	m, err := newInstanceNorm("NewInstanceNorm1d", 3, numFeatures, o)
	if err != nil {
		return nil, err
	}
	return &InstanceNorm1d{m}, nil
}

// Forward normalizes x [N, C, L] or [C, L]; other ranks panic, and so does
// a channel count other than NumFeatures when the module has affine
// parameters or running statistics (PyTorch only warns when it has
// neither, and so quanta accepts it).
func (m *InstanceNorm1d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor { return m.forward("InstanceNorm1d", x) })
}

// InstanceNorm2d normalizes each channel of each sample of [N, C, H, W]
// (or unbatched [C, H, W]) inputs over its H*W values
// (torch.nn.InstanceNorm2d); see InstanceNorm1d.
type InstanceNorm2d struct{ InstanceNorm }

// NewInstanceNorm2d returns an InstanceNorm2d over numFeatures channels.
func NewInstanceNorm2d(numFeatures int, o InstanceNormOptions) (*InstanceNorm2d, error) {
	m, err := newInstanceNorm("NewInstanceNorm2d", 4, numFeatures, o)
	if err != nil {
		return nil, err
	}
	return &InstanceNorm2d{m}, nil
}

// Forward normalizes x [N, C, H, W] or [C, H, W]; see
// InstanceNorm1d.Forward for what panics.
func (m *InstanceNorm2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor { return m.forward("InstanceNorm2d", x) })
}
