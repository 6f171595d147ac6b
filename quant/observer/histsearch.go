package observer

import (
	"fmt"
	"math"
)

// nonLinearParamSearch is HistogramObserver._non_linear_param_search: it
// narrows [start_bin, end_bin] from both ends by quantile steps of 1e-5,
// moving whichever end gains more bins, and stops at the first step whose
// quantization error is larger than the previous one.
func (h *Histogram) nonLinearParamSearch() (newMin, newMax float32) {
	bins := h.bins
	binWidth := (h.max - h.min) / float32(bins) // a float32 tensor
	total := float64(torchSum32(h.hist))
	cSum := cumsum32(h.hist)

	const stepsize = 1e-5
	alpha, beta := 0.0, 1.0
	start, end := 0, bins-1
	normMin := math.Inf(1)
	for alpha < beta {
		nextAlpha := alpha + stepsize
		nextBeta := beta - stepsize
		// cSum[l] < next_alpha * total compares a float32 tensor with a
		// Python float: in float32.
		la := float32(nextAlpha * total)
		rb := float32(nextBeta * total)
		l, r := start, end
		for l < end && cSum[l] < la {
			l++
		}
		for r > start && cSum[r] > rb {
			r--
		}
		nextStart, nextEnd := start, end
		if l-start > end-r {
			nextStart = l
			alpha = nextAlpha
		} else {
			nextEnd = r
			beta = nextBeta
		}
		if nextStart == start && nextEnd == end {
			continue
		}
		norm := h.quantizationError(nextStart, nextEnd)
		if norm > normMin {
			break
		}
		normMin = norm
		start, end = nextStart, nextEnd
	}
	newMin = h.min + float32(binWidth*float32(start))
	newMax = h.min + float32(binWidth*float32(end+1))
	return newMin, newMax
}

// quantizationError is HistogramObserver._compute_quantization_error: the
// L2 error of quantizing the histogram, taken as piecewise-uniform
// densities, onto dstBins levels spanning source bins [start, end]. The
// per-bin terms are float32 tensors in PyTorch; bin_width and
// dst_bin_width are Python floats, converted to float32 where they meet a
// tensor. The sum is torch.sum's cascade, returned as a float64 (.item()).
func (h *Histogram) quantizationError(start, end int) float64 {
	binWidth := (float64(h.max) - float64(h.min)) / float64(h.bins)
	dstWidth := binWidth * float64(end-start+1) / h.dstBins
	if dstWidth == 0 {
		return 0
	}
	bw := float32(binWidth)
	dw := float32(dstWidth)
	half := float32(dstWidth / 2)
	negHalf := float32(-dstWidth / 2)
	dstMax := float32(h.dstBins - 1)
	cube := func(v float32) float32 { return float32(float32(v*v) * v) }
	// _get_norm(tensor(-w/2), tensor(w/2), density) without density.
	full := (cube(half) - cube(negHalf)) / 3
	norm := make([]float32, h.bins)
	for i := range norm {
		srcBegin := float32(float32(i-start) * bw)
		srcEnd := srcBegin + bw
		dBegin := clamp32(floorDiv32(srcBegin, dw), 0, dstMax)
		dBeginCenter := (dBegin + 0.5) * dw
		dEnd := clamp32(floorDiv32(srcEnd, dw), 0, dstMax)
		density := h.hist[i] / bw

		deltaBegin := srcBegin - dBeginCenter
		n := float32(0) + float32(density*((cube(half)-cube(deltaBegin))/3))

		n += float32(((dEnd - dBegin) - 1) * float32(density*full))

		dEndCenter := float32(dEnd*dw) + half
		deltaEnd := srcEnd - dEndCenter
		n += float32(density * ((cube(deltaEnd) - cube(negHalf)) / 3))
		norm[i] = n
	}
	return float64(torchSum32(norm))
}

// clamp32 is torch.clamp(v, lo, hi) for non-NaN float32.
func clamp32(v, lo, hi float32) float32 {
	return min32(max32(v, lo), hi)
}

// histJSON is the serialized state of a Histogram.
type histJSON struct {
	Observed  *bool    `json:"observed"`
	NonFinite int64    `json:"non_finite"`
	Min       *float32 `json:"min,omitempty"`
	Max       *float32 `json:"max,omitempty"`
	Histogram *string  `json:"histogram,omitempty"`
}

// histConfigJSON is the serialized HistogramConfig.
type histConfigJSON struct {
	configJSON
	Bins         int  `json:"bins"`
	UpsampleRate int  `json:"upsample_rate"`
	TorchCompat  bool `json:"torch_compat,omitempty"`
}

// MarshalBinary serializes the observer's configuration and state.
func (h *Histogram) MarshalBinary() ([]byte, error) {
	c := histConfigJSON{configJSON: encodeConfig(h.cfg.Config), Bins: h.cfg.Bins, UpsampleRate: h.cfg.UpsampleRate, TorchCompat: h.cfg.TorchCompat}
	obs := h.observed
	st := histJSON{Observed: &obs, NonFinite: h.nonFinite}
	if obs {
		mn, mx, hs := h.min, h.max, encodeF32s(h.hist)
		st.Min, st.Max, st.Histogram = &mn, &mx, &hs
	}
	return marshalState("HistogramObserver", c, st)
}

// UnmarshalBinary replaces the observer's configuration and state with a
// serialized HistogramObserver. On error the observer is unchanged.
func (h *Histogram) UnmarshalBinary(data []byte) error {
	const kind = "HistogramObserver"
	var c histConfigJSON
	var st histJSON
	if err := unmarshalState(kind, data, &c, &st); err != nil {
		return err
	}
	base, err := c.decode()
	if err != nil {
		return withKind(kind, err)
	}
	n := NewHistogram(HistogramConfig{Config: base, Bins: c.Bins, UpsampleRate: c.UpsampleRate, TorchCompat: c.TorchCompat})
	if n.cfgErr != nil {
		return withKind(kind, fieldError("config", "%v", n.cfgErr))
	}
	if err := n.decodeState(st); err != nil {
		return withKind(kind, err)
	}
	*h = *n
	return nil
}

func (h *Histogram) decodeState(st histJSON) error {
	if st.Observed == nil {
		return fieldError("state.observed", "missing")
	}
	if st.NonFinite < 0 {
		return fieldError("state.non_finite", "negative count %d", st.NonFinite)
	}
	h.nonFinite = st.NonFinite
	if !*st.Observed {
		return nil
	}
	if err := checkRange("state.", st.Min, st.Max); err != nil {
		return err
	}
	if st.Histogram == nil {
		return fieldError("state.histogram", "missing")
	}
	hist, err := decodeF32s("state.histogram", *st.Histogram)
	if err != nil {
		return err
	}
	if len(hist) != h.bins {
		return fieldError("state.histogram", "%d bins, the config says %d", len(hist), h.bins)
	}
	for i, v := range hist {
		if !(v >= 0) || math.IsInf(float64(v), 0) {
			return fieldError("state.histogram", "bin %d holds %v", i, v)
		}
	}
	h.hist, h.min, h.max, h.observed = hist, *st.Min, *st.Max, true
	return nil
}

// String describes the observer like PyTorch's repr.
func (h *Histogram) String() string {
	if !h.observed {
		return "HistogramObserver(min_val=inf, max_val=-inf)"
	}
	return fmt.Sprintf("HistogramObserver(min_val=%v, max_val=%v)", h.min, h.max)
}
