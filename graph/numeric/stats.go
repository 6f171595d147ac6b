package numeric

import "math"

// Stats measures how far a quantized tensor q is from its float reference
// x, over every element compared (all feeds, all runs of a subgraph).
type Stats struct {
	// SQNR is the signal-to-quantization-noise ratio in dB,
	// 10*log10(sum x² / sum (x-q)²): +Inf when q equals x, -Inf when x
	// is all zeros and q is not.
	SQNR float64
	// Cosine is the cosine similarity sum xq / sqrt(sum x² · sum q²): 1
	// when both are all zeros, 0 when only one is.
	Cosine float64
	// MaxAbs and MeanAbs are the largest and the mean |x-q|.
	MaxAbs, MeanAbs float64
	// Count is the number of elements compared.
	Count int64
}

// acc accumulates the sums Stats is computed from, in float64, so that
// statistics stream over feeds without keeping tensors.
type acc struct {
	sxx, see, sxq, sqq, sumAbs, maxAbs float64
	n                                  int64
}

// add accumulates the pairs (x[i], q[i]); len(q) must be len(x).
func (a *acc) add(x, q []float32) {
	for i, xv := range x {
		fx, fq := float64(xv), float64(q[i])
		e := fx - fq
		a.sxx += fx * fx
		a.see += e * e
		a.sxq += fx * fq
		a.sqq += fq * fq
		ae := math.Abs(e)
		a.sumAbs += ae
		if ae > a.maxAbs || math.IsNaN(ae) {
			a.maxAbs = ae
		}
	}
	a.n += int64(len(x))
}

// stats returns the statistics of what a has accumulated.
func (a *acc) stats() Stats {
	s := Stats{Count: a.n, MaxAbs: a.maxAbs}
	if a.n > 0 {
		s.MeanAbs = a.sumAbs / float64(a.n)
	}
	s.SQNR = sqnr(a.sxx, a.see)
	switch {
	case a.sxx == 0 && a.sqq == 0:
		s.Cosine = 1
	case a.sxx == 0 || a.sqq == 0:
		s.Cosine = 0
	default:
		s.Cosine = max(-1, min(1, a.sxq/math.Sqrt(a.sxx*a.sqq))) // NaN stays NaN
	}
	return s
}

// sqnr returns 10*log10(signal/noise) with +Inf for no noise.
func sqnr(signal, noise float64) float64 {
	if noise == 0 && !math.IsNaN(signal) {
		return math.Inf(1)
	}
	return 10 * math.Log10(signal/noise)
}

// Measure returns the statistics of q against its float reference x,
// element by element; x and q must have the same length.
func Measure(x, q []float32) Stats {
	var a acc
	a.add(x, q[:len(x)])
	return a.stats()
}

// Accumulator streams Stats over many tensors (feeds, outputs of several
// runs) without keeping them. Its zero value is empty.
type Accumulator struct{ a acc }

// Add accumulates the pairs (x[i], q[i]) of a float reference x and its
// quantized counterpart q; len(q) must be at least len(x).
func (s *Accumulator) Add(x, q []float32) { s.a.add(x, q[:len(x)]) }

// Stats returns the statistics of everything added.
func (s *Accumulator) Stats() Stats { return s.a.stats() }
