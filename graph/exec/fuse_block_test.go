package exec

import (
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// TestFuseBlockPerChannel runs a squeeze-excite scale (computed from a
// per-channel value inside the run, so on scalar registers) and a hard-swish
// over planes of 320 and 5000 elements (blocks of one plane, and of the
// default length with a plane boundary inside blocks) and checks the
// fused program's bits against the nodes one by one at every thread count.
func TestFuseBlockPerChannel(t *testing.T) {
	for _, hw := range [][2]int{{16, 20}, {50, 100}} {
		g := graph.New("se")
		x := g.AddInput("x", graph.TensorType(graph.Float, 2, 3, int64(hw[0]), int64(hw[1])))
		se := g.AddInput("se", graph.TensorType(graph.Float, 2, 3, 1, 1))
		three, six := g.AddInitializer("three", tensor.Scalar(3)), g.AddInitializer("six", tensor.Scalar(6))
		node := func(name, op string, in ...*graph.Value) *graph.Value {
			return g.AddNode(name, op, in, []string{name}, nil).Outputs[0]
		}
		hs := g.AddNode("hs", "HardSigmoid", []*graph.Value{se}, []string{"hs"}, map[string]*graph.Attr{"alpha": graph.AFloat(0.2), "beta": graph.AFloat(0.5)}).Outputs[0]
		sq := node("sq", "Mul", hs, se)
		m := node("m", "Mul", x, sq)
		a := node("a", "Add", m, three)
		c := node("c", "Relu", a)
		p := node("p", "Mul", m, c)
		y := node("y", "Div", p, six)
		g.Outputs = []*graph.Value{y}
		rng := rand.New(rand.NewPCG(9, uint64(hw[0])))
		n := 2 * 3 * hw[0] * hw[1]
		in := map[string]*tensor.Tensor{
			"x":  tensor.FromFloat32(fuseRandn(rng, n), 2, 3, hw[0], hw[1]),
			"se": tensor.FromFloat32(fuseRandn(rng, 6), 2, 3, 1, 1),
		}
		want, got, _ := runBoth(t, model(g, 13), in)
		for th, out := range got {
			for i, v := range out["y"].F32() {
				if !sameF32(v, want["y"].F32()[i]) {
					t.Fatalf("%v, %d threads: y[%d] = %v, unfused %v", hw, th+1, i, v, want["y"].F32()[i])
				}
			}
		}
	}
}
