// Package exec compiles a graph.Model once and runs it many times: ONNX
// Runtime's InferenceSession for quanta. Compile orders the nodes, checks
// every operator against the operator table (an unsupported operator is an
// error naming the op, node and opset), and builds a kernel per node, in
// which attributes are parsed and constant weights prepacked; Run binds
// inputs, runs the kernels in order and returns the outputs. A Program is
// immutable after Compile: many goroutines may call Run at once.
//
// Kernels compute with package ops and ops/quantized, the same float and
// int8 implementations eager models use. A kernel failing on the data it
// is given (shapes a model's weights do not fit, an index out of range)
// becomes an error naming the node; Run never panics on bad input.
package exec

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

// Options configure Compile. The zero value is ready to use.
type Options struct {
	// Threads is the number of threads each op uses; 0 keeps the current
	// setting (one per CPU by default). The setting is process-wide, as
	// torch.set_num_threads: Run applies it for its duration.
	Threads int
	// Unoptimized turns off the compile-time rewrites (a Conv absorbing
	// the BatchNormalization, Mul and Add after it; runs of elementwise
	// nodes fused into one pass): every node runs its own kernel.
	Unoptimized bool
	// Reference turns off QDQ fusion (qdq.go): DequantizeLinear, the float
	// op and QuantizeLinear run as written, PyTorch's reference quantized
	// model. Otherwise those patterns run as int8 kernels.
	Reference bool
}

// Program is a compiled model.
type Program struct {
	model *graph.Model
	main  *Subprogram
	opts  Options
}

// Subprogram is a compiled graph: the main graph, or an If/Loop body that
// a control-flow kernel runs with Frame.Run.
type Subprogram struct {
	g        *graph.Graph
	slots    map[*graph.Value]int
	nslots   int
	consts   map[int]*tensor.Tensor
	inputs   []int
	outputs  []int
	steps    []step
	captures []capture
	// values maps a slot back to its value (for RunOptions.Observe).
	values []*graph.Value
	// release[i] lists the values step i computes or reads for the last
	// time (dead after it), for buffer reuse; nil when unoptimized.
	release [][]int
}

type step struct {
	node   *graph.Node
	kernel Kernel
	in     []int // -1: absent optional input
	out    []int // -1: omitted optional output
}

// capture is a value of an enclosing graph a subgraph reads.
type capture struct {
	slot int
	v    *graph.Value
}

// Kernel is a compiled node.
type Kernel interface {
	// Run computes the node's outputs from its inputs (nil entries are
	// absent optional inputs). It returns one tensor per node output; a
	// nil entry is allowed for omitted optional outputs.
	Run(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error)
}

// KernelFunc adapts a function to Kernel for nodes that need no frame.
type KernelFunc func(in []*tensor.Tensor) ([]*tensor.Tensor, error)

// Run calls k(in).
func (k KernelFunc) Run(_ *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) { return k(in) }

// frameOne adapts a one-output function that takes its output buffer
// from the frame (Frame.allocF32, allocI32) to Kernel.
type frameOne func(f *Frame, in []*tensor.Tensor) (*tensor.Tensor, error)

// Run calls k(f, in).
func (k frameOne) Run(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	y, err := k(f, in)
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{y}, nil
}

// Compile compiles m. It verifies the graph, sorts it, and builds a kernel
// for every node; the first node whose operator is unknown, whose opset is
// unsupported or whose attributes are invalid is reported.
func Compile(m *graph.Model, opts Options) (*Program, error) {
	if m == nil || m.Graph == nil {
		return nil, errors.New("exec: Compile: nil model")
	}
	if opts.Threads < 0 {
		return nil, fmt.Errorf("exec: Compile: threads %d must be 0 or more", opts.Threads)
	}
	if err := graph.Verify(m.Graph); err != nil {
		return nil, fmt.Errorf("exec: %w", err)
	}
	if err := graph.Sort(m.Graph); err != nil {
		return nil, fmt.Errorf("exec: %w", err)
	}
	c := &CompileContext{model: m, folded: map[*graph.Value]*tensor.Tensor{}, noOpt: opts.Unoptimized}
	sp, err := c.CompileGraph(m.Graph)
	if err != nil {
		return nil, err
	}
	if !opts.Reference {
		fuseQDQ(sp)
	}
	return &Program{model: m, main: sp, opts: opts}, nil
}

// CompileContext is what an operator's compile function sees: the model's
// opsets and the constant values of the graph.
type CompileContext struct {
	model  *graph.Model
	parent *Subprogram
	// folded holds the values computed at compile time (constant folding),
	// shared by a graph and its subgraphs.
	folded map[*graph.Value]*tensor.Tensor
	noOpt  bool
}

// Opset returns the opset version the model imports for domain ("" is
// ONNX's default domain).
func (c *CompileContext) Opset(domain string) int64 { return c.model.Opset(domain) }

// Const returns the constant value of v (an initializer, or the output of
// a Constant node with a value), or nil.
func (c *CompileContext) Const(v *graph.Value) *tensor.Tensor {
	if v == nil {
		return nil
	}
	if v.Const != nil {
		return v.Const
	}
	if t := c.folded[v]; t != nil {
		return t
	}
	if p := v.Producer; p != nil && p.OpType == "Constant" && (p.Domain == "" || p.Domain == "ai.onnx") {
		if t, err := ConstantValue(p); err == nil {
			return t
		}
	}
	return nil
}

// CompileGraph compiles a graph (a subgraph of a node being compiled, or
// the main graph). Values the graph reads from enclosing graphs are
// captured when Frame.Run runs it.
func (c *CompileContext) CompileGraph(g *graph.Graph) (*Subprogram, error) {
	sp := &Subprogram{g: g, slots: map[*graph.Value]int{}, consts: map[int]*tensor.Tensor{}}
	slot := func(v *graph.Value) int {
		if s, ok := sp.slots[v]; ok {
			return s
		}
		s := sp.nslots
		sp.nslots++
		sp.slots[v] = s
		return s
	}
	defined := map[*graph.Value]bool{}
	for _, v := range g.Inputs {
		sp.inputs = append(sp.inputs, slot(v))
		defined[v] = true
		if v.Const != nil {
			sp.consts[sp.slots[v]] = v.Const
		}
	}
	for _, v := range g.Initializers {
		sp.consts[slot(v)] = v.Const
		defined[v] = true
	}
	sub := &CompileContext{model: c.model, parent: sp, folded: c.folded, noOpt: c.noOpt}
	if sub.folded == nil {
		sub.folded = map[*graph.Value]*tensor.Tensor{}
	}
	for _, n := range g.Nodes {
		k, err := sub.compileNode(n)
		if err != nil {
			return nil, err
		}
		if outs, ok := sub.fold(n, k); ok {
			for i, o := range n.Outputs {
				if o != nil {
					sub.folded[o] = outs[i]
					sp.consts[slot(o)] = outs[i]
					defined[o] = true
				}
			}
			continue
		}
		st := step{node: n, kernel: k}
		for _, in := range n.Inputs {
			if in == nil {
				st.in = append(st.in, -1)
				continue
			}
			if !defined[in] {
				if _, ok := sp.slots[in]; !ok {
					sp.captures = append(sp.captures, capture{slot(in), in})
				}
			}
			st.in = append(st.in, slot(in))
		}
		for _, o := range n.Outputs {
			if o == nil {
				st.out = append(st.out, -1)
				continue
			}
			defined[o] = true
			st.out = append(st.out, slot(o))
		}
		sp.steps = append(sp.steps, st)
	}
	// Subgraph reads of enclosing values made by nested subgraphs must be
	// captured here too, so the frames chain.
	for _, n := range g.Nodes {
		for _, sg := range n.Subgraphs() {
			for _, v := range outerValues(sg) {
				if !defined[v] {
					if _, ok := sp.slots[v]; !ok {
						sp.captures = append(sp.captures, capture{slot(v), v})
					}
				}
			}
		}
	}
	for _, o := range g.Outputs {
		if !defined[o] {
			if _, ok := sp.slots[o]; !ok {
				sp.captures = append(sp.captures, capture{slot(o), o})
			}
		}
		sp.outputs = append(sp.outputs, slot(o))
	}
	if !c.noOpt {
		optimize(sp)
		sp.release = releasePlan(sp)
	}
	sp.values = make([]*graph.Value, sp.nslots)
	for v, s := range sp.slots {
		sp.values[s] = v
	}
	return sp, nil
}

// outerValues returns the values g (and graphs nested in it) reads without
// defining them.
func outerValues(g *graph.Graph) []*graph.Value {
	defined := map[*graph.Value]bool{}
	var out []*graph.Value
	seen := map[*graph.Value]bool{}
	var walk func(g *graph.Graph)
	walk = func(g *graph.Graph) {
		for _, v := range g.Values() {
			defined[v] = true
		}
		for _, n := range g.Nodes {
			for _, sg := range n.Subgraphs() {
				walk(sg)
			}
		}
	}
	walk(g)
	var reads func(g *graph.Graph)
	reads = func(g *graph.Graph) {
		for _, n := range g.Nodes {
			for _, in := range n.Inputs {
				if in != nil && !defined[in] && !seen[in] {
					seen[in] = true
					out = append(out, in)
				}
			}
			for _, sg := range n.Subgraphs() {
				reads(sg)
			}
		}
		for _, o := range g.Outputs {
			if o != nil && !defined[o] && !seen[o] {
				seen[o] = true
				out = append(out, o)
			}
		}
	}
	reads(g)
	return out
}

// nondeterministic lists operators whose result must not be computed at
// compile time.
var nondeterministic = map[string]bool{
	"RandomNormal": true, "RandomUniform": true, "RandomNormalLike": true, "RandomUniformLike": true, "Multinomial": true, "Bernoulli": true,
}

// foldLimit bounds the elements a folded node may produce, so folding
// never inflates a model (Expand or Tile of a constant).
const foldLimit = 1 << 20

// fold runs node n at compile time when all its inputs are constants (an
// initializer, a Constant node, or an earlier folded node) and it has no
// subgraph: constant folding. It reports false, leaving the node to run
// time, when the kernel fails or produces more than foldLimit elements.
func (c *CompileContext) fold(n *graph.Node, k Kernel) (outs []*tensor.Tensor, ok bool) {
	if nondeterministic[n.OpType] || len(n.Subgraphs()) > 0 || (n.Domain != "" && n.Domain != "ai.onnx") {
		return nil, false
	}
	in := make([]*tensor.Tensor, len(n.Inputs))
	for i, v := range n.Inputs {
		if v == nil {
			continue
		}
		if in[i] = c.Const(v); in[i] == nil {
			return nil, false
		}
	}
	defer func() {
		if recover() != nil {
			outs, ok = nil, false
		}
	}()
	var err error
	autograd.NoGrad(func() { outs, err = k.Run(&Frame{ctx: context.Background()}, in) })
	if err != nil || len(outs) < len(n.Outputs) {
		return nil, false
	}
	for i, o := range n.Outputs {
		if o == nil {
			continue
		}
		if outs[i] == nil || outs[i].Numel() > foldLimit {
			return nil, false
		}
	}
	return outs, true
}

func (c *CompileContext) compileNode(n *graph.Node) (k Kernel, err error) {
	domain := n.Domain
	if domain == "ai.onnx" {
		domain = ""
	}
	e, ok := opTable[opKey{domain, n.OpType}]
	opset := c.Opset(domain)
	if !ok {
		return nil, fmt.Errorf("exec: node %s: operator %s is not supported (domain %q, opset %d)", n, n.OpType, n.Domain, opset)
	}
	if opset < e.minOpset || (e.maxOpset > 0 && opset > e.maxOpset) {
		return nil, fmt.Errorf("exec: node %s: operator %s at opset %d is not supported (supported: opsets %d to %s)", n, n.OpType, opset, e.minOpset, maxString(e.maxOpset))
	}
	defer func() {
		if r := recover(); r != nil {
			k, err = nil, fmt.Errorf("exec: node %s: %v", n, r)
		}
	}()
	k, err = e.compile(c, n)
	if err != nil {
		if strings.HasPrefix(err.Error(), "exec: ") {
			return nil, err
		}
		return nil, fmt.Errorf("exec: node %s: %w", n, err)
	}
	return k, nil
}

func maxString(v int64) string {
	if v == 0 {
		return "latest"
	}
	return fmt.Sprint(v)
}

// CompileFunc builds the kernel of a node: it reads and checks the
// attributes, the number of inputs and outputs, and may prepack constant
// inputs (CompileContext.Const).
type CompileFunc func(c *CompileContext, n *graph.Node) (Kernel, error)

type opKey struct{ domain, opType string }

type opEntry struct {
	minOpset, maxOpset int64
	compile            CompileFunc
}

var opTable = map[opKey]opEntry{}

// register adds an operator of ONNX's default domain supported from
// minOpset on.
func register(opType string, minOpset int64, f CompileFunc) {
	opTable[opKey{"", opType}] = opEntry{minOpset: minOpset, compile: f}
}

// registerDomain adds an operator of another domain.
func registerDomain(domain, opType string, f CompileFunc) {
	opTable[opKey{domain, opType}] = opEntry{minOpset: 0, compile: f}
}

// Supported returns the supported operators, "OpType" for ONNX's default
// domain and "domain.OpType" for others, sorted.
func Supported() []string {
	var s []string
	for k := range opTable {
		if k.domain == "" {
			s = append(s, k.opType)
		} else {
			s = append(s, k.domain+"."+k.opType)
		}
	}
	sort.Strings(s)
	return s
}

// Model returns the compiled model.
func (p *Program) Model() *graph.Model { return p.model }

// InputNames returns the names of the inputs Run expects, in order
// (inputs with a default value included).
func (p *Program) InputNames() []string {
	var s []string
	for _, v := range p.main.g.Inputs {
		s = append(s, v.Name)
	}
	return s
}

// OutputNames returns the names of the outputs Run returns, in order.
func (p *Program) OutputNames() []string {
	var s []string
	for _, v := range p.main.g.Outputs {
		s = append(s, v.Name)
	}
	return s
}

// Run runs the model on inputs (by input name) and returns its outputs
// (by output name). Every input without a default value must be given,
// with the declared element type (float16 and double inputs are given as
// float32) and a shape matching the declared rank and known dimensions.
// It stops between nodes when ctx is cancelled.
func (p *Program) Run(ctx context.Context, inputs map[string]*tensor.Tensor) (map[string]*tensor.Tensor, error) {
	return p.RunWith(ctx, inputs, RunOptions{})
}

// RunOptions configure one RunWith call. The zero value is Run.
type RunOptions struct {
	// Observe, if set, is called with every value a step computes, in the
	// main graph and in subgraph bodies (once per iteration), right after
	// the step ran: calibration observers and the per-layer comparison
	// read activations through it. The tensor is only valid during the
	// call (its buffer may be reused afterwards); copy what must be kept.
	// Values a compile-time rewrite removed (fused elementwise runs, a
	// BatchNormalization folded into its Conv, QDQ patterns fused into
	// int8 steps) and constant-folded values are not seen: compile with
	// Options.Unoptimized (and Reference for QDQ models) to see every
	// node's outputs. An error stops the run and is returned, wrapped
	// with the node.
	Observe func(v *graph.Value, t *tensor.Tensor) error
}

// RunWith is Run with per-call options.
func (p *Program) RunWith(ctx context.Context, inputs map[string]*tensor.Tensor, ro RunOptions) (map[string]*tensor.Tensor, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	for name := range inputs {
		found := false
		for _, v := range p.main.g.Inputs {
			found = found || v.Name == name
		}
		if !found {
			return nil, fmt.Errorf("exec: Run: the model has no input %q (inputs: %s)", name, strings.Join(p.InputNames(), ", "))
		}
	}
	args := make([]*tensor.Tensor, len(p.main.g.Inputs))
	for i, v := range p.main.g.Inputs {
		t, ok := inputs[v.Name]
		if !ok || t == nil {
			if v.Const != nil {
				continue
			}
			return nil, fmt.Errorf("exec: Run: input %q (%s) is missing", v.Name, v.Type)
		}
		if err := checkInput(v, t); err != nil {
			return nil, err
		}
		args[i] = t
	}
	if p.opts.Threads > 0 {
		defer parallel.SetNumThreads(parallel.SetNumThreads(p.opts.Threads))
	}
	if parallel.NumThreads() > 1 {
		// Keep the other threads' helpers ready between steps.
		defer parallel.Hold()()
	}
	f := &Frame{ctx: ctx, observe: ro.Observe}
	if !p.opts.Unoptimized {
		a := arenas.Get().(*arena)
		f.arena = a
		defer func() { a.reset(); arenas.Put(a) }()
	}
	var outs []*tensor.Tensor
	var err error
	autograd.NoGrad(func() { outs, err = f.Run(p.main, args) })
	if err != nil {
		return nil, err
	}
	res := make(map[string]*tensor.Tensor, len(outs))
	for i, v := range p.main.g.Outputs {
		res[v.Name] = outs[i]
	}
	return res, nil
}

func checkInput(v *graph.Value, t *tensor.Tensor) error {
	if want, ok := v.Type.Elem.DType(); ok && v.Type.Elem != graph.Undefined && t.DType().Storage() != want {
		return fmt.Errorf("exec: Run: input %q is %s, the model declares %s", v.Name, t.DType(), v.Type)
	}
	if !v.Type.HasShape {
		return nil
	}
	if t.NDim() != len(v.Type.Shape) {
		return fmt.Errorf("exec: Run: input %q has shape %v, the model declares %s", v.Name, t.Shape(), v.Type)
	}
	for i, d := range v.Type.Shape {
		if d.Known() && int64(t.Dim(i)) != d.Size {
			return fmt.Errorf("exec: Run: input %q has shape %v, the model declares %s", v.Name, t.Shape(), v.Type)
		}
	}
	return nil
}

// Frame is one activation of a Subprogram: its values. Control-flow
// kernels run their bodies in child frames with Run.
type Frame struct {
	ctx    context.Context
	sp     *Subprogram
	vals   []*tensor.Tensor
	parent *Frame
	arena  *arena // buffer reuse, or nil
	// observe is RunOptions.Observe, or nil.
	observe func(v *graph.Value, t *tensor.Tensor) error
}

// Context returns the context of the Run call.
func (f *Frame) Context() context.Context { return f.ctx }

// lookup returns the value of v in this frame or an enclosing one.
func (f *Frame) lookup(v *graph.Value) (*tensor.Tensor, bool) {
	for ; f != nil; f = f.parent {
		if f.sp == nil {
			continue
		}
		if s, ok := f.sp.slots[v]; ok && f.vals[s] != nil {
			return f.vals[s], true
		}
	}
	return nil, false
}

// Run runs sp in a child frame of f with the given inputs (one per graph
// input; nil where the input has a default value) and returns its outputs.
func (f *Frame) Run(sp *Subprogram, inputs []*tensor.Tensor) (outs []*tensor.Tensor, err error) {
	if len(inputs) != len(sp.inputs) {
		return nil, fmt.Errorf("exec: graph %s takes %d inputs, got %d", sp.g.Name, len(sp.inputs), len(inputs))
	}
	fr := &Frame{ctx: f.ctx, sp: sp, vals: make([]*tensor.Tensor, sp.nslots), parent: f, arena: f.arena, observe: f.observe}
	if sp.release == nil {
		fr.arena = nil
	}
	for s, t := range sp.consts {
		fr.vals[s] = t
	}
	for i, t := range inputs {
		if t != nil {
			fr.vals[sp.inputs[i]] = t
		}
	}
	for _, c := range sp.captures {
		t, ok := f.lookup(c.v)
		if !ok {
			return nil, fmt.Errorf("exec: graph %s reads %q, which no enclosing graph has computed", sp.g.Name, c.v.Name)
		}
		fr.vals[c.slot] = t
	}
	cur := -1
	defer func() {
		if r := recover(); r != nil {
			outs = nil
			if cur >= 0 {
				err = fmt.Errorf("exec: node %s: %v", sp.steps[cur].node, r)
			} else {
				err = fmt.Errorf("exec: graph %s: %v", sp.g.Name, r)
			}
		}
	}()
	in := make([]*tensor.Tensor, 0, 8)
	for i := range sp.steps {
		st := &sp.steps[i]
		cur = i
		if err := f.ctx.Err(); err != nil {
			return nil, err
		}
		in = in[:0]
		for _, s := range st.in {
			if s < 0 {
				in = append(in, nil)
			} else {
				in = append(in, fr.vals[s])
			}
		}
		mark := 0
		if fr.arena != nil {
			mark = len(fr.arena.live)
		}
		res, err := st.kernel.Run(fr, in)
		if err != nil {
			if strings.HasPrefix(err.Error(), "exec: ") {
				return nil, err
			}
			return nil, fmt.Errorf("exec: node %s: %w", st.node, err)
		}
		if len(res) > len(st.out) {
			return nil, fmt.Errorf("exec: node %s: kernel returned %d outputs for %d", st.node, len(res), len(st.out))
		}
		for j, s := range st.out {
			if s < 0 {
				continue
			}
			if j >= len(res) || res[j] == nil {
				return nil, fmt.Errorf("exec: node %s: output %d (%s) was not computed", st.node, j, st.node.Outputs[j].Name)
			}
			fr.vals[s] = res[j]
			if fr.arena != nil {
				fr.arena.retain(res[j])
			}
			if fr.observe != nil {
				if err := fr.observe(sp.values[s], res[j]); err != nil {
					return nil, fmt.Errorf("exec: node %s: output %s: %w", st.node, sp.values[s].Name, err)
				}
			}
		}
		if fr.arena != nil {
			fr.arena.sweep(mark)
			for _, s := range sp.release[i] {
				fr.arena.drop(fr.vals[s])
				fr.vals[s] = nil
			}
		}
	}
	cur = -1
	outs = make([]*tensor.Tensor, len(sp.outputs))
	for i, s := range sp.outputs {
		outs[i] = fr.vals[s]
		if outs[i] == nil {
			return nil, fmt.Errorf("exec: graph %s: output %q was not computed", sp.g.Name, sp.g.Outputs[i].Name)
		}
	}
	return outs, nil
}

// Graph returns the subprogram's graph.
func (sp *Subprogram) Graph() *graph.Graph { return sp.g }
