package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/npy"
	"github.com/quanta-go/quanta/onnx"
	"github.com/quanta-go/quanta/tensor"
)

// compareModels writes y = Conv(x, 1.1) (1x1) and its QDQ version (x with
// scale 0.5, the weight as int8 2 with scale 0.5) to dir.
func compareModels(t *testing.T, dir string) (floatPath, quantPath string) {
	t.Helper()
	xType := graph.Type{Elem: graph.Float, HasShape: true, Shape: []graph.Dim{{Size: 1}, {Size: 1}, {Size: 1}, {Size: 4}}}
	fg := graph.New("float")
	fx := fg.AddInput("x", xType)
	w := fg.AddInitializer("W", tensor.FromFloat32([]float32{1.1}, 1, 1, 1, 1))
	fg.Outputs = fg.AddNode("/features/conv/Conv", "Conv", []*graph.Value{fx, w}, []string{"y"}, nil).Outputs

	qg := graph.New("quantized")
	qx := qg.AddInput("x", xType)
	s := qg.AddInitializer("x_scale", tensor.Scalar(0.5))
	z := qg.AddInitializer("x_zero_point", tensor.FromUint8([]uint8{0}).Reshape())
	xq := qg.AddNode("x_QuantizeLinear", "QuantizeLinear", []*graph.Value{qx, s, z}, []string{"x_quantized"}, nil).Outputs[0]
	xd := qg.AddNode("x_DequantizeLinear", "DequantizeLinear", []*graph.Value{xq, s, z}, []string{"x_dequantized"}, nil).Outputs[0]
	wq := qg.AddInitializer("W_quantized", tensor.FromInt8([]int8{2}, 1, 1, 1, 1))
	ws := qg.AddInitializer("W_scale", tensor.Scalar(0.5))
	wz := qg.AddInitializer("W_zero_point", tensor.FromInt8([]int8{0}).Reshape())
	wd := qg.AddNode("W_DequantizeLinear", "DequantizeLinear", []*graph.Value{wq, ws, wz}, []string{"W_dequantized"}, nil).Outputs[0]
	qg.Outputs = qg.AddNode("/features/conv/Conv", "Conv", []*graph.Value{xd, wd}, []string{"y"}, nil).Outputs

	floatPath, quantPath = filepath.Join(dir, "float.onnx"), filepath.Join(dir, "quant.onnx")
	for path, g := range map[string]*graph.Graph{floatPath: fg, quantPath: qg} {
		if err := onnx.Save(path, &graph.Model{Graph: g, Opsets: map[string]int64{"": 13}, IRVersion: 8}); err != nil {
			t.Fatal(err)
		}
	}
	return floatPath, quantPath
}

// TestCompareCommand runs `quanta compare` on two feeds of the same input
// (one batched array): the statistics are the hand-computed ones of one
// feed (see graph/numeric's example): input SQNR 10*log10(6.01/0.06) =
// 20.01 dB, weight 10*log10(1.21/0.01) = 20.83 dB, output
// 10*log10(7.2721/0.2021) = 15.56 dB.
func TestCompareCommand(t *testing.T) {
	dir := t.TempDir()
	fp, qp := compareModels(t, dir)
	x := []float32{0.1, 0.4, 1.0, 2.2}
	npz := filepath.Join(dir, "in.npz")
	if err := npy.WriteNPZ(npz, map[string]*tensor.Tensor{"x": tensor.FromFloat32(append(append([]float32(nil), x...), x...), 2, 1, 1, 1, 4)}, nil); err != nil {
		t.Fatal(err)
	}
	html, js := filepath.Join(dir, "report.html"), filepath.Join(dir, "report.json")
	code, stdout, stderr := runArgs("compare", fp, qp, "--inputs", npz, "--html", html, "--json", js, "--top", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{fp + " vs " + qp + ": 2 feeds, 1 layers compared", "/features/conv/Conv", "features.conv", "15.56", "20.83",
		"x            20.01", "layers that hurt most", "1     /features/conv/Conv", "reference", "int8"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "compare") || !strings.Contains(stderr, "wrote "+html) || !strings.Contains(stderr, "wrote "+js) {
		t.Errorf("stderr %q", stderr)
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), "<svg") || !strings.Contains(string(page), "/features/conv/Conv") || !strings.HasSuffix(string(page), "</html>\n") {
		t.Errorf("HTML report:\n%s", page)
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Feeds  int `json:"feeds"`
		Layers []struct {
			Node       string `json:"node"`
			Activation struct {
				SQNR  float64 `json:"sqnr_db"`
				Count int     `json:"count"`
			} `json:"activation"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if want := 10 * math.Log10(7.2721/0.2021); rep.Feeds != 2 || len(rep.Layers) != 1 || math.Abs(rep.Layers[0].Activation.SQNR-want) > 1e-4 || rep.Layers[0].Activation.Count != 8 {
		t.Errorf("JSON %s, want SQNR %.5f over 8 elements", b, want)
	}
	// Only the inputs and the written reports are in dir: no temporary
	// files are left behind.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 5 {
		var ns []string
		for _, e := range ents {
			ns = append(ns, e.Name())
		}
		t.Errorf("files in the output directory: %v", ns)
	}

	// An array of the input's own rank is split into feeds of --batch
	// rows (1 by default), as quantize splits --calib.
	rows := filepath.Join(t.TempDir(), "rows.npz")
	if err := npy.WriteNPZ(rows, map[string]*tensor.Tensor{"x": tensor.FromFloat32(append(append([]float32(nil), x...), x...), 2, 1, 1, 4)}, nil); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := runArgs("compare", fp, qp, "--inputs", rows); code != 0 || !strings.Contains(stdout, ": 2 feeds, 1 layers compared") || !strings.Contains(stdout, "15.56") {
		t.Errorf("rows split by --batch 1: exit %d\n%s%s", code, stdout, stderr)
	}

	other := filepath.Join(dir, "other.npz")
	if err := npy.WriteNPZ(other, map[string]*tensor.Tensor{"z": tensor.Zeros(1, 1, 1, 4)}, nil); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.npz")
	if err := npy.WriteNPZ(missing, map[string]*tensor.Tensor{}, nil); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"compare", fp, qp}, 2, "--inputs FILE.npz is required"},
		{[]string{"compare", fp, "--inputs", npz}, 2, "want FLOAT.onnx and QUANT.onnx"},
		{[]string{"compare", fp, qp, "--inputs", npz, "--html", qp}, 2, "refusing to overwrite the input " + qp},
		{[]string{"compare", fp, qp, "--inputs", missing}, 1, `--inputs ` + missing + `: input "x" (float32[1,1,1,4]) is missing`},
		{[]string{"compare", fp, qp, "--inputs", other}, 1, `the model has no input "z"`},
		{[]string{"compare", fp, filepath.Join(dir, "nope.onnx"), "--inputs", npz}, 1, "nope.onnx"},
	}
	for _, c := range bad {
		code, _, stderr := runArgs(c.args...)
		if code != c.code || !strings.Contains(stderr, c.err) {
			t.Errorf("quanta %q: exit %d, stderr %q; want exit %d and %q", c.args, code, stderr, c.code, c.err)
		}
	}
}
