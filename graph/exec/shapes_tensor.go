package exec

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/graph"
)

// Shape-inference rules of the elementwise operators and of the operators
// that rearrange tensors (ops_elementwise.go, ops_shape.go, ops_tensor.go),
// with the shape-tensor tracking of Shape, Gather, Slice, Squeeze,
// Unsqueeze, Concat, Reshape, Cast and arithmetic.

func init() {
	for _, op := range []string{"Relu", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Reciprocal", "Erf", "Floor", "Ceil",
		"Round", "Sin", "Cos", "HardSwish", "Softplus", "Neg", "Abs", "Sign", "LeakyRelu", "Elu", "HardSigmoid", "Gelu",
		"Softmax", "LogSoftmax", "Hardmax", "Clip", "LRN", "InstanceNormalization", "BatchNormalization", "CumSum",
		"Trilu", "ScatterND", "ScatterElements", "Scatter"} {
		shapeRules[op] = sameAsInput
	}
	for _, op := range []string{"Add", "Sub", "Mul", "Div", "Pow"} {
		shapeRules[op] = arithRule(op)
	}
	for _, op := range []string{"Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor"} {
		shapeRules[op] = func(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
			t, err := broadcastTypes(graph.Bool, inType(n, 0), inType(n, 1))
			return []graph.Type{t}, err
		}
	}
	for _, op := range []string{"Max", "Min", "Sum", "Mean"} {
		shapeRules[op] = func(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
			ts := make([]graph.Type, len(n.Inputs))
			for i := range ts {
				ts[i] = inType(n, i)
			}
			t, err := broadcastTypes(inType(n, 0).Elem, ts...)
			return []graph.Type{t}, err
		}
	}
	shapeRules["Where"] = func(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
		elem := inType(n, 1).Elem
		if elem == graph.Undefined {
			elem = inType(n, 2).Elem
		}
		t, err := broadcastTypes(elem, inType(n, 0), inType(n, 1), inType(n, 2))
		return []graph.Type{t}, err
	}
	shapeRules["Not"] = func(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
		t := cloneType(inType(n, 0))
		t.Elem = graph.Bool
		return []graph.Type{t}, nil
	}
	shapeRules["Identity"] = passSym(func(s *shapeInf, n *graph.Node) graph.Type { return cloneType(inType(n, 0)) })
	shapeRules["Cast"] = passSym(func(s *shapeInf, n *graph.Node) graph.Type {
		t := cloneType(inType(n, 0))
		to, err := n.Int("to", 0)
		t.Elem = graph.Undefined
		if err == nil {
			t.Elem = graph.ElemType(to)
		}
		return t
	})
	shapeRules["CastLike"] = passSym(func(s *shapeInf, n *graph.Node) graph.Type {
		t := cloneType(inType(n, 0))
		t.Elem = inType(n, 1).Elem
		return t
	})
	shapeRules["Constant"] = func(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
		t, err := ConstantValue(n)
		if err != nil {
			return nil, nil
		}
		return []graph.Type{{Elem: graph.Undefined, HasShape: true, Shape: graph.TypeOf(t).Shape}}, nil
	}
	shapeRules["Shape"] = shapeOfRule
	shapeRules["Size"] = sizeRule
	shapeRules["Reshape"] = reshapeRule
	shapeRules["Flatten"] = flattenRule
	shapeRules["Squeeze"] = squeezeRule
	shapeRules["Unsqueeze"] = unsqueezeRule
	shapeRules["Transpose"] = transposeRule
	shapeRules["Concat"] = concatRule
	shapeRules["Split"] = splitRule
	shapeRules["Slice"] = sliceRule
	shapeRules["Expand"] = expandRule
	shapeRules["Tile"] = tileRule
	shapeRules["Gather"] = gatherRule
	shapeRules["GatherElements"] = func(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
		t := cloneType(inType(n, 1))
		t.Elem = inType(n, 0).Elem
		return []graph.Type{t}, nil
	}
	shapeRules["GatherND"] = gatherNDRule
	shapeRules["ConstantOfShape"] = constantOfShapeRule
	shapeRules["Range"] = rangeRule
	shapeRules["NonZero"] = func(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
		r := dimUnknown
		if x := inType(n, 0); x.HasShape {
			r = dimOf(int64(max(1, len(x.Shape))))
		}
		return []graph.Type{typeOf(graph.Int64, []graph.Dim{r, dimUnknown})}, nil
	}
	shapeRules["OneHot"] = oneHotRule
}

// sameAsInput gives output 0 the type of input 0.
func sameAsInput(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
	return []graph.Type{cloneType(inType(n, 0))}, nil
}

// passSym is a one-output rule whose shape-tensor entries are those of
// input 0.
func passSym(f func(s *shapeInf, n *graph.Node) graph.Type) shapeRule {
	return func(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
		if x, ok := s.symOf(n.Input(0)); ok {
			s.setSym(n.Output(0), x)
		}
		return []graph.Type{f(s, n)}, nil
	}
}

// arithRule broadcasts and tracks shape-tensor arithmetic.
func arithRule(op string) shapeRule {
	return func(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
		a, b := inType(n, 0), inType(n, 1)
		elem := a.Elem
		if elem == graph.Undefined {
			elem = b.Elem
		}
		t, err := broadcastTypes(elem, a, b)
		if err != nil || !t.HasShape || len(t.Shape) > 1 || op == "Pow" {
			return []graph.Type{t}, err
		}
		x, okx := s.symOf(n.Input(0))
		y, oky := s.symOf(n.Input(1))
		if !okx || !oky || (len(x) != len(y) && len(x) != 1 && len(y) != 1) {
			return []graph.Type{t}, nil
		}
		out := make([]symVal, max(len(x), len(y)))
		isInt := elem != graph.Float && elem != graph.Float16 && elem != graph.Double && elem != graph.BFloat16
		for i := range out {
			out[i] = symArith(op, x[min(i, len(x)-1)], y[min(i, len(y)-1)], isInt)
		}
		s.setSym(n.Output(0), out)
		return []graph.Type{t}, nil
	}
}

// symArith computes one entry of a shape-tensor Add, Sub, Mul or Div.
func symArith(op string, a, b symVal, isInt bool) symVal {
	if a.known && b.known {
		switch op {
		case "Add":
			return symKnown(a.v + b.v)
		case "Sub":
			return symKnown(a.v - b.v)
		case "Mul":
			return symKnown(a.v * b.v)
		case "Div":
			if b.v != 0 && (isInt || a.v%b.v == 0) {
				return symKnown(a.v / b.v)
			}
		}
		return symVal{}
	}
	switch {
	case (op == "Add" || op == "Sub") && b.known && b.v == 0,
		(op == "Mul" || op == "Div") && b.known && b.v == 1:
		return a
	case op == "Add" && a.known && a.v == 0, op == "Mul" && a.known && a.v == 1:
		return b
	case op == "Mul" && ((a.known && a.v == 0) || (b.known && b.v == 0)):
		return symKnown(0)
	}
	return symVal{}
}

func shapeOfRule(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
	x := inType(n, 0)
	start, err := n.Int("start", 0)
	if err != nil {
		return nil, err
	}
	end, err := n.Int("end", math.MaxInt64)
	if err != nil {
		return nil, err
	}
	if !x.HasShape {
		return []graph.Type{typeOf(graph.Int64, []graph.Dim{dimUnknown})}, nil
	}
	r := int64(len(x.Shape))
	clamp := func(v int64) int64 {
		if v < 0 {
			v += r
		}
		return max(0, min(v, r))
	}
	lo, hi := clamp(start), clamp(end)
	vals := []symVal{}
	for i := lo; i < hi; i++ {
		vals = append(vals, symOfDim(x.Shape[i]))
	}
	s.setSym(n.Output(0), vals)
	return []graph.Type{graph.TensorType(graph.Int64, int64(len(vals)))}, nil
}

func sizeRule(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
	if x := inType(n, 0); x.HasShape {
		if d := productOf(x.Shape).dim(); d.Known() || d.Param != "" {
			s.setSym(n.Output(0), []symVal{symOfDim(d)})
		}
	}
	return []graph.Type{graph.TensorType(graph.Int64)}, nil
}

func reshapeRule(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
	x := inType(n, 0)
	var allowZero int64
	var err error
	if s.opset >= 14 {
		if allowZero, err = n.Int("allowzero", 0); err != nil {
			return nil, err
		}
	}
	var spec []symVal
	if s.opset < 5 {
		sh, err := n.Ints("shape", nil)
		if err != nil {
			return nil, err
		}
		for _, v := range sh {
			spec = append(spec, symKnown(v))
		}
	} else {
		var ok bool
		if spec, ok = s.symOf(n.Input(1)); !ok {
			st := inType(n, 1)
			if st.HasShape && len(st.Shape) == 1 && st.Shape[0].Known() {
				return []graph.Type{typeOf(x.Elem, unknownDims(int(st.Shape[0].Size)))}, nil
			}
			return []graph.Type{{Elem: x.Elem}}, nil
		}
	}
	out := make([]graph.Dim, len(spec))
	infer := -1
	for i, e := range spec {
		switch {
		case e.known && e.v == -1:
			if infer >= 0 {
				return nil, fmt.Errorf("shape has more than one -1")
			}
			infer = i
		case e.known && e.v == 0 && allowZero == 0:
			out[i] = dimUnknown
			if x.HasShape {
				if i >= len(x.Shape) {
					return nil, fmt.Errorf("shape copies dimension %d of an input of type %s", i, x)
				}
				out[i] = x.Shape[i]
			}
		case e.known && e.v < 0:
			return nil, fmt.Errorf("shape has invalid entry %d", e.v)
		default:
			out[i] = e.dim()
		}
	}
	if infer >= 0 {
		out[infer] = dimUnknown
		if x.HasShape {
			others := append(append([]graph.Dim{}, out[:infer]...), out[infer+1:]...)
			out[infer] = productOf(x.Shape).div(productOf(others))
		}
	}
	if xs, ok := staticDims(x); ok {
		if os, ok := staticDims(typeOf(x.Elem, out)); ok && prod(xs) != prod(os) {
			return nil, fmt.Errorf("cannot reshape %s to %s", x, typeOf(x.Elem, out))
		}
	}
	if vals, ok := s.symOf(n.Input(0)); ok && len(out) <= 1 {
		s.setSym(n.Output(0), vals)
	}
	return []graph.Type{typeOf(x.Elem, out)}, nil
}

func staticDims(t graph.Type) ([]int64, bool) {
	if !t.HasShape {
		return nil, false
	}
	out := make([]int64, len(t.Shape))
	for i, d := range t.Shape {
		if !d.Known() {
			return nil, false
		}
		out[i] = d.Size
	}
	return out, true
}

func prod(v []int64) int64 {
	p := int64(1)
	for _, x := range v {
		p *= x
	}
	return p
}

func flattenRule(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
	x := inType(n, 0)
	ax, err := n.Int("axis", 1)
	if err != nil {
		return nil, err
	}
	if !x.HasShape {
		return []graph.Type{typeOf(x.Elem, unknownDims(2))}, nil
	}
	r := int64(len(x.Shape))
	if ax < -r || ax > r {
		return nil, fmt.Errorf("axis %d out of range for rank %d", ax, r)
	}
	if ax < 0 {
		ax += r
	}
	return []graph.Type{typeOf(x.Elem, []graph.Dim{productOf(x.Shape[:ax]).dim(), productOf(x.Shape[ax:]).dim()})}, nil
}

func squeezeRule(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
	x := inType(n, 0)
	axes, ok, err := s.axesInput(n, 1, 13)
	if err != nil || !ok || !x.HasShape {
		return []graph.Type{{Elem: x.Elem}}, err
	}
	drop := make([]bool, len(x.Shape))
	if axes == nil {
		for i, d := range x.Shape {
			if !d.Known() {
				return []graph.Type{{Elem: x.Elem}}, nil
			}
			drop[i] = d.Size == 1
		}
	}
	ax, err := normAxes(axes, len(x.Shape))
	if err != nil {
		return nil, err
	}
	for _, a := range ax {
		if d := x.Shape[a]; d.Known() && d.Size != 1 {
			return nil, fmt.Errorf("cannot squeeze axis %d of %s", a, x)
		}
		drop[a] = true
	}
	out := []graph.Dim{}
	for i, d := range x.Shape {
		if !drop[i] {
			out = append(out, d)
		}
	}
	if vals, ok := s.symOf(n.Input(0)); ok {
		s.setSym(n.Output(0), vals)
	}
	return []graph.Type{typeOf(x.Elem, out)}, nil
}

func unsqueezeRule(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
	x := inType(n, 0)
	axes, ok, err := s.axesInput(n, 1, 13)
	if err != nil || !ok || axes == nil || !x.HasShape {
		return []graph.Type{{Elem: x.Elem}}, err
	}
	out, err := unsqueezeDims(x.Shape, axes, dimOf(1))
	if err != nil {
		return nil, err
	}
	if vals, ok := s.symOf(n.Input(0)); ok {
		s.setSym(n.Output(0), vals)
	}
	return []graph.Type{typeOf(x.Elem, out)}, nil
}

func transposeRule(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
	x := inType(n, 0)
	perm, err := n.Ints("perm", nil)
	if err != nil || !x.HasShape {
		return []graph.Type{{Elem: x.Elem}}, err
	}
	r := len(x.Shape)
	if perm == nil {
		for i := r - 1; i >= 0; i-- {
			perm = append(perm, int64(i))
		}
	}
	if len(perm) != r {
		return nil, fmt.Errorf("perm %v for an input of rank %d", perm, r)
	}
	p, err := normAxes(perm, r)
	if err != nil {
		return nil, err
	}
	out := make([]graph.Dim, r)
	for i, a := range p {
		out[i] = x.Shape[a]
	}
	return []graph.Type{typeOf(x.Elem, out)}, nil
}

func concatRule(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
	def := int64(math.MinInt64)
	if s.opset < 4 {
		def = 1
	}
	ax, err := n.Int("axis", def)
	if err != nil {
		return nil, err
	}
	elem := graph.Undefined
	var shape []graph.Dim
	known := true
	for i := range n.Inputs {
		t := inType(n, i)
		if elem == graph.Undefined {
			elem = t.Elem
		}
		if !t.HasShape {
			known = false
			continue
		}
		if shape == nil {
			shape = append([]graph.Dim{}, t.Shape...)
			continue
		}
		if len(t.Shape) != len(shape) {
			return nil, fmt.Errorf("input %d has rank %d, another %d", i, len(t.Shape), len(shape))
		}
	}
	if !known || shape == nil {
		if shape != nil {
			return []graph.Type{typeOf(elem, unknownDims(len(shape)))}, nil
		}
		return []graph.Type{{Elem: elem}}, nil
	}
	a, err := axis(ax, len(shape))
	if err != nil {
		return nil, err
	}
	var parts []graph.Dim
	for i := range n.Inputs {
		t := inType(n, i)
		for d := range shape {
			if d == a {
				continue
			}
			if shape[d], err = unifyDim(shape[d], t.Shape[d]); err != nil {
				return nil, fmt.Errorf("input %d: dimension %d: %w", i, d, err)
			}
		}
		parts = append(parts, t.Shape[a])
	}
	shape[a] = sumDims(parts)
	if len(shape) == 1 && a == 0 {
		var vals []symVal
		for _, v := range n.Inputs {
			x, ok := s.symOf(v)
			if !ok {
				vals = nil
				break
			}
			vals = append(vals, x...)
		}
		if vals != nil {
			s.setSym(n.Output(0), vals)
		}
	}
	return []graph.Type{typeOf(elem, shape)}, nil
}

// sumDims adds dimensions: known when all are, the one non-zero term when
// the others are known zeros, else unknown.
func sumDims(ds []graph.Dim) graph.Dim {
	var sum int64
	var other []graph.Dim
	for _, d := range ds {
		if d.Known() {
			sum += d.Size
		} else {
			other = append(other, d)
		}
	}
	switch {
	case len(other) == 0:
		return dimOf(sum)
	case len(other) == 1 && sum == 0:
		return other[0]
	}
	return dimUnknown
}
