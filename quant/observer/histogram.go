package observer

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/tensor"
)

// HistogramConfig configures a Histogram observer. Zero values are
// PyTorch's defaults.
type HistogramConfig struct {
	Config
	// Bins is the number of histogram bins; 0 means 2048.
	Bins int
	// UpsampleRate is the factor by which the histogram is upsampled when
	// it is combined with one over a wider range; 0 means 128.
	UpsampleRate int
	// TorchCompat reproduces PyTorch 1.13's HistogramObserver exactly,
	// including the two defects quanta otherwise corrects (see Histogram):
	// each batch is binned with torch.histc(min=int(min), max=int(max)),
	// and a histogram holding a single value is discarded when the next
	// batch arrives. quant's PyTorch engine presets (x86, fbgemm, qnnpack,
	// onednn) set it, so their calibration equals PyTorch's bit for bit;
	// the quanta preset does not.
	TorchCompat bool
}

// Histogram is PyTorch's HistogramObserver: a running histogram of the
// observed values over their running [min, max], and qparams from the
// range that minimizes an L2 approximation of the quantization error
// (_non_linear_param_search, ported from caffe2's NormMinimization).
// Per-tensor schemes only.
//
// Its arithmetic is PyTorch 1.13's, operation for operation in float32 and
// float64 as the Python source and the ATen kernels it calls do (histc,
// cumsum, the cascade sum, floor division), so the qparams equal
// PyTorch's bit for bit. It departs from PyTorch where PyTorch is wrong:
//
//   - PyTorch bins each batch with torch.histc(x, min=int(min),
//     max=int(max)): bounds truncated toward zero, so values outside the
//     truncated range are dropped and the rest land in bins that are then
//     read as if they spanned the true range. quanta bins over the true
//     float32 range.
//   - When the histogram so far holds a single value (min == max),
//     PyTorch discards it and restarts from the new batch. quanta keeps
//     those counts, placing them in the bin of that value in the new range.
//   - Where PyTorch fails outright (a combined range over 2^31 times wider
//     than the old one would need terabytes; a grid that does not fit
//     raises a shape error), quanta re-bins the old histogram by exact
//     overlap instead.
//
// On inputs where none of these trigger, quanta and PyTorch agree exactly
// (testdata/ holds PyTorch's own results for both kinds of input).
type Histogram struct {
	cfg      HistogramConfig
	r        qrange
	cfgErr   error
	bins, up int
	dstBins  float64 // 2^bits of the dtype: 256, or 2^32 for qint32

	hist      []float32
	min, max  float32
	observed  bool
	nonFinite int64
}

// NewHistogram returns a HistogramObserver.
func NewHistogram(cfg HistogramConfig) *Histogram {
	const kind = "HistogramObserver"
	h := &Histogram{cfg: cfg, bins: cfg.Bins, up: cfg.UpsampleRate}
	if h.bins == 0 {
		h.bins = 2048
	}
	if h.up == 0 {
		h.up = 128
	}
	h.r, h.cfgErr = resolve(kind, cfg.Config, false)
	switch {
	case h.cfgErr != nil:
	case h.bins < 1 || h.bins > 1<<24:
		h.cfgErr = fmt.Errorf("observer: %s: invalid config: Bins %d is not in [1, 2^24]", kind, cfg.Bins)
	case h.up < 1 || h.up > 1<<16:
		h.cfgErr = fmt.Errorf("observer: %s: invalid config: UpsampleRate %d is not in [1, 65536]", kind, cfg.UpsampleRate)
	}
	h.dstBins = 256
	if h.r.dtype == tensor.QInt32 {
		h.dstBins = 1 << 32
	}
	return h
}

// Observe adds x's values to the histogram (PyTorch's forward). An empty
// tensor is ignored.
func (h *Histogram) Observe(x *tensor.Tensor) error {
	const kind = "HistogramObserver"
	if h.cfgErr != nil {
		return h.cfgErr
	}
	data, err := floatData(kind, x)
	if err != nil || len(data) == 0 {
		return err
	}
	e := scanExtrema(data)
	if e.nonFinite > 0 {
		if !h.cfg.IgnoreNonFinite {
			return nonFiniteError(kind, e, len(data))
		}
		h.nonFinite += int64(e.nonFinite)
		data = finiteValues(data, e)
	}
	if e.finite == 0 {
		return nil
	}
	h.add(data, e.min, e.max)
	return nil
}

// bounds returns the histc bounds for the range [lo, hi]: the range itself,
// or with TorchCompat PyTorch's int(lo), int(hi) (truncated toward zero).
func (h *Histogram) bounds(lo, hi float32) (float64, float64) {
	if h.cfg.TorchCompat {
		return math.Trunc(float64(lo)), math.Trunc(float64(hi))
	}
	return float64(lo), float64(hi)
}

// add folds finite values with extrema (mn, mx) into the histogram.
func (h *Histogram) add(data []float32, mn, mx float32) {
	if !h.observed || (h.cfg.TorchCompat && h.min == h.max) {
		// PyTorch restarts from this batch when the histogram is empty
		// or (its defect) holds a single value.
		h.min, h.max, h.observed = mn, mx, true
		lo, hi := h.bounds(mn, mx)
		h.hist = histc(data, h.bins, lo, hi, mn, mx)
		return
	}
	cmin, cmax := min32(mn, h.min), max32(mx, h.max)
	if h.min == h.max {
		// The histogram holds one value: no grid to align to.
		nh := histc(data, h.bins, float64(cmin), float64(cmax), mn, mx)
		h.addPoint(nh, h.min, torchSum32(h.hist), cmin, cmax)
		h.hist, h.min, h.max = nh, cmin, cmax
		return
	}
	a, ok := h.adjust(cmin, cmax)
	if !ok {
		nh := histc(data, h.bins, float64(cmin), float64(cmax), mn, mx)
		rebinAdd(nh, cmin, cmax, h.hist, h.min, h.max)
		h.hist, h.min, h.max = nh, cmin, cmax
		return
	}
	lo, hi := h.bounds(a.min, a.max)
	nh := histc(data, h.bins, lo, hi, mn, mx)
	if a.min == h.min && a.max == h.max {
		for i, v := range h.hist {
			nh[i] += v
		}
	} else {
		combineHistograms(nh, h.hist, h.up, a.ds, a.start)
	}
	h.hist, h.min, h.max = nh, a.min, a.max
}

// addPoint adds count to the bin of value v in histogram nh over [lo, hi],
// as nh += histc([v], lo, hi) * count.
func (h *Histogram) addPoint(nh []float32, v, count, lo, hi float32) {
	left, right := histcEdges(float64(lo), float64(hi), v, v, len(nh))
	if b := histcBin(v, left, right, len(nh)); b >= 0 {
		nh[b] += count
	}
}

// adjusted is the result of _adjust_min_max.
type adjusted struct {
	min, max  float32
	ds, start int
}

// maxDownsample bounds the downsample rate quanta emulates exactly; PyTorch
// would allocate bins*ds floats, which beyond this is impossible anyway.
const maxDownsample = 1 << 31

// adjust is _adjust_min_max: it widens [cmin, cmax] (only at the top) so the
// new bin width is an integer multiple ds of the old width divided by the
// upsample rate, and finds the index start of the old minimum on the fine
// grid. ok is false where PyTorch's computation breaks down (see Histogram).
func (h *Histogram) adjust(cmin, cmax float32) (adjusted, bool) {
	hbw := (h.max - h.min) / float32(h.bins*h.up)
	t := float32(float32(h.bins) * hbw)
	span := cmax - cmin
	q := float64(float32(span / t))
	if !(hbw > 0) || math.IsInf(q, 0) || math.IsNaN(q) || math.Ceil(q) > maxDownsample {
		return adjusted{}, false
	}
	ds := int(math.Ceil(q))
	e := float32(float32(ds)*t) - span
	cmax = cmax + e
	st := math.RoundToEven(float64(float32((h.min - cmin) / hbw)))
	if st < 0 || st > float64(h.bins)*float64(ds) || int(st)+h.bins*h.up > h.bins*ds {
		return adjusted{}, false
	}
	return adjusted{min: cmin, max: cmax, ds: ds, start: int(st)}, true
}

// combineHistograms is _combine_histograms: the old histogram is
// upsampled by repeating each bin up times, placed at offset start in a
// grid of bins*ds fine bins, integrated with a float64 cumulative sum,
// sampled every ds fine bins, differenced against the float32-stored
// previous sample and divided by up, and added (as float32) to dst. The
// fine grid is never materialized: zeros do not change the running sum.
func combineHistograms(dst, old []float32, up, ds, start int) {
	n := len(dst)
	segLo, segHi := start, start+n*up
	var acc float64
	var prev float32 // shifted_integral_histogram[k], a float32 tensor
	p := 0
	for k := 0; k < n; k++ {
		target := k*ds + ds // exclusive end of the positions summed so far
		lo, hi := max(p, segLo), min(target, segHi)
		if lo < hi {
			// Positions lo..hi-1 repeat old bins up times each; add them
			// one position at a time, as the cumulative sum does.
			bin, left := (lo-segLo)/up, up-(lo-segLo)%up
			v := float64(old[bin])
			for q := lo; q < hi; q++ {
				acc += v
				if left--; left == 0 && q+1 < hi {
					bin++
					left = up
					v = float64(old[bin])
				}
			}
		}
		p = target
		interp := (acc - float64(prev)) / float64(up)
		dst[k] += float32(interp)
		prev = float32(acc)
	}
}

// rebinAdd adds histogram src over [slo, shi] (slo < shi) to dst over
// [dlo, dhi], spreading each source bin's count uniformly over its
// interval and splitting it by overlap length, in float64. Mass that
// rounding puts outside [dlo, dhi] goes to the edge bins.
func rebinAdd(dst []float32, dlo, dhi float32, src []float32, slo, shi float32) {
	nd, ns := len(dst), len(src)
	dw := (float64(dhi) - float64(dlo)) / float64(nd)
	sw := (float64(shi) - float64(slo)) / float64(ns)
	acc := make([]float64, nd)
	bin := func(v float64) int {
		if !(dw > 0) {
			return 0
		}
		return min(max(int(math.Floor((v-float64(dlo))/dw)), 0), nd-1)
	}
	for i, c := range src {
		if c == 0 {
			continue
		}
		a := float64(slo) + float64(i)*sw
		b := a + sw
		for j := bin(a); j <= bin(b); j++ {
			lo := math.Max(a, float64(dlo)+float64(j)*dw)
			hi := math.Min(b, float64(dlo)+float64(j+1)*dw)
			if j == 0 {
				lo = a
			}
			if j == nd-1 {
				hi = b
			}
			if hi > lo {
				acc[j] += float64(c) * (hi - lo) / sw
			}
		}
	}
	for j, v := range acc {
		dst[j] += float32(v)
	}
}

// CalculateQParams searches the histogram for the range with the least
// approximate L2 quantization error and returns its qparams, as PyTorch's
// calculate_qparams.
func (h *Histogram) CalculateQParams() (*tensor.QParams, error) {
	const kind = "HistogramObserver"
	if h.cfgErr != nil {
		return nil, h.cfgErr
	}
	if !h.observed {
		return nil, fmt.Errorf("observer: %s: CalculateQParams: %w", kind, ErrNotObserved)
	}
	mn, mx := h.nonLinearParamSearch()
	return h.r.qparams(kind, []float32{mn}, []float32{mx}, 0)
}

// Config returns the shared part of the observer's configuration.
func (h *Histogram) Config() Config { return h.cfg.Config }

// HistogramConfig returns the observer's full configuration.
func (h *Histogram) HistogramConfig() HistogramConfig { return h.cfg }

// Reset forgets everything observed.
func (h *Histogram) Reset() {
	h.hist, h.min, h.max, h.observed, h.nonFinite = nil, 0, 0, false, 0
}

// State returns a copy of the histogram and its range (PyTorch's
// histogram, min_val and max_val buffers); ok is false before anything was
// observed.
func (h *Histogram) State() (hist []float32, min, max float32, ok bool) {
	if !h.observed {
		return nil, 0, 0, false
	}
	return append([]float32(nil), h.hist...), h.min, h.max, true
}

// NonFinite returns how many NaN or ±Inf values were skipped (with
// Config.IgnoreNonFinite).
func (h *Histogram) NonFinite() int64 { return h.nonFinite }

// Merge folds another Histogram with the same configuration into this one.
// The other histogram is combined as PyTorch combines a new batch: this
// histogram is re-gridded onto the union range exactly as Observe does,
// and the other's bins are spread onto that grid by overlap. When both
// cover the same range (as happens when every shard saw the global
// extremes) the counts simply add, and the result equals observing all
// shards' batches in one pass bit for bit.
func (h *Histogram) Merge(other Observer) error {
	const kind = "HistogramObserver"
	if h.cfgErr != nil {
		return h.cfgErr
	}
	o, ok := other.(*Histogram)
	if !ok {
		return fmt.Errorf("observer: %s: cannot merge a %T", kind, other)
	}
	if o.cfgErr != nil {
		return o.cfgErr
	}
	if err := sameConfig(kind, h.cfg.Config, o.cfg.Config); err != nil {
		return err
	}
	if h.bins != o.bins || h.up != o.up {
		return fmt.Errorf("observer: %s: cannot merge: bins/upsample %d/%d vs %d/%d", kind, h.bins, h.up, o.bins, o.up)
	}
	h.nonFinite += o.nonFinite
	if !o.observed {
		return nil
	}
	if !h.observed {
		h.hist, h.min, h.max, h.observed = append([]float32(nil), o.hist...), o.min, o.max, true
		return nil
	}
	if o.min == h.min && o.max == h.max {
		for i, v := range o.hist {
			h.hist[i] += v
		}
		return nil
	}
	cmin, cmax := min32(o.min, h.min), max32(o.max, h.max)
	nh := make([]float32, h.bins)
	switch a, ok := h.adjust(cmin, cmax); {
	case h.min == h.max:
		h.addPoint(nh, h.min, torchSum32(h.hist), cmin, cmax)
	case ok:
		cmax = a.max
		combineHistograms(nh, h.hist, h.up, a.ds, a.start)
	default:
		rebinAdd(nh, cmin, cmax, h.hist, h.min, h.max)
	}
	if o.min == o.max {
		h.addPoint(nh, o.min, torchSum32(o.hist), cmin, cmax)
	} else {
		rebinAdd(nh, cmin, cmax, o.hist, o.min, o.max)
	}
	h.hist, h.min, h.max = nh, cmin, cmax
	return nil
}
