package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/npy"
	"github.com/quanta-go/quanta/onnx"
	"github.com/quanta-go/quanta/tensor"
)

// writeCNN writes a Conv-Relu-Flatten-Gemm model with a 1x3x8x8 input.
func writeCNN(t *testing.T, dir string) string {
	r := rand.New(rand.NewSource(1))
	rnd := func(shape ...int) *tensor.Tensor {
		x := tensor.Zeros(shape...)
		for i := range x.F32() {
			x.F32()[i] = float32(r.NormFloat64()) * 0.3
		}
		return x
	}
	g := graph.New("net")
	x := g.AddInput("x", graph.TensorType(graph.Float, 1, 3, 8, 8))
	conv := g.AddNode("conv", "Conv", []*graph.Value{x, g.AddInitializer("w", rnd(4, 3, 3, 3)), g.AddInitializer("b", rnd(4))}, []string{"c"}, nil)
	relu := g.AddNode("relu", "Relu", conv.Outputs, []string{"r"}, nil)
	flat := g.AddNode("flat", "Flatten", relu.Outputs, []string{"f"}, nil)
	fc := g.AddNode("fc", "Gemm", []*graph.Value{flat.Outputs[0], g.AddInitializer("fw", rnd(2, 144))}, []string{"y"}, map[string]*graph.Attr{"transB": graph.AInt(1)})
	g.Outputs = fc.Outputs
	g.Outputs[0].Type = graph.TensorType(graph.Float, 1, 2)
	path := filepath.Join(dir, "net.onnx")
	if err := onnx.Save(path, &graph.Model{Graph: g, Opsets: map[string]int64{"": 17}, IRVersion: 8}); err != nil {
		t.Fatal(err)
	}
	return path
}

// nodeInput loads the model at path and returns input i of its node name.
func nodeInput(t *testing.T, path, name string, i int) *graph.Value {
	t.Helper()
	m, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range m.Graph.Nodes {
		if n.Name == name {
			return n.Inputs[i]
		}
	}
	t.Fatalf("%s has no node %s", path, name)
	return nil
}

func TestQuantizeCommand(t *testing.T) {
	dir := t.TempDir()
	model := writeCNN(t, dir)
	calib := filepath.Join(dir, "calib.npz")
	// Rank 4 = the input's own rank: split into feeds of --calib-batch rows.
	x := tensor.Zeros(6, 3, 8, 8)
	for i := range x.F32() {
		x.F32()[i] = float32(i%17) / 17
	}
	if err := npy.WriteNPZ(calib, map[string]*tensor.Tensor{"x": x}, nil); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "net_int8.onnx")
	code, stdout, stderr := runArgs("quantize", model, "-o", out, "--calib", calib, "--engine", "x86", "--method", "minmax")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "6 feeds") || !strings.Contains(stdout, "Conv2d+ReLU") || !strings.Contains(stdout, "output SQNR against float on the calibration data: y ") {
		t.Errorf("stdout %q stderr %q: want 6 feeds calibrated, the quantized units listed and the output SQNR", stdout, stderr)
	}
	q, err := onnx.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if c := q.Graph.OpCounts(); c["QuantizeLinear"] != 4 {
		t.Errorf("op counts %v", c)
	}
	// The output runs, and --reference runs it literally.
	one := filepath.Join(dir, "one.npz")
	if err := npy.WriteNPZ(one, map[string]*tensor.Tensor{"x": tensor.Narrow(x, 0, 0, 1)}, nil); err != nil {
		t.Fatal(err)
	}
	for _, extra := range [][]string{nil, {"--reference"}} {
		args := append([]string{"run", out, "--inputs", one, "-o", filepath.Join(dir, "out")}, extra...)
		if code, _, stderr := runArgs(args...); code != 0 {
			t.Errorf("run %v: exit %d: %s", extra, code, stderr)
		}
	}
	// --weight-rounding: the conv filters' codes keep their rounded sums
	// (the quanta engine's default) or are each the nearest code.
	w := nodeInput(t, model, "conv", 1).Const.F32()
	for _, c := range []struct {
		flag    string
		nearest bool
	}{{"default", false}, {"keep-sum", false}, {"nearest", true}} {
		o := filepath.Join(dir, "net_"+c.flag+".onnx")
		if code, _, stderr := runArgs("quantize", model, "-o", o, "--calib", calib, "--weight-rounding", c.flag); code != 0 {
			t.Fatalf("--weight-rounding %s: exit %d: %s", c.flag, code, stderr)
		}
		dq := nodeInput(t, o, "conv", 1).Producer
		codes, scales := dq.Inputs[0].Const.I8(), dq.Inputs[1].Const.F32()
		moved := 0
		for f := 0; f < 12; f++ { // 4 output x 3 input channels, 9 taps each
			var sum float64
			var csum int
			for i := f * 9; i < f*9+9; i++ {
				v := float64(w[i]) / float64(scales[i/27])
				// The float32 quotient, as QuantizeLinear, saturated.
				if min(max(math.RoundToEven(float64(w[i]/scales[i/27])), -128), 127) != float64(codes[i]) {
					moved++
				}
				sum += v
				csum += int(codes[i])
			}
			if !c.nearest && csum != int(math.RoundToEven(sum)) {
				t.Errorf("--weight-rounding %s: filter %d codes sum to %d, want %v rounded", c.flag, f, csum, sum)
			}
		}
		if c.nearest != (moved == 0) {
			t.Errorf("--weight-rounding %s: %d codes differ from the nearest", c.flag, moved)
		}
	}
	// --int16: the convolution and the Relu after it in 16 bits (opset 21,
	// uint16 input codes, int16 weights, float bias); the Gemm that reads
	// the Relu's output keeps 8 bits, and so does that value.
	wide := filepath.Join(dir, "net_int16.onnx")
	code, stdout, stderr = runArgs("quantize", model, "-o", wide, "--calib", calib, "--int16", "^conv$")
	if code != 0 {
		t.Fatalf("--int16: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "Conv2d+ReLU (16-bit)") {
		t.Errorf("--int16: stdout %q does not list the 16-bit unit", stdout)
	}
	if m, err := onnx.Load(wide); err != nil || m.Opset("") != 21 {
		t.Fatalf("--int16: %v, opset %d, want 21", err, m.Opset(""))
	}
	if e := nodeInput(t, wide, "conv", 0).Producer.Inputs[0].Type.Elem; e != graph.Uint16 {
		t.Errorf("--int16: the convolution reads %s codes, want uint16", e)
	}
	if e := nodeInput(t, wide, "conv", 1).Producer.Inputs[0].Type.Elem; e != graph.Int16 {
		t.Errorf("--int16: the convolution's weight codes are %s, want int16", e)
	}
	if b := nodeInput(t, wide, "conv", 2); !b.IsConst() || b.Const.DType() != tensor.Float32 {
		t.Errorf("--int16: the convolution's bias is not float")
	}
	if e := nodeInput(t, wide, "fc", 0).Producer.Inputs[0].Type.Elem; e != graph.Uint8 {
		t.Errorf("--int16: the Gemm reads %s codes, want uint8", e)
	}
	// Dynamic mode needs no data.
	dyn := filepath.Join(dir, "net_dyn.onnx")
	if code, _, stderr := runArgs("quantize", model, "-o", dyn, "--mode", "dynamic", "--per-channel"); code != 0 {
		t.Fatalf("dynamic: exit %d: %s", code, stderr)
	}
	// Refuses to overwrite the input, names it, and leaves it intact.
	before, _ := os.ReadFile(model)
	code, _, stderr = runArgs("quantize", model, "-o", model, "--mode", "dynamic")
	after, _ := os.ReadFile(model)
	if code != 1 || !strings.Contains(stderr, "refusing to overwrite") || string(before) != string(after) {
		t.Errorf("overwrite: exit %d, %s", code, stderr)
	}
	// Usage errors exit 2.
	for _, args := range [][]string{
		{"quantize", model, "-o", out},
		{"quantize", model, "-o", out, "--mode", "fast"},
		{"quantize", model, "-o", out, "--calib", calib, "--method", "magic"},
		{"quantize", model, "-o", out, "--calib", calib, "--per-channel", "--per-tensor"},
		{"quantize", model, "-o", out, "--calib", calib, "--format", "qoperator"},
		{"quantize", model, "-o", out, "--calib", calib, "--weight-rounding", "up"},
		{"quantize", model, "-o", out, "--mode", "dynamic", "--int16", "conv"},
		{"quantize", model, "-o", out, "--calib", calib, "--int16", "("},
	} {
		if code, _, _ := runArgs(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	// An array for no input, and a missing input, are named.
	bad := filepath.Join(dir, "bad.npz")
	npy.WriteNPZ(bad, map[string]*tensor.Tensor{"image": x}, nil)
	if code, _, stderr := runArgs("quantize", model, "-o", out, "--calib", bad); code != 1 || !strings.Contains(stderr, `no input "image" (inputs: x)`) {
		t.Errorf("array for no input: exit %d: %s", code, stderr)
	}
	npy.WriteNPZ(bad, map[string]*tensor.Tensor{}, nil)
	if code, _, stderr := runArgs("quantize", model, "-o", out, "--calib", bad); code != 1 || !strings.Contains(stderr, `input "x"`) || !strings.Contains(stderr, "missing") {
		t.Errorf("missing input: exit %d: %s", code, stderr)
	}
}

// TestImageFeeds checks the image-folder calibration input: resize,
// normalization and channel order.
func TestImageFeeds(t *testing.T) {
	dir := t.TempDir()
	img := image.NewRGBA(image.Rect(0, 0, 4, 2))
	for y := 0; y < 2; y++ {
		for x := 0; x < 4; x++ {
			img.Set(x, y, color.RGBA{R: 255, G: 0, B: 51, A: 255})
		}
	}
	f, _ := os.Create(filepath.Join(dir, "a.png"))
	png.Encode(f, img)
	f.Close()
	g := graph.New("g")
	g.AddInput("x", graph.TensorType(graph.Float, 1, 3, 2, 4))
	feeds, err := imageFeeds(&graph.Model{Graph: g}, quantizeOpts{calib: dir, mean: "0.5,0.5,0.5", std: "0.5,0.5,0.5", bgr: true})
	if err != nil {
		t.Fatal(err)
	}
	x := feeds[0]["x"]
	if !tensor.SameShape(x.Shape(), []int{1, 3, 2, 4}) {
		t.Fatalf("shape %v", x.Shape())
	}
	// BGR: channel 0 is blue 51/255 = 0.2 -> (0.2-0.5)/0.5 = -0.6; channel 2 is red -> 1.
	if v := x.F32()[0]; v < -0.6001 || v > -0.5999 {
		t.Errorf("blue %g, want -0.6", v)
	}
	if v := x.F32()[2*8]; v != 1 {
		t.Errorf("red %g, want 1", v)
	}
}

// TestQuantizeFinetune fine-tunes the static model's weights on the
// calibration data: the output SQNR the command reports (measured on
// quanta's int8 kernels after fine-tuning) rises, and --finetune needs
// static mode.
func TestQuantizeFinetune(t *testing.T) {
	dir := t.TempDir()
	model := writeCNN(t, dir)
	calib := filepath.Join(dir, "calib.npz")
	x := tensor.Zeros(6, 3, 8, 8)
	r := rand.New(rand.NewSource(2))
	for i := range x.F32() {
		x.F32()[i] = float32(r.Float64())
	}
	if err := npy.WriteNPZ(calib, map[string]*tensor.Tensor{"x": x}, nil); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "net_ft.onnx")
	code, stdout, stderr := runArgs("quantize", model, "-o", out, "--calib", calib, "--finetune", "20", "--finetune-lr", "1e-3")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var before, after float64
	i := strings.Index(stdout, "fine-tuned 20 epochs: output SQNR against float on the calibration data: y ")
	if i < 0 {
		t.Fatalf("stdout %q", stdout)
	}
	if _, err := fmt.Sscanf(stdout[i:], "fine-tuned 20 epochs: output SQNR against float on the calibration data: y %f dB -> %f dB", &before, &after); err != nil {
		t.Fatalf("%v: %q", err, stdout[i:])
	}
	t.Logf("output SQNR %.2f dB -> %.2f dB", before, after)
	if !(after > before+1) {
		t.Errorf("fine-tuning took the output SQNR from %.2f to %.2f dB, want at least 1 dB more", before, after)
	}
	if !strings.Contains(stderr, "finetune") {
		t.Errorf("stderr %q: want the fine-tuning progress", stderr)
	}
	if _, err := onnx.Load(out); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"quantize", model, "-o", out, "--mode", "dynamic", "--finetune", "2"},
		{"quantize", model, "-o", out, "--calib", calib, "--finetune", "-1"},
	} {
		if code, _, _ := runArgs(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
