package quantized

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
)

// TestUpsampleDispatchOnQuantized checks that ops.UpsampleNearest2d and
// ops.UpsampleBilinear2d (and nn.Upsample) run this package's kernels on
// quantized tensors, codes and qparams exactly, and that those agree with
// the float ops on the dequantized input: nearest exactly, bilinear within
// half a quantization step plus float32 rounding.
func TestUpsampleDispatchOnQuantized(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	attrs := []UpsampleAttrs{
		{ScaleFactor: [2]float64{2, 2}},
		{ScaleFactor: [2]float64{1.7, 0.6}},
		{Size: [2]int{9, 4}, AlignCorners: true},
		{Size: [2]int{9, 4}},
	}
	for _, dt := range dtypes {
		const scale = 0.05
		zp := randZP(r, dt)
		for _, shape := range [][]int{{2, 3, 5, 6}, {1, 1, 5, 6}, {3, 5, 6}} {
			x := randQ(r, dt, scale, zp, shape...)
			xf := ops.Dequantize(x)
			for _, a := range attrs {
				name := fmt.Sprintf("%v %v %+v", dt, shape, a)
				wantN, err := UpsampleNearest2d(x, a)
				if err != nil {
					t.Fatal(err)
				}
				gotN := ops.UpsampleNearest2d(x, a)
				sameQTensor(t, name+" nearest", gotN, wantN)
				wantB, err := UpsampleBilinear2d(x, a)
				if err != nil {
					t.Fatal(err)
				}
				gotB := ops.UpsampleBilinear2d(x, a)
				sameQTensor(t, name+" bilinear", gotB, wantB)

				for i, v := range ops.UpsampleNearest2d(xf, a).F32() {
					if q := ops.Dequantize(gotN).F32()[i]; q != v {
						t.Fatalf("%s nearest: element %d dequantizes to %v, float op %v", name, i, q, v)
					}
				}
				for i, v := range ops.UpsampleBilinear2d(xf, a).F32() {
					if q := ops.Dequantize(gotB).F32()[i]; math.Abs(float64(q-v)) > scale*0.5+1e-5 {
						t.Fatalf("%s bilinear: element %d dequantizes to %v, float op %v", name, i, q, v)
					}
				}
			}
		}
		x := randQ(r, dt, scale, zp, 2, 3, 4, 4)
		up, err := nn.NewUpsample(nn.UpsampleOptions{ScaleFactor: [2]float64{2, 2}, Mode: "bilinear"})
		if err != nil {
			t.Fatal(err)
		}
		want, _ := UpsampleBilinear2d(x, UpsampleAttrs{ScaleFactor: [2]float64{2, 2}})
		sameQTensor(t, dt.String()+" nn.Upsample", up.Forward(x), want)
	}
}
