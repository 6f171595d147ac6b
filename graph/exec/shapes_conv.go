package exec

import (
	"fmt"

	"github.com/quanta-go/quanta/graph"
)

// Shape-inference rules of the convolutions and pools, with the
// executor's window arithmetic (ops_nnutil.go, ops_conv.go, ops_pool.go):
// pads, strides, dilations, auto_pad, ceil_mode, output_padding and
// output_shape.

// windowDim is the output size of a convolution or pooling window along
// one axis (nnSpatial.resolve's arithmetic); a dimension of unknown size
// keeps its symbol when the window maps every size to itself.
func windowDim(in graph.Dim, k, st, dil, pb, pe int64, autoPad string, ceil bool) (graph.Dim, error) {
	if k <= 0 || st <= 0 || dil <= 0 || pb < 0 || pe < 0 {
		return dimUnknown, fmt.Errorf("kernel %d, stride %d, dilation %d and pads %d, %d must be positive", k, st, dil, pb, pe)
	}
	eff := (k-1)*dil + 1
	if autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER" {
		switch {
		case in.Known():
			return dimOf((in.Size + st - 1) / st), nil
		case st == 1:
			return in, nil
		}
		return dimUnknown, nil
	}
	if autoPad == "VALID" {
		pb, pe = 0, 0
	}
	if !in.Known() {
		if st == 1 && pb+pe == eff-1 {
			return in, nil
		}
		return dimUnknown, nil
	}
	num := in.Size + pb + pe - eff
	if num < 0 {
		return dimUnknown, fmt.Errorf("kernel %d (dilation %d) is larger than the padded input %d", k, dil, in.Size)
	}
	if ceil && autoPad == "NOTSET" {
		o := (num+st-1)/st + 1
		if (o-1)*st >= in.Size+pb {
			o--
		}
		return dimOf(o), nil
	}
	return dimOf(num/st + 1), nil
}

// spatialAttr returns attribute values for r spatial axes (def when
// absent); pads has 2r values.
func spatialAttr(v []int, r int, def int64, name string) ([]int64, error) {
	out := make([]int64, r)
	for i := range out {
		out[i] = def
	}
	if v == nil {
		return out, nil
	}
	if len(v) != r {
		return nil, fmt.Errorf("%s %v has %d values for %d spatial dimensions", name, v, len(v), r)
	}
	for i, x := range v {
		out[i] = int64(x)
	}
	return out, nil
}

// convRule infers Conv, ConvTranspose, ConvInteger and QLinearConv: X at
// input xi, W at wi.
func convRule(n *graph.Node, transposed bool, elem graph.ElemType, xi, wi int) ([]graph.Type, error) {
	x, w := inType(n, xi), inType(n, wi)
	sp, err := nnParseSpatial(n)
	if err != nil {
		return nil, err
	}
	group, err := n.Int("group", 1)
	if err != nil {
		return nil, err
	}
	r := -1
	switch {
	case x.HasShape:
		r = len(x.Shape) - 2
	case w.HasShape:
		r = len(w.Shape) - 2
	case sp.kernel != nil:
		r = len(sp.kernel)
	}
	if r < 0 {
		return []graph.Type{{Elem: elem}}, nil
	}
	if w.HasShape && len(w.Shape) != r+2 {
		return nil, fmt.Errorf("X %s and W %s differ in rank", x, w)
	}
	out := unknownDims(r + 2)
	if x.HasShape {
		out[0] = x.Shape[0]
	}
	if w.HasShape {
		if transposed {
			if c := w.Shape[1]; c.Known() {
				out[1] = dimOf(c.Size * group)
			} else if group == 1 {
				out[1] = c
			}
		} else {
			out[1] = w.Shape[0]
		}
		if x.HasShape && !transposed {
			if c := w.Shape[1]; c.Known() && x.Shape[1].Known() && c.Size*group != x.Shape[1].Size {
				return nil, fmt.Errorf("W %s does not fit X %s with group %d", w, x, group)
			}
		}
	}
	if !x.HasShape {
		return []graph.Type{typeOf(elem, out)}, nil
	}
	kernel := make([]int64, r)
	for i := range kernel {
		switch {
		case sp.kernel != nil:
			if len(sp.kernel) != r {
				return nil, fmt.Errorf("kernel_shape %v for %d spatial dimensions", sp.kernel, r)
			}
			kernel[i] = int64(sp.kernel[i])
		case w.HasShape && w.Shape[2+i].Known():
			kernel[i] = w.Shape[2+i].Size
		default:
			return []graph.Type{typeOf(elem, out)}, nil
		}
	}
	if transposed {
		return convTransposeDims(n, sp, x, kernel, out, elem)
	}
	if err := windowDims(sp, x, kernel, out, false); err != nil {
		return nil, err
	}
	return []graph.Type{typeOf(elem, out)}, nil
}

// windowDims fills out[2:] with the window output sizes of x's spatial
// dimensions.
func windowDims(sp nnSpatial, x graph.Type, kernel []int64, out []graph.Dim, ceil bool) error {
	r := len(kernel)
	st, err := spatialAttr(sp.strides, r, 1, "strides")
	if err != nil {
		return err
	}
	dil, err := spatialAttr(sp.dilations, r, 1, "dilations")
	if err != nil {
		return err
	}
	pads := make([]int64, 2*r)
	if sp.pads != nil && sp.autoPad == "NOTSET" {
		if pads, err = spatialAttr(sp.pads, 2*r, 0, "pads"); err != nil {
			return err
		}
	}
	for i := range r {
		if out[2+i], err = windowDim(x.Shape[2+i], kernel[i], st[i], dil[i], pads[i], pads[r+i], sp.autoPad, ceil); err != nil {
			return fmt.Errorf("spatial dimension %d: %w", i, err)
		}
	}
	return nil
}

// convTransposeDims fills the spatial sizes of a ConvTranspose as
// convTKernel.Run computes them.
func convTransposeDims(n *graph.Node, sp nnSpatial, x graph.Type, kernel []int64, out []graph.Dim, elem graph.ElemType) ([]graph.Type, error) {
	r := len(kernel)
	st, err := spatialAttr(sp.strides, r, 1, "strides")
	if err != nil {
		return nil, err
	}
	dil, err := spatialAttr(sp.dilations, r, 1, "dilations")
	if err != nil {
		return nil, err
	}
	pads := make([]int64, 2*r)
	if sp.pads != nil && sp.autoPad != "SAME_UPPER" && sp.autoPad != "SAME_LOWER" && sp.autoPad != "VALID" {
		if pads, err = spatialAttr(sp.pads, 2*r, 0, "pads"); err != nil {
			return nil, err
		}
	}
	op, err := nnIntsAttr(n, "output_padding")
	if err != nil {
		return nil, err
	}
	outPad, err := spatialAttr(op, r, 0, "output_padding")
	if err != nil {
		return nil, err
	}
	outShape, err := nnIntsAttr(n, "output_shape")
	if err != nil {
		return nil, err
	}
	if len(outShape) == r+2 {
		outShape = outShape[2:]
	}
	if outShape != nil && len(outShape) != r {
		return nil, fmt.Errorf("output_shape %v does not fit %d spatial dimensions", outShape, r)
	}
	same := sp.autoPad == "SAME_UPPER" || sp.autoPad == "SAME_LOWER"
	for i := range r {
		in := x.Shape[2+i]
		eff := (kernel[i]-1)*dil[i] + 1
		switch {
		case outShape != nil:
			out[2+i] = dimOf(int64(outShape[i]))
		case same && in.Known():
			out[2+i] = dimOf(in.Size * st[i])
		case same && st[i] == 1:
			out[2+i] = in
		case in.Known():
			out[2+i] = dimOf(st[i]*(in.Size-1) + eff + outPad[i] - pads[i] - pads[r+i])
		case st[i] == 1 && eff+outPad[i]-pads[i]-pads[r+i] == 1:
			out[2+i] = in
		}
		if d := out[2+i]; d.Known() && d.Size <= 0 {
			return nil, fmt.Errorf("output size %d in spatial dimension %d is not positive", d.Size, i)
		}
	}
	return []graph.Type{typeOf(elem, out)}, nil
}

func poolRule(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
	x := inType(n, 0)
	sp, err := nnParseSpatial(n)
	if err != nil {
		return nil, err
	}
	ceil, err := n.Int("ceil_mode", 0)
	if err != nil {
		return nil, err
	}
	if !x.HasShape {
		return []graph.Type{{Elem: x.Elem}, {Elem: graph.Int64}}, nil
	}
	r := len(x.Shape) - 2
	if sp.kernel == nil || len(sp.kernel) != r {
		return nil, fmt.Errorf("kernel_shape %v for input %s", sp.kernel, x)
	}
	kernel := make([]int64, r)
	for i, k := range sp.kernel {
		kernel[i] = int64(k)
	}
	out := append([]graph.Dim{}, x.Shape...)
	if err := windowDims(sp, x, kernel, out, ceil != 0); err != nil {
		return nil, err
	}
	return []graph.Type{typeOf(x.Elem, out), typeOf(graph.Int64, append([]graph.Dim{}, out...))}, nil
}

func globalPoolRule(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
	x := inType(n, 0)
	if !x.HasShape {
		return []graph.Type{{Elem: x.Elem}}, nil
	}
	if len(x.Shape) < 2 {
		return nil, fmt.Errorf("input %s: want [N, C, ...]", x)
	}
	out := append([]graph.Dim{}, x.Shape[:2]...)
	for range x.Shape[2:] {
		out = append(out, dimOf(1))
	}
	return []graph.Type{typeOf(x.Elem, out)}, nil
}
