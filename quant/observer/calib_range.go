package observer

import (
	"fmt"
	"math"
)

// PercentileConfig configures a Percentile observer.
type PercentileConfig struct {
	Config
	// Percentile is the share of values the range keeps, in percent; 0
	// means ONNX Runtime's default 99.999.
	Percentile float64
	// Bins is the total number of histogram bins, a power of two; 0 means
	// 2048.
	Bins int
}

// Percentile is ONNX Runtime's percentile calibration (also TensorRT's
// legacy calibrator): the range keeps Percentile percent of the observed
// values and clips the rest. With a symmetric scheme the threshold is the
// percentile of |x| and the range ±threshold; with an affine scheme
// (100-Percentile)/2 percent is cut from each tail. Thresholds are
// histogram bin edges (the upper edge of the bin where the cumulative
// count reaches the percentile, which keeps at least that share) clamped to
// the observed [min, max]. Its histogram is exactly mergeable (see Merge).
type Percentile struct{ calibObserver }

// NewPercentile returns a Percentile observer (per-tensor schemes).
func NewPercentile(cfg PercentileConfig) *Percentile {
	p := &Percentile{newCalibObserver("PercentileObserver", methodPercentile, cfg.Config, cfg.Bins)}
	p.pct = cfg.Percentile
	if p.pct == 0 {
		p.pct = 99.999
	}
	if p.cfgErr == nil && !(p.pct > 0 && p.pct <= 100) {
		p.cfgErr = fmt.Errorf("observer: PercentileObserver: invalid config: Percentile %v is not in (0, 100]", cfg.Percentile)
	}
	return p
}

// percentileRange is the Percentile observer's range.
func percentileRange(h *pow2Hist, pct float64, symmetric bool) (float32, float32) {
	total := float64(h.total)
	if symmetric {
		var cum uint64
		for j := 0; j < h.half; j++ {
			cum += h.counts[h.half+j] + h.counts[h.half-1-j]
			if float64(cum)/total >= pct/100 {
				t := float64(j+1) * h.width()
				return h.clampRange(-t, t)
			}
		}
		return h.min, h.max
	}
	cut := (100 - pct) / 200
	lo, hi := float64(h.min), float64(h.max)
	var cum uint64
	left := false
	for i, c := range h.counts {
		cum += c
		if !left && float64(cum)/total >= cut && cum > 0 {
			lo, left = h.edge(i), true
		}
		if float64(cum)/total >= 1-cut {
			hi = h.edge(i + 1)
			break
		}
	}
	return h.clampRange(lo, hi)
}

// MarshalBinary serializes the observer's configuration and state.
func (p *Percentile) MarshalBinary() ([]byte, error) {
	pct := p.pct
	return marshalState(p.kind, calibConfigJSON{configJSON: encodeConfig(p.cfg), Bins: p.bins, Percentile: &pct}, p.encodeState())
}

// UnmarshalBinary restores a serialized PercentileObserver. On error the
// observer is unchanged.
func (p *Percentile) UnmarshalBinary(data []byte) error {
	return unmarshalCalib(p.kind, data, func(base Config, c calibConfigJSON) (*calibObserver, func(), error) {
		if c.Percentile == nil {
			return nil, nil, fieldError("config.percentile", "missing")
		}
		if c.QBins != nil {
			return nil, nil, fieldError("config.quantized_bins", "not an option of this observer")
		}
		n := NewPercentile(PercentileConfig{Config: base, Percentile: *c.Percentile, Bins: c.Bins})
		return &n.calibObserver, func() { *p = *n }, nil
	})
}

// EntropyConfig configures an Entropy observer.
type EntropyConfig struct {
	Config
	// Bins is the total number of histogram bins, a power of two; 0 means
	// 2048.
	Bins int
	// QuantizedBins is the number of levels the candidate distributions are
	// quantized to when comparing them; 0 means 128 (TensorRT, ONNX
	// Runtime).
	QuantizedBins int
}

// Entropy is TensorRT's entropy calibration (also ONNX Runtime's Entropy
// method): for each candidate threshold T (histogram edges from
// QuantizedBins/2 bins per side up to the whole observed range) the
// distribution clipped to [-T, T] (outliers folded into the edge bins) is
// compared with its quantization to QuantizedBins levels by KL divergence
// after smoothing, and the T with the least divergence wins. The range is
// ±T clamped to the observed [min, max]. quanta follows the MXNet/TensorRT
// reference (the quantized distribution is spread over the non-empty bins
// only, in float64); ONNX Runtime's copy truncates it to integers and
// spreads it over empty bins too. Its histogram is exactly mergeable.
type Entropy struct{ calibObserver }

// NewEntropy returns an Entropy observer (per-tensor schemes).
func NewEntropy(cfg EntropyConfig) *Entropy {
	e := &Entropy{newCalibObserver("EntropyObserver", methodEntropy, cfg.Config, cfg.Bins)}
	e.qbins = cfg.QuantizedBins
	if e.qbins == 0 {
		e.qbins = 128
	}
	if e.cfgErr == nil && (e.qbins < 2 || e.qbins%2 != 0 || e.qbins > 2*e.h.half) {
		e.cfgErr = fmt.Errorf("observer: EntropyObserver: invalid config: QuantizedBins %d must be even and in [2, Bins]", cfg.QuantizedBins)
	}
	return e
}

// entropyRange is the Entropy observer's range.
func entropyRange(h *pow2Hist, qbins int) (float32, float32) {
	half := h.half
	first, last := -1, -1
	for i, c := range h.counts {
		if c != 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	iMax := max(half-first, last+1-half, qbins/2)
	iMax = min(iMax, half)
	best, bestKL := iMax, math.Inf(1)
	prefix := make([]uint64, 2*half+1)
	for i, c := range h.counts {
		prefix[i+1] = prefix[i] + c
	}
	p := make([]float64, 2*half)
	q := make([]float64, 2*half)
	for i := qbins / 2; i <= iMax; i++ {
		kl := windowKL(h.counts, prefix, half-i, half+i, qbins, p[:2*i], q[:2*i])
		if kl < bestKL {
			best, bestKL = i, kl
		}
	}
	t := float64(best) * h.width()
	return h.clampRange(-t, t)
}

// windowKL is the smoothed KL divergence between the histogram clipped to
// bins [start, end) (outliers added to the edge bins) and its quantization
// to qbins levels (MXNet's _get_optimal_threshold inner loop).
func windowKL(counts, prefix []uint64, start, end, qbins int, p, q []float64) float64 {
	n := end - start
	for k := range p {
		p[k] = float64(counts[start+k])
	}
	p[0] += float64(prefix[start])
	p[n-1] += float64(prefix[len(counts)] - prefix[end])
	m := n / qbins
	for j := 0; j < qbins; j++ {
		lo, hi := j*m, j*m+m
		if j == qbins-1 {
			hi = n
		}
		var sum float64
		nz := 0
		for k := lo; k < hi; k++ {
			sum += float64(counts[start+k])
			if p[k] != 0 {
				nz++
			}
		}
		for k := lo; k < hi; k++ {
			q[k] = 0
			if nz != 0 && p[k] != 0 {
				q[k] = sum / float64(nz)
			}
		}
	}
	if !smooth(p) || !smooth(q) {
		return math.Inf(1)
	}
	var sp, sq float64
	for k := range p {
		sp += p[k]
		sq += q[k]
	}
	var kl float64
	for k := range p {
		pk := p[k] / sp
		kl += pk * math.Log(pk/(q[k]/sq))
	}
	return kl
}

// smooth replaces zeros with eps and takes the same total off the non-zero
// entries (MXNet's _smooth_distribution, eps 1e-4). It reports false when
// the distribution is empty or smoothing would make an entry non-positive.
func smooth(p []float64) bool {
	const eps = 1e-4
	zeros := 0
	for _, v := range p {
		if v == 0 {
			zeros++
		}
	}
	nonzeros := len(p) - zeros
	if nonzeros == 0 {
		return false
	}
	eps1 := eps * float64(zeros) / float64(nonzeros)
	for k, v := range p {
		if v == 0 {
			p[k] = eps
		} else {
			p[k] = v - eps1
			if p[k] <= 0 {
				return false
			}
		}
	}
	return true
}

// MarshalBinary serializes the observer's configuration and state.
func (e *Entropy) MarshalBinary() ([]byte, error) {
	qb := e.qbins
	return marshalState(e.kind, calibConfigJSON{configJSON: encodeConfig(e.cfg), Bins: e.bins, QBins: &qb}, e.encodeState())
}

// UnmarshalBinary restores a serialized EntropyObserver. On error the
// observer is unchanged.
func (e *Entropy) UnmarshalBinary(data []byte) error {
	return unmarshalCalib(e.kind, data, func(base Config, c calibConfigJSON) (*calibObserver, func(), error) {
		if c.QBins == nil {
			return nil, nil, fieldError("config.quantized_bins", "missing")
		}
		if c.Percentile != nil {
			return nil, nil, fieldError("config.percentile", "not an option of this observer")
		}
		n := NewEntropy(EntropyConfig{Config: base, Bins: c.Bins, QuantizedBins: *c.QBins})
		return &n.calibObserver, func() { *e = *n }, nil
	})
}

// MSEConfig configures an MSE observer.
type MSEConfig struct {
	Config
	// Bins is the total number of histogram bins, a power of two; 0 means
	// 2048.
	Bins int
}

// MSE searches for the range whose quantization has the least mean squared
// error over the observed distribution: the histogram is taken as
// piecewise-uniform densities and the error of each candidate range is
// integrated exactly against the staircase of the qparams that range
// produces (with the configured dtype, scheme and range, so ReduceRange or
// a 4-bit range are accounted for). Candidates shrink the observed extremes
// in steps of 1/256: one-dimensional for symmetric schemes, coordinate
// descent on both ends for affine ones. Its histogram is exactly
// mergeable.
type MSE struct{ calibObserver }

// NewMSE returns an MSE observer (per-tensor schemes).
func NewMSE(cfg MSEConfig) *MSE {
	return &MSE{newCalibObserver("MSEObserver", methodMSE, cfg.Config, cfg.Bins)}
}

// mseCandidates is the number of candidate shrink factors per side; the
// search visits every mseCoarse-th one, then all of them around the best.
const (
	mseCandidates = 256
	mseCoarse     = 8
)

// search1D returns the candidate c in [1, mseCandidates] with the least
// err(c) (the largest such c on ties), coarse to fine.
func search1D(err func(c int) float64) (int, float64) {
	best, bestErr := mseCandidates, err(mseCandidates)
	for c := mseCandidates - mseCoarse; c >= 1; c -= mseCoarse {
		if e := err(c); e < bestErr {
			best, bestErr = c, e
		}
	}
	center := best
	for c := min(center+mseCoarse-1, mseCandidates); c >= max(center-mseCoarse+1, 1); c-- {
		if c == center {
			continue
		}
		if e := err(c); e < bestErr || (e == bestErr && c > best) {
			best, bestErr = c, e
		}
	}
	return best, bestErr
}

// mseRange is the MSE observer's range.
func mseRange(o *calibObserver) (float32, float32) {
	h := &o.h
	lo0, hi0 := float64(min32(h.min, 0)), float64(max32(h.max, 0))
	if lo0 == hi0 {
		return h.min, h.max
	}
	at := func(k, j int) (float32, float32) {
		return h.clampRange(lo0*float64(k)/mseCandidates, hi0*float64(j)/mseCandidates)
	}
	if o.r.symmetric() {
		amax := math.Max(-lo0, hi0)
		sym := func(j int) (float32, float32) {
			t := amax * float64(j) / mseCandidates
			return h.clampRange(-t, t)
		}
		best, _ := search1D(func(j int) float64 { l, u := sym(j); return quantMSE(o, l, u) })
		return sym(best)
	}
	// Coordinate descent: the upper end with the lower fixed, then the
	// lower with the upper fixed, until neither moves.
	k, j := mseCandidates, mseCandidates
	l, u := at(k, j)
	cur := quantMSE(o, l, u)
	for round := 0; round < 16; round++ {
		nj, ej := search1D(func(c int) float64 { l, u := at(k, c); return quantMSE(o, l, u) })
		movedJ := ej < cur
		if movedJ {
			j, cur = nj, ej
		}
		nk, ek := search1D(func(c int) float64 { l, u := at(c, j); return quantMSE(o, l, u) })
		movedK := ek < cur
		if movedK {
			k, cur = nk, ek
		}
		if !movedJ && !movedK {
			break
		}
	}
	return at(k, j)
}

// quantMSE is the total squared error of quantizing the histogram with the
// qparams of range [lo, hi], each bin a uniform density. In units
// u = x/scale + zp, a value's error is scale*(u - Q(u)) with Q(u) =
// clamp(round(u), qmin, qmax), so a bin [ua, ub] contributes
// count * scale^2 * ∫(u-Q)^2 du / (ub-ua).
func quantMSE(o *calibObserver, lo, hi float32) float64 {
	s32, zp, _ := o.r.params(lo, hi)
	s, z := float64(s32), float64(zp)
	qmin, qmax := float64(o.r.qmin), float64(o.r.qmax)
	h := &o.h
	w := h.width()
	var total float64
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		a := h.edge(i)
		// The data never reach past the observed extrema.
		ua := math.Max(a, float64(h.min))/s + z
		ub := math.Min(a+w, float64(h.max))/s + z
		if ub <= ua {
			u := ua
			d := u - math.Min(math.Max(math.RoundToEven(u), qmin), qmax)
			total += float64(c) * s * s * d * d
			continue
		}
		total += float64(c) * s * s * segmentSq(ua, ub, qmin, qmax) / (ub - ua)
	}
	return total
}

// segmentSq is ∫_ua^ub (u - Q(u))^2 du for the clamped rounding staircase.
func segmentSq(ua, ub, qmin, qmax float64) float64 {
	cell := func(u float64) float64 { return math.Min(math.Max(math.Floor(u+0.5), qmin), qmax) }
	integ := func(l, h, q float64) float64 { return ((h-q)*(h-q)*(h-q) - (l-q)*(l-q)*(l-q)) / 3 }
	var sum float64
	for l := ua; l < ub; {
		q := cell(l)
		end := ub
		if q < qmax {
			end = math.Min(ub, q+0.5)
		}
		if end <= l { // guard against a stuck boundary
			end = ub
		}
		sum += integ(l, end, q)
		l = end
	}
	return sum
}

// MarshalBinary serializes the observer's configuration and state.
func (m *MSE) MarshalBinary() ([]byte, error) {
	return marshalState(m.kind, calibConfigJSON{configJSON: encodeConfig(m.cfg), Bins: m.bins}, m.encodeState())
}

// UnmarshalBinary restores a serialized MSEObserver. On error the observer
// is unchanged.
func (m *MSE) UnmarshalBinary(data []byte) error {
	return unmarshalCalib(m.kind, data, func(base Config, c calibConfigJSON) (*calibObserver, func(), error) {
		if c.Percentile != nil {
			return nil, nil, fieldError("config.percentile", "not an option of this observer")
		}
		if c.QBins != nil {
			return nil, nil, fieldError("config.quantized_bins", "not an option of this observer")
		}
		n := NewMSE(MSEConfig{Config: base, Bins: c.Bins})
		return &n.calibObserver, func() { *m = *n }, nil
	})
}

// unmarshalCalib decodes a calibrating observer: build makes a fresh
// observer from the decoded config and returns it with a commit function
// that installs it in the receiver.
func unmarshalCalib(kind string, data []byte, build func(Config, calibConfigJSON) (*calibObserver, func(), error)) error {
	var c calibConfigJSON
	var st calibStateJSON
	if err := unmarshalState(kind, data, &c, &st); err != nil {
		return err
	}
	base, err := c.decode()
	if err != nil {
		return withKind(kind, err)
	}
	n, commit, err := build(base, c)
	if err != nil {
		return withKind(kind, err)
	}
	if n.cfgErr != nil {
		return withKind(kind, fieldError("config", "%v", n.cfgErr))
	}
	if err := n.decodeState(st); err != nil {
		return withKind(kind, err)
	}
	commit()
	return nil
}
