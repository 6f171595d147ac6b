package exec

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// TestSoftmaxFloat32Lines checks Softmax over contiguous lines (the
// float32 exponential path) against the float64 softmax of the same
// float32 differences x - max: every value
// within 8 ulps-worth of relative error (plus a tiny absolute floor for
// values near zero), and a -Inf entry giving 0.
func TestSoftmaxFloat32Lines(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, shape := range [][]int{{3, 1000}, {2, 5, 17}, {4, 1}} {
		n := 1
		for _, d := range shape {
			n *= d
		}
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * 8)
		}
		x[0] = float32(math.Inf(-1))
		out, err := runOp(13, "Softmax", map[string]*graph.Attr{"axis": graph.AInt(-1)}, 1, tensor.FromFloat32(x, shape...))
		if err != nil {
			t.Fatal(err)
		}
		y := out[0].F32()
		line := shape[len(shape)-1]
		for r := 0; r < n/line; r++ {
			m := math.Inf(-1)
			for _, v := range x[r*line : (r+1)*line] {
				m = math.Max(m, float64(v))
			}
			// x - m is rounded to float32, as the kernel (and the
			// float64 path) computes it.
			d := func(v float32) float64 { return float64(v - float32(m)) }
			var s float64
			for _, v := range x[r*line : (r+1)*line] {
				s += math.Exp(d(v))
			}
			for j := 0; j < line; j++ {
				w := math.Exp(d(x[r*line+j])) / s
				if g := float64(y[r*line+j]); math.Abs(g-w) > 8*w/(1<<23)+1e-37 {
					t.Fatalf("%v: softmax[%d][%d] = %v, float64 %v", shape, r, j, g, w)
				}
			}
		}
		if line > 1 && y[0] != 0 {
			t.Errorf("%v: softmax of -Inf = %v, want 0", shape, y[0])
		}
	}
}
