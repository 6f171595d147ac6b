package exec

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/quanta-go/quanta/graph"
)

// Shape-inference rules of the neural-network operators other than
// convolutions and pools (shapes_conv.go): matrix products, Einsum,
// reductions, TopK, normalizations, Resize, Pad, the recurrent operators
// and the quantization operators.

func init() {
	shapeRules["Conv"] = func(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
		return convRule(n, false, inType(n, 0).Elem, 0, 1)
	}
	shapeRules["ConvInteger"] = func(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
		return convRule(n, false, graph.Int32, 0, 1)
	}
	shapeRules["QLinearConv"] = func(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
		return convRule(n, false, quantOutElem(n, 7), 0, 3)
	}
	shapeRules["ConvTranspose"] = func(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
		return convRule(n, true, inType(n, 0).Elem, 0, 1)
	}
	shapeRules["MaxPool"] = poolRule
	shapeRules["AveragePool"] = poolRule
	shapeRules["GlobalAveragePool"] = globalPoolRule
	shapeRules["GlobalMaxPool"] = globalPoolRule
	shapeRules["MatMul"] = func(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
		t, err := matmulType(inType(n, 0), inType(n, 1), inType(n, 0).Elem)
		return []graph.Type{t}, err
	}
	shapeRules["MatMulInteger"] = func(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
		t, err := matmulType(inType(n, 0), inType(n, 1), graph.Int32)
		return []graph.Type{t}, err
	}
	shapeRules["QLinearMatMul"] = func(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
		t, err := matmulType(inType(n, 0), inType(n, 3), quantOutElem(n, 7))
		return []graph.Type{t}, err
	}
	shapeRules["Gemm"] = gemmRule
	shapeRules["Einsum"] = einsumRule
	for _, op := range reduceOps {
		shapeRules[op] = reduceRule(op)
	}
	shapeRules["ArgMax"] = argRule
	shapeRules["ArgMin"] = argRule
	shapeRules["TopK"] = topKRule
	shapeRules["LayerNormalization"] = layerNormRule
	shapeRules["Dropout"] = func(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
		x := cloneType(inType(n, 0))
		mask := cloneType(x)
		if s.opset >= 10 {
			mask.Elem = graph.Bool
		}
		return []graph.Type{x, mask}, nil
	}
	shapeRules["Resize"] = resizeRule
	shapeRules["Upsample"] = resizeRule
	shapeRules["Pad"] = padRule
	for _, op := range []string{"RNN", "GRU", "LSTM"} {
		shapeRules[op] = rnnRule
	}
	shapeRules["QuantizeLinear"] = func(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
		t := cloneType(inType(n, 0))
		t.Elem = graph.Uint8
		od, err := n.Int("output_dtype", 0)
		if err != nil {
			return nil, err
		}
		if n.Input(2) != nil {
			t.Elem = inType(n, 2).Elem
		} else if od != 0 && s.opset >= 21 {
			t.Elem = graph.ElemType(od)
		}
		return []graph.Type{t}, nil
	}
	shapeRules["DequantizeLinear"] = func(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
		t := cloneType(inType(n, 0))
		t.Elem = graph.Float
		if e := inType(n, 1).Elem; s.opset >= 19 && (e == graph.Float16 || e == graph.BFloat16) {
			t.Elem = e
		}
		return []graph.Type{t}, nil
	}
	shapeRules["DynamicQuantizeLinear"] = func(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
		t := cloneType(inType(n, 0))
		t.Elem = graph.Uint8
		return []graph.Type{t, graph.TensorType(graph.Float), graph.TensorType(graph.Uint8)}, nil
	}
}

// quantOutElem is the element type of a QLinear* output: its zero
// point's, uint8 when absent.
func quantOutElem(n *graph.Node, zp int) graph.ElemType {
	if n.Input(zp) == nil {
		return graph.Uint8
	}
	return inType(n, zp).Elem
}

// matmulType is numpy's matmul of a and b.
func matmulType(a, b graph.Type, elem graph.ElemType) (graph.Type, error) {
	if !a.HasShape || !b.HasShape {
		return graph.Type{Elem: elem}, nil
	}
	if len(a.Shape) == 0 || len(b.Shape) == 0 {
		return graph.Type{}, fmt.Errorf("matmul of %s and %s: scalars", a, b)
	}
	as, bs := a.Shape, b.Shape
	a1, b1 := len(as) == 1, len(bs) == 1
	if a1 {
		as = []graph.Dim{dimOf(1), as[0]}
	}
	if b1 {
		bs = []graph.Dim{bs[0], dimOf(1)}
	}
	if _, err := unifyDim(as[len(as)-1], bs[len(bs)-2]); err != nil {
		return graph.Type{}, fmt.Errorf("matmul of %s and %s: %w", a, b, err)
	}
	batch, err := broadcastTypes(elem, typeOf(elem, as[:len(as)-2]), typeOf(elem, bs[:len(bs)-2]))
	if err != nil {
		return graph.Type{}, fmt.Errorf("matmul of %s and %s: %w", a, b, err)
	}
	out := batch.Shape
	if !a1 {
		out = append(out, as[len(as)-2])
	}
	if !b1 {
		out = append(out, bs[len(bs)-1])
	}
	return typeOf(elem, out), nil
}

func gemmRule(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
	a, b := inType(n, 0), inType(n, 1)
	ta, err := n.Int("transA", 0)
	if err != nil {
		return nil, err
	}
	tb, err := n.Int("transB", 0)
	if err != nil {
		return nil, err
	}
	out := unknownDims(2)
	if a.HasShape {
		if len(a.Shape) != 2 {
			return nil, fmt.Errorf("A is %s, want a matrix", a)
		}
		out[0] = a.Shape[ta&1]
	}
	if b.HasShape {
		if len(b.Shape) != 2 {
			return nil, fmt.Errorf("B is %s, want a matrix", b)
		}
		out[1] = b.Shape[1-tb&1]
	}
	if a.HasShape && b.HasShape {
		if _, err := unifyDim(a.Shape[1-ta&1], b.Shape[tb&1]); err != nil {
			return nil, fmt.Errorf("A %s and B %s: %w", a, b, err)
		}
	}
	return []graph.Type{typeOf(a.Elem, out)}, nil
}

func einsumRule(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
	eq, err := n.StringAttr("equation", "")
	if err != nil {
		return nil, err
	}
	elem := inType(n, 0).Elem
	eq = strings.ReplaceAll(eq, " ", "")
	lhs, rhs, explicit := strings.Cut(eq, "->")
	terms := strings.Split(lhs, ",")
	if len(terms) != len(n.Inputs) {
		return nil, fmt.Errorf("equation %q has %d operands for %d inputs", eq, len(terms), len(n.Inputs))
	}
	letters := map[rune]graph.Dim{}
	count := map[rune]int{}
	seen := map[rune]bool{}
	var ell []graph.Dim
	ellKnown := true
	for i, term := range terms {
		before, after, hasEll := strings.Cut(term, "...")
		t := inType(n, i)
		for _, c := range before + after {
			count[c]++
			if _, ok := letters[c]; !ok {
				letters[c] = dimUnknown
			}
		}
		label := func(c rune, d graph.Dim) error {
			if !seen[c] {
				seen[c] = true
				letters[c] = d
				return nil
			}
			var err error
			if letters[c], err = broadcastDim(letters[c], d); err != nil {
				return fmt.Errorf("label %c: %w", c, err)
			}
			return nil
		}
		if !t.HasShape {
			ellKnown = ellKnown && !hasEll
			continue
		}
		nl := len(before) + len(after)
		ne := len(t.Shape) - nl
		if ne < 0 || (!hasEll && ne != 0) {
			return nil, fmt.Errorf("operand %d %q does not fit %s", i, term, t)
		}
		dims := t.Shape
		for j, c := range before {
			if err := label(c, dims[j]); err != nil {
				return nil, err
			}
		}
		for j, c := range after {
			if err := label(c, dims[len(before)+ne+j]); err != nil {
				return nil, err
			}
		}
		if hasEll {
			bt, err := broadcastTypes(elem, typeOf(elem, ell), typeOf(elem, dims[len(before):len(before)+ne]))
			if err != nil {
				return nil, err
			}
			ell = bt.Shape
		}
	}
	if !explicit {
		var once []rune
		for c, k := range count {
			if k == 1 {
				once = append(once, c)
			}
		}
		sort.Slice(once, func(i, j int) bool { return once[i] < once[j] })
		rhs = string(once)
		if strings.Contains(lhs, "...") {
			rhs = "..." + rhs
		}
	}
	before, after, hasEll := strings.Cut(rhs, "...")
	if hasEll && !ellKnown {
		return []graph.Type{{Elem: elem}}, nil
	}
	var out []graph.Dim
	for _, c := range before {
		out = append(out, letters[c])
	}
	if hasEll {
		out = append(out, ell...)
	}
	for _, c := range after {
		out = append(out, letters[c])
	}
	if out == nil {
		out = []graph.Dim{}
	}
	return []graph.Type{typeOf(elem, out)}, nil
}

func reduceRule(op string) shapeRule {
	since := int64(18)
	if op == "ReduceSum" {
		since = 13
	}
	return func(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
		x := inType(n, 0)
		kd, err := n.Int("keepdims", 1)
		if err != nil {
			return nil, err
		}
		noop := int64(0)
		if s.opset >= since {
			if noop, err = n.Int("noop_with_empty_axes", 0); err != nil {
				return nil, err
			}
		}
		axes, ok, err := s.axesInput(n, 1, since)
		if err != nil {
			return nil, err
		}
		return reduceType(x, axes, ok, kd != 0, noop != 0)
	}
}

// reduceType is the type of a reduction of x over axes (all when empty;
// unknown when !known).
func reduceType(x graph.Type, axes []int64, known, keep, noop bool) ([]graph.Type, error) {
	if !x.HasShape {
		return []graph.Type{{Elem: x.Elem}}, nil
	}
	if !known {
		if !keep {
			return []graph.Type{{Elem: x.Elem}}, nil
		}
		out := unknownDims(len(x.Shape))
		for i, d := range x.Shape {
			if isOne(d) {
				out[i] = d
			}
		}
		return []graph.Type{typeOf(x.Elem, out)}, nil
	}
	if len(axes) == 0 && noop {
		return []graph.Type{cloneType(x)}, nil
	}
	red := make([]bool, len(x.Shape))
	if len(axes) == 0 {
		for i := range red {
			red[i] = true
		}
	}
	ax, err := normAxes(axes, len(x.Shape))
	if err != nil {
		return nil, err
	}
	for _, a := range ax {
		red[a] = true
	}
	out := []graph.Dim{}
	for i, d := range x.Shape {
		switch {
		case !red[i]:
			out = append(out, d)
		case keep:
			out = append(out, dimOf(1))
		}
	}
	return []graph.Type{typeOf(x.Elem, out)}, nil
}

func argRule(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
	ax, err := n.Int("axis", 0)
	if err != nil {
		return nil, err
	}
	kd, err := n.Int("keepdims", 1)
	if err != nil {
		return nil, err
	}
	ts, err := reduceType(inType(n, 0), []int64{ax}, true, kd != 0, false)
	if err != nil {
		return nil, err
	}
	ts[0].Elem = graph.Int64
	return ts, nil
}

func topKRule(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
	x := inType(n, 0)
	ax, err := n.Int("axis", -1)
	if err != nil {
		return nil, err
	}
	k := dimUnknown
	if s.opset < 10 {
		kv, err := n.Int("k", -1)
		if err != nil {
			return nil, err
		}
		k = dimOf(kv)
	} else if v, ok := s.symOf(n.Input(1)); ok && len(v) == 1 {
		k = v[0].dim()
	}
	if !x.HasShape {
		return []graph.Type{{Elem: x.Elem}, {Elem: graph.Int64}}, nil
	}
	a, err := axis(ax, len(x.Shape))
	if err != nil {
		return nil, err
	}
	if d := x.Shape[a]; k.Known() && d.Known() && k.Size > d.Size {
		return nil, fmt.Errorf("k %d is larger than axis %d of %s", k.Size, a, x)
	}
	out := append([]graph.Dim{}, x.Shape...)
	out[a] = k
	return []graph.Type{typeOf(x.Elem, out), typeOf(graph.Int64, append([]graph.Dim{}, out...))}, nil
}

func layerNormRule(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
	x := inType(n, 0)
	ax, err := n.Int("axis", -1)
	if err != nil {
		return nil, err
	}
	if !x.HasShape {
		return []graph.Type{{Elem: x.Elem}, {Elem: graph.Float}, {Elem: graph.Float}}, nil
	}
	a, err := axis(ax, len(x.Shape))
	if err != nil {
		return nil, err
	}
	st := append([]graph.Dim{}, x.Shape...)
	for i := a; i < len(st); i++ {
		st[i] = dimOf(1)
	}
	return []graph.Type{cloneType(x), typeOf(graph.Float, st), typeOf(graph.Float, append([]graph.Dim{}, st...))}, nil
}

func resizeRule(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
	x := inType(n, 0)
	if !x.HasShape {
		return []graph.Type{{Elem: x.Elem}}, nil
	}
	r := len(x.Shape)
	legacy := n.OpType == "Upsample" || s.opset < 11
	axesAttr := []int64(nil)
	keepAspect := "stretch"
	var err error
	if !legacy && s.opset >= 18 {
		if axesAttr, err = n.Ints("axes", nil); err != nil {
			return nil, err
		}
		if keepAspect, err = n.StringAttr("keep_aspect_ratio_policy", "stretch"); err != nil {
			return nil, err
		}
	}
	axes := make([]int, r)
	for i := range axes {
		axes[i] = i
	}
	if axesAttr != nil {
		if axes, err = normAxes(axesAttr, r); err != nil {
			return nil, err
		}
	}
	out := append([]graph.Dim{}, x.Shape...)
	unknown := func() ([]graph.Type, error) {
		for _, a := range axes {
			out[a] = dimUnknown
		}
		return []graph.Type{typeOf(x.Elem, out)}, nil
	}
	var scales []float64
	var sizes []symVal
	switch {
	case n.OpType == "Upsample" && s.opset < 9:
		fs, err := n.Floats("scales", nil)
		if err != nil {
			return nil, err
		}
		for _, f := range fs {
			scales = append(scales, float64(f))
		}
	default:
		si, zi := 1, -1
		if !legacy {
			si, zi = 2, 3
		}
		if v := n.Input(si); v != nil {
			if t := v.Type; !(t.HasShape && len(t.Shape) == 1 && t.Shape[0].Known() && t.Shape[0].Size == 0) {
				var ok bool
				if scales, ok = s.floats(v); !ok {
					return unknown()
				}
			}
		}
		if v := n.Input(zi); v != nil && len(scales) == 0 {
			var ok bool
			if sizes, ok = s.symOf(v); !ok {
				return unknown()
			}
		}
	}
	switch {
	case len(sizes) > 0:
		if len(sizes) != len(axes) {
			return nil, fmt.Errorf("sizes has %d values for %d axes", len(sizes), len(axes))
		}
		if keepAspect == "stretch" {
			for i, a := range axes {
				out[a] = sizes[i].dim()
			}
			break
		}
		var f float64
		for i, a := range axes {
			if !sizes[i].known || !x.Shape[a].Known() {
				return unknown()
			}
			v := float64(sizes[i].v) / float64(x.Shape[a].Size)
			if i == 0 || (keepAspect == "not_larger") == (v < f) {
				f = v
			}
		}
		for _, a := range axes {
			out[a] = dimOf(int64(math.Floor(f*float64(x.Shape[a].Size) + 0.5)))
		}
	case len(scales) > 0:
		if len(scales) != len(axes) {
			return nil, fmt.Errorf("scales has %d values for %d axes", len(scales), len(axes))
		}
		for i, a := range axes {
			d := x.Shape[a]
			switch {
			case scales[i] <= 0:
				return nil, fmt.Errorf("scales %v must be positive", scales)
			case d.Known():
				out[a] = dimOf(int64(math.Floor(float64(d.Size) * scales[i])))
			case scales[i] != 1:
				out[a] = dimUnknown
			}
		}
	default:
		return unknown()
	}
	return []graph.Type{typeOf(x.Elem, out)}, nil
}

func padRule(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
	x := inType(n, 0)
	if !x.HasShape {
		return []graph.Type{{Elem: x.Elem}}, nil
	}
	r := len(x.Shape)
	var pads []int64
	known := true
	var err error
	if s.opset < 11 {
		if pads, err = n.Ints("pads", nil); err != nil {
			return nil, err
		}
	} else {
		pads, known = s.ints(n.Input(1))
	}
	axes := make([]int, r)
	for i := range axes {
		axes[i] = i
	}
	if v := n.Input(3); v != nil && s.opset >= 18 {
		a, ok := s.ints(v)
		if !ok {
			return []graph.Type{typeOf(x.Elem, unknownDims(r))}, nil
		}
		if axes, err = normAxes(a, r); err != nil {
			return nil, err
		}
	}
	out := append([]graph.Dim{}, x.Shape...)
	if !known {
		for _, a := range axes {
			out[a] = dimUnknown
		}
		return []graph.Type{typeOf(x.Elem, out)}, nil
	}
	if len(pads) != 2*len(axes) {
		return nil, fmt.Errorf("pads has %d values for %d axes of %s", len(pads), len(axes), x)
	}
	for i, a := range axes {
		add := pads[i] + pads[i+len(axes)]
		d := x.Shape[a]
		switch {
		case d.Known():
			if d.Size+add < 0 {
				return nil, fmt.Errorf("pads %v crop more than dimension %d of %s", pads, a, x)
			}
			out[a] = dimOf(d.Size + add)
		case add != 0:
			out[a] = dimUnknown
		}
	}
	return []graph.Type{typeOf(x.Elem, out)}, nil
}

func rnnRule(s *shapeInf, n *graph.Node) ([]graph.Type, error) {
	x, r := inType(n, 0), inType(n, 2)
	hs, err := n.Int("hidden_size", 0)
	if err != nil {
		return nil, err
	}
	hidden := dimUnknown
	switch {
	case hs > 0:
		hidden = dimOf(hs)
	case r.HasShape && len(r.Shape) == 3:
		hidden = r.Shape[2]
	}
	dirName, err := n.StringAttr("direction", "forward")
	if err != nil {
		return nil, err
	}
	dirs := dimOf(1)
	if dirName == "bidirectional" {
		dirs = dimOf(2)
	}
	layout := int64(0)
	if s.opset >= 14 {
		if layout, err = n.Int("layout", 0); err != nil {
			return nil, err
		}
	}
	seq, batch := dimUnknown, dimUnknown
	if x.HasShape {
		if len(x.Shape) != 3 {
			return nil, fmt.Errorf("X is %s, want rank 3", x)
		}
		seq, batch = x.Shape[0], x.Shape[1]
		if layout != 0 {
			seq, batch = batch, seq
		}
	}
	y := []graph.Dim{seq, dirs, batch, hidden}
	h := []graph.Dim{dirs, batch, hidden}
	if layout != 0 {
		y = []graph.Dim{batch, seq, dirs, hidden}
		h = []graph.Dim{batch, dirs, hidden}
	}
	return []graph.Type{typeOf(x.Elem, y), typeOf(x.Elem, h), typeOf(x.Elem, append([]graph.Dim{}, h...))}, nil
}
