package ops

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/tensor"
)

type upsampleCase struct {
	Mode         string    `json:"mode"`
	Shape        []int     `json:"shape"`
	Size         []int     `json:"size"`
	Scale        []float64 `json:"scale"`
	AlignCorners bool      `json:"align_corners"`
	OutShape     []int     `json:"out_shape"`
	X, GY, Y, GX []float32
	YAVX2        []float32 `json:"y_avx2"`
	GXAVX2       []float32 `json:"gx_avx2"`
}

func (c upsampleCase) attrs() UpsampleAttrs {
	a := UpsampleAttrs{AlignCorners: c.AlignCorners}
	if c.Size != nil {
		a.Size = [2]int{c.Size[0], c.Size[1]}
	} else {
		a.ScaleFactor = [2]float64{c.Scale[0], c.Scale[1]}
	}
	return a
}

func (c upsampleCase) String() string {
	return fmt.Sprintf("%s %v size %v scale %v align_corners=%v", c.Mode, c.Shape, c.Size, c.Scale, c.AlignCorners)
}

// ulps is the distance between a and b in units in the last place.
func ulps(a, b float32) int64 {
	key := func(v float32) int64 {
		u := int64(math.Float32bits(v))
		if u&(1<<31) != 0 {
			return -(u &^ (1 << 31))
		}
		return u
	}
	d := key(a) - key(b)
	if d < 0 {
		d = -d
	}
	return d
}

// nearestAdjoint returns the gradient the forward output of a nearest
// upsampling implies: each output gradient added, in row-major output
// order, to the input element the output copied. The source elements come
// from running UpsampleNearest2d on an input holding each element's index
// within its plane.
func nearestAdjoint(shape []int, a UpsampleAttrs, gy []float32) []float32 {
	h, w := shape[len(shape)-2], shape[len(shape)-1]
	pos := make([]float32, nnopProd(shape))
	for i := range pos {
		pos[i] = float32(i % (h * w))
	}
	src := UpsampleNearest2d(tensor.FromFloat32(pos, shape...), a).F32()
	gx := make([]float32, len(pos))
	per := len(src) / (len(pos) / (h * w))
	for o, s := range src {
		gx[o/per*h*w+int(s)] += gy[o]
	}
	return gx
}

func sameF32(a, b []float32) bool {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return len(a) == len(b)
}

// TestUpsampleTorchGolden compares UpsampleNearest2d and UpsampleBilinear2d
// outputs, output sizes and input gradients with PyTorch 1.13
// (scripts/golden_upsample.py): bit for bit with PyTorch's scalar kernels,
// and within 4 units in the last place or 1e-6 absolute (4 units in the
// last place of the inputs' magnitude, 2) of its AVX2 kernels, which fuse
// some multiply-adds, indices and weights included.
//
// Nearest gradients are the adjoint of the output (checked independently
// with nearestAdjoint). They equal PyTorch's except where PyTorch's
// backward kernel takes nearest_idx's shortcuts and its generic forward
// kernel does not (C > 1 and a scale factor other than 1 or 2 that gives
// an output of the input size or twice it): there PyTorch's gradient does
// not belong to its output, and those cases are counted.
func TestUpsampleTorchGolden(t *testing.T) {
	raw, err := os.ReadFile("testdata/upsample_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Torch string
		Cases []upsampleCase
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatalf("testdata/upsample_golden.json: %v", err)
	}
	if len(g.Cases) < 30 {
		t.Fatalf("testdata/upsample_golden.json: only %d cases", len(g.Cases))
	}
	var maxULP int64
	var maxAbs float64
	var torchNotAdjoint, avxDiffer, total int
	for _, c := range g.Cases {
		x := tensor.FromFloat32(append([]float32(nil), c.X...), c.Shape...).SetRequiresGrad(true)
		var y *tensor.Tensor
		switch c.Mode {
		case "nearest":
			y = UpsampleNearest2d(x, c.attrs())
		case "bilinear":
			y = UpsampleBilinear2d(x, c.attrs())
		default:
			t.Fatalf("%v: unknown mode", c)
		}
		nnopCheckShape(t, c.String(), y, c.OutShape...)
		if err := autograd.Backward(y, tensor.FromFloat32(c.GY, c.OutShape...)); err != nil {
			t.Fatal(err)
		}
		gx := x.Grad().F32()
		wantGX, avxGX := c.GX, c.GXAVX2
		if c.Mode == "nearest" {
			adj := nearestAdjoint(c.Shape, c.attrs(), c.GY)
			if !sameF32(gx, adj) {
				t.Fatalf("%v: gradient is not the adjoint of the output", c)
			}
			if !sameF32(gx, c.GX) {
				sh := c.Shape
				degenerate := c.Scale != nil && sh[1] > 1 && sh[2]*sh[3] > 1 &&
					(c.OutShape[2] == sh[2] || c.OutShape[2] == 2*sh[2] || c.OutShape[3] == sh[3] || c.OutShape[3] == 2*sh[3])
				if !degenerate {
					t.Fatalf("%v: gradient differs from torch's", c)
				}
				torchNotAdjoint++
				wantGX, avxGX = adj, adj
			}
		}
		for _, r := range []struct {
			name           string
			got, want, avx []float32
		}{{"y", y.F32(), c.Y, c.YAVX2}, {"gx", gx, wantGX, avxGX}} {
			for i, v := range r.got {
				if math.Float32bits(v) != math.Float32bits(r.want[i]) {
					t.Fatalf("%v: %s[%d] = %v, torch %v", c, r.name, i, v, r.want[i])
				}
				u, d := ulps(v, r.avx[i]), math.Abs(float64(v-r.avx[i]))
				if u > 4 && d > 1e-6 {
					t.Errorf("%v: %s[%d] = %v, torch avx2 %v (%d ulp)", c, r.name, i, v, r.avx[i], u)
				}
				total++
				if u != 0 {
					avxDiffer++
				}
				if math.Abs(float64(r.avx[i])) >= 1e-2 {
					maxULP = max(maxULP, u)
				}
				maxAbs = max(maxAbs, d)
			}
		}
	}
	if torchNotAdjoint != 2 {
		t.Errorf("%d nearest cases where torch's gradient is not its output's adjoint, want the 2 the golden file holds", torchNotAdjoint)
	}
	t.Logf("%d cases (%d values) equal torch %s's scalar kernels (%d nearest gradients are the adjoint instead); "+
		"its avx2 kernels differ on %d values, by at most %.3g (%d ulp on values >= 0.01 in magnitude)",
		len(g.Cases), total, g.Torch, torchNotAdjoint, avxDiffer, maxAbs, maxULP)
}

func TestUpsampleHand(t *testing.T) {
	x := tensor.FromFloat32([]float32{1, 2, 3, 4}, 1, 1, 2, 2)
	y := UpsampleNearest2d(x, UpsampleAttrs{ScaleFactor: [2]float64{2, 2}})
	nnopCheckShape(t, "nearest x2", y, 1, 1, 4, 4)
	nnopCheckClose(t, "nearest x2", y.F32(), []float64{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}, 0)
	// Downsampling 3 -> 2 reads floor(o*1.5): rows and columns 0 and 1.
	x3 := tensor.FromFloat32([]float32{1, 2, 3, 4, 5, 6, 7, 8, 9}, 1, 3, 3)
	y = UpsampleNearest2d(x3, UpsampleAttrs{Size: [2]int{2, 2}})
	nnopCheckShape(t, "nearest [C,H,W]", y, 1, 2, 2)
	nnopCheckClose(t, "nearest [C,H,W]", y.F32(), []float64{1, 2, 4, 5}, 0)

	// Bilinear 2x2 -> 3x3: align_corners puts the corners on the input's
	// and the centre at the mean; without it the sample points are
	// (o+0.5)*2/3-0.5 = 0, 0.5, 1.1667 (clipped to the last pixel).
	y = UpsampleBilinear2d(x, UpsampleAttrs{Size: [2]int{3, 3}, AlignCorners: true})
	nnopCheckClose(t, "bilinear align", y.F32(), []float64{1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4}, 1e-7)
	y = UpsampleBilinear2d(x, UpsampleAttrs{Size: [2]int{3, 3}})
	r := func(i, j float64) float64 { return 1 + 2*i + j }
	a, b, c := 0.0, 0.5, 1.0
	nnopCheckClose(t, "bilinear", y.F32(), []float64{r(a, a), r(a, b), r(a, c), r(b, a), r(b, b), r(b, c), r(c, a), r(c, b), r(c, c)}, 1e-6)

	// The gradient of the bilinear sum of outputs is the sum of each
	// input's weights: corners 2.25 = 1 + 0.5 + 0.5 + 0.25 with
	// align_corners.
	xg := x.Clone().SetRequiresGrad(true)
	if err := nnopBackward(UpsampleBilinear2d(xg, UpsampleAttrs{Size: [2]int{3, 3}, AlignCorners: true})); err != nil {
		t.Fatal(err)
	}
	nnopCheckClose(t, "bilinear grad", xg.Grad().F32(), []float64{2.25, 2.25, 2.25, 2.25}, 1e-7)
}

func TestUpsampleGradcheck(t *testing.T) {
	for _, a := range []UpsampleAttrs{
		{ScaleFactor: [2]float64{2, 2}},
		{ScaleFactor: [2]float64{1.7, 0.6}},
		{Size: [2]int{7, 3}},
		{Size: [2]int{7, 3}, AlignCorners: true},
		{Size: [2]int{1, 1}, AlignCorners: true},
	} {
		for _, shape := range [][]int{{2, 3, 4, 5}, {1, 1, 4, 5}, {3, 4, 5}} {
			name := fmt.Sprintf("%v %+v", shape, a)
			nnopGradcheck(t, "UpsampleBilinear2d "+name, func(in []*tensor.Tensor) *tensor.Tensor {
				return UpsampleBilinear2d(in[0], a)
			}, nnopRandT(1, shape...))
			nnopGradcheck(t, "UpsampleNearest2d "+name, func(in []*tensor.Tensor) *tensor.Tensor {
				return UpsampleNearest2d(in[0], a)
			}, nnopRandT(2, shape...))
		}
	}
}

func TestUpsampleThreads(t *testing.T) {
	x := nnopRandT(3, 3, 37, 13, 11)
	for _, a := range []UpsampleAttrs{{ScaleFactor: [2]float64{2.3, 1.6}}, {Size: [2]int{5, 29}, AlignCorners: true}} {
		nnopThreads(t, fmt.Sprintf("%+v", a), func() [][]float32 {
			x.SetGrad(nil)
			yb := UpsampleBilinear2d(x, a)
			if err := nnopBackwardWith(yb, nnopSeq(0.3, 1, yb.Shape()...)); err != nil {
				t.Fatal(err)
			}
			gb := x.Grad().F32()
			x.SetGrad(nil)
			yn := UpsampleNearest2d(x, a)
			if err := nnopBackwardWith(yn, nnopSeq(0.3, 1, yn.Shape()...)); err != nil {
				t.Fatal(err)
			}
			return [][]float32{yb.F32(), gb, yn.F32(), x.Grad().F32()}
		})
	}
}

func TestUpsampleAttrsOutputSize(t *testing.T) {
	cases := []struct {
		a    UpsampleAttrs
		h, w int
		want [2]int
		ok   bool
	}{
		{UpsampleAttrs{Size: [2]int{3, 9}}, 5, 5, [2]int{3, 9}, true},
		{UpsampleAttrs{ScaleFactor: [2]float64{1.5, 2.7}}, 5, 3, [2]int{7, 8}, true},
		{UpsampleAttrs{ScaleFactor: [2]float64{0.5, 0.5}}, 1, 4, [2]int{}, false},
		{UpsampleAttrs{}, 4, 4, [2]int{}, false},
		{UpsampleAttrs{Size: [2]int{0, 3}}, 4, 4, [2]int{}, false},
		{UpsampleAttrs{ScaleFactor: [2]float64{math.Inf(1), 1}}, 4, 4, [2]int{}, false},
		{UpsampleAttrs{ScaleFactor: [2]float64{math.NaN(), 1}}, 4, 4, [2]int{}, false},
		{UpsampleAttrs{ScaleFactor: [2]float64{2, -1}}, 4, 4, [2]int{}, false},
	}
	for _, c := range cases {
		got, err := c.a.OutputSize(c.h, c.w)
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("%+v on %dx%d: %v, %v; want %v (ok=%v)", c.a, c.h, c.w, got, err, c.want, c.ok)
		}
	}
}

func TestUpsamplePanics(t *testing.T) {
	x := tensor.Zeros(1, 2, 3, 3)
	nnopPanics(t, "ops: UpsampleBilinear2d: want input [N, C, H, W] or [C, H, W]", func() {
		UpsampleBilinear2d(tensor.Zeros(3, 3), UpsampleAttrs{Size: [2]int{4, 4}})
	})
	nnopPanics(t, "ops: UpsampleNearest2d: input [1 2 3 3]: need a positive size", func() { UpsampleNearest2d(x, UpsampleAttrs{}) })
	nnopPanics(t, "ops: UpsampleBilinear2d: input [1 2 3 3]: output size", func() {
		UpsampleBilinear2d(x, UpsampleAttrs{Size: [2]int{-1, 2}})
	})
	nnopPanics(t, "ops: UpsampleNearest2d: x is int64, want float32", func() {
		UpsampleNearest2d(tensor.New(tensor.Int64, 1, 1, 2, 2), UpsampleAttrs{Size: [2]int{4, 4}})
	})
}
