// Package nn is quanta's float neural-network library, after torch.nn: a
// module system, the common layers, losses, optimizers, learning-rate
// schedulers and safetensors checkpoints.
//
// # Modules
//
// A module is a Go struct that embeds Base and keeps its parameters and
// child modules in exported fields:
//
//	type Net struct {
//		nn.Base
//		Features *nn.Sequential `nn:"features"`
//		FC       nn.Layer       `nn:"fc"`
//	}
//
// Package nn finds children by reflection over exported fields whose type
// implements Module, and parameters in exported *tensor.Tensor fields. A
// field is named by its `nn:"name"` struct tag, or else by its Go name with
// the first letter lower-cased. Sequential and ModuleList children are named
// "0", "1", .... Children are addressed by dotted paths ("features.3.conv")
// as in PyTorch's named_modules, and Set replaces one: that is how eager
// quantization swaps a float Conv2d for a quantized one. To make a field
// replaceable by a module of another type, declare it with an interface
// type such as Layer rather than *Conv2d.
//
// # Forward
//
// Modules with one input and one output implement Layer. Built-in modules
// run their computation through Call, which applies forward hooks and tells
// an installed ops.Tracer where module calls begin and end; user modules may
// do the same so that tracing sees them as units.
//
// # Configuration
//
// Constructors take the PyTorch arguments that have no default, plus an
// options struct whose zero value means PyTorch's defaults (documented per
// field where Go's zero value cannot express them). Invalid configuration
// is returned as an error. Random initialization uses the RNG in the
// options, or the package's global generator (see ManualSeed) when it is
// nil, and follows PyTorch's default initializers exactly in distribution.
package nn

import (
	"fmt"
	"reflect"

	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// Module is the interface every module implements, by embedding Base.
type Module interface {
	// ModuleBase returns the module's embedded Base.
	ModuleBase() *Base
}

// Layer is a module with one input tensor and one output tensor; Sequential
// holds Layers.
type Layer interface {
	Module
	// Forward computes the module's output for x.
	Forward(x *tensor.Tensor) *tensor.Tensor
}

// Container is implemented by modules that keep children in a list rather
// than in struct fields (Sequential, ModuleList). Package nn combines a
// module's field children, then its Container children, then its
// ActivationPostProcess.
type Container interface {
	Module
	// ContainerChildren returns the list-held children, in order, with
	// their names.
	ContainerChildren() []NamedModule
	// SetContainerChild replaces the child called name. It returns an
	// error when there is no such child or the container cannot hold m.
	SetContainerChild(name string, m Module) error
}

// Typer lets a module choose the name TypeName reports (for example a
// quantized Conv2d reporting "QuantizedConv2d").
type Typer interface {
	TypeName() string
}

// NamedModule is a module with its name or dotted path.
type NamedModule struct {
	Name   string
	Module Module
}

// NamedTensor is a parameter or buffer with its name or dotted path.
type NamedTensor struct {
	Name   string
	Tensor *tensor.Tensor
}

// ForwardPreHook is called with a module's inputs before its forward
// computation. A non-nil result replaces the inputs.
type ForwardPreHook func(m Module, inputs []*tensor.Tensor) []*tensor.Tensor

// ForwardHook is called with a module's inputs and outputs after its forward
// computation. A non-nil result replaces the outputs (PyTorch's
// register_forward_hook; eager quantization uses one to observe outputs).
type ForwardHook func(m Module, inputs, outputs []*tensor.Tensor) []*tensor.Tensor

// Base carries what every module shares: the training flag, registered
// parameters and buffers, forward hooks, the module's dotted path, and the
// slots eager-mode quantization fills. Embed it (by value) in every module
// struct. The zero value is a module in training mode, as in PyTorch.
type Base struct {
	// QConfig is the quantization configuration attached to this module by
	// eager-mode quantization (set by package quant when it propagates a
	// QConfig; package nn never reads it). nil means none.
	QConfig any
	// ActivationPostProcess is the observer or fake-quantize module that
	// eager-mode quantization attaches to this module's output, PyTorch's
	// activation_post_process. When non-nil it is a child named
	// "activation_post_process" (its buffers appear in the state dict) and
	// can be addressed and replaced by path like any child. Package nn does
	// not call it: the quantization package registers a ForwardHook that
	// does.
	ActivationPostProcess Module

	eval     bool
	path     string
	typeName string
	params   []NamedTensor
	buffers  []NamedTensor
	preHooks []hookEntry[ForwardPreHook]
	hooks    []hookEntry[ForwardHook]
	nextHook int
}

type hookEntry[F any] struct {
	id int
	fn F
}

// ModuleBase returns b itself; it makes every struct embedding Base a
// Module.
func (b *Base) ModuleBase() *Base { return b }

// Training reports whether the module is in training mode (the zero value
// is). Use Train and Eval to change the mode of a whole model.
func (b *Base) Training() bool { return !b.eval }

// Path returns the module's dotted path in its model ("features.3.conv"),
// as last assigned by AssignPaths or Set; "" for a root or a module never
// placed in a model. Tracing reports module calls under this path.
func (b *Base) Path() string { return b.path }

// RegisterParameter adds a named parameter kept by the Base itself rather
// than in a struct field (LSTM uses it for its per-layer weights). It marks
// t as requiring grad. It panics when name is empty or already registered.
func (b *Base) RegisterParameter(name string, t *tensor.Tensor) {
	b.checkNew("RegisterParameter", name)
	t.SetRequiresGrad(true)
	b.params = append(b.params, NamedTensor{name, t})
}

// RegisterBuffer adds a named buffer (state that is saved but not trained)
// kept by the Base itself.
func (b *Base) RegisterBuffer(name string, t *tensor.Tensor) {
	b.checkNew("RegisterBuffer", name)
	b.buffers = append(b.buffers, NamedTensor{name, t})
}

func (b *Base) checkNew(op, name string) {
	if name == "" {
		panic("nn: " + op + ": empty name")
	}
	for _, p := range b.params {
		if p.Name == name {
			panic(fmt.Sprintf("nn: %s: %q is already a parameter", op, name))
		}
	}
	for _, p := range b.buffers {
		if p.Name == name {
			panic(fmt.Sprintf("nn: %s: %q is already a buffer", op, name))
		}
	}
}

// Param returns the registered parameter called name, or nil.
func (b *Base) Param(name string) *tensor.Tensor {
	for _, p := range b.params {
		if p.Name == name {
			return p.Tensor
		}
	}
	return nil
}

// Buffer returns the registered buffer called name, or nil.
func (b *Base) Buffer(name string) *tensor.Tensor {
	for _, p := range b.buffers {
		if p.Name == name {
			return p.Tensor
		}
	}
	return nil
}

// RegisterForwardPreHook adds a hook run before the module's forward
// computation (in registration order) and returns a function that removes
// it.
func (b *Base) RegisterForwardPreHook(h ForwardPreHook) (remove func()) {
	b.nextHook++
	id := b.nextHook
	b.preHooks = append(b.preHooks, hookEntry[ForwardPreHook]{id, h})
	return func() { b.preHooks = removeHook(b.preHooks, id) }
}

// RegisterForwardHook adds a hook run after the module's forward computation
// (in registration order) and returns a function that removes it.
func (b *Base) RegisterForwardHook(h ForwardHook) (remove func()) {
	b.nextHook++
	id := b.nextHook
	b.hooks = append(b.hooks, hookEntry[ForwardHook]{id, h})
	return func() { b.hooks = removeHook(b.hooks, id) }
}

func removeHook[F any](hs []hookEntry[F], id int) []hookEntry[F] {
	out := hs[:0:0]
	for _, h := range hs {
		if h.id != id {
			out = append(out, h)
		}
	}
	return out
}

// TypeName returns the module's type name as PyTorch prints it
// ("Conv2d", "Sequential"): the Typer result when m implements Typer, else
// the name of m's Go type.
func TypeName(m Module) string {
	if t, ok := m.(Typer); ok {
		return t.TypeName()
	}
	rt := reflect.TypeOf(m)
	for rt.Kind() == reflect.Pointer {
		rt = rt.Elem()
	}
	return rt.Name()
}

// Call runs fn as the forward computation of m on inputs, the way PyTorch's
// Module.__call__ runs forward: m's pre-hooks may replace the inputs, an
// installed ops.Tracer sees EnterModule and ExitModule with m's path and
// type name, and m's forward hooks may replace the outputs. Built-in
// modules call it from their Forward methods.
func Call(m Module, inputs []*tensor.Tensor, fn func(in []*tensor.Tensor) []*tensor.Tensor) []*tensor.Tensor {
	b := m.ModuleBase()
	for _, h := range b.preHooks {
		if r := h.fn(m, inputs); r != nil {
			inputs = r
		}
	}
	tr := ops.CurrentTracer()
	var typ string
	if tr != nil {
		typ = b.typeName
		if typ == "" {
			typ = TypeName(m)
		}
		tr.EnterModule(b.path, typ, inputs)
	}
	out := fn(inputs)
	if tr != nil {
		tr.ExitModule(b.path, typ, out)
	}
	for _, h := range b.hooks {
		if r := h.fn(m, inputs, out); r != nil {
			out = r
		}
	}
	return out
}

// Call1 is Call for a module with one input and one output.
func Call1(m Module, x *tensor.Tensor, fn func(x *tensor.Tensor) *tensor.Tensor) *tensor.Tensor {
	b := m.ModuleBase()
	if len(b.preHooks) == 0 && len(b.hooks) == 0 && ops.CurrentTracer() == nil {
		return fn(x)
	}
	return Call(m, []*tensor.Tensor{x}, func(in []*tensor.Tensor) []*tensor.Tensor {
		return []*tensor.Tensor{fn(in[0])}
	})[0]
}
