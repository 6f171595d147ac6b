package graph

import (
	"testing"

	"github.com/quanta-go/quanta/tensor"
)

func TestNames(t *testing.T) {
	g := New("g")
	x := g.AddInput("x", TensorType(Float, 1))
	g.AddInitializer("w", tensor.FromFloat32([]float32{1}, 1))
	body := New("body")
	inner := body.AddNode("inner", "Neg", []*Value{x}, []string{"y_1"}, nil)
	body.Outputs = inner.Outputs
	g.AddNode("if", "If", []*Value{x}, []string{"y"}, map[string]*Attr{"then_branch": AGraph(body)})
	n := NamesOf(g)
	for _, name := range []string{"x", "w", "y", "if", "inner", "y_1"} {
		if !n[name] {
			t.Errorf("%q not among the names", name)
		}
	}
	if got := n.Unique("y"); got != "y_2" {
		t.Errorf("Unique(y) = %q, want y_2 (y and y_1 are taken)", got)
	}
	if got := n.Unique("y"); got != "y_3" {
		t.Errorf("second Unique(y) = %q, want y_3", got)
	}
	if got := n.Unique("z"); got != "z" {
		t.Errorf("Unique(z) = %q", got)
	}
}
