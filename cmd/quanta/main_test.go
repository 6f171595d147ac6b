package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/internal/demo"
)

func runArgs(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	e := &env{ctx: context.Background(), stdout: &out, stderr: &errb}
	code = run(e, args)
	return code, out.String(), errb.String()
}

func TestUsage(t *testing.T) {
	cases := []struct {
		args       []string
		code       int
		out, errIn string
	}{
		{nil, 2, "", "no command given"},
		{[]string{"help"}, 0, "Commands:\n  demo", ""},
		{[]string{"--help"}, 0, "Usage:\n  quanta <command>", ""},
		{[]string{"help", "demo"}, 0, "-epochs", ""},
		{[]string{"help", "frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{[]string{"frobnicate"}, 2, "", `quanta: unknown command "frobnicate"`},
		{[]string{"demo", "--bogus"}, 2, "", "flag provided but not defined: -bogus"},
		{[]string{"demo", "--epochs", "0"}, 2, "", "--epochs must be at least 1, got 0"},
		{[]string{"demo", "--threads", "-1"}, 2, "", "--threads must be 0 or more"},
		{[]string{"demo", "--engine", "arm"}, 2, "", `--engine: quant: unknown engine "arm"`},
		{[]string{"demo", "extra"}, 2, "", `unexpected arguments ["extra"]`},
		{[]string{"demo", "-h"}, 0, "", "Usage: quanta demo"},
		{[]string{"demo", "--json", "/nonexistent-dir/x.json"}, 1, "", "quanta: --json /nonexistent-dir/x.json: directory /nonexistent-dir does not exist"},
	}
	for _, c := range cases {
		code, out, errs := runArgs(c.args...)
		if code != c.code || !strings.Contains(out, c.out) || !strings.Contains(errs, c.errIn) {
			t.Errorf("quanta %q: exit %d, stdout %q, stderr %q; want exit %d, stdout containing %q, stderr containing %q",
				c.args, code, out, errs, c.code, c.out, c.errIn)
		}
		if c.code == 2 && c.args != nil && !strings.Contains(errs, "Usage") {
			t.Errorf("quanta %q: usage error without usage: %q", c.args, errs)
		}
		if c.code == 1 && strings.Contains(errs, "Usage") {
			t.Errorf("quanta %q: a failure that is not a usage error printed the usage: %q", c.args, errs)
		}
	}
}

func TestLineProgress(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, false)
	p.Begin("epoch 1/2", 10)
	for i := 0; i < 10; i++ {
		p.Step(1)
	}
	p.End("loss 0.5")
	if got, want := b.String(), "epoch 1/2    loss 0.5\n"; got != want {
		t.Errorf("non-terminal progress wrote %q, want %q", got, want)
	}
}

func TestBarProgress(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, true)
	p.Begin("evaluate", 4)
	for i := 0; i < 4; i++ {
		p.Step(1)
	}
	p.End("accuracy 99%")
	if got := b.String(); !strings.HasSuffix(got, "evaluate     accuracy 99%\n") {
		t.Errorf("terminal progress ends %q", got)
	}
}

// TestRunDemoWritesJSON runs the demo end to end on a few hundred digits
// through the same path as `quanta demo --json FILE`.
func TestRunDemoWritesJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "demo.json")
	cfg := demo.Config{Epochs: 1, Seed: 3, Train: 320, Test: 100, BatchSize: 32, LatencyRuns: 5}
	var out, errb bytes.Buffer
	e := &env{ctx: context.Background(), stdout: &out, stderr: &errb}
	cfg.Progress = newProgress(&errb, false)
	if err := runDemo(e, cfg, path); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"trained in", "accuracy", "float", "dynamic", "static", "qat", "speedup"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, out.String())
		}
	}
	for _, want := range []string{"epoch 1/1", "evaluate", "latency", "calibrate static", "qat epoch 1/1", "wrote " + path} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb.String())
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]map[string]float64
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, b)
	}
	f := got["float"]
	if len(got) != 4 || got["dynamic"] == nil || got["static"] == nil || got["qat"] == nil || f == nil || f["accuracy"] <= 0 || f["accuracy"] > 1 || f["size_bytes"] <= 0 || f["latency_ms"] <= 0 {
		t.Errorf("JSON %s", b)
	}
}
