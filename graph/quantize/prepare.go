package quantize

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/graph/passes"
	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

// Options configure Prepare and QuantizeDynamic. The zero value quantizes
// with quanta's own preset ("quanta": full-range uint8 activations,
// per-channel int8 weights, histogram calibration).
type Options struct {
	// Engine names the numerics preset: "quanta" (the empty string),
	// "x86", "fbgemm", "qnnpack" or "onednn" (see quant.DefaultQConfig).
	Engine string
	// Mapping assigns QConfigs; nil means quant.DefaultQConfigMapping of
	// Engine (the QAT mapping when QAT is set).
	Mapping *quant.QConfigMapping
	// Backend is the table of what is quantized and fused; nil means
	// quant.GetBackendConfig of Engine.
	Backend *quant.BackendConfig
	// QAT prepares for quantization-aware training: the default mapping
	// is the engine's QAT mapping (fake quantizers instead of observers).
	QAT bool
	// Exclude keeps float every node whose name or module path matches
	// one of the expressions (unanchored, as regexp.MatchString).
	Exclude []*regexp.Regexp
	// Int16 quantizes every unit with a node whose name or module path
	// matches one of the expressions (as Exclude) with quant.Int16QConfig:
	// uint16 activations and per-channel int16 weights, written as 16-bit
	// QDQ in opset 21 (mixed precision, for the layers 8 bits hurt most).
	// Units without weights that read only 16-bit values (the element-wise
	// ops after a 16-bit convolution) are 16-bit too. A value between a
	// 16-bit unit and an 8-bit one is quantized to 8 bits. Exclude wins
	// over Int16. Int16 is for post-training static quantization (not QAT
	// or QuantizeDynamic).
	Int16 []*regexp.Regexp
	// NoEqualize turns off the input equalization of depthwise
	// convolutions (equalize.go). It is never applied with QAT, whose
	// fake quantizers have learned the input qparams.
	NoEqualize bool
	// WeightRounding is the rule that turns weights into codes; the zero
	// value is the engine's default (see RoundDefault).
	WeightRounding WeightRounding
}

// WeightRounding is a rule for turning float weights into integer codes.
type WeightRounding int

const (
	// RoundDefault is RoundKeepSum for the "quanta" engine's post-training
	// and dynamic quantization, and RoundNearest for QAT (whose fake
	// quantizers trained with it) and for the PyTorch presets ("x86",
	// "fbgemm", "qnnpack", "onednn"), whose codes then match PyTorch's.
	RoundDefault WeightRounding = iota
	// RoundNearest rounds each weight to its nearest code, ties to even:
	// the rule of PyTorch and ONNX Runtime.
	RoundNearest
	// RoundKeepSum rounds a convolution's weights to nearest, then, in
	// each spatial filter (the KxK taps one input channel gives one output
	// channel), moves the fewest codes one step, those whose scaled
	// weights lie nearest the other way (ties by position), until the
	// filter's codes sum to its scaled taps' sum, rounded. The filter's
	// response to a smooth input, its DC gain, then stays within half a
	// step, which rounding each tap alone does not give: a 3x3 filter with
	// a large centre tap and small neighbours loses a few percent of its
	// gain to nearest rounding. Each code still lies within one step of
	// its weight. 1x1 convolutions, MatMul and Gemm round to nearest
	// (their inputs are different channels, not neighbouring pixels).
	RoundKeepSum
)

// String returns the rule's name as the command line spells it.
func (r WeightRounding) String() string {
	switch r {
	case RoundDefault:
		return "default"
	case RoundNearest:
		return "nearest"
	case RoundKeepSum:
		return "keep-sum"
	}
	return fmt.Sprintf("WeightRounding(%d)", int(r))
}

// ParseWeightRounding parses "nearest", "keep-sum" or "default".
func ParseWeightRounding(s string) (WeightRounding, error) {
	for _, r := range []WeightRounding{RoundDefault, RoundNearest, RoundKeepSum} {
		if s == r.String() {
			return r, nil
		}
	}
	return 0, fmt.Errorf("quantize: unknown weight rounding %q (want nearest, keep-sum or default)", s)
}

// keepSum reports whether weights round with RoundKeepSum.
func (o Options) keepSum() bool {
	switch o.WeightRounding {
	case RoundKeepSum:
		return true
	case RoundDefault:
		return o.Engine == "quanta" && !o.QAT
	}
	return false
}

// resolve fills in the defaults.
func (o Options) resolve() (Options, error) {
	if o.Engine == "" {
		o.Engine = "quanta"
	}
	var err error
	if o.Backend == nil {
		if o.Backend, err = quant.GetBackendConfig(o.Engine); err != nil {
			return o, err
		}
	}
	if o.Mapping == nil {
		if o.QAT {
			o.Mapping, err = quant.DefaultQATQConfigMapping(o.Engine)
		} else {
			o.Mapping, err = quant.DefaultQConfigMapping(o.Engine)
		}
		if err != nil {
			return o, err
		}
	}
	return o, nil
}

// Point is a quantized tensor edge: a value whose observer (or fake
// quantizer) decides its qparams. Values that must share qparams share
// one Observer.
type Point struct {
	// Value is the observed value.
	Value *graph.Value
	// Observer computes the value's qparams.
	Observer observer.Observer
	// Fixed marks PyTorch's fixed qparams (sigmoid, softmax, tanh, ...).
	Fixed bool
	// all says every reader of Value reads the quantized value (the value
	// is computed by a quantized unit); otherwise only quantized units do.
	all   bool
	group *group
	// units are the quantized units reading or writing Value.
	units []*Unit
}

// Weight is a constant weight a unit quantizes.
type Weight struct {
	// Node is the op reading the weight, at input Input.
	Node  *graph.Node
	Input int
	// Observer computes the weight's qparams. It observes the weight laid
	// out with its output-channel axis first; Axis is that axis in the
	// weight as stored.
	Observer observer.Observer
	// Axis is the output-channel axis of the stored weight (0 for Conv
	// and Gemm with transB, 1 for MatMul, Gemm without transB and
	// ConvTranspose).
	Axis int
	// PerTensor forces one scale (grouped ConvTranspose, whose output
	// channels are not one axis of the weight).
	PerTensor bool
}

// Unit is a group of nodes quantized as one: a fused pattern, a single
// op, or a chain of element-wise ops on one activation.
type Unit struct {
	// Nodes are the unit's nodes in execution order.
	Nodes []*graph.Node
	// Key names the pattern ("Conv2d+ReLU", "Linear", "Elementwise").
	Key string
	// QConfig is the unit's qconfig (nil: float).
	QConfig *quant.QConfig
	// Quantized says the unit runs quantized.
	Quantized bool
	// Reason says why a unit with a kind stays float.
	Reason string
	// Inputs are the activation inputs; Outputs the values it computes
	// for others.
	Inputs, Outputs []*graph.Value
	// OutputQuantized says the outputs are quantized (false for a
	// weighted op read only by float ops).
	OutputQuantized bool
	// Weight is the quantized weight, if any.
	Weight *Weight

	obs      quant.ObservationType
	cfg      *quant.BackendPatternConfig
	weighted bool
	cat      bool
}

// group is a set of values sharing one observer.
type group struct {
	obs    observer.Observer
	fixed  bool
	points []*Point
	parent *group
}

func (g *group) find() *group {
	for g.parent != nil {
		g = g.parent
	}
	return g
}

// Prepared is a model made ready for calibration, PyTorch's observed
// GraphModule: the float model after the graph passes, the observation
// points and the weights to quantize.
type Prepared struct {
	// Model is the float model the observers sit on (BN folded, opset
	// raised); Convert rewrites a copy of it.
	Model *graph.Model
	// Points are the observed values, in graph order.
	Points []*Point
	// Weights are the weights to quantize.
	Weights []*Weight
	// Units are the quantizable units found, in graph order, with the
	// decision taken for each.
	Units []*Unit
	// Feeds counts the feeds observed.
	Feeds int

	opts    Options
	byValue map[*graph.Value][]*Point
	prog    *exec.Program
	eq      []*eqPoint
	eqOf    map[*graph.Value]*eqPoint
}

// Prepare readies m for calibration: it copies m (m is never changed),
// raises its opset to 13 if older, folds batch norms, finds the units to
// quantize and puts observers on their edges. Weights are observed at
// once. Errors name the node at fault.
func Prepare(m *graph.Model, opts Options) (*Prepared, error) {
	opts, err := opts.resolve()
	if err != nil {
		return nil, fmt.Errorf("quantize: Prepare: %w", err)
	}
	if opts.QAT && len(opts.Int16) > 0 {
		return nil, errors.New("quantize: Prepare: Int16 is for post-training static quantization, not QAT")
	}
	pm, err := preprocess(m)
	if err != nil {
		return nil, err
	}
	p := &Prepared{Model: pm, opts: opts, byValue: map[*graph.Value][]*Point{}}
	a := newAnalysis(pm, opts)
	if err := a.run(); err != nil {
		return nil, err
	}
	p.Units = a.units
	for _, u := range a.units {
		if u.Weight != nil && u.Quantized {
			if err := observeWeight(u.Weight); err != nil {
				return nil, err
			}
			p.Weights = append(p.Weights, u.Weight)
		}
	}
	for _, pt := range a.points {
		pt.Observer = pt.group.find().obs
		pt.Fixed = pt.group.find().fixed
		p.Points = append(p.Points, pt)
		p.byValue[pt.Value] = append(p.byValue[pt.Value], pt)
	}
	p.eqOf = map[*graph.Value]*eqPoint{}
	if !opts.NoEqualize && !opts.QAT {
		p.eq = a.findEqualization()
		for _, e := range p.eq {
			p.eqOf[e.x] = e
		}
	}
	return p, nil
}

// Preprocess returns the float model Prepare and QuantizeDynamic start
// from: a copy of m (m is not changed) raised to opset 13 if older, with
// Constant nodes (and Identity and Transpose nodes of constants) turned
// into initializers, inference batch norms folded into the Conv,
// ConvTranspose or Gemm before them, and shapes inferred. Tools that
// compare a float model with its quantized form (package numeric) run the
// float side through it, so both sides hold the same folded layers.
func Preprocess(m *graph.Model) (*graph.Model, error) { return preprocess(m) }

// preprocess copies m and applies the passes every mode needs.
func preprocess(m *graph.Model) (*graph.Model, error) {
	if m == nil || m.Graph == nil {
		return nil, errors.New("quantize: nil model")
	}
	pm := m.Clone()
	if pm.Opset("") < 13 {
		if _, err := passes.UpgradeOpset(pm, 13); err != nil {
			return nil, fmt.Errorf("quantize: raising the opset to 13 (per-channel DequantizeLinear needs it): %w", err)
		}
	}
	if err := graph.Sort(pm.Graph); err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	// Constants first: exporters feed weights and batch-norm parameters
	// through Constant and Identity nodes, which FoldBatchNorm must see
	// as initializers.
	foldConstants(pm.Graph)
	if _, err := passes.FoldBatchNorm(pm.Graph); err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	if _, err := exec.InferShapes(pm); err != nil {
		return nil, fmt.Errorf("quantize: shape inference: %w", err)
	}
	return pm, nil
}

// foldConstants turns Constant nodes, and Identity and Transpose nodes
// of constants (exporters route weights through them; a traced Linear on
// a 3-D input reads its weight through a Transpose), into initializers,
// so weights and scalar operands are constants the ops read directly.
func foldConstants(g *graph.Graph) {
	var keep []*graph.Node
	for _, n := range g.Nodes {
		for _, sg := range n.Subgraphs() {
			foldConstants(sg)
		}
		if t := constOf(n); t != nil && len(n.Outputs) == 1 && n.Outputs[0] != nil {
			o := n.Outputs[0]
			o.Const = t
			o.Producer = nil
			declared := o.Type
			o.Type = graph.TypeOf(t)
			if declared.Elem != graph.Undefined && declared.Elem != o.Type.Elem {
				o.Type.Elem = declared.Elem // e.g. a float16 constant held as float32
			}
			g.Initializers = append(g.Initializers, o)
			continue
		}
		keep = append(keep, n)
	}
	g.Nodes = keep
}

// constOf returns the value of a Constant node, or of an Identity or
// Transpose of a constant, else nil.
func constOf(n *graph.Node) *tensor.Tensor {
	if !(n.Domain == "" || n.Domain == "ai.onnx") {
		return nil
	}
	switch n.OpType {
	case "Constant":
		if t, err := exec.ConstantValue(n); err == nil {
			return t
		}
	case "Identity":
		if len(n.Inputs) == 1 && n.Inputs[0].IsConst() {
			return n.Inputs[0].Const
		}
	case "Transpose":
		if len(n.Inputs) == 1 && n.Inputs[0].IsConst() && n.Inputs[0].Const.DType() == tensor.Float32 {
			c := n.Inputs[0].Const
			perm := make([]int, c.NDim())
			for i := range perm {
				perm[i] = c.NDim() - 1 - i
			}
			if a, ok := n.Attrs["perm"]; ok && len(a.Is) == c.NDim() {
				for i, p := range a.Is {
					perm[i] = int(p)
				}
			}
			return tensor.Permute(c, perm...)
		}
	}
	return nil
}

// analysis finds units and points.
type analysis struct {
	m       *graph.Model
	opts    Options
	units   []*Unit
	unitOf  map[*graph.Node]*Unit
	points  []*Point
	groupOf map[*graph.Value]*Point // the point of a value (one per value)
	qval    map[*graph.Value]bool   // outputs of quantized units
	wide    map[*graph.Value]bool   // outputs of 16-bit quantized units
	outputs map[*graph.Value]bool   // graph outputs (any graph)
	users   map[*graph.Value][]*graph.Node
	orders  map[string]int
}

func newAnalysis(m *graph.Model, opts Options) *analysis {
	return &analysis{m: m, opts: opts, unitOf: map[*graph.Node]*Unit{}, groupOf: map[*graph.Value]*Point{},
		qval: map[*graph.Value]bool{}, wide: map[*graph.Value]bool{}, outputs: map[*graph.Value]bool{}, orders: map[string]int{}}
}

func (a *analysis) run() error {
	a.users = readers(a.m.Graph)
	if err := a.graph(a.m.Graph); err != nil {
		return err
	}
	a.decide()
	a.observe()
	return nil
}

// readers maps each value to the nodes that read it, in any graph (a node
// of a subgraph reading an enclosing value is listed itself).
func readers(g *graph.Graph) map[*graph.Value][]*graph.Node {
	u := map[*graph.Value][]*graph.Node{}
	var walk func(g *graph.Graph)
	walk = func(g *graph.Graph) {
		for _, n := range g.Nodes {
			seen := map[*graph.Value]bool{}
			for _, in := range n.Inputs {
				if in != nil && !seen[in] {
					seen[in] = true
					u[in] = append(u[in], n)
				}
			}
			for _, sg := range n.Subgraphs() {
				walk(sg)
			}
		}
	}
	walk(g)
	return u
}

// graph finds the units of g and of its subgraphs, in execution order.
func (a *analysis) graph(g *graph.Graph) error {
	for _, o := range g.Outputs {
		a.outputs[o] = true
	}
	matches, err := passes.FusePatterns(g, a.opts.Backend)
	if err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	byRoot := map[*graph.Node]passes.Match{}
	for _, mt := range matches {
		if mt.Root.Graph != g {
			continue
		}
		byRoot[mt.Root] = mt
	}
	claimed := map[*graph.Node]bool{}
	region := map[*graph.Value]*Unit{} // element-wise region by root value
	rootOf := map[*graph.Value]*graph.Value{}
	for _, n := range g.Nodes {
		for _, sg := range n.Subgraphs() {
			if err := a.graph(sg); err != nil {
				return err
			}
		}
		if claimed[n] {
			continue
		}
		if mt, ok := byRoot[n]; ok && usableMatch(mt) {
			u := &Unit{Nodes: mt.Nodes, Key: mt.Key, cfg: mt.Config}
			for _, x := range mt.Nodes {
				claimed[x] = true
			}
			a.add(u)
			continue
		}
		if r, ok := a.elementwiseRoot(n, rootOf); ok {
			u := region[r]
			if u == nil {
				u = &Unit{Key: "Elementwise"}
				region[r] = u
				a.add(u)
			}
			u.Nodes = append(u.Nodes, n)
			a.unitOf[n] = u
			rootOf[n.Outputs[0]] = r
			continue
		}
		kind := passes.OpKind(n)
		cfg := a.opts.Backend.Lookup(kind)
		if kind == "" || cfg == nil || kind == "Embedding" || isRNN(kind) {
			continue
		}
		a.add(&Unit{Nodes: []*graph.Node{n}, Key: kind, cfg: cfg})
	}
	return nil
}

// usableMatch drops the matches graph mode splits: Conv+Add(+ReLU) (the
// Add is quantized on its own so both int8 steps have standard QDQ
// forms) and Add/Mul+ReLU whose Add has a constant operand (an element-
// wise chain instead).
func usableMatch(mt passes.Match) bool {
	if strings.HasPrefix(mt.Key, "Conv") && strings.Contains(mt.Key, "+Add") {
		return false
	}
	if r := mt.Root; (r.OpType == "Add" || r.OpType == "Mul") && (r.Input(0).IsConst() || r.Input(1).IsConst()) {
		return false
	}
	return true
}

func isRNN(kind string) bool {
	switch kind {
	case "LSTM", "GRU", "LSTMCell", "GRUCell", "RNNCell":
		return true
	}
	return false
}

// elementwiseOps are the float element-wise ops a chain on one
// activation may hold.
var elementwiseOps = map[string]bool{
	"Add": true, "Sub": true, "Mul": true, "Div": true, "Clip": true, "Relu": true, "Sigmoid": true,
	"HardSigmoid": true, "HardSwish": true, "Tanh": true, "LeakyRelu": true, "Elu": true, "Neg": true,
	"Abs": true, "Max": true, "Min": true, "Selu": true, "Softplus": true, "Softsign": true, "Celu": true,
}

// elementwiseRoot reports whether n is an element-wise op whose
// non-constant inputs are one activation r or values computed from r by
// an element-wise chain, with scalar constants, and returns r.
func (a *analysis) elementwiseRoot(n *graph.Node, rootOf map[*graph.Value]*graph.Value) (*graph.Value, bool) {
	if !elementwiseOps[n.OpType] || !(n.Domain == "" || n.Domain == "ai.onnx") || len(n.Outputs) != 1 || n.Outputs[0] == nil {
		return nil, false
	}
	var root *graph.Value
	for _, in := range n.Inputs {
		if in == nil {
			continue
		}
		if in.IsConst() {
			if in.Const.Numel() != 1 {
				return nil, false
			}
			continue
		}
		r := in
		if rr, ok := rootOf[in]; ok {
			r = rr
		}
		if root != nil && r != root {
			return nil, false
		}
		root = r
	}
	if root == nil || !isFloat(root) || !isFloat(n.Outputs[0]) {
		return nil, false
	}
	// A single binary op of two activations is not a chain.
	return root, true
}

func isFloat(v *graph.Value) bool { return v != nil && v.Type.Elem == graph.Float }

func (a *analysis) add(u *Unit) {
	a.units = append(a.units, u)
	for _, n := range u.Nodes {
		a.unitOf[n] = u
	}
}

// decide gives every unit its qconfig, inputs, outputs and whether it is
// quantized.
func (a *analysis) decide() {
	for _, u := range a.units {
		a.shape(u)
	}
	// Forward propagation in execution order (units are in that order,
	// subgraph units before their node's own graph continues).
	for _, u := range a.units {
		root := u.Nodes[0]
		u.QConfig = a.qconfig(u)
		if u.QConfig != nil && u.QConfig.Activation != nil && !a.excluded(u) && (a.matches(u, a.opts.Int16) || a.insideWide(u)) {
			u.QConfig = quant.Int16QConfig
		}
		switch {
		case u.QConfig == nil || u.QConfig.Activation == nil:
			u.Reason = "no qconfig"
		case a.excluded(u):
			u.Reason = "excluded"
			u.QConfig = nil
		case !allFloat(u.Inputs) || !allFloat(u.Outputs) || len(u.Outputs) == 0:
			u.Reason = "not a float activation"
		case u.weighted:
			if u.QConfig.Weight == nil {
				u.Reason = "no weight qconfig"
				break
			}
			u.Quantized = true
		default:
			anyQ := false
			for _, in := range u.Inputs {
				anyQ = anyQ || a.qval[in]
			}
			out := false
			for _, o := range u.Outputs {
				out = out || a.outputs[o]
			}
			switch {
			case !anyQ:
				u.Reason = "inputs are float"
			case out:
				u.Reason = "computes a graph output"
			default:
				u.Quantized = true
			}
		}
		_ = root
		if u.Quantized {
			u.OutputQuantized = true
			wide := quant.Is16Bit(u.QConfig.Activation().Config())
			for _, o := range u.Outputs {
				a.qval[o] = true
				a.wide[o] = wide
			}
		}
	}
	// Backwards: an activation-only unit whose outputs only float ops
	// read gains nothing from being quantized: it computes in float from
	// its dequantized inputs instead.
	for i := len(a.units) - 1; i >= 0; i-- {
		u := a.units[i]
		if !u.Quantized {
			continue
		}
		need := false
		for _, o := range u.Outputs {
			for _, r := range a.users[o] {
				if ru := a.unitOf[r]; ru != nil && ru.Quantized && ru != u {
					need = true
				}
			}
		}
		if need || u.weighted {
			// Weighted ops keep quantized outputs, as PyTorch's convert
			// gives them: the int8 kernel then writes the output codes,
			// which every runtime reproduces exactly (a float output
			// would leave each runtime's own float rounding, amplified
			// by a softmax after it).
			continue
		}
		u.OutputQuantized = false
		for _, o := range u.Outputs {
			delete(a.qval, o)
		}
		if !u.weighted {
			u.Quantized = false
			u.Reason = "only float ops read its output"
		}
	}
}

// insideWide reports whether u, an op without weights, reads only
// 16-bit quantized values (among its quantized inputs, of which it has
// one at least): the element-wise ops after a 16-bit convolution then
// stay in 16 bits with it.
func (a *analysis) insideWide(u *Unit) bool {
	if u.weighted {
		return false
	}
	any := false
	for _, in := range u.Inputs {
		if a.qval[in] {
			if !a.wide[in] {
				return false
			}
			any = true
		}
	}
	return any
}

// shape fills a unit's inputs, outputs, observation type and weight.
func (a *analysis) shape(u *Unit) {
	inUnit := map[*graph.Node]bool{}
	for _, n := range u.Nodes {
		inUnit[n] = true
	}
	root := u.Nodes[0]
	if u.cfg != nil {
		u.obs = u.cfg.Observation
		u.weighted = u.cfg.HasWeight
	}
	if u.Key == "Elementwise" && len(u.Nodes) == 1 {
		if cfg := a.opts.Backend.Lookup(passes.OpKind(root)); cfg != nil {
			u.cfg, u.obs = cfg, cfg.Observation
		}
	}
	u.cat = root.OpType == "Concat"
	seen := map[*graph.Value]bool{}
	addIn := func(v *graph.Value) {
		if v != nil && !v.IsConst() && !seen[v] {
			seen[v] = true
			u.Inputs = append(u.Inputs, v)
		}
	}
	for _, n := range u.Nodes {
		idx := activationInputs(n)
		for _, i := range idx {
			in := n.Input(i)
			if in != nil && in.Producer != nil && inUnit[in.Producer] {
				continue
			}
			addIn(in)
		}
	}
	for _, n := range u.Nodes {
		for _, o := range n.Outputs {
			if o == nil {
				continue
			}
			external := a.outputs[o]
			for _, r := range a.users[o] {
				if !inUnit[r] {
					external = true
				}
			}
			if external {
				u.Outputs = append(u.Outputs, o)
			}
		}
	}
	if u.weighted {
		w := root.Input(1)
		if w == nil || !w.IsConst() || w.Const.DType() != tensor.Float32 {
			u.weighted = false // a MatMul of two activations, or a weight computed at run time
			if root.OpType == "MatMul" {
				u.Inputs = nil
				seen = map[*graph.Value]bool{}
				addIn(root.Input(0))
				addIn(root.Input(1))
			}
			return
		}
		u.Weight = &Weight{Node: root, Input: 1}
		switch root.OpType {
		case "Conv":
			u.Weight.Axis = 0
		case "ConvTranspose":
			u.Weight.Axis = 1
			if g, _ := root.Int("group", 1); g != 1 {
				u.Weight.PerTensor = true
			}
		case "Gemm":
			if tb, _ := root.Int("transB", 0); tb == 1 {
				u.Weight.Axis = 0
			} else {
				u.Weight.Axis = 1
			}
		case "MatMul":
			u.Weight.Axis = 1
			if w.Const.NDim() != 2 {
				u.weighted = false
				u.Weight = nil
			}
		}
	}
}

// activationInputs lists the inputs of n that carry activations to
// quantize (never shapes, indices, scales or weights).
func activationInputs(n *graph.Node) []int {
	switch n.OpType {
	case "Conv", "ConvTranspose", "Gemm", "Resize", "Upsample", "Reshape", "Slice", "Squeeze", "Unsqueeze",
		"Expand", "Tile", "Pad", "Split", "Gather", "Clip", "BatchNormalization", "LayerNormalization",
		"InstanceNormalization", "Flatten", "Transpose", "MaxPool", "AveragePool", "GlobalAveragePool",
		"GlobalMaxPool", "ReduceMean", "Identity", "Dropout", "Relu", "Sigmoid", "HardSigmoid", "HardSwish",
		"Tanh", "Softmax", "LeakyRelu", "Elu", "Gelu":
		return []int{0}
	case "MatMul":
		if n.Input(1).IsConst() {
			return []int{0}
		}
		return []int{0, 1}
	}
	idx := make([]int, len(n.Inputs))
	for i := range idx {
		idx[i] = i
	}
	return idx
}

func allFloat(vs []*graph.Value) bool {
	for _, v := range vs {
		if !isFloat(v) {
			return false
		}
	}
	return true
}
