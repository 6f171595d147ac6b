package graph

import (
	"bytes"
	"testing"

	"github.com/quanta-go/quanta/tensor"
)

// TestClone checks that a clone dumps identically, that subgraph reads
// of enclosing values point at the clone's values, and that rewriting the
// clone leaves the original as it was.
func TestClone(t *testing.T) {
	g := New("main")
	x := g.AddInput("x", TensorType(Float, 2))
	c := g.AddInitializer("c", tensor.FromFloat32([]float32{1, 2}, 2))
	a := g.AddNode("add", "Add", []*Value{x, c}, []string{"s"}, nil)
	body := New("then")
	neg := body.AddNode("neg", "Neg", []*Value{a.Outputs[0]}, []string{"n"}, nil)
	body.Outputs = []*Value{neg.Outputs[0]}
	els := New("else")
	id := els.AddNode("id", "Identity", []*Value{x}, []string{"i"}, nil)
	els.Outputs = []*Value{id.Outputs[0]}
	cond := g.AddInitializer("cond", tensor.FromBool([]bool{true}))
	iff := g.AddNode("if", "If", []*Value{cond}, []string{"y"}, map[string]*Attr{"then_branch": AGraph(body), "else_branch": AGraph(els)})
	g.Outputs = []*Value{iff.Outputs[0]}
	m := &Model{Graph: g, Opsets: map[string]int64{"": 17}}
	if err := Verify(g); err != nil {
		t.Fatal(err)
	}
	var before bytes.Buffer
	if err := Dump(&before, g); err != nil {
		t.Fatal(err)
	}
	cm := m.Clone()
	if err := Verify(cm.Graph); err != nil {
		t.Fatalf("clone does not verify: %v", err)
	}
	var got bytes.Buffer
	if err := Dump(&got, cm.Graph); err != nil {
		t.Fatal(err)
	}
	if got.String() != before.String() {
		t.Fatalf("clone dumps\n%s\nwant\n%s", got.String(), before.String())
	}
	cbody := cm.Graph.Nodes[1].Attrs["then_branch"].G
	if cbody.Nodes[0].Inputs[0] != cm.Graph.Nodes[0].Outputs[0] {
		t.Fatal("the cloned subgraph reads the original's value, not the clone's")
	}
	if cbody.Parent != cm.Graph.Nodes[1] {
		t.Fatal("the cloned subgraph's parent is not the cloned If")
	}
	cm.Graph.Nodes[0].OpType = "Sub"
	cm.Graph.Nodes[0].Outputs[0].Name = "renamed"
	cm.Opsets[""] = 13
	var after bytes.Buffer
	if err := Dump(&after, g); err != nil {
		t.Fatal(err)
	}
	if after.String() != before.String() || m.Opsets[""] != 17 {
		t.Fatal("rewriting the clone changed the original")
	}
}
