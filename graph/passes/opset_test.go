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
