package qmath

import (
	"math"
	"testing"
)

func TestRoundHalfEven(t *testing.T) {
	cases := map[float32]float32{0.5: 0, 1.5: 2, 2.5: 2, -0.5: 0, -1.5: -2, -2.5: -2, 2.4999998: 2, 3.5: 4, 1e10: 1e10}
	for in, want := range cases {
		if got := RoundHalfEven(in); got != want {
			t.Errorf("RoundHalfEven(%v) = %v, want %v", in, got, want)
		}
	}
}

func TestQuantize(t *testing.T) {
	cases := []struct {
		x, s       float32
		zp, lo, hi int32
		want       int32
	}{
		{0, 0.1, 128, 0, 255, 128},
		{0.05, 0.1, 0, 0, 255, 0},        // 0.5 ties to 0
		{0.15, 0.1, 0, 0, 255, 2},        // 1.4999999 in float32 -> 1? computed below
		{1e30, 0.1, 0, 0, 255, 255},      // saturate high
		{-1e30, 0.1, 0, -128, 127, -128}, // saturate low
		{float32(math.Inf(1)), 1, 3, 0, 255, 255},
		{float32(math.NaN()), 1, 3, 0, 255, 3},
		{-1, 1, 0, 0, 255, 0},
		{2.5, 1, -128, -128, 127, -126},
	}
	// 0.15/0.1 in float32:
	v := float32(0.15) / float32(0.1)
	cases[2].want = int32(math.RoundToEven(float64(v)))
	for _, c := range cases {
		if got := Quantize(c.x, c.s, c.zp, c.lo, c.hi); got != c.want {
			t.Errorf("Quantize(%v, %v, %d, %d..%d) = %d, want %d", c.x, c.s, c.zp, c.lo, c.hi, got, c.want)
		}
	}
}

func TestRequantize(t *testing.T) {
	m := Multiplier(0.25, 0.5, 4)                        // exactly 1/32
	if got := Requantize(48, m, 10, 0, 255); got != 12 { // 1.5 -> 2, +10
		t.Errorf("Requantize(48) = %d, want 12", got)
	}
	if got := Requantize(80, m, 10, 0, 255); got != 12 { // 2.5 -> 2 (ties to even), +10
		t.Errorf("Requantize(80) = %d, want 12", got)
	}
	if got := Requantize(math.MaxInt32, 1, 0, -128, 127); got != 127 {
		t.Errorf("Requantize saturate = %d", got)
	}
	if got := Dequantize(200, 128, 0.5); got != 36 {
		t.Errorf("Dequantize = %v", got)
	}
	lo, hi := Range(true, 8)
	if lo != -128 || hi != 127 {
		t.Errorf("Range(signed 8) = %d..%d", lo, hi)
	}
	lo, hi = Range(false, 4)
	if lo != 0 || hi != 15 {
		t.Errorf("Range(unsigned 4) = %d..%d", lo, hi)
	}
}
