// Command quanta is the command line of quanta, PyTorch's quantization
// rebuilt in Go.
//
//	quanta demo [--epochs N] [--seed S] [--threads T] [--engine E] [--json FILE]
//	quanta run MODEL.onnx [-i NAME=FILE.npy|FILE.pb ...] [--inputs FILE.npz] -o OUTDIR [--threads N] [--reference] [--report]
//	quanta inspect MODEL.onnx
//	quanta bench MODEL.onnx [--inputs FILE.npz] [--threads N] [--iters N] [--json FILE]
//	quanta quantize MODEL.onnx -o OUT.onnx [--mode static|dynamic] [--calib FILE.npz|DIR] [--engine E] [--method M] [--exclude REGEX ...]
//	quanta compare FLOAT.onnx QUANT.onnx --inputs FILE.npz [--html FILE] [--json FILE] [--top N]
//	quanta help [command]
//
// Results go to standard output, progress and errors to standard error.
// Exit status: 0 on success, 1 when the work fails, 2 on bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
)

// command is one subcommand of quanta.
type command struct {
	name    string
	summary string
	// flags returns the command's flag set and a function running it with
	// the parsed flags and the remaining arguments.
	flags func(env *env) (*flag.FlagSet, func(args []string) error)
}

// env is what a command runs with: its streams and a context cancelled on
// interrupt.
type env struct {
	ctx            context.Context
	stdout, stderr io.Writer
	// stderrIsTerminal selects a redrawn progress bar instead of one line
	// per finished phase.
	stderrIsTerminal bool
}

func commands() []command {
	return []command{
		{name: "demo", summary: "train a small CNN on MNIST digits; report accuracy, size and batch-1 latency", flags: demoFlags},
		{name: "run", summary: "run an ONNX model on inputs from .npy/.pb/.npz files; write its outputs as .npy", flags: runFlags},
		{name: "inspect", summary: "show an ONNX model's inputs, outputs, opsets, operators and parameters", flags: inspectFlags},
		{name: "bench", summary: "measure an ONNX model's latency (p50/p90/p99) and throughput", flags: benchFlags},
		{name: "compare", summary: "compare a float model with its quantized version layer by layer (SQNR, cosine; HTML report)", flags: compareFlags},
		{name: "quantize", summary: "quantize an ONNX model (static with calibration data, or dynamic) to a QDQ ONNX model", flags: quantizeFlags},
	}
}

// usageError is bad command-line usage: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	e := &env{ctx: ctx, stdout: os.Stdout, stderr: os.Stderr, stderrIsTerminal: isTerminal(os.Stderr)}
	code := run(e, os.Args[1:])
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the exit status.
func run(e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, "quanta: no command given")
		usage(e.stderr)
		return 2
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(rest) == 0 {
			usage(e.stdout)
			return 0
		}
		c, ok := lookup(rest[0])
		if !ok {
			fmt.Fprintf(e.stderr, "quanta: unknown command %q\n", rest[0])
			usage(e.stderr)
			return 2
		}
		fs, _ := c.flags(e)
		fs.SetOutput(e.stdout)
		fs.Usage()
		return 0
	}
	c, ok := lookup(name)
	if !ok {
		fmt.Fprintf(e.stderr, "quanta: unknown command %q\n", name)
		usage(e.stderr)
		return 2
	}
	fs, exec := c.flags(e)
	fs.SetOutput(e.stderr)
	positional, err := parseInterspersed(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2 // the flag package has printed the error and the usage
	}
	err = exec(positional)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "quanta %s: %v\n", c.name, err)
		fs.Usage()
		return 2
	default:
		fmt.Fprintf(e.stderr, "quanta: %v\n", err)
		return 1
	}
}

// parseInterspersed parses flags that may come before, between or after
// the positional arguments ("quanta run model.onnx -o out"); "--" ends
// flag parsing.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		if args[0] == "--" {
			return append(positional, args[1:]...), nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func usage(w io.Writer) {
	var sb strings.Builder
	sb.WriteString("quanta: PyTorch's quantization in pure Go.\n\nUsage:\n  quanta <command> [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&sb, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(&sb, "  %-8s %s\n", "help", "show this help, or a command's flags: quanta help <command>")
	io.WriteString(w, sb.String())
}

// newFlagSet returns a flag set whose usage names the command.
func newFlagSet(name, synopsis, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("quanta "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: quanta %s %s\n\n%s\n\nFlags:\n", name, synopsis, about)
		fs.PrintDefaults()
	}
	return fs
}
