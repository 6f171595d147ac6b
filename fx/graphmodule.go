package fx

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/quant/fakequant"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

// GraphModule is torch.fx.GraphModule for quanta: an nn module that runs a
// graph.Model by interpreting it through package ops, node by node, so that
// autograd records gradients and the graph can be trained like the Go
// model it was traced from. It is the inverse of tracing: every ONNX
// operator the lowering table emits maps back to ops calls (the GELU
// formula comes back as its Div, Erf, Add and Mul parts, a Linear on 3-D
// inputs as Transpose, MatMul and Add).
//
// Initializers named in GraphModuleOptions.Parameters are the module's
// parameters (they require grad, nn.Parameters lists them under their
// initializer names, so an optimizer trains them); the other float32
// initializers are its buffers. The module shares the model's initializer
// tensors: training changes the model's weights in place, which is how a
// graph trained with quantization-aware training is then converted.
//
// Observers and fake quantizers attach to values by name (SetObservers)
// and to weights by node and input (SetWeightObservers); that is how
// graph-mode calibration and QAT run on the interpreter.
//
// The interpreter runs inputs of other batch sizes than the traced example
// as long as the graph does not hold shapes computed from the example (a
// Reshape to a literal [N, -1]).
type GraphModule struct {
	nn.Base

	model  *graph.Model
	order  []*graph.Node
	consts map[*graph.Value]*tensor.Tensor
	params map[string]bool

	observers map[*graph.Value]observer.Observer
	weights   map[*graph.Node]map[int]weightHook
}

// GraphModuleOptions configure NewGraphModule.
type GraphModuleOptions struct {
	// Parameters names the initializers that are trainable parameters. A
	// name the graph does not hold is an error; non-float32 initializers
	// cannot be parameters.
	Parameters []string
}

// NewGraphModule returns a module interpreting m. It checks that the graph
// verifies, sorts it topologically, and that every node's operator is one
// the interpreter runs (SupportedOpTypes); subgraphs (If, Loop) are not
// supported. The module is in training mode, as every new nn module.
func NewGraphModule(m *graph.Model, opts GraphModuleOptions) (*GraphModule, error) {
	if m == nil || m.Graph == nil {
		return nil, errors.New("fx: NewGraphModule: nil model")
	}
	g := m.Graph
	if err := graph.Verify(g); err != nil {
		return nil, fmt.Errorf("fx: NewGraphModule: %w", err)
	}
	if err := graph.Sort(g); err != nil {
		return nil, fmt.Errorf("fx: NewGraphModule: %w", err)
	}
	gm := &GraphModule{model: m, order: append([]*graph.Node(nil), g.Nodes...),
		consts: map[*graph.Value]*tensor.Tensor{}, params: map[string]bool{}}
	for _, n := range g.Nodes {
		if n.Domain != "" && n.Domain != "ai.onnx" {
			return nil, fmt.Errorf("fx: NewGraphModule: node %s: domain %q is not supported", n, n.Domain)
		}
		if _, ok := interpreters[n.OpType]; !ok {
			return nil, fmt.Errorf("fx: NewGraphModule: node %s: operator %s is not supported by the interpreter", n, n.OpType)
		}
		if len(n.Subgraphs()) > 0 {
			return nil, fmt.Errorf("fx: NewGraphModule: node %s: subgraphs are not supported", n)
		}
	}
	byName := map[string]*graph.Value{}
	for _, v := range g.Initializers {
		byName[v.Name] = v
	}
	for _, name := range opts.Parameters {
		v, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("fx: NewGraphModule: parameter %q is not an initializer of the graph", name)
		}
		if v.Const.DType() != tensor.Float32 {
			return nil, fmt.Errorf("fx: NewGraphModule: parameter %q is %s, want float32", name, v.Const.DType())
		}
		gm.params[name] = true
	}
	for _, v := range g.Initializers {
		t := v.Const
		gm.consts[v] = t
		switch {
		case gm.params[v.Name]:
			gm.RegisterParameter(v.Name, t)
		case t.DType() == tensor.Float32:
			gm.RegisterBuffer(v.Name, t)
		}
	}
	for _, v := range g.Inputs {
		if v.Const != nil {
			gm.consts[v] = v.Const
		}
	}
	return gm, nil
}

// Model returns the interpreted model; its initializers are the module's
// parameters and buffers.
func (gm *GraphModule) Model() *graph.Model { return gm.model }

// TypeName implements nn.Typer.
func (gm *GraphModule) TypeName() string { return "GraphModule" }

// Forward runs a model of one input and one output on x. It panics with an
// "fx: ..." message naming the node when the model cannot run on x (Run
// returns that error instead).
func (gm *GraphModule) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(gm, x, func(x *tensor.Tensor) *tensor.Tensor {
		if len(gm.model.Graph.Inputs) != 1 || len(gm.model.Graph.Outputs) != 1 {
			panic(fmt.Sprintf("fx: GraphModule.Forward: the model has %d inputs and %d outputs, want 1 and 1 (use Run)",
				len(gm.model.Graph.Inputs), len(gm.model.Graph.Outputs)))
		}
		out, err := gm.Run(x)
		if err != nil {
			panic(err.Error())
		}
		return out[0]
	})
}

// Run runs the model on its inputs, in order, and returns its outputs in
// order. Gradients are recorded when autograd is on and a parameter or
// input requires grad. An input with a default value may be nil.
func (gm *GraphModule) Run(inputs ...*tensor.Tensor) (outs []*tensor.Tensor, err error) {
	g := gm.model.Graph
	if len(inputs) != len(g.Inputs) {
		return nil, fmt.Errorf("fx: GraphModule.Run: %d inputs, the model has %d (%s)", len(inputs), len(g.Inputs), valueNames(g.Inputs))
	}
	vals := make(map[*graph.Value]*tensor.Tensor, len(gm.consts)+len(gm.order))
	for v, t := range gm.consts {
		vals[v] = t
	}
	for i, v := range g.Inputs {
		x := inputs[i]
		if x == nil {
			if v.Const == nil {
				return nil, fmt.Errorf("fx: GraphModule.Run: input %q is nil", v.Name)
			}
			continue
		}
		if want, ok := v.Type.Elem.DType(); ok && v.Type.Elem != graph.Undefined && x.DType() != want {
			return nil, fmt.Errorf("fx: GraphModule.Run: input %q is %s, the model declares %s", v.Name, x.DType(), v.Type)
		}
		if x, err = gm.hook(v, x); err != nil {
			return nil, err
		}
		vals[v] = x
	}
	for _, n := range gm.order {
		if err := gm.step(n, vals); err != nil {
			return nil, err
		}
	}
	outs = make([]*tensor.Tensor, len(g.Outputs))
	for i, v := range g.Outputs {
		outs[i] = vals[v]
	}
	return outs, nil
}

// step runs node n, reading and writing vals.
func (gm *GraphModule) step(n *graph.Node, vals map[*graph.Value]*tensor.Tensor) (err error) {
	in := make([]*tensor.Tensor, len(n.Inputs))
	for i, v := range n.Inputs {
		if v == nil {
			continue
		}
		t, ok := vals[v]
		if !ok {
			return fmt.Errorf("fx: GraphModule: node %s reads %q before it is computed", n, v.Name)
		}
		if h, ok := gm.weights[n][i]; ok {
			if t, err = h.apply(t); err != nil {
				return fmt.Errorf("fx: GraphModule: node %s: weight %q: %w", n, v.Name, err)
			}
		}
		in[i] = t
	}
	var out []*tensor.Tensor
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%v", r)
			}
		}()
		out, err = interpreters[n.OpType](n, in)
	}()
	if err != nil {
		return fmt.Errorf("fx: GraphModule: node %s: %w", n, err)
	}
	for i, v := range n.Outputs {
		if v == nil {
			continue
		}
		if i >= len(out) || out[i] == nil {
			return fmt.Errorf("fx: GraphModule: node %s: output %d (%s) is not computed by the interpreter", n, i, v.Name)
		}
		y, err := gm.hook(v, out[i])
		if err != nil {
			return err
		}
		vals[v] = y
	}
	return nil
}

// hook applies the observer of value v to x, if any.
func (gm *GraphModule) hook(v *graph.Value, x *tensor.Tensor) (*tensor.Tensor, error) {
	obs := gm.observers[v]
	if obs == nil {
		return x, nil
	}
	y, err := applyObserver(obs, x)
	if err != nil {
		return nil, fmt.Errorf("fx: GraphModule: observing %q: %w", v.Name, err)
	}
	return y, nil
}

// applyObserver fake-quantizes x with a fakequant.FakeQuantizer (which
// also observes, when its observer is enabled), or records x with any
// other observer and returns x unchanged.
func applyObserver(obs observer.Observer, x *tensor.Tensor) (*tensor.Tensor, error) {
	if fq, ok := obs.(fakequant.FakeQuantizer); ok {
		return fq.Forward(x)
	}
	if err := obs.Observe(x.Detach()); err != nil {
		return nil, err
	}
	return x, nil
}

// SetObservers attaches observers to values by name, replacing those set
// before (nil or an empty map removes them all). On every Run, a value with
// an observer is recorded by it (post-training calibration), or, when the
// observer is a fakequant.FakeQuantizer, replaced by its fake-quantized
// value (quantization-aware training; gradients pass by the straight-
// through estimator) before any node reads it. One observer may watch
// several values (values that share qparams). An unknown name is an error.
func (gm *GraphModule) SetObservers(obs map[string]observer.Observer) error {
	byName := map[string]*graph.Value{}
	for _, v := range gm.model.Graph.Values() {
		byName[v.Name] = v
	}
	m := map[*graph.Value]observer.Observer{}
	for _, name := range sortedKeys(obs) {
		v, ok := byName[name]
		if !ok {
			return fmt.Errorf("fx: SetObservers: the graph has no value %q", name)
		}
		if obs[name] == nil {
			return fmt.Errorf("fx: SetObservers: nil observer for %q", name)
		}
		m[v] = obs[name]
	}
	gm.observers = m
	return nil
}

// WeightHook attaches an observer or fake quantizer to input Input (a
// weight) of the node called Node.
type WeightHook struct {
	Node  string
	Input int
	// Observer records the weight, or fake-quantizes it when it is a
	// fakequant.FakeQuantizer.
	Observer observer.Observer
	// Axis is the weight's output-channel axis: the observer sees the
	// weight with that axis moved first (as graph/quantize's weight
	// observers expect), and the result is moved back.
	Axis int
	// PerTensor makes the observer see the weight as one row [1, numel].
	PerTensor bool
}

// weightHook is a WeightHook resolved to its node.
type weightHook struct {
	obs       observer.Observer
	axis      int
	perTensor bool
}

// SetWeightObservers attaches observers to node inputs (weights),
// replacing those set before. On every Run, the input is recorded by its
// observer, or replaced by its fake-quantized value for a
// fakequant.FakeQuantizer, as the node reads it (the parameter itself is
// not changed, so the optimizer updates the float weight, as in PyTorch's
// QAT modules). An unknown node, input or axis is an error.
func (gm *GraphModule) SetWeightObservers(hooks []WeightHook) error {
	byName := map[string]*graph.Node{}
	for _, n := range gm.order {
		byName[n.Name] = n
	}
	m := map[*graph.Node]map[int]weightHook{}
	for _, h := range hooks {
		n, ok := byName[h.Node]
		if !ok {
			return fmt.Errorf("fx: SetWeightObservers: the graph has no node %q", h.Node)
		}
		if h.Input < 0 || h.Input >= len(n.Inputs) || n.Inputs[h.Input] == nil {
			return fmt.Errorf("fx: SetWeightObservers: node %s has no input %d", n, h.Input)
		}
		if h.Observer == nil {
			return fmt.Errorf("fx: SetWeightObservers: nil observer for input %d of %s", h.Input, n)
		}
		if r := n.Inputs[h.Input].Type.Rank(); h.Axis < 0 || r >= 0 && h.Axis >= max(r, 1) {
			return fmt.Errorf("fx: SetWeightObservers: axis %d for input %d of %s (rank %d)", h.Axis, h.Input, n, r)
		}
		if m[n] == nil {
			m[n] = map[int]weightHook{}
		}
		m[n][h.Input] = weightHook{h.Observer, h.Axis, h.PerTensor}
	}
	gm.weights = m
	return nil
}

// apply observes or fake-quantizes weight w in the observer's layout.
func (h weightHook) apply(w *tensor.Tensor) (*tensor.Tensor, error) {
	switch {
	case h.perTensor:
		y, err := applyObserver(h.obs, ops.Reshape(w, 1, w.Numel()))
		if err != nil {
			return nil, err
		}
		return ops.Reshape(y, w.Shape()...), nil
	case h.axis != 0:
		perm := make([]int, w.NDim())
		for i := range perm {
			perm[i] = i
		}
		perm[0], perm[h.axis] = h.axis, 0
		y, err := applyObserver(h.obs, ops.Permute(w, perm...))
		if err != nil {
			return nil, err
		}
		return ops.Permute(y, perm...), nil
	}
	return applyObserver(h.obs, w)
}

// SupportedOpTypes returns the ONNX operator types GraphModule interprets,
// sorted: every operator tracing emits, plus a few more.
func SupportedOpTypes() []string {
	s := make([]string, 0, len(interpreters))
	for k := range interpreters {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

func valueNames(vs []*graph.Value) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = v.Name
	}
	return strings.Join(s, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	s := make([]string, 0, len(m))
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}
