package passes

import (
	"errors"
	"fmt"
	"math"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/tensor"
)

// The opset converter. Each rule of opsetRules rewrites one operator whose
// signature or meaning changes between the model's opset and the target;
// operators listed in opsetUnchanged mean the same in every opset from 7
// to 21 as they are written (their later attributes and inputs default to
// the old behaviour). Any other default-domain operator is an error: the
// converter never changes a model it does not understand.

// MaxUpgradeOpset is the highest target opset UpgradeOpset accepts.
const MaxUpgradeOpset = 21

// UpgradeOpset converts m in place from the default-domain (ONNX) opset it
// imports to target, a version from 7 to MaxUpgradeOpset: every node of
// the main graph and of If/Loop/Scan subgraphs, recursively, whose
// signature or meaning differs between the two opsets is rewritten to
// compute exactly what it computed before (graph/exec gives the same bits
// before and after), then m imports target (and its
// IR version is raised to the one that opset needs). It returns how many
// of m's nodes it rewrote. A model already at target or above is left as
// it is (0, nil); the source opset must be 7 or later.
//
// Node names stay. Constant inputs that replace attributes become
// initializers of the graph holding the node, named after it
// ("<node>_axes", "<node>_split", "<node>_starts", ...); helper nodes are
// named "<node>_<OpType>". Value types are kept; a node's output value
// stays the value its users read, even where a helper node now computes
// it. The rewrites:
//
//   - Softmax, LogSoftmax, Hardmax (13): before 13 they coerce the input
//     to 2-D at axis (default 1). When axis is the last axis, or every
//     later dimension is 1 (the rank and shape come from the value types,
//     constants and shape inference), only the axis is made explicit;
//     otherwise the node runs on Flatten(x, axis) along axis 1 and
//     Reshape(., Shape(x)) restores the shape.
//   - Squeeze, Unsqueeze (13), ReduceSum (13), the other Reduce* (18):
//     attribute axes becomes input 1. Split (13): attribute split becomes
//     input 1; from 18 a Split without sizes gets num_outputs.
//   - Clip (11): attributes min and max (defaults -/+MaxFloat32, which
//     also clip infinities) become inputs 1 and 2. Slice (10): starts,
//     ends, axes become inputs. Pad (11): pads and value become inputs.
//     TopK (10): k becomes input 1. Dropout: ratio becomes input 1 (12);
//     a mask output (bool from 10 on) is cast back to the input's type.
//   - Upsample and Resize-10 become Resize with roi and scales inputs,
//     coordinate_transformation_mode asymmetric, and for nearest the
//     opset-10 rule (floor when upsampling, ceiling when downsampling):
//     nearest_mode floor or ceil, or, when scales mix up- and downsampling
//     or are not constant, a Resize upsampling (scales max(s, 1), floor)
//     then one downsampling (scales min(s, 1), ceil). Resize 11-12 with
//     tf_half_pixel_for_nn (gone in 13) and nearest_mode floor or
//     round_prefer_floor becomes half_pixel with round_prefer_ceil or ceil.
//   - BatchNormalization (9): spatial is dropped (spatial=0 only where it
//     means the same). Scatter (11) becomes ScatterElements. Scan-8 (9)
//     becomes a Loop over the batch axis running a Scan-9 on each entry.
//
// An operator it cannot convert (unknown to the converter, or a case no
// exact rewrite exists for) is an error naming the node and the op, and m
// is left unchanged.
func UpgradeOpset(m *graph.Model, target int64) (int, error) {
	if m == nil || m.Graph == nil {
		return 0, errors.New("passes: UpgradeOpset: nil model")
	}
	from := m.Opset("")
	if target < 7 || target > MaxUpgradeOpset {
		return 0, fmt.Errorf("passes: UpgradeOpset: target opset %d outside 7..%d", target, MaxUpgradeOpset)
	}
	if from == 0 {
		return 0, errors.New("passes: UpgradeOpset: the model imports no default-domain opset")
	}
	if from >= target {
		return 0, nil
	}
	if from < 7 {
		return 0, fmt.Errorf("passes: UpgradeOpset: source opset %d is below 7", from)
	}
	// A dry run on a copy (whose value types shape inference completes)
	// finds any node that cannot be converted before m is touched; the
	// real run reads the copy's inferred types.
	c, pairs, _ := m.CloneMap()
	if needsRanks(m.Graph, from, target) {
		_, _ = exec.InferShapes(c) // partial knowledge is fine: unknown ranks take the general rewrite
	}
	dry := newUpgrader(c, from, target, nil)
	if _, err := dry.graph(c.Graph); err != nil {
		return 0, err
	}
	u := newUpgrader(m, from, target, pairs)
	n, err := u.graph(m.Graph)
	if err != nil {
		return n, err // not reached: the dry run saw the same nodes
	}
	if err := graph.Sort(m.Graph); err != nil {
		return n, fmt.Errorf("passes: UpgradeOpset: %w", err)
	}
	if _, ok := m.Opsets[""]; !ok && m.Opsets["ai.onnx"] != 0 {
		m.Opsets["ai.onnx"] = target
	} else {
		if m.Opsets == nil {
			m.Opsets = map[string]int64{}
		}
		m.Opsets[""] = target
	}
	if ir := irVersionFor(target); m.IRVersion < ir {
		m.IRVersion = ir
	}
	return n, nil
}

// irVersionFor returns the lowest IR version that may import opset v.
func irVersionFor(v int64) int64 {
	switch {
	case v <= 8:
		return 3
	case v <= 11:
		return v - 5
	case v <= 14:
		return 7
	case v <= 18:
		return 8
	case v <= 20:
		return 9
	}
	return 10
}

// needsRanks reports whether a softmax-family node will need its input's
// rank.
func needsRanks(g *graph.Graph, from, to int64) bool {
	if !(from < 13 && to >= 13) {
		return false
	}
	found := false
	var walk func(g *graph.Graph)
	walk = func(g *graph.Graph) {
		for _, n := range g.Nodes {
			if isDefault(n) && softmaxOps[n.OpType] {
				found = true
			}
			for _, sg := range n.Subgraphs() {
				walk(sg)
			}
		}
	}
	walk(g)
	return found
}

var softmaxOps = map[string]bool{"Softmax": true, "LogSoftmax": true, "Hardmax": true}

// upgrader is the state of one conversion.
type upgrader struct {
	from, to int64
	// names holds every value and node name in use.
	names graph.Names
	// inferred maps a value to its copy that shape inference typed (nil
	// when the model's own types are the inferred ones).
	inferred map[*graph.Value]*graph.Value
}

func newUpgrader(m *graph.Model, from, to int64, inferred map[*graph.Value]*graph.Value) *upgrader {
	u := &upgrader{from: from, to: to, names: graph.NamesOf(m.Graph), inferred: inferred}
	return u
}

// crosses reports whether the conversion passes opset v, where an
// operator changed.
func (u *upgrader) crosses(v int64) bool { return u.from < v && u.to >= v }

// opsetRule rewrites node n if its opset change concerns it, and reports
// whether it did.
type opsetRule func(u *upgrader, n *graph.Node) (bool, error)

var opsetRules map[string]opsetRule

func init() {
	opsetRules = map[string]opsetRule{
		"Softmax": upSoftmax, "LogSoftmax": upSoftmax, "Hardmax": upSoftmax,
		"Squeeze":            func(u *upgrader, n *graph.Node) (bool, error) { return u.attrToInput(n, 13, "axes", 1) },
		"Unsqueeze":          func(u *upgrader, n *graph.Node) (bool, error) { return u.attrToInput(n, 13, "axes", 1) },
		"ReduceSum":          func(u *upgrader, n *graph.Node) (bool, error) { return u.attrToInput(n, 13, "axes", 1) },
		"Split":              upSplit,
		"Clip":               upClip,
		"Slice":              upSlice,
		"Pad":                upPad,
		"TopK":               upTopK,
		"Dropout":            upDropout,
		"BatchNormalization": upBatchNorm,
		"Scatter":            upScatter,
		"Upsample":           upUpsample,
		"Resize":             upResize,
		"Scan":               upScan,
	}
	for _, op := range []string{"ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
		"ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"} {
		opsetRules[op] = func(u *upgrader, n *graph.Node) (bool, error) { return u.attrToInput(n, 18, "axes", 1) }
	}
}

// opsetUnchanged lists the operators whose nodes mean the same, written
// as they are, in every opset from 7 to 21. (OneHot's negative indices,
// out of range before opset 11 and counted from the end after, are
// counted from the end at every opset by the executor and ONNX Runtime.)
var opsetUnchanged = map[string]bool{}

func init() {
	for _, op := range []string{
		"Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan", "Atanh",
		"AveragePool", "Cast", "CastLike", "Ceil", "Concat", "Constant", "ConstantOfShape", "Conv",
		"ConvInteger", "ConvTranspose", "Cos", "Cosh", "CumSum", "DepthToSpace", "DequantizeLinear", "Div",
		"DynamicQuantizeLinear", "Einsum", "Elu", "Equal", "Erf", "Exp", "Expand", "Flatten", "Floor",
		"GRU", "Gather", "GatherElements", "GatherND", "Gelu", "Gemm", "GlobalAveragePool",
		"GlobalMaxPool", "Greater", "GreaterOrEqual", "HardSigmoid", "HardSwish", "Identity", "If",
		"InstanceNormalization", "IsInf", "IsNaN", "LRN", "LSTM", "LayerNormalization", "LeakyRelu",
		"Less", "LessOrEqual", "Log", "Loop", "MatMul", "MatMulInteger", "Max", "MaxPool", "Mean", "Min",
		"Mod", "Mul", "Neg", "NonZero", "Not", "OneHot", "Or", "PRelu", "Pow", "QLinearConv",
		"QLinearMatMul", "QuantizeLinear", "RNN", "Range", "Reciprocal", "Relu", "Reshape", "Round",
		"ScatterElements", "ScatterND", "Selu", "Shape", "Sigmoid", "Sign", "Sin", "Sinh", "Size",
		"Softplus", "Softsign", "SpaceToDepth", "Sqrt", "Sub", "Sum", "Tan", "Tanh", "Tile",
		"Transpose", "Trilu", "Where", "Xor",
	} {
		opsetUnchanged[op] = true
	}
}

// graph converts g's nodes and their subgraphs.
func (u *upgrader) graph(g *graph.Graph) (int, error) {
	total := 0
	for _, n := range append([]*graph.Node(nil), g.Nodes...) {
		for _, sg := range n.Subgraphs() {
			k, err := u.graph(sg)
			total += k
			if err != nil {
				return total, err
			}
		}
		if !isDefault(n) {
			continue
		}
		rule := opsetRules[n.OpType]
		if rule == nil {
			if opsetUnchanged[n.OpType] {
				continue
			}
			return total, u.errorf(n, "no conversion rule for %s", n.OpType)
		}
		// Rules edit these slices in place: unshare them from any other
		// slice (a graph's outputs, another node's) first.
		n.Inputs = append([]*graph.Value(nil), n.Inputs...)
		n.Outputs = append([]*graph.Value(nil), n.Outputs...)
		done, err := rule(u, n)
		if err != nil {
			return total, err
		}
		if done {
			total++
		}
	}
	return total, nil
}

func (u *upgrader) errorf(n *graph.Node, format string, args ...any) error {
	return fmt.Errorf("passes: UpgradeOpset %d -> %d: node %s: %s", u.from, u.to, n, fmt.Sprintf(format, args...))
}

// unique returns base, or base_N for the smallest N making it unused, and
// records it.
func (u *upgrader) unique(base string) string { return u.names.Unique(base) }

// base is the prefix of the names derived from node n.
func base(n *graph.Node) string {
	if n.Name != "" {
		return n.Name
	}
	return n.OpType
}

// constant adds an initializer named after node n to n's graph.
func (u *upgrader) constant(n *graph.Node, suffix string, t *tensor.Tensor) *graph.Value {
	return n.Graph.AddInitializer(u.unique(base(n)+"_"+suffix), t)
}

// value returns a new value of g named after base, of type t, computed by
// p (set when the node is built).
func (u *upgrader) value(g *graph.Graph, name string, t graph.Type) *graph.Value {
	return &graph.Value{Name: u.unique(name), Type: t, Graph: g}
}

// addNode appends a node computing the given output values to g.
func (u *upgrader) addNode(g *graph.Graph, name, op string, inputs, outputs []*graph.Value, attrs map[string]*graph.Attr) *graph.Node {
	if attrs == nil {
		attrs = map[string]*graph.Attr{}
	}
	n := &graph.Node{Name: u.unique(name), OpType: op, Inputs: inputs, Outputs: outputs, Attrs: attrs, Graph: g}
	for _, o := range outputs {
		if o != nil {
			o.Producer = n
			o.Graph = g
		}
	}
	g.Nodes = append(g.Nodes, n)
	return n
}

// typeOf returns v's type, completed by shape inference when v's own is
// less specific.
func (u *upgrader) typeOf(v *graph.Value) graph.Type {
	t := v.Type
	if c := u.inferred[v]; c != nil {
		ct := c.Type
		if t.Elem == graph.Undefined {
			t.Elem = ct.Elem
		}
		if !t.HasShape || (ct.HasShape && len(ct.Shape) == len(t.Shape) && knownDims(ct) > knownDims(t)) {
			t.Shape, t.HasShape = ct.Shape, ct.HasShape
		}
	}
	if !t.HasShape && v.Const != nil {
		ct := graph.TypeOf(v.Const)
		t.Shape, t.HasShape = ct.Shape, true
	}
	return t
}

func knownDims(t graph.Type) int {
	k := 0
	for _, d := range t.Shape {
		if d.Known() {
			k++
		}
	}
	return k
}

// constOf returns v's value when v is an initializer (not a graph input
// with a default) or a Constant node's output, else nil.
func constOf(v *graph.Value) *tensor.Tensor {
	if v == nil {
		return nil
	}
	if v.Const != nil {
		for _, in := range v.Graph.Inputs {
			if in == v {
				return nil
			}
		}
		return v.Const
	}
	p := v.Producer
	if p == nil || !isDefault(p) || p.OpType != "Constant" {
		return nil
	}
	if t, err := p.Tensor("value"); err == nil && t != nil {
		return t
	}
	if a := p.Attrs["value_floats"]; a != nil && a.Kind == graph.AttrFloats {
		return tensor.FromFloat32(append([]float32(nil), a.Fs...), len(a.Fs))
	}
	return nil
}

// setInput sets input i of n, padding omitted inputs before it.
func setInput(n *graph.Node, i int, v *graph.Value) {
	for len(n.Inputs) <= i {
		n.Inputs = append(n.Inputs, nil)
	}
	n.Inputs[i] = v
}

// int64Tensor returns a 1-D int64 tensor holding v.
func int64Tensor(v []int64) *tensor.Tensor {
	return tensor.FromInt64(append([]int64{}, v...), len(v))
}

// attrToInput moves the ints attribute attr of n into input i as an int64
// initializer, when the conversion passes opset since.
func (u *upgrader) attrToInput(n *graph.Node, since int64, attr string, i int) (bool, error) {
	if !u.crosses(since) || !n.Has(attr) {
		return false, nil
	}
	v, err := n.Ints(attr, nil)
	if err != nil {
		return false, u.errorf(n, "%v", err)
	}
	if len(n.Inputs) > i && n.Inputs[i] != nil {
		return false, u.errorf(n, "has both attribute %s and input %d", attr, i)
	}
	setInput(n, i, u.constant(n, attr, int64Tensor(v)))
	delete(n.Attrs, attr)
	return true, nil
}

// wantFloat32 checks that input x of n, whose attribute becomes a float32
// constant input of x's type, is float32 (or of unknown type, which
// before these opsets can only be a float type).
func (u *upgrader) wantFloat32(n *graph.Node, x *graph.Value, what string) error {
	if e := u.typeOf(x).Elem; e != graph.Undefined && e != graph.Float {
		return u.errorf(n, "attribute %s would become a %s input, and quanta writes float32 constants only", what, e)
	}
	return nil
}

func upSplit(u *upgrader, n *graph.Node) (bool, error) {
	done, err := u.attrToInput(n, 13, "split", 1)
	if err != nil {
		return false, err
	}
	if u.crosses(18) && !n.Has("num_outputs") {
		if s := n.Input(1); s == nil || (s.Const != nil && s.Const.Numel() == 0) {
			if s != nil {
				n.Inputs = n.Inputs[:1]
			}
			n.Attrs["num_outputs"] = graph.AInt(int64(len(n.Outputs)))
			done = true
		}
	}
	return done, nil
}

func upClip(u *upgrader, n *graph.Node) (bool, error) {
	if !u.crosses(11) {
		return false, nil
	}
	if len(n.Inputs) != 1 || n.Inputs[0] == nil {
		return false, u.errorf(n, "Clip before opset 11 takes one input, has %d", len(n.Inputs))
	}
	if err := u.wantFloat32(n, n.Inputs[0], "min/max"); err != nil {
		return false, err
	}
	lo, err := n.Float("min", -math.MaxFloat32)
	if err != nil {
		return false, u.errorf(n, "%v", err)
	}
	hi, err := n.Float("max", math.MaxFloat32)
	if err != nil {
		return false, u.errorf(n, "%v", err)
	}
	n.Inputs = append(n.Inputs, u.constant(n, "min", tensor.Scalar(lo)), u.constant(n, "max", tensor.Scalar(hi)))
	delete(n.Attrs, "min")
	delete(n.Attrs, "max")
	return true, nil
}

func upSlice(u *upgrader, n *graph.Node) (bool, error) {
	if !u.crosses(10) {
		return false, nil
	}
	if len(n.Inputs) != 1 {
		return false, u.errorf(n, "Slice before opset 10 takes one input, has %d", len(n.Inputs))
	}
	for i, a := range []string{"starts", "ends", "axes"} {
		if !n.Has(a) {
			if a != "axes" {
				return false, u.errorf(n, "attribute %s is required", a)
			}
			continue
		}
		if _, err := u.attrToInput(n, 10, a, i+1); err != nil {
			return false, err
		}
	}
	return true, nil
}

func upPad(u *upgrader, n *graph.Node) (bool, error) {
	if !u.crosses(11) {
		return false, nil
	}
	if len(n.Inputs) != 1 || !n.Has("pads") {
		return false, u.errorf(n, "Pad before opset 11 takes one input and attribute pads")
	}
	if _, err := u.attrToInput(n, 11, "pads", 1); err != nil {
		return false, err
	}
	if n.Has("value") {
		if err := u.wantFloat32(n, n.Inputs[0], "value"); err != nil {
			return false, err
		}
		v, err := n.Float("value", 0)
		if err != nil {
			return false, u.errorf(n, "%v", err)
		}
		setInput(n, 2, u.constant(n, "value", tensor.Scalar(v)))
		delete(n.Attrs, "value")
	}
	return true, nil
}

func upTopK(u *upgrader, n *graph.Node) (bool, error) {
	if !u.crosses(10) {
		return false, nil
	}
	if !n.Has("k") {
		return false, u.errorf(n, "attribute k is required")
	}
	k, err := n.Int("k", 0)
	if err != nil {
		return false, u.errorf(n, "%v", err)
	}
	setInput(n, 1, u.constant(n, "k", int64Tensor([]int64{k})))
	delete(n.Attrs, "k")
	return true, nil
}

func upScatter(u *upgrader, n *graph.Node) (bool, error) {
	if !u.crosses(11) {
		return false, nil
	}
	n.OpType = "ScatterElements"
	return true, nil
}

func upDropout(u *upgrader, n *graph.Node) (bool, error) {
	done := false
	if u.crosses(12) && n.Has("ratio") {
		r, err := n.Float("ratio", 0.5)
		if err != nil {
			return false, u.errorf(n, "%v", err)
		}
		setInput(n, 1, u.constant(n, "ratio", tensor.Scalar(r)))
		delete(n.Attrs, "ratio")
		done = true
	}
	if u.crosses(10) && n.Output(1) != nil {
		// The mask is bool from opset 10 on, of the input's type before:
		// the node now computes a bool mask that a Cast turns back.
		mask := n.Outputs[1]
		elem := u.typeOf(n.Inputs[0]).Elem
		if elem == graph.Undefined {
			elem = graph.Float
		}
		mt := u.typeOf(mask)
		mt.Elem = graph.Bool
		b := u.value(n.Graph, mask.Name+"_bool", mt)
		b.Producer = n
		n.Outputs[1] = b
		u.addNode(n.Graph, base(n)+"_Cast", "Cast", []*graph.Value{b}, []*graph.Value{mask},
			map[string]*graph.Attr{"to": graph.AInt(int64(elem))})
		done = true
	}
	return done, nil
}

func upBatchNorm(u *upgrader, n *graph.Node) (bool, error) {
	if !u.crosses(9) || !n.Has("spatial") {
		return false, nil
	}
	sp, err := n.Int("spatial", 1)
	if err != nil {
		return false, u.errorf(n, "%v", err)
	}
	if sp == 0 {
		// Per-position statistics [C, D1, ...] equal per-channel ones
		// only where there are no positions.
		if len(n.Inputs) < 5 {
			return false, u.errorf(n, "want 5 inputs")
		}
		xt := u.typeOf(n.Inputs[0])
		ok := xt.HasShape && len(xt.Shape) >= 2
		if ok {
			for _, d := range xt.Shape[2:] {
				ok = ok && d.Known() && d.Size == 1
			}
		}
		for _, p := range n.Inputs[1:5] {
			ok = ok && p != nil && u.typeOf(p).Rank() == 1
		}
		if !ok {
			return false, u.errorf(n, "spatial=0 (per-position statistics) has no equivalent from opset 9 on")
		}
	}
	delete(n.Attrs, "spatial")
	return true, nil
}
