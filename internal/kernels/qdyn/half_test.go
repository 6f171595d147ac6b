package qdyn

import (
	"math"
	"math/rand/v2"
	"testing"
)

// halfValue is the test's own decoding of binary16 bits, from the format's
// definition, in float64.
func halfValue(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	e := int(h>>10) & 0x1f
	m := float64(h & 0x3ff)
	switch e {
	case 0:
		return sign * math.Ldexp(m, -24)
	case 31:
		if m != 0 {
			return math.NaN()
		}
		return sign * math.Inf(1)
	}
	return sign * math.Ldexp(1+m/1024, e-15)
}

// TestFloat16ToFloat32Exhaustive checks all 65536 halves against the
// format's definition, and that converting back returns the same bits.
func TestFloat16ToFloat32Exhaustive(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := Float16ToFloat32(h)
		want := halfValue(h)
		if math.IsNaN(want) {
			if f == f {
				t.Fatalf("%#04x: got %v, want NaN", h, f)
			}
			// Payload kept, and a quiet NaN comes back quiet.
			if back := Float32ToFloat16(f); back&0x3ff != h&0x3ff|0x200 || back&0xfc00 != h&0xfc00 {
				t.Fatalf("%#04x: NaN round trip gave %#04x", h, back)
			}
			continue
		}
		if float64(f) != want || math.Signbit(float64(f)) != (h&0x8000 != 0) {
			t.Fatalf("%#04x: got %v, want %v", h, f, want)
		}
		if back := Float32ToFloat16(f); back != h {
			t.Fatalf("%#04x: round trip gave %#04x", h, back)
		}
	}
}

// nearestHalf is the test's reference rounding: the finite half nearest
// to f (ties to the even significand), or ±Inf at or beyond 65520, by
// search over the ordered positive halves.
func nearestHalf(f float32) uint16 {
	v := math.Abs(float64(f))
	var sign uint16
	if math.Signbit(float64(f)) {
		sign = 0x8000
	}
	if v >= 65520 {
		return sign | 0x7c00
	}
	// Positive finite halves 0..0x7bff are increasing in their bits.
	lo, hi := 0, 0x7bff
	for lo < hi { // smallest h with value >= v
		mid := (lo + hi) / 2
		if halfValue(uint16(mid)) >= v {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	h := lo
	if h > 0 {
		below, above := halfValue(uint16(h-1)), halfValue(uint16(h))
		switch {
		case v-below < above-v:
			h--
		case v-below == above-v && (h-1)&1 == 0:
			h--
		}
	}
	return sign | uint16(h)
}

// TestFloat32ToFloat16Rounding checks every half, every midpoint between
// neighbouring halves (ties go to even), the float32 neighbours of each
// midpoint, the overflow threshold and random inputs against nearestHalf.
func TestFloat32ToFloat16Rounding(t *testing.T) {
	check := func(f float32) {
		if got, want := Float32ToFloat16(f), nearestHalf(f); got != want {
			t.Fatalf("Float32ToFloat16(%v = %#08x) = %#04x, want %#04x", f, math.Float32bits(f), got, want)
		}
	}
	for h := 0; h < 0x7c00; h++ {
		for _, s := range []float32{1, -1} {
			a := s * float32(halfValue(uint16(h)))
			check(a)
			next := 65536.0
			if h < 0x7bff {
				next = halfValue(uint16(h + 1))
			}
			mid := s * float32((halfValue(uint16(h))+next)/2) // exact in float32
			check(mid)
			check(math.Nextafter32(mid, 0))
			check(math.Nextafter32(mid, s*inf32))
		}
	}
	// Overflow: 65504 is the largest half, 65520 the midpoint to 2^16.
	for _, c := range []struct {
		f float32
		h uint16
	}{{65504, 0x7bff}, {65519.996, 0x7bff}, {65520, 0x7c00}, {1e10, 0x7c00}, {-65520, 0xfc00}, {inf32, 0x7c00}, {-inf32, 0xfc00},
		{5.9604645e-08, 0x0001}, {2.9802322e-08, 0x0000}, {2.9802326e-08, 0x0001}, {8.940697e-08, 0x0002}, {1e-45, 0}, {-1e-45, 0x8000},
		{6.097555e-05, 0x03ff}, {6.1035156e-05, 0x0400}, {1, 0x3c00}, {1.0009766, 0x3c01}, {1.0004883, 0x3c00}, {1.0014648, 0x3c02}} {
		if got := Float32ToFloat16(c.f); got != c.h {
			t.Errorf("Float32ToFloat16(%v) = %#04x, want %#04x", c.f, got, c.h)
		}
	}
	r := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 300000; i++ {
		f := math.Float32frombits(r.Uint32())
		if f != f {
			if Float32ToFloat16(f)&0x7c00 != 0x7c00 || Float32ToFloat16(f)&0x3ff == 0 {
				t.Fatalf("NaN %#08x did not stay NaN", math.Float32bits(f))
			}
			continue
		}
		check(f)
		check(float32(r.NormFloat64()))
		check(float32(r.NormFloat64() * 1e-5))
	}
}

func TestHalfSlices(t *testing.T) {
	src := []float32{1, -2.5, 65504, 1e-7}
	h := make([]uint16, 4)
	Float32sToFloat16(h, src)
	back := make([]float32, 4)
	Float16sToFloat32(back, h)
	want := []float32{1, -2.5, 65504, 1.1920929e-07}
	for i := range want {
		if back[i] != want[i] {
			t.Fatalf("round trip %v -> %v", src, back)
		}
	}
}
