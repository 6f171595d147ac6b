package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/npy"
	"github.com/quanta-go/quanta/onnx"
	"github.com/quanta-go/quanta/tensor"
)

// A small conformance case: Conv with strides and padding, inputs x and W.
const convCase = "../../onnx/testdata/node/test_conv_with_strides_padding"

func TestRunCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	model := filepath.Join(convCase, "model.onnx")
	x := filepath.Join(convCase, "test_data_set_0", "input_0.pb")
	w, err := onnx.ReadTensor(filepath.Join(convCase, "test_data_set_0", "input_1.pb"))
	if err != nil {
		t.Fatal(err)
	}
	wnpy := filepath.Join(dir, "w.npy")
	if err := npy.WriteFile(wnpy, w); err != nil {
		t.Fatal(err)
	}
	m, err := onnx.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	xname, wname, yname := m.Graph.Inputs[0].Name, m.Graph.Inputs[1].Name, m.Graph.Outputs[0].Name
	// Flags after the model, as the usage shows; one input as .pb, one as .npy.
	code, stdout, stderr := runArgs("run", model, "-i", xname+"="+x, "-i", wname+"="+wnpy, "-o", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got, err := npy.ReadFile(filepath.Join(out, outputFile(yname)))
	if err != nil {
		t.Fatal(err)
	}
	want, err := onnx.ReadTensor(filepath.Join(convCase, "test_data_set_0", "output_0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	if !tensor.SameShape(got.Shape(), want.Shape()) || tensor.MaxAbsDiff(got, want) > 1e-5 {
		t.Errorf("output %v differs from the ONNX reference %v by %v", got.Shape(), want.Shape(), tensor.MaxAbsDiff(got, want))
	}
	if !strings.Contains(stdout, yname) {
		t.Errorf("stdout %q does not list the output", stdout)
	}

	// The same inputs from an .npz.
	xt, _ := onnx.ReadTensor(x)
	npz := filepath.Join(dir, "in.npz")
	if err := npy.WriteNPZ(npz, map[string]*tensor.Tensor{xname: xt, wname: w}, nil); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runArgs("run", "--inputs", npz, "-o", out, model); code != 0 {
		t.Fatalf("npz inputs: exit %d: %s", code, stderr)
	}

	bad := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"run", model, "-o", out}, 1, `input "` + xname + `" (float32[1,1,7,5]) is missing`},
		{[]string{"run", model, "-i", "x"}, 2, "-o OUTDIR is required"},
		{[]string{"run", model, "-i", "novalue", "-o", out}, 2, `-i "novalue": want NAME=FILE.npy or NAME=FILE.pb`},
		{[]string{"run", filepath.Join(dir, "missing.onnx"), "-o", out}, 1, "missing.onnx"},
		{[]string{"run", model, "-i", xname + "=" + filepath.Join(dir, "x.txt"), "-o", out}, 2, "must end in .npy or .pb"},
		{[]string{"run", model, "-i", "nosuch=" + x, "-o", out}, 1, `no input "nosuch"`},
	}
	for _, b := range bad {
		code, _, stderr := runArgs(b.args...)
		if code != b.code || !strings.Contains(stderr, b.err) {
			t.Errorf("quanta %q: exit %d, stderr %q; want exit %d and %q", b.args, code, stderr, b.code, b.err)
		}
	}
}

func TestInspectAndBench(t *testing.T) {
	model := filepath.Join(convCase, "model.onnx")
	code, stdout, stderr := runArgs("inspect", model)
	if code != 0 {
		t.Fatalf("inspect: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"inputs", "float32[1,1,7,5]", "outputs", "operators  1 nodes, 1 kinds", "Conv", "parameters 0 (0 B)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, stdout)
		}
	}
	jpath := filepath.Join(t.TempDir(), "bench.json")
	code, stdout, stderr = runArgs("bench", model, "--iters", "7", "--warmup", "1", "--warmup-time", "0s", "--threads", "1", "--json", jpath)
	if code != 0 {
		t.Fatalf("bench: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "p50") || !strings.Contains(stdout, "runs/s") {
		t.Errorf("bench output %q", stdout)
	}
	b, err := os.ReadFile(jpath)
	if err != nil {
		t.Fatal(err)
	}
	var r map[string]float64
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if len(r) != 7 || r["iters"] != 7 || r["threads"] != 1 || r["warmup"] != 1 || !(r["p50_ms"] > 0) || r["p50_ms"] > r["p90_ms"] || r["p90_ms"] > r["p99_ms"] || !(r["mean_ms"] > 0) {
		t.Errorf("bench JSON %s", b)
	}
	if !strings.Contains(stdout, "after 1 warm-up runs") {
		t.Errorf("bench output %q does not give the 1 warm-up run", stdout)
	}
	// The warm-up time asks for more runs than --warmup: at least 30 ms
	// of them, so at least one with --warmup 0.
	code, stdout, stderr = runArgs("bench", model, "--iters", "2", "--warmup", "0", "--warmup-time", "30ms", "--threads", "1", "--json", jpath)
	if code != 0 {
		t.Fatalf("bench --warmup-time: exit %d: %s", code, stderr)
	}
	if b, err = os.ReadFile(jpath); err != nil {
		t.Fatal(err)
	}
	r = nil
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r["warmup"] < 1 || !strings.Contains(stdout, fmt.Sprintf("after %d warm-up runs", int(r["warmup"]))) {
		t.Errorf("--warmup 0 --warmup-time 30ms: JSON %s, output %q", b, stdout)
	}
	if code, _, stderr := runArgs("bench", model, "--warmup-time", "-1s"); code != 2 || !strings.Contains(stderr, "--warmup-time") {
		t.Errorf("--warmup-time -1s: exit %d, %q", code, stderr)
	}
	if code, _, stderr := runArgs("bench", model, "--iters", "0"); code != 2 || !strings.Contains(stderr, "--iters must be at least 1") {
		t.Errorf("--iters 0: exit %d, %q", code, stderr)
	}
}

func TestSummarize(t *testing.T) {
	times := make([]float64, 100)
	for i := range times {
		times[i] = float64(100 - i) // 100 .. 1, unsorted
	}
	r := summarize(times)
	if r.P50MS != 50 || r.P90MS != 90 || r.P99MS != 99 || r.MeanMS != 50.5 || r.Iters != 100 {
		t.Errorf("summary %+v", r)
	}
}
