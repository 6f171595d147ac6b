package observer

import (
	"errors"
	"fmt"
	"math"

	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/tensor"
)

// ErrNotObserved is returned (wrapped) by CalculateQParams when the
// observer has seen no finite value yet. PyTorch warns and returns scale 1.0
// and zero point 0 there; quanta treats it as the error it almost always is.
var ErrNotObserved = errors.New("nothing observed")

// ErrNonFinite is returned (wrapped) by Observe when the tensor holds NaN or
// ±Inf and the observer was not configured to ignore them.
var ErrNonFinite = errors.New("input holds NaN or Inf")

// float32Eps is torch.finfo(torch.float32).eps, the default Eps.
const float32Eps = float32(1.1920928955078125e-07)

// qrange is a validated Config with PyTorch's defaults applied: the dtype,
// scheme, integer range and eps that _calculate_qparams uses.
type qrange struct {
	dtype      tensor.DType // QUInt8, QInt8 or QInt32
	scheme     tensor.QScheme
	qmin, qmax int32
	eps        float32
	custom     bool // has_customized_qrange
	bits4      bool // quint4x2
}

// resolve validates c for an observer of the named kind and applies
// PyTorch's defaults (calculate_qmin_qmax and the observer constructors).
// perChannel says whether the kind is a per-channel observer; for those the
// zero QScheme (PerTensorAffine) means PyTorch's default per_channel_affine.
func resolve(kind string, c Config, perChannel bool) (qrange, error) {
	r := qrange{dtype: c.Dtype, scheme: c.QScheme, eps: c.Eps, custom: c.HasRange, bits4: c.Bits4}
	if r.dtype == tensor.Float32 {
		r.dtype = tensor.QUInt8
	}
	if perChannel && r.scheme == tensor.PerTensorAffine {
		r.scheme = tensor.PerChannelAffine
	}
	if r.eps == 0 {
		r.eps = float32Eps
	}
	bad := func(format string, a ...any) (qrange, error) {
		return qrange{}, fmt.Errorf("observer: %s: invalid config: %s", kind, fmt.Sprintf(format, a...))
	}
	if !(r.eps > 0) || math.IsInf(float64(r.eps), 0) {
		return bad("eps %v must be positive and finite", c.Eps)
	}
	switch r.dtype {
	case tensor.QUInt8, tensor.QInt8, tensor.QInt32:
	default:
		return bad("dtype %v is not quint8, qint8 or qint32", c.Dtype)
	}
	if r.bits4 && r.dtype != tensor.QUInt8 {
		return bad("Bits4 (quint4x2) needs the default quint8 dtype, got %v", r.dtype)
	}
	if int(r.scheme) > int(tensor.PerChannelAffineFloatQParams) {
		return bad("unknown qscheme %v", r.scheme)
	}
	if perChannel != r.scheme.PerChannel() {
		if perChannel {
			return bad("qscheme %v is not a per-channel scheme", r.scheme)
		}
		return bad("qscheme %v is not a per-tensor scheme", r.scheme)
	}
	if c.ChAxis != 0 && !perChannel {
		return bad("ChAxis %d set on a per-tensor observer", c.ChAxis)
	}
	// calculate_qmin_qmax.
	if r.custom {
		qmin, qmax := c.QuantMin, c.QuantMax
		if !(qmin <= 0 && 0 <= qmax) {
			return bad("quantization range [%d, %d] must include 0", qmin, qmax)
		}
		if qmin >= qmax {
			return bad("QuantMin %d must be less than QuantMax %d", qmin, qmax)
		}
		n := int64(qmax) - int64(qmin) + 1
		if r.dtype == tensor.QInt8 && n > 256 {
			return bad("quantization range [%d, %d] exceeds the 256 values of qint8", qmin, qmax)
		}
		if r.dtype == tensor.QInt32 && n > 1<<31 {
			return bad("quantization range [%d, %d] exceeds 2^31 values", qmin, qmax)
		}
		if c.ReduceRange {
			qmin, qmax = floorDiv2(qmin), floorDiv2(qmax)
		}
		r.qmin, r.qmax = qmin, qmax
	} else {
		switch {
		case r.bits4:
			r.qmin, r.qmax = 0, 15
		case r.dtype == tensor.QInt8 && c.ReduceRange:
			r.qmin, r.qmax = -64, 63
		case r.dtype == tensor.QInt8:
			r.qmin, r.qmax = -128, 127
		case r.dtype == tensor.QUInt8 && c.ReduceRange:
			r.qmin, r.qmax = 0, 127
		case r.dtype == tensor.QUInt8:
			r.qmin, r.qmax = 0, 255
		default:
			r.qmin, r.qmax = math.MinInt32, math.MaxInt32
		}
	}
	return r, nil
}

// floorDiv2 is Python's v // 2.
func floorDiv2(v int32) int32 { return v >> 1 }

// symmetric reports whether the scheme is one of the symmetric ones.
func (r qrange) symmetric() bool {
	return r.scheme == tensor.PerTensorSymmetric || r.scheme == tensor.PerChannelSymmetric
}

// rejectSymmetricReduceRange is the check MinMaxObserver and
// PerChannelMinMaxObserver make in their constructors (HistogramObserver
// does not make it, and neither does quanta's Histogram).
func (r qrange) rejectSymmetricReduceRange(kind string, c Config) error {
	if r.symmetric() && c.ReduceRange && r.dtype == tensor.QUInt8 && !r.bits4 {
		return fmt.Errorf("observer: %s: invalid config: cannot reduce range for symmetric quantization for quint8", kind)
	}
	return nil
}

// params computes one (scale, zero point) pair from an observed range, as
// UniformQuantizationObserverBase._calculate_qparams does elementwise, in
// float32 with PyTorch's operation order:
//
//	affine:     scale = max((max(mx,0) - min(mn,0)) / float(qmax-qmin), eps)
//	            zp = clamp(qmin - round(min(mn,0) / scale), qmin, qmax)
//	symmetric:  scale = max(max(-min(mn,0), max(mx,0)) / (float(qmax-qmin)/2), eps)
//	            zp = 0, or 128 for quint8 ((qmin+qmax)//2 with a custom range)
//	float:      scale = (mx - mn) / float(qmax-qmin), 1.0 unless > eps
//	            zpf = -mn / scale
//
// round is ties-to-even (torch.round). One divergence from PyTorch: it
// converts round(min/scale) to int32 before subtracting, which overflows
// for qint32 ranges whose negative part dominates; quanta computes the zero
// point in int64 and clamps, which is what the formula means.
func (r qrange) params(mn, mx float32) (scale float32, zp int32, zpf float32) {
	span := float32(float64(r.qmax) - float64(r.qmin)) // float(quant_max - quant_min) as a float32 scalar
	switch {
	case r.scheme == tensor.PerChannelAffineFloatQParams:
		scale = float32(mx-mn) / span
		if !(scale > r.eps) {
			scale = 1
		}
		zpf = float32(-mn) / scale
		return scale, 0, zpf
	case r.symmetric():
		minNeg, maxPos := min32(mn, 0), max32(mx, 0)
		maxPos = max32(-minNeg, maxPos)
		scale = maxPos / float32((float64(r.qmax)-float64(r.qmin))/2)
		scale = max32(scale, r.eps)
		if r.dtype == tensor.QUInt8 && !r.bits4 {
			if r.custom {
				zp = int32((int64(r.qmin) + int64(r.qmax)) >> 1)
			} else {
				zp = 128
			}
		}
		return scale, zp, 0
	default:
		minNeg, maxPos := min32(mn, 0), max32(mx, 0)
		scale = float32(maxPos-minNeg) / span
		scale = max32(scale, r.eps)
		// qmin - round(v) == round(-v) + qmin: ties-to-even is odd-symmetric.
		v := float32(minNeg / scale)
		zp = qmath.ClampRound(-v, r.qmin, r.qmin, r.qmax)
		return scale, zp, 0
	}
}

// qparams builds the QParams for per-tensor or per-channel ranges, checking
// them as check_min_max_valid does (min <= max).
func (r qrange) qparams(kind string, mins, maxs []float32, axis int) (*tensor.QParams, error) {
	n := len(mins)
	q := &tensor.QParams{Scheme: r.scheme, Scale: make([]float32, n), Axis: axis, QuantMin: r.qmin, QuantMax: r.qmax}
	float := r.scheme == tensor.PerChannelAffineFloatQParams
	if float {
		q.ZeroPointF = make([]float32, n)
	} else {
		q.ZeroPoint = make([]int32, n)
	}
	for i := range mins {
		if !(mins[i] <= maxs[i]) {
			if n == 1 {
				return nil, fmt.Errorf("observer: %s: min %v is not <= max %v", kind, mins[i], maxs[i])
			}
			return nil, fmt.Errorf("observer: %s: channel %d: min %v is not <= max %v", kind, i, mins[i], maxs[i])
		}
		s, z, zf := r.params(mins[i], maxs[i])
		q.Scale[i] = s
		if float {
			q.ZeroPointF[i] = zf
		} else {
			q.ZeroPoint[i] = z
		}
	}
	return q, nil
}

// min32 and max32 are torch.min/torch.max of two non-NaN float32 values.
func min32(a, b float32) float32 {
	if b < a {
		return b
	}
	return a
}

func max32(a, b float32) float32 {
	if b > a {
		return b
	}
	return a
}
