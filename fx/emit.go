package fx

import (
	"fmt"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// lowerFunc maps one recorded op to nodes through an emitter: it reads the
// op's inputs, emits nodes and binds every op output to a graph value.
type lowerFunc func(e *emitter, attrs any) error

// emitter is what a lowering sees of one recorded op: its inputs and
// outputs, the module call it ran in, and helpers to add nodes and
// constants named after that module.
type emitter struct {
	t     *tracer
	scope scope
	op    string
	ins   []*tensor.Tensor
	outs  []*tensor.Tensor
	bound []*graph.Value
}

// in returns the graph value of input i, nil when the op had no such input
// (an omitted optional input).
func (e *emitter) in(i int) *graph.Value {
	if i >= len(e.ins) || e.ins[i] == nil {
		return nil
	}
	return e.t.value(e.ins[i])
}

// need returns the value of input i, or an error naming it when absent.
func (e *emitter) need(i int) (*graph.Value, error) {
	v := e.in(i)
	if v == nil {
		return nil, fmt.Errorf("input %d is missing", i)
	}
	return v, nil
}

// need2 returns the values of inputs 0 and 1, or an error naming the
// first one absent.
func (e *emitter) need2() (*graph.Value, *graph.Value, error) {
	a, err := e.need(0)
	if err != nil {
		return nil, nil, err
	}
	b, err := e.need(1)
	if err != nil {
		return nil, nil, err
	}
	return a, b, nil
}

// shape returns the shape of input i as the op saw it.
func (e *emitter) shape(i int) []int { return e.ins[i].Shape() }

// outShape returns the shape of output i.
func (e *emitter) outShape(i int) []int { return e.outs[i].Shape() }

// scoped returns base prefixed by the module path ("features.0/Conv").
func (e *emitter) scoped(base string) string {
	if e.scope.path == "" {
		return base
	}
	return e.scope.path + "/" + base
}

// node adds a node of opType with nout outputs, named after the module
// and the operator and made unique; its outputs are untyped until bound or
// typed by the caller.
func (e *emitter) node(opType string, ins []*graph.Value, attrs map[string]*graph.Attr, nout int) *graph.Node {
	for len(ins) > 0 && ins[len(ins)-1] == nil {
		ins = ins[:len(ins)-1] // trailing omitted optional inputs
	}
	name := e.t.nodeNames.Unique(e.scoped(opType))
	outs := make([]string, nout)
	for k := range outs {
		outs[k] = e.t.uniqueValue(fmt.Sprintf("%s_output_%d", name, k))
	}
	n := e.t.g.AddNode(name, opType, ins, outs, attrs)
	n.ModulePath, n.ModuleType = e.scope.path, e.scope.typ
	return n
}

// tmp adds a single-output node whose output has type typ (the zero Type
// when unknown) and returns the output.
func (e *emitter) tmp(opType string, typ graph.Type, ins []*graph.Value, attrs map[string]*graph.Attr) *graph.Value {
	v := e.node(opType, ins, attrs, 1).Outputs[0]
	v.Type = typ
	return v
}

// like returns the type of tensor x.
func like(x *tensor.Tensor) graph.Type { return graph.TypeOf(x) }

// likeShape returns a float32 type of the given shape.
func likeShape(shape []int) graph.Type {
	d := make([]int64, len(shape))
	for i, s := range shape {
		d[i] = int64(s)
	}
	return graph.TensorType(graph.Float, d...)
}

// bind makes v the value of op output i and gives v that output's type.
func (e *emitter) bind(i int, v *graph.Value) {
	if e.bound == nil {
		e.bound = make([]*graph.Value, len(e.outs))
	}
	y := e.outs[i]
	if v.Producer != nil {
		v.Type = graph.TypeOf(y)
	}
	e.bound[i] = v
	e.t.values[y] = v
}

// emit adds one node computing all the op's outputs and binds them.
func (e *emitter) emit(opType string, ins []*graph.Value, attrs map[string]*graph.Attr) {
	n := e.node(opType, ins, attrs, len(e.outs))
	for i, o := range n.Outputs {
		e.bind(i, o)
	}
}

// emit1 adds a node computing op output 0 from ins.
func (e *emitter) emit1(opType string, attrs map[string]*graph.Attr, ins ...*graph.Value) {
	n := e.node(opType, ins, attrs, 1)
	e.bind(0, n.Outputs[0])
}

// constant adds an initializer named after the module and role.
func (e *emitter) constant(role string, t *tensor.Tensor) *graph.Value {
	return e.t.g.AddInitializer(e.t.uniqueValue(e.scoped(role)), t)
}

// ints adds a 1-D int64 initializer.
func (e *emitter) ints(role string, v ...int) *graph.Value {
	d := make([]int64, len(v))
	for i, x := range v {
		d[i] = int64(x)
	}
	return e.constant(role, tensor.FromInt64(d, len(d)))
}

// scalar adds a 0-dimensional float32 initializer.
func (e *emitter) scalar(role string, f float32) *graph.Value {
	return e.constant(role, tensor.Scalar(f))
}

// Attribute helpers.

func aInts(v ...int) *graph.Attr {
	d := make([]int64, len(v))
	for i, x := range v {
		d[i] = int64(x)
	}
	return graph.AInts(d...)
}

func aInt(v int) *graph.Attr { return graph.AInt(int64(v)) }

// attrs builds an attribute map from name/value pairs.
func attrs(kv ...any) map[string]*graph.Attr {
	m := make(map[string]*graph.Attr, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1].(*graph.Attr)
	}
	return m
}

// as returns attrs as T, or an error naming both types.
func as[T any](a any) (T, error) {
	v, ok := a.(T)
	if !ok {
		var z T
		return z, fmt.Errorf("attributes are %T, want %T", a, z)
	}
	return v, nil
}

// attrsAndInput returns the attributes a as T and the value of input 0,
// the start of most lowerings.
func attrsAndInput[T any](e *emitter, a any) (T, *graph.Value, error) {
	at, err := as[T](a)
	if err != nil {
		return at, nil, err
	}
	x, err := e.need(0)
	if err != nil {
		return at, nil, err
	}
	return at, x, nil
}

// axis normalizes a possibly negative dimension index for rank r.
func axis(d, r int) (int, error) {
	if d < 0 {
		d += r
	}
	if d < 0 || d >= r {
		return 0, fmt.Errorf("dimension %d out of range for rank %d", d, r)
	}
	return d, nil
}

// one returns v, or 1 when v is 0 (the ops convention for strides,
// dilations and groups).
func one(v int) int {
	if v == 0 {
		return 1
	}
	return v
}

// batched runs f on x with a batch dimension: when unbatched, x is
// unsqueezed at axis 0 first and the result squeezed back, since ONNX's
// convolution and pooling operators need [N, C, ...].
func (e *emitter) batched(x *graph.Value, unbatched bool, f func(x *graph.Value) *graph.Value) *graph.Value {
	if !unbatched {
		return f(x)
	}
	x = e.tmp("Unsqueeze", graph.Type{}, []*graph.Value{x, e.ints("Unsqueeze_axes", 0)}, nil)
	y := f(x)
	return e.tmp("Squeeze", graph.Type{}, []*graph.Value{y, e.ints("Squeeze_axes", 0)}, nil)
}
