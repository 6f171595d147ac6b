package exec

import (
	"fmt"

	"github.com/quanta-go/quanta/graph"
)

// Shape-inference rules of Split, Slice, Expand, Tile, Gather, GatherND,
// ConstantOfShape, Range and OneHot, with the shape-tensor tracking of
// Slice and Gather.

func splitRule(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
	x := inType(n, 0)
	nout := len(n.Outputs)
	outs := make([]graph.Type, nout)
	for i := range outs {
		outs[i] = graph.Type{Elem: x.Elem}
	}
	if !x.HasShape {
		return outs, nil
	}
	ax, err := n.Int("axis", 0)
	if err != nil {
		return nil, err
	}
	a, err := axis(ax, len(x.Shape))
	if err != nil {
		return nil, err
	}
	split, err := n.Ints("split", nil)
	if err != nil {
		return nil, err
	}
	known := true
	if s.opset >= 13 || n.Input(1) != nil {
		split = nil
		if v := n.Input(1); v != nil {
			if split, known = s.ints(v); known && len(split) == 0 {
				split = nil
			}
		}
	}
	dim := x.Shape[a]
	sizes := make([]graph.Dim, nout)
	switch {
	case !known:
		for i := range sizes {
			sizes[i] = dimUnknown
		}
	case split != nil:
		if len(split) != nout {
			return nil, fmt.Errorf("split %v has %d entries for %d outputs", split, len(split), nout)
		}
		for i, v := range split {
			sizes[i] = dimOf(v)
		}
		if dim.Known() && prodSum(split) != dim.Size {
			return nil, fmt.Errorf("split %v does not add up to dimension %d of %s", split, a, x)
		}
	case !dim.Known():
		for i := range sizes {
			sizes[i] = dimUnknown
		}
	case s.opset >= 18:
		per := (dim.Size + int64(nout) - 1) / int64(nout)
		at := int64(0)
		for i := range sizes {
			sz := max(0, min(per, dim.Size-at))
			sizes[i] = dimOf(sz)
			at += sz
		}
	default:
		if dim.Size%int64(nout) != 0 {
			return nil, fmt.Errorf("dimension %d of %s does not split into %d equal parts", a, x, nout)
		}
		for i := range sizes {
			sizes[i] = dimOf(dim.Size / int64(nout))
		}
	}
	for i := range outs {
		sh := append([]graph.Dim{}, x.Shape...)
		sh[a] = sizes[i]
		outs[i] = typeOf(x.Elem, sh)
	}
	return outs, nil
}

func prodSum(v []int64) int64 {
	var s int64
	for _, x := range v {
		s += x
	}
	return s
}

// toEnd is the bound past which a Slice end means "to the end" for a
// dimension of unknown size.
const toEnd = 1 << 30

func sliceRule(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
	x := inType(n, 0)
	if !x.HasShape {
		return []graph.Type{{Elem: x.Elem}}, nil
	}
	r := len(x.Shape)
	var args [4][]int64
	known := true
	if s.opset < 10 {
		for i, name := range []string{"starts", "ends", "axes"} {
			v, err := n.Ints(name, nil)
			if err != nil {
				return nil, err
			}
			args[i] = v
		}
	} else {
		for i := range args {
			if v := n.Input(1 + i); v != nil {
				var ok bool
				args[i], ok = s.ints(v)
				known = known && ok
			}
		}
	}
	starts, ends, axes, steps := args[0], args[1], args[2], args[3]
	out := append([]graph.Dim{}, x.Shape...)
	if !known {
		if axes == nil {
			return []graph.Type{typeOf(x.Elem, unknownDims(r))}, nil
		}
		ax, err := normAxes(axes, r)
		if err != nil {
			return nil, err
		}
		for _, a := range ax {
			out[a] = dimUnknown
		}
		return []graph.Type{typeOf(x.Elem, out)}, nil
	}
	if len(starts) != len(ends) || (axes != nil && len(axes) != len(starts)) || (steps != nil && len(steps) != len(starts)) {
		return nil, fmt.Errorf("%d starts, %d ends, %d axes and %d steps", len(starts), len(ends), len(axes), len(steps))
	}
	if axes == nil {
		for i := range starts {
			axes = append(axes, int64(i))
		}
	}
	ax, err := normAxes(axes, r)
	if err != nil {
		return nil, err
	}
	first := make([]int64, len(ax))
	for i, a := range ax {
		st := int64(1)
		if steps != nil {
			st = steps[i]
		}
		if st == 0 {
			return nil, fmt.Errorf("step 0 on axis %d", a)
		}
		out[a], first[i] = sliceDim(x.Shape[a], starts[i], ends[i], st)
	}
	if vals, ok := s.symOf(n.Input(0)); ok && r == 1 && len(ax) == 1 && out[0].Known() && int64(len(vals)) == x.Shape[0].Size {
		st := int64(1)
		if steps != nil {
			st = steps[0]
		}
		var sl []symVal
		for i, k := first[0], int64(0); k < out[0].Size; i, k = i+st, k+1 {
			sl = append(sl, vals[i])
		}
		if sl == nil {
			sl = []symVal{}
		}
		s.setSym(n.Output(0), sl)
	}
	return []graph.Type{typeOf(x.Elem, out)}, nil
}

// sliceDim is Slice's count along one axis (see sliceRange) and the first
// index taken; for a dimension of unknown size, whole-axis slices keep the
// dimension and the rest is unknown.
func sliceDim(d graph.Dim, s, e, st int64) (graph.Dim, int64) {
	if !d.Known() {
		if (st == 1 && (s == 0 || s <= -toEnd) && e >= toEnd) || (st == -1 && s == -1 && e <= -toEnd) {
			return d, 0
		}
		return dimUnknown, 0
	}
	first, cnt := sliceRange(d.Size, s, e, st)
	return dimOf(cnt), first
}

// shapeArg returns the dimensions a 1-D shape input gives (Expand,
// ConstantOfShape, Tile): from its tracked entries, or unknown ones when
// only its length is known; ok is false when even that is unknown.
func (s *shapeInf) shapeArg(v *graph.Value) ([]graph.Dim, bool) {
	if vals, ok := s.symOf(v); ok {
		out := make([]graph.Dim, len(vals))
		for i, x := range vals {
			out[i] = x.dim()
		}
		return out, true
	}
	if t := v.Type; t.HasShape && len(t.Shape) == 1 && t.Shape[0].Known() {
		return unknownDims(int(t.Shape[0].Size)), true
	}
	return nil, false
}

func expandRule(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
	x := inType(n, 0)
	sh, ok := s.shapeArg(n.Input(1))
	if !ok {
		return []graph.Type{{Elem: x.Elem}}, nil
	}
	t, err := broadcastTypes(x.Elem, x, typeOf(x.Elem, sh))
	return []graph.Type{t}, err
}

func tileRule(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
	x := inType(n, 0)
	if !x.HasShape {
		return []graph.Type{{Elem: x.Elem}}, nil
	}
	reps, ok := s.symOf(n.Input(1))
	if !ok {
		return []graph.Type{typeOf(x.Elem, unknownDims(len(x.Shape)))}, nil
	}
	if len(reps) != len(x.Shape) {
		return nil, fmt.Errorf("repeats has %d entries for an input of rank %d", len(reps), len(x.Shape))
	}
	out := make([]graph.Dim, len(reps))
	for i, r := range reps {
		d := x.Shape[i]
		switch {
		case r.known && r.v == 1:
			out[i] = d
		case r.known && d.Known():
			out[i] = dimOf(r.v * d.Size)
		case isOne(d):
			out[i] = r.dim()
		default:
			out[i] = dimUnknown
		}
	}
	return []graph.Type{typeOf(x.Elem, out)}, nil
}

func gatherRule(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
	x, idx := inType(n, 0), inType(n, 1)
	ax, err := n.Int("axis", 0)
	if err != nil {
		return nil, err
	}
	if !x.HasShape || !idx.HasShape {
		return []graph.Type{{Elem: x.Elem}}, nil
	}
	a, err := axis(ax, len(x.Shape))
	if err != nil {
		return nil, err
	}
	out := append(append(append([]graph.Dim{}, x.Shape[:a]...), idx.Shape...), x.Shape[a+1:]...)
	if vals, ok := s.symOf(n.Input(0)); ok && len(x.Shape) == 1 {
		if ii, ok := s.ints(n.Input(1)); ok && len(idx.Shape) <= 1 {
			var g []symVal
			for _, i := range ii {
				if i < 0 {
					i += int64(len(vals))
				}
				if i < 0 || i >= int64(len(vals)) {
					return nil, fmt.Errorf("index %d out of range for %d entries", i, len(vals))
				}
				g = append(g, vals[i])
			}
			if g == nil {
				g = []symVal{}
			}
			s.setSym(n.Output(0), g)
		}
	}
	return []graph.Type{typeOf(x.Elem, out)}, nil
}

func gatherNDRule(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
	x, idx := inType(n, 0), inType(n, 1)
	b, err := n.Int("batch_dims", 0)
	if err != nil {
		return nil, err
	}
	if !x.HasShape || !idx.HasShape || len(idx.Shape) == 0 || !idx.Shape[len(idx.Shape)-1].Known() {
		return []graph.Type{{Elem: x.Elem}}, nil
	}
	k := idx.Shape[len(idx.Shape)-1].Size
	if b < 0 || int(b+k) > len(x.Shape) {
		return nil, fmt.Errorf("index tuples of length %d for data %s (batch_dims %d)", k, x, b)
	}
	out := append(append([]graph.Dim{}, idx.Shape[:len(idx.Shape)-1]...), x.Shape[b+k:]...)
	return []graph.Type{typeOf(x.Elem, out)}, nil
}

func constantOfShapeRule(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
	elem := graph.Float
	v, err := n.Tensor("value")
	if err != nil {
		return nil, err
	}
	if v != nil {
		elem = graph.ElemTypeOf(v.DType())
	}
	sh, ok := s.shapeArg(n.Input(0))
	if !ok {
		return []graph.Type{{Elem: elem}}, nil
	}
	return []graph.Type{typeOf(elem, sh)}, nil
}

func rangeRule(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
	elem := inType(n, 0).Elem
	out := typeOf(elem, []graph.Dim{dimUnknown})
	st, ok1 := s.symOf(n.Input(0))
	lim, ok2 := s.symOf(n.Input(1))
	d, ok3 := s.symOf(n.Input(2))
	if ok1 && ok2 && ok3 && len(st) == 1 && len(lim) == 1 && len(d) == 1 &&
		st[0].known && st[0].v == 0 && d[0].known && d[0].v == 1 {
		out.Shape[0] = lim[0].dim() // Range(0, N, 1) has N entries
	}
	return []graph.Type{out}, nil
}

func oneHotRule(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
	ind := inType(n, 0)
	elem := inType(n, 2).Elem
	ax, err := n.Int("axis", -1)
	if err != nil {
		return nil, err
	}
	if !ind.HasShape {
		return []graph.Type{{Elem: elem}}, nil
	}
	a, err := axis(ax, len(ind.Shape)+1)
	if err != nil {
		return nil, err
	}
	depth := dimUnknown
	if t := s.constOf(n.Input(1)); t != nil && t.Numel() == 1 {
		depth = dimOf(int64(t.At()))
	}
	t := insertAxis(ind, a, depth)
	t.Elem = elem
	return []graph.Type{t}, nil
}
