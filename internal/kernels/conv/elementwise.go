package conv

import (
	"math"

	"github.com/quanta-go/quanta/internal/cpu"
)

// Elementwise kernels for the epilogues of convolutions and the fused
// elementwise runs of graph executors: float32 arithmetic with a vector, a
// scalar on either side, Clip, Relu, HardSwish, HardSigmoid and a float32
// Sigmoid. Each
// computes exactly the expression written in its generic kernel, one
// float32 rounding per operation and no fused multiply-add, so every
// variant gives the same bits as the generic one (NaN payloads aside) and
// as the single-operator kernels that use the same expressions.

// EwOp is an arithmetic operation of EwVV, EwVS and EwSV.
type EwOp uint8

// The arithmetic operations.
const (
	EwAdd EwOp = iota
	EwSub
	EwMul
	EwDiv
)

// ewKernel is one implementation of the elementwise kernels; every slice
// argument has the length of d.
type ewKernel struct {
	name        string
	level       cpu.Level
	vv          func(op EwOp, d, a, b []float32)
	vs          func(op EwOp, d, a []float32, s float32)
	sv          func(op EwOp, d []float32, s float32, b []float32)
	clip        func(d, a []float32, lo, hi float32)
	relu        func(d, a []float32)
	hardSwish   func(d, a []float32)
	hardSigmoid func(d, a []float32, alpha, beta float32)
	sigmoid     func(d, a []float32)
	sumF64      func(a []float32) float64
	exp         func(d, a []float32)
}

// ewKernels lists the implementations, lowest level first; the _amd64
// files append theirs. Dispatch takes the last one cpu.Max allows.
var ewKernels = []ewKernel{{"generic", cpu.Generic, ewVVGeneric, ewVSGeneric, ewSVGeneric,
	ewClipGeneric, ewReluGeneric, ewHardSwishGeneric, ewHardSigmoidGeneric, ewSigmoidGeneric, sumF64Generic, ewExpGeneric}}

func pickEw() *ewKernel {
	for i := len(ewKernels) - 1; i > 0; i-- {
		if cpu.Has(ewKernels[i].level) {
			return &ewKernels[i]
		}
	}
	return &ewKernels[0]
}

func ewCheck(d []float32, src ...[]float32) {
	for _, s := range src {
		if len(s) < len(d) {
			panic("conv: elementwise operand shorter than its output")
		}
	}
}

// EwVV sets d[i] = a[i] op b[i].
func EwVV(op EwOp, d, a, b []float32) { ewCheck(d, a, b); pickEw().vv(op, d, a, b) }

// EwVS sets d[i] = a[i] op s.
func EwVS(op EwOp, d, a []float32, s float32) { ewCheck(d, a); pickEw().vs(op, d, a, s) }

// EwSV sets d[i] = s op b[i].
func EwSV(op EwOp, d []float32, s float32, b []float32) { ewCheck(d, b); pickEw().sv(op, d, s, b) }

// EwClip sets d[i] = a[i] raised to lo if below it, then lowered to hi if
// above it (so hi wins when lo > hi; NaN stays NaN).
func EwClip(d, a []float32, lo, hi float32) { ewCheck(d, a); pickEw().clip(d, a, lo, hi) }

// EwRelu sets d[i] = max(a[i], 0) (NaN stays NaN, -0 gives +0).
func EwRelu(d, a []float32) { ewCheck(d, a); pickEw().relu(d, a) }

// EwHardSwish sets d[i] = a[i] * min(max(a[i]+3, 0), 6) / 6.
func EwHardSwish(d, a []float32) { ewCheck(d, a); pickEw().hardSwish(d, a) }

// EwHardSigmoid sets d[i] = max(0, min(1, float32(alpha*a[i])+beta)).
func EwHardSigmoid(d, a []float32, alpha, beta float32) {
	ewCheck(d, a)
	pickEw().hardSigmoid(d, a, alpha, beta)
}

// EwSigmoid sets d[i] = 1/(1+exp(-a[i])) computed in float32 with a
// polynomial exponential (ewSigmoidGeneric), not correctly rounded: within
// 4 ulps of the float64 sigmoid rounded to float32 for a[i] >= -87 (the
// tests sweep every float32 in steps; the largest error measured is 2
// ulps), and for a[i] < -87 it returns sigmoid(-87) = 1.65e-38 where the
// true value is smaller, an absolute error below 1.7e-38: every result
// and intermediate is a normal float32 (subnormal arithmetic is very slow
// on some CPUs, and strongly negative logits are common). NaN stays NaN.
// The result is the same bits on every tier.
func EwSigmoid(d, a []float32) { ewCheck(d, a); pickEw().sigmoid(d, a) }

// EwExp sets d[i] = exp(a[i]) computed in float32 as EwSigmoid's
// exponential (ewExpGeneric), not correctly rounded: within 4 ulps of the
// float64 exp rounded to float32 for -86 <= a[i] <= 88.72 (1 measured
// over a sweep of float32 inputs), +Inf above, and 0 below -86, where the
// true value is under 4.5e-38. NaN stays NaN. The same bits on every tier.
func EwExp(d, a []float32) { ewCheck(d, a); pickEw().exp(d, a) }

// EwTanh sets d[i] = tanh(a[i]) in float32, d and a the same length (d
// may be a): x itself for |x| < 2^-12, up to |x| = 0.625 Cephes' odd
// polynomial x + x^3*P(x^2),
// above it sign(x) * (1 - 2/(exp(2|x|) + 1)) with EwExp's exponential
// (+Inf for large |x|, giving exactly +-1). Products are rounded before
// each sum, so the result is the same bits on every tier; within 4 ulps
// of the float64 tanh rounded to float32 (1 measured: TestTanhAccuracy
// sweeps the float32 inputs). Signed zeros are kept; NaN stays NaN.
func EwTanh(d, a []float32) {
	ewCheck(d, a)
	var e [64]float32
	for off := 0; off < len(a); off += len(e) {
		src := a[off:min(len(a), off+len(e))]
		dst := d[off : off+len(src)]
		for i, x := range src {
			e[i] = 2 * float32(math.Abs(float64(x)))
		}
		EwExp(e[:len(src)], e[:len(src)])
		for i, x := range src {
			ax := float32(math.Abs(float64(x)))
			if ax < 0x1p-12 {
				dst[i] = x // x^3/3 is under half an ulp of x; zeros keep their sign
				continue
			}
			if ax <= 0.625 {
				z := float32(x * x)
				p := float32(float32(-5.70498872745e-3*z) + 2.06390887954e-2)
				p = float32(float32(p*z) - 5.37397155531e-2)
				p = float32(float32(p*z) + 1.33314422036e-1)
				p = float32(float32(p*z) - 3.33332819422e-1)
				dst[i] = float32(float32(float32(p*z)*x) + x)
				continue
			}
			r := 1 - 2/(e[i]+1)
			if x < 0 {
				r = -r
			}
			dst[i] = r
		}
	}
}

// SumF64 returns the sum of a in float64 in a fixed order (that of
// sumF64Generic: 16 interleaved partial sums, then a pairwise reduction),
// the same bits on every tier.
func SumF64(a []float32) float64 { return pickEw().sumF64(a) }

func ewVVGeneric(op EwOp, d, a, b []float32) {
	a, b = a[:len(d)], b[:len(d)]
	switch op {
	case EwAdd:
		for i := range d {
			d[i] = a[i] + b[i]
		}
	case EwSub:
		for i := range d {
			d[i] = a[i] - b[i]
		}
	case EwMul:
		for i := range d {
			d[i] = a[i] * b[i]
		}
	case EwDiv:
		for i := range d {
			d[i] = a[i] / b[i]
		}
	}
}

func ewVSGeneric(op EwOp, d, a []float32, s float32) {
	a = a[:len(d)]
	switch op {
	case EwAdd:
		for i := range d {
			d[i] = a[i] + s
		}
	case EwSub:
		for i := range d {
			d[i] = a[i] - s
		}
	case EwMul:
		for i := range d {
			d[i] = a[i] * s
		}
	case EwDiv:
		for i := range d {
			d[i] = a[i] / s
		}
	}
}

func ewSVGeneric(op EwOp, d []float32, s float32, b []float32) {
	b = b[:len(d)]
	switch op {
	case EwAdd:
		for i := range d {
			d[i] = s + b[i]
		}
	case EwSub:
		for i := range d {
			d[i] = s - b[i]
		}
	case EwMul:
		for i := range d {
			d[i] = s * b[i]
		}
	case EwDiv:
		for i := range d {
			d[i] = s / b[i]
		}
	}
}

func ewClipGeneric(d, a []float32, lo, hi float32) {
	a = a[:len(d)]
	for i, v := range a {
		if v < lo {
			v = lo
		}
		if v > hi {
			v = hi
		}
		d[i] = v
	}
}

func ewReluGeneric(d, a []float32) {
	a = a[:len(d)]
	for i := range d {
		d[i] = max(a[i], 0)
	}
}

func ewHardSwishGeneric(d, a []float32) {
	a = a[:len(d)]
	for i, v := range a {
		d[i] = v * min(max(v+3, 0), 6) / 6
	}
}

func ewHardSigmoidGeneric(d, a []float32, alpha, beta float32) {
	a = a[:len(d)]
	for i, v := range a {
		d[i] = max(0, min(1, float32(alpha*v)+beta))
	}
}

// Constants of the float32 exponential of ewSigmoidGeneric (Cephes'
// expf): ln 2 split in sigC1 (exact in 9 bits, so n*sigC1 is exact) and
// sigC2, and the minimax polynomial of exp(r) - 1 - r - r*r/2 ... on
// [-ln2/2, ln2/2].
const (
	sigHi    = float32(87)  // 1/(1+exp(87)) is still a normal float32
	sigLo    = float32(-87) // exp(-87) > 0 and 1+exp(-87) == 1
	sigLog2e = float32(1.44269504088896341)
	sigC1    = float32(0.693359375)
	sigC2    = float32(-2.12194440e-4)
	sigP0    = float32(1.9875691500e-4)
	sigP1    = float32(1.3981999507e-3)
	sigP2    = float32(8.3334519073e-3)
	sigP3    = float32(4.1665795894e-2)
	sigP4    = float32(1.6666665459e-1)
	sigP5    = float32(5.0000001201e-1)
)

// ewSigmoidGeneric is the specification of EwSigmoid: every operation is
// one float32 rounding (the explicit conversions forbid fused
// multiply-adds), in the order the AVX-512 kernel performs them.
func ewSigmoidGeneric(d, a []float32) {
	a = a[:len(d)]
	for i, x := range a {
		t := -x
		if t > sigHi {
			t = sigHi
		}
		if t < sigLo {
			t = sigLo
		}
		n := float32(math.Floor(float64(float32(t*sigLog2e) + 0.5)))
		r := t - float32(n*sigC1)
		r -= float32(n * sigC2)
		z := float32(r * r)
		y := float32(sigP0*r) + sigP1
		y = float32(y*r) + sigP2
		y = float32(y*r) + sigP3
		y = float32(y*r) + sigP4
		y = float32(y*r) + sigP5
		y = float32(y*z) + r + 1
		// 2^n for n in [-126, 127], NaN lanes aside (their y is NaN).
		e := float32(y * math.Float32frombits(uint32(int32(n)+127)<<23))
		d[i] = 1 / (1 + e)
	}
}

// sumF64Generic is the specification of SumF64: element i is added to
// partial sum i%16, and the partial sums are reduced pairwise: s[j] +
// s[j+8], then by distance 4, 2 and 1.
func sumF64Generic(a []float32) float64 {
	var s [16]float64
	for i, v := range a {
		s[i%16] += float64(v)
	}
	for w := 8; w >= 1; w /= 2 {
		for j := 0; j < w; j++ {
			s[j] += s[j+w]
		}
	}
	return s[0]
}

// Bounds of ewExpGeneric: exp(expHi) is below MaxFloat32; below expLo the
// result is flushed to 0.
const (
	expHi = float32(88.72284)
	expLo = float32(-86)
)

// ewExpGeneric is the specification of EwExp: ewSigmoidGeneric's
// exponential over [expLo, expHi], scaled by 2^(n-1) and then doubled so
// that n = 128 does not overflow the exponent field.
func ewExpGeneric(d, a []float32) {
	a = a[:len(d)]
	for i, x := range a {
		t := x
		if t > expHi {
			t = expHi
		}
		if t < expLo {
			t = expLo
		}
		n := float32(math.Floor(float64(float32(t*sigLog2e) + 0.5)))
		r := t - float32(n*sigC1)
		r -= float32(n * sigC2)
		y := float32(sigP0*r) + sigP1
		y = float32(y*r) + sigP2
		y = float32(y*r) + sigP3
		y = float32(y*r) + sigP4
		y = float32(y*r) + sigP5
		y = float32(y*float32(r*r)) + r + 1
		e := float32(y * math.Float32frombits(uint32(int32(n)+126)<<23))
		e += e
		if x > expHi {
			e = float32(math.Inf(1))
		}
		if x < expLo {
			e = 0
		}
		d[i] = e
	}
}
