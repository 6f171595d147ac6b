package quantized

import (
	"fmt"

	"github.com/quanta-go/quanta/internal/kernels/qelem"
	"github.com/quanta-go/quanta/tensor"
)

// Cat joins per-tensor quantized tensors along dim (negative counts from
// the end) with output qparams (scale, zeroPoint)
// (torch.ops.quantized.cat). Inputs share a dtype and their sizes outside
// dim; each is requantized to the output qparams,
//
//	y = qmath.Quantize(qmath.Dequantize(q, zi, si), scale, zeroPoint, qmin, qmax)
//
// by a 256-entry table (an input whose qparams equal the output's is
// copied byte for byte). Note that torch.cat on quantized tensors instead
// uses the first input's qparams: pass those to get its result.
func Cat(xs []*tensor.Tensor, dim int, scale float32, zeroPoint int32) (*tensor.Tensor, error) {
	if len(xs) == 0 {
		return nil, fmt.Errorf("quantized: Cat: no tensors")
	}
	infos := make([]qinfo, len(xs))
	for i, x := range xs {
		q, err := perTensor("Cat", fmt.Sprintf("input %d", i), x)
		if err != nil {
			return nil, err
		}
		infos[i] = q
	}
	dt := infos[0].dtype
	o, err := outInfo("Cat", dt, scale, zeroPoint)
	if err != nil {
		return nil, err
	}
	s0 := xs[0].Shape()
	nd := len(s0)
	if dim < -nd || dim >= nd || nd == 0 {
		return nil, fmt.Errorf("quantized: Cat: dimension %d out of range for %d dimensions", dim, nd)
	}
	if dim < 0 {
		dim += nd
	}
	shape := append([]int(nil), s0...)
	shape[dim] = 0
	for i, x := range xs {
		s := x.Shape()
		if infos[i].dtype != dt || len(s) != nd {
			return nil, fmt.Errorf("quantized: Cat: input %d is %v%v, input 0 is %v%v", i, infos[i].dtype, s, dt, s0)
		}
		for d := range s {
			if d != dim && s[d] != s0[d] {
				return nil, fmt.Errorf("quantized: Cat: input %d has shape %v, input 0 has %v (dimension %d)", i, s, s0, d)
			}
		}
		shape[dim] += s[dim]
	}
	outer, inner := 1, 1
	for _, d := range shape[:dim] {
		outer *= d
	}
	for _, d := range shape[dim+1:] {
		inner *= d
	}
	y := newOut(o, shape)
	dst := bytesOf(y)
	row := shape[dim] * inner
	at := 0
	for i, x := range xs {
		in := infos[i]
		n := x.Shape()[dim] * inner
		src := bytesOf(x)
		var t *qelem.Table
		if in.scale != o.scale || in.zp != o.zp {
			if dt == tensor.QUInt8 {
				t = qelem.RequantizeTable[uint8](in.scale, in.zp, o.scale, o.zp, o.lo, o.hi)
			} else {
				t = qelem.RequantizeTable[int8](in.scale, in.zp, o.scale, o.zp, o.lo, o.hi)
			}
		}
		for b := 0; b < outer; b++ {
			d, s := dst[b*row+at:b*row+at+n], src[b*n:(b+1)*n]
			if t == nil {
				copy(d, s)
			} else {
				qelem.Lookup(d, s, t)
			}
		}
		at += n
	}
	return y, nil
}

// quantizedAny checks that x is a quantized tensor of any scheme.
func quantizedAny(op string, x *tensor.Tensor) error {
	if x == nil {
		return fmt.Errorf("quantized: %s: x is nil", op)
	}
	if !x.DType().IsQuantized() || x.QParams() == nil {
		return fmt.Errorf("quantized: %s: x is %v, want a quantized tensor", op, x.DType())
	}
	return nil
}

// Flatten merges dimensions startDim..endDim (inclusive, negative counting
// from the end) of a quantized tensor (torch.flatten), sharing storage;
// qparams pass through (a per-channel axis may not be merged with other
// dimensions of size > 1).
func Flatten(x *tensor.Tensor, startDim, endDim int) (*tensor.Tensor, error) {
	if err := quantizedAny("Flatten", x); err != nil {
		return nil, err
	}
	sh := x.Shape()
	n := len(sh)
	if n == 0 {
		return tensor.Flatten(x, 0, 0), nil
	}
	s, e := startDim, endDim
	if s < 0 {
		s += n
	}
	if e < 0 {
		e += n
	}
	if s < 0 || s >= n || e < 0 || e >= n || s > e {
		return nil, fmt.Errorf("quantized: Flatten: dimensions %d..%d invalid for shape %v", startDim, endDim, sh)
	}
	if q := x.QParams(); q.Scheme.PerChannel() && q.Axis >= s && q.Axis <= e {
		m := 1
		for _, d := range sh[s : e+1] {
			m *= d
		}
		if m != sh[q.Axis] {
			return nil, fmt.Errorf("quantized: Flatten: cannot merge per-channel axis %d of %v with other dimensions", q.Axis, sh)
		}
	}
	return tensor.Flatten(x, s, e), nil
}

// Reshape returns a per-tensor quantized tensor with a new shape (one
// dimension may be -1), sharing storage; qparams pass through.
func Reshape(x *tensor.Tensor, shape ...int) (*tensor.Tensor, error) {
	if err := quantizedAny("Reshape", x); err != nil {
		return nil, err
	}
	if x.QParams().Scheme.PerChannel() {
		return nil, fmt.Errorf("quantized: Reshape: per-channel tensor %v (use Flatten or Permute)", x.Shape())
	}
	n, prod, neg := x.Numel(), 1, -1
	for i, d := range shape {
		switch {
		case d == -1 && neg < 0:
			neg = i
		case d < 0:
			return nil, fmt.Errorf("quantized: Reshape: bad shape %v", shape)
		default:
			prod *= d
		}
	}
	if (neg >= 0 && (prod == 0 || n%prod != 0)) || (neg < 0 && prod != n) {
		return nil, fmt.Errorf("quantized: Reshape: shape %v does not hold %d elements", shape, n)
	}
	return x.Reshape(shape...), nil
}

// Permute reorders a quantized tensor's dimensions (torch.permute then
// contiguous): dimension i of the result is dimension perm[i] of x;
// qparams pass through (a per-channel axis follows its dimension).
func Permute(x *tensor.Tensor, perm ...int) (*tensor.Tensor, error) {
	if err := quantizedAny("Permute", x); err != nil {
		return nil, err
	}
	n := x.NDim()
	if len(perm) != n {
		return nil, fmt.Errorf("quantized: Permute: permutation %v for shape %v", perm, x.Shape())
	}
	seen := make([]bool, n)
	for _, d := range perm {
		if d < 0 {
			d += n
		}
		if d < 0 || d >= n || seen[d] {
			return nil, fmt.Errorf("quantized: Permute: %v is not a permutation of %d dimensions", perm, n)
		}
		seen[d] = true
	}
	return tensor.Permute(x, perm...), nil
}
