// Package graph is quanta's graph IR: a dataflow graph whose operators have
// ONNX semantics (op type, domain, attributes, optional inputs and outputs,
// subgraphs for If and Loop bodies). ONNX import and export (package onnx),
// the tracer of Go models, graph-mode quantization and the executor all
// work on it.
//
// A Graph owns Values and Nodes. A Value is a tensor-valued edge with a
// name, an element type and a (possibly partial, possibly symbolic) shape;
// it is a graph input, an initializer (a constant tensor), or the output of
// exactly one Node. Node inputs may be nil for omitted optional inputs, as
// ONNX's empty names. Subgraphs (Attr of kind AttrGraph) may read Values of
// enclosing graphs by reference.
//
// The package has no knowledge of individual operators: shape inference,
// constant folding and execution take per-operator rules from their callers
// (the executor's operator table), so the IR stays small. It offers a
// verifier (Verify), a deterministic text dump for golden tests (Dump),
// topological sorting and dead-code elimination.
package graph

import (
	"fmt"

	"github.com/quanta-go/quanta/tensor"
)

// Model is a graph with the metadata of an ONNX ModelProto.
type Model struct {
	// Graph is the main graph.
	Graph *Graph
	// Opsets maps an operator domain ("" for the default ONNX domain,
	// "com.microsoft", ...) to the opset version the model imports.
	Opsets map[string]int64
	// IRVersion is the ONNX IR version.
	IRVersion int64
	// ProducerName and ProducerVersion name the tool that wrote the model.
	ProducerName, ProducerVersion string
	// Domain and ModelVersion are the model's own namespace and version.
	Domain       string
	ModelVersion int64
	// DocString is the model's documentation.
	DocString string
	// Metadata holds the model's metadata_props, in order.
	Metadata []StringPair
}

// StringPair is a key and a value, as ONNX's StringStringEntryProto.
type StringPair struct{ Key, Value string }

// Opset returns the opset version imported for domain; the default ONNX
// domain is "" (ONNX also calls it "ai.onnx").
func (m *Model) Opset(domain string) int64 {
	if domain == "ai.onnx" {
		domain = ""
	}
	if v, ok := m.Opsets[domain]; ok {
		return v
	}
	if domain == "" {
		return m.Opsets["ai.onnx"]
	}
	return 0
}

// Graph is a dataflow graph.
type Graph struct {
	// Name is the graph's name.
	Name string
	// Inputs are the graph's inputs, in order; for a subgraph, its formal
	// parameters. Initializers are not inputs (ONNX IR 4+); an input that
	// also has a default value has Const set.
	Inputs []*Value
	// Outputs are the graph's outputs, in order.
	Outputs []*Value
	// Initializers are the constant tensors of the graph, in order.
	Initializers []*Value
	// Nodes are the graph's nodes; Sort puts them in topological order.
	Nodes []*Node
	// DocString is the graph's documentation.
	DocString string
	// Parent is the node whose attribute holds this graph (nil for a
	// main graph).
	Parent *Node
}

// Value is a tensor-valued edge of a graph.
type Value struct {
	// Name is unique within a graph and the graphs nested in it.
	Name string
	// Type is the element type and shape, possibly partial.
	Type Type
	// Const is the value of an initializer (or of an input with a default
	// value), else nil.
	Const *tensor.Tensor
	// Producer is the node computing the value, nil for graph inputs and
	// initializers.
	Producer *Node
	// Graph is the graph that defines the value.
	Graph *Graph
	// DocString documents the value.
	DocString string
}

// String returns the value's name.
func (v *Value) String() string {
	if v == nil {
		return "<none>"
	}
	return v.Name
}

// IsConst reports whether v is an initializer or has a constant value.
func (v *Value) IsConst() bool { return v != nil && v.Const != nil }

// Node is one operator application.
type Node struct {
	// Name is the node's name (may be empty in ONNX; importers give
	// every node a unique one).
	Name string
	// OpType and Domain identify the operator ("Conv", "" for ONNX's
	// default domain).
	OpType, Domain string
	// Inputs are the operands in order; a nil entry is an omitted optional
	// input.
	Inputs []*Value
	// Outputs are the results in order; a nil entry is an omitted
	// optional output.
	Outputs []*Value
	// Attrs are the node's attributes by name.
	Attrs map[string]*Attr
	// Graph is the graph holding the node.
	Graph *Graph
	// DocString documents the node.
	DocString string
	// ModulePath and ModuleType name the module a node belongs to, for
	// graph-mode QConfigMapping rules by module name and type: the dotted
	// path and type name of the Go module whose call produced the node
	// (tracing), or the scope an exporter encoded in the node name
	// ("/features/features.3/conv/Conv" gives "features.3.conv"). Empty
	// when unknown.
	ModulePath, ModuleType string
}

// String returns "name (OpType)".
func (n *Node) String() string {
	if n.Domain != "" {
		return fmt.Sprintf("%s (%s.%s)", n.Name, n.Domain, n.OpType)
	}
	return fmt.Sprintf("%s (%s)", n.Name, n.OpType)
}

// Input returns input i, or nil when it is absent.
func (n *Node) Input(i int) *Value {
	if i < 0 || i >= len(n.Inputs) {
		return nil
	}
	return n.Inputs[i]
}

// Output returns output i, or nil when it is absent.
func (n *Node) Output(i int) *Value {
	if i < 0 || i >= len(n.Outputs) {
		return nil
	}
	return n.Outputs[i]
}

// Subgraphs returns the graphs held by the node's attributes, in
// attribute-name order.
func (n *Node) Subgraphs() []*Graph {
	var gs []*Graph
	for _, name := range sortedAttrNames(n.Attrs) {
		a := n.Attrs[name]
		if a.G != nil {
			gs = append(gs, a.G)
		}
		gs = append(gs, a.Gs...)
	}
	return gs
}

// New returns an empty graph called name.
func New(name string) *Graph { return &Graph{Name: name} }

// AddInput appends a graph input.
func (g *Graph) AddInput(name string, t Type) *Value {
	v := &Value{Name: name, Type: t, Graph: g}
	g.Inputs = append(g.Inputs, v)
	return v
}

// AddInitializer appends a constant tensor; its type is the tensor's.
func (g *Graph) AddInitializer(name string, t *tensor.Tensor) *Value {
	v := &Value{Name: name, Type: TypeOf(t), Const: t, Graph: g}
	g.Initializers = append(g.Initializers, v)
	return v
}

// AddNode appends a node applying opType to inputs (nil entries are
// omitted optional inputs) with outputs named outputs (an empty name is an
// omitted optional output), and returns it. Output types are unknown until
// shape inference or an importer sets them.
func (g *Graph) AddNode(name, opType string, inputs []*Value, outputs []string, attrs map[string]*Attr) *Node {
	n := &Node{Name: name, OpType: opType, Inputs: inputs, Attrs: attrs, Graph: g}
	if n.Attrs == nil {
		n.Attrs = map[string]*Attr{}
	}
	for _, o := range outputs {
		if o == "" {
			n.Outputs = append(n.Outputs, nil)
			continue
		}
		n.Outputs = append(n.Outputs, &Value{Name: o, Producer: n, Graph: g})
	}
	for _, a := range n.Attrs {
		if a.G != nil {
			a.G.Parent = n
		}
		for _, sg := range a.Gs {
			sg.Parent = n
		}
	}
	g.Nodes = append(g.Nodes, n)
	return n
}

// Users returns, for every value of g and its subgraphs, the nodes that
// read it (a node reading a value twice appears once).
func (g *Graph) Users() map[*Value][]*Node {
	u := map[*Value][]*Node{}
	var walk func(g *Graph, owner *Node)
	walk = func(g *Graph, owner *Node) {
		for _, n := range g.Nodes {
			user := n
			if owner != nil {
				user = owner // a subgraph's reads count as its node's
			}
			seen := map[*Value]bool{}
			for _, in := range n.Inputs {
				if in != nil && !seen[in] {
					seen[in] = true
					u[in] = append(u[in], user)
				}
			}
			for _, sg := range n.Subgraphs() {
				walk(sg, user)
			}
		}
	}
	walk(g, nil)
	return u
}

// Values returns every value defined in g (inputs, initializers, node
// outputs; not those of subgraphs), in definition order.
func (g *Graph) Values() []*Value {
	var vs []*Value
	vs = append(vs, g.Inputs...)
	vs = append(vs, g.Initializers...)
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o != nil {
				vs = append(vs, o)
			}
		}
	}
	return vs
}

// OpCounts returns how many nodes of each op type g holds, subgraphs
// included; the key is "domain.OpType" for other domains than ONNX's.
func (g *Graph) OpCounts() map[string]int {
	c := map[string]int{}
	var walk func(g *Graph)
	walk = func(g *Graph) {
		for _, n := range g.Nodes {
			k := n.OpType
			if n.Domain != "" && n.Domain != "ai.onnx" {
				k = n.Domain + "." + n.OpType
			}
			c[k]++
			for _, sg := range n.Subgraphs() {
				walk(sg)
			}
		}
	}
	walk(g)
	return c
}
