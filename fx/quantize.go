package fx

import (
	"context"
	"fmt"
	"strings"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/graph/passes"
	"github.com/quanta-go/quanta/graph/quantize"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/quant/fakequant"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

// This file is graph-mode quantization of Go models under PyTorch's names
// (torch.ao.quantization.quantize_fx): PrepareFX, PrepareQATFX, ConvertFX,
// ConvertToReferenceFX and FuseFX. A model is traced (Trace), prepared by
// package graph/quantize (batch norms folded, the BackendConfig's patterns
// fused, observers on the edges that need them) and run by a GraphModule
// that calibrates or trains with fake quantization; ConvertFX writes the
// QDQ model and compiles it with graph/exec's int8 kernels. No QuantStub,
// DeQuantStub or fuse list is needed: QuantStub and DeQuantStub of a model
// written for eager mode are identities in the float model and leave
// nothing in the trace.

// ObservedModule is the module PrepareFX and PrepareQATFX return, PyTorch's
// observed GraphModule: a GraphModule running the prepared graph with
// observers (PrepareFX) or fake quantizers (PrepareQATFX) at the points
// graph/quantize chose. Its Forward calibrates, or trains, and returns the
// float (or fake-quantized) output.
type ObservedModule struct {
	*GraphModule
	// Prepared is the graph-mode preparation: the BN-folded float model
	// (the GraphModule's model), the observed points and the weights.
	Prepared *quantize.Prepared
	// QAT says the module was prepared for quantization-aware training.
	QAT bool
}

// Forward runs the model on x, observing (or fake-quantizing) every point;
// each call counts as one calibration feed. It panics on inputs the model
// cannot run, as GraphModule.Forward; Run returns errors instead.
func (m *ObservedModule) Forward(x *tensor.Tensor) *tensor.Tensor {
	y := m.GraphModule.Forward(x)
	m.Prepared.Feeds++
	return y
}

// Run is GraphModule.Run counting one calibration feed.
func (m *ObservedModule) Run(inputs ...*tensor.Tensor) ([]*tensor.Tensor, error) {
	out, err := m.GraphModule.Run(inputs...)
	if err == nil {
		m.Prepared.Feeds++
	}
	return out, err
}

// fakeQuantizers returns the distinct fake quantizers of the points and
// weights.
func (m *ObservedModule) fakeQuantizers() []fakequant.FakeQuantizer {
	var out []fakequant.FakeQuantizer
	seen := map[observer.Observer]bool{}
	add := func(o observer.Observer) {
		if fq, ok := o.(fakequant.FakeQuantizer); ok && !seen[o] {
			seen[o] = true
			out = append(out, fq)
		}
	}
	for _, pt := range m.Prepared.Points {
		add(pt.Observer)
	}
	for _, w := range m.Prepared.Weights {
		add(w.Observer)
	}
	return out
}

// EnableObserver switches the observers of every fake quantizer (points
// and weights) on or off, as torch.ao.quantization.enable_observer and
// disable_observer applied to the model: with observers off, the qparams
// freeze, and ConvertFX uses the frozen ones. It does nothing to the
// observers of a post-training module.
func (m *ObservedModule) EnableObserver(on bool) {
	for _, fq := range m.fakeQuantizers() {
		fq.EnableObserver(on)
	}
}

// EnableFakeQuant switches fake quantization of every fake quantizer on
// or off (enable_fake_quant, disable_fake_quant).
func (m *ObservedModule) EnableFakeQuant(on bool) {
	for _, fq := range m.fakeQuantizers() {
		fq.EnableFakeQuant(on)
	}
}

// PrepareFX is torch.ao.quantization.quantize_fx.prepare_fx for post-
// training static quantization: it traces model on example (in evaluation
// mode; the model's mode is restored afterwards), prepares the graph with
// mapping and backend (nil: the BackendConfig of graph/quantize's default
// engine), and returns a module whose Forward calibrates. Batch norms are
// folded and the backend's patterns (conv-bn-relu, linear-relu, add-relu,
// ...) fused automatically. The traced input's first (batch) dimension is
// made symbolic, so calibration, conversion and inference may use other
// batch sizes, unless the model computed a shape from it (see Trace).
// mapping must not be nil (quant.DefaultQConfigMapping gives PyTorch's
// defaults).
func PrepareFX(model nn.Layer, mapping *quant.QConfigMapping, example *tensor.Tensor, backend *quant.BackendConfig) (*ObservedModule, error) {
	return prepareFX("PrepareFX", model, mapping, example, backend, false)
}

// PrepareQATFX is prepare_qat_fx: PrepareFX with fake quantizers from a
// QAT mapping (quant.DefaultQATQConfigMapping) at the same points and on
// the weights, returning a trainable module: nn.Parameters lists the
// graph's weights (optimize them as the Go model's), and gradients pass
// the fake quantizers by the straight-through estimator.
//
// The model is traced in evaluation mode and its batch norms are folded
// into the convolution (and linear) weights before training, so graph-mode
// QAT here trains the BN-folded weights with fake quantization and batch
// norm statistics stay fixed; PyTorch's prepare_qat_fx instead simulates
// BatchNorm during training (ConvBn modules updating their statistics) and
// folds it at conversion. Dropout is not traced, as in evaluation mode.
// The module's own training flag changes nothing.
func PrepareQATFX(model nn.Layer, mapping *quant.QConfigMapping, example *tensor.Tensor, backend *quant.BackendConfig) (*ObservedModule, error) {
	return prepareFX("PrepareQATFX", model, mapping, example, backend, true)
}

func prepareFX(fn string, model nn.Layer, mapping *quant.QConfigMapping, example *tensor.Tensor, backend *quant.BackendConfig, qat bool) (*ObservedModule, error) {
	if mapping == nil {
		return nil, fmt.Errorf("fx: %s: nil QConfigMapping (quant.DefaultQConfigMapping gives the defaults)", fn)
	}
	m, err := traceEval(fn, model, example)
	if err != nil {
		return nil, err
	}
	opts := quantize.Options{Mapping: mapping, Backend: backend, QAT: qat}
	if backend != nil {
		opts.Engine = backend.Name
	}
	return prepareGraph(fn, m, opts, func(pm *graph.Model) []string { return trainable(model, pm) })
}

// PrepareQATGraph is PrepareQATFX for a model that is already a graph (an
// imported ONNX model, which has no Go module to trace): it prepares m
// with opts (graph/quantize.Prepare with QAT set; m is not changed) and
// returns a trainable module whose parameters are the weights and biases
// of the quantized Conv, ConvTranspose, Gemm and MatMul nodes. Train it
// (for example by distillation from the float model's outputs, which
// needs no labels), then ConvertFX writes the QDQ model.
func PrepareQATGraph(m *graph.Model, opts quantize.Options) (*ObservedModule, error) {
	if m == nil || m.Graph == nil {
		return nil, fmt.Errorf("fx: PrepareQATGraph: nil model")
	}
	opts.QAT = true
	return prepareGraph("PrepareQATGraph", m, opts, weightsOf)
}

// weightsOf names the float32 initializers the prepared model's weighted
// nodes read as weights or biases.
func weightsOf(pm *graph.Model) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range pm.Graph.Nodes {
		switch n.OpType {
		case "Conv", "ConvTranspose", "Gemm", "MatMul":
		default:
			continue
		}
		for _, v := range n.Inputs {
			if v != nil && v.Const != nil && v.Const.DType() == tensor.Float32 && !seen[v.Name] {
				seen[v.Name] = true
				out = append(out, v.Name)
			}
		}
	}
	return out
}

// prepareGraph prepares m with opts and builds the observed module, whose
// parameters params names.
func prepareGraph(fn string, m *graph.Model, opts quantize.Options, params func(pm *graph.Model) []string) (*ObservedModule, error) {
	qat := opts.QAT
	// The GraphModule feeds the points' observers; input equalization
	// gathers its per-channel statistics through Prepared.Observe on
	// graph/exec, which this path does not use.
	opts.NoEqualize = true
	p, err := quantize.Prepare(m, opts)
	if err != nil {
		return nil, fmt.Errorf("fx: %s: %w", fn, err)
	}
	names := params(p.Model)
	// Prepare's copy shares its initializer tensors with m; training
	// changes the parameters in place, so they get their own.
	own := map[string]bool{}
	for _, n := range names {
		own[n] = true
	}
	for _, v := range p.Model.Graph.Initializers {
		if own[v.Name] {
			v.Const = v.Const.Clone()
		}
	}
	gm, err := NewGraphModule(p.Model, GraphModuleOptions{Parameters: names})
	if err != nil {
		return nil, fmt.Errorf("fx: %s: %w", fn, err)
	}
	obs := map[string]observer.Observer{}
	for _, pt := range p.Points {
		obs[pt.Value.Name] = pt.Observer
	}
	if err := gm.SetObservers(obs); err != nil {
		return nil, fmt.Errorf("fx: %s: %w", fn, err)
	}
	if qat {
		// Post-training weights were observed by Prepare; QAT weights are
		// fake-quantized on every forward pass.
		var hooks []WeightHook
		for _, w := range p.Weights {
			hooks = append(hooks, WeightHook{Node: w.Node.Name, Input: w.Input, Observer: w.Observer, Axis: w.Axis, PerTensor: w.PerTensor})
		}
		if err := gm.SetWeightObservers(hooks); err != nil {
			return nil, fmt.Errorf("fx: %s: %w", fn, err)
		}
	}
	return &ObservedModule{GraphModule: gm, Prepared: p, QAT: qat}, nil
}

// traceEval traces model on example in evaluation mode, restores the
// model's mode, and makes the input's batch dimension symbolic.
func traceEval(fn string, model nn.Layer, example *tensor.Tensor) (*graph.Model, error) {
	if model == nil {
		return nil, fmt.Errorf("fx: %s: nil model", fn)
	}
	if example == nil {
		return nil, fmt.Errorf("fx: %s: nil example input", fn)
	}
	if model.ModuleBase().Training() {
		nn.Eval(model)
		defer nn.Train(model)
	}
	m, err := Trace(model, example)
	if err != nil {
		return nil, fmt.Errorf("fx: %s: %w", fn, err)
	}
	if in := m.Graph.Inputs[0]; in.Type.HasShape && len(in.Type.Shape) > 0 {
		in.Type.Shape[0] = graph.Dim{Size: -1, Param: "batch"}
	}
	return m, nil
}

// trainable returns the float32 initializers of pm that are model's
// parameters or were folded from them (the "_bnfold" weights and biases
// of graph/passes.FoldBatchNorm).
func trainable(model nn.Module, pm *graph.Model) []string {
	params := map[string]bool{}
	for _, p := range nn.NamedParameters(model) {
		params[p.Name] = true
	}
	var out []string
	for _, v := range pm.Graph.Initializers {
		if v.Const.DType() == tensor.Float32 && (params[v.Name] || strings.HasSuffix(v.Name, "_bnfold")) {
			out = append(out, v.Name)
		}
	}
	return out
}

// QuantizedModule is the module ConvertFX and ConvertToReferenceFX return:
// the QDQ model, compiled by graph/exec. It has no parameters (the int8
// weights are initializers of the QDQ model).
type QuantizedModule struct {
	nn.Base
	model *graph.Model
	prog  *exec.Program
}

// Model returns the QDQ model, to export with onnx.Save or inspect.
func (q *QuantizedModule) Model() *graph.Model { return q.model }

// Program returns the compiled model; Program.Fused reports which nodes
// run as int8 kernels.
func (q *QuantizedModule) Program() *exec.Program { return q.prog }

// TypeName implements nn.Typer.
func (q *QuantizedModule) TypeName() string { return "QuantizedGraphModule" }

// Forward runs a model of one input and one output on x. It panics with an
// "fx: ..." message when the model cannot run on x (Run returns the error
// instead).
func (q *QuantizedModule) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(q, x, func(x *tensor.Tensor) *tensor.Tensor {
		out, err := q.Run(context.Background(), x)
		if err != nil {
			panic(err.Error())
		}
		if len(out) != 1 {
			panic(fmt.Sprintf("fx: QuantizedModule.Forward: the model has %d outputs, want 1 (use Run)", len(out)))
		}
		return out[0]
	})
}

// Run runs the model on its inputs, in order, and returns its outputs in
// order.
func (q *QuantizedModule) Run(ctx context.Context, inputs ...*tensor.Tensor) ([]*tensor.Tensor, error) {
	names := q.prog.InputNames()
	if len(inputs) != len(names) {
		return nil, fmt.Errorf("fx: QuantizedModule.Run: %d inputs, the model has %d (%s)", len(inputs), len(names), strings.Join(names, ", "))
	}
	feed := make(map[string]*tensor.Tensor, len(names))
	for i, n := range names {
		feed[n] = inputs[i]
	}
	res, err := q.prog.Run(ctx, feed)
	if err != nil {
		return nil, fmt.Errorf("fx: %w", err)
	}
	outs := make([]*tensor.Tensor, 0, len(res))
	for _, n := range q.prog.OutputNames() {
		outs = append(outs, res[n])
	}
	return outs, nil
}

// ConvertFX is convert_fx: it converts a calibrated (or QAT-trained)
// module to a QDQ model (graph/quantize.Convert, with the weights the
// module holds now), drops the float weights the int8 ones replaced, and
// compiles it with graph/exec, which runs the DequantizeLinear -> op ->
// QuantizeLinear patterns as int8 kernels. The module is not changed:
// calibrating further and converting again works.
func ConvertFX(m *ObservedModule) (*QuantizedModule, error) {
	return convertFX("ConvertFX", m, exec.Options{})
}

// ConvertToReferenceFX is convert_to_reference_fx: ConvertFX with the QDQ
// model run as written (exec.Options{Reference: true}: dequantize, float
// op, quantize), PyTorch's reference quantized model.
func ConvertToReferenceFX(m *ObservedModule) (*QuantizedModule, error) {
	return convertFX("ConvertToReferenceFX", m, exec.Options{Reference: true})
}

func convertFX(fn string, m *ObservedModule, opts exec.Options) (*QuantizedModule, error) {
	if m == nil || m.Prepared == nil {
		return nil, fmt.Errorf("fx: %s: nil module", fn)
	}
	qm, err := quantize.Convert(m.Prepared)
	if err != nil {
		return nil, fmt.Errorf("fx: %s: %w", fn, err)
	}
	// The float weights the int8 ones replaced are dead.
	graph.EliminateDeadCode(qm.Graph)
	prog, err := exec.Compile(qm, opts)
	if err != nil {
		return nil, fmt.Errorf("fx: %s: compiling the QDQ model: %w", fn, err)
	}
	q := &QuantizedModule{model: qm, prog: prog}
	nn.AssignPaths(q)
	return q, nil
}

// FusedModule is what FuseFX returns: a GraphModule of the traced model
// with its batch norms folded, and the fusable patterns found.
type FusedModule struct {
	*GraphModule
	// Folded is the number of batch norms folded into the Conv,
	// ConvTranspose or Gemm before them.
	Folded int
	// Matches are the BackendConfig patterns found (Conv2d+ReLU,
	// Linear+ReLU, Add+ReLU, ...), which graph-mode quantization
	// quantizes as one unit.
	Matches []passes.Match
}

// FuseFX is fuse_fx: it traces model on example (in evaluation mode),
// folds its batch norms (graph/passes.FoldBatchNorm) and finds the
// patterns backend fuses (graph/passes.FusePatterns; nil backend: the
// "quanta" engine's). The result runs the folded graph; its parameters are
// the folded weights and the model's other parameters. PrepareFX does all
// of this itself; FuseFX shows what it fuses.
func FuseFX(model nn.Layer, example *tensor.Tensor, backend *quant.BackendConfig) (*FusedModule, error) {
	m, err := traceEval("FuseFX", model, example)
	if err != nil {
		return nil, err
	}
	if backend == nil {
		if backend, err = quant.GetBackendConfig("quanta"); err != nil {
			return nil, fmt.Errorf("fx: FuseFX: %w", err)
		}
	}
	folded, err := passes.FoldBatchNorm(m.Graph)
	if err != nil {
		return nil, fmt.Errorf("fx: FuseFX: %w", err)
	}
	matches, err := passes.FusePatterns(m.Graph, backend)
	if err != nil {
		return nil, fmt.Errorf("fx: FuseFX: %w", err)
	}
	gm, err := NewGraphModule(m, GraphModuleOptions{Parameters: trainable(model, m)})
	if err != nil {
		return nil, fmt.Errorf("fx: FuseFX: %w", err)
	}
	return &FusedModule{GraphModule: gm, Folded: folded, Matches: matches}, nil
}
