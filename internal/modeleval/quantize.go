package modeleval

import (
	"context"
	"fmt"

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
)

// String returns "static" or "dynamic".
func (m Mode) String() string {
	if m == Dynamic {
		return "dynamic"
	}
	return "static"
}

// Quantize quantizes model m (its float graph g, which is not changed)
// with quantize's default settings: for Static, quantize.Prepare with the
// zero Options, one Observe per calibration feed (CalibrationFeeds), and
// quantize.Convert; for Dynamic, quantize.QuantizeDynamic with the zero
// Options. The result is a QDQ model. progress, if set, is called after
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
	p, err := quantize.Prepare(g, quantize.Options{})
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
