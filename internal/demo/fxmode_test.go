package demo

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestGraphModeTiny runs the demo with its graph-mode rows on the tiny
// configuration: graph-mode static and QAT accuracies are close to eager
// mode's on the 250 test digits, the QDQ model is smaller than the float
// state dict, and the JSON holds fx_static and fx_qat.
func TestGraphModeTiny(t *testing.T) {
	rec := &recorder{}
	cfg := tiny()
	cfg.Progress = rec
	cfg.Threads = 2
	cfg.GraphMode = true
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.FXStatic == nil || rep.FXQAT == nil {
		t.Fatal("no graph-mode rows")
	}
	for _, c := range []struct {
		name        string
		eager, fxr  *Result
		maxDiffRate float64
	}{
		{"static", rep.Static, rep.FXStatic, 0.02},
		{"qat", rep.QAT, rep.FXQAT, 0.03},
	} {
		t.Logf("%s: eager accuracy %.4f, graph mode %.4f (float %.4f); graph-mode size %d bytes, latency %.3f ms",
			c.name, c.eager.Accuracy, c.fxr.Accuracy, rep.Float.Accuracy, c.fxr.SizeBytes, c.fxr.LatencyMS)
		if math.Abs(c.eager.Accuracy-c.fxr.Accuracy) > c.maxDiffRate {
			t.Errorf("%s: graph-mode accuracy %v, eager %v", c.name, c.fxr.Accuracy, c.eager.Accuracy)
		}
		if c.fxr.SizeBytes <= 0 || c.fxr.SizeBytes >= rep.Float.SizeBytes || c.fxr.LatencyMS <= 0 || c.fxr.Speedup <= 0 {
			t.Errorf("%s: graph-mode size %d (float %d), latency %v, speedup %v", c.name, c.fxr.SizeBytes, rep.Float.SizeBytes, c.fxr.LatencyMS, c.fxr.Speedup)
		}
	}
	for _, p := range []string{"calibrate fx_static (x86)", "evaluate fx_static", "fx_qat epoch 1/1", "evaluate fx_qat", "latency fx_qat"} {
		if !slices.Contains(rec.phases, p) {
			t.Errorf("no phase %q in %q", p, rec.phases)
		}
	}
	var names []string
	for _, r := range rep.Rows() {
		names = append(names, r.Name)
	}
	if strings.Join(names, ",") != "float,dynamic,static,qat,fx_static,fx_qat" {
		t.Errorf("rows %v", names)
	}
	path := filepath.Join(t.TempDir(), "r.json")
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]map[string]float64
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got["fx_static"]["accuracy"] != rep.FXStatic.Accuracy || got["fx_qat"]["size_bytes"] != float64(rep.FXQAT.SizeBytes) {
		t.Errorf("JSON %v", got)
	}
	var sb strings.Builder
	if err := rep.WriteTable(&sb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sb.String(), "fx_static") || !strings.Contains(sb.String(), "fx_qat") {
		t.Errorf("table:\n%s", sb.String())
	}
}
