package passes

import (
	"errors"
	"fmt"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// The opset rewrites that add nodes: the softmax family's 2-D coercion,
// Upsample and Resize-10 into Resize 11+, and Scan-8 into a Loop.

func upSoftmax(u *upgrader, n *graph.Node) (bool, error) {
	if !u.crosses(13) {
		return false, nil
	}
	if len(n.Inputs) != 1 || n.Inputs[0] == nil || len(n.Outputs) != 1 || n.Outputs[0] == nil {
		return false, u.errorf(n, "want one input and one output")
	}
	axis, err := n.Int("axis", 1)
	if err != nil {
		return false, u.errorf(n, "%v", err)
	}
	if axis == -1 {
		return false, nil // the last axis in every opset
	}
	x, y := n.Inputs[0], n.Outputs[0]
	xt := u.typeOf(x)
	if r := xt.Rank(); r >= 0 {
		a := axis
		if a < 0 {
			a += int64(r)
		}
		if a < 0 || a >= int64(r) {
			return false, u.errorf(n, "axis %d is out of range for rank %d", axis, r)
		}
		ones := true // every dimension after axis is 1
		for _, d := range xt.Shape[a+1:] {
			ones = ones && d.Known() && d.Size == 1
		}
		if ones {
			if n.Has("axis") {
				return false, nil
			}
			n.Attrs["axis"] = graph.AInt(axis)
			return true, nil
		}
	}
	// Coerce to 2-D as the old operator did, normalize each row, and
	// restore the shape.
	g, b := n.Graph, base(n)
	elem := xt.Elem
	flatT := graph.Type{Elem: elem, HasShape: true, Shape: []graph.Dim{{Size: -1}, {Size: -1}}}
	if s, ok := xt.Static(); ok {
		a := int(axis)
		if a < 0 {
			a += len(s)
		}
		flatT = graph.TensorType(elem, int64(prod(s[:a])), int64(prod(s[a:])))
	}
	flat := u.value(g, b+"_flat", flatT)
	u.addNode(g, b+"_Flatten", "Flatten", []*graph.Value{x}, []*graph.Value{flat},
		map[string]*graph.Attr{"axis": graph.AInt(axis)})
	y2 := u.value(g, b+"_rows", flatT)
	y2.Producer = n
	n.Inputs[0], n.Outputs[0] = flat, y2
	n.Attrs["axis"] = graph.AInt(1)
	shape := u.value(g, b+"_shape", graph.Type{Elem: graph.Int64, HasShape: true, Shape: []graph.Dim{{Size: int64(xt.Rank())}}})
	if xt.Rank() < 0 {
		shape.Type.Shape[0].Size = -1
	}
	u.addNode(g, b+"_Shape", "Shape", []*graph.Value{x}, []*graph.Value{shape}, nil)
	attrs := map[string]*graph.Attr{}
	if u.to >= 14 {
		attrs["allowzero"] = graph.AInt(1) // Shape(x) holds x's real dims, zeros included
	}
	u.addNode(g, b+"_Reshape", "Reshape", []*graph.Value{y2, shape}, []*graph.Value{y}, attrs)
	return true, nil
}

func prod(s []int) int {
	p := 1
	for _, d := range s {
		p *= d
	}
	return p
}

// upUpsample turns Upsample (7: attribute scales; 9: input scales) into
// Resize.
func upUpsample(u *upgrader, n *graph.Node) (bool, error) {
	if u.to < 10 {
		return false, nil
	}
	if len(n.Inputs) == 0 || n.Inputs[0] == nil || len(n.Outputs) != 1 {
		return false, u.errorf(n, "want one output and input X")
	}
	if n.Has("scales") {
		s, err := n.Floats("scales", nil)
		if err != nil {
			return false, u.errorf(n, "%v", err)
		}
		if len(n.Inputs) != 1 {
			return false, u.errorf(n, "has both attribute scales and a scales input")
		}
		n.Inputs = append(n.Inputs, u.constant(n, "scales", tensor.FromFloat32(append([]float32(nil), s...), len(s))))
		delete(n.Attrs, "scales")
	}
	if len(n.Inputs) != 2 || n.Inputs[1] == nil {
		return false, u.errorf(n, "want inputs X and scales")
	}
	mode, err := n.StringAttr("mode", "nearest")
	if err != nil {
		return false, u.errorf(n, "%v", err)
	}
	switch mode {
	case "nearest", "linear":
	case "bilinear":
		n.Attrs["mode"] = graph.AString("linear")
	default:
		return false, u.errorf(n, "mode %q, want nearest, linear or bilinear", mode)
	}
	n.OpType = "Resize"
	if u.to >= 11 {
		if err := u.resize10to11(n); err != nil {
			return false, err
		}
	}
	return true, nil
}

func upResize(u *upgrader, n *graph.Node) (bool, error) {
	if u.from == 10 && u.to >= 11 {
		if len(n.Inputs) != 2 || n.Inputs[0] == nil || n.Inputs[1] == nil || len(n.Outputs) != 1 {
			return false, u.errorf(n, "Resize-10 takes inputs X and scales and has one output")
		}
		return true, u.resize10to11(n)
	}
	if !(u.from >= 11 && u.crosses(13)) {
		return false, nil
	}
	ctm, err := n.StringAttr("coordinate_transformation_mode", "half_pixel")
	if err != nil {
		return false, u.errorf(n, "%v", err)
	}
	if ctm != "tf_half_pixel_for_nn" {
		return false, nil
	}
	// x = (j+0.5)/s. half_pixel gives x-0.5, exactly (scales are not
	// tiny): floor(x) = round_prefer_ceil(x-0.5) and round_prefer_floor(x)
	// = ceil(x-0.5).
	mode, err1 := n.StringAttr("mode", "nearest")
	nm, err2 := n.StringAttr("nearest_mode", "round_prefer_floor")
	if err := errors.Join(err1, err2); err != nil {
		return false, u.errorf(n, "%v", err)
	}
	repl := map[string]string{"floor": "round_prefer_ceil", "round_prefer_floor": "ceil"}[nm]
	if mode != "nearest" || repl == "" {
		return false, u.errorf(n, "coordinate_transformation_mode tf_half_pixel_for_nn with mode %s, nearest_mode %s has no equivalent from opset 13 on", mode, nm)
	}
	n.Attrs["coordinate_transformation_mode"] = graph.AString("half_pixel")
	n.Attrs["nearest_mode"] = graph.AString(repl)
	return true, nil
}

// resize10to11 turns Resize(X, scales) with the opset-10 meaning
// (asymmetric coordinates; nearest: floor when upsampling, ceiling when
// downsampling) into Resize 11+ form.
func (u *upgrader) resize10to11(n *graph.Node) error {
	x, scales := n.Inputs[0], n.Inputs[1]
	roi := func(m *graph.Node) *graph.Value {
		if u.to >= 13 {
			return nil
		}
		return u.constant(m, "roi", tensor.FromFloat32([]float32{}, 0))
	}
	n.Inputs = []*graph.Value{x, roi(n), scales}
	n.Attrs["coordinate_transformation_mode"] = graph.AString("asymmetric")
	mode, _ := n.StringAttr("mode", "nearest")
	if mode != "nearest" {
		return nil // linear: the same taps with asymmetric coordinates
	}
	up, down := true, true
	if s := constOf(scales); s != nil {
		if s.DType() != tensor.Float32 {
			return u.errorf(n, "scales are %s, want float32", s.DType())
		}
		for _, v := range s.F32() {
			up = up && v >= 1
			down = down && v <= 1
		}
		if up || down {
			n.Attrs["nearest_mode"] = graph.AString(map[bool]string{true: "floor", false: "ceil"}[up])
			return nil
		}
	}
	// Some axes (or, when scales are not constant, possibly some) shrink:
	// upsample with max(s, 1) and floor, then downsample with min(s, 1)
	// and ceiling. Nearest resizing gathers along each axis independently,
	// so the two steps give exactly the one-step result.
	g, b := n.Graph, base(n)
	var upS, downS *graph.Value
	sT := u.typeOf(scales)
	if s := constOf(scales); s != nil {
		uv, dv := make([]float32, s.Numel()), make([]float32, s.Numel())
		for i, v := range s.F32() {
			uv[i], dv[i] = max(v, 1), min(v, 1)
		}
		upS = u.constant(n, "scales_up", tensor.FromFloat32(uv, len(uv)))
		downS = u.constant(n, "scales_down", tensor.FromFloat32(dv, len(dv)))
	} else {
		one := u.constant(n, "one", tensor.Scalar(1))
		upS, downS = u.value(g, b+"_scales_up", sT), u.value(g, b+"_scales_down", sT)
		u.addNode(g, b+"_Max", "Max", []*graph.Value{scales, one}, []*graph.Value{upS}, nil)
		u.addNode(g, b+"_Min", "Min", []*graph.Value{scales, one}, []*graph.Value{downS}, nil)
	}
	y := n.Outputs[0]
	mid := u.value(g, b+"_up", graph.Type{Elem: u.typeOf(x).Elem})
	if r := u.typeOf(x).Rank(); r >= 0 {
		mid.Type.HasShape, mid.Type.Shape = true, make([]graph.Dim, r)
		for i := range mid.Type.Shape {
			mid.Type.Shape[i].Size = -1
		}
	}
	mid.Producer = n
	n.Inputs[2], n.Outputs[0] = upS, mid
	n.Attrs["nearest_mode"] = graph.AString("floor")
	dn := u.addNode(g, b+"_down", "Resize", nil, []*graph.Value{y}, map[string]*graph.Attr{
		"mode":                           graph.AString("nearest"),
		"coordinate_transformation_mode": graph.AString("asymmetric"),
		"nearest_mode":                   graph.AString("ceil"),
	})
	dn.Inputs = []*graph.Value{mid, roi(dn), downS}
	return nil
}

// upScan turns Scan-8 (a leading sequence_lens input, every input and
// output with a batch axis 0) into a Loop over the batch whose body runs
// the node, now a Scan-9, on one batch entry.
func upScan(u *upgrader, n *graph.Node) (bool, error) {
	if !(u.from == 8 && u.to >= 9) {
		return false, nil
	}
	if len(n.Inputs) < 2 {
		return false, u.errorf(n, "Scan-8 takes sequence_lens and at least one more input")
	}
	if n.Inputs[0] != nil {
		return false, u.errorf(n, "sequence_lens has no equivalent from opset 9 on")
	}
	for i, in := range n.Inputs[1:] {
		if in == nil {
			return false, u.errorf(n, "input %d is omitted", i+1)
		}
	}
	g, b := n.Graph, base(n)
	ins := n.Inputs[1:]
	// The trip count: the batch size, Shape(first input)[0].
	shape := u.value(g, b+"_batch_shape", graph.Type{Elem: graph.Int64, HasShape: true, Shape: []graph.Dim{{Size: -1}}})
	u.addNode(g, b+"_Shape", "Shape", []*graph.Value{ins[0]}, []*graph.Value{shape}, nil)
	batch := u.value(g, b+"_batch", graph.TensorType(graph.Int64))
	u.addNode(g, b+"_batch_Gather", "Gather", []*graph.Value{shape, u.constant(n, "zero", tensor.FromInt64([]int64{0}).Reshape())},
		[]*graph.Value{batch}, map[string]*graph.Attr{"axis": graph.AInt(0)})

	body := graph.New(b + "_batch_body")
	iter := &graph.Value{Name: u.unique(b + "_batch_index"), Type: graph.TensorType(graph.Int64), Graph: body}
	cond := &graph.Value{Name: u.unique(b + "_cond"), Type: graph.TensorType(graph.Bool), Graph: body}
	body.Inputs = []*graph.Value{iter, cond}
	condOut := u.value(body, b+"_cond_out", graph.TensorType(graph.Bool))
	u.addNode(body, b+"_cond_Identity", "Identity", []*graph.Value{cond}, []*graph.Value{condOut}, nil)
	body.Outputs = []*graph.Value{condOut}
	loopIns := []*graph.Value{batch, nil}
	var carriedOut *graph.Value
	if u.to < 11 {
		// Loop before 11 needs a loop-carried value: carry the batch size.
		carried := &graph.Value{Name: u.unique(b + "_batch_carried"), Type: graph.TensorType(graph.Int64), Graph: body}
		body.Inputs = append(body.Inputs, carried)
		next := u.value(body, b+"_batch_carried_out", graph.TensorType(graph.Int64))
		u.addNode(body, b+"_carried_Identity", "Identity", []*graph.Value{carried}, []*graph.Value{next}, nil)
		body.Outputs = append(body.Outputs, next)
		loopIns = append(loopIns, batch)
		carriedOut = u.value(g, b+"_batch_final", graph.TensorType(graph.Int64))
	}
	entries := make([]*graph.Value, len(ins))
	for i, in := range ins {
		entries[i] = u.value(body, in.Name+"_entry", dropAxis0(u.typeOf(in)))
		u.addNode(body, b+"_Gather_"+fmt.Sprint(i), "Gather", []*graph.Value{in, iter}, []*graph.Value{entries[i]},
			map[string]*graph.Attr{"axis": graph.AInt(0)})
	}
	outs := n.Outputs
	inner := make([]*graph.Value, len(outs))
	for i, o := range outs {
		if o == nil {
			continue
		}
		inner[i] = u.value(body, o.Name+"_entry", dropAxis0(u.typeOf(o)))
		inner[i].Producer = n
	}
	// Move the node into the body.
	keep := g.Nodes[:0:0]
	for _, m := range g.Nodes {
		if m != n {
			keep = append(keep, m)
		}
	}
	g.Nodes = keep
	n.Graph, n.Inputs, n.Outputs = body, entries, inner
	body.Nodes = append(body.Nodes, n)
	if d := n.Attrs["directions"]; d != nil {
		n.Attrs["scan_input_directions"] = d
		delete(n.Attrs, "directions")
	}
	loopOuts := make([]*graph.Value, len(outs))
	for i, o := range outs {
		if o == nil {
			// Every Scan output is a Loop scan output: keep the slot.
			o = u.value(g, b+"_unused_"+fmt.Sprint(i), graph.Type{})
			inner[i] = u.value(body, b+"_unused_entry_"+fmt.Sprint(i), graph.Type{})
			inner[i].Producer = n
			n.Outputs[i] = inner[i]
		}
		loopOuts[i] = o
		body.Outputs = append(body.Outputs, inner[i])
	}
	if carriedOut != nil {
		loopOuts = append([]*graph.Value{carriedOut}, loopOuts...)
	}
	loop := u.addNode(g, b+"_batch_Loop", "Loop", loopIns, loopOuts,
		map[string]*graph.Attr{"body": graph.AGraph(body)})
	body.Parent = loop
	return true, nil
}

// dropAxis0 returns t without its first dimension.
func dropAxis0(t graph.Type) graph.Type {
	if t.HasShape && len(t.Shape) > 0 {
		t.Shape = append([]graph.Dim(nil), t.Shape[1:]...)
	}
	return t
}
