package observer

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/tensor"
)

// MovingAverageConfig configures the moving-average observers.
type MovingAverageConfig struct {
	Config
	// AveragingConstant is c in min += c*(batch_min - min); 0 means
	// PyTorch's default 0.01. It is applied as a float32, as PyTorch does.
	AveragingConstant float64
	// RecordBatches keeps every batch's range (8 bytes per channel per
	// batch) so Merge can replay them and sharded calibration reproduces one
	// pass bit for bit. Without it Merge uses the closed form
	// m = m_B + (1-c)^n_B (m_A - first_B), exact in real arithmetic and
	// within a few float32 ulps of one pass.
	RecordBatches bool
}

// minMaxObserver is the implementation shared by MinMax,
// MovingAverageMinMax, PerChannelMinMax and MovingAveragePerChannelMinMax.
type minMaxObserver struct {
	cfg    Config
	avg    float64 // AveragingConstant as configured (moving only)
	r      qrange
	cfgErr error
	s      mmStats
}

func newMinMaxObserver(kind string, cfg Config, perChannel, moving bool, avg float64, record bool) minMaxObserver {
	o := minMaxObserver{cfg: cfg, avg: avg}
	o.s = mmStats{kind: kind, perChannel: perChannel, chAxis: cfg.ChAxis, ignore: cfg.IgnoreNonFinite, moving: moving, record: record && moving}
	o.s.logOK = o.s.record
	o.r, o.cfgErr = resolve(kind, cfg, perChannel)
	if o.cfgErr == nil {
		o.cfgErr = o.r.rejectSymmetricReduceRange(kind, cfg)
	}
	if moving {
		c := avg
		if c == 0 {
			c = 0.01
		}
		if !(c > 0 && c <= 1) {
			o.cfgErr = fmt.Errorf("observer: %s: invalid config: AveragingConstant %v is not in (0, 1]", kind, avg)
		}
		o.s.c = float32(c)
	}
	return o
}

// Observe records the running min and max of x (PyTorch's forward). An
// empty tensor is ignored.
func (o *minMaxObserver) Observe(x *tensor.Tensor) error {
	if o.cfgErr != nil {
		return o.cfgErr
	}
	return o.s.observe(x)
}

// CalculateQParams returns the scale and zero point(s) for the observed
// range, bit-identical to PyTorch's calculate_qparams.
func (o *minMaxObserver) CalculateQParams() (*tensor.QParams, error) {
	if o.cfgErr != nil {
		return nil, o.cfgErr
	}
	if o.s.min == nil {
		return nil, fmt.Errorf("observer: %s: CalculateQParams: %w", o.s.kind, ErrNotObserved)
	}
	for i := range o.s.min {
		if o.s.min[i] > o.s.max[i] {
			return nil, fmt.Errorf("observer: %s: CalculateQParams: channel %d: %w", o.s.kind, i, ErrNotObserved)
		}
	}
	return o.r.qparams(o.s.kind, o.s.min, o.s.max, o.cfg.ChAxis)
}

// Config returns the configuration the observer was made with.
func (o *minMaxObserver) Config() Config { return o.cfg }

// Reset forgets everything observed.
func (o *minMaxObserver) Reset() { o.s.reset() }

// Ranges returns copies of the observed per-channel minima and maxima (one
// element for per-tensor observers), PyTorch's min_val and max_val. Both
// are nil before anything was observed.
func (o *minMaxObserver) Ranges() (mins, maxs []float32) {
	if o.s.min == nil {
		return nil, nil
	}
	return append([]float32(nil), o.s.min...), append([]float32(nil), o.s.max...)
}

// NonFinite returns how many NaN or ±Inf values were skipped (with
// Config.IgnoreNonFinite).
func (o *minMaxObserver) NonFinite() int64 { return o.s.nonFinite }

// Batches returns how many batches updated a moving average (0 for the
// running min/max observers).
func (o *minMaxObserver) Batches() int64 { return o.s.batches }

func (o *minMaxObserver) mm() *minMaxObserver { return o }

type minMaxHolder interface{ mm() *minMaxObserver }

// Merge folds another observer of the same kind and configuration into
// this one, as if this observer had also seen the other's data after its
// own (for the running min/max observers the order does not matter).
func (o *minMaxObserver) Merge(other Observer) error {
	if o.cfgErr != nil {
		return o.cfgErr
	}
	h, ok := other.(minMaxHolder)
	if !ok || h.mm().s.kind != o.s.kind {
		return fmt.Errorf("observer: %s: cannot merge a %T", o.s.kind, other)
	}
	p := h.mm()
	if p.cfgErr != nil {
		return p.cfgErr
	}
	if err := sameConfig(o.s.kind, o.cfg, p.cfg); err != nil {
		return err
	}
	if o.s.moving && o.s.c != p.s.c {
		return fmt.Errorf("observer: %s: cannot merge: averaging constants %v and %v differ", o.s.kind, o.avg, p.avg)
	}
	return o.s.merge(&p.s)
}

// mmConfigJSON is the serialized configuration of the min/max observers.
type mmConfigJSON struct {
	configJSON
	AveragingConstant *float64 `json:"averaging_constant,omitempty"`
	RecordBatches     bool     `json:"record_batches,omitempty"`
}

// MarshalBinary serializes the observer's configuration and state.
func (o *minMaxObserver) MarshalBinary() ([]byte, error) {
	c := mmConfigJSON{configJSON: encodeConfig(o.cfg)}
	if o.s.moving {
		a := o.avg
		c.AveragingConstant = &a
		c.RecordBatches = o.s.record
	}
	return marshalState(o.s.kind, c, o.s.encode())
}

// UnmarshalBinary replaces the observer's configuration and state with
// serialized ones of the same kind. On error the observer is unchanged.
func (o *minMaxObserver) UnmarshalBinary(data []byte) error {
	kind := o.s.kind
	var c mmConfigJSON
	var st mmJSON
	if err := unmarshalState(kind, data, &c, &st); err != nil {
		return err
	}
	cfg, err := c.decode()
	if err != nil {
		return withKind(kind, err)
	}
	var avg float64
	if o.s.moving {
		if c.AveragingConstant == nil {
			return withKind(kind, fieldError("config.averaging_constant", "missing"))
		}
		avg = *c.AveragingConstant
		if math.IsNaN(avg) || avg < 0 || avg > 1 {
			return withKind(kind, fieldError("config.averaging_constant", "%v is not in [0, 1]", avg))
		}
	} else if c.AveragingConstant != nil || c.RecordBatches {
		return withKind(kind, fieldError("config.averaging_constant", "not a moving-average observer"))
	}
	n := newMinMaxObserver(kind, cfg, o.s.perChannel, o.s.moving, avg, c.RecordBatches)
	if n.cfgErr != nil {
		return withKind(kind, fieldError("config", "%v", n.cfgErr))
	}
	if err := n.s.decode(st); err != nil {
		return withKind(kind, err)
	}
	*o = n
	return nil
}

// sameConfig reports an error naming the first field where a and b differ.
func sameConfig(kind string, a, b Config) error {
	diff := func(field string, x, y any) error {
		return fmt.Errorf("observer: %s: cannot merge observers whose %s differ (%v vs %v)", kind, field, x, y)
	}
	switch {
	case a.Dtype != b.Dtype:
		return diff("Dtype", a.Dtype, b.Dtype)
	case a.QScheme != b.QScheme:
		return diff("QScheme", a.QScheme, b.QScheme)
	case a.ReduceRange != b.ReduceRange:
		return diff("ReduceRange", a.ReduceRange, b.ReduceRange)
	case a.HasRange != b.HasRange || (a.HasRange && (a.QuantMin != b.QuantMin || a.QuantMax != b.QuantMax)):
		return diff("QuantMin/QuantMax", [2]int32{a.QuantMin, a.QuantMax}, [2]int32{b.QuantMin, b.QuantMax})
	case a.Eps != b.Eps:
		return diff("Eps", a.Eps, b.Eps)
	case a.ChAxis != b.ChAxis:
		return diff("ChAxis", a.ChAxis, b.ChAxis)
	case a.Bits4 != b.Bits4:
		return diff("Bits4", a.Bits4, b.Bits4)
	}
	return nil
}

// MinMax is PyTorch's MinMaxObserver: qparams from the running minimum and
// maximum of everything observed. Per-tensor schemes only.
type MinMax struct{ minMaxObserver }

// NewMinMax returns a MinMaxObserver. The zero Config is PyTorch's default
// (quint8, per_tensor_affine, 0..255). An invalid configuration (such as
// symmetric quint8 with ReduceRange, which PyTorch rejects too) is reported
// by every method that returns an error.
func NewMinMax(cfg Config) *MinMax {
	return &MinMax{newMinMaxObserver("MinMaxObserver", cfg, false, false, 0, false)}
}

// MovingAverageMinMax is PyTorch's MovingAverageMinMaxObserver: the first
// batch's min and max are taken directly, later ones are averaged in with
// min += c*(batch_min - min).
type MovingAverageMinMax struct{ minMaxObserver }

// NewMovingAverageMinMax returns a MovingAverageMinMaxObserver; zero values
// are PyTorch's defaults (averaging constant 0.01, quint8 affine).
func NewMovingAverageMinMax(cfg MovingAverageConfig) *MovingAverageMinMax {
	return &MovingAverageMinMax{newMinMaxObserver("MovingAverageMinMaxObserver", cfg.Config, false, true, cfg.AveragingConstant, cfg.RecordBatches)}
}

// PerChannelMinMax is PyTorch's PerChannelMinMaxObserver: running min and
// max per index of Config.ChAxis. The zero QScheme means per_channel_affine
// (PyTorch's default here); per-tensor schemes are rejected.
type PerChannelMinMax struct{ minMaxObserver }

// NewPerChannelMinMax returns a PerChannelMinMaxObserver.
func NewPerChannelMinMax(cfg Config) *PerChannelMinMax {
	return &PerChannelMinMax{newMinMaxObserver("PerChannelMinMaxObserver", cfg, true, false, 0, false)}
}

// MovingAveragePerChannelMinMax is PyTorch's
// MovingAveragePerChannelMinMaxObserver: a moving average of per-channel
// minima and maxima.
type MovingAveragePerChannelMinMax struct{ minMaxObserver }

// NewMovingAveragePerChannelMinMax returns a
// MovingAveragePerChannelMinMaxObserver.
func NewMovingAveragePerChannelMinMax(cfg MovingAverageConfig) *MovingAveragePerChannelMinMax {
	return &MovingAveragePerChannelMinMax{newMinMaxObserver("MovingAveragePerChannelMinMaxObserver", cfg.Config, true, true, cfg.AveragingConstant, cfg.RecordBatches)}
}
