package conv

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/internal/cpu"
)

// ewEdge are values every elementwise variant must treat like the generic
// kernel: signed zeros, infinities, NaN, subnormals, huge values and the
// HardSwish/HardSigmoid/Clip corners.
var ewEdge = []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
	1e-45, -1e-45, 3e38, -3e38, 3, -3, 6, -6, 2.5, -2.5, 0.5, -0.5, 1, -1, 1e-7}

// ewInput returns n values: random ones of several magnitudes with the
// edge values mixed in.
func ewInput(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		switch r.IntN(4) {
		case 0:
			s[i] = ewEdge[r.IntN(len(ewEdge))]
		case 1:
			s[i] = (r.Float32()*2 - 1) * 8
		case 2:
			s[i] = (r.Float32()*2 - 1) * 1e4
		default:
			s[i] = r.Float32()*2 - 1
		}
	}
	return s
}

// sameBits reports whether a and b are the same float32 (any NaN equals
// any NaN).
func sameBits(a, b float32) bool {
	if a != a || b != b {
		return a != a && b != b
	}
	return math.Float32bits(a) == math.Float32bits(b)
}

func ewCompare(t *testing.T, name string, got, want []float32, in ...[]float32) {
	t.Helper()
	checkGuard(t, name, got)
	for i := range want {
		if !sameBits(got[i], want[i]) {
			args := ""
			for _, s := range in {
				args += fmt.Sprintf(" %v", s[i])
			}
			t.Fatalf("%s: element %d of %d = %v, generic gives %v (inputs%s)", name, i, len(want), got[i], want[i], args)
		}
	}
}

// TestElementwiseVariants checks every variant this CPU runs against the
// generic kernels, bit for bit, on every tail length, with guard elements
// after the output, odd offsets into the inputs, and in place (d = a).
func TestElementwiseVariants(t *testing.T) {
	g := &ewKernels[0]
	r := rand.New(rand.NewPCG(7, 8))
	sizes := append(append([]int{}, tailSizes...), 255, 256, 257, 1000, 1024)
	for _, k := range ewKernels[1:] {
		if !cpu.Has(k.level) {
			continue
		}
		for _, n := range sizes {
			off := r.IntN(3)
			a := ewInput(r, n+off)[off:]
			b := ewInput(r, n+1)[1:]
			s := ewEdge[r.IntN(len(ewEdge))]
			if r.IntN(2) == 0 {
				s = r.Float32()*4 - 2
			}
			for op := EwAdd; op <= EwDiv; op++ {
				want, got := make([]float32, n), guarded(n)
				g.vv(op, want, a, b)
				k.vv(op, got, a, b)
				ewCompare(t, fmt.Sprintf("%s vv op %d n=%d", k.name, op, n), got, want, a, b)
				g.vs(op, want, a, s)
				k.vs(op, got, a, s)
				ewCompare(t, fmt.Sprintf("%s vs op %d n=%d s=%v", k.name, op, n, s), got, want, a)
				g.sv(op, want, s, b)
				k.sv(op, got, s, b)
				ewCompare(t, fmt.Sprintf("%s sv op %d n=%d s=%v", k.name, op, n, s), got, want, b)
			}
			for _, lh := range [][2]float32{{0, 6}, {-1, 1}, {2, -2}, {float32(math.Inf(-1)), 0}, {float32(math.Copysign(0, -1)), 0}} {
				want, got := make([]float32, n), guarded(n)
				g.clip(want, a, lh[0], lh[1])
				k.clip(got, a, lh[0], lh[1])
				ewCompare(t, fmt.Sprintf("%s clip %v n=%d", k.name, lh, n), got, want, a)
			}
			want, got := make([]float32, n), guarded(n)
			g.relu(want, a)
			k.relu(got, a)
			ewCompare(t, fmt.Sprintf("%s relu n=%d", k.name, n), got, want, a)
			g.hardSwish(want, a)
			k.hardSwish(got, a)
			ewCompare(t, fmt.Sprintf("%s hardswish n=%d", k.name, n), got, want, a)
			for _, ab := range [][2]float32{{0.2, 0.5}, {1.0 / 6, 0.5}, {-0.3, float32(math.Copysign(0, -1))}, {0, float32(math.Copysign(0, -1))}} {
				g.hardSigmoid(want, a, ab[0], ab[1])
				k.hardSigmoid(got, a, ab[0], ab[1])
				ewCompare(t, fmt.Sprintf("%s hardsigmoid %v n=%d", k.name, ab, n), got, want, a)
			}
			g.sigmoid(want, a)
			k.sigmoid(got, a)
			ewCompare(t, fmt.Sprintf("%s sigmoid n=%d", k.name, n), got, want, a)
			g.exp(want, a)
			k.exp(got, a)
			ewCompare(t, fmt.Sprintf("%s exp n=%d", k.name, n), got, want, a)
			// In place.
			in := append([]float32(nil), a...)
			g.hardSwish(want, in)
			k.hardSwish(in, in)
			for i := range want {
				if !sameBits(in[i], want[i]) {
					t.Fatalf("%s hardswish in place n=%d: element %d = %v, want %v", k.name, n, i, in[i], want[i])
				}
			}
		}
	}
}

// TestElementwiseValues checks the exported kernels at the tiers this CPU
// has against hand-computed values.
func TestElementwiseValues(t *testing.T) {
	nan := float32(math.NaN())
	negZero := float32(math.Copysign(0, -1))
	defer cpu.SetMax(cpu.SetMax(cpu.Max))
	for _, k := range usableEw() {
		cpu.SetMax(k.level)
		x := []float32{-4, -3, -1.5, negZero, 0, 1.5, 3, 4, 7, nan}
		d := make([]float32, len(x))
		check := func(what string, want []float32) {
			t.Helper()
			for i := range want {
				if !sameBits(d[i], want[i]) {
					t.Fatalf("%s %s(%v) = %v, want %v", k.name, what, x[i], d[i], want[i])
				}
			}
		}
		EwHardSwish(d, x)
		check("hardswish", []float32{negZero, negZero, -0.375, negZero, 0, 1.125, 3, 4, 7, nan})
		EwRelu(d, x)
		check("relu", []float32{0, 0, 0, 0, 0, 1.5, 3, 4, 7, nan})
		EwClip(d, x, 0, 6)
		check("clip", []float32{0, 0, 0, negZero, 0, 1.5, 3, 4, 6, nan})
		EwHardSigmoid(d, x, 0.25, 0.5)
		check("hardsigmoid", []float32{0, 0, 0.125, 0.5, 0.5, 0.875, 1, 1, 1, nan})
		EwVS(EwSub, d, x, 1)
		check("x-1", []float32{-5, -4, -2.5, -1, -1, 0.5, 2, 3, 6, nan})
		EwSV(EwDiv, d, 3, x)
		check("3/x", []float32{-0.75, -1, -2, float32(math.Inf(-1)), float32(math.Inf(1)), 2, 1, 0.75, float32(3.0 / 7), nan})
		EwVV(EwMul, d, x, x)
		check("x*x", []float32{16, 9, 2.25, 0, 0, 2.25, 9, 16, 49, nan})
	}
}

// usableEw returns the variants this CPU runs (before any SetMax).
func usableEw() []ewKernel {
	var ks []ewKernel
	for _, k := range ewKernels {
		if cpu.Has(k.level) {
			ks = append(ks, k)
		}
	}
	return ks
}

// BenchmarkElementwise measures the HardSwish, Sigmoid and
// multiply-by-scalar kernels on 1024-element blocks.
func BenchmarkElementwise(b *testing.B) {
	a := randSlice(rand.New(rand.NewPCG(1, 2)), 1024)
	d := make([]float32, 1024)
	defer cpu.SetMax(cpu.SetMax(cpu.Max))
	for _, k := range usableEw() {
		cpu.SetMax(k.level)
		b.Run("hardswish/"+k.name, func(b *testing.B) {
			for range b.N {
				EwHardSwish(d, a)
			}
			b.ReportMetric(float64(b.N)*1024/b.Elapsed().Seconds()/1e9, "Gelem/s")
		})
		b.Run("sigmoid/"+k.name, func(b *testing.B) {
			for range b.N {
				EwSigmoid(d, a)
			}
			b.ReportMetric(float64(b.N)*1024/b.Elapsed().Seconds()/1e9, "Gelem/s")
		})
		b.Run("mulscalar/"+k.name, func(b *testing.B) {
			for range b.N {
				EwVS(EwMul, d, a, 1.5)
			}
			b.ReportMetric(float64(b.N)*1024/b.Elapsed().Seconds()/1e9, "Gelem/s")
		})
	}
}

// sigmoid64 is the float64 sigmoid rounded to float32.
func sigmoid64(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }

// ulpDiff is the distance in units in the last place between two finite,
// non-negative float32 values.
func ulpDiff(a, b float32) int64 {
	d := int64(math.Float32bits(a)) - int64(math.Float32bits(b))
	if d < 0 {
		d = -d
	}
	return d
}

// sweepFloats returns every 1021st positive float32 bit pattern and its
// negation, then ewEdge and the given values.
func sweepFloats(more ...float32) []float32 {
	var xs []float32
	for b := uint32(0); b < 0x7f800000; b += 1021 {
		f := math.Float32frombits(b)
		xs = append(xs, f, -f)
	}
	return append(append(xs, ewEdge...), more...)
}

// acrossTiers runs f (an elementwise kernel, in place when inPlace) on xs
// at every tier, checks that each gives the generic tier's bits, and calls
// check with the tier's name and results.
func acrossTiers(t *testing.T, what string, xs []float32, inPlace bool, f func(d, a []float32), check func(tier string, got []float32)) {
	t.Helper()
	defer cpu.SetMax(cpu.SetMax(cpu.Max))
	var ref []float32
	for _, k := range usableEw() {
		cpu.SetMax(k.level)
		got := make([]float32, len(xs))
		if inPlace {
			copy(got, xs)
			f(got, got)
		} else {
			f(got, xs)
		}
		if ref == nil {
			ref = got
		}
		for i := range ref {
			if !sameBits(got[i], ref[i]) {
				t.Fatalf("%s: %s(%v) = %v, generic gives %v", k.name, what, xs[i], got[i], ref[i])
			}
		}
		check(k.name, got)
	}
}

// TestSigmoidAccuracy sweeps float32 inputs (every 1021st bit pattern of
// each sign, plus the edges) through EwSigmoid at every tier and checks
// the documented bounds against the float64 sigmoid: 4 ulps from -87 on,
// and below -87 the constant sigmoid(-87) with an absolute error under
// 1.7e-38; NaN gives NaN and the tiers agree bit for bit.
func TestSigmoidAccuracy(t *testing.T) {
	xs := sweepFloats(-87, -87.5, -88, -88.5, 88, 17, 16.5, -16.5, float32(math.MaxFloat32), -float32(math.MaxFloat32))
	acrossTiers(t, "sigmoid", xs, false, EwSigmoid, func(tier string, got []float32) {
		var worst int64
		for i, x := range xs {
			g, w := got[i], sigmoid64(x)
			switch {
			case x != x:
				if g == g {
					t.Fatalf("%s: sigmoid(NaN) = %v", tier, g)
				}
			case x >= -87:
				if u := ulpDiff(g, w); u > 4 {
					t.Fatalf("%s: sigmoid(%v) = %v, float64 gives %v (%d ulps)", tier, x, g, w, u)
				} else if u > worst {
					worst = u
				}
			default:
				if math.Abs(float64(g)-float64(w)) >= 1.7e-38 || g < 1.17549435e-38 {
					t.Fatalf("%s: sigmoid(%v) = %v, float64 gives %v", tier, x, g, w)
				}
			}
		}
		t.Logf("%s: largest error from -87 on: %d ulps over %d inputs", tier, worst, len(xs))
	})
}

// TestSigmoidValues checks EwSigmoid at hand-known points.
func TestSigmoidValues(t *testing.T) {
	defer cpu.SetMax(cpu.SetMax(cpu.Max))
	for _, k := range usableEw() {
		cpu.SetMax(k.level)
		x := []float32{0, 100, -1e30, float32(math.Inf(1)), float32(math.Inf(-1))}
		d := make([]float32, len(x))
		EwSigmoid(d, x)
		if d[0] != 0.5 || d[1] != 1 || d[2] > 1.7e-38 || d[3] != 1 || d[4] > 1.7e-38 {
			t.Fatalf("%s: sigmoid(%v) = %v", k.name, x, d)
		}
	}
}

// TestSumF64 checks every tier against the generic kernel bit for bit on
// every tail length and odd offsets, and against the sequential float64
// sum within rounding, and a hand-computed sum.
func TestSumF64(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	g := &ewKernels[0]
	for _, n := range append(append([]int{}, tailSizes...), 255, 256, 257, 1000, 1024) {
		off := r.IntN(3)
		a := ewInput(r, n+off)[off:]
		for i := range a {
			if a[i] != a[i] || math.IsInf(float64(a[i]), 0) || math.Abs(float64(a[i])) > 1e30 {
				a[i] = 1
			}
		}
		want := g.sumF64(a)
		var seq, abs float64
		for _, v := range a {
			seq += float64(v)
			abs += math.Abs(float64(v))
		}
		if math.Abs(want-seq) > 1e-14*abs {
			t.Fatalf("n=%d: generic sum %v, sequential %v", n, want, seq)
		}
		for _, k := range usableEw()[1:] {
			if got := k.sumF64(a); math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("%s n=%d: sum %v, generic %v", k.name, n, got, want)
			}
		}
	}
	if s := SumF64([]float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 0.5}); s != 153.5 {
		t.Fatalf("SumF64 = %v, want 153.5", s)
	}
}

// TestExpAccuracy sweeps float32 inputs through EwExp at every tier: the
// tiers agree bit for bit, results are within 4 ulps of the float64 exp
// on [-86, 88.72], +Inf above, 0 below, NaN for NaN.
func TestExpAccuracy(t *testing.T) {
	xs := sweepFloats(-86, -87, 88.72, 88.7228, 88.73, -86.01, 88, 88.5, 0.5, -0.5, float32(math.Inf(1)), float32(math.Inf(-1)))
	acrossTiers(t, "exp", xs, false, EwExp, func(tier string, got []float32) {
		var worst int64
		for i, x := range xs {
			g := got[i]
			switch {
			case x != x:
				if g == g {
					t.Fatalf("%s: exp(NaN) = %v", tier, g)
				}
			case x > expHi:
				if !math.IsInf(float64(g), 1) {
					t.Fatalf("%s: exp(%v) = %v, want +Inf", tier, x, g)
				}
			case x < expLo:
				if g != 0 {
					t.Fatalf("%s: exp(%v) = %v, want 0", tier, x, g)
				}
			default:
				w := float32(math.Exp(float64(x)))
				if u := ulpDiff(g, w); u > 4 {
					t.Fatalf("%s: exp(%v) = %v, float64 gives %v (%d ulps)", tier, x, g, w, u)
				} else if u > worst {
					worst = u
				}
			}
		}
		t.Logf("%s: largest error on [-86, 88.72]: %d ulps over %d inputs", tier, worst, len(xs))
	})
}

// TestTanhAccuracy sweeps float32 inputs (every 1021st bit pattern of
// each sign, the polynomial's edge 0.625, the edges of the float32 range)
// through EwTanh at every tier: the tiers agree bit for bit, every result
// is within 4 ulps of the float64 tanh rounded to float32, signed zeros
// stay, +-Inf give +-1 and NaN gives NaN.
func TestTanhAccuracy(t *testing.T) {
	xs := sweepFloats(0.625, -0.625, math.Nextafter32(0.625, 1), math.Nextafter32(-0.625, -1), 9, -9, 44, 45, -45)
	acrossTiers(t, "tanh", xs, true, EwTanh, func(tier string, got []float32) {
		var worst int64
		for i, x := range xs {
			g, w := got[i], float32(math.Tanh(float64(x)))
			switch {
			case x != x:
				if g == g {
					t.Fatalf("%s: tanh(NaN) = %v", tier, g)
				}
			case x == 0:
				if !sameBits(g, x) {
					t.Fatalf("%s: tanh(%v) = %v, want the same zero", tier, x, g)
				}
			default:
				if (g < 0) != (w < 0) {
					t.Fatalf("%s: tanh(%v) = %v, float64 gives %v", tier, x, g, w)
				}
				if u := ulpDiff(float32(math.Abs(float64(g))), float32(math.Abs(float64(w)))); u > 4 {
					t.Fatalf("%s: tanh(%v) = %v, float64 gives %v (%d ulps)", tier, x, g, w, u)
				} else if u > worst {
					worst = u
				}
			}
		}
		t.Logf("%s: largest error: %d ulps over %d inputs", tier, worst, len(xs))
	})
}
