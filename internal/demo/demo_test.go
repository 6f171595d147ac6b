package demo

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/tensor"
)

// tiny is a configuration that trains in a few seconds.
func tiny() Config {
	return Config{Epochs: 1, Seed: 1, Train: 600, Test: 250, Width: 8, BatchSize: 16, Shift: -1, LatencyRuns: 9}
}

// recorder is a Progress that keeps what it was told.
type recorder struct {
	phases []string
	steps  map[string]int
	begun  map[string]int
	ends   []string
	cur    string
}

func (r *recorder) Begin(phase string, steps int) {
	if r.steps == nil {
		r.steps, r.begun = map[string]int{}, map[string]int{}
	}
	r.cur = phase
	r.phases = append(r.phases, phase)
	r.begun[phase] = steps
}
func (r *recorder) Step(n int)         { r.steps[r.cur] += n }
func (r *recorder) End(summary string) { r.ends = append(r.ends, r.cur+": "+summary) }

func TestRunTiny(t *testing.T) {
	rec := &recorder{}
	cfg := tiny()
	cfg.Progress = rec
	cfg.Threads = 2
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := rep.Float
	if f == nil {
		t.Fatal("no float result")
	}
	// Chance is 10%; a model that learned anything from 480 digits in
	// one epoch is far above it.
	t.Logf("accuracy %.4f, size %d bytes, latency %.3f ms, trained in %v", f.Accuracy, f.SizeBytes, f.LatencyMS, rep.TrainTime)
	if f.Accuracy < 0.5 || f.Accuracy > 1 {
		t.Errorf("accuracy %v on %d digits", f.Accuracy, cfg.Test)
	}
	if f.LatencyMS <= 0 || rep.TrainTime <= 0 {
		t.Errorf("latency %v ms, train time %v", f.LatencyMS, rep.TrainTime)
	}
	// Dynamic quantization of the linear head: accuracy within 2 points of
	// float on this tiny test set, and a smaller saved model (int8 head).
	d := rep.Dynamic
	if d == nil {
		t.Fatal("no dynamic result")
	}
	t.Logf("dynamic: accuracy %.4f, size %d bytes, latency %.3f ms", d.Accuracy, d.SizeBytes, d.LatencyMS)
	if math.Abs(d.Accuracy-f.Accuracy) > 0.02 {
		t.Errorf("dynamic accuracy %v vs float %v", d.Accuracy, f.Accuracy)
	}
	if d.SizeBytes >= f.SizeBytes || d.LatencyMS <= 0 {
		t.Errorf("dynamic size %d (float %d), latency %v", d.SizeBytes, f.SizeBytes, d.LatencyMS)
	}
	// The size is what nn.SaveFile writes for the model's state dict.
	model, err := NewNet(cfg.Width, tensor.NewRNG(1))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := nn.SaveFile(path, nn.StateDict(model)); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.SizeBytes != st.Size() {
		t.Errorf("size %d bytes, but the saved state dict is %d", f.SizeBytes, st.Size())
	}
	var floats int64
	for _, p := range nn.StateDict(model) {
		floats += int64(p.Numel())
	}
	if f.SizeBytes < 4*floats-8*4 {
		t.Errorf("size %d bytes for about %d float32 values", f.SizeBytes, floats)
	}

	// Static and QAT: int8 models within 3 points of float on this tiny
	// test set, about a quarter of its size, and faster.
	for _, row := range []Row{{"static", rep.Static}, {"qat", rep.QAT}} {
		r := row.Result
		if r == nil {
			t.Fatalf("no %s result", row.Name)
		}
		t.Logf("%s: accuracy %.4f, size %d bytes, latency %.3f ms, speedup %.2fx", row.Name, r.Accuracy, r.SizeBytes, r.LatencyMS, r.Speedup)
		if math.Abs(r.Accuracy-f.Accuracy) > 0.03 {
			t.Errorf("%s accuracy %v vs float %v", row.Name, r.Accuracy, f.Accuracy)
		}
		if ratio := float64(r.SizeBytes) / float64(f.SizeBytes); ratio > 0.35 {
			t.Errorf("%s size %d bytes is %.2fx float", row.Name, r.SizeBytes, ratio)
		}
		if r.Speedup <= 0 || math.Abs(r.Speedup-f.LatencyMS/r.LatencyMS) > 1e-9 {
			t.Errorf("%s speedup %v for latencies %v and %v", row.Name, r.Speedup, f.LatencyMS, r.LatencyMS)
		}
	}

	// Progress: one phase per epoch, then evaluation and latency of each
	// form, each advanced by its announced number of steps.
	if want := []string{"epoch 1/1", "evaluate float", "latency float", "evaluate dynamic", "latency dynamic",
		"calibrate static (x86)", "evaluate static", "latency static", "qat epoch 1/1", "evaluate qat", "latency qat"}; strings.Join(rec.phases, ",") != strings.Join(want, ",") {
		t.Errorf("phases %q, want %q", rec.phases, want)
	}
	for _, p := range rec.phases {
		if rec.steps[p] != rec.begun[p] {
			t.Errorf("phase %s: %d steps of %d announced", p, rec.steps[p], rec.begun[p])
		}
	}
	if rec.begun["epoch 1/1"] != cfg.Train/cfg.BatchSize || rec.begun["latency float"] != cfg.LatencyRuns {
		t.Errorf("announced steps %v", rec.begun)
	}
	if len(rec.ends) != 11 || !strings.Contains(rec.ends[0], "loss") || !strings.Contains(rec.ends[1], "accuracy") {
		t.Errorf("summaries %q", rec.ends)
	}

	// The JSON file has exactly the documented fields.
	jpath := filepath.Join(t.TempDir(), "out.json")
	if err := rep.WriteJSON(jpath); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(jpath)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]map[string]float64
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || len(got["dynamic"]) != 4 || got["dynamic"]["accuracy"] != d.Accuracy || len(got["float"]) != 4 || got["float"]["accuracy"] != f.Accuracy ||
		got["float"]["size_bytes"] != float64(f.SizeBytes) || got["float"]["latency_ms"] != f.LatencyMS || got["float"]["speedup"] != 1 ||
		got["static"]["accuracy"] != rep.Static.Accuracy || got["qat"]["size_bytes"] != float64(rep.QAT.SizeBytes) {
		t.Errorf("JSON %s for %+v", b, f)
	}

	// The same seed gives the same model, so the same accuracy, whatever
	// the thread count (work is split over outputs only).
	cfg.Progress = nil
	cfg.Threads = 1
	again, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if again.Float.Accuracy != f.Accuracy {
		t.Errorf("same seed, accuracies %v with 2 threads and %v with 1", f.Accuracy, again.Float.Accuracy)
	}
	if again.Static.Accuracy != rep.Static.Accuracy || again.QAT.Accuracy != rep.QAT.Accuracy {
		t.Errorf("same seed, int8 accuracies %v/%v with 2 threads and %v/%v with 1", rep.Static.Accuracy, rep.QAT.Accuracy, again.Static.Accuracy, again.QAT.Accuracy)
	}
}

func TestRunErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, tiny()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run: error %v", err)
	}
	bad := []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Epochs = -1 }, "epochs must be at least 1"},
		{func(c *Config) { c.Train = 9800 }, "9800 training and 250 test digits do not fit"},
		{func(c *Config) { c.BatchSize = 1000 }, "batch size 1000"},
		{func(c *Config) { c.LR = -1 }, "learning rate -1"},
		{func(c *Config) { c.Threads = -2 }, "threads must be 0 or more"},
		{func(c *Config) { c.LatencyRuns = -1 }, "latency runs"},
		{func(c *Config) { c.Width = -1 }, "model width -1"},
		{func(c *Config) { c.Engine = "arm" }, `unknown engine "arm"`},
		{func(c *Config) { c.Calibration = 601 }, "calibration digits 601"},
		{func(c *Config) { c.QATEpochs = -1 }, "QAT epochs"},
	}
	for _, b := range bad {
		cfg := tiny()
		b.mod(&cfg)
		if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("error %v, want %q", err, b.want)
		}
	}
}

func TestShiftImages(t *testing.T) {
	const n, c, h, w, limit, fill = 6, 2, 5, 4, 2, float32(-9)
	x := tensor.Zeros(n, c, h, w)
	for i := range x.F32() {
		x.F32()[i] = float32(i)
	}
	out := shiftImages(x, tensor.NewRNG(5), limit, fill)
	// Replay the offsets from an identically seeded generator and check
	// every pixel against the definition.
	rng := tensor.NewRNG(5)
	moved := 0
	for i := 0; i < n; i++ {
		dy := rng.IntN(2*limit+1) - limit
		dx := rng.IntN(2*limit+1) - limit
		if dy != 0 || dx != 0 {
			moved++
		}
		for ch := 0; ch < c; ch++ {
			for yy := 0; yy < h; yy++ {
				for xx := 0; xx < w; xx++ {
					want := fill
					if sy, sx := yy-dy, xx-dx; sy >= 0 && sy < h && sx >= 0 && sx < w {
						want = float32(x.At(i, ch, sy, sx))
					}
					if got := float32(out.At(i, ch, yy, xx)); got != want {
						t.Fatalf("image %d (shift %d,%d) channel %d pixel (%d,%d): got %v want %v", i, dy, dx, ch, yy, xx, got, want)
					}
				}
			}
		}
	}
	if moved == 0 {
		t.Error("no image was shifted")
	}
}

func TestReportTable(t *testing.T) {
	rep := &Report{Float: &Result{Accuracy: 0.98765, SizeBytes: 1234, LatencyMS: 0.5}}
	var sb strings.Builder
	if err := rep.WriteTable(&sb); err != nil {
		t.Fatal(err)
	}
	if got := sb.String(); !strings.Contains(got, "float") || !strings.Contains(got, "98.77%") || !strings.Contains(got, "1234") || !strings.Contains(got, "0.500") {
		t.Errorf("table:\n%s", got)
	}
	if err := rep.WriteJSON(filepath.Join(t.TempDir(), "missing-dir", "x.json")); err == nil || !strings.Contains(err.Error(), "missing-dir") {
		t.Errorf("writing into a missing directory: error %v", err)
	}
}
