package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/quanta-go/quanta/fx"
	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/graph/numeric"
	"github.com/quanta-go/quanta/graph/quantize"
	"github.com/quanta-go/quanta/npy"
	"github.com/quanta-go/quanta/onnx"
	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

// quantizeOpts are the parsed flags of `quanta quantize`.
type quantizeOpts struct {
	out, mode, calib, engine, method, format string
	batch, limit, finetune                   int
	finetuneLR                               float64
	perChannel, perTensor                    bool
	rounding                                 string
	exclude, int16                           inputFlags
	resize, mean, std                        string
	bgr                                      bool
}

func quantizeFlags(e *env) (*flag.FlagSet, func(args []string) error) {
	fs := newFlagSet("quantize", "MODEL.onnx -o OUT.onnx [--mode static|dynamic] [--calib FILE.npz|DIR] [flags]",
		"Quantizes an ONNX model to a QDQ ONNX model (QuantizeLinear/DequantizeLinear around\n"+
			"quantized ops, int8 weights, int32 biases) that quanta runs on int8 kernels and\n"+
			"ONNX Runtime runs as it is. Static mode calibrates activation ranges on --calib\n"+
			"data: an .npz keyed by input name (an array one rank higher than the input holds\n"+
			"one whole feed per index of axis 0; an array of the input's rank is split along\n"+
			"axis 0 into feeds of --calib-batch rows), or a folder of PNG/JPEG images for a\n"+
			"one-input vision model (--resize, --mean, --std, --bgr). Dynamic mode quantizes\n"+
			"weights and computes activation ranges at run time; it needs no data.\n\n"+
			"--int16 REGEX quantizes the matching layers (and the element-wise ops between\n"+
			"them) to 16 bits instead: mixed precision for the layers 8 bits hurt most\n"+
			"(`quanta compare` ranks them). Their QDQ pairs are uint16/int16 (opset 21);\n"+
			"quanta and ONNX Runtime run those layers in float between them. A value\n"+
			"between a 16-bit layer and an 8-bit one stays 8-bit, so name runs of\n"+
			"consecutive layers: a lone 16-bit layer still reads and writes 8-bit values.\n\n"+
			"Static mode prints each output's SQNR against the float model on the\n"+
			"calibration data, run on quanta's int8 kernels.\n\n"+
			"--finetune N then trains the static model's int8 weights and int32 biases for N\n"+
			"epochs on the calibration data to reproduce the float model's outputs\n"+
			"(quantization-aware fine-tuning by distillation: no labels; the qparams and the\n"+
			"graph stay as calibrated). It needs a model without If/Loop/Scan.")
	var o quantizeOpts
	fs.StringVar(&o.out, "o", "", "write the quantized model to `OUT.onnx` (never the input)")
	fs.StringVar(&o.mode, "mode", "static", "`static` (calibrated activations) or dynamic")
	fs.StringVar(&o.calib, "calib", "", "calibration data: an .npz `FILE` or a DIR of images (static mode)")
	fs.IntVar(&o.batch, "calib-batch", 1, "rows per feed when an .npz array has the input's own rank")
	fs.IntVar(&o.limit, "calib-limit", 0, "use at most `N` feeds (0: all)")
	fs.IntVar(&o.finetune, "finetune", 0, "static mode: fine-tune the int8 weights for `N` epochs on the calibration data (0: off)")
	fs.Float64Var(&o.finetuneLR, "finetune-lr", 0, "Adam learning rate of --finetune (0: 5e-6)")
	fs.StringVar(&o.engine, "engine", "quanta", "numerics preset: "+strings.Join(quant.Engines, ", "))
	fs.StringVar(&o.method, "method", "", "activation calibration: minmax, histogram, percentile, entropy, mse (default: the engine's, histogram)")
	fs.BoolVar(&o.perChannel, "per-channel", false, "one weight scale per output channel (the default of every engine but qnnpack)")
	fs.BoolVar(&o.perTensor, "per-tensor", false, "one weight scale per tensor")
	fs.StringVar(&o.rounding, "weight-rounding", "default", "weights to codes: nearest (PyTorch's and ONNX Runtime's rule), keep-sum (nearest, then each convolution filter's codes keep its rounded sum), or default (keep-sum for the quanta engine's post-training quantization, else nearest)")
	fs.Var(&o.exclude, "exclude", "keep float the nodes whose name or module path matches `REGEX` (repeatable)")
	fs.Var(&o.int16, "int16", "static mode: quantize the nodes whose name or module path matches `REGEX` to 16 bits (uint16 activations, int16 weights, opset 21), and the element-wise ops that read only their outputs (repeatable)")
	fs.StringVar(&o.format, "format", "qdq", "output format: qdq")
	fs.StringVar(&o.resize, "resize", "", "image folder: resize to `WxH` (default: the model's input size)")
	fs.StringVar(&o.mean, "mean", "0,0,0", "image folder: per-channel mean of x/255, comma separated")
	fs.StringVar(&o.std, "std", "1,1,1", "image folder: per-channel std of x/255, comma separated")
	fs.BoolVar(&o.bgr, "bgr", false, "image folder: channels in BGR order (OpenCV, PaddleOCR)")
	return fs, func(args []string) error {
		if len(args) != 1 {
			return usageError{"want exactly one MODEL.onnx"}
		}
		return runQuantize(e, args[0], o)
	}
}

func runQuantize(e *env, in string, o quantizeOpts) error {
	switch {
	case o.out == "":
		return usageError{"-o OUT.onnx is required"}
	case o.format != "qdq":
		return usageError{fmt.Sprintf("--format %q: quanta writes qdq", o.format)}
	case o.mode != "static" && o.mode != "dynamic":
		return usageError{fmt.Sprintf("--mode %q: want static or dynamic", o.mode)}
	case o.perChannel && o.perTensor:
		return usageError{"--per-channel and --per-tensor exclude each other"}
	case o.mode == "static" && o.calib == "":
		return usageError{"static mode needs --calib FILE.npz or --calib DIR (or use --mode dynamic)"}
	case o.batch < 1:
		return usageError{fmt.Sprintf("--calib-batch %d: want 1 or more", o.batch)}
	case o.finetune < 0 || o.finetuneLR < 0:
		return usageError{fmt.Sprintf("--finetune %d and --finetune-lr %g must not be negative", o.finetune, o.finetuneLR)}
	case o.finetune > 0 && o.mode != "static":
		return usageError{"--finetune needs --mode static"}
	}
	if same, err := samePath(in, o.out); err != nil {
		return err
	} else if same {
		return fmt.Errorf("quantize: refusing to overwrite the input model %s; choose another -o", in)
	}
	excl, err := compileAll("exclude", o.exclude)
	if err != nil {
		return err
	}
	wide, err := compileAll("int16", o.int16)
	if err != nil {
		return err
	}
	if len(wide) > 0 && o.mode != "static" {
		return usageError{"--int16 needs --mode static"}
	}
	m, err := onnx.Load(in)
	if err != nil {
		return err
	}
	mapping, err := buildMapping(o)
	if err != nil {
		return err
	}
	rounding, err := quantize.ParseWeightRounding(o.rounding)
	if err != nil {
		return usageError{fmt.Sprintf("--weight-rounding %q: want nearest, keep-sum or default", o.rounding)}
	}
	opts := quantize.Options{Engine: o.engine, Mapping: mapping, Exclude: excl, Int16: wide, WeightRounding: rounding}
	var q *graph.Model
	if o.mode == "dynamic" {
		if q, err = quantize.QuantizeDynamic(m, opts); err != nil {
			return fmt.Errorf("%s: %w", in, err)
		}
	} else {
		feeds, err := calibrationFeeds(m, o)
		if err != nil {
			return err
		}
		p, err := quantize.Prepare(m, opts)
		if err != nil {
			return fmt.Errorf("%s: %w", in, err)
		}
		prog := newProgress(e.stderr, e.stderrIsTerminal)
		prog.Begin("calibrate", len(feeds))
		for i, f := range feeds {
			if err := p.Observe(e.ctx, f); err != nil {
				return fmt.Errorf("%s: calibration feed %d: %w", in, i, err)
			}
			prog.Step(1)
		}
		prog.End(fmt.Sprintf("%d feeds, %d observed values", len(feeds), len(p.Points)))
		if q, err = quantize.Convert(p); err != nil {
			return fmt.Errorf("%s: %w", in, err)
		}
		printUnits(e, p)
		if un := p.Unreached(); len(un) > 0 {
			fmt.Fprintf(e.stdout, "kept float (no calibration data reached them): %d units, first %s\n", len(un), un[0])
		}
		teacher, err := exec.Compile(m, exec.Options{})
		if err != nil {
			return fmt.Errorf("%s: %w", in, err)
		}
		before, err := outputSQNR(e, teacher, q, feeds)
		if err != nil {
			return fmt.Errorf("%s: %w", in, err)
		}
		if o.finetune > 0 {
			if q, err = finetune(e, in, teacher, q, feeds, o); err != nil {
				return err
			}
			after, err := outputSQNR(e, teacher, q, feeds)
			if err != nil {
				return fmt.Errorf("%s: %w", in, err)
			}
			fmt.Fprintf(e.stdout, "fine-tuned %d epochs: output SQNR against float on the calibration data: %s\n", o.finetune, sqnrChange(before, after))
		} else {
			fmt.Fprintf(e.stdout, "output SQNR against float on the calibration data: %s\n", sqnrChange(before, nil))
			for _, s := range before {
				if s.db < lowSQNR {
					fmt.Fprintf(e.stdout, "  %s is below %d dB: `quanta compare` ranks the layers that hurt most (--int16 puts them at 16 bits, --exclude keeps them float); --finetune N trains the int8 weights\n", s.name, lowSQNR)
					break
				}
			}
		}
	}
	if err := onnx.Save(o.out, q); err != nil {
		return err
	}
	fi, _ := os.Stat(in)
	fo, _ := os.Stat(o.out)
	if fi != nil && fo != nil {
		fmt.Fprintf(e.stdout, "wrote %s: %s (float %s, %.2fx)\n", o.out, humanBytes(fo.Size()), humanBytes(fi.Size()), float64(fo.Size())/float64(fi.Size()))
	}
	return nil
}

// compileAll compiles the expressions of a repeatable regexp flag.
func compileAll(flag string, exprs []string) ([]*regexp.Regexp, error) {
	var res []*regexp.Regexp
	for _, s := range exprs {
		re, err := regexp.Compile(s)
		if err != nil {
			return nil, usageError{fmt.Sprintf("--%s %q: %v", flag, s, err)}
		}
		res = append(res, re)
	}
	return res, nil
}

// printUnits summarizes which units are quantized, by pattern.
func printUnits(e *env, p *quantize.Prepared) {
	q, f := map[string]int{}, map[string]int{}
	for _, u := range p.Units {
		if u.Quantized {
			if u.QConfig != nil && u.QConfig.Activation != nil && quant.Is16Bit(u.QConfig.Activation().Config()) {
				q[u.Key+" (16-bit)"]++
			} else {
				q[u.Key]++
			}
		} else if u.Reason != "inputs are float" && u.Reason != "not a float activation" {
			f[u.Key+" ("+u.Reason+")"]++
		}
	}
	fmt.Fprintf(e.stdout, "quantized: %s\n", countList(q))
	if len(f) > 0 {
		fmt.Fprintf(e.stdout, "float:     %s\n", countList(f))
	}
}

func countList(c map[string]int) string {
	var keys []string
	for k := range c {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if c[keys[i]] != c[keys[j]] {
			return c[keys[i]] > c[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %s", c[k], k))
	}
	return strings.Join(parts, ", ")
}

// samePath reports whether a and b name the same file (b may not exist).
func samePath(a, b string) (bool, error) {
	aa, err := filepath.Abs(a)
	if err != nil {
		return false, err
	}
	bb, err := filepath.Abs(b)
	if err != nil {
		return false, err
	}
	if aa == bb {
		return true, nil
	}
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	if err1 == nil && err2 == nil {
		return os.SameFile(fa, fb), nil
	}
	return false, nil
}

// buildMapping returns the QConfigMapping the flags ask for, or nil for
// the engine's default.
func buildMapping(o quantizeOpts) (*quant.QConfigMapping, error) {
	if o.mode == "dynamic" {
		switch {
		case o.perChannel:
			return quant.NewQConfigMapping().SetGlobal(quant.PerChannelDynamicQConfig), nil
		case o.perTensor:
			return quant.NewQConfigMapping().SetGlobal(quant.DefaultDynamicQConfig), nil
		}
		return nil, nil // the engine's default
	}
	if o.method == "" && !o.perChannel && !o.perTensor {
		return nil, nil
	}
	base, err := quant.DefaultQConfig(o.engine)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	qc := *base
	qc.Name = o.engine + " " + o.method
	acfg := base.Activation().Config()
	switch o.method {
	case "", "histogram":
	case "minmax":
		qc.Activation = func() observer.Observer { return observer.NewMinMax(acfg) }
	case "percentile":
		qc.Activation = func() observer.Observer { return observer.NewPercentile(observer.PercentileConfig{Config: acfg}) }
	case "entropy":
		qc.Activation = func() observer.Observer { return observer.NewEntropy(observer.EntropyConfig{Config: acfg}) }
	case "mse":
		qc.Activation = func() observer.Observer { return observer.NewMSE(observer.MSEConfig{Config: acfg}) }
	default:
		return nil, usageError{fmt.Sprintf("--method %q: want minmax, histogram, percentile, entropy or mse", o.method)}
	}
	wcfg := observer.Config{Dtype: tensor.QInt8}
	switch {
	case o.perChannel:
		wcfg.QScheme = tensor.PerChannelSymmetric
		qc.Weight = func() observer.Observer { return observer.NewPerChannelMinMax(wcfg) }
	case o.perTensor:
		wcfg.QScheme = tensor.PerTensorSymmetric
		qc.Weight = func() observer.Observer { return observer.NewMinMax(wcfg) }
	}
	m, err := quant.DefaultQConfigMapping(o.engine)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	return m.SetGlobal(&qc), nil
}

// calibrationFeeds reads the --calib data as feeds of the model's inputs.
func calibrationFeeds(m *graph.Model, o quantizeOpts) ([]map[string]*tensor.Tensor, error) {
	st, err := os.Stat(o.calib)
	if err != nil {
		return nil, fmt.Errorf("--calib: %w", err)
	}
	var feeds []map[string]*tensor.Tensor
	if st.IsDir() {
		feeds, err = imageFeeds(m, o)
	} else {
		arrays, _, rerr := npy.ReadNPZ(o.calib)
		if rerr != nil {
			return nil, rerr
		}
		feeds, err = quantize.Feeds(m, arrays, o.batch)
		if err != nil {
			err = fmt.Errorf("%s: %w", o.calib, err)
		}
	}
	if err != nil {
		return nil, err
	}
	if len(feeds) == 0 {
		return nil, fmt.Errorf("%s: no calibration feeds", o.calib)
	}
	if o.limit > 0 && len(feeds) > o.limit {
		feeds = feeds[:o.limit]
	}
	return feeds, nil
}

var errNoImages = errors.New("no PNG or JPEG images")

// finetune runs fx.FinetuneQDQ on the static model q with the float
// program teacher, showing progress.
func finetune(e *env, in string, teacher *exec.Program, q *graph.Model, feeds []map[string]*tensor.Tensor, o quantizeOpts) (*graph.Model, error) {
	prog := newProgress(e.stderr, e.stderrIsTerminal)
	prog.Begin("finetune", (o.finetune+1)*len(feeds))
	out, _, err := fx.FinetuneQDQ(e.ctx, q, teacher, feeds, fx.FinetuneOptions{Epochs: o.finetune, LR: o.finetuneLR,
		Progress: func(epoch, done, total int, loss float64) { prog.Step(1) }})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in, err)
	}
	prog.End(fmt.Sprintf("%d epochs", o.finetune))
	return out, nil
}

// lowSQNR is the output SQNR (dB) under which quantize points at compare
// and --finetune.
const lowSQNR = 15

// sqnr is one float output's SQNR.
type sqnr struct {
	name string
	db   float64
}

// outputSQNR runs the float teacher and q (on quanta's int8 kernels) on
// the feeds and returns each float output's SQNR over all the feeds.
func outputSQNR(e *env, teacher *exec.Program, q *graph.Model, feeds []map[string]*tensor.Tensor) ([]sqnr, error) {
	qp, err := exec.Compile(q, exec.Options{})
	if err != nil {
		return nil, err
	}
	names := teacher.OutputNames()
	accs := make([]numeric.Accumulator, len(names))
	for i, f := range feeds {
		a, err := teacher.Run(e.ctx, f)
		if err != nil {
			return nil, fmt.Errorf("feed %d: %w", i, err)
		}
		b, err := qp.Run(e.ctx, f)
		if err != nil {
			return nil, fmt.Errorf("feed %d: %w", i, err)
		}
		for k, n := range names {
			x, y := a[n], b[n]
			if x != nil && y != nil && x.DType() == tensor.Float32 && y.DType() == tensor.Float32 && len(x.F32()) == len(y.F32()) {
				accs[k].Add(x.F32(), y.F32())
			}
		}
	}
	var out []sqnr
	for k, n := range names {
		if s := accs[k].Stats(); s.Count > 0 {
			out = append(out, sqnr{n, s.SQNR})
		}
	}
	return out, nil
}

// sqnrChange formats per-output SQNRs, "name 21.30 dB", or with after
// set "name 21.30 dB -> 24.10 dB".
func sqnrChange(before, after []sqnr) string {
	parts := make([]string, len(before))
	for i, s := range before {
		parts[i] = fmt.Sprintf("%s %.2f dB", s.name, s.db)
		if i < len(after) {
			parts[i] += fmt.Sprintf(" -> %.2f dB", after[i].db)
		}
	}
	return strings.Join(parts, ", ")
}
