package fx

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// Opset is the default-domain ONNX opset of traced models.
const Opset = 17

// irVersion is the ONNX IR version released with opset 17.
const irVersion = 8

// traceMu serializes traces: the tracer is process-wide.
var traceMu sync.Mutex

// Trace runs model once on the example input, with gradients off and in
// the mode the model is in (call nn.Eval first), and returns the graph of
// what it computed. It takes exactly one example, as model is a Layer; use
// TraceFunc for models with several inputs or outputs.
func Trace(model nn.Layer, example ...*tensor.Tensor) (*graph.Model, error) {
	if model == nil {
		return nil, errors.New("fx: Trace: nil model")
	}
	if len(example) != 1 {
		return nil, fmt.Errorf("fx: Trace: a Layer takes one example input, got %d (use TraceFunc)", len(example))
	}
	return TraceFunc(func(in []*tensor.Tensor) []*tensor.Tensor {
		return []*tensor.Tensor{model.Forward(in[0])}
	}, model, example)
}

// TraceFunc runs fn once on the example inputs and returns the graph of
// what it computed, with fn's results as the graph outputs. root is the
// module whose parameters and buffers fn reads: they become initializers
// named by their state-dict keys, and module paths are reported relative
// to it. root may be nil, in which case every tensor read is a "const_N".
//
// If the module paths recorded in root's modules do not match root's
// structure (a model never given paths), TraceFunc assigns them with
// nn.AssignPaths first. A panic in fn is returned as an error.
func TraceFunc(fn func(in []*tensor.Tensor) []*tensor.Tensor, root nn.Module, example []*tensor.Tensor) (*graph.Model, error) {
	if fn == nil {
		return nil, errors.New("fx: TraceFunc: nil function")
	}
	if len(example) == 0 {
		return nil, errors.New("fx: TraceFunc: no example inputs")
	}
	for i, x := range example {
		if x == nil {
			return nil, fmt.Errorf("fx: example input %d is nil", i)
		}
		if x.DType().IsQuantized() {
			return nil, fmt.Errorf("fx: example input %d is %s: trace the float model", i, x.DType())
		}
		for j := 0; j < i; j++ {
			if example[j] == x {
				return nil, fmt.Errorf("fx: example inputs %d and %d are the same tensor", j, i)
			}
		}
	}
	traceMu.Lock()
	defer traceMu.Unlock()

	name := "main"
	if root != nil {
		name = nn.TypeName(root)
	}
	t := newTracer(graph.New(name), root)
	for i, x := range example {
		n := "input"
		if len(example) > 1 {
			n = "input_" + strconv.Itoa(i)
		}
		t.values[x] = t.g.AddInput(t.uniqueValue(n), graph.TypeOf(x))
	}
	outs, err := t.run(fn, example)
	if err != nil {
		return nil, err
	}
	if err := t.finish(outs); err != nil {
		return nil, err
	}
	graph.EliminateDeadCode(t.g)
	if err := graph.Verify(t.g); err != nil {
		return nil, fmt.Errorf("fx: the traced graph is malformed: %w", err)
	}
	return &graph.Model{
		Graph:        t.g,
		Opsets:       map[string]int64{"": Opset},
		IRVersion:    irVersion,
		ProducerName: "quanta",
		DocString:    "traced by quanta fx from " + name,
	}, nil
}

// run installs t as the tracer, runs fn and restores the previous tracer.
func (t *tracer) run(fn func(in []*tensor.Tensor) []*tensor.Tensor, example []*tensor.Tensor) (outs []*tensor.Tensor, err error) {
	prev := ops.SetTracer(t)
	defer ops.SetTracer(prev)
	defer func() {
		if r := recover(); r != nil {
			if t.err != nil {
				err = t.err
				return
			}
			err = fmt.Errorf("fx: the model panicked while tracing: %v", r)
		}
	}()
	in := append([]*tensor.Tensor(nil), example...)
	autograd.NoGrad(func() { outs = fn(in) })
	if t.err != nil {
		return nil, t.err
	}
	return outs, nil
}

// scope is one active module call.
type scope struct {
	path, typ string
	// tracedIn reports whether an input of the call was a traced value.
	tracedIn bool
}

// tracer implements ops.Tracer, building the graph as ops run.
type tracer struct {
	g      *graph.Graph
	values map[*tensor.Tensor]*graph.Value
	params map[*tensor.Tensor]string
	// prefix is the root's path in a larger model, stripped from reported
	// module paths.
	prefix     string
	stack      []scope
	valueNames graph.Names
	nodeNames  graph.Names
	nconst     int
	err        error
}

func newTracer(g *graph.Graph, root nn.Module) *tracer {
	t := &tracer{g: g, values: map[*tensor.Tensor]*graph.Value{}, params: map[*tensor.Tensor]string{},
		valueNames: graph.Names{}, nodeNames: graph.Names{}}
	if root == nil {
		return t
	}
	t.prefix = root.ModuleBase().Path()
	for _, nm := range nn.NamedModules(root) {
		want := nm.Name
		if t.prefix != "" {
			want = strings.TrimSuffix(t.prefix+"."+nm.Name, ".")
		}
		if nm.Module.ModuleBase().Path() != want {
			nn.AssignPaths(root)
			t.prefix = ""
			break
		}
	}
	for _, nt := range append(nn.NamedParameters(root), nn.NamedBuffers(root)...) {
		if _, ok := t.params[nt.Tensor]; !ok {
			t.params[nt.Tensor] = nt.Name
		}
	}
	return t
}

// fail records the first error.
func (t *tracer) fail(err error) {
	if t.err == nil {
		t.err = err
	}
}

// relPath returns a reported module path relative to the root.
func (t *tracer) relPath(p string) string {
	if t.prefix == "" {
		return p
	}
	if p == t.prefix {
		return ""
	}
	return strings.TrimPrefix(p, t.prefix+".")
}

// EnterModule implements ops.Tracer.
func (t *tracer) EnterModule(path, typ string, inputs []*tensor.Tensor) {
	s := scope{path: t.relPath(path), typ: typ}
	for _, x := range inputs {
		if v := t.values[x]; x != nil && v != nil && !v.IsConst() {
			s.tracedIn = true
		}
	}
	t.stack = append(t.stack, s)
}

// ExitModule implements ops.Tracer. It reports a module whose outputs were
// computed outside the dispatcher from traced inputs.
func (t *tracer) ExitModule(path, typ string, outputs []*tensor.Tensor) {
	if len(t.stack) == 0 {
		t.fail(fmt.Errorf("fx: module %q (%s) exited without entering", path, typ))
		return
	}
	s := t.stack[len(t.stack)-1]
	t.stack = t.stack[:len(t.stack)-1]
	if t.err != nil || !s.tracedIn {
		return
	}
	for i, y := range outputs {
		if y == nil || t.values[y] != nil {
			continue
		}
		if _, ok := t.params[y]; ok {
			continue
		}
		if y.DType().IsQuantized() {
			t.fail(fmt.Errorf("fx: module %q (%s) returns a %s tensor: trace the float model", s.path, s.typ, y.DType()))
			return
		}
		t.fail(fmt.Errorf("fx: output %d of module %q (%s) was not computed by a traced op (a kernel outside package ops?)", i, s.path, s.typ))
		return
	}
}

// Op implements ops.Tracer: it maps the op to nodes.
func (t *tracer) Op(name string, attrs any, inputs, outputs []*tensor.Tensor) {
	if t.err != nil {
		return
	}
	var sc scope
	if len(t.stack) > 0 {
		sc = t.stack[len(t.stack)-1]
	}
	where := fmt.Sprintf("op %s in module %q (%s)", name, sc.path, sc.typ)
	for _, x := range append(append([]*tensor.Tensor(nil), inputs...), outputs...) {
		if x != nil && x.DType().IsQuantized() {
			t.fail(fmt.Errorf("fx: %s runs on %s tensors: trace the float model", where, x.DType()))
			return
		}
	}
	lower, ok := lowerings[name]
	if !ok {
		t.fail(fmt.Errorf("fx: %s has no ONNX mapping", where))
		return
	}
	e := &emitter{t: t, scope: sc, op: name, ins: inputs, outs: outputs}
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%v", r)
			}
		}()
		return lower(e, attrs)
	}()
	if err != nil {
		t.fail(fmt.Errorf("fx: %s: %w", where, err))
		return
	}
	for i, y := range outputs {
		if y != nil && e.bound[i] == nil {
			t.fail(fmt.Errorf("fx: %s: output %d was not mapped", where, i))
			return
		}
	}
}

// value returns the graph value of tensor x: a traced value, or an
// initializer (a parameter or buffer under its state-dict name, or
// "const_N") made on first use. x must not be nil.
func (t *tracer) value(x *tensor.Tensor) *graph.Value {
	if v := t.values[x]; v != nil {
		return v
	}
	name, ok := t.params[x]
	if !ok {
		name = "const_" + strconv.Itoa(t.nconst)
		t.nconst++
	}
	v := t.g.AddInitializer(t.uniqueValue(name), x.Detach().Clone())
	t.values[x] = v
	return v
}

// uniqueValue returns name, or name_N for the first N that makes it
// unused, and marks it used.
func (t *tracer) uniqueValue(name string) string { return t.valueNames.Unique(name) }

// finish sets the graph outputs: the values of outs, renamed "output" or
// "output_N". An output that is not a node output of its own (a graph
// input, an initializer, or a value returned twice) goes through an
// Identity node.
func (t *tracer) finish(outs []*tensor.Tensor) error {
	if len(outs) == 0 {
		return errors.New("fx: the model returned no outputs")
	}
	taken := map[*graph.Value]bool{}
	for i, y := range outs {
		if y == nil {
			return fmt.Errorf("fx: output %d is nil", i)
		}
		if y.DType().IsQuantized() {
			return fmt.Errorf("fx: output %d is %s: trace the float model", i, y.DType())
		}
		name := "output"
		if len(outs) > 1 {
			name = "output_" + strconv.Itoa(i)
		}
		v := t.value(y)
		if v.Producer == nil || taken[v] {
			n := t.g.AddNode(t.nodeNames.Unique(name+"/Identity"), "Identity", []*graph.Value{v}, []string{t.uniqueValue(name)}, nil)
			n.Outputs[0].Type = v.Type
			v = n.Outputs[0]
		} else {
			delete(t.valueNames, v.Name)
			v.Name = t.uniqueValue(name)
		}
		taken[v] = true
		t.g.Outputs = append(t.g.Outputs, v)
	}
	return nil
}

// SupportedOps returns the names of the ops (as ops.Apply records them)
// that tracing maps to ONNX operators, sorted. Other ops are an error
// naming the op and the module.
func SupportedOps() []string {
	s := make([]string, 0, len(lowerings))
	for k := range lowerings {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}
