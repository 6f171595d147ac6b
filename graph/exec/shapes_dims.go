package exec

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// Dimension arithmetic and shape-tensor values for shape inference.

// dimUnknown is a dimension of unknown size.
var dimUnknown = graph.Dim{Size: -1}

func dimOf(n int64) graph.Dim { return graph.Dim{Size: n} }

// isOne reports whether d is known to be 1.
func isOne(d graph.Dim) bool { return d.Known() && d.Size == 1 }

// sameDim reports whether a and b are the same known size or the same
// symbol.
func sameDim(a, b graph.Dim) bool {
	return (a.Known() && b.Known() && a.Size == b.Size) || (a.Param != "" && a.Param == b.Param)
}

// typeOf returns a type with a known rank.
func typeOf(elem graph.ElemType, dims []graph.Dim) graph.Type {
	return graph.Type{Elem: elem, HasShape: true, Shape: dims}
}

// unknownDims returns r unknown dimensions.
func unknownDims(r int) []graph.Dim {
	d := make([]graph.Dim, r)
	for i := range d {
		d[i] = dimUnknown
	}
	return d
}

// broadcastDim is numpy broadcasting of two dimensions: an error when two
// known sizes differ and neither is 1.
func broadcastDim(a, b graph.Dim) (graph.Dim, error) {
	switch {
	case a.Known() && b.Known():
		if a.Size == b.Size || b.Size == 1 {
			return a, nil
		}
		if a.Size == 1 {
			return b, nil
		}
		return a, fmt.Errorf("dimensions %d and %d do not broadcast", a.Size, b.Size)
	case isOne(a):
		return b, nil
	case isOne(b):
		return a, nil
	case a.Known():
		return a, nil // b is a or 1
	case b.Known():
		return b, nil
	case sameDim(a, b):
		return a, nil
	}
	return dimUnknown, nil
}

// broadcastTypes returns the numpy broadcast of the inputs' shapes (rank
// unknown when one is) with elem.
func broadcastTypes(elem graph.ElemType, ts ...graph.Type) (graph.Type, error) {
	r := 0
	for _, t := range ts {
		if !t.HasShape {
			return graph.Type{Elem: elem}, nil
		}
		r = max(r, len(t.Shape))
	}
	out := make([]graph.Dim, r)
	for i := range out {
		out[i] = dimOf(1)
	}
	for k, t := range ts {
		off := r - len(t.Shape)
		for i, d := range t.Shape {
			var err error
			if out[off+i], err = broadcastDim(out[off+i], d); err != nil {
				return graph.Type{}, fmt.Errorf("input %d: shapes %s do not broadcast: %w", k, typesString(ts), err)
			}
		}
	}
	return typeOf(elem, out), nil
}

func typesString(ts []graph.Type) string {
	s := ""
	for i, t := range ts {
		if i > 0 {
			s += ", "
		}
		s += t.String()
	}
	return s
}

// unifyDim merges two dimensions that must be equal: an error when two
// known sizes differ, else the more specific one.
func unifyDim(a, b graph.Dim) (graph.Dim, error) {
	if a.Known() && b.Known() && a.Size != b.Size {
		return a, fmt.Errorf("dimensions %d and %d must be equal", a.Size, b.Size)
	}
	return unifyLoose(a, b), nil
}

// unifyLoose returns the more specific of two dimensions meant to be
// equal: a known size, else a symbol, else unknown.
func unifyLoose(a, b graph.Dim) graph.Dim {
	switch {
	case a.Known():
		return a
	case b.Known():
		return b
	case a.Param != "":
		return a
	}
	return b
}

// product is a product of dimensions as a coefficient times symbols, for
// the cancellations of Reshape's -1 and Flatten; ok is false when a factor
// is unknown.
type product struct {
	coef int64
	syms map[string]int
	ok   bool
}

func productOf(dims []graph.Dim) product {
	p := product{coef: 1, syms: map[string]int{}, ok: true}
	for _, d := range dims {
		switch {
		case d.Known():
			if d.Size != 0 && p.coef > math.MaxInt64/d.Size {
				p.ok = false
			}
			p.coef *= d.Size
		case d.Param != "":
			p.syms[d.Param]++
		default:
			p.ok = false
		}
	}
	return p
}

// dim returns the product as one dimension: known, a single symbol, or
// unknown.
func (p product) dim() graph.Dim {
	if !p.ok {
		return dimUnknown
	}
	if len(p.syms) == 0 {
		return dimOf(p.coef)
	}
	if len(p.syms) == 1 && p.coef == 1 {
		for k, c := range p.syms {
			if c == 1 {
				return graph.Dim{Size: -1, Param: k}
			}
		}
	}
	return dimUnknown
}

// div returns p / q as one dimension when the symbols of q cancel against
// those of p and the coefficients divide; unknown otherwise.
func (p product) div(q product) graph.Dim {
	if !p.ok || !q.ok || q.coef == 0 || p.coef%q.coef != 0 {
		return dimUnknown
	}
	r := product{coef: p.coef / q.coef, syms: map[string]int{}, ok: true}
	for k, c := range p.syms {
		r.syms[k] = c
	}
	for k, c := range q.syms {
		if r.syms[k] < c {
			return dimUnknown
		}
		r.syms[k] -= c
		if r.syms[k] == 0 {
			delete(r.syms, k)
		}
	}
	return r.dim()
}

// symVal is one entry of a shape tensor: a known value, a symbolic
// dimension, or unknown.
type symVal struct {
	v     int64
	param string
	known bool
}

func symKnown(v int64) symVal { return symVal{v: v, known: true} }

// symOfDim returns the entry holding dimension d.
func symOfDim(d graph.Dim) symVal {
	if d.Known() {
		return symKnown(d.Size)
	}
	return symVal{param: d.Param}
}

// dim returns the dimension an entry gives when used as a size.
func (x symVal) dim() graph.Dim {
	switch {
	case x.known && x.v >= 0:
		return dimOf(x.v)
	case x.param != "":
		return graph.Dim{Size: -1, Param: x.param}
	}
	return dimUnknown
}

// maxSymLen bounds the shape tensors tracked entry by entry.
const maxSymLen = 64

// symOf returns the tracked entries of v: a shape tensor, or a small
// constant of rank 0 or 1 with integral values.
func (s *shapeInf) symOf(v *graph.Value) ([]symVal, bool) {
	if v == nil {
		return nil, false
	}
	if x, ok := s.sym[v]; ok {
		return x, true
	}
	t := s.constOf(v)
	if t == nil || t.NDim() > 1 || t.Numel() > maxSymLen {
		return nil, false
	}
	var out []symVal
	switch t.DType() {
	case tensor.Int64, tensor.Int32:
		vals, _ := ints64(t)
		for _, x := range vals {
			out = append(out, symKnown(x))
		}
	case tensor.Float32:
		for _, f := range t.F32() {
			if f != float32(math.Trunc(float64(f))) || math.Abs(float64(f)) > 1<<53 {
				return nil, false
			}
			out = append(out, symKnown(int64(f)))
		}
	default:
		return nil, false
	}
	if out == nil {
		out = []symVal{}
	}
	s.sym[v] = out
	return out, true
}

// setSym records the entries of shape tensor v.
func (s *shapeInf) setSym(v *graph.Value, vals []symVal) {
	if v != nil && len(vals) <= maxSymLen {
		s.sym[v] = vals
	}
}

// ints returns the values of v when all are known.
func (s *shapeInf) ints(v *graph.Value) ([]int64, bool) {
	x, ok := s.symOf(v)
	if !ok {
		return nil, false
	}
	out := make([]int64, len(x))
	for i, e := range x {
		if !e.known {
			return nil, false
		}
		out[i] = e.v
	}
	return out, true
}

// floats returns the values of a constant float tensor.
func (s *shapeInf) floats(v *graph.Value) ([]float64, bool) {
	t := s.constOf(v)
	if t == nil || t.DType() != tensor.Float32 {
		return nil, false
	}
	out := make([]float64, t.Numel())
	for i, f := range t.F32() {
		out[i] = float64(f)
	}
	return out, true
}

// inType returns the type of input i (the zero Type when absent).
func inType(n *graph.Node, i int) graph.Type {
	if v := n.Input(i); v != nil {
		return v.Type
	}
	return graph.Type{}
}

// normAxes normalizes axes for rank r, rejecting repeats.
func normAxes(axes []int64, r int) ([]int, error) {
	out := make([]int, len(axes))
	seen := make([]bool, r)
	for i, a := range axes {
		d, err := axis(a, r)
		if err != nil {
			return nil, err
		}
		if seen[d] {
			return nil, fmt.Errorf("axes %v repeat axis %d", axes, d)
		}
		seen[d] = true
		out[i] = d
	}
	return out, nil
}

// axesInput returns the axes of Squeeze/Unsqueeze/Reduce-like operators:
// the attribute before opset since, input i from then on. ok is false when
// the input is present but not constant; nil axes mean absent.
func (s *shapeInf) axesInput(n *graph.Node, i int, since int64) (axes []int64, ok bool, err error) {
	if s.opset < since {
		axes, err = n.Ints("axes", nil)
		return axes, err == nil, err
	}
	v := n.Input(i)
	if v == nil {
		return nil, true, nil
	}
	axes, ok = s.ints(v)
	if ok && axes == nil {
		axes = []int64{}
	}
	return axes, ok, nil
}
