package exec

import (
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// TestResizeNearestBothAxes checks a nearest upsampling of height and
// width by different factors (gathered last axis first) against the
// definition y[c][i][j] = x[c][floor(i/2)][floor(j/3)].
func TestResizeNearestBothAxes(t *testing.T) {
	x := make([]float32, 2*3*4)
	for i := range x {
		x[i] = float32(i)
	}
	scales := tensor.FromFloat32([]float32{1, 1, 2, 3}, 4)
	out, err := runOp(13, "Resize", map[string]*graph.Attr{"mode": graph.AString("nearest"), "nearest_mode": graph.AString("floor"),
		"coordinate_transformation_mode": graph.AString("asymmetric")},
		1, tensor.FromFloat32(x, 1, 2, 3, 4), nil, scales)
	if err != nil {
		t.Fatal(err)
	}
	y := out[0]
	if !tensor.SameShape(y.Shape(), []int{1, 2, 6, 12}) {
		t.Fatalf("shape %v, want [1 2 6 12]", y.Shape())
	}
	for c := 0; c < 2; c++ {
		for i := 0; i < 6; i++ {
			for j := 0; j < 12; j++ {
				if got, want := y.F32()[(c*6+i)*12+j], x[(c*3+i/2)*4+j/3]; got != want {
					t.Fatalf("y[%d][%d][%d] = %v, want %v", c, i, j, got, want)
				}
			}
		}
	}
}
