package exec

import (
	"context"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// bodiesStub is a control-flow kernel exposing one compiled body, run on
// its inputs.
type bodiesStub struct{ sp *Subprogram }

func (k *bodiesStub) Run(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return f.Run(k.sp, in)
}

func (k *bodiesStub) bodies() []*Subprogram { return []*Subprogram{k.sp} }

// TestQDQBody checks that fusion reaches the compiled bodies of
// control-flow kernels: a body (a graph with an input and its output
// pinned) whose Conv, HardSwish and Add patterns fuse, bit-identical for
// the exact patterns to the same body run literally.
func TestQDQBody(t *testing.T) {
	c := linCase{name: "body", op: "Conv", xsh: []int{1, 4, 6, 6}, wsh: []int{4, 4, 3, 3}, attrs: map[string]*graph.Attr{"pads": graph.AInts(1, 1, 1, 1)}, nch: 4}
	d := c.build(2)
	b := d.b
	h := b.q(b.node("HardSwish", []*graph.Value{b.dq(d.y, d.sy, d.zy, false)}, nil), 0.04, 10, false)
	s := b.q(b.node("Add", []*graph.Value{b.dq(h, 0.04, 10, false), b.dq(d.xval, d.sx, d.zx, false)}, nil), 0.05, 100, false)
	m := b.model(s)
	compile := func(fuse bool) *Subprogram {
		cc := &CompileContext{model: m, folded: map[*graph.Value]*tensor.Tensor{}}
		sp, err := cc.CompileGraph(m.Graph)
		if err != nil {
			t.Fatal(err)
		}
		if fuse {
			outer := &Subprogram{g: graph.New("outer"), slots: map[*graph.Value]int{}, consts: map[int]*tensor.Tensor{}}
			outer.steps = []step{{kernel: &bodiesStub{sp}}}
			fuseQDQ(outer)
		}
		return sp
	}
	lit, fused := compile(false), compile(true)
	if len(fused.steps) != 3 {
		t.Fatalf("%d steps in the fused body, want 3", len(fused.steps))
	}
	rows := quantReport(&Subprogram{steps: []step{{kernel: &bodiesStub{fused}}}}, "")
	int8s := 0
	for _, r := range rows {
		if r.Int8 {
			int8s++
			if r.Graph != m.Graph.Name {
				t.Fatalf("row %+v names graph %q, want %q", r, r.Graph, m.Graph.Name)
			}
		}
	}
	if int8s != 10 {
		t.Fatalf("%d int8 rows in %+v, want 10 (3 Conv, 3 HardSwish, 4 Add)", int8s, rows)
	}
	x := b.feeds[d.xval.Name]
	f := &Frame{ctx: context.Background()}
	want, err := f.Run(lit, []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.Run(fused, []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	// The Conv is within a step of the literal graph; the table and the
	// Add that follow are exact given their inputs, so compare the whole
	// chain with the fused Conv's result fed to the literal rest.
	if !tensor.SameShape(got[0].Shape(), want[0].Shape()) {
		t.Fatalf("shapes %v, %v", got[0].Shape(), want[0].Shape())
	}
	off := 0
	for i, v := range qvals(want[0]) {
		if dv := qvals(got[0])[i] - v; dv != 0 {
			off++
		}
	}
	if float64(off) > 0.1*float64(want[0].Numel()) {
		t.Fatalf("%d of %d outputs differ from the literal body", off, want[0].Numel())
	}
}

// TestQuantReport checks the report's rows and summary on a model with
// fused patterns and a float fallback (Softmax between DQ and Q).
func TestQuantReport(t *testing.T) {
	b := newQB("report", 3)
	x := b.input([]int{2, 5}, false, 128)
	sg := b.q(b.node("Sigmoid", []*graph.Value{b.dq(x, 0.05, 128, false)}, nil), 1.0/256, 0, false)
	sm := b.node("Softmax", []*graph.Value{b.dq(sg, 1.0/256, 0, false)}, nil)
	m := b.model(b.q(sm, 1.0/256, 0, false))
	p := runQDQBoth(t, m, b.feeds)
	rows := p.QuantReport()
	want := []QuantNode{
		{Op: "DequantizeLinear", Int8: true, Pattern: "QLinearLUT"},
		{Op: "Sigmoid", Int8: true, Pattern: "QLinearLUT"},
		{Op: "QuantizeLinear", Int8: true, Pattern: "QLinearLUT"},
		{Op: "DequantizeLinear"},
		{Op: "Softmax"},
		{Op: "QuantizeLinear"},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows %+v, want %+v", rows, want)
	}
	for i := range want {
		if rows[i].Node == "" || rows[i].Node != m.Graph.Nodes[i].Name {
			t.Fatalf("row %d: node %q, want %q", i, rows[i].Node, m.Graph.Nodes[i].Name)
		}
		rows[i].Node = ""
		if rows[i] != want[i] {
			t.Fatalf("row %d: %+v, want %+v", i, rows[i], want[i])
		}
	}
	sum := SummarizeQuant(rows)
	wantSum := []QuantSummary{{"DequantizeLinear", 1, 1}, {"QuantizeLinear", 1, 1}, {"Sigmoid", 1, 0}, {"Softmax", 0, 1}}
	for i := range wantSum {
		if sum[i] != wantSum[i] {
			t.Fatalf("summary %+v, want %+v", sum, wantSum)
		}
	}
	ref, _ := Compile(m, Options{Reference: true})
	for _, r := range ref.QuantReport() {
		if r.Int8 {
			t.Fatalf("reference program reports %+v", r)
		}
	}
}
