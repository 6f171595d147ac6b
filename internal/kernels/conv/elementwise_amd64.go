//go:build !purego

package conv

import "github.com/quanta-go/quanta/internal/cpu"

//go:generate go run ew_gen.go

// The AVX-512 elementwise kernels each compute n elements of d from a
// (and b), 16 lanes at a time with a masked tail, touching only the n
// elements named; per element they perform the generic kernel's
// operations in its order with one rounding each:
//
//	ewAddVVAVX512 etc.: d[i] = a[i] op b[i]
//	ewAddVSAVX512 etc.: d[i] = a[i] op s
//	ewSubSVAVX512, ewDivSVAVX512: d[i] = s op a[i]
//	ewClipAVX512: v < lo ? lo : v, then v > hi ? hi : v
//	ewReluAVX512: v > 0 ? v : +0, NaN kept
//	ewHardSwishAVX512: v * min(max(v+3, 0), 6) / 6
//	ewHardSigmoidAVX512: max(0, min(1, alpha*v+beta)), NaN kept
//	ewSigmoidAVX512: ewSigmoidGeneric's float32 sigmoid, step for step

//go:noescape
func ewAddVVAVX512(d, a, b *float32, n int)

//go:noescape
func ewSubVVAVX512(d, a, b *float32, n int)

//go:noescape
func ewMulVVAVX512(d, a, b *float32, n int)

//go:noescape
func ewDivVVAVX512(d, a, b *float32, n int)

//go:noescape
func ewAddVSAVX512(d, a *float32, n int, s float32)

//go:noescape
func ewSubVSAVX512(d, a *float32, n int, s float32)

//go:noescape
func ewMulVSAVX512(d, a *float32, n int, s float32)

//go:noescape
func ewDivVSAVX512(d, a *float32, n int, s float32)

//go:noescape
func ewSubSVAVX512(d, a *float32, n int, s float32)

//go:noescape
func ewDivSVAVX512(d, a *float32, n int, s float32)

//go:noescape
func ewClipAVX512(d, a *float32, n int, lo, hi float32)

//go:noescape
func ewReluAVX512(d, a *float32, n int)

//go:noescape
func ewHardSwishAVX512(d, a *float32, n int)

//go:noescape
func ewHardSigmoidAVX512(d, a *float32, n int, alpha, beta float32)

//go:noescape
func ewSigmoidAVX512(d, a *float32, n int)

// ewExpAVX512 is ewExpGeneric over n elements.
//
//go:noescape
func ewExpAVX512(d, a *float32, n int)

// ewSumF64AVX512 is sumF64Generic over a[0:n].
//
//go:noescape
func ewSumF64AVX512(a *float32, n int) float64

func ewVVAVX512(op EwOp, d, a, b []float32) {
	if len(d) == 0 {
		return
	}
	a, b = a[:len(d)], b[:len(d)]
	f := [...]func(d, a, b *float32, n int){ewAddVVAVX512, ewSubVVAVX512, ewMulVVAVX512, ewDivVVAVX512}[op]
	f(&d[0], &a[0], &b[0], len(d))
}

func ewVSAVX512(op EwOp, d, a []float32, s float32) {
	if len(d) == 0 {
		return
	}
	a = a[:len(d)]
	f := [...]func(d, a *float32, n int, s float32){ewAddVSAVX512, ewSubVSAVX512, ewMulVSAVX512, ewDivVSAVX512}[op]
	f(&d[0], &a[0], len(d), s)
}

func ewSVAVX512(op EwOp, d []float32, s float32, b []float32) {
	if len(d) == 0 {
		return
	}
	b = b[:len(d)]
	// Addition and multiplication commute exactly.
	f := [...]func(d, a *float32, n int, s float32){ewAddVSAVX512, ewSubSVAVX512, ewMulVSAVX512, ewDivSVAVX512}[op]
	f(&d[0], &b[0], len(d), s)
}

func ewClipAVX512Go(d, a []float32, lo, hi float32) {
	if len(d) == 0 {
		return
	}
	a = a[:len(d)]
	ewClipAVX512(&d[0], &a[0], len(d), lo, hi)
}

func ewReluAVX512Go(d, a []float32) {
	if len(d) == 0 {
		return
	}
	a = a[:len(d)]
	ewReluAVX512(&d[0], &a[0], len(d))
}

func ewHardSwishAVX512Go(d, a []float32) {
	if len(d) == 0 {
		return
	}
	a = a[:len(d)]
	ewHardSwishAVX512(&d[0], &a[0], len(d))
}

func ewHardSigmoidAVX512Go(d, a []float32, alpha, beta float32) {
	if len(d) == 0 {
		return
	}
	a = a[:len(d)]
	ewHardSigmoidAVX512(&d[0], &a[0], len(d), alpha, beta)
}

func ewSigmoidAVX512Go(d, a []float32) {
	if len(d) == 0 {
		return
	}
	a = a[:len(d)]
	ewSigmoidAVX512(&d[0], &a[0], len(d))
}

func ewExpAVX512Go(d, a []float32) {
	if len(d) == 0 {
		return
	}
	a = a[:len(d)]
	ewExpAVX512(&d[0], &a[0], len(d))
}

func ewSumF64AVX512Go(a []float32) float64 {
	if len(a) == 0 {
		return 0
	}
	return ewSumF64AVX512(&a[0], len(a))
}

func init() {
	ewKernels = append(ewKernels, ewKernel{"avx512", cpu.AVX512, ewVVAVX512, ewVSAVX512, ewSVAVX512,
		ewClipAVX512Go, ewReluAVX512Go, ewHardSwishAVX512Go, ewHardSigmoidAVX512Go, ewSigmoidAVX512Go, ewSumF64AVX512Go, ewExpAVX512Go})
}
