package observer

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/quanta-go/quanta/tensor"
)

// stateVersion is the version of the serialized observer format.
const stateVersion = 1

// The serialized form of every observer is one JSON object:
//
//	{"kind": "MinMaxObserver", "version": 1, "config": {...}, "state": {...}}
//
// kind is PyTorch's class name (or quanta's, for observers PyTorch lacks),
// config holds the full configuration, and state the statistics. Float32
// values are written with the shortest decimal form that reads back to the
// same bits; long float32 arrays (histograms) are base64 of little-endian
// IEEE bits. Decoding rejects unknown fields, missing fields and values out
// of range with an error naming the field.
type envelope struct {
	Kind    string          `json:"kind"`
	Version int             `json:"version"`
	Config  json.RawMessage `json:"config"`
	State   json.RawMessage `json:"state"`
}

// configJSON is the serialized Config.
type configJSON struct {
	Dtype           string  `json:"dtype"`
	QScheme         string  `json:"qscheme"`
	ReduceRange     bool    `json:"reduce_range,omitempty"`
	QuantMin        *int32  `json:"quant_min,omitempty"`
	QuantMax        *int32  `json:"quant_max,omitempty"`
	Eps             float32 `json:"eps,omitempty"`
	ChAxis          int     `json:"ch_axis,omitempty"`
	Bits4           bool    `json:"bits4,omitempty"`
	IgnoreNonFinite bool    `json:"ignore_non_finite,omitempty"`
}

func encodeConfig(c Config) configJSON {
	j := configJSON{Dtype: c.Dtype.String(), QScheme: c.QScheme.String(), ReduceRange: c.ReduceRange,
		Eps: c.Eps, ChAxis: c.ChAxis, Bits4: c.Bits4, IgnoreNonFinite: c.IgnoreNonFinite}
	if c.HasRange {
		lo, hi := c.QuantMin, c.QuantMax
		j.QuantMin, j.QuantMax = &lo, &hi
	}
	return j
}

func (j configJSON) decode() (Config, error) {
	c := Config{ReduceRange: j.ReduceRange, Eps: j.Eps, ChAxis: j.ChAxis, Bits4: j.Bits4, IgnoreNonFinite: j.IgnoreNonFinite}
	d, err := tensor.ParseDType(j.Dtype)
	if err != nil {
		return c, fieldError("config.dtype", "unknown dtype %q", j.Dtype)
	}
	c.Dtype = d
	s, ok := parseQScheme(j.QScheme)
	if !ok {
		return c, fieldError("config.qscheme", "unknown qscheme %q", j.QScheme)
	}
	c.QScheme = s
	if (j.QuantMin == nil) != (j.QuantMax == nil) {
		return c, fieldError("config.quant_min", "quant_min and quant_max must be given together")
	}
	if j.QuantMin != nil {
		c.HasRange, c.QuantMin, c.QuantMax = true, *j.QuantMin, *j.QuantMax
	}
	if math.IsNaN(float64(j.Eps)) || j.Eps < 0 {
		return c, fieldError("config.eps", "%v is not a valid eps", j.Eps)
	}
	return c, nil
}

func parseQScheme(s string) (tensor.QScheme, bool) {
	for q := tensor.PerTensorAffine; q <= tensor.PerChannelAffineFloatQParams; q++ {
		if q.String() == s {
			return q, true
		}
	}
	return 0, false
}

// fieldError is a decoding error naming the offending field.
func fieldError(field, format string, a ...any) error {
	return &StateError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// StateError reports a malformed serialized observer state.
type StateError struct {
	Kind  string // observer kind being decoded, when known
	Field string // offending field, e.g. "state.histogram"
	Msg   string
}

func (e *StateError) Error() string {
	k := e.Kind
	if k == "" {
		k = "observer state"
	}
	if e.Field == "" {
		return fmt.Sprintf("observer: decoding %s: %s", k, e.Msg)
	}
	return fmt.Sprintf("observer: decoding %s: field %q: %s", k, e.Field, e.Msg)
}

// marshalState writes the envelope for an observer.
func marshalState(kind string, cfg, state any) ([]byte, error) {
	c, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("observer: encoding %s config: %w", kind, err)
	}
	s, err := json.Marshal(state)
	if err != nil {
		return nil, fmt.Errorf("observer: encoding %s state: %w", kind, err)
	}
	return json.Marshal(envelope{Kind: kind, Version: stateVersion, Config: c, State: s})
}

// readEnvelope parses the envelope and checks kind and version.
func readEnvelope(data []byte) (envelope, error) {
	var env envelope
	if err := strictDecode(data, &env, ""); err != nil {
		return env, err
	}
	if env.Kind == "" {
		return env, fieldError("kind", "missing")
	}
	if env.Version != stateVersion {
		return env, fieldError("version", "unsupported version %d (want %d)", env.Version, stateVersion)
	}
	if len(env.Config) == 0 {
		return env, fieldError("config", "missing")
	}
	if len(env.State) == 0 {
		return env, fieldError("state", "missing")
	}
	return env, nil
}

// unmarshalState decodes data into cfg and state for an observer of the
// given kind.
func unmarshalState(kind string, data []byte, cfg, state any) error {
	env, err := readEnvelope(data)
	if err != nil {
		return withKind(kind, err)
	}
	if env.Kind != kind {
		return withKind(kind, fieldError("kind", "state is for %s", env.Kind))
	}
	if err := strictDecode(env.Config, cfg, "config"); err != nil {
		return withKind(kind, err)
	}
	if err := strictDecode(env.State, state, "state"); err != nil {
		return withKind(kind, err)
	}
	return nil
}

func withKind(kind string, err error) error {
	var se *StateError
	if errors.As(err, &se) && se.Kind == "" {
		se.Kind = kind
	}
	return err
}

// strictDecode decodes one JSON value, rejecting unknown fields and
// trailing data, and turns encoding/json's errors into StateErrors naming
// the field under prefix.
func strictDecode(data []byte, v any, prefix string) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	name := func(f string) string {
		if prefix == "" {
			return f
		}
		if f == "" {
			return prefix
		}
		return prefix + "." + f
	}
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			return fieldError(name(te.Field), "cannot hold a JSON %s", te.Value)
		case errors.As(err, &se):
			return fieldError(name(""), "malformed JSON at byte %d: %v", se.Offset, err)
		default:
			msg := err.Error()
			const unk = "json: unknown field "
			if len(msg) > len(unk) && msg[:len(unk)] == unk {
				f := msg[len(unk):]
				if len(f) >= 2 {
					f = f[1 : len(f)-1]
				}
				return fieldError(name(f), "unknown field")
			}
			return fieldError(name(""), "%v", err)
		}
	}
	if dec.More() {
		return fieldError(name(""), "trailing data after the JSON value")
	}
	return nil
}

// encodeF32s serializes a float32 array as base64 of little-endian IEEE
// bits (exact and compact, for histograms and per-channel ranges).
func encodeF32s(a []float32) string {
	b := make([]byte, 4*len(a))
	for i, v := range a {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return base64.StdEncoding.EncodeToString(b)
}

// decodeF32s reads what encodeF32s wrote; errors name the field.
func decodeF32s(field, s string) ([]float32, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fieldError(field, "bad base64: %v", err)
	}
	if len(b)%4 != 0 {
		return nil, fieldError(field, "%d bytes is not a whole number of float32 values", len(b))
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out, nil
}

// checkFinite returns a StateError when v is NaN or ±Inf.
func checkFinite(field string, v float32) error {
	if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
		return fieldError(field, "%v is not finite", v)
	}
	return nil
}

// checkRange validates a serialized min/max pair.
func checkRange(prefix string, mn, mx *float32) error {
	if mn == nil {
		return fieldError(prefix+"min", "missing")
	}
	if mx == nil {
		return fieldError(prefix+"max", "missing")
	}
	if err := checkFinite(prefix+"min", *mn); err != nil {
		return err
	}
	if err := checkFinite(prefix+"max", *mx); err != nil {
		return err
	}
	if !(*mn <= *mx) {
		return fieldError(prefix+"min", "min %v exceeds max %v", *mn, *mx)
	}
	return nil
}
