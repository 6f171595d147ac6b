package modeleval

import (
	"context"
	"fmt"
	"regexp"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/graph/quantize"
)

// Mode is a quantization mode.
type Mode int

// The quantization modes.
const (
	// Static is post-training static quantization calibrated on the
	// model's calibration feeds.
	Static Mode = iota
	// Dynamic is dynamic quantization (weights int8, activations
	// quantized per call); it needs no calibration.
	Dynamic
	// Mixed16 is Static with the model's Int16Layers at 16 bits
	// (quantize.Options.Int16, quanta quantize --int16).
	Mixed16
)

// String returns "static", "dynamic" or "int16".
func (m Mode) String() string {
	switch m {
	case Dynamic:
		return "dynamic"
	case Mixed16:
		return "int16"
	}
	return "static"
}

// Int16Layers returns the expression naming the layers Mixed16 puts at 16
// bits, "" for a model without such a setting. For the recognizer it is
// the stem (the five full-resolution depthwise-separable blocks,
// p2o.Conv.0-9) and the last stage (p2o.Conv.24-32): the two regions of
// the convolutions `quanta compare` ranks as hurting most on the
// calibration lines (ranks 1, 2, 5, 9 and 14 of its top 15).
func Int16Layers(m Model) string {
	if m == Rec {
		return `^p2o\.Conv\.([0-9]|2[4-9]|3[0-2])$`
	}
	return ""
}

// Quantize quantizes model m (its float graph g, which is not changed)
// with quantize's default settings: for Static, quantize.Prepare with the
// zero Options, one Observe per calibration feed (CalibrationFeeds), and
// quantize.Convert; for Dynamic, quantize.QuantizeDynamic with the zero
// Options; for Mixed16, Static with Options.Int16 set to Int16Layers(m). The result is a QDQ model. progress, if set, is called after
// each calibration feed.
func (d *Data) Quantize(ctx context.Context, m Model, g *graph.Model, mode Mode, progress func(done, total int)) (*graph.Model, error) {
	if mode == Dynamic {
		q, err := quantize.QuantizeDynamic(g, quantize.Options{})
		if err != nil {
			return nil, fmt.Errorf("modeleval: %v: %w", m, err)
		}
		return q, nil
	}
	var float *exec.Program
	if m == Silero {
		var err error
		if float, err = exec.Compile(g, exec.Options{}); err != nil {
			return nil, fmt.Errorf("modeleval: %v: %w", m, err)
		}
	}
	feeds, err := d.CalibrationFeeds(ctx, m, float)
	if err != nil {
		return nil, err
	}
	var opts quantize.Options
	if mode == Mixed16 {
		re := Int16Layers(m)
		if re == "" {
			return nil, fmt.Errorf("modeleval: %v: no 16-bit layers are set for this model", m)
		}
		opts.Int16 = []*regexp.Regexp{regexp.MustCompile(re)}
	}
	p, err := quantize.Prepare(g, opts)
	if err != nil {
		return nil, fmt.Errorf("modeleval: %v: %w", m, err)
	}
	for i, f := range feeds {
		if err := p.Observe(ctx, f); err != nil {
			return nil, fmt.Errorf("modeleval: %v: calibration feed %d: %w", m, i, err)
		}
		if progress != nil {
			progress(i+1, len(feeds))
		}
	}
	q, err := quantize.Convert(p)
	if err != nil {
		return nil, fmt.Errorf("modeleval: %v: %w", m, err)
	}
	return q, nil
}
