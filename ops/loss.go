package ops

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/tensor"
)

// DefaultIgnoreIndex is torch's default ignore_index for cross entropy and
// NLL losses: samples whose target is -100 contribute nothing.
const DefaultIgnoreIndex = -100

// LossAttrs are the attributes MSELoss and BCEWithLogits record when traced.
type LossAttrs struct {
	// Reduction is "mean" (also the zero value ""), "sum" or "none".
	Reduction string
}

// CrossEntropyAttrs are the options of CrossEntropyWith and NLLLoss, and
// the attributes they record when traced. The zero value is a mean
// reduction without label smoothing or ignored targets.
type CrossEntropyAttrs struct {
	// Reduction is "mean" (also the zero value ""), "sum" or "none".
	Reduction string
	// LabelSmoothing in [0, 1] mixes the target with the uniform
	// distribution over classes, as torch's label_smoothing.
	LabelSmoothing float32
	// When UseIgnoreIndex is set, samples whose class-index target equals
	// IgnoreIndex contribute nothing to the loss, the gradient or the
	// mean's denominator (torch's ignore_index).
	UseIgnoreIndex bool
	// IgnoreIndex is the ignored target value (see UseIgnoreIndex).
	IgnoreIndex int64
}

// CrossEntropy returns torch.nn.functional.cross_entropy(logits, target,
// reduction=reduction, label_smoothing=labelSmoothing) with torch's default
// ignore_index of -100. See CrossEntropyWith.
func CrossEntropy(logits, target *tensor.Tensor, reduction string, labelSmoothing float32) *tensor.Tensor {
	return CrossEntropyWith(logits, target, CrossEntropyAttrs{
		Reduction: reduction, LabelSmoothing: labelSmoothing,
		UseIgnoreIndex: true, IgnoreIndex: DefaultIgnoreIndex,
	})
}

// CrossEntropyWith is the cross entropy of logits against target with
// explicit options, as torch.nn.functional.cross_entropy: log-softmax over
// the class dimension followed by the negative log likelihood.
//
// logits is [N, C] or [N, C, d1, ...] (class dimension 1) or [C]. target
// is either class indices (int64 or int32) of logits' shape without the
// class dimension, or class probabilities (float32) of logits' shape. With
// class indices and label smoothing e, a sample's loss is
// (1-e)*(-logp[t]) + e/C * sum_c(-logp[c]); "mean" divides the sum by the
// number of samples not ignored (NaN when all are). With probabilities the
// target becomes target*(1-e) + e/C, the loss is -sum_c target[c]*logp[c]
// and "mean" divides by the number of samples. "none" returns the
// per-sample losses; "mean" and "sum" return a 0-dimensional tensor.
//
// The traced op is "CrossEntropy" with inputs (logits, target) and
// CrossEntropyAttrs. Gradients flow to logits, and to probability targets.
func CrossEntropyWith(logits, target *tensor.Tensor, a CrossEntropyAttrs) *tensor.Tensor {
	const op = "CrossEntropy"
	red := nnopReduction(op, a.Reduction)
	xv := nnopF32(op, "logits", logits)
	n, c, s, sampleShape := nnopClassLayout(op, logits.Shape())
	eps := float64(a.LabelSmoothing)
	if !(eps >= 0 && eps <= 1) {
		panic(fmt.Sprintf("ops: CrossEntropy: label smoothing %v is outside [0, 1]", a.LabelSmoothing))
	}
	if target == nil {
		panic("ops: CrossEntropy: target is nil")
	}
	probs := target.DType() == tensor.Float32
	var tv []float32
	var ids []int64
	if probs {
		tv = target.F32()
		if !tensor.SameShape(target.Shape(), logits.Shape()) {
			panic(fmt.Sprintf("ops: CrossEntropy: probability target %v does not match logits %v", target.Shape(), logits.Shape()))
		}
	} else {
		if !tensor.SameShape(target.Shape(), sampleShape) {
			panic(fmt.Sprintf("ops: CrossEntropy: target %v does not fit logits %v (want %v)", target.Shape(), logits.Shape(), sampleShape))
		}
		ids = nnopClassTargets(op, target, c, a)
	}
	logp := nnopLogSoftmax(xv, n, c, s)
	samples := n * s
	loss := make([]float64, samples)
	keep := make([]bool, samples)
	count := 0
	fc := float64(c)
	for i := 0; i < samples; i++ {
		base, si := (i/s)*c*s, i%s
		var l float64
		if probs {
			for k := 0; k < c; k++ {
				t := float64(tv[base+k*s+si])*(1-eps) + eps/fc
				l -= t * logp[base+k*s+si]
			}
		} else {
			t := ids[i]
			if t < 0 {
				continue // ignored
			}
			l = -(1 - eps) * logp[base+int(t)*s+si]
			if eps > 0 {
				var sm float64
				for k := 0; k < c; k++ {
					sm -= logp[base+k*s+si]
				}
				l += eps / fc * sm
			}
		}
		loss[i], keep[i] = l, true
		count++
	}
	denom := float64(count)
	if probs {
		denom = float64(samples)
	}
	y := nnopReduce(red, loss, sampleShape, denom)
	return Apply(op, a, Ts(logits, target), Ts(y), func(g []*tensor.Tensor) []*tensor.Tensor {
		gv := g[0].F32()
		var gx, gt []float32
		if needs(logits) {
			gx = make([]float32, len(xv))
		}
		if probs && needs(target) {
			gt = make([]float32, len(tv))
		}
		for i := 0; i < samples; i++ {
			if !keep[i] {
				continue
			}
			sc := nnopGradScale(red, gv, i, denom)
			base, si := (i/s)*c*s, i%s
			var tsum float64
			if probs {
				for k := 0; k < c; k++ {
					tsum += float64(tv[base+k*s+si])*(1-eps) + eps/fc
				}
			}
			for k := 0; k < c; k++ {
				j := base + k*s + si
				p := math.Exp(logp[j])
				var d float64
				if probs {
					d = p*tsum - (float64(tv[j])*(1-eps) + eps/fc)
					if gt != nil {
						gt[j] = float32(-sc * (1 - eps) * logp[j])
					}
				} else {
					d = p - eps/fc
					if int64(k) == ids[i] {
						d -= 1 - eps
					}
				}
				if gx != nil {
					gx[j] = float32(sc * d)
				}
			}
		}
		var tx, tt *tensor.Tensor
		if gx != nil {
			tx = nnopTensor(gx, logits.Shape())
		}
		if gt != nil {
			tt = nnopTensor(gt, target.Shape())
		}
		return Ts(tx, tt)
	})
}

// NLLLoss is torch.nn.functional.nll_loss with torch's default
// ignore_index of -100: the loss of a sample is -logProbs[t] for its class
// index t. logProbs is [N, C], [N, C, d1, ...] or [C]; target holds int64
// (or int32) class indices of logProbs' shape without dimension 1. "mean"
// divides by the number of samples not ignored. The traced op is "NLLLoss"
// with inputs (logProbs, target) and CrossEntropyAttrs.
func NLLLoss(logProbs, target *tensor.Tensor, reduction string) *tensor.Tensor {
	const op = "NLLLoss"
	a := CrossEntropyAttrs{Reduction: reduction, UseIgnoreIndex: true, IgnoreIndex: DefaultIgnoreIndex}
	red := nnopReduction(op, reduction)
	xv := nnopF32(op, "logProbs", logProbs)
	n, c, s, sampleShape := nnopClassLayout(op, logProbs.Shape())
	if target == nil || !tensor.SameShape(target.Shape(), sampleShape) {
		panic(fmt.Sprintf("ops: NLLLoss: target does not fit input %v (want %v)", logProbs.Shape(), sampleShape))
	}
	ids := nnopClassTargets(op, target, c, a)
	samples := n * s
	loss := make([]float64, samples)
	count := 0
	for i, t := range ids {
		if t >= 0 {
			loss[i] = -float64(xv[(i/s)*c*s+int(t)*s+i%s])
			count++
		}
	}
	denom := float64(count)
	y := nnopReduce(red, loss, sampleShape, denom)
	return Apply(op, a, Ts(logProbs, target), Ts(y), func(g []*tensor.Tensor) []*tensor.Tensor {
		if !needs(logProbs) {
			return Ts(nil, nil)
		}
		gv := g[0].F32()
		gx := make([]float32, len(xv))
		for i, t := range ids {
			if t >= 0 {
				gx[(i/s)*c*s+int(t)*s+i%s] = float32(-nnopGradScale(red, gv, i, denom))
			}
		}
		return Ts(nnopTensor(gx, logProbs.Shape()), nil)
	})
}

// MSELoss is torch.nn.functional.mse_loss: the squared differences of a
// and b (same shape), reduced by "mean", "sum" or "none". The traced op is
// "MSELoss" with inputs (a, b) and LossAttrs.
func MSELoss(a, b *tensor.Tensor, reduction string) *tensor.Tensor {
	const op = "MSELoss"
	red := nnopReduction(op, reduction)
	av, bv := nnopF32(op, "a", a), nnopF32(op, "b", b)
	if !tensor.SameShape(a.Shape(), b.Shape()) {
		panic(fmt.Sprintf("ops: MSELoss: shapes %v and %v differ", a.Shape(), b.Shape()))
	}
	loss := make([]float64, len(av))
	for i := range av {
		d := av[i] - bv[i]
		loss[i] = float64(d * d)
	}
	denom := float64(len(av))
	y := nnopReduce(red, loss, a.Shape(), denom)
	return Apply(op, LossAttrs{Reduction: reduction}, Ts(a, b), Ts(y), func(g []*tensor.Tensor) []*tensor.Tensor {
		gv := g[0].F32()
		var ga, gb []float32
		if needs(a) {
			ga = make([]float32, len(av))
		}
		if needs(b) {
			gb = make([]float32, len(av))
		}
		for i := range av {
			d := float32(2*nnopGradScale(red, gv, i, denom)) * (av[i] - bv[i])
			if ga != nil {
				ga[i] = d
			}
			if gb != nil {
				gb[i] = -d
			}
		}
		return Ts(nnopMaybe(ga, a.Shape()), nnopMaybe(gb, b.Shape()))
	})
}

// BCEWithLogits is torch.nn.functional.binary_cross_entropy_with_logits:
// for logits x and targets y (same shape) each element's loss is the stable
// max(x,0) - x*y + log(1+exp(-|x|)), reduced by "mean", "sum" or "none".
// Gradients are sigmoid(x)-y for x and -x for y. The traced op is
// "BCEWithLogits" with inputs (logits, target) and LossAttrs.
func BCEWithLogits(logits, target *tensor.Tensor, reduction string) *tensor.Tensor {
	const op = "BCEWithLogits"
	red := nnopReduction(op, reduction)
	xv, tv := nnopF32(op, "logits", logits), nnopF32(op, "target", target)
	if !tensor.SameShape(logits.Shape(), target.Shape()) {
		panic(fmt.Sprintf("ops: BCEWithLogits: logits %v and target %v differ in shape", logits.Shape(), target.Shape()))
	}
	loss := make([]float64, len(xv))
	for i, x := range xv {
		xf, yf := float64(x), float64(tv[i])
		loss[i] = math.Max(xf, 0) - xf*yf + math.Log1p(math.Exp(-math.Abs(xf)))
	}
	denom := float64(len(xv))
	y := nnopReduce(red, loss, logits.Shape(), denom)
	return Apply(op, LossAttrs{Reduction: reduction}, Ts(logits, target), Ts(y), func(g []*tensor.Tensor) []*tensor.Tensor {
		gv := g[0].F32()
		var gx, gt []float32
		if needs(logits) {
			gx = make([]float32, len(xv))
		}
		if needs(target) {
			gt = make([]float32, len(xv))
		}
		for i, x := range xv {
			sc := nnopGradScale(red, gv, i, denom)
			xf := float64(x)
			if gx != nil {
				gx[i] = float32(sc * (1/(1+math.Exp(-xf)) - float64(tv[i])))
			}
			if gt != nil {
				gt[i] = float32(-sc * xf)
			}
		}
		return Ts(nnopMaybe(gx, logits.Shape()), nnopMaybe(gt, target.Shape()))
	})
}

// nnopReduction validates a reduction name; "" means "mean".
func nnopReduction(op, r string) string {
	switch r {
	case "", "mean":
		return "mean"
	case "sum", "none":
		return r
	}
	panic(fmt.Sprintf("ops: %s: unknown reduction %q (want mean, sum or none)", op, r))
}

// nnopReduce turns per-element losses into the op's output: the losses
// themselves (shape shape) for "none", else a 0-dimensional sum or
// sum/denom, accumulated in float64.
func nnopReduce(red string, loss []float64, shape []int, denom float64) *tensor.Tensor {
	if red == "none" {
		return nnopTensor(nnopF64To32(loss), shape)
	}
	var s float64
	for _, l := range loss {
		s += l
	}
	if red == "mean" {
		s /= denom
	}
	return tensor.Scalar(float32(s))
}

// nnopGradScale is d(output)/d(loss i) times the incoming gradient.
func nnopGradScale(red string, g []float32, i int, denom float64) float64 {
	switch red {
	case "none":
		return float64(g[i])
	case "sum":
		return float64(g[0])
	}
	return float64(g[0]) / denom
}

// nnopClassLayout views a [N, C, d...] or [C] input as n samples' batches
// of c classes with s spatial positions, and returns the per-sample shape
// (the input's shape without dimension 1).
func nnopClassLayout(op string, xs []int) (n, c, s int, sample []int) {
	switch len(xs) {
	case 0:
		panic(fmt.Sprintf("ops: %s: input needs a class dimension, got shape %v", op, xs))
	case 1:
		return 1, xs[0], 1, []int{}
	}
	sample = append([]int{xs[0]}, xs[2:]...)
	return xs[0], xs[1], nnopProd(xs[2:]), sample
}

// nnopClassTargets returns class-index targets, with ignored samples as
// -1, panicking on other values outside [0, c).
func nnopClassTargets(op string, t *tensor.Tensor, c int, a CrossEntropyAttrs) []int64 {
	var ids []int64
	switch t.DType() {
	case tensor.Int64:
		ids = append([]int64(nil), t.I64()...)
	case tensor.Int32:
		for _, x := range t.I32() {
			ids = append(ids, int64(x))
		}
	default:
		panic(fmt.Sprintf("ops: %s: target is %v, want int64 or int32 class indices", op, t.DType()))
	}
	for i, x := range ids {
		switch {
		case a.UseIgnoreIndex && x == a.IgnoreIndex:
			ids[i] = -1
		case x < 0 || x >= int64(c):
			panic(fmt.Sprintf("ops: %s: target %d out of range [0, %d)", op, x, c))
		}
	}
	return ids
}

// nnopLogSoftmax returns the log-softmax over the class axis of x viewed as
// [n, c, s], in float64 (shifted by the maximum for stability).
func nnopLogSoftmax(x []float32, n, c, s int) []float64 {
	out := make([]float64, len(x))
	for b := 0; b < n; b++ {
		for si := 0; si < s; si++ {
			base := b*c*s + si
			m := math.Inf(-1)
			for k := 0; k < c; k++ {
				m = math.Max(m, float64(x[base+k*s]))
			}
			var sum float64
			for k := 0; k < c; k++ {
				sum += math.Exp(float64(x[base+k*s]) - m)
			}
			lse := m + math.Log(sum)
			for k := 0; k < c; k++ {
				out[base+k*s] = float64(x[base+k*s]) - lse
			}
		}
	}
	return out
}

// nnopMaybe wraps a gradient slice, or returns nil for a nil slice.
func nnopMaybe(v []float32, shape []int) *tensor.Tensor {
	if v == nil {
		return nil
	}
	return nnopTensor(v, shape)
}
