package dynamic

import (
	"math"
	"testing"
)

// ulps returns how many float32 steps got is from the exactly rounded
// float64 value want.
func ulps(got float32, want float64) float64 {
	w := float32(want)
	if got == w {
		return 0
	}
	step := math.Abs(float64(math.Nextafter32(w, float32(math.Inf(1))) - w))
	return math.Abs(float64(got)-want) / step
}

// TestGateFunctions sweeps the float32 gate functions against float64 math
// over every 397th float32 in [-120, 120] plus special values: within 2.5 ulp
// (plus 1e-38 absolute where results are subnormal).
func TestGateFunctions(t *testing.T) {
	worstS, worstT := 0.0, 0.0
	check := func(x float32) {
		s := 1 / (1 + math.Exp(-float64(x)))
		if math.Abs(float64(sigmoid(x))-s) > 1e-38 {
			worstS = math.Max(worstS, ulps(sigmoid(x), s))
		}
		worstT = math.Max(worstT, ulps(tanh(x), math.Tanh(float64(x))))
	}
	for _, x := range []float32{0, -0, 1e-30, -1e-30, 0.625, -0.625, 10, -10, 87, -87, 88, -88, 89, -89, 200, -200,
		float32(math.Inf(1)), float32(math.Inf(-1))} {
		check(x)
	}
	for b := math.Float32bits(-120); b > 1<<31; b -= 397 {
		check(math.Float32frombits(b))
	}
	for b := uint32(0); b < math.Float32bits(120); b += 397 {
		check(math.Float32frombits(b))
	}
	t.Logf("max error: sigmoid %.2f ulp, tanh %.2f ulp", worstS, worstT)
	if worstS > 2.5 || worstT > 2.5 {
		t.Errorf("max error: sigmoid %.2f ulp, tanh %.2f ulp, want <= 2.5", worstS, worstT)
	}
	if tanh(float32(math.NaN())) == tanh(float32(math.NaN())) || sigmoid(float32(math.NaN())) == sigmoid(float32(math.NaN())) {
		t.Error("NaN does not propagate")
	}
}
