package exec

import (
	"errors"
	"fmt"
	"sort"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// Shape inference.
//
// InferShapes walks a model's main graph and its subgraphs in topological
// order and gives every node output the most specific type that follows
// from the graph's inputs, initializers and constants: element type and
// shape, with symbolic dimensions (graph.Dim.Param) carried by name — an
// input dimension "N" stays "N" through Relu, Conv's batch axis, MatMul's
// rows or a Reshape whose -1 cancels against it — and unknown dimensions
// where the size cannot be known without running the model.
//
// Three kinds of knowledge feed the per-operator rules:
//
//   - types: the inputs' element types and (possibly partial) shapes;
//   - constants: initializers, Constant nodes, and every node whose inputs
//     are all constant, computed by the operator's own kernel exactly as
//     Compile folds it (so opset differences are the executor's);
//   - shape tensors: small integer tensors of rank 0 or 1 whose entries are
//     tracked as known values, symbolic dimensions or unknown, starting at
//     Shape and carried through Gather, Slice, Squeeze, Unsqueeze, Concat,
//     Cast, Reshape, Identity and simple arithmetic, so the
//     Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains of exported
//     PyTorch models give known or symbolic shapes. A shape tensor whose
//     entries all become known is turned into a constant, so any operator
//     can fold on it from then on.
//
// A declared type (an importer's value_info, a graph output's type, a
// subgraph input's type) is never contradicted: the inferred type is merged
// into it (an unknown or symbolic declared dimension takes an inferred
// known size, an undefined element type the inferred one), and a conflict —
// another element type, another rank, another known size — is an error
// naming the node and the value.

// Report summarises a shape-inference run over every node output of a
// model, subgraphs included.
type Report struct {
	// Values is the number of node outputs.
	Values int
	// Exact counts outputs whose shape is fully known.
	Exact int
	// Symbolic counts outputs of known rank whose dimensions are all
	// known or symbolic, at least one symbolic.
	Symbolic int
	// Partial counts outputs of known rank with at least one unknown
	// dimension.
	Partial int
	// Unknown counts outputs whose rank is unknown.
	Unknown int
	// NoElem counts outputs whose element type is unknown.
	NoElem int
	// PartialByOp and UnknownByOp count, per op type ("domain.OpType"
	// outside ONNX's default domain), the outputs counted in Partial and
	// Unknown.
	PartialByOp, UnknownByOp map[string]int
}

// String formats the counts on one line, followed by the op types that
// left outputs partial or unknown.
func (r Report) String() string {
	s := fmt.Sprintf("%d values: %d exact, %d symbolic, %d partial, %d unknown rank, %d unknown element type",
		r.Values, r.Exact, r.Symbolic, r.Partial, r.Unknown, r.NoElem)
	for _, m := range []struct {
		what string
		c    map[string]int
	}{{"partial", r.PartialByOp}, {"unknown", r.UnknownByOp}} {
		if len(m.c) == 0 {
			continue
		}
		keys := make([]string, 0, len(m.c))
		for k := range m.c {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		s += "; " + m.what + ":"
		for _, k := range keys {
			s += fmt.Sprintf(" %s=%d", k, m.c[k])
		}
	}
	return s
}

// InferShapes infers the type of every node output of m (main graph and
// subgraphs) and stores it in Value.Type, merged with the declared type.
// It verifies and sorts the graph first (as Compile does). Operators it
// has no rule for, or whose rule cannot tell, keep their declared type (or
// an unknown one). The error of a conflict names the node and the value.
func InferShapes(m *graph.Model) (Report, error) {
	if m == nil || m.Graph == nil {
		return Report{}, errors.New("exec: InferShapes: nil model")
	}
	if err := graph.Verify(m.Graph); err != nil {
		return Report{}, fmt.Errorf("exec: InferShapes: %w", err)
	}
	if err := graph.Sort(m.Graph); err != nil {
		return Report{}, fmt.Errorf("exec: InferShapes: %w", err)
	}
	s := &shapeInf{
		opset:    m.Opset(""),
		declared: map[*graph.Value]graph.Type{},
		inputs:   map[*graph.Value]bool{},
		sym:      map[*graph.Value][]symVal{},
	}
	s.cc = &CompileContext{model: m, folded: map[*graph.Value]*tensor.Tensor{}}
	s.snapshot(m.Graph)
	if err := s.graph(m.Graph); err != nil {
		return Report{}, err
	}
	r := Report{PartialByOp: map[string]int{}, UnknownByOp: map[string]int{}}
	s.count(m.Graph, &r)
	return r, nil
}

// shapeInf is the state of one InferShapes run.
type shapeInf struct {
	opset int64
	cc    *CompileContext // its folded map holds every known constant
	// declared holds the types node outputs and subgraph inputs had
	// before inference.
	declared map[*graph.Value]graph.Type
	// inputs are the graph inputs of every graph: never constants, even
	// with a default value, since a caller may override it.
	inputs map[*graph.Value]bool
	// sym holds the tracked entries of shape tensors.
	sym map[*graph.Value][]symVal
}

// snapshot records declared types and graph inputs, recursively.
func (s *shapeInf) snapshot(g *graph.Graph) {
	for _, v := range g.Inputs {
		s.inputs[v] = true
		if g.Parent != nil {
			s.declared[v] = cloneType(v.Type)
		}
	}
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o != nil {
				s.declared[o] = cloneType(o.Type)
			}
		}
		for _, sg := range n.Subgraphs() {
			s.snapshot(sg)
		}
	}
}

// reset gives g's node outputs (recursively) their declared types back
// and forgets what was derived from them, before g is inferred again with
// other input types (a Loop body).
func (s *shapeInf) reset(g *graph.Graph) {
	for _, v := range g.Inputs {
		if t, ok := s.declared[v]; ok {
			v.Type = cloneType(t)
		}
	}
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o != nil {
				o.Type = cloneType(s.declared[o])
				delete(s.cc.folded, o)
				delete(s.sym, o)
			}
		}
		for _, sg := range n.Subgraphs() {
			s.reset(sg)
		}
	}
}

func cloneType(t graph.Type) graph.Type {
	if t.Shape != nil {
		t.Shape = append([]graph.Dim{}, t.Shape...)
	}
	return t
}

// graph infers the node outputs of g in order (g is sorted).
func (s *shapeInf) graph(g *graph.Graph) error {
	for _, n := range g.Nodes {
		if err := s.node(n); err != nil {
			return err
		}
	}
	return nil
}

// shapeRule infers the output types of a node (fewer than its outputs, or
// zero types, where it cannot tell). It may record shape-tensor entries of
// the outputs with setSym.
type shapeRule func(s *shapeInf, n *graph.Node) ([]graph.Type, error)

// shapeRules maps ONNX op types (default domain) to their rules; the
// control-flow operators are handled by the walk itself.
var shapeRules = map[string]shapeRule{}

func defaultDomain(n *graph.Node) bool { return n.Domain == "" || n.Domain == "ai.onnx" }

func (s *shapeInf) node(n *graph.Node) error {
	folded := s.tryFold(n)
	var outs []graph.Type
	var err error
	if defaultDomain(n) {
		switch n.OpType {
		case "If":
			outs, err = s.inferIf(n)
		case "Loop":
			outs, err = s.inferLoop(n)
		case "Scan":
			outs, err = s.inferScan(n)
		default:
			if rule := shapeRules[n.OpType]; rule != nil {
				outs, err = rule(s, n)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("exec: InferShapes: node %s: %w", n, err)
	}
	for i, o := range n.Outputs {
		if o == nil {
			continue
		}
		var t graph.Type
		if i < len(outs) {
			t = outs[i]
		}
		approx := false
		if folded != nil && folded[i] != nil {
			f := folded[i]
			ft := graph.TypeOf(f)
			if t.Elem == graph.Undefined {
				t.Elem, approx = ft.Elem, true
			}
			if rs, ok := t.Static(); ok && !sameType(t, typeOf(t.Elem, ft.Shape)) && onesOnly(rs, f.Shape()) {
				f = f.Reshape(rs...) // the rule's rank (a kernel returning [1] for a scalar)
			} else {
				t.Shape, t.HasShape = ft.Shape, true
			}
			s.cc.folded[o] = f
		}
		merged, err := mergeDeclared(s.declared[o], t, approx)
		if err != nil {
			return fmt.Errorf("exec: InferShapes: node %s: output %q: %w", n, o.Name, err)
		}
		o.Type = merged
		s.materialize(o)
	}
	return nil
}

// onesOnly reports whether shapes a and b differ only by dimensions of
// size 1.
func onesOnly(a, b []int) bool {
	strip := func(s []int) []int {
		var out []int
		for _, d := range s {
			if d != 1 {
				out = append(out, d)
			}
		}
		return out
	}
	x, y := strip(a), strip(b)
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

// tryFold computes n's outputs with its kernel when all its inputs are
// constant, as Compile's folding does; nil when it cannot.
func (s *shapeInf) tryFold(n *graph.Node) []*tensor.Tensor {
	if !defaultDomain(n) || len(n.Subgraphs()) > 0 || nondeterministic[n.OpType] {
		return nil
	}
	for _, v := range n.Inputs {
		if v != nil && s.constOf(v) == nil {
			return nil
		}
	}
	k, err := s.cc.compileNode(n)
	if err != nil {
		return nil
	}
	outs, ok := s.cc.fold(n, k)
	if !ok {
		return nil
	}
	return outs
}

// constOf returns the constant value of v, or nil.
func (s *shapeInf) constOf(v *graph.Value) *tensor.Tensor {
	if v == nil || s.inputs[v] {
		return nil
	}
	if t := s.cc.folded[v]; t != nil {
		return t
	}
	return v.Const
}

// materialize turns a fully known shape tensor into a constant.
func (s *shapeInf) materialize(v *graph.Value) {
	if s.cc.folded[v] != nil || v.Const != nil {
		return
	}
	vals, ok := s.sym[v]
	if !ok || !v.Type.HasShape || v.Type.Rank() > 1 {
		return
	}
	if v.Type.Rank() == 0 && len(vals) != 1 || v.Type.Rank() == 1 && (!v.Type.Shape[0].Known() || v.Type.Shape[0].Size != int64(len(vals))) {
		return
	}
	ints := make([]int64, len(vals))
	for i, x := range vals {
		if !x.known {
			return
		}
		ints[i] = x.v
	}
	var t *tensor.Tensor
	switch v.Type.Elem {
	case graph.Int64:
		t = tensor.FromInt64(ints, len(ints))
	case graph.Int32:
		t = tensor.Cast(tensor.FromInt64(ints, len(ints)), tensor.Int32)
	default:
		return
	}
	if v.Type.Rank() == 0 {
		t = t.Reshape()
	}
	s.cc.folded[v] = t
}

// mergeDeclared merges an inferred type into a declared one. approx marks
// an inferred element type read from a tensor's storage dtype (float16 is
// held as float32), which a declared type of the same storage refines.
func mergeDeclared(decl, inf graph.Type, approx bool) (graph.Type, error) {
	out := cloneType(decl)
	conflict := func() error {
		return fmt.Errorf("inferred type %s conflicts with the declared %s", inf, decl)
	}
	switch {
	case decl.Elem == graph.Undefined:
		out.Elem = inf.Elem
	case inf.Elem == graph.Undefined || inf.Elem == decl.Elem:
	case approx:
		if d, ok := decl.Elem.DType(); !ok || graph.ElemTypeOf(d) != inf.Elem {
			return out, conflict()
		}
	default:
		return out, conflict()
	}
	switch {
	case !inf.HasShape:
	case !decl.HasShape:
		out.Shape, out.HasShape = append([]graph.Dim{}, inf.Shape...), true
	case len(decl.Shape) != len(inf.Shape):
		return out, conflict()
	default:
		for i, d := range decl.Shape {
			e := inf.Shape[i]
			switch {
			case d.Known():
				if e.Known() && e.Size != d.Size {
					return out, conflict()
				}
			case e.Known():
				out.Shape[i] = e
			case d.Param == "" && e.Param != "":
				out.Shape[i] = e
			}
		}
	}
	return out, nil
}

// count adds g's node outputs to r, recursively.
func (s *shapeInf) count(g *graph.Graph, r *Report) {
	for _, n := range g.Nodes {
		op := n.OpType
		if !defaultDomain(n) {
			op = n.Domain + "." + op
		}
		for _, o := range n.Outputs {
			if o == nil {
				continue
			}
			r.Values++
			t := o.Type
			if t.Elem == graph.Undefined {
				r.NoElem++
			}
			switch {
			case !t.HasShape:
				r.Unknown++
				r.UnknownByOp[op]++
			case shapeClass(t) == 0:
				r.Exact++
			case shapeClass(t) == 1:
				r.Symbolic++
			default:
				r.Partial++
				r.PartialByOp[op]++
			}
		}
		for _, sg := range n.Subgraphs() {
			s.count(sg, r)
		}
	}
}

// shapeClass is 0 for a fully known shape, 1 for known-or-symbolic dims,
// 2 when a dimension is unknown (the rank must be known).
func shapeClass(t graph.Type) int {
	c := 0
	for _, d := range t.Shape {
		switch {
		case d.Known():
		case d.Param != "":
			c = max(c, 1)
		default:
			return 2
		}
	}
	return c
}

// Control flow.

// inferIf infers both branches and merges their output types (the taken
// branch's types when the condition is constant). A branch whose inference
// fails (an operator that cannot apply to the shapes it gets, a conflict
// with a declared type) cannot be the one taken, as it would fail at run
// time: its values get their declared types back and the If takes the
// other branch's types. Both failing is an error.
func (s *shapeInf) inferIf(n *graph.Node) ([]graph.Type, error) {
	var branches [2]*graph.Graph
	var errs [2]error
	for i, name := range []string{"then_branch", "else_branch"} {
		g, err := graphAttr(n, name)
		if err != nil {
			return nil, err
		}
		if len(g.Outputs) != len(n.Outputs) {
			return nil, fmt.Errorf("%s has %d outputs for %d", name, len(g.Outputs), len(n.Outputs))
		}
		branches[i] = g
		if errs[i] = s.graph(g); errs[i] != nil {
			s.reset(g)
		}
	}
	pick := -1
	if c := s.constOf(n.Input(0)); c != nil && c.DType() == tensor.Bool && c.Numel() == 1 {
		pick = 1
		if c.Bools()[0] {
			pick = 0
		}
	}
	switch {
	case errs[0] != nil && errs[1] != nil:
		return nil, errs[0]
	case pick >= 0 && errs[pick] != nil:
		return nil, errs[pick]
	case pick < 0 && errs[0] != nil:
		pick = 1
	case pick < 0 && errs[1] != nil:
		pick = 0
	}
	outs := make([]graph.Type, len(n.Outputs))
	for i := range outs {
		if pick >= 0 {
			outs[i] = cloneType(branches[pick].Outputs[i].Type)
		} else {
			outs[i] = joinTypes(branches[0].Outputs[i].Type, branches[1].Outputs[i].Type)
		}
	}
	return outs, nil
}

// joinTypes is the type of a value that is either a or b: dimensions they
// agree on, else unknown.
func joinTypes(a, b graph.Type) graph.Type {
	t := graph.Type{Elem: a.Elem}
	if t.Elem == graph.Undefined {
		t.Elem = b.Elem
	}
	if !a.HasShape || !b.HasShape || len(a.Shape) != len(b.Shape) {
		return t
	}
	t.HasShape, t.Shape = true, make([]graph.Dim, len(a.Shape))
	for i, d := range a.Shape {
		if d == b.Shape[i] && (d.Known() || d.Param != "") {
			t.Shape[i] = d
		} else {
			t.Shape[i] = dimUnknown
		}
	}
	return t
}

func sameType(a, b graph.Type) bool {
	if a.Elem != b.Elem || a.HasShape != b.HasShape || len(a.Shape) != len(b.Shape) {
		return false
	}
	for i := range a.Shape {
		if a.Shape[i] != b.Shape[i] {
			return false
		}
	}
	return true
}

// inferBody infers a Loop or Scan body given its input types (in), of
// which nc from carriedIn on are loop-carried: body output carriedOut+j
// feeds input carriedIn+j back. The carried types are widened (joinTypes)
// until the body maps them to themselves, at most four times, then to
// their element types alone. It returns the carried types at the fixed
// point.
func (s *shapeInf) inferBody(body *graph.Graph, in []graph.Type, carriedIn, carriedOut, nc int) ([]graph.Type, error) {
	cur := append([]graph.Type{}, in...)
	for round := 0; ; round++ {
		if round > 0 {
			s.reset(body)
		}
		for i, v := range body.Inputs {
			m, err := mergeDeclared(s.declared[v], cur[i], false)
			if err != nil {
				return nil, fmt.Errorf("body input %q: %w", v.Name, err)
			}
			v.Type = m
		}
		if err := s.graph(body); err != nil {
			return nil, err
		}
		next := make([]graph.Type, nc)
		stable := true
		for j := range next {
			inT := body.Inputs[carriedIn+j].Type
			next[j] = joinTypes(inT, body.Outputs[carriedOut+j].Type)
			stable = stable && sameType(next[j], inT)
		}
		if stable || round == 4 {
			return next, nil
		}
		if round == 3 {
			for j := range next {
				next[j] = graph.Type{Elem: next[j].Elem}
			}
		}
		copy(cur[carriedIn:], next)
	}
}

// inferLoop infers a Loop: carried values at their fixed point, scan
// outputs with a leading dimension of the trip count when the loop has a
// constant trip count and no condition.
func (s *shapeInf) inferLoop(n *graph.Node) ([]graph.Type, error) {
	body, err := graphAttr(n, "body")
	if err != nil {
		return nil, err
	}
	nc := len(n.Inputs) - 2
	if nc < 0 || len(body.Inputs) != nc+2 || len(body.Outputs) < nc+1 || len(n.Outputs) != len(body.Outputs)-1 {
		return nil, fmt.Errorf("Loop with %d inputs and %d outputs, body with %d inputs and %d outputs", len(n.Inputs), len(n.Outputs), len(body.Inputs), len(body.Outputs))
	}
	carried := make([]graph.Type, nc)
	for j := range carried {
		carried[j] = n.Inputs[2+j].Type
	}
	in := append([]graph.Type{graph.TensorType(graph.Int64), graph.TensorType(graph.Bool)}, carried...)
	final, err := s.inferBody(body, in, 2, 1, nc)
	if err != nil {
		return nil, err
	}
	trip := dimUnknown
	if m := s.constOf(n.Input(0)); m != nil && n.Input(1) == nil && m.Numel() == 1 {
		if v, err := ints64(m); err == nil && v[0] >= 0 {
			trip = graph.Dim{Size: v[0]}
		}
	}
	outs := final
	for _, o := range body.Outputs[1+nc:] {
		t := graph.Type{Elem: o.Type.Elem}
		if o.Type.HasShape {
			t.HasShape, t.Shape = true, append([]graph.Dim{trip}, o.Type.Shape...)
		}
		outs = append(outs, t)
	}
	return outs, nil
}

// inferScan infers a Scan (opset 8 with its batch axis, or 9 on).
func (s *shapeInf) inferScan(n *graph.Node) ([]graph.Type, error) {
	body, err := graphAttr(n, "body")
	if err != nil {
		return nil, err
	}
	m, err := n.Int("num_scan_inputs", -1)
	if err != nil {
		return nil, err
	}
	v8 := s.opset < 9
	first := 0
	if v8 {
		first = 1 // sequence_lens
	}
	nState := len(n.Inputs) - first - int(m)
	if m < 1 || nState < 0 || len(body.Inputs) != nState+int(m) || len(body.Outputs) != len(n.Outputs) || len(n.Outputs) < nState {
		return nil, fmt.Errorf("Scan with %d inputs, %d scan inputs and %d outputs, body with %d inputs and %d outputs",
			len(n.Inputs), m, len(n.Outputs), len(body.Inputs), len(body.Outputs))
	}
	inAxes, err := n.Ints("scan_input_axes", nil)
	if err != nil {
		return nil, err
	}
	outAxes, err := n.Ints("scan_output_axes", nil)
	if err != nil {
		return nil, err
	}
	batch, seq := dimUnknown, dimUnknown
	states := make([]graph.Type, nState)
	for j := range states {
		t := n.Inputs[first+j].Type
		if v8 {
			if t.HasShape && len(t.Shape) > 0 {
				batch = unifyLoose(batch, t.Shape[0])
			}
			t = dropAxis(t, 0)
		}
		states[j] = t
	}
	slices := make([]graph.Type, m)
	for k := range slices {
		t := n.Inputs[first+nState+k].Type
		ax := int64(0)
		if v8 {
			if t.HasShape && len(t.Shape) > 0 {
				batch = unifyLoose(batch, t.Shape[0])
			}
			t, ax = dropAxis(t, 0), 0
		} else if k < len(inAxes) {
			ax = inAxes[k]
		}
		if t.HasShape {
			a, err := axis(ax, len(t.Shape))
			if err != nil {
				return nil, fmt.Errorf("scan input %d: %w", k, err)
			}
			seq = unifyLoose(seq, t.Shape[a])
			t = dropAxis(t, a)
		}
		slices[k] = t
	}
	// The body's inputs are the states, then the slices; states are carried.
	final, err := s.inferBody(body, append(states, slices...), 0, 0, nState)
	if err != nil {
		return nil, err
	}
	outs := make([]graph.Type, len(n.Outputs))
	for j := range final {
		outs[j] = final[j]
		if v8 {
			outs[j] = insertAxis(final[j], 0, batch)
		}
	}
	for k, o := range body.Outputs[nState:] {
		t := o.Type
		if v8 {
			t = insertAxis(insertAxis(t, 0, seq), 0, batch)
		} else {
			ax := int64(0)
			if k < len(outAxes) {
				ax = outAxes[k]
			}
			if t.HasShape {
				if ax < 0 {
					ax += int64(len(t.Shape)) + 1
				}
				if ax < 0 || ax > int64(len(t.Shape)) {
					return nil, fmt.Errorf("scan_output_axes %v out of range", outAxes)
				}
			}
			t = insertAxis(t, int(ax), seq)
		}
		outs[nState+k] = t
	}
	return outs, nil
}

// dropAxis removes dimension a of t (when the rank is known).
func dropAxis(t graph.Type, a int) graph.Type {
	if !t.HasShape || a >= len(t.Shape) {
		return graph.Type{Elem: t.Elem}
	}
	sh := append(append([]graph.Dim{}, t.Shape[:a]...), t.Shape[a+1:]...)
	return graph.Type{Elem: t.Elem, HasShape: true, Shape: sh}
}

// insertAxis inserts dimension d at a (when the rank is known).
func insertAxis(t graph.Type, a int, d graph.Dim) graph.Type {
	if !t.HasShape {
		return graph.Type{Elem: t.Elem}
	}
	sh := append(append(append([]graph.Dim{}, t.Shape[:a]...), d), t.Shape[a:]...)
	return graph.Type{Elem: t.Elem, HasShape: true, Shape: sh}
}
