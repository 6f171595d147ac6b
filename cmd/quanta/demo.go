package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/quanta-go/quanta/internal/demo"
	"github.com/quanta-go/quanta/quant"
)

func demoFlags(e *env) (*flag.FlagSet, func(args []string) error) {
	fs := newFlagSet("demo", "[--epochs N] [--seed S] [--threads T] [--engine E] [--json FILE]",
		"Trains a small CNN (conv-bn-relu blocks, pooling, a residual block, a linear head)\n"+
			"on 8,000 of the embedded MNIST digits, then quantizes it three ways: dynamic\n"+
			"(the linear layer), static (fused, calibrated on 256 training digits) and\n"+
			"quantization-aware training (one epoch of fine-tuning). For each form it reports\n"+
			"the accuracy on the other 2,000 digits, the size as saved, the batch-1 latency\n"+
			"(median) and the speedup over float. Graph mode (fx_static, fx_qat) quantizes the\n"+
			"same float model traced, with no stubs and no fuse list.")
	def := demo.DefaultConfig()
	epochs := fs.Int("epochs", def.Epochs, "training epochs")
	seed := fs.Uint64("seed", def.Seed, "seed for initialization and shuffling")
	threads := fs.Int("threads", 0, "threads per op (0: one per CPU)")
	engine := fs.String("engine", def.Engine, "quantization preset: x86, fbgemm, qnnpack, onednn or quanta")
	graphMode := fs.Bool("graph-mode", def.GraphMode, "also quantize in graph mode (rows fx_static and fx_qat)")
	jsonPath := fs.String("json", "", "also write the results as JSON to `FILE`")
	return fs, func(args []string) error {
		if len(args) > 0 {
			return usageError{fmt.Sprintf("unexpected arguments %q", args)}
		}
		if *epochs < 1 {
			return usageError{fmt.Sprintf("--epochs must be at least 1, got %d", *epochs)}
		}
		if *threads < 0 {
			return usageError{fmt.Sprintf("--threads must be 0 or more, got %d", *threads)}
		}
		if _, err := quant.DefaultQConfig(*engine); err != nil {
			return usageError{fmt.Sprintf("--engine: %v", err)}
		}
		cfg := def
		cfg.Epochs, cfg.Seed, cfg.Threads, cfg.Engine, cfg.GraphMode = *epochs, *seed, *threads, *engine, *graphMode
		cfg.Progress = newProgress(e.stderr, e.stderrIsTerminal)
		return runDemo(e, cfg, *jsonPath)
	}
}

func runDemo(e *env, cfg demo.Config, jsonPath string) error {
	if jsonPath != "" {
		// Fail before training, not after, when the file cannot be written.
		if st, err := os.Stat(filepath.Dir(jsonPath)); err != nil || !st.IsDir() {
			return fmt.Errorf("--json %s: directory %s does not exist", jsonPath, filepath.Dir(jsonPath))
		}
	}
	fmt.Fprintf(e.stderr, "quanta demo: %d training and %d test digits, %d epochs, seed %d, engine %s\n", cfg.Train, cfg.Test, cfg.Epochs, cfg.Seed, cfg.Engine)
	rep, err := demo.Run(e.ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "trained in %.1f s (%d epochs, %d threads)\n\n", rep.TrainTime.Seconds(), rep.Config.Epochs, rep.Threads)
	if err := rep.WriteTable(e.stdout); err != nil {
		return err
	}
	if jsonPath != "" {
		if err := rep.WriteJSON(jsonPath); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "wrote %s\n", jsonPath)
	}
	return nil
}

// newProgress returns a redrawn progress bar on a terminal, and otherwise
// one plain line per finished phase, which reads well in logs.
func newProgress(w io.Writer, terminal bool) demo.Progress {
	if terminal {
		return &barProgress{w: w}
	}
	return &lineProgress{w: w}
}

// barProgress draws a progressbar for each phase.
type barProgress struct {
	w     io.Writer
	bar   *progressbar.ProgressBar
	phase string
}

func (p *barProgress) Begin(phase string, steps int) {
	p.phase = phase
	p.bar = progressbar.NewOptions(steps,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(fmt.Sprintf("%-12s", phase)),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

func (p *barProgress) Step(n int) {
	if p.bar != nil {
		p.bar.Add(n)
	}
}

func (p *barProgress) End(summary string) {
	if p.bar != nil {
		p.bar.Finish()
		p.bar = nil
	}
	fmt.Fprintf(p.w, "%-12s %s\n", p.phase, summary)
}

// lineProgress prints one line per finished phase.
type lineProgress struct {
	w     io.Writer
	phase string
}

func (p *lineProgress) Begin(phase string, steps int) { p.phase = phase }
func (p *lineProgress) Step(n int)                    {}
func (p *lineProgress) End(summary string)            { fmt.Fprintf(p.w, "%-12s %s\n", p.phase, summary) }

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
