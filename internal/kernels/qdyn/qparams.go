// Package qdyn holds the kernels of dynamic and weight-only quantization:
// the per-call activation quantization parameters of DESIGN.md's two rules
// (ONNX DynamicQuantizeLinear and PyTorch's ChooseQuantizationParams), a
// vectorized min/max scan and uint8 quantization of float activations, the
// dynamic linear product (activation quantize, int8 GEMM, float output),
// and IEEE half-precision conversion for fp16 weights and fp16 qparams.
//
// Every vectorized kernel has a plain-Go reference that is its
// specification; the variants table drives both dispatch and the tests,
// and every tier equals the reference bit for bit.
package qdyn

import (
	"fmt"
	"math"
)

// Params are the uint8 quantization parameters of one activation tensor:
// codes are q = saturate(roundHalfEven(x/Scale) + ZeroPoint) within
// [QMin, QMax].
type Params struct {
	Scale     float32
	ZeroPoint int32
	// QMin and QMax bound the codes: 0..255, or 0..127 with reduce_range.
	QMin, QMax int32
}

// Rule selects how a call's activation qparams are chosen from the
// activations' min and max.
type Rule uint8

const (
	// ONNX is DynamicQuantizeLinear as ONNX Runtime computes it: range
	// extended to 0, scale = (max-min)/255 and zero point
	// saturate(RNE(0 - min/scale)) in float32; an all-zero input (max ==
	// min) gets scale 1 and zero point 0, as in ONNX Runtime.
	ONNX Rule = iota
	// Torch is PyTorch's ChooseQuantizationParams over 0..255, the rule of
	// the qnnpack and onednn presets (see ChooseTorch).
	Torch
	// TorchReduceRange is ChooseQuantizationParams with reduce_range
	// (codes 0..127), the rule of the x86/fbgemm preset.
	TorchReduceRange
)

// String returns the rule's name.
func (r Rule) String() string {
	switch r {
	case ONNX:
		return "onnx"
	case Torch:
		return "torch"
	case TorchReduceRange:
		return "torch-reduce-range"
	}
	return fmt.Sprintf("Rule(%d)", int(r))
}

// Valid reports whether r is one of the defined rules.
func (r Rule) Valid() bool { return r <= TorchReduceRange }

// Choose returns the qparams of rule r for activations whose smallest and
// largest values are lo and hi (finite, lo <= hi; use 0, 0 for an empty
// input). It panics on an undefined rule.
func (r Rule) Choose(lo, hi float32) Params {
	switch r {
	case ONNX:
		s, z := ChooseONNX(lo, hi)
		return Params{Scale: s, ZeroPoint: z, QMin: 0, QMax: 255}
	case Torch:
		s, z := ChooseTorch(lo, hi, 0, 255, false)
		return Params{Scale: s, ZeroPoint: z, QMin: 0, QMax: 255}
	case TorchReduceRange:
		s, z := ChooseTorch(lo, hi, 0, 255, true)
		return Params{Scale: s, ZeroPoint: z, QMin: 0, QMax: 127}
	}
	panic(fmt.Sprintf("qdyn: Choose: undefined rule %d", int(r)))
}

// cmin and cmax are std::min and std::max: cmin(a, b) = b < a ? b : a,
// cmax(a, b) = a < b ? b : a. They differ from Go's min and max on NaN and
// signed zeros, which the mirrored C++ code relies on.
func cmin(a, b float32) float32 {
	if b < a {
		return b
	}
	return a
}

func cmax(a, b float32) float32 {
	if a < b {
		return b
	}
	return a
}

// ChooseONNX returns DynamicQuantizeLinear's uint8 scale and zero point for
// data in [lo, hi], with ONNX Runtime's float32 arithmetic:
//
//	lo, hi = min(lo, 0), max(hi, 0)
//	scale  = hi == lo ? 1 : (hi - lo) / 255
//	zp     = RNE(clamp(0 - lo/scale, 0, 255))
//
// ONNX's specification leaves the all-zero input undefined (scale 0);
// ONNX Runtime uses scale 1, zero point 0, and so does quanta.
func ChooseONNX(lo, hi float32) (scale float32, zp int32) {
	lo = cmin(lo, 0)
	hi = cmax(hi, 0)
	if hi == lo {
		return 1, 0
	}
	scale = float32(hi-lo) / 255
	izp := float32(0 - float32(lo/scale))
	izp = cmax(0, cmin(255, izp))
	return scale, int32(math.RoundToEven(float64(izp)))
}

// smallScale is PyTorch's SMALL_SCALE_THRESHOLD (the smallest normal fp16).
const smallScale float32 = 6.1e-5

// ChooseTorch is PyTorch 1.13's quant_utils::ChooseQuantizationParams
// (ATen's copy of fbgemm's, without preserve_sparsity and power-of-two
// scales): with reduceRange, qmin and qmax are halved (integer division);
// the range is extended to include 0;
//
//	scale = (double(hi) - lo) / (qmax - qmin)            in float64
//	if float32(scale) == 0 or 1/float32(scale) is Inf: scale = 0.1
//	if scale < 6.1e-5: scale = 6.1e-5, and lo, hi are widened to match
//
// then the zero point is qmin - lo/scale or qmax - hi/scale, whichever has
// the smaller |qbound| - |bound/scale|, clamped to [qmin, qmax] and rounded
// half to even. The scale stays float64 up to the zero point, as in
// PyTorch, and is returned as the float32 that quantization uses. lo must
// not exceed hi (PyTorch rejects that, and NaN, with an error; callers
// check first). It panics if lo > hi or qmin >= qmax after halving.
func ChooseTorch(lo, hi float32, qmin, qmax int32, reduceRange bool) (scale float32, zp int32) {
	if !(lo <= hi) {
		panic(fmt.Sprintf("qdyn: ChooseTorch: min %v exceeds max %v", lo, hi))
	}
	if reduceRange {
		qmin /= 2
		qmax /= 2
	}
	if qmin >= qmax {
		panic(fmt.Sprintf("qdyn: ChooseTorch: qmin %d not below qmax %d", qmin, qmax))
	}
	lo = cmin(lo, 0)
	hi = cmax(hi, 0)
	span := float64(qmax - qmin)
	s := (float64(hi) - float64(lo)) / span
	if f := float32(s); f == 0 || math.IsInf(float64(float32(1)/f), 0) {
		s = 0.1
	}
	if s < float64(smallScale) {
		org := float32(s)
		s = float64(smallScale)
		switch {
		case lo == 0:
			hi = smallScale * float32(qmax-qmin)
		case hi == 0:
			lo = -smallScale * float32(qmax-qmin)
		default:
			amp := smallScale / org
			lo *= amp
			hi *= amp
		}
	}
	fromMin := float64(qmin) - float64(lo)/s
	fromMax := float64(qmax) - float64(hi)/s
	errMin := math.Abs(float64(qmin)) - math.Abs(float64(lo)/s)
	errMax := math.Abs(float64(qmax)) - math.Abs(float64(hi)/s)
	izp := fromMax
	if errMin < errMax {
		izp = fromMin
	}
	switch {
	case izp < float64(qmin):
		zp = qmin
	case izp > float64(qmax):
		zp = qmax
	default:
		zp = int32(math.RoundToEven(izp))
	}
	return float32(s), zp
}
