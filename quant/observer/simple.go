package observer

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/tensor"
)

// errNoQParams is the error of observers PyTorch also refuses to compute
// qparams for.
func errNoQParams(kind string) error {
	return fmt.Errorf("observer: %s: CalculateQParams: this observer computes no qparams (PyTorch raises here too)", kind)
}

// emptyState is the serialized state of observers without statistics.
type emptyState struct{}

// PlaceholderConfig configures a Placeholder observer.
type PlaceholderConfig struct {
	// Config carries the dtype passed on to conversion; its zero Dtype is
	// float32, PyTorch's default here.
	Config
	// CustomOpName names an op that needs no observation (graph mode).
	CustomOpName string
	// IsDynamic marks dynamic quantization (PyTorch's compute_dtype): the
	// activation is quantized per call from its own range.
	IsDynamic bool
}

// Placeholder is PyTorch's PlaceholderObserver: it observes nothing and
// only carries its configuration to conversion (float16 or dynamic
// quantization).
type Placeholder struct{ cfg PlaceholderConfig }

// NewPlaceholder returns a PlaceholderObserver.
func NewPlaceholder(cfg PlaceholderConfig) *Placeholder { return &Placeholder{cfg} }

// Observe does nothing (PyTorch's forward is the identity).
func (p *Placeholder) Observe(x *tensor.Tensor) error { return nil }

// CalculateQParams returns an error: a placeholder has no qparams.
func (p *Placeholder) CalculateQParams() (*tensor.QParams, error) {
	return nil, errNoQParams("PlaceholderObserver")
}

// Config returns the shared part of the configuration.
func (p *Placeholder) Config() Config { return p.cfg.Config }

// PlaceholderConfig returns the full configuration.
func (p *Placeholder) PlaceholderConfig() PlaceholderConfig { return p.cfg }

// Reset does nothing.
func (p *Placeholder) Reset() {}

// Merge accepts another Placeholder with the same configuration.
func (p *Placeholder) Merge(other Observer) error {
	o, ok := other.(*Placeholder)
	if !ok {
		return fmt.Errorf("observer: PlaceholderObserver: cannot merge a %T", other)
	}
	if o.cfg != p.cfg {
		return fmt.Errorf("observer: PlaceholderObserver: cannot merge observers with different configurations")
	}
	return nil
}

type placeholderConfigJSON struct {
	configJSON
	CustomOpName string `json:"custom_op_name,omitempty"`
	IsDynamic    bool   `json:"is_dynamic,omitempty"`
}

// MarshalBinary serializes the configuration.
func (p *Placeholder) MarshalBinary() ([]byte, error) {
	return marshalState("PlaceholderObserver", placeholderConfigJSON{encodeConfig(p.cfg.Config), p.cfg.CustomOpName, p.cfg.IsDynamic}, emptyState{})
}

// UnmarshalBinary restores a serialized PlaceholderObserver.
func (p *Placeholder) UnmarshalBinary(data []byte) error {
	const kind = "PlaceholderObserver"
	var c placeholderConfigJSON
	if err := unmarshalState(kind, data, &c, &emptyState{}); err != nil {
		return err
	}
	base, err := c.decode()
	if err != nil {
		return withKind(kind, err)
	}
	p.cfg = PlaceholderConfig{Config: base, CustomOpName: c.CustomOpName, IsDynamic: c.IsDynamic}
	return nil
}

// NoopConfig configures a Noop observer.
type NoopConfig struct {
	// Config carries the dtype passed on to conversion. PyTorch's default
	// is float16, which quanta's tensor package does not have; the zero
	// value here is float32.
	Config
	// CustomOpName names an op that needs no observation (graph mode).
	CustomOpName string
}

// Noop is PyTorch's NoopObserver: it observes nothing and passes its
// configuration on (float16 quantization).
type Noop struct{ cfg NoopConfig }

// NewNoop returns a NoopObserver.
func NewNoop(cfg NoopConfig) *Noop { return &Noop{cfg} }

// Observe does nothing.
func (n *Noop) Observe(x *tensor.Tensor) error { return nil }

// CalculateQParams returns an error: a no-op observer has no qparams.
func (n *Noop) CalculateQParams() (*tensor.QParams, error) {
	return nil, errNoQParams("NoopObserver")
}

// Config returns the shared part of the configuration.
func (n *Noop) Config() Config { return n.cfg.Config }

// Reset does nothing.
func (n *Noop) Reset() {}

// Merge accepts another Noop with the same configuration.
func (n *Noop) Merge(other Observer) error {
	o, ok := other.(*Noop)
	if !ok {
		return fmt.Errorf("observer: NoopObserver: cannot merge a %T", other)
	}
	if o.cfg != n.cfg {
		return fmt.Errorf("observer: NoopObserver: cannot merge observers with different configurations")
	}
	return nil
}

type noopConfigJSON struct {
	configJSON
	CustomOpName string `json:"custom_op_name,omitempty"`
}

// MarshalBinary serializes the configuration.
func (n *Noop) MarshalBinary() ([]byte, error) {
	return marshalState("NoopObserver", noopConfigJSON{encodeConfig(n.cfg.Config), n.cfg.CustomOpName}, emptyState{})
}

// UnmarshalBinary restores a serialized NoopObserver.
func (n *Noop) UnmarshalBinary(data []byte) error {
	const kind = "NoopObserver"
	var c noopConfigJSON
	if err := unmarshalState(kind, data, &c, &emptyState{}); err != nil {
		return err
	}
	base, err := c.decode()
	if err != nil {
		return withKind(kind, err)
	}
	n.cfg = NoopConfig{Config: base, CustomOpName: c.CustomOpName}
	return nil
}

// FixedQParamsConfig configures a FixedQParams observer.
type FixedQParamsConfig struct {
	// Config gives dtype, scheme (per-tensor) and range. Without HasRange
	// the range is 0..255 whatever the dtype: PyTorch's defaults
	// quant_min=0, quant_max=255 for this class.
	Config
	// Scale and ZeroPoint are the fixed qparams. Scale is stored as the
	// float32 PyTorch's buffer holds.
	Scale     float32
	ZeroPoint int32
}

// FixedQParams is PyTorch's FixedQParamsObserver: it returns fixed qparams
// whatever it sees (used for sigmoid, tanh, softmax outputs, whose range
// is known).
type FixedQParams struct {
	cfg    FixedQParamsConfig
	cfgErr error
	qmin   int32
	qmax   int32
}

// NewFixedQParams returns a FixedQParamsObserver. Scale must be positive
// and finite.
func NewFixedQParams(cfg FixedQParamsConfig) *FixedQParams {
	f := &FixedQParams{cfg: cfg, qmin: 0, qmax: 255}
	if cfg.HasRange {
		f.qmin, f.qmax = cfg.QuantMin, cfg.QuantMax
	}
	switch {
	case !(cfg.Scale > 0) || math.IsInf(float64(cfg.Scale), 0):
		f.cfgErr = fmt.Errorf("observer: FixedQParamsObserver: invalid config: scale %v must be positive and finite", cfg.Scale)
	case cfg.QScheme.PerChannel():
		f.cfgErr = fmt.Errorf("observer: FixedQParamsObserver: invalid config: qscheme %v: only per-tensor schemes are supported", cfg.QScheme)
	case f.qmin > f.qmax:
		f.cfgErr = fmt.Errorf("observer: FixedQParamsObserver: invalid config: QuantMin %d > QuantMax %d", f.qmin, f.qmax)
	}
	return f
}

// Observe does nothing (PyTorch's forward is the identity).
func (f *FixedQParams) Observe(x *tensor.Tensor) error { return f.cfgErr }

// CalculateQParams returns the fixed scale and zero point.
func (f *FixedQParams) CalculateQParams() (*tensor.QParams, error) {
	if f.cfgErr != nil {
		return nil, f.cfgErr
	}
	return &tensor.QParams{Scheme: f.cfg.QScheme, Scale: []float32{f.cfg.Scale}, ZeroPoint: []int32{f.cfg.ZeroPoint},
		QuantMin: f.qmin, QuantMax: f.qmax}, nil
}

// Config returns the shared part of the configuration.
func (f *FixedQParams) Config() Config { return f.cfg.Config }

// Reset does nothing.
func (f *FixedQParams) Reset() {}

// Merge accepts another FixedQParams with the same configuration.
func (f *FixedQParams) Merge(other Observer) error {
	o, ok := other.(*FixedQParams)
	if !ok {
		return fmt.Errorf("observer: FixedQParamsObserver: cannot merge a %T", other)
	}
	if o.cfg != f.cfg {
		return fmt.Errorf("observer: FixedQParamsObserver: cannot merge observers with different fixed qparams")
	}
	return f.cfgErr
}

type fixedConfigJSON struct {
	configJSON
	Scale     *float32 `json:"scale"`
	ZeroPoint *int32   `json:"zero_point"`
}

// MarshalBinary serializes the configuration.
func (f *FixedQParams) MarshalBinary() ([]byte, error) {
	s, z := f.cfg.Scale, f.cfg.ZeroPoint
	if math.IsNaN(float64(s)) || math.IsInf(float64(s), 0) {
		return nil, f.cfgErr
	}
	return marshalState("FixedQParamsObserver", fixedConfigJSON{encodeConfig(f.cfg.Config), &s, &z}, emptyState{})
}

// UnmarshalBinary restores a serialized FixedQParamsObserver.
func (f *FixedQParams) UnmarshalBinary(data []byte) error {
	const kind = "FixedQParamsObserver"
	var c fixedConfigJSON
	if err := unmarshalState(kind, data, &c, &emptyState{}); err != nil {
		return err
	}
	base, err := c.decode()
	if err != nil {
		return withKind(kind, err)
	}
	if c.Scale == nil {
		return withKind(kind, fieldError("config.scale", "missing"))
	}
	if c.ZeroPoint == nil {
		return withKind(kind, fieldError("config.zero_point", "missing"))
	}
	n := NewFixedQParams(FixedQParamsConfig{Config: base, Scale: *c.Scale, ZeroPoint: *c.ZeroPoint})
	if n.cfgErr != nil {
		return withKind(kind, fieldError("config.scale", "%v", n.cfgErr))
	}
	*f = *n
	return nil
}

// Recording is PyTorch's RecordingObserver, a debugging aid: it keeps a
// copy of every tensor it observes.
type Recording struct {
	cfg  Config
	vals []*tensor.Tensor
}

// NewRecording returns a RecordingObserver.
func NewRecording(cfg Config) *Recording { return &Recording{cfg: cfg} }

// Observe stores a copy of x (float32 tensors only).
func (r *Recording) Observe(x *tensor.Tensor) error {
	if _, err := floatData("RecordingObserver", x); err != nil {
		return err
	}
	r.vals = append(r.vals, x.Clone())
	return nil
}

// TensorValues returns the recorded tensors in observation order
// (PyTorch's get_tensor_value).
func (r *Recording) TensorValues() []*tensor.Tensor { return r.vals }

// CalculateQParams returns an error: a recording observer has no qparams.
func (r *Recording) CalculateQParams() (*tensor.QParams, error) {
	return nil, errNoQParams("RecordingObserver")
}

// Config returns the configuration.
func (r *Recording) Config() Config { return r.cfg }

// Reset drops the recorded tensors.
func (r *Recording) Reset() { r.vals = nil }

// Merge appends the other observer's recorded tensors.
func (r *Recording) Merge(other Observer) error {
	o, ok := other.(*Recording)
	if !ok {
		return fmt.Errorf("observer: RecordingObserver: cannot merge a %T", other)
	}
	for _, v := range o.vals {
		r.vals = append(r.vals, v.Clone())
	}
	return nil
}

type recordedJSON struct {
	Shape []int  `json:"shape"`
	Data  string `json:"data"`
}

type recordingState struct {
	Tensors []recordedJSON `json:"tensors"`
}

// MarshalBinary serializes the configuration and the recorded tensors.
func (r *Recording) MarshalBinary() ([]byte, error) {
	st := recordingState{Tensors: []recordedJSON{}}
	for _, v := range r.vals {
		st.Tensors = append(st.Tensors, recordedJSON{Shape: v.Shape(), Data: encodeF32s(v.F32())})
	}
	return marshalState("RecordingObserver", encodeConfig(r.cfg), st)
}

// UnmarshalBinary restores a serialized RecordingObserver.
func (r *Recording) UnmarshalBinary(data []byte) error {
	const kind = "RecordingObserver"
	var c configJSON
	var st recordingState
	if err := unmarshalState(kind, data, &c, &st); err != nil {
		return err
	}
	cfg, err := c.decode()
	if err != nil {
		return withKind(kind, err)
	}
	var vals []*tensor.Tensor
	for i, t := range st.Tensors {
		field := fmt.Sprintf("state.tensors[%d]", i)
		d, err := decodeF32s(field+".data", t.Data)
		if err != nil {
			return withKind(kind, err)
		}
		n := 1
		for _, s := range t.Shape {
			if s < 0 || (s > 0 && n > math.MaxInt32/s) {
				return withKind(kind, fieldError(field+".shape", "invalid shape %v", t.Shape))
			}
			n *= s
		}
		if n != len(d) {
			return withKind(kind, fieldError(field+".data", "%d values for shape %v", len(d), t.Shape))
		}
		if len(t.Shape) == 0 {
			vals = append(vals, tensor.Scalar(d[0]))
		} else {
			vals = append(vals, tensor.FromFloat32(d, t.Shape...))
		}
	}
	r.cfg, r.vals = cfg, vals
	return nil
}
