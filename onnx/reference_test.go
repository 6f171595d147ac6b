package onnx

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// The vendored ONNX node test cases (testdata/node/*), with the text the
// onnx Python package gives for each in testdata/node/reference.txt
// (scripts/golden_onnx.py). The cases were picked for variety: every
// attribute kind ONNX models use, If, Loop and Scan subgraphs reading outer
// values, optional inputs and outputs, and test data of every element type.

// refLoadErrors are the cases import rejects, with a piece of the error.
var refLoadErrors = map[string]string{
	"test_elu":    "opset 6 of the default ONNX domain is not supported",
	"test_if_opt": `node Optional_1 (Optional): attribute "type": attributes of type type (13) are not supported`,
}

func nodeCases(t *testing.T) []string {
	dirs, err := filepath.Glob(filepath.Join("testdata", "node", "test_*"))
	if err != nil || len(dirs) < 30 {
		t.Fatalf("vendored node cases: %d, %v", len(dirs), err)
	}
	sort.Strings(dirs)
	return dirs
}

// readReference splits reference.txt into the text of each model.
func readReference(t *testing.T) map[string]string {
	f, err := os.Open(filepath.Join("testdata", "node", "reference.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ref := map[string]string{}
	var name string
	var b strings.Builder
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	flush := func() {
		if name != "" {
			ref[name] = b.String()
		}
		b.Reset()
	}
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "model "); ok {
			flush()
			name, _, _ = strings.Cut(rest, " ")
		}
		b.WriteString(line + "\n")
	}
	flush()
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ref
}

func TestNodeCasesMatchONNXReference(t *testing.T) {
	ref := readReference(t)
	for _, dir := range nodeCases(t) {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			want, ok := ref[name]
			if !ok {
				t.Fatalf("%s is not in reference.txt: run scripts/golden_onnx.py", name)
			}
			m, err := Load(filepath.Join(dir, "model.onnx"))
			if frag, bad := refLoadErrors[name]; bad {
				if err == nil || !strings.Contains(err.Error(), frag) || !strings.Contains(err.Error(), "model.onnx") {
					t.Fatalf("Load error %v, want one naming the file and containing %q", err, frag)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := summary(name, m)
			pbs, _ := filepath.Glob(filepath.Join(dir, "test_data_set_0", "*.pb"))
			sort.Strings(pbs)
			for _, pb := range pbs {
				got += "  data " + filepath.Base(pb) + " " + dataSummary(pb) + "\n"
			}
			if got != want {
				gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
				for i := range min(len(gl), len(wl)) {
					if gl[i] != wl[i] {
						t.Fatalf("line %d:\n got: %.300s\nwant: %.300s", i+1, gl[i], wl[i])
					}
				}
				t.Fatalf("got %d lines, want %d", len(gl), len(wl))
			}
		})
	}
}

// summary prints m as scripts/golden_onnx.py prints the file.
func summary(name string, m *graph.Model) string {
	var b strings.Builder
	fmt.Fprintf(&b, "model %s ir %d\n", name, m.IRVersion)
	for _, d := range sortedKeys(m.Opsets) {
		dom := d
		if dom == "" {
			dom = "-"
		}
		fmt.Fprintf(&b, "  opset %s %d\n", dom, m.Opsets[d])
	}
	graphSummary(&b, m.Graph, "  ")
	return b.String()
}

func graphSummary(b *strings.Builder, g *graph.Graph, ind string) {
	fmt.Fprintf(b, "%sgraph %s\n", ind, g.Name)
	var consts []*graph.Value
	for _, v := range g.Inputs {
		if v.Const != nil {
			consts = append(consts, v)
			continue
		}
		fmt.Fprintf(b, "%s  input %s %s\n", ind, v.Name, typeSummary(v.Type))
	}
	for _, v := range append(consts, g.Initializers...) {
		fmt.Fprintf(b, "%s  init %s %s\n", ind, v.Name, tensorSummary(v.Type.Elem, v.Const))
	}
	for _, n := range g.Nodes {
		dom := n.Domain
		if dom == "" {
			dom = "-"
		}
		fmt.Fprintf(b, "%s  node %s %s in=%s out=%s\n", ind, n.OpType, dom, names(n.Inputs), names(n.Outputs))
		for _, an := range sortedKeys(n.Attrs) {
			a := n.Attrs[an]
			p := fmt.Sprintf("%s    attr %s %d", ind, an, int(a.Kind))
			var vals []string
			switch a.Kind {
			case graph.AttrFloat:
				vals = []string{bits32(a.F)}
			case graph.AttrInt:
				vals = []string{fmt.Sprint(a.I)}
			case graph.AttrString:
				vals = []string{hex.EncodeToString([]byte(a.S))}
			case graph.AttrFloats:
				for _, f := range a.Fs {
					vals = append(vals, bits32(f))
				}
			case graph.AttrInts:
				for _, i := range a.Is {
					vals = append(vals, fmt.Sprint(i))
				}
			case graph.AttrStrings:
				for _, s := range a.Ss {
					vals = append(vals, hex.EncodeToString([]byte(s)))
				}
			case graph.AttrTensor:
				elem := graph.ElemTypeOf(a.T.DType())
				if n.OpType == "Constant" && n.Outputs[0] != nil {
					elem = n.Outputs[0].Type.Elem
				}
				vals = []string{tensorSummary(elem, a.T)}
			case graph.AttrGraph:
				b.WriteString(p + "\n")
				graphSummary(b, a.G, ind+"      ")
				continue
			}
			b.WriteString(p + " " + strings.Join(vals, " ") + "\n")
		}
	}
	for _, v := range g.Outputs {
		fmt.Fprintf(b, "%s  output %s %s\n", ind, v.Name, typeSummary(v.Type))
	}
}

func names(vs []*graph.Value) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = "_"
		if v != nil {
			s[i] = v.Name
		}
	}
	return strings.Join(s, ",")
}

func typeSummary(t graph.Type) string {
	if !t.HasShape {
		return fmt.Sprintf("%d *", int(t.Elem))
	}
	d := make([]string, len(t.Shape))
	for i, x := range t.Shape {
		d[i] = x.String()
	}
	return fmt.Sprintf("%d [%s]", int(t.Elem), strings.Join(d, ","))
}

func bits32(f float32) string { return fmt.Sprintf("%08x", math.Float32bits(f)) }

func tensorSummary(elem graph.ElemType, t *tensor.Tensor) string {
	dims := make([]string, t.NDim())
	for i, d := range t.Shape() {
		dims[i] = fmt.Sprint(d)
	}
	var vals []string
	switch t.DType() {
	case tensor.Float32:
		for _, v := range t.F32() {
			vals = append(vals, bits32(v))
		}
	case tensor.Int64:
		for _, v := range t.I64() {
			vals = append(vals, fmt.Sprint(v))
		}
	case tensor.Int32:
		for _, v := range t.I32() {
			vals = append(vals, fmt.Sprint(v))
		}
	case tensor.Int8:
		for _, v := range t.I8() {
			vals = append(vals, fmt.Sprint(v))
		}
	case tensor.Uint8:
		for _, v := range t.U8() {
			vals = append(vals, fmt.Sprint(v))
		}
	case tensor.Bool:
		for _, v := range t.Bools() {
			vals = append(vals, map[bool]string{false: "0", true: "1"}[v])
		}
	}
	return fmt.Sprintf("%d [%s] = %s", int(elem), strings.Join(dims, ","), strings.Join(vals, " "))
}

// dataSummary prints a test data file as the reference does: the tensor,
// "unsupported" for element types quanta cannot hold, "invalid" for files
// that are not tensors (sequences, optionals).
func dataSummary(path string) string {
	nt, err := ReadNamedTensor(path)
	if err != nil {
		var u *UnsupportedTypeError
		if errors.As(err, &u) {
			return fmt.Sprintf("%d [%s] unsupported", int(u.Elem), joinDims(u.Dims))
		}
		return "invalid"
	}
	return tensorSummary(nt.Elem, nt.Tensor)
}

func joinDims(d []int64) string {
	s := make([]string, len(d))
	for i, x := range d {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}
