package conv

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/internal/parallel"
)

const guardLen = 7

var guardVal = float32(math.Float32frombits(0x7fc0beef)) // a NaN with a payload

// randSlice returns n values uniform in [-1, 1).
func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = r.Float32()*2 - 1
	}
	return s
}

// guarded returns a slice of length n backed by an array with guard
// elements after it, prefilled with garbage (NaN) to prove outputs are
// fully overwritten.
func guarded(n int) []float32 {
	b := make([]float32, n+guardLen)
	for i := range b {
		b[i] = guardVal
	}
	return b[:n]
}

func checkGuard(t *testing.T, name string, s []float32) {
	t.Helper()
	g := s[len(s) : len(s)+guardLen]
	for i, v := range g {
		if math.Float32bits(v) != math.Float32bits(guardVal) {
			t.Fatalf("%s: guard element %d overwritten with %v", name, i, v)
		}
	}
}

// assertClose fails if got and want differ by more than a float32
// accumulation error allows: |got-want| <= tol*(1+|want|).
func assertClose(t *testing.T, name string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: length %d, want %d", name, len(got), len(want))
	}
	for i := range want {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(g) || math.Abs(g-w) > tol*(1+math.Abs(w)) {
			t.Fatalf("%s: element %d = %v, want %v", name, i, got[i], want[i])
		}
	}
}

// absOf returns |s| elementwise (nil stays nil).
func absOf(s []float32) []float32 {
	if s == nil {
		return nil
	}
	a := make([]float32, len(s))
	for i, v := range s {
		a[i] = float32(math.Abs(float64(v)))
	}
	return a
}

// assertCloseMag fails if |got-want| > tol*mag elementwise (plus a tiny
// absolute term), where mag is the same computation applied to the absolute
// values of the operands: the scale of a float32 rounding error in a sum.
func assertCloseMag(t *testing.T, name string, got, want, mag []float32, tol float64) {
	t.Helper()
	for i := range want {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(g) || math.Abs(g-w) > tol*float64(mag[i])+1e-30 {
			t.Fatalf("%s: element %d = %v, want %v (magnitude %v)", name, i, got[i], want[i], mag[i])
		}
	}
}

func assertBits(t *testing.T, name string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: element %d = %v, want %v (bits differ)", name, i, got[i], want[i])
		}
	}
}

func dot64(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// withThreads runs f with the intra-op thread count set to n.
func withThreads(n int, f func()) {
	old := parallel.SetNumThreads(n)
	defer parallel.SetNumThreads(old)
	f()
}

func (p Conv2DParams) String() string {
	return fmt.Sprintf("N%d_C%d_%dx%d_O%d_k%dx%d_s%dx%d_p%dx%d_d%dx%d_g%d",
		p.N, p.C, p.H, p.W, p.OutC, p.KH, p.KW, p.StrideH, p.StrideW, p.PadH, p.PadW, p.DilH, p.DilW, p.Groups)
}

func (p ConvTranspose2DParams) String() string {
	return fmt.Sprintf("N%d_C%d_%dx%d_O%d_k%dx%d_s%dx%d_p%dx%d_op%dx%d_d%dx%d_g%d",
		p.N, p.C, p.H, p.W, p.OutC, p.KH, p.KW, p.StrideH, p.StrideW, p.PadH, p.PadW,
		p.OutPadH, p.OutPadW, p.DilH, p.DilW, p.Groups)
}
