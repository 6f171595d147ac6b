package fx

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"strings"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// FinetuneOptions configure FinetuneQDQ. The zero value trains 8 epochs
// with Adam at 5e-6 decaying along a cosine, mixup on, seed 1.
type FinetuneOptions struct {
	// Epochs is the number of training passes over the feeds after the
	// calibration pass; 0 means 8.
	Epochs int
	// LR is Adam's learning rate at the start; it decays to 0 along a
	// cosine. 0 means 5e-6: the weights are already trained, and larger
	// steps overfit a small calibration set.
	LR float64
	// NoMixup turns off mixup: by default each training step feeds the
	// blend λ·a + (1-λ)·b of the step's feed a and another feed b, λ
	// uniform in [0.5, 1), on every float input of the same shape, and
	// the teacher labels the blend. It multiplies the few calibration
	// feeds, so the student learns the teacher's function rather than its
	// outputs on those feeds.
	NoMixup bool
	// Seed seeds the feed order and the mixup draws; 0 means 1.
	Seed int64
	// Progress, if set, is called after every step: the epoch (0 for the
	// measuring pass), the steps done in it, its steps, and the mean
	// loss of the epoch so far.
	Progress func(epoch, done, total int, loss float64)
}

// FinetuneResult reports a FinetuneQDQ run.
type FinetuneResult struct {
	// Losses is the mean loss of each epoch, the measuring pass (the
	// model as it was, no training) first.
	Losses []float64
}

// distill is FinetuneQDQ's training loop: a measuring pass (epoch 0, no
// gradients), then opts.Epochs passes of Adam on gm's parameters with
// mixup and a cosine learning rate. The loss of a feed is the sum over
// the model's float outputs of ‖student - teacher‖² / ‖teacher‖² (the
// inverse of the output SQNR).
func distill(ctx context.Context, fn string, gm *GraphModule, teacher *exec.Program, feeds []map[string]*tensor.Tensor, opts FinetuneOptions) (*FinetuneResult, error) {
	if gm == nil || teacher == nil {
		return nil, fmt.Errorf("fx: %s: nil module or teacher", fn)
	}
	if len(feeds) == 0 {
		return nil, fmt.Errorf("fx: %s: no feeds", fn)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if opts.Epochs < 0 || opts.LR < 0 || math.IsNaN(opts.LR) {
		return nil, fmt.Errorf("fx: %s: epochs %d and learning rate %g must not be negative", fn, opts.Epochs, opts.LR)
	}
	if opts.Epochs == 0 {
		opts.Epochs = 8
	}
	if opts.LR == 0 {
		opts.LR = 5e-6
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	names := make([]string, len(gm.Model().Graph.Inputs))
	for i, v := range gm.Model().Graph.Inputs {
		names[i] = v.Name
	}
	// Student and teacher outputs pair by name (graph/quantize keeps the
	// float model's output names).
	outs := make([]string, len(gm.Model().Graph.Outputs))
	for i, v := range gm.Model().Graph.Outputs {
		outs[i] = v.Name
	}
	params := nn.Parameters(gm)
	if len(params) == 0 {
		return nil, fmt.Errorf("fx: %s: the module has no parameters to train", fn)
	}
	opt, err := nn.NewAdam(params, nn.AdamOptions{LR: opts.LR})
	if err != nil {
		return nil, fmt.Errorf("fx: %s: %w", fn, err)
	}
	rng := rand.New(rand.NewSource(opts.Seed))
	res := &FinetuneResult{}
	steps := len(feeds) * opts.Epochs
	step := 0
	for epoch := 0; epoch <= opts.Epochs; epoch++ {
		train := epoch > 0
		order := make([]int, len(feeds))
		for i := range order {
			order[i] = i
		}
		if train {
			rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		}
		var sum float64
		for k, i := range order {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			feed := feeds[i]
			if train && !opts.NoMixup && len(feeds) > 1 {
				feed = mixup(feed, feeds[rng.Intn(len(feeds))], float32(0.5+0.5*rng.Float64()))
			}
			in := make([]*tensor.Tensor, len(names))
			for j, n := range names {
				t, ok := feed[n]
				if !ok {
					return nil, fmt.Errorf("fx: %s: feed %d has no input %q", fn, i, n)
				}
				in[j] = t
			}
			out, err := teacher.Run(ctx, feed)
			if err != nil {
				return nil, fmt.Errorf("fx: %s: teacher: feed %d: %w", fn, i, err)
			}
			want := make([]*tensor.Tensor, len(outs))
			for j, n := range outs {
				if want[j] = out[n]; want[j] == nil {
					return nil, fmt.Errorf("fx: %s: the teacher has no output %q (it has %s)", fn, n, strings.Join(teacher.OutputNames(), ", "))
				}
			}
			var loss *tensor.Tensor
			run := func() error {
				got, err := gm.Run(in...)
				if err != nil {
					return fmt.Errorf("fx: %s: feed %d: %w", fn, i, err)
				}
				loss, err = distillLoss(fn, got, want)
				return err
			}
			if train {
				if err := run(); err != nil {
					return nil, err
				}
				opt.SetLR(opts.LR * 0.5 * (1 + math.Cos(math.Pi*float64(step)/float64(steps))))
				opt.ZeroGrad()
				if err := autograd.Backward(loss, nil); err != nil {
					return nil, fmt.Errorf("fx: %s: backward: %w", fn, err)
				}
				opt.Step()
				step++
			} else {
				var err error
				autograd.NoGrad(func() { err = run() })
				if err != nil {
					return nil, err
				}
			}
			l := loss.Item()
			if math.IsNaN(l) || math.IsInf(l, 0) {
				return nil, fmt.Errorf("fx: %s: loss %v at epoch %d, feed %d", fn, l, epoch, i)
			}
			sum += l
			if opts.Progress != nil {
				opts.Progress(epoch, k+1, len(feeds), sum/float64(k+1))
			}
		}
		res.Losses = append(res.Losses, sum/float64(len(feeds)))
	}
	return res, nil
}

// distillLoss is Σ ‖got - want‖² / ‖want‖² over the float outputs.
func distillLoss(fn string, got, want []*tensor.Tensor) (*tensor.Tensor, error) {
	if len(got) != len(want) {
		return nil, fmt.Errorf("fx: %s: the student has %d outputs, the teacher %d", fn, len(got), len(want))
	}
	var loss *tensor.Tensor
	for i, g := range got {
		w := want[i]
		if w == nil || g.DType() != tensor.Float32 || w.DType() != tensor.Float32 {
			continue
		}
		if !tensor.SameShape(g.Shape(), w.Shape()) {
			return nil, fmt.Errorf("fx: %s: output %d has shape %v, the teacher's %v", fn, i, g.Shape(), w.Shape())
		}
		var ss float64
		for _, v := range w.F32() {
			ss += float64(v) * float64(v)
		}
		d := ops.Sub(g, w)
		l := ops.MulScalar(ops.SumAll(ops.Mul(d, d)), float32(1/math.Max(ss, 1e-12)))
		if loss == nil {
			loss = l
		} else {
			loss = ops.Add(loss, l)
		}
	}
	if loss == nil {
		return nil, fmt.Errorf("fx: %s: the model has no float output to learn", fn)
	}
	return loss, nil
}

// mixup blends the float inputs of a and b of the same shape: λ·a +
// (1-λ)·b; other inputs are a's.
func mixup(a, b map[string]*tensor.Tensor, lambda float32) map[string]*tensor.Tensor {
	out := make(map[string]*tensor.Tensor, len(a))
	for k, x := range a {
		y := b[k]
		if y == nil || x.DType() != tensor.Float32 || y.DType() != tensor.Float32 || !tensor.SameShape(x.Shape(), y.Shape()) {
			out[k] = x
			continue
		}
		xs, ys := x.F32(), y.F32()
		m := make([]float32, len(xs))
		for i := range m {
			m[i] = lambda*xs[i] + (1-lambda)*ys[i]
		}
		out[k] = tensor.FromFloat32(m, x.Shape()...)
	}
	return out
}
