package observer

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/tensor"
)

// allKinds returns one configured observer of every kind.
func allKinds() []Observer {
	return []Observer{
		NewMinMax(Config{Dtype: tensor.QInt8, QScheme: tensor.PerTensorSymmetric, HasRange: true, QuantMin: -127, QuantMax: 127, Eps: 1.0 / 4096}),
		NewMovingAverageMinMax(MovingAverageConfig{AveragingConstant: 0.25, RecordBatches: true}),
		NewMovingAverageMinMax(MovingAverageConfig{Config: Config{ReduceRange: true}}),
		NewPerChannelMinMax(Config{ChAxis: 1, IgnoreNonFinite: true}),
		NewMovingAveragePerChannelMinMax(MovingAverageConfig{Config: Config{QScheme: tensor.PerChannelAffineFloatQParams, Bits4: true}}),
		NewHistogram(HistogramConfig{Bins: 256, UpsampleRate: 16, Config: Config{Dtype: tensor.QInt8}}),
		NewPlaceholder(PlaceholderConfig{Config: Config{Dtype: tensor.QUInt8}, IsDynamic: true, CustomOpName: "x"}),
		NewNoop(NoopConfig{CustomOpName: "y"}),
		NewFixedQParams(FixedQParamsConfig{Scale: 2.0 / 256, ZeroPoint: 128}),
		NewRecording(Config{}),
		NewPercentile(PercentileConfig{Percentile: 99.5, Bins: 512}),
		NewEntropy(EntropyConfig{QuantizedBins: 64}),
		NewMSE(MSEConfig{Config: Config{Dtype: tensor.QInt8, QScheme: tensor.PerTensorSymmetric}}),
	}
}

func TestStateRoundTrip(t *testing.T) {
	xs := batches(3, 9)
	for _, observed := range []bool{false, true} {
		for _, o := range allKinds() {
			if observed {
				for _, x := range xs {
					if err := o.Observe(x); err != nil {
						t.Fatal(err)
					}
				}
			}
			b, err := o.MarshalBinary()
			if err != nil {
				t.Fatalf("%T: %v", o, err)
			}
			d, err := DecodeObserver(b)
			if err != nil {
				t.Fatalf("%T: %v\n%s", o, err, b)
			}
			b2, _ := d.MarshalBinary()
			if !bytes.Equal(b, b2) {
				t.Errorf("%T: round trip changed the state\n%s\n%s", o, b, b2)
			}
			if d.Config() != o.Config() {
				t.Errorf("%T: config %+v became %+v", o, o.Config(), d.Config())
			}
			q1, e1 := o.CalculateQParams()
			q2, e2 := d.CalculateQParams()
			if (e1 == nil) != (e2 == nil) || (e1 == nil && !sameBits(q1.Scale, q2.Scale)) {
				t.Errorf("%T: qparams %v/%v vs %v/%v after round trip", o, q1, e1, q2, e2)
			}
		}
	}
}

// mutate applies f to the decoded JSON of an observer's state and
// re-encodes it.
func mutate(t *testing.T, o Observer, f func(m map[string]any)) []byte {
	t.Helper()
	b, err := o.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, _ := json.Marshal(m)
	return out
}

func sub(m map[string]any, k string) map[string]any { return m[k].(map[string]any) }

func TestMalformedStateNamesField(t *testing.T) {
	mm := NewMinMax(Config{})
	_ = mm.Observe(vec(-1, 2))
	ma := NewMovingAverageMinMax(MovingAverageConfig{})
	_ = ma.Observe(vec(-1, 2))
	pc := NewPerChannelMinMax(Config{})
	_ = pc.Observe(tensor.FromFloat32([]float32{1, 2, 3, 4}, 2, 2))
	h := NewHistogram(HistogramConfig{})
	_ = h.Observe(vec(-1, 2, 3))
	p := NewPercentile(PercentileConfig{})
	_ = p.Observe(vec(-1, 2, 3))
	cases := []struct {
		o     Observer
		field string
		f     func(m map[string]any)
	}{
		{mm, "kind", func(m map[string]any) { m["kind"] = "HistogramObserver" }},
		{mm, "version", func(m map[string]any) { m["version"] = 7 }},
		{mm, "state", func(m map[string]any) { delete(m, "state") }},
		{mm, "state.min", func(m map[string]any) { sub(m, "state")["min"] = "low" }},
		{mm, "state.max", func(m map[string]any) { delete(sub(m, "state"), "max") }},
		{mm, "state.min", func(m map[string]any) { sub(m, "state")["min"] = 5.0 }},
		{mm, "state.observed", func(m map[string]any) { delete(sub(m, "state"), "observed") }},
		{mm, "state.bogus", func(m map[string]any) { sub(m, "state")["bogus"] = 1 }},
		{mm, "state.non_finite", func(m map[string]any) { sub(m, "state")["non_finite"] = -3 }},
		{mm, "config.dtype", func(m map[string]any) { sub(m, "config")["dtype"] = "qint4" }},
		{mm, "config.qscheme", func(m map[string]any) { sub(m, "config")["qscheme"] = "per_row" }},
		{mm, "config.quant_min", func(m map[string]any) { sub(m, "config")["quant_min"] = 0 }},
		{mm, "config", func(m map[string]any) { sub(m, "config")["qscheme"] = "per_channel_affine" }},
		{ma, "state.batches", func(m map[string]any) { sub(m, "state")["batches"] = 0 }},
		{ma, "state.first_mins", func(m map[string]any) { delete(sub(m, "state"), "first_mins") }},
		{ma, "config.averaging_constant", func(m map[string]any) { sub(m, "config")["averaging_constant"] = -1 }},
		{pc, "state.mins", func(m map[string]any) { sub(m, "state")["mins"] = "!!!" }},
		{pc, "state.maxs", func(m map[string]any) { sub(m, "state")["maxs"] = encodeF32s([]float32{1}) }},
		{pc, "state.mins", func(m map[string]any) { sub(m, "state")["mins"] = encodeF32s([]float32{9, 9}) }},
		{h, "state.histogram", func(m map[string]any) { sub(m, "state")["histogram"] = encodeF32s(make([]float32, 100)) }},
		{h, "state.histogram", func(m map[string]any) { sub(m, "state")["histogram"] = encodeF32s(append(make([]float32, 2047), -1)) }},
		{h, "config.bins", func(m map[string]any) { sub(m, "config")["bins"] = "many" }},
		{p, "state.counts", func(m map[string]any) { sub(m, "state")["counts"] = []int{1, 2} }},
		{p, "state.exp", func(m map[string]any) { sub(m, "state")["exp"] = -100 }},
		{p, "config.percentile", func(m map[string]any) { delete(sub(m, "config"), "percentile") }},
		{p, "config.quantized_bins", func(m map[string]any) { sub(m, "config")["quantized_bins"] = 128 }},
	}
	for i, c := range cases {
		data := mutate(t, c.o, c.f)
		before, _ := c.o.MarshalBinary()
		err := c.o.UnmarshalBinary(data)
		var se *StateError
		if !errors.As(err, &se) {
			t.Errorf("case %d (%T, %s): error %v is not a *StateError", i, c.o, c.field, err)
			continue
		}
		if se.Field != c.field || !strings.Contains(err.Error(), `"`+c.field+`"`) {
			t.Errorf("case %d: error %q names field %q, want %q", i, err, se.Field, c.field)
		}
		after, _ := c.o.MarshalBinary()
		if !bytes.Equal(before, after) {
			t.Errorf("case %d: a failed UnmarshalBinary changed the observer", i)
		}
	}
	for _, bad := range []string{"", "{", `{"kind":"NopeObserver","version":1,"config":{},"state":{}}`, `[1,2]`, `{"kind":"MinMaxObserver","version":1,"config":{"dtype":"quint8","qscheme":"per_tensor_affine"},"state":{"observed":false}} trailing`} {
		if _, err := DecodeObserver([]byte(bad)); err == nil {
			t.Errorf("DecodeObserver(%q) accepted", bad)
		}
	}
}

func TestKinds(t *testing.T) {
	k := Kinds()
	if len(k) != 12 || k[0] != "EntropyObserver" {
		t.Errorf("Kinds() = %v", k)
	}
	for _, o := range allKinds() {
		b, _ := o.MarshalBinary()
		var env envelope
		_ = json.Unmarshal(b, &env)
		if _, ok := kinds[env.Kind]; !ok {
			t.Errorf("%T serializes as unknown kind %q", o, env.Kind)
		}
	}
}
