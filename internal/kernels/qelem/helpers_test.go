package qelem

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/internal/cpu"
)

// tailSizes are the lengths every kernel is tested on: every tail of the
// 8-, 16- and 64-wide loops, plus a few longer ones.
var tailSizes = func() []int {
	var s []int
	for n := 0; n <= 17; n++ {
		s = append(s, n)
	}
	return append(s, 31, 32, 33, 63, 64, 65, 127, 128, 129, 200, 1000)
}()

const guardByte = 0xA5

// guarded returns a slice of n elements at offset off inside a buffer whose
// other elements hold g, and the whole buffer.
func guarded[T any](n, off int, g T) (s, all []T) {
	all = make([]T, n+off+9)
	for i := range all {
		all[i] = g
	}
	return all[off : off+n : off+n], all
}

// checkGuards fails if any element outside [off, off+n) changed from g.
func checkGuards[T comparable](t *testing.T, name string, all []T, off, n int, g T) {
	t.Helper()
	for i, v := range all {
		if (i < off || i >= off+n) && v != g {
			t.Fatalf("%s: guard element %d overwritten (n=%d, off=%d)", name, i, n, off)
		}
	}
}

// forLevels runs f once per CPU level this machine supports, with cpu.Max
// capped to it.
func forLevels(t *testing.T, f func(t *testing.T)) {
	for _, l := range cpu.Levels() {
		t.Run(l.String(), func(t *testing.T) {
			old := cpu.SetMax(l)
			defer cpu.SetMax(old)
			f(t)
		})
	}
}

// runnable reports whether a variant can run on this machine.
func runnable[F any](v variant[F]) bool { return v.ok && v.level <= cpu.Hardware }

// sameBits compares floats bit for bit.
func sameBits(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }

// specialFloats are the extremes every quantize test includes.
var specialFloats = []float32{
	0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
	math.MaxFloat32, -math.MaxFloat32, 3e9, -3e9, 1e-45, -1e-45, 1e-40, -1.17e-38,
	0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 127.5, 128.5, -128.5, 255.5, 254.5, 0.49999997, 0.50000006,
}

// randFloats returns n floats mixing specials, exact halves of scale,
// near-halves and ordinary values of about ±range_ quantization steps.
func randFloats(r *rand.Rand, n int, scale float32) []float32 {
	x := make([]float32, n)
	for i := range x {
		switch r.IntN(6) {
		case 0:
			x[i] = specialFloats[r.IntN(len(specialFloats))]
		case 1:
			x[i] = (float32(r.IntN(600)-300) + 0.5) * scale
		case 2:
			v := (float32(r.IntN(600)-300) + 0.5) * scale
			if r.IntN(2) == 0 {
				x[i] = math.Nextafter32(v, float32(math.Inf(1)))
			} else {
				x[i] = math.Nextafter32(v, float32(math.Inf(-1)))
			}
		default:
			x[i] = float32(r.NormFloat64()*150) * scale
		}
	}
	return x
}

// quantScales are the scales the quantize tests use, ordinary and extreme.
var quantScales = []float32{0.1, 1.0 / 3, 0.0078125, 1e-3, 0.5, 1, 7.3, 1e30, 1e-38, 1e-40, -0.25, 0, float32(math.Inf(1))}
