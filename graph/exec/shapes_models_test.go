package exec_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/onnx"
	"github.com/quanta-go/quanta/tensor"
)

// shapeModelsDir returns the models folder of shared/, found beside the
// repository by walking up from the package directory, or "".
func shapeModelsDir(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		p := filepath.Join(dir, "shared", "models")
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// modelCase is a real model with fixed input shapes (and int64 input
// values).
type modelCase struct {
	file   string
	shapes map[string][]int
	ints   map[string]int64
}

var shapeModels = []modelCase{
	{file: "ppocr/ch_PP-OCRv4_det_infer.onnx", shapes: map[string][]int{"x": {1, 3, 640, 640}}},
	{file: "ppocr/ch_PP-OCRv4_rec_infer.onnx", shapes: map[string][]int{"x": {1, 3, 48, 320}}},
	{file: "ppocr/ch_ppocr_mobile_v2.0_cls_infer.onnx", shapes: map[string][]int{"x": {1, 3, 48, 192}}},
	{file: "silero/silero_vad_v5.onnx", shapes: map[string][]int{"input": {1, 512}, "state": {2, 1, 128}, "sr": {}},
		ints: map[string]int64{"sr": 16000}},
}

// runAll runs the model at path on random inputs of the case's shapes and
// returns every value the run computes, by name: the model is run with all
// main-graph node outputs made graph outputs, then every If whose
// condition the run computed is replaced by the nodes of the branch taken
// (an Identity per output), and the model is run again, until no If is
// left, so the values inside the branches taken are computed too.
func runAll(t *testing.T, path string, c modelCase) map[string]*tensor.Tensor {
	m, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	g := m.Graph
	rng := tensor.NewRNG(7)
	in := map[string]*tensor.Tensor{}
	for _, v := range g.Inputs {
		sh := c.shapes[v.Name]
		if x, ok := c.ints[v.Name]; ok {
			in[v.Name] = tensor.FromInt64([]int64{x}).Reshape(sh...)
			continue
		}
		in[v.Name] = tensor.RandUniform(rng, -1, 1, sh...)
	}
	for round := 0; ; round++ {
		isOut := map[*graph.Value]bool{}
		for _, o := range g.Outputs {
			isOut[o] = true
		}
		for _, n := range g.Nodes {
			for _, o := range n.Outputs {
				if o != nil && !isOut[o] {
					isOut[o] = true
					g.Outputs = append(g.Outputs, o)
				}
			}
		}
		p, err := exec.Compile(m, exec.Options{})
		if err != nil {
			t.Fatal(err)
		}
		out, err := p.Run(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		if round == 8 || !inlineIfs(t, g, out) {
			for k, v := range in {
				out[k] = v
			}
			return out
		}
	}
}

// inlineIfs replaces each If node of g whose condition is in vals by the
// nodes of the branch taken, and reports whether it replaced any.
func inlineIfs(t *testing.T, g *graph.Graph, vals map[string]*tensor.Tensor) bool {
	var nodes []*graph.Node
	changed := false
	for _, n := range g.Nodes {
		cond := vals[n.Input(0).String()]
		if n.OpType != "If" || cond == nil {
			nodes = append(nodes, n)
			continue
		}
		name := "else_branch"
		if cond.Bools()[0] {
			name = "then_branch"
		}
		b := n.Attrs[name].G
		for _, bn := range b.Nodes {
			bn.Graph = g
			for _, o := range bn.Outputs {
				if o != nil {
					o.Graph = g
				}
			}
			nodes = append(nodes, bn)
		}
		for i, o := range n.Outputs {
			if o == nil {
				continue
			}
			id := &graph.Node{Name: n.Name + "/inlined_" + o.Name, OpType: "Identity", Inputs: []*graph.Value{b.Outputs[i]},
				Outputs: []*graph.Value{o}, Attrs: map[string]*graph.Attr{}, Graph: g}
			o.Producer = id
			nodes = append(nodes, id)
		}
		changed = true
	}
	g.Nodes = nodes
	if err := graph.Verify(g); err != nil {
		t.Fatalf("inlining the branches taken: %v", err)
	}
	return changed
}

// checkAgainstRun checks every main-graph node output of m against the
// value a run computed: element type (storage), rank, known dimensions,
// and symbolic dimensions (one size per name, the inputs' names bound to
// the inputs' sizes). It returns how many values matched exactly.
func checkAgainstRun(t *testing.T, m *graph.Model, actual map[string]*tensor.Tensor) int {
	t.Helper()
	bind := map[string]int64{}
	checkParams := func(v *graph.Value, a *tensor.Tensor) {
		for i, d := range v.Type.Shape {
			if d.Param == "" {
				continue
			}
			size := int64(a.Dim(i))
			if b, ok := bind[d.Param]; ok && b != size {
				t.Errorf("%s: %s: dimension %d is %q = %d, elsewhere %d", v.Name, v.Type, i, d.Param, size, b)
			}
			bind[d.Param] = size
		}
	}
	for _, v := range m.Graph.Inputs {
		if a := actual[v.Name]; a != nil && v.Type.HasShape {
			checkParams(v, a)
		}
	}
	exact := 0
	for _, n := range allNodes(m.Graph) {
		for _, v := range n.Outputs {
			if v == nil {
				continue
			}
			a := actual[v.Name]
			if a == nil {
				continue // in a branch not taken
			}
			ty := v.Type
			if want, ok := ty.Elem.DType(); ty.Elem != graph.Undefined && (!ok || want != a.DType().Storage()) {
				t.Errorf("%s (%s): inferred %s, the run gives %s%v", v.Name, n, ty, a.DType(), a.Shape())
			}
			if !ty.HasShape {
				continue
			}
			if len(ty.Shape) != a.NDim() {
				t.Errorf("%s (%s): inferred %s, the run gives %v", v.Name, n, ty, a.Shape())
				continue
			}
			all := true
			for i, d := range ty.Shape {
				if d.Known() && d.Size != int64(a.Dim(i)) {
					t.Errorf("%s (%s): inferred %s, the run gives %v", v.Name, n, ty, a.Shape())
				}
				all = all && d.Known()
			}
			checkParams(v, a)
			if all {
				exact++
			}
		}
	}
	return exact
}

// allNodes returns the nodes of g and its subgraphs.
func allNodes(g *graph.Graph) []*graph.Node {
	var out []*graph.Node
	for _, n := range g.Nodes {
		out = append(out, n)
		for _, sg := range n.Subgraphs() {
			out = append(out, allNodes(sg)...)
		}
	}
	return out
}

// computed counts the node outputs of m (subgraphs included) the run
// computed.
func computed(m *graph.Model, actual map[string]*tensor.Tensor) int {
	k := 0
	for _, n := range allNodes(m.Graph) {
		for _, o := range n.Outputs {
			if o != nil && actual[o.Name] != nil {
				k++
			}
		}
	}
	return k
}

// TestInferShapesModels infers the shapes of the shared real models with
// fixed input shapes and compares every main-graph value with a run of the
// model on random inputs of those shapes; then again with the models' own
// symbolic input shapes, whose inferred dimensions must agree with the
// same run (symbols bound consistently).
func TestInferShapesModels(t *testing.T) {
	dir := shapeModelsDir(t)
	if dir == "" {
		t.Skip("no shared/models folder beside the repository (looked in every parent of the package directory)")
	}
	for _, c := range shapeModels {
		t.Run(filepath.Base(c.file), func(t *testing.T) {
			path := filepath.Join(dir, c.file)
			actual := runAll(t, path, c)

			fixed, err := onnx.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range fixed.Graph.Inputs {
				sh := c.shapes[v.Name]
				dims := make([]int64, len(sh))
				for i, d := range sh {
					dims[i] = int64(d)
				}
				v.Type = graph.TensorType(v.Type.Elem, dims...)
			}
			rep, err := exec.InferShapes(fixed)
			if err != nil {
				t.Fatal(err)
			}
			exact := checkAgainstRun(t, fixed, actual)
			total := computed(fixed, actual)
			t.Logf("fixed inputs: %v; %d of the %d values the run computes inferred exactly", rep, exact, total)
			if exact < total {
				t.Errorf("only %d of %d values inferred exactly", exact, total)
			}

			sym, err := onnx.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			srep, err := exec.InferShapes(sym)
			if err != nil {
				t.Fatal(err)
			}
			sexact := checkAgainstRun(t, sym, actual)
			t.Logf("symbolic inputs: %v; %d of the %d values the run computes exact", srep, sexact, computed(sym, actual))
			if srep.Values != rep.Values || srep.Exact+srep.Symbolic+srep.Partial+srep.Unknown != srep.Values {
				t.Errorf("symbolic report %v does not add up (fixed: %v)", srep, rep)
			}
		})
	}
}
