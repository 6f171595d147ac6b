package exec_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/onnx"
	"github.com/quanta-go/quanta/tensor"
)

// TestConformance runs every ONNX node test case vendored under
// testdata/node/<case> (model.onnx and test_data_set_0 with input_*.pb and
// output_*.pb, copied from ONNX's backend test data) and compares the
// outputs: floats within rtol 1e-3, atol 1e-7; integers and bools exactly.
// Every vendored case must pass; the log reports pass counts per operator
// (a case counts for every operator its main graph uses).
func TestConformance(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "node", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatal("no conformance cases under testdata/node")
	}
	type count struct{ pass, total int }
	perOp := map[string]*count{}
	for _, dir := range dirs {
		var ops []string
		passed := t.Run(filepath.Base(dir), func(t *testing.T) {
			var err error
			ops, err = runCase(dir)
			if err != nil {
				t.Fatal(err)
			}
		})
		for _, op := range ops {
			c := perOp[op]
			if c == nil {
				c = &count{}
				perOp[op] = c
			}
			c.total++
			if passed {
				c.pass++
			}
		}
	}
	var names []string
	for op := range perOp {
		names = append(names, op)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, op := range names {
		fmt.Fprintf(&b, " %s %d/%d", op, perOp[op].pass, perOp[op].total)
	}
	t.Logf("%d cases; passed per operator:%s", len(dirs), b.String())
}

// runCase runs one case and returns the operators of its main graph.
func runCase(dir string) ([]string, error) {
	m, err := onnx.Load(filepath.Join(dir, "model.onnx"))
	if err != nil {
		return nil, err
	}
	var ops []string
	for op := range m.Graph.OpCounts() {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	p, err := exec.Compile(m, exec.Options{})
	if err != nil {
		return ops, err
	}
	data := filepath.Join(dir, "test_data_set_0")
	inputs := map[string]*tensor.Tensor{}
	for i, name := range p.InputNames() {
		f := filepath.Join(data, fmt.Sprintf("input_%d.pb", i))
		if _, err := os.Stat(f); err != nil {
			continue // an input with a default value
		}
		x, err := onnx.ReadTensor(f)
		if err != nil {
			return ops, err
		}
		inputs[name] = x
	}
	outs, err := p.Run(context.Background(), inputs)
	if err != nil {
		return ops, err
	}
	for i, name := range p.OutputNames() {
		want, err := onnx.ReadTensor(filepath.Join(data, fmt.Sprintf("output_%d.pb", i)))
		if err != nil {
			return ops, err
		}
		if err := sameTensor(outs[name], want); err != nil {
			return ops, fmt.Errorf("output %d (%s): %w", i, name, err)
		}
	}
	return ops, nil
}

// sameTensor compares got with want: dtype, shape, and values (floats
// within rtol 1e-3, atol 1e-7, NaN equal to NaN; others exactly).
func sameTensor(got, want *tensor.Tensor) error {
	if got.DType() != want.DType() || !tensor.SameShape(got.Shape(), want.Shape()) {
		return fmt.Errorf("got %s%v, want %s%v", got.DType(), got.Shape(), want.DType(), want.Shape())
	}
	if got.DType() == tensor.Float32 {
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
	if got.DType() == tensor.Int64 {
		g, w := got.I64(), want.I64()
		for i := range w {
			if g[i] != w[i] {
				return fmt.Errorf("element %d: got %d, want %d", i, g[i], w[i])
			}
		}
		return nil
	}
	g, w := got.Float64s(), want.Float64s() // exact for the other dtypes
	for i := range w {
		if g[i] != w[i] {
			return fmt.Errorf("element %d: got %v, want %v", i, g[i], w[i])
		}
	}
	return nil
}
