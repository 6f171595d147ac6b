package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"
)

// Result is what the demo measures for one form of the model.
type Result struct {
	// Accuracy is the fraction of held-out digits classified correctly.
	Accuracy float64 `json:"accuracy"`
	// SizeBytes is the size of the model's parameters and buffers as saved
	// (a safetensors file).
	SizeBytes int64 `json:"size_bytes"`
	// LatencyMS is the median time of one batch-1 forward pass, in
	// milliseconds, in evaluation mode without autograd.
	LatencyMS float64 `json:"latency_ms"`
	// Speedup is the float model's latency divided by this one's.
	Speedup float64 `json:"speedup"`
}

// Report holds one Result per form of the model the demo produced, in the
// JSON layout `quanta demo --json` writes:
//
//	{"float": {"accuracy": 0.985, "size_bytes": 123456, "latency_ms": 0.4},
//	 "dynamic": {...}}
//
// Forms that were not produced are omitted.
type Report struct {
	// Float is the trained float32 model.
	Float *Result `json:"float,omitempty"`
	// Dynamic is the float model with its Linear layers dynamically
	// quantized (int8 weights, activations quantized per call).
	Dynamic *Result `json:"dynamic,omitempty"`
	// Static is the float model fused, calibrated and converted to int8
	// (post-training static quantization).
	Static *Result `json:"static,omitempty"`
	// QAT is the float model fine-tuned with quantization-aware training
	// and converted to int8.
	QAT *Result `json:"qat,omitempty"`
	// FXStatic is the float model quantized in graph mode (package fx):
	// traced with no stubs and no fuse list, batch norms folded, patterns
	// fused, calibrated on the static row's digits, converted to a QDQ
	// model run by graph/exec's int8 kernels. Its size is the ONNX file's.
	FXStatic *Result `json:"fx_static,omitempty"`
	// FXQAT is the float model fine-tuned with graph-mode QAT
	// (fx.PrepareQATFX: fake quantization on the BN-folded weights) and
	// converted as FXStatic.
	FXQAT *Result `json:"fx_qat,omitempty"`

	// Config is the configuration the report was made with (defaults filled).
	Config Config `json:"-"`
	// TrainTime is the wall time of training the float model.
	TrainTime time.Duration `json:"-"`
	// Threads is the number of threads ops used.
	Threads int `json:"-"`
}

// Row is one named Result of a Report.
type Row struct {
	Name   string
	Result *Result
}

// Rows returns the produced results in a fixed order, named as in the JSON.
func (r *Report) Rows() []Row {
	var rows []Row
	for _, row := range []Row{{"float", r.Float}, {"dynamic", r.Dynamic}, {"static", r.Static}, {"qat", r.QAT},
		{"fx_static", r.FXStatic}, {"fx_qat", r.FXQAT}} {
		if row.Result != nil {
			rows = append(rows, row)
		}
	}
	return rows
}

// setSpeedups fills each result's Speedup against the float model.
func (r *Report) setSpeedups() {
	if r.Float == nil {
		return
	}
	for _, row := range r.Rows() {
		if row.Result.LatencyMS > 0 {
			row.Result.Speedup = r.Float.LatencyMS / row.Result.LatencyMS
		}
	}
}

// WriteTable prints the results as an aligned table.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "model\taccuracy\tsize (bytes)\tsize vs float\tlatency (ms, batch 1)\tspeedup\t")
	for _, row := range r.Rows() {
		res := row.Result
		rel := "-"
		if r.Float != nil && r.Float.SizeBytes > 0 {
			rel = fmt.Sprintf("%.2fx", float64(res.SizeBytes)/float64(r.Float.SizeBytes))
		}
		fmt.Fprintf(tw, "%s\t%.2f%%\t%d\t%s\t%.3f\t%.2fx\t\n", row.Name, 100*res.Accuracy, res.SizeBytes, rel, res.LatencyMS, res.Speedup)
	}
	return tw.Flush()
}

// WriteJSON writes the report as indented JSON to path. The file is
// written next to path and renamed over it, so a failure never leaves a
// half-written file.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("demo: encoding report: %w", err)
	}
	b = append(b, '\n')
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("demo: writing %s: %w", path, err)
	}
	werr := tmp.Chmod(0o644)
	if werr == nil {
		_, werr = tmp.Write(b)
	}
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("demo: writing %s: %w", path, werr)
	}
	return nil
}
