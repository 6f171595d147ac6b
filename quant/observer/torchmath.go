package observer

import (
	"math"
	"math/big"

	"github.com/quanta-go/quanta/internal/parallel"
)

// This file reproduces, bit for bit, the few PyTorch 1.13 CPU primitives
// whose rounding the HistogramObserver's result depends on. Each function
// names the ATen kernel it mirrors. Products that feed an addition are
// wrapped in an explicit conversion so Go never fuses them into an FMA.

// torchSumLanes is the Vectorized<float> width of the AVX2 kernels PyTorch
// dispatches to on x86-64 (the generic fallback has the same width).
const torchSumLanes = 8

// torchSum32 is torch.sum of a contiguous 1-D float32 tensor on CPU: the
// cascade_sum of aten/src/ATen/native/cpu/SumKernel.cpp, accumulating in
// float32 over 8-lane vectors with 4-way ILP and 4 levels of chunked
// partial sums, then the lanes in order.
func torchSum32(x []float32) float32 {
	n := len(x)
	if n >= torchSumLanes {
		vecs := n / torchSumLanes
		part := rowSum(x, torchSumLanes, vecs)
		var final float32
		for k := vecs * torchSumLanes; k < n; k++ {
			final += x[k]
		}
		for _, p := range part {
			final += p
		}
		return final
	}
	return rowSum(x, 1, n)[0]
}

// rowSum is SumKernel's row_sum over size vectors of w lanes (vector v is
// x[v*w : v*w+w]), with ilp_factor 4.
func rowSum(x []float32, w, size int) []float32 {
	const ilp = 4
	sizeILP := size / ilp
	p := multiRowSum(x, w, sizeILP)
	for i := sizeILP * ilp; i < size; i++ {
		for l := 0; l < w; l++ {
			p[0][l] += x[i*w+l]
		}
	}
	for k := 1; k < ilp; k++ {
		for l := 0; l < w; l++ {
			p[0][l] += p[k][l]
		}
	}
	return p[0]
}

// multiRowSum is SumKernel's multi_row_sum with nrows 4: row i, column k
// is vector 4*i+k.
func multiRowSum(x []float32, w, size int) [4][]float32 {
	const numLevels, nrows = 4, 4
	levelPower := max(4, ceilLog2(size)/numLevels)
	levelStep := 1 << levelPower
	levelMask := levelStep - 1
	var acc [numLevels][nrows][]float32
	for j := range acc {
		for k := range acc[j] {
			acc[j][k] = make([]float32, w)
		}
	}
	add := func(dst, src []float32) {
		for l := range dst {
			dst[l] += src[l]
		}
	}
	i := 0
	for i+levelStep <= size {
		for j := 0; j < levelStep; j, i = j+1, i+1 {
			for k := 0; k < nrows; k++ {
				add(acc[0][k], x[(i*nrows+k)*w:(i*nrows+k+1)*w])
			}
		}
		for j := 1; j < numLevels; j++ {
			for k := 0; k < nrows; k++ {
				add(acc[j][k], acc[j-1][k])
				clear(acc[j-1][k])
			}
			if i&(levelMask<<(j*levelPower)) != 0 {
				break
			}
		}
	}
	for ; i < size; i++ {
		for k := 0; k < nrows; k++ {
			add(acc[0][k], x[(i*nrows+k)*w:(i*nrows+k+1)*w])
		}
	}
	for j := 1; j < numLevels; j++ {
		for k := 0; k < nrows; k++ {
			add(acc[0][k], acc[j][k])
		}
	}
	return acc[0]
}

// ceilLog2 is c10's CeilLog2 (1 for x <= 2).
func ceilLog2(x int) int {
	if x <= 2 {
		return 1
	}
	n := 0
	for v := uint64(x - 1); v != 0; v >>= 1 {
		n++
	}
	return n
}

// cumsum32 is torch.cumsum of a float32 tensor on CPU: accumulated in
// double (acc_type<float>), each prefix stored as float32.
func cumsum32(x []float32) []float32 {
	out := make([]float32, len(x))
	var acc float64
	for i, v := range x {
		acc += float64(v)
		out[i] = float32(acc)
	}
	return out
}

// floorDiv32 is torch.div(a, b, rounding_mode='floor') for float32 (the
// div_floor kernel: Python's floor division built from fmod).
func floorDiv32(a, b float32) float32 {
	if b == 0 {
		return a / b
	}
	mod := fmod32(a, b)
	div := (a - mod) / b
	if mod != 0 && (b < 0) != (mod < 0) {
		div -= 1
	}
	if div != 0 {
		fl := float32(math.Floor(float64(div)))
		if div-fl > 0.5 {
			fl += 1
		}
		return fl
	}
	return float32(math.Copysign(0, float64(a/b)))
}

// fmod32 is C's fmodf (exact): a - trunc(a/b)*b. When the quotient is
// below 2^24 the float64 arithmetic below is exact (q*b needs at most 48
// bits, the remainder at most 26), with one correction step for a
// quotient rounded across an integer; otherwise it falls back to math.Mod.
func fmod32(a, b float32) float32 {
	fa, fb := float64(a), float64(b)
	if !(math.Abs(fa) < math.Abs(fb)*(1<<24)) {
		return float32(math.Mod(fa, fb))
	}
	q := math.Trunc(fa / fb)
	r := fa - float64(q*fb)
	// r must have a's sign and |r| < |b|.
	switch {
	case r != 0 && (r < 0) != (fa < 0):
		if (r < 0) == (fb < 0) {
			r -= fb
		} else {
			r += fb
		}
	case math.Abs(r) >= math.Abs(fb):
		if (r < 0) == (fb < 0) {
			r -= fb
		} else {
			r += fb
		}
	}
	if r == 0 {
		return float32(math.Copysign(0, fa))
	}
	return float32(r)
}

// histcEdges returns the float32 outer bin edges torch.histc(x, bins, lo,
// hi) bins with: histc_select_outer_bin_edges (an empty range takes the
// data's own extrema, and a still-empty one is widened by 1 on each side,
// in double), then the first and last elements of linspace(lo, hi,
// bins+1) in float32. The last element is exactly hi except when bins+1 is
// a multiple of 16, where linspace computes it in its vectorized loop as
// fnmadd(step, 7, hi) + 7*step.
func histcEdges(lo, hi float64, dataMin, dataMax float32, bins int) (left, right float32) {
	if lo == hi {
		lo, hi = float64(dataMin), float64(dataMax)
	}
	if lo == hi {
		lo, hi = lo-1, hi+1
	}
	start, end := float32(lo), float32(hi)
	steps := bins + 1
	if steps%16 != 0 {
		return start, end
	}
	step := float32(end-start) / float32(steps-1)
	// base = end - step*7 rounded once (fused), exactly.
	p := new(big.Float).SetPrec(256).SetFloat64(float64(step))
	p.Mul(p, big.NewFloat(7))
	b := new(big.Float).SetPrec(256).SetFloat64(float64(end))
	b.Sub(b, p)
	base, _ := b.Float32()
	return start, base + float32(7*step)
}

// histcBin is the bin the LINEAR_INTERPOLATION histogram kernel (torch.histc)
// puts v in, or -1 when v lies outside [left, right]:
// int64((v - left) * bins / (right - left)), the right edge belonging to the
// last bin. A position that is NaN (a zero-width float32 range) maps to bin
// 0, which is where PyTorch's build puts it.
func histcBin(v, left, right float32, bins int) int {
	if !(v >= left && v <= right) {
		return -1
	}
	f := float32(v-left) * float32(bins) / float32(right-left)
	if f != f {
		return 0
	}
	pos := int(f)
	if pos >= bins {
		pos = bins - 1
	}
	return pos
}

// histcGrain is the number of elements one goroutine bins at least.
const histcGrain = 1 << 16

// histc is torch.histc(x, bins, min=lo, max=hi) for float32 x: counts as
// float32. Counting is split across goroutines with private integer
// counts that are summed at the end, so the result does not depend on the
// thread count.
func histc(x []float32, bins int, lo, hi float64, dataMin, dataMax float32) []float32 {
	left, right := histcEdges(lo, hi, dataMin, dataMax, bins)
	counts := make([]uint64, bins)
	n := len(x)
	chunks := (n + histcGrain - 1) / histcGrain
	if t := parallel.NumThreads(); chunks > t {
		chunks = t
	}
	if chunks <= 1 {
		countBins(x, left, right, counts)
	} else {
		per := (n + chunks - 1) / chunks
		local := make([][]uint64, chunks)
		parallel.For(chunks, 1, func(s, e int) {
			for c := s; c < e; c++ {
				local[c] = make([]uint64, bins)
				countBins(x[c*per:min((c+1)*per, n)], left, right, local[c])
			}
		})
		for _, l := range local {
			for i, v := range l {
				counts[i] += v
			}
		}
	}
	out := make([]float32, bins)
	for i, c := range counts {
		out[i] = float32(c)
	}
	return out
}

// countBins adds x's histc bins to counts.
func countBins(x []float32, left, right float32, counts []uint64) {
	bins := len(counts)
	fb := float32(bins)
	width := right - left
	for _, v := range x {
		if !(v >= left && v <= right) {
			continue
		}
		f := float32(v-left) * fb / width
		pos := 0
		if f == f {
			pos = int(f)
			if pos >= bins {
				pos = bins - 1
			}
		}
		counts[pos]++
	}
}
