package nn

import (
	"math"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

func TestNewUpsampleErrors(t *testing.T) {
	for _, c := range []struct {
		o    UpsampleOptions
		want string
	}{
		{UpsampleOptions{}, "need a size or a scale factor"},
		{UpsampleOptions{Size: [2]int{4, 4}, ScaleFactor: [2]float64{2, 2}}, "not both"},
		{UpsampleOptions{Size: [2]int{4, 0}}, "must be positive"},
		{UpsampleOptions{ScaleFactor: [2]float64{2, 0}}, "must be positive and finite"},
		{UpsampleOptions{ScaleFactor: [2]float64{2, math.Inf(1)}}, "must be positive and finite"},
		{UpsampleOptions{ScaleFactor: [2]float64{math.NaN(), 2}}, "must be positive and finite"},
		{UpsampleOptions{ScaleFactor: [2]float64{2, 2}, Mode: "bicubic"}, `mode "bicubic" is not supported`},
		{UpsampleOptions{ScaleFactor: [2]float64{2, 2}, Mode: "Bilinear"}, `unknown mode "Bilinear"`},
		{UpsampleOptions{ScaleFactor: [2]float64{2, 2}, AlignCorners: true}, "bilinear mode only"},
		{UpsampleOptions{Size: [2]int{4, 4}, Mode: "bilinear", RecomputeScaleFactor: true}, "explicit size"},
	} {
		m, err := NewUpsample(c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) || m != nil {
			t.Errorf("%+v: %v, want an error containing %q", c.o, err, c.want)
		}
	}
}

func TestUpsampleModule(t *testing.T) {
	x := tensor.RandUniform(tensor.NewRNG(1), -1, 1, 2, 3, 5, 6)
	same := func(what string, got, want *tensor.Tensor) {
		t.Helper()
		if !tensor.SameShape(got.Shape(), want.Shape()) {
			t.Fatalf("%s: shape %v, want %v", what, got.Shape(), want.Shape())
		}
		for i, v := range want.F32() {
			if math.Float32bits(got.F32()[i]) != math.Float32bits(v) {
				t.Fatalf("%s: element %d = %v, want %v", what, i, got.F32()[i], v)
			}
		}
	}
	m, err := NewUpsample(UpsampleOptions{ScaleFactor: [2]float64{2, 2}})
	if err != nil {
		t.Fatal(err)
	}
	if TypeName(m) != "Upsample" || m.Mode != "nearest" || len(StateDict(m)) != 0 {
		t.Fatalf("type %q, mode %q, %d state entries", TypeName(m), m.Mode, len(StateDict(m)))
	}
	same("nearest", m.Forward(x), ops.UpsampleNearest2d(x, ops.UpsampleAttrs{ScaleFactor: [2]float64{2, 2}}))

	a := ops.UpsampleAttrs{ScaleFactor: [2]float64{1.7, 0.7}, AlignCorners: true}
	m, err = NewUpsample(UpsampleOptions{ScaleFactor: a.ScaleFactor, Mode: "bilinear", AlignCorners: true})
	if err != nil {
		t.Fatal(err)
	}
	same("bilinear", m.Forward(x), ops.UpsampleBilinear2d(x, a))

	// recompute_scale_factor=True: the size 8x4 from the factors, then
	// coordinates mapped with 5/8 and 6/4 instead of 1/1.7 and 1/0.7.
	m, err = NewUpsample(UpsampleOptions{ScaleFactor: [2]float64{1.7, 0.7}, Mode: "bilinear", RecomputeScaleFactor: true})
	if err != nil {
		t.Fatal(err)
	}
	y := m.Forward(x)
	same("recompute", y, ops.UpsampleBilinear2d(x, ops.UpsampleAttrs{Size: [2]int{8, 4}}))
	plain := ops.UpsampleBilinear2d(x, ops.UpsampleAttrs{ScaleFactor: [2]float64{1.7, 0.7}})
	differ := false
	for i, v := range plain.F32() {
		differ = differ || v != y.F32()[i]
	}
	if !differ {
		t.Error("recomputed scale factor gives the same output as the factor itself")
	}
}
