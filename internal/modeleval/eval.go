package modeleval

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/npy"
	"github.com/quanta-go/quanta/tensor"
)

// CalibrationFeeds returns model m's calibration feeds, one model input
// map per sample: the first RecCalib lines for the recognizer, the upright
// and rotated crops of the first ClsCalibLines lines for the classifier,
// the first DetCalib pages for the detector, each as a batch of one. For
// Silero it returns one feed per chunk of the calibration clips (input
// [1,512], state [2,1,128], sr 16000), whose state is the one the float
// program float produced on the preceding chunks of the clip (zero on a
// clip's first chunk); float is only used for Silero.
func (d *Data) CalibrationFeeds(ctx context.Context, m Model, float *exec.Program) ([]map[string]*tensor.Tensor, error) {
	if m != Silero {
		samples, err := d.imageSamples(m, true)
		if err != nil {
			return nil, err
		}
		feeds := make([]map[string]*tensor.Tensor, len(samples))
		for i, s := range samples {
			feeds[i] = s.feed
		}
		return feeds, nil
	}
	if float == nil {
		return nil, fmt.Errorf("modeleval: Silero's calibration feeds need the float program")
	}
	var feeds []map[string]*tensor.Tensor
	for c, clip := range d.Silero.Calib {
		state := sileroZeroState()
		for i := 0; i+ChunkSize <= len(clip); i += ChunkSize {
			feed := sileroFeed(clip[i:i+ChunkSize], state)
			feeds = append(feeds, feed)
			_, next, err := runSilero(ctx, float, feed)
			if err != nil {
				return nil, fmt.Errorf("modeleval: calibration clip %d, chunk %d: %w", c, i/ChunkSize, err)
			}
			state = next
		}
	}
	return feeds, nil
}

// runSilero runs one Silero feed and returns the speech probability and
// the next state.
func runSilero(ctx context.Context, p *exec.Program, feed map[string]*tensor.Tensor) (float32, *tensor.Tensor, error) {
	res, err := p.Run(ctx, feed)
	if err != nil {
		return 0, nil, err
	}
	out, state := res["output"], res["stateN"]
	if out == nil || state == nil {
		return 0, nil, fmt.Errorf("the program has no outputs \"output\" and \"stateN\" (outputs: %s)", strings.Join(p.OutputNames(), ", "))
	}
	if out.Numel() != 1 || out.DType() != tensor.Float32 {
		return 0, nil, fmt.Errorf("output is %v %v, want one float32", out.DType(), out.Shape())
	}
	return out.F32()[0], state, nil
}

// WriteCalibration writes model m's calibration feeds as an .npz that
// `quanta quantize --calib` reads, keyed by input name: for the image
// models each input's feeds concatenated along the batch axis (an array
// of the input's rank, one row per feed with --calib-batch 1); for Silero
// each input's feeds stacked along a new first axis (an array one rank
// higher than the input: one whole feed per index, so each chunk keeps
// its own state). The file is written compressed and atomically.
func WriteCalibration(path string, m Model, feeds []map[string]*tensor.Tensor) error {
	arrays, keys, err := StackFeeds(feeds)
	if err != nil {
		return fmt.Errorf("modeleval: WriteCalibration %s: %w", path, err)
	}
	if m != Silero {
		// Concatenate along the batch axis: [N,B,...] -> [N*B,...].
		for k, t := range arrays {
			s := t.Shape()
			if len(s) < 2 {
				return fmt.Errorf("modeleval: WriteCalibration %s: input %q is a scalar, it has no batch axis", path, k)
			}
			arrays[k] = t.Reshape(append([]int{s[0] * s[1]}, s[2:]...)...)
		}
	}
	if err := npy.WriteNPZCompressed(path, arrays, keys); err != nil {
		return fmt.Errorf("modeleval: %w", err)
	}
	return nil
}

// Options configure Evaluate. The zero value is ready for every model but
// the recognizer, which needs Dict.
type Options struct {
	// Dict spells the recognizer's classes (LoadDict of DictFile).
	Dict *Dict
	// Progress, if set, is called after each evaluation sample (a line,
	// page, crop, or clip) with the number done and the total.
	Progress func(done, total int)
	// Examples bounds the disagreements Result.Examples lists; 0 means 8.
	Examples int
}

// Result compares a quantized program with the float one on a model's
// evaluation set.
type Result struct {
	// Model is the model evaluated.
	Model Model
	// Metric says what Agreement measures.
	Metric string
	// N is the number of evaluation samples: lines, pages, crops or
	// chunks.
	N int
	// Agreement is the recognizer's fraction of lines whose greedy CTC
	// text is identical, the detector's mean IoU of the text maps at
	// DetThreshold, the classifier's fraction of crops with the same
	// class, Silero's fraction of chunks with the same speech decision.
	Agreement float64
	// Worst is the detector's smallest page IoU; for the other models it
	// equals Agreement.
	Worst float64
	// PerSample holds each sample's score (the detector's IoU per page,
	// otherwise 1 when the decisions agree and 0 when not), in order.
	PerSample []float64
	// FloatAccuracy and QuantAccuracy are the fractions of samples each
	// program gets right against the ground truth: the rendered string of
	// a line, the rotation of a crop. NaN for the detector and Silero,
	// whose data have no ground truth.
	FloatAccuracy, QuantAccuracy float64
	// Positive is the float model's share of positive decisions: text
	// pixels of the detector's maps, rotated crops of the classifier,
	// speech chunks of Silero; NaN for the recognizer.
	Positive float64
	// Examples describes the first disagreements.
	Examples []string
}

// String summarizes the result on one line.
func (r *Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: %s %.4f over %d", r.Model, r.Metric, r.Agreement, r.N)
	if r.Worst != r.Agreement {
		fmt.Fprintf(&b, " (smallest %.4f)", r.Worst)
	}
	if !math.IsNaN(r.FloatAccuracy) {
		fmt.Fprintf(&b, "; vs ground truth: float %.4f, quantized %.4f", r.FloatAccuracy, r.QuantAccuracy)
	}
	if !math.IsNaN(r.Positive) {
		fmt.Fprintf(&b, "; float positives %.4f", r.Positive)
	}
	return b.String()
}

// Evaluate runs model m's evaluation set through the float and the
// quantized programs and compares their decisions (see Result). Silero's
// clips run chunk by chunk, each program carrying its own state from a
// zero state at each clip's start.
func (d *Data) Evaluate(ctx context.Context, m Model, float, quant *exec.Program, opts Options) (*Result, error) {
	maxEx := opts.Examples
	if maxEx == 0 {
		maxEx = 8
	}
	r := &Result{Model: m, FloatAccuracy: math.NaN(), QuantAccuracy: math.NaN(), Positive: math.NaN()}
	example := func(format string, args ...any) {
		if len(r.Examples) < maxEx {
			r.Examples = append(r.Examples, fmt.Sprintf(format, args...))
		}
	}
	if m == Silero {
		return r, d.evalSilero(ctx, float, quant, r, opts.Progress, example)
	}
	if m == Rec && opts.Dict == nil {
		return nil, fmt.Errorf("modeleval: evaluating the recognizer needs Options.Dict")
	}
	samples, err := d.imageSamples(m, false)
	if err != nil {
		return nil, err
	}
	r.N = len(samples)
	var fRight, qRight, pos, total int
	for i, s := range samples {
		fo, err := runFirst(ctx, float, s.feed)
		if err != nil {
			return nil, fmt.Errorf("modeleval: %v sample %d, float: %w", m, i, err)
		}
		qo, err := runFirst(ctx, quant, s.feed)
		if err != nil {
			return nil, fmt.Errorf("modeleval: %v sample %d, quantized: %w", m, i, err)
		}
		if !slices.Equal(fo.Shape(), qo.Shape()) {
			return nil, fmt.Errorf("modeleval: %v sample %d: quantized output %v, float %v", m, i, qo.Shape(), fo.Shape())
		}
		fv, qv := fo.F32(), qo.F32()
		score := 0.0
		switch m {
		case Rec:
			c := fo.Dim(-1)
			if c != opts.Dict.Classes() {
				return nil, fmt.Errorf("modeleval: the recognizer has %d classes, the dictionary %d", c, opts.Dict.Classes())
			}
			fc, ft := opts.Dict.DecodeCTC(fv, c)
			qc, qt := opts.Dict.DecodeCTC(qv, c)
			if slices.Equal(fc, qc) {
				score = 1
			} else {
				example("line %d (%q): float %q, quantized %q", RecCalib+i, s.text, ft, qt)
			}
			if ft == s.text {
				fRight++
			}
			if qt == s.text {
				qRight++
			}
		case Cls:
			fc, qc := ArgmaxRows(fv, fo.Dim(-1))[0], ArgmaxRows(qv, qo.Dim(-1))[0]
			if fc == qc {
				score = 1
			} else {
				example("crop %d (line %d, class %d): float %d (%.3f), quantized %d (%.3f)", i, RecCalib+i/2, s.class, fc, fv[1], qc, qv[1])
			}
			if fc == s.class {
				fRight++
			}
			if qc == s.class {
				qRight++
			}
			if fc == 1 {
				pos++
			}
			total++
		case Det:
			score = MaskIoU(fv, qv, DetThreshold)
			if score < 0.9 {
				example("page %d: IoU %.4f", DetCalib+i, score)
			}
			for _, x := range fv {
				if x > DetThreshold {
					pos++
				}
			}
			total += len(fv)
		}
		r.PerSample = append(r.PerSample, score)
		if opts.Progress != nil {
			opts.Progress(i+1, len(samples))
		}
	}
	r.Agreement, r.Worst = stats(r.PerSample)
	switch m {
	case Rec:
		r.Metric = "identical greedy CTC lines"
		r.FloatAccuracy, r.QuantAccuracy = fraction(fRight, r.N), fraction(qRight, r.N)
		r.Worst = r.Agreement
	case Cls:
		r.Metric = "class agreement"
		r.FloatAccuracy, r.QuantAccuracy = fraction(fRight, r.N), fraction(qRight, r.N)
		r.Positive = fraction(pos, total)
		r.Worst = r.Agreement
	case Det:
		r.Metric = fmt.Sprintf("mean text-map IoU at %g", DetThreshold)
		r.Positive = fraction(pos, total)
	}
	return r, nil
}

// runFirst runs p on feed and returns its first output as float32.
func runFirst(ctx context.Context, p *exec.Program, feed map[string]*tensor.Tensor) (*tensor.Tensor, error) {
	res, err := p.Run(ctx, feed)
	if err != nil {
		return nil, err
	}
	names := p.OutputNames()
	if len(names) == 0 {
		return nil, fmt.Errorf("the program has no outputs")
	}
	out := res[names[0]]
	if out == nil || out.DType() != tensor.Float32 {
		return nil, fmt.Errorf("output %q is not float32", names[0])
	}
	return out, nil
}

// evalSilero compares the speech decisions chunk by chunk over the
// evaluation clips.
func (d *Data) evalSilero(ctx context.Context, float, quant *exec.Program, r *Result, progress func(int, int), example func(string, ...any)) error {
	r.Metric = fmt.Sprintf("speech decision (>= %g) agreement", SpeechThreshold)
	var speech int
	for c, clip := range d.Silero.Eval {
		fs, qs := sileroZeroState(), sileroZeroState()
		for i := 0; i+ChunkSize <= len(clip); i += ChunkSize {
			chunk := clip[i : i+ChunkSize]
			fp, fn, err := runSilero(ctx, float, sileroFeed(chunk, fs))
			if err != nil {
				return fmt.Errorf("modeleval: silero clip %d, chunk %d, float: %w", c, i/ChunkSize, err)
			}
			qp, qn, err := runSilero(ctx, quant, sileroFeed(chunk, qs))
			if err != nil {
				return fmt.Errorf("modeleval: silero clip %d, chunk %d, quantized: %w", c, i/ChunkSize, err)
			}
			fs, qs = fn, qn
			score := 0.0
			if Speech(fp) == Speech(qp) {
				score = 1
			} else {
				example("clip %d chunk %d: float %.4f, quantized %.4f", c, i/ChunkSize, fp, qp)
			}
			if Speech(fp) {
				speech++
			}
			r.PerSample = append(r.PerSample, score)
		}
		if progress != nil {
			progress(c+1, len(d.Silero.Eval))
		}
	}
	r.N = len(r.PerSample)
	r.Agreement, _ = stats(r.PerSample)
	r.Worst = r.Agreement
	r.Positive = fraction(speech, r.N)
	return nil
}
