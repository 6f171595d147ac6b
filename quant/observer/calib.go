package observer

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

// pow2Hist is the statistic behind the Percentile, Entropy and MSE
// observers: a histogram of the values on a grid anchored at zero whose bin
// width is a power of two, 2^exp, the smallest that covers the largest
// |x| seen with half bins on each side. When a wider range arrives the
// width doubles (adjacent bins merge pairwise) until it fits.
//
// Because floor(x/2^(e+1)) == floor(floor(x/2^e)/2), a value lands in the
// same final bin whether it was binned at the final width or at a finer
// one and merged later. The histogram is therefore a function of the
// multiset of values alone: observing in any order, in any batching, or
// in shards merged afterwards gives identical integer counts. That is what
// makes these observers exactly shardable; PyTorch's HistogramObserver
// re-grids to each batch's range and is not.
type pow2Hist struct {
	half      int      // bins per side (a power of two)
	exp       int      // bin width is 2^exp
	counts    []uint64 // 2*half bins; index k+half holds [k*2^exp, (k+1)*2^exp)
	min, max  float32
	total     uint64
	observed  bool
	nonFinite int64
}

// minPow2Exp is the smallest bin-width exponent (for all-zero data).
const minPow2Exp = -160

// expFor is the smallest exponent e >= minPow2Exp with amax < half*2^e.
func expFor(amax float32, half int) int {
	if amax == 0 {
		return minPow2Exp
	}
	_, E := math.Frexp(float64(amax)) // 2^(E-1) <= amax < 2^E
	return max(E-bits.TrailingZeros(uint(half)), minPow2Exp)
}

func (h *pow2Hist) reset() {
	*h = pow2Hist{half: h.half}
}

// grow coarsens the histogram to exponent e (> h.exp).
func (h *pow2Hist) grow(e int) {
	s := e - h.exp
	if s <= 0 {
		return
	}
	n := make([]uint64, 2*h.half)
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		k := i - h.half
		if s < 63 {
			k >>= s
		} else if k < 0 {
			k = -1
		} else {
			k = 0
		}
		n[k+h.half] += c
	}
	h.counts, h.exp = n, e
}

// add bins finite values with extrema mn and mx.
func (h *pow2Hist) add(x []float32, mn, mx float32) {
	e := expFor(max32(-mn, mx), h.half)
	if !h.observed {
		h.counts, h.exp, h.min, h.max, h.observed = make([]uint64, 2*h.half), e, mn, mx, true
	} else {
		h.min, h.max = min32(h.min, mn), max32(h.max, mx)
		if e > h.exp {
			h.grow(e)
		}
	}
	inv := math.Ldexp(1, -h.exp) // exact: a power of two
	n := len(x)
	chunks := min((n+histcGrain-1)/histcGrain, parallel.NumThreads())
	if chunks <= 1 {
		h.countInto(x, inv, h.counts)
	} else {
		per := (n + chunks - 1) / chunks
		local := make([][]uint64, chunks)
		parallel.For(chunks, 1, func(s, e int) {
			for c := s; c < e; c++ {
				local[c] = make([]uint64, 2*h.half)
				h.countInto(x[c*per:min((c+1)*per, n)], inv, local[c])
			}
		})
		for _, l := range local {
			for i, v := range l {
				h.counts[i] += v
			}
		}
	}
	h.total += uint64(n)
}

func (h *pow2Hist) countInto(x []float32, inv float64, counts []uint64) {
	half := h.half
	last := 2*half - 1
	for _, v := range x {
		// Exact: v*2^-exp is a float64 scaling by a power of two, and
		// Floor is branch-free (a data-dependent branch for negative
		// values would be mispredicted half the time).
		i := int(math.Floor(float64(v)*inv)) + half
		if uint(i) > uint(last) { // cannot happen for |v| <= max|x|; stay in range regardless
			i = min(max(i, 0), last)
		}
		counts[i]++
	}
}

// merge folds o into h (same half).
func (h *pow2Hist) merge(o *pow2Hist) {
	h.nonFinite += o.nonFinite
	if !o.observed {
		return
	}
	if !h.observed {
		nf := h.nonFinite
		*h = *o
		h.counts = append([]uint64(nil), o.counts...)
		h.nonFinite = nf
		return
	}
	oc := o.counts
	if o.exp < h.exp {
		c := *o
		c.counts = append([]uint64(nil), o.counts...)
		c.grow(h.exp)
		oc = c.counts
	} else if o.exp > h.exp {
		h.grow(o.exp)
	}
	for i, v := range oc {
		h.counts[i] += v
	}
	h.min, h.max = min32(h.min, o.min), max32(h.max, o.max)
	h.total += o.total
}

// width is the bin width as a float64.
func (h *pow2Hist) width() float64 { return math.Ldexp(1, h.exp) }

// edge is the lower edge of bin index i.
func (h *pow2Hist) edge(i int) float64 { return float64(i-h.half) * h.width() }

// clampRange turns a candidate range into one inside the observed
// [min, max], as ONNX Runtime's calibrators clamp thresholds.
func (h *pow2Hist) clampRange(lo, hi float64) (float32, float32) {
	l, u := float32(lo), float32(hi)
	if !(l > h.min) {
		l = h.min
	}
	if !(u < h.max) {
		u = h.max
	}
	if l > u { // a candidate wholly outside the data
		l, u = h.min, h.max
	}
	return l, u
}

// calibObserver is the implementation shared by Percentile, Entropy and MSE.
type calibObserver struct {
	kind   string
	cfg    Config
	bins   int // total bins as configured (0 = default)
	r      qrange
	cfgErr error
	h      pow2Hist
	method calibMethod
	pct    float64 // Percentile
	qbins  int     // Entropy
}

// calibMethod selects how a calibObserver picks its range.
type calibMethod uint8

const (
	methodPercentile calibMethod = iota
	methodEntropy
	methodMSE
)

// rng computes the range to quantize from the histogram.
func (o *calibObserver) rng() (float32, float32) {
	switch o.method {
	case methodPercentile:
		return percentileRange(&o.h, o.pct, o.r.symmetric())
	case methodEntropy:
		return entropyRange(&o.h, o.qbins)
	default:
		return mseRange(o)
	}
}

func newCalibObserver(kind string, m calibMethod, cfg Config, bins int) calibObserver {
	o := calibObserver{kind: kind, method: m, cfg: cfg, bins: bins}
	b := bins
	if b == 0 {
		b = 2048
	}
	o.r, o.cfgErr = resolve(kind, cfg, false)
	if o.cfgErr == nil && (b < 16 || b > 1<<24 || b&(b-1) != 0) {
		o.cfgErr = fmt.Errorf("observer: %s: invalid config: Bins %d must be a power of two in [16, 2^24]", kind, bins)
	}
	o.h.half = b / 2
	return o
}

// Observe adds x's values to the histogram. An empty tensor is ignored.
func (o *calibObserver) Observe(x *tensor.Tensor) error {
	if o.cfgErr != nil {
		return o.cfgErr
	}
	data, err := floatData(o.kind, x)
	if err != nil || len(data) == 0 {
		return err
	}
	e := scanExtrema(data)
	if e.nonFinite > 0 {
		if !o.cfg.IgnoreNonFinite {
			return nonFiniteError(o.kind, e, len(data))
		}
		o.h.nonFinite += int64(e.nonFinite)
		data = finiteValues(data, e)
	}
	if e.finite == 0 {
		return nil
	}
	o.h.add(data, e.min, e.max)
	return nil
}

// Range returns the range the observer would quantize (before the qparams
// formula widens it to include zero).
func (o *calibObserver) Range() (lo, hi float32, err error) {
	if o.cfgErr != nil {
		return 0, 0, o.cfgErr
	}
	if !o.h.observed {
		return 0, 0, fmt.Errorf("observer: %s: %w", o.kind, ErrNotObserved)
	}
	lo, hi = o.rng()
	return lo, hi, nil
}

// CalculateQParams returns the qparams of the chosen range, computed with
// PyTorch's formula for the configured dtype and scheme.
func (o *calibObserver) CalculateQParams() (*tensor.QParams, error) {
	lo, hi, err := o.Range()
	if err != nil {
		return nil, err
	}
	return o.r.qparams(o.kind, []float32{lo}, []float32{hi}, 0)
}

// Config returns the shared part of the configuration.
func (o *calibObserver) Config() Config { return o.cfg }

// Reset forgets everything observed.
func (o *calibObserver) Reset() { o.h.reset() }

// NonFinite returns how many NaN or ±Inf values were skipped (with
// Config.IgnoreNonFinite).
func (o *calibObserver) NonFinite() int64 { return o.h.nonFinite }

// Count returns how many finite values were observed.
func (o *calibObserver) Count() uint64 { return o.h.total }

func (o *calibObserver) calib() *calibObserver { return o }

type calibHolder interface{ calib() *calibObserver }

// Merge folds another observer of the same kind and configuration into
// this one. The result equals one observer that saw both observers' data,
// in any order, exactly.
func (o *calibObserver) Merge(other Observer) error {
	if o.cfgErr != nil {
		return o.cfgErr
	}
	ch, ok := other.(calibHolder)
	if !ok || ch.calib().kind != o.kind {
		return fmt.Errorf("observer: %s: cannot merge a %T", o.kind, other)
	}
	p := ch.calib()
	if p.cfgErr != nil {
		return p.cfgErr
	}
	if err := sameConfig(o.kind, o.cfg, p.cfg); err != nil {
		return err
	}
	if o.h.half != p.h.half {
		return fmt.Errorf("observer: %s: cannot merge: %d vs %d bins", o.kind, 2*o.h.half, 2*p.h.half)
	}
	if o.pct != p.pct || o.qbins != p.qbins {
		return fmt.Errorf("observer: %s: cannot merge observers whose Percentile/QuantizedBins differ", o.kind)
	}
	o.h.merge(&p.h)
	return nil
}

// calibConfigJSON is the serialized configuration of the calibrating
// observers: the shared Config, the bins and the kind's own options.
type calibConfigJSON struct {
	configJSON
	Bins       int      `json:"bins"`
	Percentile *float64 `json:"percentile,omitempty"`
	QBins      *int     `json:"quantized_bins,omitempty"`
}

type calibStateJSON struct {
	Observed  *bool    `json:"observed"`
	NonFinite int64    `json:"non_finite"`
	Min       *float32 `json:"min,omitempty"`
	Max       *float32 `json:"max,omitempty"`
	Exp       *int     `json:"exp,omitempty"`
	Counts    []uint64 `json:"counts,omitempty"`
}

func (o *calibObserver) encodeState() calibStateJSON {
	obs := o.h.observed
	st := calibStateJSON{Observed: &obs, NonFinite: o.h.nonFinite}
	if obs {
		mn, mx, e := o.h.min, o.h.max, o.h.exp
		st.Min, st.Max, st.Exp, st.Counts = &mn, &mx, &e, o.h.counts
	}
	return st
}

func (o *calibObserver) decodeState(st calibStateJSON) error {
	if st.Observed == nil {
		return fieldError("state.observed", "missing")
	}
	if st.NonFinite < 0 {
		return fieldError("state.non_finite", "negative count %d", st.NonFinite)
	}
	o.h.reset()
	o.h.nonFinite = st.NonFinite
	if !*st.Observed {
		return nil
	}
	if err := checkRange("state.", st.Min, st.Max); err != nil {
		return err
	}
	if st.Exp == nil {
		return fieldError("state.exp", "missing")
	}
	want := expFor(max32(-*st.Min, *st.Max), o.h.half)
	if *st.Exp < want || *st.Exp > 200 {
		return fieldError("state.exp", "bin width 2^%d cannot hold the range [%v, %v] (want at least 2^%d)", *st.Exp, *st.Min, *st.Max, want)
	}
	if len(st.Counts) != 2*o.h.half {
		return fieldError("state.counts", "%d bins, the config says %d", len(st.Counts), 2*o.h.half)
	}
	var total uint64
	for _, c := range st.Counts {
		if total+c < total {
			return fieldError("state.counts", "counts overflow")
		}
		total += c
	}
	if total == 0 {
		return fieldError("state.counts", "no counts in an observed histogram")
	}
	o.h.counts = append([]uint64(nil), st.Counts...)
	o.h.min, o.h.max, o.h.exp, o.h.total, o.h.observed = *st.Min, *st.Max, *st.Exp, total, true
	return nil
}
