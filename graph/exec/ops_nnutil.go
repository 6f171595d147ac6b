package exec

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// Helpers shared by the neural-network operators (convolution, pooling,
// normalization, reductions, resizing).

// nnProd returns the number of elements of a shape.
func nnProd(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// nnInts converts int64 attribute values to ints.
func nnInts(v []int64) []int {
	if v == nil {
		return nil
	}
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}

// nnIntsAttr returns an ints attribute as ints (nil when absent).
func nnIntsAttr(n *graph.Node, name string) ([]int, error) {
	v, err := n.Ints(name, nil)
	if err != nil {
		return nil, err
	}
	return nnInts(v), nil
}

// nnTensor returns a float32 tensor of the given shape (0-d when shape is
// empty) wrapping data.
func nnTensor(data []float32, shape []int) *tensor.Tensor {
	if len(shape) == 0 {
		return tensor.FromFloat32(data, 1).Reshape()
	}
	return tensor.FromFloat32(data, shape...)
}

// nnInt64Tensor returns an int64 tensor of the given shape wrapping data.
func nnInt64Tensor(data []int64, shape []int) *tensor.Tensor {
	if len(shape) == 0 {
		return tensor.FromInt64(data, 1).Reshape()
	}
	return tensor.FromInt64(data, shape...)
}

// nnReshape returns t viewed with shape (0-d when shape is empty).
func nnReshape(t *tensor.Tensor, shape []int) *tensor.Tensor {
	return t.Reshape(append([]int{}, shape...)...)
}

// nnScalarInt reads a scalar (or one-element) integer tensor.
func nnScalarInt(what string, t *tensor.Tensor) (int64, error) {
	v, err := ints64(t)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if len(v) != 1 {
		return 0, fmt.Errorf("%s must hold one value, got shape %v", what, t.Shape())
	}
	return v[0], nil
}

// nnScalarFloat reads a scalar (or one-element) float32 tensor.
func nnScalarFloat(what string, t *tensor.Tensor) (float32, error) {
	if err := wantFloat(what, t); err != nil {
		return 0, err
	}
	if t.Numel() != 1 {
		return 0, fmt.Errorf("%s must hold one value, got shape %v", what, t.Shape())
	}
	return t.F32()[0], nil
}

// nnAxes normalizes axes for rank r and rejects duplicates.
func nnAxes(axes []int64, r int) ([]int, error) {
	out := make([]int, len(axes))
	seen := map[int]bool{}
	for i, a := range axes {
		ax, err := axis(a, r)
		if err != nil {
			return nil, err
		}
		if seen[ax] {
			return nil, fmt.Errorf("axis %d appears twice in %v", a, axes)
		}
		seen[ax] = true
		out[i] = ax
	}
	return out, nil
}

// nnToFloat returns t's values as float32 (a copy for integer dtypes;
// t's own storage for float32) and whether t was float32. Integer dtypes
// whose values float32 holds exactly (int8, uint8) or that ONNX allows in
// comparison-only ops are converted value by value.
func nnToFloat(t *tensor.Tensor) ([]float32, bool) {
	if t.DType() == tensor.Float32 {
		return t.F32(), true
	}
	return tensor.Cast(t, tensor.Float32).F32(), false
}

// nnSpatial holds the attributes Conv, ConvTranspose and the pools share.
// Slices are nil when the attribute is absent.
type nnSpatial struct {
	autoPad   string
	kernel    []int
	strides   []int
	dilations []int
	pads      []int
}

// nnParseSpatial reads auto_pad, kernel_shape, strides, dilations and
// pads.
func nnParseSpatial(n *graph.Node) (nnSpatial, error) {
	var s nnSpatial
	var err error
	if s.autoPad, err = n.StringAttr("auto_pad", "NOTSET"); err != nil {
		return s, err
	}
	switch s.autoPad {
	case "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID":
	default:
		return s, fmt.Errorf("auto_pad %q, want NOTSET, SAME_UPPER, SAME_LOWER or VALID", s.autoPad)
	}
	for _, f := range []struct {
		name string
		dst  *[]int
	}{{"kernel_shape", &s.kernel}, {"strides", &s.strides}, {"dilations", &s.dilations}, {"pads", &s.pads}} {
		if *f.dst, err = nnIntsAttr(n, f.name); err != nil {
			return s, err
		}
	}
	return s, nil
}

// nnGeom is a resolved window geometry over r spatial dimensions.
type nnGeom struct {
	in, out, kernel, strides, dilations []int
	padBegin, padEnd                    []int
}

// resolve fills the geometry of a convolution or pooling window over the
// spatial input shape in with kernel k: it checks attribute lengths,
// applies defaults (stride 1, dilation 1, zero pads) and auto_pad, and
// computes the output shape (ceil rounds it up, as pools' ceil_mode, where a
// last window starting in the end padding is dropped).
func (s nnSpatial) resolve(in, k []int, ceil bool) (nnGeom, error) {
	r := len(in)
	g := nnGeom{in: in, kernel: k, strides: make([]int, r), dilations: make([]int, r),
		padBegin: make([]int, r), padEnd: make([]int, r), out: make([]int, r)}
	if len(k) != r {
		return g, fmt.Errorf("kernel has %d dimensions for %d spatial dimensions", len(k), r)
	}
	if s.kernel != nil && len(s.kernel) != r {
		return g, fmt.Errorf("kernel_shape %v has %d values for %d spatial dimensions", s.kernel, len(s.kernel), r)
	}
	for i := range r {
		g.strides[i], g.dilations[i] = 1, 1
	}
	if s.strides != nil {
		if len(s.strides) != r {
			return g, fmt.Errorf("strides %v has %d values for %d spatial dimensions", s.strides, len(s.strides), r)
		}
		copy(g.strides, s.strides)
	}
	if s.dilations != nil {
		if len(s.dilations) != r {
			return g, fmt.Errorf("dilations %v has %d values for %d spatial dimensions", s.dilations, len(s.dilations), r)
		}
		copy(g.dilations, s.dilations)
	}
	if s.pads != nil && s.autoPad == "NOTSET" {
		if len(s.pads) != 2*r {
			return g, fmt.Errorf("pads %v has %d values for %d spatial dimensions (want %d)", s.pads, len(s.pads), r, 2*r)
		}
		copy(g.padBegin, s.pads[:r])
		copy(g.padEnd, s.pads[r:])
	}
	for i := range r {
		if k[i] <= 0 || g.strides[i] <= 0 || g.dilations[i] <= 0 {
			return g, fmt.Errorf("kernel %v, strides %v and dilations %v must be positive", k, g.strides, g.dilations)
		}
		if g.padBegin[i] < 0 || g.padEnd[i] < 0 {
			return g, fmt.Errorf("pads %v must not be negative", s.pads)
		}
		eff := (k[i]-1)*g.dilations[i] + 1
		st := g.strides[i]
		switch s.autoPad {
		case "SAME_UPPER", "SAME_LOWER":
			o := (in[i] + st - 1) / st
			total := max(0, (o-1)*st+eff-in[i])
			small := total / 2
			if s.autoPad == "SAME_UPPER" {
				g.padBegin[i], g.padEnd[i] = small, total-small
			} else {
				g.padBegin[i], g.padEnd[i] = total-small, small
			}
			g.out[i] = o
			continue
		}
		num := in[i] + g.padBegin[i] + g.padEnd[i] - eff
		if num < 0 {
			return g, fmt.Errorf("kernel %v (dilations %v) is larger than the padded input %v", k, g.dilations, in)
		}
		if ceil && s.autoPad == "NOTSET" {
			o := (num+st-1)/st + 1
			if (o-1)*st >= in[i]+g.padBegin[i] {
				o--
			}
			g.out[i] = o
		} else {
			g.out[i] = num/st + 1
		}
	}
	return g, nil
}

// symmetric reports whether every dimension is padded equally on both
// sides.
func (g nnGeom) symmetric() bool {
	for i := range g.padBegin {
		if g.padBegin[i] != g.padEnd[i] {
			return false
		}
	}
	return true
}

// nnPadPlanes returns x [planes, H, W] zero-padded by top, bottom, left,
// right.
func nnPadPlanes(x []float32, planes, h, w, top, bottom, left, right int) []float32 {
	oh, ow := h+top+bottom, w+left+right
	y := make([]float32, planes*oh*ow)
	for p := range planes {
		for r := range h {
			copy(y[(p*oh+r+top)*ow+left:], x[(p*h+r)*w:(p*h+r+1)*w])
		}
	}
	return y
}

// nnNegInf is the value of an empty maximum.
var nnNegInf = float32(math.Inf(-1))
