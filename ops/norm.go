package ops

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

// BatchNormAttrs are the attributes BatchNorm records when traced.
type BatchNormAttrs struct {
	// Training selects batch statistics (and the running-stat update)
	// instead of the running statistics.
	Training bool
	// Momentum weighs the batch statistics in the running-stat update:
	// new = (1-Momentum)*old + Momentum*batch (torch's default is 0.1).
	Momentum float32
	// Eps is added to the variance inside the square root (torch's
	// default is 1e-5).
	Eps float32
}

// BatchNorm normalizes x per channel, exactly as
// torch.nn.functional.batch_norm. x is [N, C, ...] (e.g. [N,C], [N,C,L] or
// [N,C,H,W]); channel is dimension 1. runningMean, runningVar, weight and
// bias are [C]; weight and bias may be nil (no affine transform).
//
// With training set, the mean and the biased variance of each channel over
// the batch and spatial dimensions normalize x, and when runningMean and
// runningVar are not nil they are updated in place as
// (1-momentum)*old + momentum*batch, using the unbiased variance for
// runningVar. Training needs more than one value per channel. Otherwise
// runningMean and runningVar (required) normalize x. The output is
// (x-mean)/sqrt(var+eps)*weight + bias; statistics are accumulated in
// float64.
//
// The traced op is "BatchNorm" with inputs (x, weight, bias, runningMean,
// runningVar), any but x possibly nil, and BatchNormAttrs. Gradients flow to
// x, weight and bias; in training mode they include the path through the
// batch statistics.
func BatchNorm(x, runningMean, runningVar, weight, bias *tensor.Tensor, training bool, momentum, eps float32) *tensor.Tensor {
	const op = "BatchNorm"
	xv := nnopF32(op, "x", x)
	xs := x.Shape()
	if len(xs) < 2 {
		panic(fmt.Sprintf("ops: BatchNorm: input %v needs at least 2 dimensions [N, C, ...]", xs))
	}
	n, c := xs[0], xs[1]
	s := nnopProd(xs[2:])
	cnt := n * s
	wv := nnopVec(op, "weight", weight, c)
	bv := nnopVec(op, "bias", bias, c)
	rm := nnopVec(op, "runningMean", runningMean, c)
	rv := nnopVec(op, "runningVar", runningVar, c)
	if (rm == nil) != (rv == nil) {
		panic("ops: BatchNorm: runningMean and runningVar must both be set or both be nil")
	}
	mean := make([]float64, c)
	invstd := make([]float64, c)
	if training {
		if cnt <= 1 {
			panic(fmt.Sprintf("ops: BatchNorm: expected more than 1 value per channel when training, got input %v", xs))
		}
		m := float64(momentum)
		parallel.For(c, 1, func(c0, c1 int) {
			for ch := c0; ch < c1; ch++ {
				var sum float64
				for i := 0; i < n; i++ {
					for _, v := range xv[(i*c+ch)*s : (i*c+ch+1)*s] {
						sum += float64(v)
					}
				}
				mu := sum / float64(cnt)
				var sq float64
				for i := 0; i < n; i++ {
					for _, v := range xv[(i*c+ch)*s : (i*c+ch+1)*s] {
						d := float64(v) - mu
						sq += d * d
					}
				}
				vr := sq / float64(cnt)
				mean[ch] = mu
				invstd[ch] = 1 / math.Sqrt(vr+float64(eps))
				if rm != nil {
					rm[ch] = float32(m*mu + (1-m)*float64(rm[ch]))
					rv[ch] = float32(m*(sq/float64(cnt-1)) + (1-m)*float64(rv[ch]))
				}
			}
		})
	} else {
		if rm == nil {
			panic("ops: BatchNorm: evaluation mode needs runningMean and runningVar")
		}
		for ch := 0; ch < c; ch++ {
			mean[ch] = float64(rm[ch])
			invstd[ch] = 1 / math.Sqrt(float64(rv[ch])+float64(eps))
		}
	}
	yv := make([]float32, len(xv))
	parallel.For(c, 1, func(c0, c1 int) {
		for ch := c0; ch < c1; ch++ {
			// y = x*alpha + beta with alpha = invstd*w, beta = b - mean*alpha.
			w, b := 1.0, 0.0
			if wv != nil {
				w = float64(wv[ch])
			}
			if bv != nil {
				b = float64(bv[ch])
			}
			alpha := invstd[ch] * w
			a32, b32 := float32(alpha), float32(b-mean[ch]*alpha)
			for i := 0; i < n; i++ {
				off := (i*c + ch) * s
				out := yv[off : off+s]
				for j, v := range xv[off : off+s] {
					out[j] = v*a32 + b32
				}
			}
		}
	})
	y := nnopTensor(yv, xs)
	attrs := BatchNormAttrs{Training: training, Momentum: momentum, Eps: eps}
	return Apply(op, attrs, Ts(x, weight, bias, runningMean, runningVar), Ts(y), func(g []*tensor.Tensor) []*tensor.Tensor {
		gv := g[0].F32()
		sumDy := make([]float64, c)
		sumDyXhat := make([]float64, c)
		var gx []float32
		if needs(x) {
			gx = make([]float32, len(xv))
		}
		parallel.For(c, 1, func(c0, c1 int) {
			for ch := c0; ch < c1; ch++ {
				// sd = sum(dy), sdc = sum(dy*(x-mean)); sum(dy*xhat) = sdc*invstd.
				var sd, sdc float64
				m32 := float32(mean[ch])
				for i := 0; i < n; i++ {
					off := (i*c + ch) * s
					dys := gv[off : off+s]
					var a, b float64
					for j, v := range xv[off : off+s] {
						dy := float64(dys[j])
						a += dy
						b += dy * float64(v-m32)
					}
					sd += a
					sdc += b
				}
				// x - float32(mean) differs from x - mean by the rounding of
				// mean; correct sdc for it exactly: sum(dy)*(float32(mean)-mean).
				sdc += sd * (float64(m32) - mean[ch])
				sumDy[ch], sumDyXhat[ch] = sd, sdc*invstd[ch]
				if gx == nil {
					continue
				}
				w := 1.0
				if wv != nil {
					w = float64(wv[ch])
				}
				// dx = (dy - dmean - (x-mean)*proj) * w*invstd in training,
				// dy * w*invstd in evaluation.
				var dmean, proj float32
				if training {
					dmean = float32(sd / float64(cnt))
					proj = float32(sdc * invstd[ch] * invstd[ch] / float64(cnt))
				}
				sc := float32(w * invstd[ch])
				for i := 0; i < n; i++ {
					off := (i*c + ch) * s
					dys, out := gv[off:off+s], gx[off:off+s]
					for j, v := range xv[off : off+s] {
						out[j] = (dys[j] - dmean - (v-m32)*proj) * sc
					}
				}
			}
		})
		var tx, tw, tb *tensor.Tensor
		if gx != nil {
			tx = nnopTensor(gx, xs)
		}
		if needs(weight) {
			tw = nnopTensor(nnopF64To32(sumDyXhat), weight.Shape())
		}
		if needs(bias) {
			tb = nnopTensor(nnopF64To32(sumDy), bias.Shape())
		}
		return Ts(tx, tw, tb, nil, nil)
	})
}

// LayerNormAttrs are the attributes LayerNorm records when traced.
type LayerNormAttrs struct {
	// NormalizedShape is the trailing shape normalized over.
	NormalizedShape []int
	// Eps is added to the variance inside the square root.
	Eps float32
}

// LayerNorm normalizes x over its trailing dimensions normalizedShape, as
// torch.nn.functional.layer_norm: each slice is shifted by its mean and
// divided by sqrt(biased variance + eps), then multiplied by weight and
// shifted by bias (both of shape normalizedShape, or nil). The traced op
// is "LayerNorm" with inputs (x, weight, bias) and LayerNormAttrs.
func LayerNorm(x *tensor.Tensor, normalizedShape []int, weight, bias *tensor.Tensor, eps float32) *tensor.Tensor {
	const op = "LayerNorm"
	xv := nnopF32(op, "x", x)
	xs := x.Shape()
	k := len(normalizedShape)
	if k == 0 || k > len(xs) || !tensor.SameShape(xs[len(xs)-k:], normalizedShape) {
		panic(fmt.Sprintf("ops: LayerNorm: normalized shape %v is not a trailing shape of input %v", normalizedShape, xs))
	}
	d := nnopProd(normalizedShape)
	wv := nnopParam(op, "weight", weight, normalizedShape)
	bv := nnopParam(op, "bias", bias, normalizedShape)
	rows := 0
	if d > 0 {
		rows = len(xv) / d
	}
	mean := make([]float64, rows)
	invstd := make([]float64, rows)
	yv := make([]float32, len(xv))
	parallel.For(rows, 16, func(r0, r1 int) {
		for r := r0; r < r1; r++ {
			row := xv[r*d : (r+1)*d]
			mu, is := nnopMoments(row, eps)
			mean[r], invstd[r] = mu, is
			out := yv[r*d : (r+1)*d]
			m32, is32 := float32(mu), float32(is)
			for j, v := range row {
				h := (v - m32) * is32
				if wv != nil {
					h *= wv[j]
				}
				if bv != nil {
					h += bv[j]
				}
				out[j] = h
			}
		}
	})
	y := nnopTensor(yv, xs)
	attrs := LayerNormAttrs{NormalizedShape: append([]int(nil), normalizedShape...), Eps: eps}
	return Apply(op, attrs, Ts(x, weight, bias), Ts(y), func(g []*tensor.Tensor) []*tensor.Tensor {
		gv := g[0].F32()
		var tx, tw, tb *tensor.Tensor
		if needs(x) {
			gx := make([]float32, len(xv))
			parallel.For(rows, 16, func(r0, r1 int) {
				for r := r0; r < r1; r++ {
					nnopNormRowGrad(xv[r*d:(r+1)*d], gv[r*d:(r+1)*d], gx[r*d:(r+1)*d], mean[r], invstd[r], wv, 1)
				}
			})
			tx = nnopTensor(gx, xs)
		}
		if needs(weight) || needs(bias) {
			gw := make([]float32, d)
			gb := make([]float32, d)
			parallel.For(d, 64, func(j0, j1 int) {
				sw := make([]float64, j1-j0)
				sb := make([]float64, j1-j0)
				for r := 0; r < rows; r++ {
					dys, xr := gv[r*d+j0:r*d+j1], xv[r*d+j0:r*d+j1]
					m, is := mean[r], invstd[r]
					for j, dy := range dys {
						sw[j] += float64(dy) * (float64(xr[j]) - m) * is
						sb[j] += float64(dy)
					}
				}
				for j := range sw {
					gw[j0+j], gb[j0+j] = float32(sw[j]), float32(sb[j])
				}
			})
			if needs(weight) {
				tw = nnopTensor(gw, weight.Shape())
			}
			if needs(bias) {
				tb = nnopTensor(gb, bias.Shape())
			}
		}
		return Ts(tx, tw, tb)
	})
}

// GroupNormAttrs are the attributes GroupNorm records when traced.
type GroupNormAttrs struct {
	// Groups is the number of channel groups normalized separately.
	Groups int
	// Eps is added to the variance inside the square root.
	Eps float32
}

// GroupNorm normalizes x [N, C, ...] over groups of C/groups channels and
// all spatial positions, per sample, as torch.nn.functional.group_norm
// (biased variance, eps inside the square root), then applies the
// per-channel weight and bias ([C], or nil). The traced op is "GroupNorm"
// with inputs (x, weight, bias) and GroupNormAttrs.
func GroupNorm(x *tensor.Tensor, groups int, weight, bias *tensor.Tensor, eps float32) *tensor.Tensor {
	const op = "GroupNorm"
	xv := nnopF32(op, "x", x)
	xs := x.Shape()
	if len(xs) < 2 || groups < 1 || xs[1]%groups != 0 {
		panic(fmt.Sprintf("ops: GroupNorm: input %v cannot be split into %d channel groups", xs, groups))
	}
	n, c := xs[0], xs[1]
	s := nnopProd(xs[2:])
	wv := nnopVec(op, "weight", weight, c)
	bv := nnopVec(op, "bias", bias, c)
	cg := c / groups
	d := cg * s // one (sample, group) chunk is contiguous
	chunks := n * groups
	mean := make([]float64, chunks)
	invstd := make([]float64, chunks)
	yv := make([]float32, len(xv))
	parallel.For(chunks, 4, func(k0, k1 int) {
		for k := k0; k < k1; k++ {
			row := xv[k*d : (k+1)*d]
			mu, is := nnopMoments(row, eps)
			mean[k], invstd[k] = mu, is
			g := k % groups
			m32, is32 := float32(mu), float32(is)
			for cc := 0; cc < cg; cc++ {
				// y = x*alpha + beta per channel.
				alpha, beta := is32, -m32*is32
				if ch := g*cg + cc; wv != nil || bv != nil {
					w, b := float32(1), float32(0)
					if wv != nil {
						w = wv[ch]
					}
					if bv != nil {
						b = bv[ch]
					}
					alpha, beta = is32*w, b-m32*is32*w
				}
				out := yv[k*d+cc*s : k*d+(cc+1)*s]
				for j, v := range row[cc*s : (cc+1)*s] {
					out[j] = v*alpha + beta
				}
			}
		}
	})
	y := nnopTensor(yv, xs)
	attrs := GroupNormAttrs{Groups: groups, Eps: eps}
	return Apply(op, attrs, Ts(x, weight, bias), Ts(y), func(g []*tensor.Tensor) []*tensor.Tensor {
		gv := g[0].F32()
		var tx, tw, tb *tensor.Tensor
		if needs(x) {
			gx := make([]float32, len(xv))
			parallel.For(chunks, 4, func(k0, k1 int) {
				for k := k0; k < k1; k++ {
					var w []float32
					if wv != nil {
						base := (k % groups) * cg
						w = wv[base : base+cg]
					}
					nnopNormRowGrad(xv[k*d:(k+1)*d], gv[k*d:(k+1)*d], gx[k*d:(k+1)*d], mean[k], invstd[k], w, s)
				}
			})
			tx = nnopTensor(gx, xs)
		}
		if needs(weight) || needs(bias) {
			gw := make([]float32, c)
			gb := make([]float32, c)
			parallel.For(c, 1, func(c0, c1 int) {
				for ch := c0; ch < c1; ch++ {
					var sw, sb float64
					for i := 0; i < n; i++ {
						k := i*groups + ch/cg
						off := (i*c + ch) * s
						for j, v := range xv[off : off+s] {
							dy := float64(gv[off+j])
							sw += dy * (float64(v) - mean[k]) * invstd[k]
							sb += dy
						}
					}
					gw[ch], gb[ch] = float32(sw), float32(sb)
				}
			})
			if needs(weight) {
				tw = nnopTensor(gw, weight.Shape())
			}
			if needs(bias) {
				tb = nnopTensor(gb, bias.Shape())
			}
		}
		return Ts(tx, tw, tb)
	})
}

// nnopMoments returns the mean and 1/sqrt(biased variance + eps) of v,
// computed in float64 with two passes.
func nnopMoments(v []float32, eps float32) (mean, invstd float64) {
	if len(v) == 0 {
		return 0, 1 / math.Sqrt(float64(eps))
	}
	var s float64
	for _, x := range v {
		s += float64(x)
	}
	mean = s / float64(len(v))
	var q float64
	for _, x := range v {
		d := float64(x) - mean
		q += d * d
	}
	return mean, 1 / math.Sqrt(q/float64(len(v))+float64(eps))
}

// nnopNormRowGrad writes the input gradient of y = w*(x-mean)*invstd over
// one normalized slice, where element j uses weight w[j/rep] (1 when w is
// nil): with g = dy*w and xhat the normalized input,
// dx = invstd * (g - mean(g) - xhat*mean(g*xhat)).
func nnopNormRowGrad(x, dy, dx []float32, mean, invstd float64, w []float32, rep int) {
	var sg, sgc float64 // sum(g), sum(g*(x-mean))
	m32 := float32(mean)
	for j, v := range x {
		gj := dy[j]
		if w != nil {
			gj *= w[j/rep]
		}
		sg += float64(gj)
		sgc += float64(gj) * float64(v-m32)
	}
	nf := float64(len(x))
	sgc += sg * (float64(m32) - mean)
	gm := float32(sg / nf)
	proj := float32(sgc * invstd * invstd / nf)
	is := float32(invstd)
	for j, v := range x {
		gj := dy[j]
		if w != nil {
			gj *= w[j/rep]
		}
		dx[j] = (gj - gm - (v-m32)*proj) * is
	}
}

// nnopVec returns the storage of an optional 1-D float32 parameter of n
// elements (nil for a nil tensor).
func nnopVec(op, name string, t *tensor.Tensor, n int) []float32 {
	if t == nil {
		return nil
	}
	v := nnopF32(op, name, t)
	if t.NDim() != 1 || len(v) != n {
		panic(fmt.Sprintf("ops: %s: %s has shape %v, want [%d]", op, name, t.Shape(), n))
	}
	return v
}

// nnopParam returns the storage of an optional float32 parameter of the
// given shape (nil for a nil tensor).
func nnopParam(op, name string, t *tensor.Tensor, shape []int) []float32 {
	if t == nil {
		return nil
	}
	v := nnopF32(op, name, t)
	if !tensor.SameShape(t.Shape(), shape) {
		panic(fmt.Sprintf("ops: %s: %s has shape %v, want %v", op, name, t.Shape(), shape))
	}
	return v
}

// nnopF64To32 rounds a float64 slice to float32.
func nnopF64To32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}
