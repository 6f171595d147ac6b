package modeleval

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/npy"
	"github.com/quanta-go/quanta/tensor"
)

func TestCTCGreedy(t *testing.T) {
	for _, c := range []struct{ path, want []int }{
		{nil, []int{}},
		{[]int{0, 0, 0}, []int{}},
		{[]int{3, 3, 0, 3, 5, 5, 5, 0, 0, 2}, []int{3, 3, 5, 2}},
		{[]int{1, 2, 2, 1, 0, 1}, []int{1, 2, 1, 1}},
	} {
		if got := CTCGreedy(c.path); !slices.Equal(got, c.want) {
			t.Errorf("CTCGreedy(%v) = %v, want %v", c.path, got, c.want)
		}
	}
}

func TestDictDecode(t *testing.T) {
	d := NewDict([]string{"a", "b", "中"})
	if d.Classes() != 5 {
		t.Fatalf("Classes() = %d, want 5 (blank, a, b, 中, space)", d.Classes())
	}
	// Five steps of five classes: a, a, blank, space, 中 -> "a 中".
	probs := []float32{
		0.1, 0.7, 0.1, 0.05, 0.05,
		0.1, 0.6, 0.1, 0.1, 0.1,
		0.8, 0.05, 0.05, 0.05, 0.05,
		0.1, 0.1, 0.1, 0.1, 0.6,
		0.0, 0.2, 0.0, 0.7, 0.1,
	}
	cs, s := d.DecodeCTC(probs, 5)
	if !slices.Equal(cs, []int{1, 4, 3}) || s != "a 中" {
		t.Errorf("DecodeCTC = %v %q, want [1 4 3] \"a 中\"", cs, s)
	}
	if s := d.Text([]int{2, 9}); s != "b<9>" {
		t.Errorf("Text([2 9]) = %q, want \"b<9>\"", s)
	}
	// Ties go to the first index, as numpy's argmax.
	if got := ArgmaxRows([]float32{0.5, 0.5, 0.2, 0.1, 0.3, 0.3}, 3); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("ArgmaxRows ties: %v, want [0 1]", got)
	}
}

func TestMaskIoU(t *testing.T) {
	a := []float32{0.1, 0.5, 0.9, 0.31, 0.3, 0.0}
	b := []float32{0.4, 0.2, 0.8, 0.35, 0.29, 0.0}
	// A = {1,2,3}, B = {0,2,3}: intersection 2, union 4. 0.3 is not above 0.3.
	if got := MaskIoU(a, b, 0.3); got != 0.5 {
		t.Errorf("MaskIoU = %v, want 0.5", got)
	}
	if got := MaskIoU([]float32{0, 0.3}, []float32{0.1, 0.2}, 0.3); got != 1 {
		t.Errorf("MaskIoU of two empty maps = %v, want 1", got)
	}
	if got := MaskIoU([]float32{1, 0}, []float32{0, 1}, 0.3); got != 0 {
		t.Errorf("MaskIoU of disjoint maps = %v, want 0", got)
	}
	if !Speech(0.5) || Speech(0.4999) {
		t.Error("Speech: 0.5 is speech, 0.4999 is not")
	}
	if m, lo := stats([]float64{1, 0.5, 0.9}); math.Abs(m-0.8) > 1e-15 || lo != 0.5 {
		t.Errorf("stats = %v %v, want 0.8 0.5", m, lo)
	}
}

func TestDetInput(t *testing.T) {
	// One 1x2 RGB image: pixels (255,0,51) and (0,128,255).
	img := []uint8{255, 0, 51, 0, 128, 255}
	x, err := DetInput(img, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(x.Shape(), []int{1, 3, 1, 2}) {
		t.Fatalf("shape %v", x.Shape())
	}
	s := float32(1.0 / 255.0)
	// BGR: channel 0 is blue (51, 255), 1 green (0, 128), 2 red (255, 0).
	want := []float32{
		(51*s - 0.485) / 0.229, (255*s - 0.485) / 0.229,
		(0*s - 0.456) / 0.224, (128*s - 0.456) / 0.224,
		(255*s - 0.406) / 0.225, (0*s - 0.406) / 0.225,
	}
	if !slices.Equal(x.F32(), want) {
		t.Errorf("DetInput = %v, want %v", x.F32(), want)
	}
	if _, err := DetInput(img, 2, 2); err == nil {
		t.Error("DetInput accepted 6 bytes for a 2x2 image")
	}
}

// testLine returns a 48x320 RGB line whose first width columns hold
// pixel values from f(y, x, c) and the rest zeros.
func testLine(width int, f func(y, x, c int) uint8) []uint8 {
	img := make([]uint8, RecHeight*RecWidth*3)
	for y := 0; y < RecHeight; y++ {
		for x := 0; x < width; x++ {
			for c := 0; c < 3; c++ {
				img[(y*RecWidth+x)*3+c] = f(y, x, c)
			}
		}
	}
	return img
}

func TestRecInput(t *testing.T) {
	line := testLine(3, func(y, x, c int) uint8 { return uint8(10*c + x + y) })
	x, err := RecInput(line, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(x.Shape(), []int{1, 3, 48, 320}) {
		t.Fatalf("shape %v", x.Shape())
	}
	v := x.F32()
	at := func(c, y, xx int) float32 { return v[(c*48+y)*320+xx] }
	// BGR channel 0 is RGB channel 2 (value 20+x+y), normalized (v/255-0.5)/0.5.
	for _, c := range []struct{ c, y, x, rgb int }{{0, 0, 0, 2}, {0, 5, 2, 2}, {1, 7, 1, 1}, {2, 47, 2, 0}} {
		p := float32(10*c.rgb + c.x + c.y)
		want := (p/255 - 0.5) / 0.5
		if got := at(c.c, c.y, c.x); got != want {
			t.Errorf("RecInput[%d,%d,%d] = %v, want %v", c.c, c.y, c.x, got, want)
		}
	}
	// Padding is 0 after normalization, not the value of a zero pixel.
	if at(0, 3, 3) != 0 || at(2, 47, 319) != 0 {
		t.Error("RecInput: padding columns are not 0")
	}
	if _, err := RecInput(line, 0); err == nil {
		t.Error("RecInput accepted width 0")
	}
}

func TestClsInput(t *testing.T) {
	// A line narrower than 192: copied, rotated by 180 degrees when asked.
	line := testLine(5, func(y, x, c int) uint8 { return uint8(y*5 + x + 100*(c/2)) })
	for _, rot := range []bool{false, true} {
		x, err := ClsInput(line, 5, rot)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(x.Shape(), []int{1, 3, 48, 192}) {
			t.Fatalf("shape %v", x.Shape())
		}
		v := x.F32()
		for y := 0; y < 48; y++ {
			for xx := 0; xx < 5; xx++ {
				sy, sx := y, xx
				if rot {
					sy, sx = 47-y, 4-xx
				}
				// BGR channel 0 is RGB channel 2 = y*5+x+100.
				want := normRec(uint8(sy*5 + sx + 100))
				if got := v[y*192+xx]; got != want {
					t.Fatalf("rotate %v: [0,%d,%d] = %v, want %v", rot, y, xx, got, want)
				}
			}
			if v[y*192+5] != 0 {
				t.Fatalf("rotate %v: padding at row %d is %v", rot, y, v[y*192+5])
			}
		}
	}
	// A line of width 288 is resized to 192 (scale 1.5): output column x
	// samples source (x+0.5)*1.5-0.5; column 1 is 1.75, between 1 and 2.
	wide := testLine(288, func(y, x, c int) uint8 { return uint8(x % 200) })
	x, err := ClsInput(wide, 288, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := x.F32()[1], normRec(uint8(math.Round(0.25*1+0.75*2))); got != want {
		t.Errorf("resized column 1 = %v, want %v", got, want)
	}
	if got, want := x.F32()[191], normRec(uint8(287%200)); got != want {
		t.Errorf("resized column 191 = %v, want %v (the border)", got, want)
	}
}

func TestResizeWidth(t *testing.T) {
	// 1x4 -> 1x2 halves: source x = 0.5 and 2.5, the means of pairs.
	img := []uint8{0, 0, 0, 10, 10, 10, 100, 100, 100, 201, 201, 201}
	got := ResizeWidth(img, 1, 4, 2)
	if got[0] != 5 || got[3] != 151 {
		t.Errorf("ResizeWidth = %v, want 5 and 151 (150.5 rounded half away from zero)", got)
	}
	// Upscaling 1x2 -> 1x4: source x = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (border).
	got = ResizeWidth([]uint8{0, 0, 0, 100, 100, 100}, 1, 2, 4)
	if w := []uint8{0, 25, 75, 100}; got[0] != w[0] || got[3] != w[1] || got[6] != w[2] || got[9] != w[3] {
		t.Errorf("ResizeWidth up = %v, want channels %v", got, w)
	}
}

func TestLoad(t *testing.T) {
	d := testData(t)
	if n := d.Rec.Len(); n < RecCalib+100 {
		t.Errorf("%d lines, want at least %d", n, RecCalib+100)
	}
	if n := d.Det.Dim(0); n < DetCalib+16 {
		t.Errorf("%d pages, want at least %d", n, DetCalib+16)
	}
	chunks := func(clips [][]float32) int {
		n := 0
		for _, c := range clips {
			n += len(c) / ChunkSize
		}
		return n
	}
	if n := chunks(d.Silero.Eval); n < 600 {
		t.Errorf("%d evaluation chunks, want at least 600", n)
	}
	if n := chunks(d.Silero.Calib); n > 64 || n == 0 {
		t.Errorf("%d calibration chunks, want 1-64", n)
	}
	// Every line's padding is zero and its last column is not.
	for i := 0; i < d.Rec.Len(); i++ {
		img, w := d.Rec.Image(i), d.Rec.Widths[i]
		nonzero := false
		for y := 0; y < RecHeight; y++ {
			for x := w; x < RecWidth; x++ {
				for c := 0; c < 3; c++ {
					if img[(y*RecWidth+x)*3+c] != 0 {
						t.Fatalf("line %d: pixel (%d,%d) beyond width %d is not zero", i, y, x, w)
					}
				}
			}
			nonzero = nonzero || img[(y*RecWidth+w-1)*3] != 0
		}
		if !nonzero {
			t.Errorf("line %d: column %d (its last) is all zero", i, w-1)
		}
		if d.Rec.Labels[i] == "" {
			t.Errorf("line %d has an empty label", i)
		}
	}
	// The calibration and evaluation sets are disjoint lines.
	cal := map[string]bool{}
	for _, s := range d.Rec.Labels[:RecCalib] {
		cal[s] = true
	}
	same := 0
	for _, s := range d.Rec.Labels[RecCalib:] {
		if cal[s] {
			same++
		}
	}
	t.Logf("%d evaluation lines repeat a calibration line's text (rendered differently)", same)
	if _, err := Load(t.TempDir()); err == nil {
		t.Error("Load of an empty folder succeeded")
	}
}

func TestWriteCalibration(t *testing.T) {
	dir := t.TempDir()
	img := []map[string]*tensor.Tensor{
		{"x": tensor.FromFloat32([]float32{1, 2}, 1, 2)},
		{"x": tensor.FromFloat32([]float32{3, 4}, 1, 2)},
	}
	p := filepath.Join(dir, "img.npz")
	if err := WriteCalibration(p, Det, img); err != nil {
		t.Fatal(err)
	}
	ts, _, err := npy.ReadNPZ(p)
	if err != nil {
		t.Fatal(err)
	}
	if x := ts["x"]; !slices.Equal(x.Shape(), []int{2, 2}) || !slices.Equal(x.F32(), []float32{1, 2, 3, 4}) {
		t.Errorf("image calibration: %v %v, want [2 2] [1 2 3 4]", x.Shape(), x.F32())
	}
	st := tensor.Zeros(2, 1, 128)
	sil := []map[string]*tensor.Tensor{
		sileroFeed(make([]float32, ChunkSize), st),
		sileroFeed(make([]float32, ChunkSize), st),
		sileroFeed(make([]float32, ChunkSize), st),
	}
	p = filepath.Join(dir, "sil.npz")
	if err := WriteCalibration(p, Silero, sil); err != nil {
		t.Fatal(err)
	}
	ts, order, err := npy.ReadNPZ(p)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(order, []string{"input", "sr", "state"}) {
		t.Errorf("keys %v", order)
	}
	for k, want := range map[string][]int{"input": {3, 1, 512}, "state": {3, 2, 1, 128}, "sr": {3}} {
		if !slices.Equal(ts[k].Shape(), want) {
			t.Errorf("%s: shape %v, want %v", k, ts[k].Shape(), want)
		}
	}
	if v := ts["sr"].I64(); v[0] != 16000 || v[2] != 16000 {
		t.Errorf("sr = %v", v)
	}
	bad := []map[string]*tensor.Tensor{{"x": tensor.Zeros(1, 2)}, {"x": tensor.Zeros(1, 3)}}
	if err := WriteCalibration(filepath.Join(dir, "bad.npz"), Det, bad); err == nil {
		t.Error("WriteCalibration accepted feeds of different shapes")
	}
}

func TestWithinStep(t *testing.T) {
	a := []float32{1, 1.5, 2, 0, float32(math.NaN())}
	b := []float32{1.25, 1, 3, 0, 0}
	// Differences 0.25, 0.5, 1, 0, NaN: within a step of 0.5 are three.
	if got := WithinStep(a, b, 0.5); got != 3 {
		t.Errorf("WithinStep(step 0.5) = %d, want 3", got)
	}
	// Step 0 means no quantized input: a float tolerance of 1e-5*max(1,|b|).
	if got := WithinStep([]float32{1e6 + 5, 1 + 2e-5}, []float32{1e6, 1}, 0); got != 1 {
		t.Errorf("WithinStep(step 0) = %d, want 1", got)
	}
}

func TestOutputSteps(t *testing.T) {
	g := graph.New("steps")
	x := g.AddInput("x", graph.TensorType(graph.Float, 4))
	s1 := g.AddInitializer("s1", tensor.Scalar(0.5))
	s2 := g.AddInitializer("s2", tensor.Scalar(0.25))
	zp := g.AddInitializer("zp", tensor.FromUint8([]uint8{0}).Reshape())
	xq := g.AddNode("q1", "QuantizeLinear", []*graph.Value{x, s1, zp}, []string{"xq"}, nil).Outputs[0]
	xd := g.AddNode("d1", "DequantizeLinear", []*graph.Value{xq, s1, zp}, []string{"xd"}, nil).Outputs[0]
	// y: a float output computed from a quantized activation (step 0.5).
	y := g.AddNode("relu", "Relu", []*graph.Value{xd}, []string{"y"}, nil).Outputs[0]
	// z: the output of a DequantizeLinear (step 0.25).
	zq := g.AddNode("q2", "QuantizeLinear", []*graph.Value{y, s2, zp}, []string{"zq"}, nil).Outputs[0]
	z := g.AddNode("d2", "DequantizeLinear", []*graph.Value{zq, s2, zp}, []string{"z"}, nil).Outputs[0]
	// w: float only (step 0).
	w := g.AddNode("mul", "Mul", []*graph.Value{x, x}, []string{"w"}, nil).Outputs[0]
	// v: dynamic quantization (the scale is computed per call).
	dq := g.AddNode("dql", "DynamicQuantizeLinear", []*graph.Value{x}, []string{"vq", "vs", "vz"}, nil)
	v := g.AddNode("d3", "DequantizeLinear", dq.Outputs, []string{"v"}, nil).Outputs[0]
	g.Outputs = []*graph.Value{y, z, w, v}
	m := &graph.Model{Graph: g, Opsets: map[string]int64{"": 13}}
	feed := map[string]*tensor.Tensor{"x": tensor.FromFloat32([]float32{-1, 0.5, 2, 4.1}, 4)}
	steps, err := OutputSteps(context.Background(), m, feed)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float32{"y": 0.5, "z": 0.25, "w": 0, "v": float32(4.1-(-1)) / 255}
	for k, s := range want {
		if got := steps[k]; math.Abs(float64(got-s)) > 1e-7 {
			t.Errorf("step of %s = %v, want %v", k, got, s)
		}
	}
}

func TestStackFeeds(t *testing.T) {
	feeds := []map[string]*tensor.Tensor{
		{"a": tensor.FromFloat32([]float32{1, 2}, 2), "b": tensor.FromInt64([]int64{7}, 1)},
		{"a": tensor.FromFloat32([]float32{3, 4}, 2), "b": tensor.FromInt64([]int64{8}, 1)},
	}
	st, keys, err := StackFeeds(feeds)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"a", "b"}) || !slices.Equal(st["a"].Shape(), []int{2, 2}) || !slices.Equal(st["a"].F32(), []float32{1, 2, 3, 4}) || !slices.Equal(st["b"].I64(), []int64{7, 8}) {
		t.Errorf("StackFeeds = %v %v %v", keys, st["a"], st["b"])
	}
	if _, _, err := StackFeeds(nil); err == nil {
		t.Error("StackFeeds(nil) succeeded")
	}
	if _, _, err := StackFeeds([]map[string]*tensor.Tensor{{"a": tensor.Zeros(1)}, {"c": tensor.Zeros(1)}}); err == nil {
		t.Error("StackFeeds accepted feeds with different inputs")
	}
}

// TestOutputStepsIf takes the step from the If branch that ran: each
// branch quantizes x with its own scale.
func TestOutputStepsIf(t *testing.T) {
	g := graph.New("if")
	x := g.AddInput("x", graph.TensorType(graph.Float, 2))
	c := g.AddInput("c", graph.TensorType(graph.Bool))
	zp := g.AddInitializer("zp", tensor.FromUint8([]uint8{0}).Reshape())
	branch := func(name string, scale float32) *graph.Graph {
		b := graph.New(name)
		s := b.AddInitializer(name+"_s", tensor.Scalar(scale))
		q := b.AddNode(name+"_q", "QuantizeLinear", []*graph.Value{x, s, zp}, []string{name + "_xq"}, nil)
		d := b.AddNode(name+"_d", "DequantizeLinear", []*graph.Value{q.Outputs[0], s, zp}, []string{name + "_xd"}, nil)
		r := b.AddNode(name+"_r", "Relu", d.Outputs, []string{name + "_out"}, nil)
		b.Outputs = r.Outputs
		return b
	}
	n := g.AddNode("if", "If", []*graph.Value{c}, []string{"y"}, map[string]*graph.Attr{
		"then_branch": graph.AGraph(branch("then", 0.5)), "else_branch": graph.AGraph(branch("else", 0.125))})
	g.Outputs = n.Outputs
	m := &graph.Model{Graph: g, Opsets: map[string]int64{"": 13}}
	for _, tc := range []struct {
		cond bool
		want float32
	}{{true, 0.5}, {false, 0.125}} {
		feed := map[string]*tensor.Tensor{
			"x": tensor.FromFloat32([]float32{1, 2}, 2),
			"c": tensor.FromBool([]bool{tc.cond}).Reshape(),
		}
		steps, err := OutputSteps(context.Background(), m, feed)
		if err != nil {
			t.Fatal(err)
		}
		if steps["y"] != tc.want {
			t.Errorf("condition %v: step %v, want %v (the branch that ran)", tc.cond, steps["y"], tc.want)
		}
	}
}
