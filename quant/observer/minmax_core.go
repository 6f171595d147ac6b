package observer

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

// mmStats is the statistics engine shared by the four min/max observers:
// running (or moving-average) min and max, per tensor (one channel) or per
// channel.
type mmStats struct {
	kind       string
	perChannel bool
	chAxis     int
	ignore     bool

	min, max  []float32 // nil until something was observed
	nonFinite int64

	// Moving average only.
	moving  bool
	c       float32 // averaging constant as the float32 PyTorch multiplies by
	batches int64   // batches that updated the statistics
	// firstMin/firstMax are the ranges of the first batch, which the
	// moving average takes directly; Merge needs them.
	firstMin, firstMax []float32
	// With record set, logMin/logMax keep every batch's range so that Merge
	// can replay them exactly; logOK is false once a merge without a log
	// made the log incomplete.
	record         bool
	logMin, logMax [][]float32
	logOK          bool
}

func (s *mmStats) reset() {
	s.min, s.max, s.nonFinite, s.batches = nil, nil, 0, 0
	s.firstMin, s.firstMax, s.logMin, s.logMax = nil, nil, nil, nil
	s.logOK = s.record
}

// batchRange computes the per-batch (per-channel) min and max of x. ok is
// false when x holds no finite value (or no value at all).
func (s *mmStats) batchRange(x *tensor.Tensor) (mn, mx []float32, ok bool, err error) {
	data, err := floatData(s.kind, x)
	if err != nil || len(data) == 0 {
		return nil, nil, false, err
	}
	if !s.perChannel {
		e := scanExtrema(data)
		if e.nonFinite > 0 {
			if !s.ignore {
				return nil, nil, false, nonFiniteError(s.kind, e, len(data))
			}
			s.nonFinite += int64(e.nonFinite)
		}
		if e.finite == 0 {
			return nil, nil, false, nil
		}
		return []float32{e.min}, []float32{e.max}, true, nil
	}
	shape := x.Shape()
	nd := len(shape)
	if nd == 0 {
		return nil, nil, false, fmt.Errorf("observer: %s: cannot observe a 0-dimensional tensor per channel", s.kind)
	}
	ax := s.chAxis
	if ax < 0 {
		ax += nd
	}
	if ax < 0 || ax >= nd {
		return nil, nil, false, fmt.Errorf("observer: %s: ChAxis %d out of range for a %d-dimensional tensor %v", s.kind, s.chAxis, nd, shape)
	}
	C := shape[ax]
	if s.min != nil && len(s.min) != C {
		return nil, nil, false, fmt.Errorf("observer: %s: tensor %v has %d channels along axis %d, earlier tensors had %d", s.kind, shape, C, ax, len(s.min))
	}
	inner := 1
	for _, d := range shape[ax+1:] {
		inner *= d
	}
	outer := len(data) / (C * inner)
	parts := make([]extrema, C)
	if inner < 16 {
		// Channels interleave finely (e.g. the last axis): one pass.
		for c := range parts {
			parts[c] = extrema{min: float32(math.Inf(1)), max: float32(math.Inf(-1)), firstBad: -1}
		}
		for i, v := range data {
			p := &parts[(i/inner)%C]
			if v-v != 0 {
				if p.firstBad < 0 {
					p.firstBad = i
				}
				p.nonFinite++
				continue
			}
			p.finite++
			if v < p.min {
				p.min = v
			}
			if v > p.max {
				p.max = v
			}
		}
	} else {
		s.channelExtrema(data, C, inner, outer, parts)
	}
	mn, mx = make([]float32, C), make([]float32, C)
	bad, first := 0, -1
	for c, e := range parts {
		mn[c], mx[c] = e.min, e.max
		bad += e.nonFinite
		if e.firstBad >= 0 && (first < 0 || e.firstBad < first) {
			first = e.firstBad
		}
		if e.finite > 0 {
			ok = true
		}
	}
	if bad > 0 {
		if !s.ignore {
			return nil, nil, false, nonFiniteError(s.kind, extrema{nonFinite: bad, firstBad: first}, len(data))
		}
		s.nonFinite += int64(bad)
	}
	return mn, mx, ok, nil
}

// channelExtrema scans each channel's contiguous runs, channels split
// across goroutines (each channel's reduction stays on one goroutine).
func (s *mmStats) channelExtrema(data []float32, C, inner, outer int, parts []extrema) {
	parallel.For(C, max(1, scanGrain/max(1, len(data)/C)), func(c0, c1 int) {
		for c := c0; c < c1; c++ {
			e := extrema{min: float32(math.Inf(1)), max: float32(math.Inf(-1)), firstBad: -1}
			for o := 0; o < outer; o++ {
				off := (o*C + c) * inner
				e = e.mergeOrdered(scanChunk(data[off:off+inner], off))
			}
			parts[c] = e
		}
	})
}

// mergeOrdered is merge for parts that are not necessarily in flat-index
// order: it keeps the smallest first-bad index.
func (a extrema) mergeOrdered(b extrema) extrema {
	fb := a.firstBad
	if b.firstBad >= 0 && (fb < 0 || b.firstBad < fb) {
		fb = b.firstBad
	}
	a = a.merge(b)
	a.firstBad = fb
	return a
}

// observe folds x into the statistics.
func (s *mmStats) observe(x *tensor.Tensor) error {
	mn, mx, ok, err := s.batchRange(x)
	if err != nil || !ok {
		return err
	}
	s.update(mn, mx)
	return nil
}

// update applies one batch's range. Channels without a finite value in the
// batch (+Inf/-Inf, possible only when non-finite values are ignored) keep
// their state.
func (s *mmStats) update(mn, mx []float32) {
	if s.record && s.logOK {
		s.logMin = append(s.logMin, append([]float32(nil), mn...))
		s.logMax = append(s.logMax, append([]float32(nil), mx...))
	}
	if s.min == nil {
		s.min = append([]float32(nil), mn...)
		s.max = append([]float32(nil), mx...)
		if s.moving {
			s.firstMin = append([]float32(nil), mn...)
			s.firstMax = append([]float32(nil), mx...)
			s.batches = 1
		}
		return
	}
	if !s.moving {
		for i := range mn {
			s.min[i] = min32(s.min[i], mn[i])
			s.max[i] = max32(s.max[i], mx[i])
		}
		return
	}
	s.batches++
	for i := range mn {
		s.min[i], s.max[i] = s.emaStep(s.min[i], s.max[i], mn[i], mx[i])
	}
}

// emaStep is one moving-average update of a channel, in PyTorch's float32
// order: m + c*(cur - m). A channel not yet observed takes cur directly;
// a batch with no finite value in the channel leaves it unchanged.
func (s *mmStats) emaStep(m, M, cur, CUR float32) (float32, float32) {
	if cur > CUR { // +Inf/-Inf: nothing finite in this channel this batch
		return m, M
	}
	if m > M { // channel never observed
		return cur, CUR
	}
	d := cur - m
	m = m + float32(s.c*d)
	D := CUR - M
	M = M + float32(s.c*D)
	return m, M
}

// merge folds o (whose batches come after s's) into s.
func (s *mmStats) merge(o *mmStats) error {
	if o.min != nil && s.min != nil && len(o.min) != len(s.min) {
		return fmt.Errorf("observer: %s: Merge: %d channels vs %d", s.kind, len(s.min), len(o.min))
	}
	s.nonFinite += o.nonFinite
	if o.min == nil {
		return nil
	}
	if s.min == nil {
		nf := s.nonFinite
		s.copyFrom(o)
		s.nonFinite = nf
		return nil
	}
	if !s.moving {
		for i := range s.min {
			s.min[i] = min32(s.min[i], o.min[i])
			s.max[i] = max32(s.max[i], o.max[i])
		}
		return nil
	}
	if s.record && s.logOK && o.record && o.logOK {
		// Exact: replay o's batches.
		for b := range o.logMin {
			s.update(o.logMin[b], o.logMax[b])
		}
		return nil
	}
	// Closed form: an EMA started from its first batch f relates to the
	// same batches continued from m by m' = mB + (1-c)^nB * (m - f).
	k := math.Pow(1-float64(s.c), float64(o.batches))
	for i := range s.min {
		lo := emaJoin(s.min[i], s.max[i], o.min[i], o.max[i], o.firstMin[i], o.firstMax[i], k, false)
		hi := emaJoin(s.min[i], s.max[i], o.min[i], o.max[i], o.firstMin[i], o.firstMax[i], k, true)
		s.min[i], s.max[i] = lo, hi
	}
	s.batches += o.batches
	s.logOK, s.logMin, s.logMax = false, nil, nil
	return nil
}

// emaJoin continues channel state (m, M) through another observer's
// batches summarized by its state (mB, MB) and first batch (f, F); k is
// (1-c)^nB. Unobserved channels (min > max) on either side are handled.
func emaJoin(m, M, mB, MB, f, F float32, k float64, upper bool) float32 {
	if mB > MB {
		if upper {
			return M
		}
		return m
	}
	if m > M {
		if upper {
			return MB
		}
		return mB
	}
	if upper {
		return float32(float64(MB) + k*(float64(M)-float64(F)))
	}
	return float32(float64(mB) + k*(float64(m)-float64(f)))
}

func (s *mmStats) copyFrom(o *mmStats) {
	cp := func(a []float32) []float32 {
		if a == nil {
			return nil
		}
		return append([]float32(nil), a...)
	}
	s.min, s.max = cp(o.min), cp(o.max)
	s.nonFinite, s.batches = o.nonFinite, o.batches
	s.firstMin, s.firstMax = cp(o.firstMin), cp(o.firstMax)
	s.logOK = s.record && o.record && o.logOK
	s.logMin, s.logMax = nil, nil
	if s.logOK {
		for b := range o.logMin {
			s.logMin = append(s.logMin, cp(o.logMin[b]))
			s.logMax = append(s.logMax, cp(o.logMax[b]))
		}
	}
}

// mmJSON is the serialized state of the min/max observers.
type mmJSON struct {
	Observed  *bool `json:"observed"`
	NonFinite int64 `json:"non_finite"`
	// Per tensor: min and max as numbers. Per channel: base64 float32 arrays.
	Min  *float32 `json:"min,omitempty"`
	Max  *float32 `json:"max,omitempty"`
	Mins *string  `json:"mins,omitempty"`
	Maxs *string  `json:"maxs,omitempty"`
	// Moving average.
	Batches   int64   `json:"batches,omitempty"`
	FirstMins *string `json:"first_mins,omitempty"`
	FirstMaxs *string `json:"first_maxs,omitempty"`
	LogMins   *string `json:"log_mins,omitempty"`
	LogMaxs   *string `json:"log_maxs,omitempty"`
}

func (s *mmStats) encode() mmJSON {
	obs := s.min != nil
	j := mmJSON{Observed: &obs, NonFinite: s.nonFinite}
	if !obs {
		return j
	}
	str := func(a []float32) *string { v := encodeF32s(a); return &v }
	if s.perChannel {
		j.Mins, j.Maxs = str(s.min), str(s.max)
	} else {
		mn, mx := s.min[0], s.max[0]
		j.Min, j.Max = &mn, &mx
	}
	if s.moving {
		j.Batches = s.batches
		j.FirstMins, j.FirstMaxs = str(s.firstMin), str(s.firstMax)
		if s.record && s.logOK {
			var lm, lM []float32
			for b := range s.logMin {
				lm = append(lm, s.logMin[b]...)
				lM = append(lM, s.logMax[b]...)
			}
			j.LogMins, j.LogMaxs = str(lm), str(lM)
		}
	}
	return j
}

// decode validates j and loads it into s.
func (s *mmStats) decode(j mmJSON) error {
	if j.Observed == nil {
		return fieldError("state.observed", "missing")
	}
	if j.NonFinite < 0 {
		return fieldError("state.non_finite", "negative count %d", j.NonFinite)
	}
	s.reset()
	s.nonFinite = j.NonFinite
	if !*j.Observed {
		return nil
	}
	var mn, mx []float32
	if s.perChannel {
		var err error
		if j.Mins == nil {
			return fieldError("state.mins", "missing")
		}
		if j.Maxs == nil {
			return fieldError("state.maxs", "missing")
		}
		if mn, err = decodeF32s("state.mins", *j.Mins); err != nil {
			return err
		}
		if mx, err = decodeF32s("state.maxs", *j.Maxs); err != nil {
			return err
		}
		if len(mn) == 0 || len(mn) != len(mx) {
			return fieldError("state.maxs", "%d maxima for %d minima", len(mx), len(mn))
		}
		for i := range mn {
			if err := checkChannel("state.mins", i, mn[i], mx[i]); err != nil {
				return err
			}
		}
	} else {
		if err := checkRange("state.", j.Min, j.Max); err != nil {
			return err
		}
		mn, mx = []float32{*j.Min}, []float32{*j.Max}
	}
	s.min, s.max = mn, mx
	if !s.moving {
		return nil
	}
	if j.Batches < 1 {
		return fieldError("state.batches", "%d batches for an observed moving average", j.Batches)
	}
	s.batches = j.Batches
	var err error
	if j.FirstMins == nil {
		return fieldError("state.first_mins", "missing")
	}
	if j.FirstMaxs == nil {
		return fieldError("state.first_maxs", "missing")
	}
	if s.firstMin, err = decodeF32s("state.first_mins", *j.FirstMins); err != nil {
		return err
	}
	if s.firstMax, err = decodeF32s("state.first_maxs", *j.FirstMaxs); err != nil {
		return err
	}
	if len(s.firstMin) != len(mn) || len(s.firstMax) != len(mn) {
		return fieldError("state.first_mins", "%d/%d values for %d channels", len(s.firstMin), len(s.firstMax), len(mn))
	}
	s.logOK = false
	if j.LogMins != nil || j.LogMaxs != nil {
		if j.LogMins == nil || j.LogMaxs == nil {
			return fieldError("state.log_mins", "log_mins and log_maxs must be given together")
		}
		lm, err := decodeF32s("state.log_mins", *j.LogMins)
		if err != nil {
			return err
		}
		lM, err := decodeF32s("state.log_maxs", *j.LogMaxs)
		if err != nil {
			return err
		}
		C := len(mn)
		if len(lm) != len(lM) || len(lm) != int(j.Batches)*C {
			return fieldError("state.log_mins", "%d/%d values for %d batches of %d channels", len(lm), len(lM), j.Batches, C)
		}
		if s.record {
			for b := 0; b < int(j.Batches); b++ {
				s.logMin = append(s.logMin, lm[b*C:(b+1)*C])
				s.logMax = append(s.logMax, lM[b*C:(b+1)*C])
			}
			s.logOK = true
		}
	}
	return nil
}

// checkChannel validates one serialized per-channel range. A channel that
// saw no finite value is stored as (+Inf, -Inf).
func checkChannel(field string, i int, mn, mx float32) error {
	if math.IsInf(float64(mn), 1) && math.IsInf(float64(mx), -1) {
		return nil
	}
	if mn-mn != 0 || mx-mx != 0 || !(mn <= mx) {
		return fieldError(field, "channel %d: invalid range [%v, %v]", i, mn, mx)
	}
	return nil
}
