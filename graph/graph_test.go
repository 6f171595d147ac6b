package graph

import (
	"strings"
	"testing"

	"github.com/quanta-go/quanta/tensor"
)

// smallGraph builds y = Relu(Conv(x, w)) with an unused Neg node and an
// unused initializer.
func smallGraph() *Graph {
	g := New("main")
	x := g.AddInput("x", Type{Elem: Float, HasShape: true, Shape: []Dim{{Size: 1}, {Size: 3}, {Param: "N"}, {Size: -1}}})
	w := g.AddInitializer("w", tensor.FromFloat32(make([]float32, 8*3*3*3), 8, 3, 3, 3))
	g.AddInitializer("unused", tensor.FromInt64([]int64{1, 2}, 2))
	conv := g.AddNode("conv0", "Conv", []*Value{x, w, nil}, []string{"c"}, map[string]*Attr{
		"kernel_shape": AInts(3, 3), "pads": AInts(1, 1, 1, 1), "auto_pad": AString("NOTSET")})
	relu := g.AddNode("relu0", "Relu", []*Value{conv.Outputs[0]}, []string{"y"}, nil)
	g.AddNode("dead", "Neg", []*Value{conv.Outputs[0]}, []string{"z"}, nil)
	relu.Outputs[0].Type = TensorType(Float, 1, 8, -1, -1)
	g.Outputs = []*Value{relu.Outputs[0]}
	return g
}

func TestDumpVerifySortDCE(t *testing.T) {
	g := smallGraph()
	if err := Verify(g); err != nil {
		t.Fatal(err)
	}
	want := `graph main(x: float32[1,3,N,?]) -> (y: float32[1,8,?,?]) {
  init w: float32[8,3,3,3]
  init unused: int64[2] = [1, 2]
  c = Conv(x, w, _) {auto_pad="NOTSET", kernel_shape=[3,3], pads=[1,1,1,1]}  # conv0
  y = Relu(c)  # relu0
  z = Neg(c)  # dead
}
`
	if got := g.String(); got != want {
		t.Errorf("dump:\n%s\nwant:\n%s", got, want)
	}
	if n := EliminateDeadCode(g); n != 1 || len(g.Nodes) != 2 || len(g.Initializers) != 1 {
		t.Errorf("DCE removed %d nodes, left %d nodes and %d initializers", n, len(g.Nodes), len(g.Initializers))
	}
	// Reverse the nodes: Sort restores dependency order.
	g.Nodes[0], g.Nodes[1] = g.Nodes[1], g.Nodes[0]
	if err := Sort(g); err != nil {
		t.Fatal(err)
	}
	if g.Nodes[0].OpType != "Conv" {
		t.Errorf("Sort gave %v first", g.Nodes[0])
	}
	if c := g.OpCounts(); c["Conv"] != 1 || c["Relu"] != 1 {
		t.Errorf("OpCounts %v", c)
	}
}

func TestVerifyErrors(t *testing.T) {
	cases := []struct {
		name string
		mod  func(g *Graph)
		want string
	}{
		{"undefined input", func(g *Graph) {
			g.Nodes[1].Inputs[0] = &Value{Name: "ghost", Graph: g}
		}, `reads "ghost"`},
		{"duplicate name", func(g *Graph) { g.Nodes[2].Outputs[0].Name = "y" }, `"y" is defined twice`},
		{"cycle", func(g *Graph) {
			g.Nodes[0].Inputs[2] = g.Nodes[1].Outputs[0] // conv reads relu's output
		}, "cycle through nodes conv0 (Conv), relu0 (Relu)"},
		{"undefined output", func(g *Graph) { g.Outputs = append(g.Outputs, &Value{Name: "q", Graph: g}) }, `output "q" is not defined`},
		{"no op type", func(g *Graph) { g.Nodes[2].OpType = "" }, "has no op type"},
		{"initializer without value", func(g *Graph) { g.Initializers[0].Const = nil }, `initializer "w" has no value`},
	}
	for _, c := range cases {
		g := smallGraph()
		c.mod(g)
		err := Verify(g)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
	}
	if err := Sort(func() *Graph { g := smallGraph(); g.Nodes[0].Inputs[2] = g.Nodes[1].Outputs[0]; return g }()); err == nil {
		t.Error("Sort accepted a cycle")
	}
}

// TestSubgraphs checks an If node whose branches read an outer value:
// verification, ordering by the outer read, dead-code elimination keeping
// the producer of the outer value, and the dump.
func TestSubgraphs(t *testing.T) {
	g := New("main")
	cond := g.AddInput("cond", TensorType(Bool))
	x := g.AddInput("x", TensorType(Float, 2))
	neg := g.AddNode("neg", "Neg", []*Value{x}, []string{"nx"}, nil)
	then := New("then")
	th := then.AddNode("t_id", "Identity", []*Value{neg.Outputs[0]}, []string{"t_out"}, nil)
	then.Outputs = []*Value{th.Outputs[0]}
	els := New("else")
	el := els.AddNode("e_abs", "Abs", []*Value{x}, []string{"e_out"}, nil)
	els.Outputs = []*Value{el.Outputs[0]}
	ifn := g.AddNode("if", "If", []*Value{cond}, []string{"y"}, map[string]*Attr{"then_branch": AGraph(then), "else_branch": AGraph(els)})
	g.Outputs = []*Value{ifn.Outputs[0]}
	if err := Verify(g); err != nil {
		t.Fatal(err)
	}
	// Put If before Neg: its then-branch reads nx, so Sort moves Neg first.
	g.Nodes[0], g.Nodes[1] = g.Nodes[1], g.Nodes[0]
	if err := Sort(g); err != nil || g.Nodes[0] != neg {
		t.Fatalf("Sort: %v, first %v", err, g.Nodes[0])
	}
	if n := EliminateDeadCode(g); n != 0 {
		t.Errorf("DCE removed %d nodes that the If branch needs", n)
	}
	if u := g.Users(); len(u[neg.Outputs[0]]) != 1 || u[neg.Outputs[0]][0] != ifn {
		t.Errorf("users of nx: %v", u[neg.Outputs[0]])
	}
	dump := g.String()
	for _, want := range []string{"y = If(cond)  # if", "else_branch: graph else() -> (e_out: undefined[*]) {", "t_out = Identity(nx)"} {
		if !strings.Contains(dump, want) {
			t.Errorf("dump lacks %q:\n%s", want, dump)
		}
	}
	// A branch reading a value defined nowhere.
	els.Nodes[0].Inputs[0] = &Value{Name: "ghost"}
	if err := Verify(g); err == nil || !strings.Contains(err.Error(), `node if (If): graph else`) {
		t.Errorf("undefined outer read: %v", err)
	}
}

func TestAttrGetters(t *testing.T) {
	g := smallGraph()
	n := g.Nodes[0]
	if v, err := n.Ints("pads", nil); err != nil || len(v) != 4 {
		t.Errorf("Ints: %v %v", v, err)
	}
	if v, err := n.Int("group", 1); err != nil || v != 1 {
		t.Errorf("default Int: %v %v", v, err)
	}
	if _, err := n.Int("pads", 0); err == nil || !strings.Contains(err.Error(), `node conv0 (Conv): attribute "pads" is ints, want an int`) {
		t.Errorf("kind mismatch: %v", err)
	}
	if s, err := n.StringAttr("auto_pad", ""); err != nil || s != "NOTSET" {
		t.Errorf("StringAttr: %q %v", s, err)
	}
}

// TestCopyAttrs checks that the copy's attributes can change without the
// original's changing, and that nil stays nil.
func TestCopyAttrs(t *testing.T) {
	a := map[string]*Attr{"axis": AInt(1)}
	c := CopyAttrs(a)
	c["axis"].I = 0
	c["new"] = AInt(2)
	if a["axis"].I != 1 || len(a) != 1 {
		t.Errorf("original changed: %v", a)
	}
	if CopyAttrs(nil) != nil {
		t.Error("CopyAttrs(nil) is not nil")
	}
}
