package main

import (
	"bytes"
	"flag"
	"fmt"
	"path/filepath"

	"github.com/quanta-go/quanta/graph/numeric"
	"github.com/quanta-go/quanta/graph/quantize"
	"github.com/quanta-go/quanta/npy"
	"github.com/quanta-go/quanta/onnx"
)

func compareFlags(e *env) (*flag.FlagSet, func(args []string) error) {
	fs := newFlagSet("compare", "FLOAT.onnx QUANT.onnx --inputs FILE.npz [--batch N] [--html FILE] [--json FILE] [--top N] [--threads N]",
		"Compares a float model with its quantized (QDQ) version layer by layer, as\n"+
			"PyTorch's Numeric Suite: both run on the inputs, and for every node of the float\n"+
			"model with a same-named node in the quantized one it reports the SQNR (dB),\n"+
			"cosine similarity and errors of the quantized activation and weight, then ranks\n"+
			"the layers that hurt most (largest SQNR drop from their inputs). The quantized\n"+
			"model runs literally (dequantize, float op, quantize) to expose every\n"+
			"activation, and as int8 kernels for its final outputs.\n\n"+
			"--inputs is an .npz keyed by input name, read as quantize reads --calib: an\n"+
			"array one rank higher than its input holds one feed per index of axis 0; an\n"+
			"array of the input's own rank is split along axis 0 into feeds of --batch rows.")
	npz := fs.String("inputs", "", "inputs from an .npz `FILE` keyed by input name (required)")
	htmlPath := fs.String("html", "", "write a self-contained HTML report with per-layer plots to `FILE`")
	jsonPath := fs.String("json", "", "write the report as JSON to `FILE`")
	batch := fs.Int("batch", 1, "rows per feed when an .npz array has the input's own rank (0: the whole array is one feed)")
	top := fs.Int("top", 10, "list the `N` layers that hurt most")
	threads := fs.Int("threads", 0, "threads per op (0: one per CPU)")
	refOnly := fs.Bool("reference-only", false, "skip the int8 run; compare final outputs of the literal QDQ graph only")
	return fs, func(args []string) error {
		if len(args) != 2 {
			return usageError{"want FLOAT.onnx and QUANT.onnx"}
		}
		if *npz == "" {
			return usageError{"--inputs FILE.npz is required"}
		}
		if *top < 0 || *threads < 0 || *batch < 0 {
			return usageError{fmt.Sprintf("--top, --threads and --batch must be 0 or more (got %d, %d, %d)", *top, *threads, *batch)}
		}
		for _, out := range []string{*htmlPath, *jsonPath} {
			for _, in := range append(args, *npz) {
				if out != "" && filepath.Clean(out) == filepath.Clean(in) {
					return usageError{fmt.Sprintf("refusing to overwrite the input %s", in)}
				}
			}
		}
		float, err := onnx.Load(args[0])
		if err != nil {
			return err
		}
		quant, err := onnx.Load(args[1])
		if err != nil {
			return err
		}
		arrays, _, err := npy.ReadNPZ(*npz)
		if err != nil {
			return err
		}
		feeds, err := quantize.Feeds(float, arrays, *batch)
		if err != nil {
			return fmt.Errorf("--inputs %s: %w", *npz, err)
		}
		prog := newProgress(e.stderr, e.stderrIsTerminal)
		prog.Begin("compare", len(feeds))
		rep, err := numeric.Compare(e.ctx, float, quant, feeds, numeric.Options{
			FloatName: args[0], QuantName: args[1], Threads: *threads, ReferenceOnly: *refOnly,
			Progress: func(done, total int) { prog.Step(1) },
		})
		if err != nil {
			return err
		}
		prog.End(fmt.Sprintf("%d feeds, %d layers", rep.Feeds, len(rep.Layers)))
		if err := rep.WriteTable(e.stdout); err != nil {
			return err
		}
		if *top > 0 && len(rep.Layers) > 0 {
			fmt.Fprintf(e.stdout, "\nlayers that hurt most (SQNR drop from their inputs, then lowest SQNR):\n")
			if err := rep.WriteWorst(e.stdout, *top); err != nil {
				return err
			}
		}
		if *htmlPath != "" {
			var b bytes.Buffer
			if err := rep.WriteHTML(&b); err != nil {
				return err
			}
			if err := writeFileAtomic(*htmlPath, b.Bytes()); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "wrote %s\n", *htmlPath)
		}
		if *jsonPath != "" {
			var b bytes.Buffer
			if err := rep.WriteJSON(&b); err != nil {
				return err
			}
			if err := writeFileAtomic(*jsonPath, b.Bytes()); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "wrote %s\n", *jsonPath)
		}
		return nil
	}
}
