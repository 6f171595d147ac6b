package ops

import (
	"testing"

	"github.com/quanta-go/quanta/tensor"
)

func TestDropout(t *testing.T) {
	x := nnopRandT(1, 4, 50)
	if y := Dropout(x, 0.5, false, nil); y != x {
		t.Fatal("eval Dropout must return its input")
	}
	if y := Dropout(x, 0, true, tensor.NewRNG(1)); y != x {
		t.Fatal("Dropout with p=0 must return its input")
	}
	y := Dropout(x, 0.25, true, tensor.NewRNG(7))
	// The mask is the sequence of draws from the same seed.
	rng := tensor.NewRNG(7)
	kept := 0
	for i, v := range x.F32() {
		want := float32(0)
		if rng.Float32() < 0.75 {
			want = v * (1 / float32(0.75))
			kept++
		}
		if y.F32()[i] != want {
			t.Fatalf("element %d = %v, want %v", i, y.F32()[i], want)
		}
	}
	if kept < 120 || kept > 180 {
		t.Fatalf("kept %d of 200 with p=0.25", kept)
	}
	g := nnopSeq(0.1, 1, 4, 50)
	if err := nnopBackwardWith(y, g); err != nil {
		t.Fatal(err)
	}
	for i, v := range x.Grad().F32() {
		want := float32(0)
		if y.F32()[i] != 0 {
			want = g.F32()[i] * (1 / float32(0.75))
		}
		if v != want {
			t.Fatalf("grad %d = %v, want %v", i, v, want)
		}
	}
	nnopGradcheck(t, "Dropout", func(in []*tensor.Tensor) *tensor.Tensor { return Dropout(in[0], 0.4, true, tensor.NewRNG(3)) }, nnopRandT(2, 3, 4))
	z := Dropout(x, 1, true, tensor.NewRNG(1))
	nnopCheckClose(t, "p=1", z.F32(), make([]float64, 200), 0)
	nnopPanics(t, "outside [0, 1]", func() { Dropout(x, 1.5, true, tensor.NewRNG(1)) })
	nnopPanics(t, "random generator", func() { Dropout(x, 0.5, true, nil) })
}
