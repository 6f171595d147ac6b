package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/npy"
	"github.com/quanta-go/quanta/onnx"
	"github.com/quanta-go/quanta/tensor"
)

// inputFlags collects repeated -i NAME=FILE arguments.
type inputFlags []string

func (f *inputFlags) String() string     { return strings.Join(*f, ",") }
func (f *inputFlags) Set(s string) error { *f = append(*f, s); return nil }

// loadModel reads an ONNX model and compiles it.
func loadModel(path string, threads int) (*graph.Model, *exec.Program, error) {
	m, err := onnx.Load(path)
	if err != nil {
		return nil, nil, err
	}
	p, err := exec.Compile(m, exec.Options{Threads: threads})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, p, nil
}

// readInputs gathers the inputs given as -i NAME=FILE (.npy or a
// TensorProto .pb) and --inputs FILE.npz.
func readInputs(pairs []string, npzPath string) (map[string]*tensor.Tensor, error) {
	in := map[string]*tensor.Tensor{}
	if npzPath != "" {
		ts, _, err := npy.ReadNPZ(npzPath)
		if err != nil {
			return nil, err
		}
		for k, v := range ts {
			in[k] = v
		}
	}
	for _, p := range pairs {
		name, file, ok := strings.Cut(p, "=")
		if !ok || name == "" || file == "" {
			return nil, usageError{fmt.Sprintf("-i %q: want NAME=FILE.npy or NAME=FILE.pb", p)}
		}
		var t *tensor.Tensor
		var err error
		switch strings.ToLower(filepath.Ext(file)) {
		case ".npy":
			t, err = npy.ReadFile(file)
		case ".pb":
			t, err = onnx.ReadTensor(file)
		default:
			return nil, usageError{fmt.Sprintf("-i %s: input files must end in .npy or .pb", p)}
		}
		if err != nil {
			return nil, err
		}
		in[name] = t
	}
	return in, nil
}

// outputFile turns an output name into a file name: '/' and ':' become '_'.
func outputFile(name string) string {
	return strings.NewReplacer("/", "_", ":", "_").Replace(name) + ".npy"
}

func runFlags(e *env) (*flag.FlagSet, func(args []string) error) {
	fs := newFlagSet("run", "MODEL.onnx [-i NAME=FILE.npy|FILE.pb ...] [--inputs FILE.npz] -o OUTDIR [--threads N] [--reference] [--report]",
		"Runs an ONNX model on quanta's kernels and writes each output to\n"+
			"OUTDIR/<output>.npy ('/' and ':' in output names become '_'). The quantized\n"+
			"patterns of a QDQ model run as int8 kernels (--reference: literally).")
	var pairs inputFlags
	fs.Var(&pairs, "i", "an input as `NAME=FILE` (.npy or TensorProto .pb); repeatable")
	npz := fs.String("inputs", "", "inputs from an .npz `FILE` keyed by input name")
	out := fs.String("o", "", "output `DIR` (created if missing)")
	threads := fs.Int("threads", 0, "threads per op (0: one per CPU)")
	reference := fs.Bool("reference", false, "run a QDQ model literally (dequantize, float op, quantize) instead of fusing its patterns into int8 kernels")
	report := fs.Bool("report", false, "print which nodes ran in int8 kernels and which in float, with the float fallbacks by node")
	return fs, func(args []string) error {
		if len(args) != 1 {
			return usageError{"want exactly one MODEL.onnx"}
		}
		if *out == "" {
			return usageError{"-o OUTDIR is required"}
		}
		if *threads < 0 {
			return usageError{fmt.Sprintf("--threads must be 0 or more, got %d", *threads)}
		}
		m, err := onnx.Load(args[0])
		if err != nil {
			return err
		}
		p, err := exec.Compile(m, exec.Options{Threads: *threads, Reference: *reference})
		if err != nil {
			return fmt.Errorf("%s: %w", args[0], err)
		}
		in, err := readInputs(pairs, *npz)
		if err != nil {
			return err
		}
		t0 := time.Now()
		res, err := p.Run(e.ctx, in)
		if err != nil {
			return fmt.Errorf("%s: %w", args[0], err)
		}
		elapsed := time.Since(t0)
		if err := os.MkdirAll(*out, 0o755); err != nil {
			return fmt.Errorf("-o %s: %w", *out, err)
		}
		for _, name := range p.OutputNames() {
			path := filepath.Join(*out, outputFile(name))
			if err := npy.WriteFile(path, res[name]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s\t%s%v\t%s\n", name, res[name].DType(), res[name].Shape(), path)
		}
		if *report {
			printQuantReport(e, p.QuantReport())
		}
		fmt.Fprintf(e.stderr, "ran %s in %.2f ms\n", filepath.Base(args[0]), float64(elapsed)/1e6)
		return nil
	}
}

// printQuantReport prints the nodes run in int8 kernels and in float per
// operator type, then every float node (the fallbacks of a quantized
// model).
func printQuantReport(e *env, rows []exec.QuantNode) {
	sum := exec.SummarizeQuant(rows)
	var i8, fl int
	for _, s := range sum {
		i8 += s.Int8
		fl += s.Float
	}
	fmt.Fprintf(e.stdout, "\nnodes: %d int8, %d float\n%-24s %6s %6s\n", i8, fl, "op", "int8", "float")
	for _, s := range sum {
		fmt.Fprintf(e.stdout, "%-24s %6d %6d\n", s.Op, s.Int8, s.Float)
	}
	if fl == 0 {
		fmt.Fprintln(e.stdout, "float fallbacks: none")
		return
	}
	fmt.Fprintf(e.stdout, "float fallbacks (%d):\n", fl)
	for _, r := range rows {
		if r.Int8 {
			continue
		}
		name := r.Node
		if r.Graph != "" {
			name = r.Graph + ": " + name
		}
		fmt.Fprintf(e.stdout, "  %-22s %s\n", r.Op, name)
	}
}

func inspectFlags(e *env) (*flag.FlagSet, func(args []string) error) {
	fs := newFlagSet("inspect", "MODEL.onnx",
		"Prints an ONNX model's inputs and outputs with their types, its opsets, a\n"+
			"histogram of its operators (marking any quanta cannot run), and its parameter\n"+
			"count and bytes.")
	return fs, func(args []string) error {
		if len(args) != 1 {
			return usageError{"want exactly one MODEL.onnx"}
		}
		m, err := onnx.Load(args[0])
		if err != nil {
			return err
		}
		g := m.Graph
		w := e.stdout
		fmt.Fprintf(w, "model      %s\n", args[0])
		if m.ProducerName != "" {
			fmt.Fprintf(w, "producer   %s %s\n", m.ProducerName, m.ProducerVersion)
		}
		var opsets []string
		for d, v := range m.Opsets {
			if d == "" {
				d = "ai.onnx"
			}
			opsets = append(opsets, fmt.Sprintf("%s %d", d, v))
		}
		sort.Strings(opsets)
		fmt.Fprintf(w, "ir         %d, opsets %s\n", m.IRVersion, strings.Join(opsets, ", "))
		fmt.Fprintln(w, "inputs")
		for _, v := range g.Inputs {
			def := ""
			if v.Const != nil {
				def = " (has a default)"
			}
			fmt.Fprintf(w, "  %s: %s%s\n", v.Name, v.Type, def)
		}
		fmt.Fprintln(w, "outputs")
		for _, v := range g.Outputs {
			fmt.Fprintf(w, "  %s: %s\n", v.Name, v.Type)
		}
		supported := map[string]bool{}
		for _, s := range exec.Supported() {
			supported[s] = true
		}
		counts := g.OpCounts()
		names := make([]string, 0, len(counts))
		total := 0
		for k, c := range counts {
			names = append(names, k)
			total += c
		}
		sort.Slice(names, func(i, j int) bool {
			if counts[names[i]] != counts[names[j]] {
				return counts[names[i]] > counts[names[j]]
			}
			return names[i] < names[j]
		})
		fmt.Fprintf(w, "operators  %d nodes, %d kinds\n", total, len(names))
		var missing []string
		for _, k := range names {
			mark := ""
			if !supported[k] {
				mark = "  (not supported)"
				missing = append(missing, k)
			}
			fmt.Fprintf(w, "  %-24s %5d%s\n", k, counts[k], mark)
		}
		params, bytes := parameters(g)
		fmt.Fprintf(w, "parameters %d (%s)\n", params, humanBytes(bytes))
		if len(missing) > 0 {
			fmt.Fprintf(w, "quanta cannot run: %s\n", strings.Join(missing, ", "))
		}
		return nil
	}
}

// parameters counts the elements and stored bytes of a graph's
// initializers and Constant node values (many exporters store weights as
// Constants), subgraphs included, bytes at the file's element width.
func parameters(g *graph.Graph) (n, bytes int64) {
	for _, v := range g.Initializers {
		k := int64(v.Const.Numel())
		n += k
		bytes += k * int64(elemSize(v.Type.Elem))
	}
	for _, node := range g.Nodes {
		if node.OpType == "Constant" && len(node.Outputs) == 1 && node.Outputs[0] != nil {
			if a := node.Attrs["value"]; a != nil && a.T != nil {
				k := int64(a.T.Numel())
				n += k
				bytes += k * int64(elemSize(node.Outputs[0].Type.Elem))
			}
		}
		for _, sg := range node.Subgraphs() {
			a, b := parameters(sg)
			n, bytes = n+a, bytes+b
		}
	}
	return n, bytes
}

func elemSize(e graph.ElemType) int {
	switch e {
	case graph.Double, graph.Int64, graph.Uint64, graph.Complex64:
		return 8
	case graph.Float, graph.Int32, graph.Uint32:
		return 4
	case graph.Float16, graph.BFloat16, graph.Int16, graph.Uint16:
		return 2
	case graph.Complex128:
		return 16
	}
	return 1
}

func humanBytes(b int64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}

// BenchResult is what `quanta bench --json` writes.
type BenchResult struct {
	P50MS   float64 `json:"p50_ms"`
	P90MS   float64 `json:"p90_ms"`
	P99MS   float64 `json:"p99_ms"`
	MeanMS  float64 `json:"mean_ms"`
	Iters   int     `json:"iters"`
	Threads int     `json:"threads"`
	// Warmup is how many untimed runs came first.
	Warmup int `json:"warmup"`
}

func benchFlags(e *env) (*flag.FlagSet, func(args []string) error) {
	fs := newFlagSet("bench", "MODEL.onnx [--inputs FILE.npz] [--threads N] [--iters N] [--warmup N] [--warmup-time D] [--json FILE]",
		"Measures an ONNX model's latency on quanta's kernels: p50/p90/p99 and mean per\n"+
			"run, and throughput, in steady state: untimed runs come first, at least\n"+
			"--warmup of them and for at least --warmup-time, while the process's heap\n"+
			"grows to its working size (the first runs of a process touch fresh memory and\n"+
			"are slower). Without --inputs it makes random inputs from the declared\n"+
			"shapes (symbolic dimensions 1; floats standard normal, integers 0, bools false).")
	npz := fs.String("inputs", "", "inputs from an .npz `FILE` keyed by input name")
	threads := fs.Int("threads", 0, "threads per op (0: one per CPU)")
	iters := fs.Int("iters", 100, "timed runs")
	warmup := fs.Int("warmup", 5, "untimed runs first, at least")
	warmupTime := fs.Duration("warmup-time", time.Second, "untimed runs first for at least this long")
	jsonPath := fs.String("json", "", "also write the results as JSON to `FILE`")
	return fs, func(args []string) error {
		if len(args) != 1 {
			return usageError{"want exactly one MODEL.onnx"}
		}
		if *iters < 1 || *warmup < 0 || *threads < 0 || *warmupTime < 0 {
			return usageError{fmt.Sprintf("--iters must be at least 1, --warmup, --warmup-time and --threads 0 or more (got %d, %d, %v, %d)", *iters, *warmup, *warmupTime, *threads)}
		}
		m, p, err := loadModel(args[0], *threads)
		if err != nil {
			return err
		}
		var in map[string]*tensor.Tensor
		if *npz != "" {
			if in, err = readInputs(nil, *npz); err != nil {
				return err
			}
		} else if in, err = randomInputs(m.Graph); err != nil {
			return fmt.Errorf("%s: %w", args[0], err)
		}
		prog := newProgress(e.stderr, e.stderrIsTerminal)
		prog.Begin("warm up", *warmup)
		warm := 0
		for t0 := time.Now(); warm < *warmup || time.Since(t0) < *warmupTime; warm++ {
			if _, err := p.Run(e.ctx, in); err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if warm < *warmup {
				prog.Step(1)
			}
		}
		prog.End(fmt.Sprintf("%d runs", warm))
		times := make([]float64, *iters)
		prog.Begin("bench", *iters)
		start := time.Now()
		for i := range times {
			t0 := time.Now()
			if _, err := p.Run(e.ctx, in); err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			times[i] = float64(time.Since(t0)) / 1e6
			prog.Step(1)
		}
		wall := time.Since(start)
		prog.End(fmt.Sprintf("%d runs in %.2f s", *iters, wall.Seconds()))
		r := summarize(times)
		r.Threads = effectiveThreads(*threads)
		r.Warmup = warm
		fmt.Fprintf(e.stdout, "%s: p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  mean %.3f ms  %.1f runs/s  (%d runs after %d warm-up runs, %d threads)\n",
			filepath.Base(args[0]), r.P50MS, r.P90MS, r.P99MS, r.MeanMS, float64(*iters)/wall.Seconds(), r.Iters, warm, r.Threads)
		if *jsonPath != "" {
			b, _ := json.MarshalIndent(r, "", "  ")
			if err := writeFileAtomic(*jsonPath, append(b, '\n')); err != nil {
				return err
			}
		}
		return nil
	}
}

// summarize returns the percentiles (nearest rank) and mean of times.
func summarize(times []float64) BenchResult {
	s := append([]float64(nil), times...)
	sort.Float64s(s)
	pct := func(p float64) float64 {
		i := int(math.Ceil(p/100*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	var sum float64
	for _, v := range s {
		sum += v
	}
	return BenchResult{P50MS: pct(50), P90MS: pct(90), P99MS: pct(99), MeanMS: sum / float64(len(s)), Iters: len(s)}
}

// randomInputs makes an input for every graph input without a default:
// symbolic or unknown dimensions are 1.
func randomInputs(g *graph.Graph) (map[string]*tensor.Tensor, error) {
	rng := tensor.NewRNG(1)
	in := map[string]*tensor.Tensor{}
	for _, v := range g.Inputs {
		if v.Const != nil {
			continue
		}
		if !v.Type.HasShape {
			return nil, fmt.Errorf("input %q has no declared shape; give inputs with --inputs", v.Name)
		}
		shape := make([]int, len(v.Type.Shape))
		for i, d := range v.Type.Shape {
			shape[i] = 1
			if d.Known() {
				shape[i] = int(d.Size)
			}
		}
		dt, ok := v.Type.Elem.DType()
		if !ok {
			return nil, fmt.Errorf("input %q has type %s, which quanta cannot make", v.Name, v.Type)
		}
		if dt == tensor.Float32 {
			in[v.Name] = tensor.Randn(rng, shape...)
		} else {
			in[v.Name] = tensor.New(dt, shape...)
		}
	}
	return in, nil
}

func effectiveThreads(t int) int {
	if t > 0 {
		return t
	}
	return parallel.NumThreads()
}

// writeFileAtomic writes b to a temporary file next to path and renames
// it over path.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	werr := tmp.Chmod(0o644)
	if werr == nil {
		_, werr = tmp.Write(b)
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, werr)
	}
	return nil
}
