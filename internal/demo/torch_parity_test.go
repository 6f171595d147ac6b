package demo

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/data"
	"github.com/quanta-go/quanta/eager"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/tensor"
)

// update regenerates testdata/torch_eager/float.safetensors: a demo model
// trained briefly in Go, with the calibration and evaluation digits. Then
// run `/usr/bin/python3 scripts/golden_eager.py` to quantize it with
// PyTorch 1.13 and write golden.safetensors and golden.json.
var update = flag.Bool("update", false, "regenerate testdata/torch_eager/float.safetensors")

const (
	parityDir   = "testdata/torch_eager"
	parityWidth = 16
	parityCalib = 256 // the demo's calibration set: 4 batches of 64
	parityEval  = 16
)

// writeParityFloat trains the demo model for one epoch on 2,000 digits and
// saves it with the raw pixels of the calibration and evaluation digits.
func writeParityFloat(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Epochs, cfg.Train, cfg.Test = 1, 2000, 100
	cfg = cfg.withDefaults()
	images, labels, err := data.MNIST(data.MNISTNormalize)
	must(t, err)
	all, err := data.NewTensorDataset(images, labels)
	must(t, err)
	trainSet, err := data.Subset(all, data.Range(0, cfg.Train))
	must(t, err)
	model, err := NewNet(parityWidth, tensor.NewRNG(cfg.Seed))
	must(t, err)
	must(t, train(context.Background(), model, trainSet, cfg, noProgress{}))
	sd := map[string]*tensor.Tensor{}
	for k, v := range nn.StateDict(model) {
		sd["model."+k] = v
	}
	raw, _, err := data.MNIST(data.Normalize{})
	must(t, err)
	pix := func(from, n int) *tensor.Tensor {
		u := make([]uint8, n*784)
		for i, v := range raw.F32()[from*784 : (from+n)*784] {
			u[i] = uint8(v*255 + 0.5)
		}
		return tensor.FromUint8(u, n, 784)
	}
	sd["calib"] = pix(0, parityCalib)
	sd["eval"] = pix(data.MNISTSize-parityEval, parityEval)
	must(t, nn.SaveFile(filepath.Join(parityDir, "float.safetensors"), sd))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// normalized turns raw pixels [n, 784] into the model's input
// [n, 1, 28, 28] with the demo's normalization.
func normalized(u *tensor.Tensor) *tensor.Tensor {
	p := u.U8()
	x := make([]float32, len(p))
	for i, v := range p {
		f := float32(v) / 255
		x[i] = float32(f-data.MNISTNormalize.Mean) / data.MNISTNormalize.Std
	}
	return tensor.FromFloat32(x, u.Dim(0), 1, 28, 28)
}

// goldenQParams is what scripts/golden_eager.py records of PyTorch's
// quantized model: the output qparams of each quantized module and the
// weight qparams of each weighted one.
type goldenQParams struct {
	Output map[string]struct {
		Scale     float32 `json:"scale"`
		ZeroPoint int32   `json:"zero_point"`
	} `json:"output"`
	Weight map[string]struct {
		Scale     []float32 `json:"scale"`
		ZeroPoint []int32   `json:"zero_point"`
	} `json:"weight"`
}

// TestTorchEagerParity quantizes the demo model as PyTorch 1.13's eager
// mode does with the qnnpack engine (fuse, default qconfig, prepare, the
// same four calibration batches, convert) and compares with PyTorch's
// result: every observer's qparams and weight qparams equal, and the int8
// codes of every quantized layer's output on 16 digits at least 99%
// identical, the rest within one step.
func TestTorchEagerParity(t *testing.T) {
	if *update {
		writeParityFloat(t)
	}
	in, err := nn.LoadFile(filepath.Join(parityDir, "float.safetensors"))
	must(t, err)
	model, err := NewNet(parityWidth, tensor.NewRNG(0))
	must(t, err)
	sd := map[string]*tensor.Tensor{}
	for k, v := range in {
		if name, ok := cutPrefix(k, "model."); ok {
			sd[name] = v
		}
	}
	must(t, nn.LoadStateDict(model, sd))

	nn.Eval(model)
	must(t, eager.FuseModules(model, fuseGroups))
	qc, err := quant.DefaultQConfig("qnnpack")
	must(t, err)
	eager.SetQConfig(model, qc)
	must(t, eager.Prepare(model, eager.Options{}))
	calib := normalized(in["calib"])
	autograd.NoGrad(func() {
		for b := 0; b < parityCalib; b += 64 {
			model.Forward(ops.Slice(calib, 0, b, b+64, 1))
		}
	})
	must(t, eager.Convert(model, eager.Options{}))

	raw, err := os.ReadFile(filepath.Join(parityDir, "golden.json"))
	must(t, err)
	var gq goldenQParams
	must(t, json.Unmarshal(raw, &gq))
	golden, err := nn.LoadFile(filepath.Join(parityDir, "golden.safetensors"))
	must(t, err)

	// Qparams: observers and weights.
	if len(gq.Output) == 0 || len(gq.Weight) == 0 {
		t.Fatal("golden.json holds no qparams")
	}
	// The observers see float activations, and float convolutions sum in
	// another order than PyTorch's (oneDNN), so an observed range, and the
	// scale derived from it, may differ in the last bits; zero points must
	// be equal. (Given identical inputs the observers agree bit for bit:
	// quant/observer's golden tests.)
	bitEqual, maxRel := 0, 0.0
	for _, path := range sortedKeys(gq.Output) {
		want := gq.Output[path]
		m, err := nn.Get(model, path)
		must(t, err)
		s, z := outQ(t, m)
		rel := math.Abs(float64(s)-float64(want.Scale)) / float64(want.Scale)
		if z != want.ZeroPoint || rel > 2e-6 {
			t.Errorf("%s (%s): output qparams %v/%d, PyTorch %v/%d", path, nn.TypeName(m), s, z, want.Scale, want.ZeroPoint)
		}
		if s == want.Scale {
			bitEqual++
		}
		maxRel = max(maxRel, rel)
	}
	t.Logf("output qparams: %d of %d scales bit-equal to PyTorch's, the rest within %.2g (relative); all zero points equal", bitEqual, len(gq.Output), maxRel)
	for _, path := range sortedKeys(gq.Weight) {
		want := gq.Weight[path]
		m, err := nn.Get(model, path)
		must(t, err)
		w, ok := nn.StateDict(m)["weight"]
		if !ok {
			t.Fatalf("%s has no weight", path)
		}
		q := w.QParams()
		if fmt.Sprint(q.Scale) != fmt.Sprint(want.Scale) || fmt.Sprint(q.ZeroPoint) != fmt.Sprint(want.ZeroPoint) {
			t.Errorf("%s: weight qparams %v/%v, PyTorch %v/%v", path, q.Scale, q.ZeroPoint, want.Scale, want.ZeroPoint)
		}
		// The int8 weights themselves.
		gw := golden["weight."+path]
		if gw == nil {
			t.Fatalf("golden lacks weight.%s", path)
		}
		diff := 0
		for i, v := range w.I8() {
			if v != gw.I8()[i] {
				diff++
			}
		}
		if diff != 0 {
			t.Errorf("%s: %d of %d int8 weights differ from PyTorch's", path, diff, len(w.I8()))
		}
	}

	// Int8 outputs of every quantized layer on the evaluation digits.
	got := map[string]*tensor.Tensor{}
	for _, nm := range nn.NamedModules(model) {
		name := nm.Name
		if golden["out."+name] == nil {
			continue
		}
		nm.Module.ModuleBase().RegisterForwardHook(func(_ nn.Module, _, out []*tensor.Tensor) []*tensor.Tensor {
			got[name] = out[0]
			return nil
		})
	}
	var logits *tensor.Tensor
	autograd.NoGrad(func() { logits = model.Forward(normalized(in["eval"])) })
	total, exact := 0, 0
	for _, k := range sortedKeys(golden) {
		name, ok := cutPrefix(k, "out.")
		if !ok {
			continue
		}
		g := got[name]
		if g == nil {
			t.Fatalf("no output captured for %s", name)
		}
		w := golden[k]
		if g.Numel() != w.Numel() {
			t.Fatalf("%s: %d outputs, PyTorch %d", name, g.Numel(), w.Numel())
		}
		codes := ops.IntRepr(g).U8()
		e := 0
		for i, v := range codes {
			d := int(v) - int(w.U8()[i])
			switch {
			case d == 0:
				e++
			case d < -1 || d > 1:
				t.Errorf("%s: code %d is %d, PyTorch %d", name, i, v, w.U8()[i])
			}
		}
		t.Logf("%-14s %6d of %6d int8 codes equal PyTorch's", name, e, len(codes))
		total += len(codes)
		exact += e
	}
	if total == 0 {
		t.Fatal("no outputs compared")
	}
	t.Logf("all layers: %d of %d (%.3f%%) identical", exact, total, 100*float64(exact)/float64(total))
	if float64(exact) < 0.99*float64(total) {
		t.Errorf("%d of %d int8 codes identical, want at least 99%%", exact, total)
	}
	if wl := golden["logits"]; wl != nil {
		if d := tensor.MaxAbsDiff(logits, wl); d > 0.5 {
			t.Errorf("logits differ from PyTorch's by %v", d)
		}
	}
}

func outQ(t *testing.T, m nn.Module) (float32, int32) {
	t.Helper()
	type outQParams interface{ OutputQParams() (float32, int32) }
	if o, ok := m.(outQParams); ok {
		return o.OutputQParams()
	}
	sd := nn.StateDict(m)
	s, z := sd["scale"], sd["zero_point"]
	if s == nil || z == nil {
		t.Fatalf("%s has no output qparams", nn.TypeName(m))
	}
	return s.F32()[0], int32(z.I64()[0])
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
