package fx

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/npy"
	"github.com/quanta-go/quanta/onnx"
	"github.com/quanta-go/quanta/tensor"
)

var update = flag.Bool("update", false, "rewrite fx/testdata's traced models and inputs (then run scripts/ort/run_traced.js)")

// ortCase is a traced model whose export ONNX Runtime ran.
type ortCase struct {
	name string
	fn   func(in []*tensor.Tensor) []*tensor.Tensor
	root nn.Module
	ins  []*tensor.Tensor
}

func ortCases(t *testing.T) []ortCase {
	net, x := newDemo(t)
	rng := tensor.NewRNG(9)
	l := must[*nn.TransformerEncoderLayer](t)(nn.NewTransformerEncoderLayer(16, 4, nn.TransformerEncoderLayerOptions{
		DimFeedforward: 24, Activation: "gelu", BatchFirst: true, RNG: rng}))
	nn.AssignPaths(l)
	nn.Eval(l)
	zr := tensor.NewRNG(21)
	ids := tensor.FromInt64([]int64{1, 9, 0, 4, 4, 2}, 2, 3)
	bags := tensor.FromInt64([]int64{0, 1, 2, 3, 6, 6, 5, 4, 1, 1, 1, 1}, 3, 4)
	return []ortCase{
		{"demo_cnn", layerFn(net), net, []*tensor.Tensor{x}},
		{"transformer_layer", layerFn(l), l, []*tensor.Tensor{tensor.Randn(rng, 2, 5, 16)}},
		{"zoo_nn", nnZoo(zr), nil, []*tensor.Tensor{tensor.Randn(zr, 2, 4, 9, 9), tensor.Randn(zr, 2, 4, 10), tensor.Randn(zr, 4, 9, 9)}},
		{"zoo_elementwise", elementwiseZoo(zr), nil, []*tensor.Tensor{tensor.Randn(zr, 3, 5)}},
		{"zoo_shape", shapeZoo(zr), nil, []*tensor.Tensor{tensor.Randn(zr, 2, 3, 4, 5), ids, bags}},
	}
}

// TestORTReference checks traced models against ONNX Runtime 1.30: the
// exported files in testdata must equal what tracing writes today, and the
// traced graphs run by graph/exec must match ONNX Runtime's outputs
// (scripts/ort/run_traced.js) within 1e-5.
func TestORTReference(t *testing.T) {
	for _, c := range ortCases(t) {
		t.Run(c.name, func(t *testing.T) {
			m, err := TraceFunc(c.fn, c.root, c.ins)
			if err != nil {
				t.Fatal(err)
			}
			data, err := onnx.Encode(m)
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join("testdata", c.name+".onnx")
			inFile := filepath.Join("testdata", c.name+"_inputs.npz")
			if *update {
				writeORTCase(t, m, data, file, inFile, c.ins)
			}
			saved, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update, then scripts/ort/run_traced.js)", err)
			}
			if !bytes.Equal(saved, data) {
				t.Fatalf("%s differs from today's trace (%d vs %d bytes): rerun with -update and scripts/ort/run_traced.js", file, len(saved), len(data))
			}
			ins, _, err := npy.ReadNPZ(inFile)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range m.Graph.Inputs {
				if !bytes.Equal(rawBytes(ins[v.Name]), rawBytes(c.ins[i])) {
					t.Fatalf("%s: input %s differs from the example", inFile, v.Name)
				}
			}
			ref, _, err := npy.ReadNPZ(filepath.Join("testdata", c.name+"_ort.npz"))
			if err != nil {
				t.Fatal(err)
			}
			got := runGraph(t, m, c.ins...)
			want := forward(func() []*tensor.Tensor { return c.fn(c.ins) })
			worst := 0.0
			for i, v := range m.Graph.Outputs {
				r := ref[v.Name]
				if r == nil {
					t.Fatalf("no ONNX Runtime output %s", v.Name)
				}
				assertCloseQuiet(t, c.name+" "+v.Name+" exec vs ORT", got[i], r, 1e-5, &worst)
				assertCloseQuiet(t, c.name+" "+v.Name+" Go vs ORT", want[i], r, 1e-5, &worst)
			}
			t.Logf("%d outputs: largest relative difference to ONNX Runtime %.3g", len(m.Graph.Outputs), worst)
		})
	}
}

// assertCloseQuiet is assertClose without logging, tracking the worst
// difference.
func assertCloseQuiet(t *testing.T, what string, got, want *tensor.Tensor, tol float64, worst *float64) {
	t.Helper()
	if len(got.Shape()) != len(want.Shape()) || got.Numel() != want.Numel() {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape(), want.Shape())
	}
	g, w := got.F32(), want.F32()
	for i := range w {
		d := math.Abs(float64(g[i])-float64(w[i])) / math.Max(1, math.Abs(float64(w[i])))
		if !(d <= tol) {
			t.Fatalf("%s: element %d is %v, want %v", what, i, g[i], w[i])
		}
		*worst = max(*worst, d)
	}
}

// rawBytes returns a tensor's values as .npy would store them.
func rawBytes(x *tensor.Tensor) []byte {
	var b bytes.Buffer
	if x == nil || npy.Write(&b, x) != nil {
		return nil
	}
	return b.Bytes()
}

func writeORTCase(t *testing.T, m *graph.Model, data []byte, file, inFile string, ins []*tensor.Tensor) {
	t.Helper()
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	feed := map[string]*tensor.Tensor{}
	var order []string
	for i, v := range m.Graph.Inputs {
		feed[v.Name] = ins[i]
		order = append(order, v.Name)
	}
	if err := npy.WriteNPZCompressed(inFile, feed, order); err != nil {
		t.Fatal(err)
	}
}
