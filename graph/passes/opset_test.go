package passes_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/graph/passes"
	"github.com/quanta-go/quanta/onnx"
	"github.com/quanta-go/quanta/tensor"
)

// runFeeds compiles m (with the executor's default rewrites) and runs it
// on feeds; it returns the outputs in graph-output order.
func runFeeds(t *testing.T, m *graph.Model, feeds map[string]*tensor.Tensor) []*tensor.Tensor {
	t.Helper()
	p, err := exec.Compile(m, exec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Run(context.Background(), feeds)
	if err != nil {
		t.Fatal(err)
	}
	var outs []*tensor.Tensor
	for _, n := range p.OutputNames() {
		outs = append(outs, res[n])
	}
	return outs
}

// sameBits reports how got differs from want: dtype, shape, or the bits
// of an element (float32 compared by bit pattern).
func sameBits(got, want *tensor.Tensor) error {
	if got.DType() != want.DType() || !tensor.SameShape(got.Shape(), want.Shape()) {
		return fmt.Errorf("got %s%v, want %s%v", got.DType(), got.Shape(), want.DType(), want.Shape())
	}
	if got.DType() == tensor.Float32 {
		g, w := got.F32(), want.F32()
		for i := range w {
			if math.Float32bits(g[i]) != math.Float32bits(w[i]) {
				return fmt.Errorf("element %d: got %g, want %g", i, g[i], w[i])
			}
		}
		return nil
	}
	if got.DType() == tensor.Int64 {
		g, w := got.I64(), want.I64()
		for i := range w {
			if g[i] != w[i] {
				return fmt.Errorf("element %d: got %d, want %d", i, g[i], w[i])
			}
		}
		return nil
	}
	g, w := got.Float64s(), want.Float64s()
	for i := range w {
		if g[i] != w[i] {
			return fmt.Errorf("element %d: got %v, want %v", i, g[i], w[i])
		}
	}
	return nil
}

// conformanceClose is the conformance test's comparison: floats within
// rtol 1e-3, atol 1e-7 (NaN equal to NaN), other dtypes exactly.
func conformanceClose(got, want *tensor.Tensor) error {
	if got.DType() != want.DType() || !tensor.SameShape(got.Shape(), want.Shape()) {
		return fmt.Errorf("got %s%v, want %s%v", got.DType(), got.Shape(), want.DType(), want.Shape())
	}
	if got.DType() != tensor.Float32 {
		return sameBits(got, want)
	}
	g, w := got.F32(), want.F32()
	for i := range w {
		a, b := float64(g[i]), float64(w[i])
		if math.IsNaN(a) && math.IsNaN(b) || a == b {
			continue
		}
		if !(math.Abs(a-b) <= 1e-7+1e-3*math.Abs(b)) {
			return fmt.Errorf("element %d: got %g, want %g", i, a, b)
		}
	}
	return nil
}

// roundTrip encodes m as ONNX and decodes it back.
func roundTrip(t *testing.T, m *graph.Model) *graph.Model {
	t.Helper()
	data, err := onnx.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := onnx.Decode(data, onnx.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return back
}

// TestUpgradeOpsetConformance upgrades every vendored ONNX node test case
// whose model imports an opset below 13 to opsets 13 and 17 and checks the
// outputs against the case's expected outputs (as the executor's
// conformance test compares them) and, bit for bit, against the original
// model's.
func TestUpgradeOpsetConformance(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("..", "exec", "testdata", "node", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatal("no conformance cases under ../exec/testdata/node")
	}
	cases, rewritten := 0, 0
	for _, dir := range dirs {
		m, err := onnx.Load(filepath.Join(dir, "model.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		if m.Opset("") >= 13 {
			continue
		}
		cases++
		data := filepath.Join(dir, "test_data_set_0")
		feeds := map[string]*tensor.Tensor{}
		for i, in := range m.Graph.Inputs {
			f := filepath.Join(data, fmt.Sprintf("input_%d.pb", i))
			if _, err := os.Stat(f); err != nil {
				continue // an input with a default value
			}
			x, err := onnx.ReadTensor(f)
			if err != nil {
				t.Fatal(err)
			}
			feeds[in.Name] = x
		}
		var wants []*tensor.Tensor
		for i := range m.Graph.Outputs {
			w, err := onnx.ReadTensor(filepath.Join(data, fmt.Sprintf("output_%d.pb", i)))
			if err != nil {
				t.Fatal(err)
			}
			wants = append(wants, w)
		}
		orig := runFeeds(t, m.Clone(), feeds)
		for _, target := range []int64{13, 17} {
			t.Run(fmt.Sprintf("%s/to%d", filepath.Base(dir), target), func(t *testing.T) {
				u := m.Clone()
				n, err := passes.UpgradeOpset(u, target)
				if err != nil {
					t.Fatal(err)
				}
				if target == 13 {
					rewritten += n
				}
				if n > 0 {
					t.Logf("%d nodes rewritten: %s", n, opSummary(u.Graph))
				}
				if u.Opset("") != target {
					t.Fatalf("opset %d after the upgrade, want %d", u.Opset(""), target)
				}
				got := runFeeds(t, roundTrip(t, u), feeds)
				for i := range wants {
					if err := conformanceClose(got[i], wants[i]); err != nil {
						t.Errorf("output %d vs the expected output: %v", i, err)
					}
					if err := sameBits(got[i], orig[i]); err != nil {
						t.Errorf("output %d vs the original model: %v", i, err)
					}
				}
			})
		}
	}
	t.Logf("%d cases below opset 13; %d nodes rewritten for opset 13", cases, rewritten)
	if cases < 70 {
		t.Errorf("only %d cases below opset 13", cases)
	}
}

// sharedModelsDir returns ../shared/models beside the repository, or
// skips the test with a message when it is absent.
func sharedModelsDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the package directory")
		}
		dir = parent
	}
	models := filepath.Join(filepath.Dir(dir), "shared", "models")
	if _, err := os.Stat(models); os.IsNotExist(err) {
		t.Skipf("the real-model test needs the folder %s (shared/models beside the repository); it is absent", models)
	} else if err != nil {
		t.Fatal(err)
	}
	return models
}

// TestUpgradeOpsetRealModels upgrades the PP-OCR detector (opset 11),
// recognizer and direction classifier (opset 9) and Silero VAD (opset 16)
// to opsets 13 and 17: the executor's outputs on a fixed random input are
// bit-identical to the original model's, and the upgraded model saved as
// ONNX and loaded again gives them too.
func TestUpgradeOpsetRealModels(t *testing.T) {
	models := sharedModelsDir(t)
	rng := tensor.NewRNG(42)
	sr := tensor.FromInt64([]int64{16000}).Reshape()
	cases := []struct {
		name, path string
		opset      int64
		feeds      map[string]*tensor.Tensor
		minCount   map[int64]int // nodes rewritten per target
	}{
		{"ppocr_det", "ppocr/ch_PP-OCRv4_det_infer.onnx", 11,
			map[string]*tensor.Tensor{"x": tensor.Rand(rng, 1, 3, 128, 256)}, map[int64]int{13: 0, 17: 0}},
		{"ppocr_rec", "ppocr/ch_PP-OCRv4_rec_infer.onnx", 9,
			map[string]*tensor.Tensor{"x": tensor.Randn(rng, 1, 3, 48, 128)}, map[int64]int{13: 28 + 10 + 7, 17: 28 + 10 + 7}},
		{"ppocr_cls", "ppocr/ch_ppocr_mobile_v2.0_cls_infer.onnx", 9,
			map[string]*tensor.Tensor{"x": tensor.Randn(rng, 2, 3, 48, 192)}, map[int64]int{13: 18 + 1, 17: 18 + 1}},
		{"silero", "silero/silero_vad_v5.onnx", 16,
			map[string]*tensor.Tensor{"input": tensor.Randn(rng, 1, 512), "state": tensor.Randn(rng, 2, 1, 128), "sr": sr},
			map[int64]int{13: 0, 17: 0}},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := onnx.Load(filepath.Join(models, c.path))
			if err != nil {
				t.Fatal(err)
			}
			if m.Opset("") != c.opset {
				t.Fatalf("model imports opset %d, want %d", m.Opset(""), c.opset)
			}
			orig := runFeeds(t, m.Clone(), c.feeds)
			for _, target := range []int64{13, 17} {
				u := m.Clone()
				n, err := passes.UpgradeOpset(u, target)
				if err != nil {
					t.Fatal(err)
				}
				want := max(target, c.opset)
				if u.Opset("") != want {
					t.Errorf("to %d: opset %d after the upgrade, want %d", target, u.Opset(""), want)
				}
				if n < c.minCount[target] {
					t.Errorf("to %d: %d nodes rewritten, want at least %d", target, n, c.minCount[target])
				}
				path := filepath.Join(dir, fmt.Sprintf("%s_%d.onnx", c.name, target))
				if err := onnx.Save(path, u); err != nil {
					t.Fatal(err)
				}
				back, err := onnx.Load(path)
				if err != nil {
					t.Fatal(err)
				}
				if back.Opset("") != want {
					t.Errorf("to %d: reloaded model imports opset %d", target, back.Opset(""))
				}
				for what, mm := range map[string]*graph.Model{"upgraded": u, "saved and reloaded": back} {
					got := runFeeds(t, mm, c.feeds)
					for i := range orig {
						if err := sameBits(got[i], orig[i]); err != nil {
							t.Errorf("to %d, %s: output %d: %v", target, what, i, err)
						}
					}
				}
				t.Logf("to opset %d: %d nodes rewritten, ops %s", target, n, opSummary(u.Graph))
			}
		})
	}
}

// opSummary lists a graph's op counts, sorted.
func opSummary(g *graph.Graph) string {
	var s []string
	for op, c := range g.OpCounts() {
		s = append(s, fmt.Sprintf("%s=%d", op, c))
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}

// opNode appends a node with one output per name in outs and returns it.
func opNode(g *graph.Graph, name, op string, ins []*graph.Value, attrs map[string]*graph.Attr, outs ...string) *graph.Node {
	return g.AddNode(name, op, ins, outs, attrs)
}

type attrs = map[string]*graph.Attr

func f32(v ...float32) *tensor.Tensor { return tensor.FromFloat32(v, len(v)) }

func floatIn(g *graph.Graph, name string, dims ...int64) *graph.Value {
	return g.AddInput(name, graph.TensorType(graph.Float, dims...))
}

// upCase is a hand-built model at opset from, upgraded to each target.
type upCase struct {
	name  string
	from  int64
	build func(g *graph.Graph)
	feeds map[string]*tensor.Tensor
	// count is the number of nodes rewritten per target (targets 13 and
	// 17 when it names neither).
	count map[int64]int
	// ops is the op summary after the upgrade to the first target.
	ops   string
	check func(t *testing.T, m *graph.Model)
}

func buildCase(c upCase) *graph.Model {
	g := graph.New(c.name)
	c.build(g)
	return &graph.Model{Graph: g, Opsets: map[string]int64{"": c.from}, IRVersion: 3}
}

func (c upCase) run(t *testing.T) {
	targets := []int64{13, 17}
	if len(c.count) > 0 {
		targets = targets[:0]
		for k := range c.count {
			targets = append(targets, k)
		}
		sort.Slice(targets, func(i, j int) bool { return targets[i] < targets[j] })
	}
	for i, target := range targets {
		m := buildCase(c)
		orig := runFeeds(t, buildCase(c), c.feeds)
		n, err := passes.UpgradeOpset(m, target)
		if err != nil {
			t.Fatalf("to %d: %v", target, err)
		}
		if want := c.count[target]; n != want {
			t.Errorf("to %d: %d nodes rewritten, want %d", target, n, want)
		}
		if m.Opset("") != target || (target >= 13 && m.IRVersion < 7) {
			t.Errorf("to %d: opset %d, IR version %d", target, m.Opset(""), m.IRVersion)
		}
		if err := graph.Verify(m.Graph); err != nil {
			t.Fatalf("to %d: %v", target, err)
		}
		if i == 0 {
			if c.ops != "" && opSummary(m.Graph) != c.ops {
				t.Errorf("to %d: ops %s, want %s", target, opSummary(m.Graph), c.ops)
			}
			if c.check != nil {
				c.check(t, m)
			}
		}
		for what, mm := range map[string]*graph.Model{"upgraded": m, "encoded and decoded": roundTrip(t, m)} {
			got := runFeeds(t, mm, c.feeds)
			for j := range orig {
				if err := sameBits(got[j], orig[j]); err != nil {
					t.Errorf("to %d, %s: output %d: %v", target, what, j, err)
				}
			}
		}
	}
}

// initValue returns the value of the initializer called name in g.
func initValue(t *testing.T, g *graph.Graph, name string) *tensor.Tensor {
	t.Helper()
	for _, v := range g.Initializers {
		if v.Name == name {
			return v.Const
		}
	}
	t.Fatalf("graph %s has no initializer %q", g.Name, name)
	return nil
}

func nodeNamed(t *testing.T, g *graph.Graph, name string) *graph.Node {
	t.Helper()
	for _, n := range g.Nodes {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("graph %s has no node %q", g.Name, name)
	return nil
}

func TestUpgradeOpsetHandBuilt(t *testing.T) {
	rng := tensor.NewRNG(7)
	x234 := tensor.Randn(rng, 2, 3, 4)
	img := tensor.Randn(rng, 1, 2, 5, 6)
	inf := float32(math.Inf(1))
	bnParams := []*tensor.Tensor{tensor.Randn(rng, 2), tensor.Randn(rng, 2), tensor.Randn(rng, 2)}
	w33, c3 := tensor.Randn(rng, 3, 3), tensor.Randn(rng, 3)
	for13 := func(n int) map[int64]int { return map[int64]int{13: n, 17: n} }
	cases := []upCase{
		{name: "softmax_last_axis", from: 11, feeds: map[string]*tensor.Tensor{"x": x234}, count: for13(0), ops: "Softmax=1",
			build: func(g *graph.Graph) {
				g.Outputs = opNode(g, "sm", "Softmax", []*graph.Value{floatIn(g, "x", 2, 3, 4)}, attrs{"axis": graph.AInt(2)}, "y").Outputs
			}},
		{name: "softmax_default_axis_rank2", from: 9, feeds: map[string]*tensor.Tensor{"x": tensor.Randn(rng, 3, 5)}, count: for13(1), ops: "Softmax=1",
			build: func(g *graph.Graph) {
				g.Outputs = opNode(g, "sm", "Softmax", []*graph.Value{floatIn(g, "x", 3, 5)}, nil, "y").Outputs
			},
			check: func(t *testing.T, m *graph.Model) {
				if a, _ := nodeNamed(t, m.Graph, "sm").Int("axis", -1); a != 1 {
					t.Errorf("axis %d, want 1", a)
				}
			}},
		{name: "logsoftmax_unknown_rank", from: 11, feeds: map[string]*tensor.Tensor{"x": x234}, count: for13(1),
			ops: "Flatten=1 LogSoftmax=1 Reshape=1 Shape=1",
			build: func(g *graph.Graph) {
				x := g.AddInput("x", graph.Type{Elem: graph.Float})
				g.Outputs = opNode(g, "lsm", "LogSoftmax", []*graph.Value{x}, attrs{"axis": graph.AInt(0)}, "y").Outputs
			}},
		{name: "hardmax_trailing_ones", from: 12, feeds: map[string]*tensor.Tensor{"x": tensor.Randn(rng, 2, 3, 1, 1)}, count: for13(1), ops: "Hardmax=1",
			build: func(g *graph.Graph) {
				g.Outputs = opNode(g, "hm", "Hardmax", []*graph.Value{floatIn(g, "x", 2, 3, 1, 1)}, nil, "y").Outputs
			}},
		{name: "hardmax_last_unknown_rank", from: 10, feeds: map[string]*tensor.Tensor{"x": x234}, count: for13(0), ops: "Hardmax=1",
			build: func(g *graph.Graph) {
				x := g.AddInput("x", graph.Type{Elem: graph.Float})
				g.Outputs = opNode(g, "hm", "Hardmax", []*graph.Value{x}, attrs{"axis": graph.AInt(-1)}, "y").Outputs
			}},
		{name: "squeeze_unsqueeze", from: 11, feeds: map[string]*tensor.Tensor{"x": tensor.Randn(rng, 1, 3, 1, 2)}, count: for13(2),
			build: func(g *graph.Graph) {
				s := opNode(g, "sq", "Squeeze", []*graph.Value{floatIn(g, "x", 1, 3, 1, 2)}, attrs{"axes": graph.AInts(0, 2)}, "s")
				g.Outputs = opNode(g, "unsq", "Unsqueeze", s.Outputs, attrs{"axes": graph.AInts(-1)}, "y").Outputs
				opNode(g, "sq_all", "Squeeze", s.Outputs[:1], nil, "unused") // no axes: unchanged
			},
			check: func(t *testing.T, m *graph.Model) {
				for node, want := range map[string]string{"sq": "[0 2]", "unsq": "[-1]"} {
					n := nodeNamed(t, m.Graph, node)
					if len(n.Inputs) != 2 || n.Inputs[1].Name != node+"_axes" || n.Has("axes") {
						t.Fatalf("%s: inputs %v, attrs %v", node, n.Inputs, n.Attrs)
					}
					if got := fmt.Sprint(initValue(t, m.Graph, node+"_axes").I64()); got != want {
						t.Errorf("%s_axes = %s, want %s", node, got, want)
					}
				}
			}},
		{name: "split_sizes", from: 11, feeds: map[string]*tensor.Tensor{"x": tensor.Randn(rng, 6, 2)}, count: map[int64]int{13: 1, 17: 1, 18: 1},
			build: func(g *graph.Graph) {
				g.Outputs = opNode(g, "split", "Split", []*graph.Value{floatIn(g, "x", 6, 2)}, attrs{"split": graph.AInts(2, 4)}, "a", "b").Outputs
			},
			check: func(t *testing.T, m *graph.Model) {
				if got := fmt.Sprint(initValue(t, m.Graph, "split_split").I64()); got != "[2 4]" {
					t.Errorf("split_split = %s", got)
				}
			}},
		{name: "split_equal", from: 11, feeds: map[string]*tensor.Tensor{"x": tensor.Randn(rng, 6, 2)}, count: map[int64]int{13: 0, 18: 1},
			build: func(g *graph.Graph) {
				g.Outputs = opNode(g, "split", "Split", []*graph.Value{floatIn(g, "x", 6, 2)}, nil, "a", "b", "c").Outputs
			}},
		{name: "reduce_axes", from: 11, feeds: map[string]*tensor.Tensor{"x": x234}, count: map[int64]int{13: 1, 17: 1, 18: 2},
			build: func(g *graph.Graph) {
				x := floatIn(g, "x", 2, 3, 4)
				a := opNode(g, "sum", "ReduceSum", []*graph.Value{x}, attrs{"axes": graph.AInts(1), "keepdims": graph.AInt(0)}, "a")
				b := opNode(g, "mean", "ReduceMean", []*graph.Value{x}, attrs{"axes": graph.AInts(0, -1)}, "b")
				g.Outputs = []*graph.Value{a.Outputs[0], b.Outputs[0]}
			}},
		{name: "clip_attrs", from: 9, count: for13(2), ops: "Clip=2",
			feeds: map[string]*tensor.Tensor{"x": f32(-inf, -2, -0.25, 0, 0.75, 3, inf)},
			build: func(g *graph.Graph) {
				x := floatIn(g, "x", 7)
				a := opNode(g, "clip", "Clip", []*graph.Value{x}, attrs{"min": graph.AFloat(-0.5), "max": graph.AFloat(0.5)}, "a")
				b := opNode(g, "clip_default", "Clip", []*graph.Value{x}, nil, "b")
				g.Outputs = []*graph.Value{a.Outputs[0], b.Outputs[0]}
			},
			check: func(t *testing.T, m *graph.Model) {
				out := runFeeds(t, m, map[string]*tensor.Tensor{"x": f32(-inf, -2, -0.25, 0, 0.75, 3, inf)})
				if got := fmt.Sprint(out[0].F32()); got != "[-0.5 -0.5 -0.25 0 0.5 0.5 0.5]" {
					t.Errorf("clip = %s", got)
				}
				m32 := float32(math.MaxFloat32)
				if got, want := fmt.Sprint(out[1].F32()), fmt.Sprint([]float32{-m32, -2, -0.25, 0, 0.75, 3, m32}); got != want {
					t.Errorf("clip without bounds = %s, want %s (opset 6 clips infinities)", got, want)
				}
			}},
		{name: "slice_attrs", from: 9, feeds: map[string]*tensor.Tensor{"x": tensor.Randn(rng, 4, 5)}, count: for13(2), ops: "Slice=2",
			build: func(g *graph.Graph) {
				x := floatIn(g, "x", 4, 5)
				a := opNode(g, "sl", "Slice", []*graph.Value{x}, attrs{"starts": graph.AInts(1, -3), "ends": graph.AInts(1000, -1), "axes": graph.AInts(0, 1)}, "a")
				b := opNode(g, "sl2", "Slice", []*graph.Value{x}, attrs{"starts": graph.AInts(0), "ends": graph.AInts(2)}, "b")
				g.Outputs = []*graph.Value{a.Outputs[0], b.Outputs[0]}
			},
			check: func(t *testing.T, m *graph.Model) {
				n := nodeNamed(t, m.Graph, "sl")
				var names []string
				for _, in := range n.Inputs[1:] {
					names = append(names, in.Name)
				}
				if got := strings.Join(names, " "); got != "sl_starts sl_ends sl_axes" || len(n.Attrs) != 0 {
					t.Errorf("inputs %s, attrs %v", got, n.Attrs)
				}
			}},
		{name: "pad_attrs", from: 10, feeds: map[string]*tensor.Tensor{"x": tensor.Randn(rng, 3, 4)}, count: for13(2),
			build: func(g *graph.Graph) {
				x := floatIn(g, "x", 3, 4)
				a := opNode(g, "pad", "Pad", []*graph.Value{x}, attrs{"pads": graph.AInts(0, 1, 2, -1), "value": graph.AFloat(1.5)}, "a")
				b := opNode(g, "pad_reflect", "Pad", []*graph.Value{x}, attrs{"pads": graph.AInts(1, 1, 0, 2), "mode": graph.AString("reflect")}, "b")
				g.Outputs = []*graph.Value{a.Outputs[0], b.Outputs[0]}
			}},
		{name: "topk", from: 9, feeds: map[string]*tensor.Tensor{"x": tensor.Randn(rng, 3, 6)}, count: for13(1),
			build: func(g *graph.Graph) {
				g.Outputs = opNode(g, "topk", "TopK", []*graph.Value{floatIn(g, "x", 3, 6)}, attrs{"k": graph.AInt(2), "axis": graph.AInt(1)}, "v", "i").Outputs
			}},
		{name: "scatter", from: 10, count: for13(1), ops: "ScatterElements=1",
			feeds: map[string]*tensor.Tensor{"d": tensor.Randn(rng, 2, 5), "u": tensor.Randn(rng, 2, 2)},
			build: func(g *graph.Graph) {
				idx := g.AddInitializer("idx", tensor.FromInt64([]int64{4, 0, 1, -1}, 2, 2))
				g.Outputs = opNode(g, "scatter", "Scatter", []*graph.Value{floatIn(g, "d", 2, 5), idx, floatIn(g, "u", 2, 2)}, attrs{"axis": graph.AInt(1)}, "y").Outputs
			}},
		{name: "dropout_mask", from: 7, feeds: map[string]*tensor.Tensor{"x": tensor.Randn(rng, 2, 3)}, count: for13(1), ops: "Cast=1 Dropout=1",
			build: func(g *graph.Graph) {
				g.Outputs = opNode(g, "drop", "Dropout", []*graph.Value{floatIn(g, "x", 2, 3)}, attrs{"ratio": graph.AFloat(0.3)}, "y", "mask").Outputs
			}},
		{name: "batchnorm_spatial", from: 7, feeds: map[string]*tensor.Tensor{"x": img}, count: for13(1),
			build: func(g *graph.Graph) {
				ins := []*graph.Value{floatIn(g, "x", 1, 2, 5, 6)}
				for i, p := range []string{"s", "b", "m"} {
					ins = append(ins, g.AddInitializer(p, bnParams[i]))
				}
				ins = append(ins, g.AddInitializer("v", f32(0.5, 2)))
				g.Outputs = opNode(g, "bn", "BatchNormalization", ins, attrs{"spatial": graph.AInt(1), "epsilon": graph.AFloat(1e-3)}, "y").Outputs
			}},
		{name: "batchnorm_no_positions", from: 8, feeds: map[string]*tensor.Tensor{"x": tensor.Randn(rng, 4, 2)}, count: for13(1),
			build: func(g *graph.Graph) {
				ins := []*graph.Value{floatIn(g, "x", 4, 2)}
				for i, p := range []string{"s", "b", "m"} {
					ins = append(ins, g.AddInitializer(p, bnParams[i]))
				}
				ins = append(ins, g.AddInitializer("v", f32(0.5, 2)))
				g.Outputs = opNode(g, "bn", "BatchNormalization", ins, attrs{"spatial": graph.AInt(0)}, "y").Outputs
			},
			check: func(t *testing.T, m *graph.Model) {
				if nodeNamed(t, m.Graph, "bn").Has("spatial") {
					t.Error("attribute spatial kept")
				}
			}},
		{name: "unchanged_ops", from: 9, feeds: map[string]*tensor.Tensor{"x": tensor.Randn(rng, 2, 3)}, count: for13(0),
			build: func(g *graph.Graph) {
				x := floatIn(g, "x", 2, 3)
				w := g.AddInitializer("w", w33)
				a := opNode(g, "gemm", "Gemm", []*graph.Value{x, w, g.AddInitializer("bias", c3)}, attrs{"transB": graph.AInt(1)}, "a")
				b := opNode(g, "mm", "MatMul", []*graph.Value{a.Outputs[0], w}, nil, "b")
				c := opNode(g, "cat", "Concat", []*graph.Value{a.Outputs[0], b.Outputs[0]}, attrs{"axis": graph.AInt(1)}, "c")
				s := opNode(g, "shape", "Shape", c.Outputs, nil, "s")
				d := opNode(g, "gather", "Gather", []*graph.Value{s.Outputs[0], g.AddInitializer("i", tensor.FromInt64([]int64{1}, 1))}, nil, "d")
				e := opNode(g, "cast", "Cast", d.Outputs, attrs{"to": graph.AInt(int64(graph.Float))}, "e")
				g.Outputs = []*graph.Value{c.Outputs[0], e.Outputs[0]}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, c.run)
	}
}

// TestUpgradeOpsetErrors checks that what cannot be converted exactly is an
// error naming the node and the op, and leaves the model as it was, even
// when other nodes before it could be converted.
func TestUpgradeOpsetErrors(t *testing.T) {
	cases := []struct {
		name  string
		from  int64
		build func(g *graph.Graph, x *graph.Value) *graph.Node
		want  string
	}{
		{"unknown_op", 11, func(g *graph.Graph, x *graph.Value) *graph.Node {
			return opNode(g, "mystery", "Frobnicate", []*graph.Value{x}, nil, "y")
		}, "node mystery (Frobnicate): no conversion rule for Frobnicate"},
		{"scan8_sequence_lens", 8, func(g *graph.Graph, x *graph.Value) *graph.Node {
			body := graph.New("body")
			s := body.AddInput("s", graph.TensorType(graph.Float, 3))
			body.Outputs = []*graph.Value{s}
			lens := g.AddInitializer("lens", tensor.FromInt64([]int64{1}, 1))
			return opNode(g, "scan", "Scan", []*graph.Value{lens, x}, attrs{"body": graph.AGraph(body), "num_scan_inputs": graph.AInt(0)}, "y")
		}, "node scan (Scan): sequence_lens"},
		{"batchnorm_per_position", 7, func(g *graph.Graph, x *graph.Value) *graph.Node {
			ins := []*graph.Value{x}
			for _, p := range []string{"s", "b", "m", "v"} {
				ins = append(ins, g.AddInitializer(p, tensor.Full(1, 2, 1, 3)))
			}
			return opNode(g, "bn", "BatchNormalization", ins, attrs{"spatial": graph.AInt(0)}, "y")
		}, "node bn (BatchNormalization): spatial=0"},
		{"resize_tf_half_pixel_linear", 11, func(g *graph.Graph, x *graph.Value) *graph.Node {
			roi, s := g.AddInitializer("roi", f32()), g.AddInitializer("scales", f32(1, 1, 2, 2))
			return opNode(g, "rs", "Resize", []*graph.Value{x, roi, s}, attrs{"mode": graph.AString("linear"),
				"coordinate_transformation_mode": graph.AString("tf_half_pixel_for_nn")}, "y")
		}, "node rs (Resize): coordinate_transformation_mode tf_half_pixel_for_nn with mode linear"},
		{"clip_double", 9, func(g *graph.Graph, x *graph.Value) *graph.Node {
			d := g.AddInput("d", graph.TensorType(graph.Double, 2))
			return opNode(g, "clip", "Clip", []*graph.Value{d}, attrs{"max": graph.AFloat(1)}, "y")
		}, "node clip (Clip): attribute min/max would become a float64 input"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := graph.New(c.name)
			x := floatIn(g, "x", 1, 2, 1, 3)
			sq := opNode(g, "sq", "Squeeze", []*graph.Value{x}, attrs{"axes": graph.AInts(0)}, "sq_out")
			g.Outputs = []*graph.Value{sq.Outputs[0], c.build(g, x).Outputs[0]}
			m := &graph.Model{Graph: g, Opsets: map[string]int64{"": c.from}, IRVersion: 3}
			before := g.String()
			n, err := passes.UpgradeOpset(m, 13)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if n != 0 || g.String() != before || m.Opset("") != c.from || m.IRVersion != 3 {
				t.Errorf("the failed upgrade changed the model (%d rewritten, opset %d):\n%s", n, m.Opset(""), g.String())
			}
		})
	}

	g := graph.New("g")
	g.Outputs = opNode(g, "sq", "Squeeze", []*graph.Value{floatIn(g, "x", 1, 2)}, attrs{"axes": graph.AInts(0)}, "y").Outputs
	for _, c := range []struct {
		from, target int64
		want         string
	}{
		{11, 6, "target opset 6 outside 7..21"},
		{11, 22, "target opset 22 outside 7..21"},
		{6, 13, "source opset 6 is below 7"},
		{0, 13, "imports no default-domain opset"},
	} {
		m := &graph.Model{Graph: g, Opsets: map[string]int64{"": c.from}}
		if c.from == 0 {
			m.Opsets = map[string]int64{"com.microsoft": 1}
		}
		if _, err := passes.UpgradeOpset(m, c.target); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%d -> %d: error %v, want %q", c.from, c.target, err, c.want)
		}
	}
	if _, err := passes.UpgradeOpset(nil, 13); err == nil {
		t.Error("nil model: no error")
	}
	// At or above the target: nothing to do.
	before := g.String()
	for _, from := range []int64{13, 16} {
		m := &graph.Model{Graph: g, Opsets: map[string]int64{"": from}}
		if n, err := passes.UpgradeOpset(m, 13); n != 0 || err != nil || m.Opset("") != from || g.String() != before {
			t.Errorf("opset %d to 13: %d, %v, opset %d", from, n, err, m.Opset(""))
		}
	}
}

// ExampleUpgradeOpset upgrades an opset-11 Squeeze, whose axes are an
// attribute, to opset 13, where they are an input.
func ExampleUpgradeOpset() {
	g := graph.New("example")
	x := g.AddInput("x", graph.TensorType(graph.Float, 1, 3))
	sq := g.AddNode("squeeze", "Squeeze", []*graph.Value{x}, []string{"y"}, map[string]*graph.Attr{"axes": graph.AInts(0)})
	g.Outputs = []*graph.Value{sq.Outputs[0]}
	m := &graph.Model{Graph: g, Opsets: map[string]int64{"": 11}, IRVersion: 6}

	n, err := passes.UpgradeOpset(m, 13)
	if err != nil {
		panic(err)
	}
	fmt.Println(n, "node rewritten; opset", m.Opset(""), "IR version", m.IRVersion)
	fmt.Print(g)
	// Output:
	// 1 node rewritten; opset 13 IR version 7
	// graph example(x: float32[1,3]) -> (y: undefined[*]) {
	//   init squeeze_axes: int64[1] = [0]
	//   y = Squeeze(x, squeeze_axes)  # squeeze
	// }
}
