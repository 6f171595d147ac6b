package observer

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/internal/kernels/qdyn"
	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

// scanGrain is the number of elements one goroutine scans at least.
const scanGrain = 1 << 16

// extrema is the result of scanning values: the min and max of the finite
// ones, how many were NaN or ±Inf, and the flat index of the first of those.
type extrema struct {
	min, max  float32
	finite    int // number of finite values
	nonFinite int
	firstBad  int // -1 when nonFinite == 0
}

// scanExtrema returns the extrema of x. It is exact and independent of the
// thread count: min and max are order-independent, counts are integers.
func scanExtrema(x []float32) extrema {
	n := len(x)
	if n == 0 {
		return extrema{min: float32(math.Inf(1)), max: float32(math.Inf(-1)), firstBad: -1}
	}
	// Fast path: the vectorized scan; when every value is finite it is the
	// answer (zeros come back as +0, which gives the same qparams).
	if lo, hi, nan := qdyn.MinMax(x); !nan && !math.IsInf(float64(lo), 0) && !math.IsInf(float64(hi), 0) {
		return extrema{min: lo, max: hi, finite: n, firstBad: -1}
	}
	chunks := (n + scanGrain - 1) / scanGrain
	if t := parallel.NumThreads(); chunks > 4*t {
		chunks = 4 * t
	}
	if chunks <= 1 {
		return scanChunk(x, 0)
	}
	per := (n + chunks - 1) / chunks
	parts := make([]extrema, chunks)
	parallel.For(chunks, 1, func(s, e int) {
		for c := s; c < e; c++ {
			lo, hi := c*per, min((c+1)*per, n)
			parts[c] = scanChunk(x[lo:hi], lo)
		}
	})
	out := parts[0]
	for _, p := range parts[1:] {
		out = out.merge(p)
	}
	return out
}

// merge combines the extrema of two disjoint parts, a before b.
func (a extrema) merge(b extrema) extrema {
	if b.min < a.min {
		a.min = b.min
	}
	if b.max > a.max {
		a.max = b.max
	}
	a.finite += b.finite
	if a.firstBad < 0 {
		a.firstBad = b.firstBad
	}
	a.nonFinite += b.nonFinite
	return a
}

// scanChunk scans one contiguous part; base is its offset in the tensor.
// The fast loop keeps four independent min/max pairs and a sum of v*0,
// which is 0 for finite v and NaN for NaN or ±Inf; only if that sum is NaN
// does a second pass count and skip the non-finite values.
func scanChunk(x []float32, base int) extrema {
	inf := float32(math.Inf(1))
	m0, m1, m2, m3 := inf, inf, inf, inf
	M0, M1, M2, M3 := -inf, -inf, -inf, -inf
	var z0, z1 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		a, b, c, d := x[i], x[i+1], x[i+2], x[i+3]
		if a < m0 {
			m0 = a
		}
		if a > M0 {
			M0 = a
		}
		if b < m1 {
			m1 = b
		}
		if b > M1 {
			M1 = b
		}
		if c < m2 {
			m2 = c
		}
		if c > M2 {
			M2 = c
		}
		if d < m3 {
			m3 = d
		}
		if d > M3 {
			M3 = d
		}
		z0 += a*0 + b*0
		z1 += c*0 + d*0
	}
	for ; i < len(x); i++ {
		a := x[i]
		if a < m0 {
			m0 = a
		}
		if a > M0 {
			M0 = a
		}
		z0 += a * 0
	}
	z := z0 + z1
	if z == z {
		return extrema{min: min32(min32(m0, m1), min32(m2, m3)), max: max32(max32(M0, M1), max32(M2, M3)), finite: len(x), firstBad: -1}
	}
	e := extrema{min: inf, max: -inf, firstBad: -1}
	for j, v := range x {
		if v-v != 0 {
			if e.firstBad < 0 {
				e.firstBad = base + j
			}
			e.nonFinite++
			continue
		}
		e.finite++
		if v < e.min {
			e.min = v
		}
		if v > e.max {
			e.max = v
		}
	}
	return e
}

// nonFiniteError describes the non-finite values of an observed tensor.
func nonFiniteError(kind string, e extrema, n int) error {
	return fmt.Errorf("observer: %s: %w: %d of %d values (first at flat index %d); set Config.IgnoreNonFinite to skip and count them",
		kind, ErrNonFinite, e.nonFinite, n, e.firstBad)
}

// floatData returns x's float32 elements, or an error naming the observer
// when x is not a float32 tensor.
func floatData(kind string, x *tensor.Tensor) ([]float32, error) {
	if x == nil {
		return nil, fmt.Errorf("observer: %s: nil tensor", kind)
	}
	if x.DType() != tensor.Float32 {
		return nil, fmt.Errorf("observer: %s: want a float32 tensor, got %v", kind, x.DType())
	}
	return x.F32(), nil
}

// finiteValues returns x itself when every value is finite, otherwise a
// copy holding only the finite values (used when non-finite values are
// ignored).
func finiteValues(x []float32, e extrema) []float32 {
	if e.nonFinite == 0 {
		return x
	}
	out := make([]float32, 0, e.finite)
	for _, v := range x {
		if v-v == 0 {
			out = append(out, v)
		}
	}
	return out
}
