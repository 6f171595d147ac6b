// Package qgemm computes 8-bit integer matrix products with int32
// accumulation, the heart of quanta's quantized Linear and Conv:
//
//	acc[i][j] = sum_p (a[i][p] - za) * (w[j][p] - zw[j])        (int32)
//
// Activations a are uint8 (or int8, see the S8 variants), M×K row-major.
// Weights w are int8, N×K row-major (one row per output channel, as in
// Linear and Conv weights), prepacked once with Pack. Epilogues turn the
// accumulators into requantized uint8/int8 outputs (static quantization),
// float32 outputs (dynamic quantization) or leave them as int32.
//
// The reference functions in reference.go are the specification. Every
// other code path must equal them bit for bit, for every input, and results
// never depend on the thread count.
package qgemm

import (
	"fmt"

	"github.com/quanta-go/quanta/internal/kernels/qmath"
)

// Packed holds int8 weights prepacked for the kernels together with the
// per-channel sums used for zero-point corrections. Build it once (at
// convert or compile time) and reuse it for every call.
type Packed struct {
	// N and K are the output channels and the reduction length.
	N, K int
	// ZeroPoints are the weight zero points, one (per-tensor) or N.
	ZeroPoints []int32
	// w is the unpacked weight copy, row-major N×K.
	w []int8
	// rowSum[j] = sum_p w[j][p].
	rowSum []int32
	// anyZP is true when some weight zero point is not 0.
	anyZP bool
	// vnni is the AVX-512 VNNI layout (nil when the CPU lacks VNNI): for
	// each panel of 32 channels and each group of 4 k, 32 channels × 4
	// int8, zero-padded to whole panels and groups.
	vnni []int8
	// avx2 is the AVX2 layout (nil without AVX2): for each panel of 16
	// channels and each pair of k, 16 channels × 2 int16.
	avx2 []int16
}

// Pack copies w (N×K, row stride ldw) and precomputes its sums.
func Pack(n, k int, w []int8, ldw int, zeroPoints []int32) *Packed {
	if len(zeroPoints) != 1 && len(zeroPoints) != n {
		panic(fmt.Sprintf("qgemm: Pack: %d zero points for %d channels", len(zeroPoints), n))
	}
	if n > 0 && k > 0 && len(w) < (n-1)*ldw+k {
		panic(fmt.Sprintf("qgemm: Pack: weights of length %d too short for %dx%d with stride %d", len(w), n, k, ldw))
	}
	p := &Packed{N: n, K: k, ZeroPoints: append([]int32(nil), zeroPoints...), w: make([]int8, n*k), rowSum: make([]int32, n)}
	for j := 0; j < n; j++ {
		row := w[j*ldw : j*ldw+k]
		copy(p.w[j*k:], row)
		var s int32
		for _, v := range row {
			s += int32(v)
		}
		p.rowSum[j] = s
	}
	for _, z := range p.ZeroPoints {
		if z != 0 {
			p.anyZP = true
		}
	}
	packArch(p)
	return p
}

// zp returns the weight zero point of channel j.
func (p *Packed) zp(j int) int32 {
	if len(p.ZeroPoints) == 1 {
		return p.ZeroPoints[0]
	}
	return p.ZeroPoints[j]
}

// Requant is the static-quantization epilogue:
//
//	y = saturate(roundHalfEven(float32(acc + Bias[j]) * Multiplier[j]) + ZeroPoint)
//
// clamped to [Min, Max] (Min/Max fuse ReLU, ReLU6 and clamp). Multiplier
// holds one value (per-tensor) or N; Bias is nil or N int32 values with
// scale s_a*s_w[j].
type Requant struct {
	Bias       []int32
	Multiplier []float32
	ZeroPoint  int32
	Min, Max   int32
}

func (r *Requant) mult(j int) float32 {
	if len(r.Multiplier) == 1 {
		return r.Multiplier[0]
	}
	return r.Multiplier[j]
}

// apply maps one accumulator of channel j to the output grid.
func (r *Requant) apply(acc int32, j int) int32 {
	if r.Bias != nil {
		acc += r.Bias[j]
	}
	return qmath.Requantize(acc, r.mult(j), r.ZeroPoint, r.Min, r.Max)
}

// Dequant is the dynamic-quantization epilogue:
//
//	y = float32(acc) * (ScaleA * ScaleW[j]) + Bias[j]
//
// with ScaleA*ScaleW[j] rounded to float32 first and the bias (0 when nil)
// always added. ScaleW holds one value or N; Bias is nil or N values.
type Dequant struct {
	ScaleA float32
	ScaleW []float32
	Bias   []float32
}

func (d *Dequant) apply(acc int32, j int) float32 {
	sw := d.ScaleW[0]
	if len(d.ScaleW) > 1 {
		sw = d.ScaleW[j]
	}
	s := float32(d.ScaleA * sw)
	var b float32
	if d.Bias != nil {
		b = d.Bias[j]
	}
	return float32(float32(float32(acc)*s) + b)
}

func checkA(op string, m, k int, aLen, lda int) {
	if m > 0 && k > 0 && aLen < (m-1)*lda+k {
		panic(fmt.Sprintf("qgemm: %s: activations of length %d too short for %dx%d with stride %d", op, aLen, m, k, lda))
	}
}
