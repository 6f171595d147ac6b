// Package demo is quanta's MNIST demonstration: it trains a small CNN on
// digits embedded in package data, then measures the model's accuracy on
// held-out digits, its saved size and its batch-1 latency. The quanta
// command's "demo" subcommand runs it; its own test runs a small
// configuration.
package demo

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/data"
	"github.com/quanta-go/quanta/eager"
	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/nn/qat"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/tensor"
)

// Config sets up a demo run. DefaultConfig gives the configuration of
// `quanta demo`; zero fields of a Config passed to Run take those defaults.
type Config struct {
	// Epochs is the number of training epochs.
	Epochs int
	// Seed seeds weight initialization and the shuffling of every epoch.
	Seed uint64
	// Threads is the number of threads each op uses; 0 keeps the current
	// setting (one per CPU by default).
	Threads int
	// Train is the number of digits trained on: the first Train of the
	// embedded set.
	Train int
	// Test is the number of held-out digits evaluated: the last Test of
	// the embedded set. Train+Test must not exceed data.MNISTSize.
	Test int
	// Width is the number of channels of the model's first convolution
	// (see Net).
	Width int
	// BatchSize is the training batch size.
	BatchSize int
	// LR is the Adam learning rate at the start; it decays along a cosine
	// to zero over the run.
	LR float64
	// Shift is the largest random translation, in pixels, applied to each
	// training image (data augmentation); 0 means DefaultConfig's, a
	// negative value none.
	Shift int
	// LatencyRuns is the number of timed batch-1 forward passes whose
	// median is reported.
	LatencyRuns int
	// Engine is the quantization preset of the static and QAT forms
	// (quant.DefaultQConfig / DefaultQATQConfig): "x86" (the default, as
	// PyTorch on x86 CPUs), "fbgemm", "qnnpack", "onednn" or "quanta".
	Engine string
	// Calibration is the number of training digits the static form is
	// calibrated on.
	Calibration int
	// QATEpochs is the number of quantization-aware fine-tuning epochs,
	// starting from the trained float model.
	QATEpochs int
	// QATLR is the Adam learning rate of QAT fine-tuning (cosine decay to
	// zero).
	QATLR float64
	// GraphMode adds the graph-mode rows (fx_static, fx_qat): the float
	// model traced and quantized by package fx with no stubs and no fuse
	// list, calibrated on the same digits as the static row, and QAT
	// fine-tuned as the qat row. DefaultConfig sets it.
	GraphMode bool
	// Progress receives progress reports; nil means none.
	Progress Progress
}

// DefaultConfig returns the configuration of `quanta demo`: 8,000 training
// and 2,000 test digits, width 16, batch 64, shifts of up to 1 pixel, Adam at
// 2e-3 with cosine decay, 8 epochs.
func DefaultConfig() Config {
	return Config{Epochs: 8, Seed: 1, Train: 8000, Test: 2000, Width: 16, BatchSize: 64, LR: 2e-3, Shift: 1, LatencyRuns: 300,
		Engine: "x86", Calibration: 256, QATEpochs: 1, QATLR: 1e-4, GraphMode: true}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Epochs == 0 {
		c.Epochs = d.Epochs
	}
	if c.Train == 0 {
		c.Train = d.Train
	}
	if c.Test == 0 {
		c.Test = d.Test
	}
	if c.Width == 0 {
		c.Width = d.Width
	}
	if c.BatchSize == 0 {
		c.BatchSize = d.BatchSize
	}
	if c.LR == 0 {
		c.LR = d.LR
	}
	if c.Shift == 0 {
		c.Shift = d.Shift
	}
	if c.LatencyRuns == 0 {
		c.LatencyRuns = d.LatencyRuns
	}
	if c.Engine == "" {
		c.Engine = d.Engine
	}
	if c.Calibration == 0 {
		c.Calibration = d.Calibration
	}
	if c.QATEpochs == 0 {
		c.QATEpochs = d.QATEpochs
	}
	if c.QATLR == 0 {
		c.QATLR = d.QATLR
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Epochs < 1:
		return fmt.Errorf("demo: epochs must be at least 1, got %d", c.Epochs)
	case c.Train < 1 || c.Test < 1 || c.Train+c.Test > data.MNISTSize:
		return fmt.Errorf("demo: %d training and %d test digits do not fit in the %d available", c.Train, c.Test, data.MNISTSize)
	case c.BatchSize < 1 || c.BatchSize > c.Train:
		return fmt.Errorf("demo: batch size %d must be between 1 and the %d training digits", c.BatchSize, c.Train)
	case c.LR <= 0 || math.IsInf(c.LR, 0) || math.IsNaN(c.LR):
		return fmt.Errorf("demo: learning rate %v must be positive", c.LR)
	case c.Threads < 0:
		return fmt.Errorf("demo: threads must be 0 or more, got %d", c.Threads)
	case c.LatencyRuns < 1:
		return fmt.Errorf("demo: latency runs must be at least 1, got %d", c.LatencyRuns)
	case c.Calibration < 1 || c.Calibration > c.Train:
		return fmt.Errorf("demo: calibration digits %d must be between 1 and the %d training digits", c.Calibration, c.Train)
	case c.QATEpochs < 1:
		return fmt.Errorf("demo: QAT epochs must be at least 1, got %d", c.QATEpochs)
	case c.QATLR <= 0 || math.IsInf(c.QATLR, 0) || math.IsNaN(c.QATLR):
		return fmt.Errorf("demo: QAT learning rate %v must be positive", c.QATLR)
	}
	if _, err := quant.DefaultQConfig(c.Engine); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}

// Progress receives the demo's progress: a sequence of phases ("epoch 1/3",
// "evaluate", "latency"), each announced with its number of steps, advanced
// step by step, and closed with a one-line summary.
type Progress interface {
	Begin(phase string, steps int)
	Step(n int)
	End(summary string)
}

type noProgress struct{}

func (noProgress) Begin(string, int) {}
func (noProgress) Step(int)          {}
func (noProgress) End(string)        {}

// Run trains the demo model as cfg says and measures it. It stops early
// with ctx's error when ctx is cancelled.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	prog := cfg.Progress
	if prog == nil {
		prog = noProgress{}
	}
	if cfg.Threads > 0 {
		defer parallel.SetNumThreads(parallel.SetNumThreads(cfg.Threads))
	}

	images, labels, err := data.MNIST(data.MNISTNormalize)
	if err != nil {
		return nil, err
	}
	all, err := data.NewTensorDataset(images, labels)
	if err != nil {
		return nil, err
	}
	trainSet, err := data.Subset(all, data.Range(0, cfg.Train))
	if err != nil {
		return nil, err
	}
	testSet, err := data.Subset(all, data.Range(data.MNISTSize-cfg.Test, data.MNISTSize))
	if err != nil {
		return nil, err
	}

	model, err := NewNet(cfg.Width, tensor.NewRNG(cfg.Seed))
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := train(ctx, model, trainSet, cfg, prog); err != nil {
		return nil, err
	}
	rep := &Report{Config: cfg, TrainTime: time.Since(start), Threads: parallel.NumThreads()}
	rep.Config.Progress = nil

	res, err := measure(ctx, "float", model, testSet, cfg, prog)
	if err != nil {
		return nil, err
	}
	rep.Float = res

	// Dynamic quantization of the linear layers, as PyTorch's
	// quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8).
	dyn, err := clone(model, cfg.Width)
	if err != nil {
		return nil, err
	}
	if _, err := eager.QuantizeDynamic(dyn, eager.DynamicOptions{Types: []string{"Linear"}, Engine: cfg.Engine}); err != nil {
		return nil, err
	}
	if rep.Dynamic, err = measure(ctx, "dynamic", dyn, testSet, cfg, prog); err != nil {
		return nil, err
	}

	// Post-training static quantization: fuse, prepare, calibrate, convert.
	static, err := quantizeStatic(ctx, model, trainSet, cfg, prog)
	if err != nil {
		return nil, err
	}
	if rep.Static, err = measure(ctx, "static", static, testSet, cfg, prog); err != nil {
		return nil, err
	}

	// Quantization-aware training from the float model, then convert.
	q, err := quantizeQAT(ctx, model, trainSet, cfg, prog)
	if err != nil {
		return nil, err
	}
	if rep.QAT, err = measure(ctx, "qat", q, testSet, cfg, prog); err != nil {
		return nil, err
	}
	if cfg.GraphMode {
		if err := graphMode(ctx, model, trainSet, testSet, cfg, prog, rep); err != nil {
			return nil, err
		}
	}
	rep.setSpeedups()
	return rep, nil
}

// quantizeStatic returns a statically quantized copy of the float model:
// conv-bn(-relu) fused, the engine's default qconfig, calibrated on the
// first cfg.Calibration training digits, converted.
func quantizeStatic(ctx context.Context, float *Net, trainSet data.Dataset, cfg Config, prog Progress) (*Net, error) {
	m, err := clone(float, cfg.Width)
	if err != nil {
		return nil, err
	}
	nn.Eval(m)
	if err := eager.FuseModules(m, fuseGroups); err != nil {
		return nil, err
	}
	qc, err := quant.DefaultQConfig(cfg.Engine)
	if err != nil {
		return nil, err
	}
	eager.SetQConfig(m, qc)
	if err := eager.Prepare(m, eager.Options{}); err != nil {
		return nil, err
	}
	calib, err := data.Subset(trainSet, data.Range(0, cfg.Calibration))
	if err != nil {
		return nil, err
	}
	loader, err := data.NewDataLoader(calib, data.LoaderOptions{BatchSize: 64})
	if err != nil {
		return nil, err
	}
	prog.Begin("calibrate static ("+cfg.Engine+")", loader.Len())
	it := loader.Epoch(0)
	for it.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		x, _ := it.Batch()
		autograd.NoGrad(func() { m.Forward(x) })
		prog.Step(1)
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	if err := eager.Convert(m, eager.Options{}); err != nil {
		return nil, err
	}
	prog.End(fmt.Sprintf("%d digits observed, model converted to int8", calib.Len()))
	return m, nil
}

// quantizeQAT returns a copy of the float model fine-tuned with
// quantization-aware training for cfg.QATEpochs epochs and converted:
// conv-bn(-relu) fused for QAT, the engine's default QAT qconfig, Adam at
// cfg.QATLR with cosine decay; batch-norm statistics freeze after half of
// the run and observers after three quarters, as PyTorch's QAT recipe.
func quantizeQAT(ctx context.Context, float *Net, trainSet data.Dataset, cfg Config, prog Progress) (*Net, error) {
	m, err := clone(float, cfg.Width)
	if err != nil {
		return nil, err
	}
	nn.Train(m)
	if err := eager.FuseModulesQAT(m, fuseGroups); err != nil {
		return nil, err
	}
	qc, err := quant.DefaultQATQConfig(cfg.Engine)
	if err != nil {
		return nil, err
	}
	eager.SetQConfig(m, qc)
	if err := eager.PrepareQAT(m, eager.Options{}); err != nil {
		return nil, err
	}
	qcfg := cfg
	qcfg.Epochs, qcfg.LR = cfg.QATEpochs, cfg.QATLR
	loaderLen := cfg.Train / cfg.BatchSize
	total := qcfg.Epochs * loaderLen
	hooks := map[int]func(){
		total / 2:     func() { qat.FreezeBNStats(m) },
		3 * total / 4: func() { qat.EnableObserver(m, false) },
	}
	if err := trainLoop(ctx, m, trainSet, qcfg, prog, "qat ", hooks); err != nil {
		return nil, err
	}
	nn.Eval(m)
	if err := eager.Convert(m, eager.Options{}); err != nil {
		return nil, err
	}
	return m, nil
}

// train runs cfg.Epochs epochs of Adam on cross-entropy loss with a
// cosine learning-rate decay (per batch).
func train(ctx context.Context, model *Net, ds data.Dataset, cfg Config, prog Progress) error {
	return trainLoop(ctx, model, ds, cfg, prog, "", nil)
}

// trainLoop is train with a phase-name prefix and functions to call before
// given (0-based) steps.
func trainLoop(ctx context.Context, model nn.Layer, ds data.Dataset, cfg Config, prog Progress, prefix string, at map[int]func()) error {
	loader, err := data.NewDataLoader(ds, data.LoaderOptions{BatchSize: cfg.BatchSize, Shuffle: true, Seed: cfg.Seed, DropLast: true})
	if err != nil {
		return err
	}
	opt, err := nn.NewAdam(nn.Parameters(model), nn.AdamOptions{LR: cfg.LR})
	if err != nil {
		return err
	}
	total := cfg.Epochs * loader.Len()
	rng := tensor.NewRNG(cfg.Seed + 1)
	bg := float32(0-data.MNISTNormalize.Mean) / data.MNISTNormalize.Std
	step := 0
	nn.Train(model)
	for epoch := 0; epoch < cfg.Epochs; epoch++ {
		prog.Begin(fmt.Sprintf("%sepoch %d/%d", prefix, epoch+1, cfg.Epochs), loader.Len())
		t0 := time.Now()
		var lossSum float64
		var correct, seen int
		it := loader.Epoch(epoch)
		for it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			if f := at[step]; f != nil {
				f()
			}
			x, y := it.Batch()
			if cfg.Shift > 0 {
				x = shiftImages(x, rng, cfg.Shift, bg)
			}
			opt.SetLR(cfg.LR * 0.5 * (1 + math.Cos(math.Pi*float64(step)/float64(total))))
			logits := model.Forward(x)
			loss := ops.CrossEntropy(logits, y, "mean", 0)
			opt.ZeroGrad()
			if err := autograd.Backward(loss, nil); err != nil {
				return fmt.Errorf("demo: backward: %w", err)
			}
			opt.Step()
			l := loss.Item()
			if math.IsNaN(l) || math.IsInf(l, 0) {
				return fmt.Errorf("demo: training diverged: loss %v at epoch %d", l, epoch+1)
			}
			lossSum += l * float64(y.Dim(0))
			correct += countCorrect(logits, y)
			seen += y.Dim(0)
			step++
			prog.Step(1)
		}
		if err := it.Err(); err != nil {
			return err
		}
		prog.End(fmt.Sprintf("loss %.4f  train accuracy %.2f%%  %.1f s", lossSum/float64(seen), 100*float64(correct)/float64(seen), time.Since(t0).Seconds()))
	}
	return nil
}

// measure evaluates accuracy on ds, the saved size and the batch-1 latency
// of model, the form called name ("float", "dynamic", ...).
func measure(ctx context.Context, name string, model nn.Layer, ds data.Dataset, cfg Config, prog Progress) (*Result, error) {
	acc, err := evaluate(ctx, name, model, ds, prog)
	if err != nil {
		return nil, err
	}
	size, err := sizeOf(model)
	if err != nil {
		return nil, err
	}
	x, _, err := ds.Get(0)
	if err != nil {
		return nil, err
	}
	lat, err := latency(ctx, name, model, x.Reshape(1, 1, 28, 28), cfg.LatencyRuns, prog)
	if err != nil {
		return nil, err
	}
	return &Result{Accuracy: acc, SizeBytes: size, LatencyMS: float64(lat) / float64(time.Millisecond)}, nil
}

// evaluate returns the fraction of ds that model classifies correctly, in
// evaluation mode without autograd.
func evaluate(ctx context.Context, name string, model nn.Layer, ds data.Dataset, prog Progress) (float64, error) {
	loader, err := data.NewDataLoader(ds, data.LoaderOptions{BatchSize: 250})
	if err != nil {
		return 0, err
	}
	nn.Eval(model)
	defer nn.Train(model)
	prog.Begin("evaluate "+name, loader.Len())
	correct := 0
	it := loader.Epoch(0)
	for it.Next() {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		x, y := it.Batch()
		autograd.NoGrad(func() { correct += countCorrect(model.Forward(x), y) })
		prog.Step(1)
	}
	if err := it.Err(); err != nil {
		return 0, err
	}
	acc := float64(correct) / float64(ds.Len())
	prog.End(fmt.Sprintf("accuracy %.2f%% on %d held-out digits", 100*acc, ds.Len()))
	return acc, nil
}

// latency returns the median wall time of runs forward passes of model on
// the single image x, in evaluation mode without autograd, after a few
// warm-up passes.
func latency(ctx context.Context, name string, model nn.Layer, x *tensor.Tensor, runs int, prog Progress) (time.Duration, error) {
	nn.Eval(model)
	defer nn.Train(model)
	prog.Begin("latency "+name, runs)
	times := make([]time.Duration, runs)
	var err error
	autograd.NoGrad(func() {
		for i := 0; i < 10; i++ {
			model.Forward(x)
		}
		for i := range times {
			if err = ctx.Err(); err != nil {
				return
			}
			t0 := time.Now()
			model.Forward(x)
			times[i] = time.Since(t0)
			prog.Step(1)
		}
	})
	if err != nil {
		return 0, err
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	med := times[runs/2]
	if runs%2 == 0 {
		med = (times[runs/2-1] + times[runs/2]) / 2
	}
	prog.End(fmt.Sprintf("median %.3f ms over %d batch-1 forward passes", float64(med)/float64(time.Millisecond), runs))
	return med, nil
}

// countCorrect counts the rows of logits [N, C] whose largest value is at
// the label in y [N].
func countCorrect(logits, y *tensor.Tensor) int {
	pred, labels := tensor.Argmax(logits, 1, false).I64(), y.I64()
	correct := 0
	for i, p := range pred {
		if p == labels[i] {
			correct++
		}
	}
	return correct
}
