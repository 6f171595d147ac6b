package observer

import "sort"

// kinds maps a serialized kind to a constructor of an empty observer of
// that kind; it is also the list of observers DecodeObserver knows.
var kinds = map[string]func() Observer{
	"MinMaxObserver":                        func() Observer { return NewMinMax(Config{}) },
	"MovingAverageMinMaxObserver":           func() Observer { return NewMovingAverageMinMax(MovingAverageConfig{}) },
	"PerChannelMinMaxObserver":              func() Observer { return NewPerChannelMinMax(Config{}) },
	"MovingAveragePerChannelMinMaxObserver": func() Observer { return NewMovingAveragePerChannelMinMax(MovingAverageConfig{}) },
	"HistogramObserver":                     func() Observer { return NewHistogram(HistogramConfig{}) },
	"PlaceholderObserver":                   func() Observer { return NewPlaceholder(PlaceholderConfig{}) },
	"NoopObserver":                          func() Observer { return NewNoop(NoopConfig{}) },
	"FixedQParamsObserver":                  func() Observer { return NewFixedQParams(FixedQParamsConfig{Scale: 1}) },
	"RecordingObserver":                     func() Observer { return NewRecording(Config{}) },
	"PercentileObserver":                    func() Observer { return NewPercentile(PercentileConfig{}) },
	"EntropyObserver":                       func() Observer { return NewEntropy(EntropyConfig{}) },
	"MSEObserver":                           func() Observer { return NewMSE(MSEConfig{}) },
}

// Kinds returns the names of the observer kinds, as serialized (PyTorch's
// class names, and quanta's for the observers PyTorch lacks), sorted.
func Kinds() []string {
	out := make([]string, 0, len(kinds))
	for k := range kinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// DecodeObserver rebuilds an observer of any kind from MarshalBinary's
// output, for merging calibration shards made by other processes or
// machines. Errors name the offending field.
func DecodeObserver(data []byte) (Observer, error) {
	env, err := readEnvelope(data)
	if err != nil {
		return nil, err
	}
	mk, ok := kinds[env.Kind]
	if !ok {
		return nil, fieldError("kind", "unknown observer kind %q", env.Kind)
	}
	o := mk()
	if err := o.UnmarshalBinary(data); err != nil {
		return nil, err
	}
	return o, nil
}

// Every kind implements Observer.
var (
	_ Observer = (*MinMax)(nil)
	_ Observer = (*MovingAverageMinMax)(nil)
	_ Observer = (*PerChannelMinMax)(nil)
	_ Observer = (*MovingAveragePerChannelMinMax)(nil)
	_ Observer = (*Histogram)(nil)
	_ Observer = (*Placeholder)(nil)
	_ Observer = (*Noop)(nil)
	_ Observer = (*FixedQParams)(nil)
	_ Observer = (*Recording)(nil)
	_ Observer = (*Percentile)(nil)
	_ Observer = (*Entropy)(nil)
	_ Observer = (*MSE)(nil)
)
