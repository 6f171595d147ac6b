package onnx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// MinOpset and MaxOpset bound the versions of the default ONNX domain's
// operator set that models may import.
const (
	MinOpset = 7
	MaxOpset = 21
)

// DecodeOptions configures Decode.
type DecodeOptions struct {
	// Dir is the directory that tensors stored as external data are read
	// from (their locations are relative to it and may not leave it). When
	// empty, a model with external data is an error.
	Dir string
	// Name names the model in error messages; "model" when empty.
	Name string
}

// Load reads the ONNX model in the file at path. The file is read through
// a small window rather than as a whole: initializer data goes straight
// from the file into the tensors, so a model is never held twice in
// memory. External data is read from path's directory.
func Load(path string) (*graph.Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("onnx: %s is a directory", path)
	}
	return decode(fileStream(f, st.Size()), DecodeOptions{Dir: filepath.Dir(path), Name: path})
}

// Decode reads an ONNX model (a serialized ModelProto) from data. The
// model's tensors are copies: data may be reused afterwards.
func Decode(data []byte, opts DecodeOptions) (*graph.Model, error) {
	return decode(memStream(data), opts)
}

func decode(s *stream, opts DecodeOptions) (*graph.Model, error) {
	name := opts.Name
	if name == "" {
		name = "model"
	}
	m, err := decodeModel(s, opts)
	if err != nil {
		return nil, fmt.Errorf("onnx: %s: %w", name, err)
	}
	return m, nil
}

func decodeModel(s *stream, opts DecodeOptions) (*graph.Model, error) {
	d := &decoder{s: s}
	pm, err := d.model(0, s.size)
	if err != nil {
		return nil, err
	}
	if pm.graph == nil {
		return nil, errors.New("the model has no graph")
	}
	m := &graph.Model{
		Opsets: map[string]int64{}, IRVersion: pm.irVersion,
		ProducerName: pm.producerName, ProducerVersion: pm.producerVersion,
		Domain: pm.domain, ModelVersion: pm.modelVersion, DocString: pm.doc, Metadata: pm.metadata,
	}
	for _, op := range pm.opsets {
		dom := normDomain(op.domain)
		if prev, ok := m.Opsets[dom]; ok && prev != op.version {
			return nil, fmt.Errorf("opset_import lists domain %q twice (versions %d and %d)", op.domain, prev, op.version)
		}
		m.Opsets[dom] = op.version
	}
	if v, ok := m.Opsets[""]; ok && (v < MinOpset || v > MaxOpset) {
		return nil, fmt.Errorf("opset %d of the default ONNX domain is not supported (%d to %d are)", v, MinOpset, MaxOpset)
	}
	ext := &externalFiles{dir: opts.Dir}
	defer ext.close()
	b := &builder{ir: pm.irVersion, ext: ext, used: map[string]bool{}, next: map[string]int{}, funcs: map[[2]string]bool{}}
	for _, fn := range pm.functions {
		b.funcs[[2]string{normDomain(fn.domain), fn.name}] = true
	}
	b.claimNames(pm.graph)
	g, err := b.graph(pm.graph, nil)
	if err != nil {
		return nil, err
	}
	if b.defaultDomain {
		if _, ok := m.Opsets[""]; !ok {
			return nil, errors.New("the model uses ONNX operators but imports no opset of the default domain")
		}
	}
	if err := graph.Verify(g); err != nil {
		return nil, err
	}
	m.Graph = g
	return m, nil
}

// normDomain maps ONNX's two names of the default domain, "" and
// "ai.onnx", to "".
func normDomain(d string) string {
	if d == "ai.onnx" {
		return ""
	}
	return d
}

// builder turns decoded messages into a graph.
type builder struct {
	ir    int64
	ext   *externalFiles
	used  map[string]bool // node names taken
	next  map[string]int  // next number to try for generated names, by op type
	claim map[*pNode]bool // nodes that keep their own name
	funcs map[[2]string]bool

	defaultDomain bool // a node of the default domain was seen
}

// claimNames gives the first node carrying each non-empty name that name,
// before any name is generated, so generated names never take a name the
// file uses.
func (b *builder) claimNames(g *pGraph) {
	if b.claim == nil {
		b.claim = map[*pNode]bool{}
	}
	for _, n := range g.nodes {
		if n.name != "" && !b.used[n.name] {
			b.used[n.name] = true
			b.claim[n] = true
		}
		for _, a := range n.attrs {
			if a.g != nil {
				b.claimNames(a.g)
			}
			for _, sg := range a.graphs {
				b.claimNames(sg)
			}
		}
	}
}

// nodeName returns n's name, or a generated one ("Conv_3", or "name_1"
// for a repeated name) that no other node has.
func (b *builder) nodeName(n *pNode) string {
	if b.claim[n] {
		return n.name
	}
	base := n.name
	if base == "" {
		base = n.opType
		if base == "" {
			base = "node"
		}
	}
	for k := b.next[base]; ; k++ {
		name := base + "_" + strconv.Itoa(k)
		if !b.used[name] {
			b.used[name] = true
			b.next[base] = k + 1
			return name
		}
	}
}

// scope maps value names to the values of a graph and, through parent, of
// the graphs enclosing it.
type scope struct {
	vals   map[string]*graph.Value
	parent *scope
}

func (s *scope) lookup(name string) *graph.Value {
	for ; s != nil; s = s.parent {
		if v, ok := s.vals[name]; ok {
			return v
		}
	}
	return nil
}

// graph builds a graph (a subgraph when parent is set).
func (b *builder) graph(p *pGraph, parent *scope) (*graph.Graph, error) {
	g := graph.New(p.name)
	g.DocString = p.doc
	what := "graph"
	if p.name != "" {
		what = fmt.Sprintf("graph %q", p.name)
	}
	g2, err := b.fill(g, p, parent)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return g2, nil
}

func (b *builder) fill(g *graph.Graph, p *pGraph, parent *scope) (*graph.Graph, error) {
	sc := &scope{vals: map[string]*graph.Value{}, parent: parent}
	define := func(v *graph.Value, what string) error {
		if v.Name == "" {
			return fmt.Errorf("%s has no name", what)
		}
		if prev := sc.lookup(v.Name); prev != nil {
			if prev.Graph == g {
				return fmt.Errorf("%s %q is defined twice", what, v.Name)
			}
			return fmt.Errorf("%s %q hides a value of the enclosing graph", what, v.Name)
		}
		sc.vals[v.Name] = v
		return nil
	}

	// Initializers, dense and sparse.
	inits := make([]*graph.Value, 0, len(p.inits)+len(p.sparse))
	byName := map[string]*graph.Value{}
	addInit := func(name string, t *tensor.Tensor, elem graph.ElemType, doc string) error {
		ty := graph.TypeOf(t)
		ty.Elem = elem
		v := &graph.Value{Name: name, Type: ty, Const: t, Graph: g, DocString: doc}
		if err := define(v, "initializer"); err != nil {
			return err
		}
		inits = append(inits, v)
		byName[name] = v
		return nil
	}
	for i, pt := range p.inits {
		t, elem, err := pt.materialize(b.ext)
		if err != nil {
			return nil, fmt.Errorf("initializer %d%s: %w", i, tensorLabel(pt), err)
		}
		if err := addInit(pt.name, t, elem, pt.doc); err != nil {
			return nil, err
		}
	}
	for i, sp := range p.sparse {
		t, elem, err := sp.densify(b.ext)
		if err != nil {
			return nil, fmt.Errorf("sparse_initializer %d%s: %w", i, tensorLabel(sp.values), err)
		}
		if err := addInit(sp.values.name, t, elem, sp.values.doc); err != nil {
			return nil, err
		}
	}

	// Inputs. One that is also an initializer is a constant (IR version
	// below 4, where every initializer had to be listed as an input) or an
	// input with a default value (IR 4 and later).
	isInit := map[*graph.Value]bool{}
	for _, v := range inits {
		isInit[v] = true
	}
	for _, vi := range p.inputs {
		if v, ok := byName[vi.name]; ok && v.Graph == g {
			if b.ir >= 4 {
				delete(isInit, v)
				// The declared shape may be more general (symbolic);
				// the element type stays the data's.
				if vi.typ.HasShape {
					v.Type.Shape = vi.typ.Shape
				}
				if vi.doc != "" {
					v.DocString = vi.doc
				}
				g.Inputs = append(g.Inputs, v)
			}
			continue
		}
		v := &graph.Value{Name: vi.name, Type: vi.typ, Graph: g, DocString: vi.doc}
		if err := define(v, "input"); err != nil {
			return nil, err
		}
		g.Inputs = append(g.Inputs, v)
	}
	for _, v := range inits {
		if isInit[v] {
			g.Initializers = append(g.Initializers, v)
		}
	}

	// Nodes, first with their outputs only, so that every value of this
	// graph is known before inputs and subgraphs are resolved.
	nodes := make([]*graph.Node, len(p.nodes))
	for i, pn := range p.nodes {
		if pn.opType == "" {
			return nil, fmt.Errorf("node %d (%s) has no op_type", i, pn.name)
		}
		n := &graph.Node{Name: b.nodeName(pn), OpType: pn.opType, Domain: normDomain(pn.domain),
			Graph: g, DocString: pn.doc, Attrs: map[string]*graph.Attr{}}
		if n.Domain == "" {
			b.defaultDomain = true
		}
		if b.funcs[[2]string{n.Domain, n.OpType}] {
			return nil, fmt.Errorf("node %s: model functions are not supported (%s is one)", n, n.OpType)
		}
		for _, o := range pn.outputs {
			if o == "" {
				n.Outputs = append(n.Outputs, nil)
				continue
			}
			v := &graph.Value{Name: o, Producer: n, Graph: g}
			if err := define(v, fmt.Sprintf("output of node %s", n)); err != nil {
				return nil, err
			}
			n.Outputs = append(n.Outputs, v)
		}
		nodes[i] = n
	}
	for _, vi := range p.valueInf {
		if v := sc.vals[vi.name]; v != nil && v.Producer != nil {
			v.Type = vi.typ
			v.DocString = vi.doc
		}
	}
	for i, pn := range p.nodes {
		n := nodes[i]
		for j, in := range pn.inputs {
			if in == "" {
				n.Inputs = append(n.Inputs, nil)
				continue
			}
			v := sc.lookup(in)
			if v == nil {
				return nil, fmt.Errorf("node %s: input %d %q is not defined", n, j, in)
			}
			n.Inputs = append(n.Inputs, v)
		}
		for _, pa := range pn.attrs {
			a, err := b.attr(pa, n, sc)
			if err != nil {
				return nil, fmt.Errorf("node %s: attribute %q: %w", n, pa.name, err)
			}
			key := pa.name
			if pa.sparse != nil && a.Kind == graph.AttrTensor {
				key = "value" // Constant's sparse_value, stored dense
			}
			if _, dup := n.Attrs[key]; dup {
				return nil, fmt.Errorf("node %s: attribute %q is given twice", n, key)
			}
			n.Attrs[key] = a
			if key == "value" && a.T != nil && n.OpType == "Constant" && n.Domain == "" {
				constantType(n, a.T, graph.ElemType(pa.tensorType()))
			}
		}
		g.Nodes = append(g.Nodes, n)
	}

	for _, vi := range p.outputs {
		v := sc.lookup(vi.name)
		if v == nil {
			return nil, fmt.Errorf("output %q is not defined", vi.name)
		}
		if v.Graph == g && v.Producer != nil {
			if vi.typ.Elem != graph.Undefined || vi.typ.HasShape {
				v.Type = vi.typ
			}
			if vi.doc != "" {
				v.DocString = vi.doc
			}
		}
		g.Outputs = append(g.Outputs, v)
	}
	return g, nil
}

// constantType gives a Constant node's output the type of its value when
// the file declares none, keeping the value's ONNX element type (float16,
// double, ...) that the tensor attribute, held in quanta's dtype, loses.
func constantType(n *graph.Node, t *tensor.Tensor, elem graph.ElemType) {
	if len(n.Outputs) != 1 || n.Outputs[0] == nil {
		return
	}
	out := n.Outputs[0]
	if out.Type.Elem == graph.Undefined {
		out.Type.Elem = elem
	}
	if !out.Type.HasShape {
		out.Type.Shape, out.Type.HasShape = graph.TypeOf(t).Shape, true
	}
}

// tensorType is the file's element type of a tensor attribute.
func (a *pAttr) tensorType() int32 {
	switch {
	case a.t != nil:
		return a.t.dataType
	case a.sparse != nil && a.sparse.values != nil:
		return a.sparse.values.dataType
	}
	return 0
}

// attr converts an attribute; subgraphs are built in n's scope.
func (b *builder) attr(p *pAttr, n *graph.Node, sc *scope) (*graph.Attr, error) {
	kind := graph.AttrKind(p.typ)
	if !p.hasType || kind == graph.AttrUndefined {
		kind = p.inferKind()
	}
	a := &graph.Attr{Kind: kind, RefAttrName: p.ref}
	if p.ref != "" {
		return a, nil
	}
	var err error
	switch kind {
	case graph.AttrFloat:
		a.F = p.f
	case graph.AttrInt:
		a.I = p.i
	case graph.AttrString:
		a.S = string(p.s)
	case graph.AttrFloats:
		a.Fs = p.floats
	case graph.AttrInts:
		a.Is = p.ints
	case graph.AttrStrings:
		for _, s := range p.strs {
			a.Ss = append(a.Ss, string(s))
		}
	case graph.AttrTensor:
		if p.t == nil {
			return nil, errors.New("tensor attribute has no tensor")
		}
		a.T, _, err = p.t.materialize(b.ext)
	case graph.AttrTensors:
		for i, pt := range p.tensors {
			t, _, err := pt.materialize(b.ext)
			if err != nil {
				return nil, fmt.Errorf("tensor %d: %w", i, err)
			}
			a.Ts = append(a.Ts, t)
		}
	case graph.AttrSparseTensor:
		// Constant's sparse_value is the only sparse attribute ONNX
		// defines; it is stored dense.
		if n.OpType != "Constant" || p.name != "sparse_value" || p.sparse == nil {
			return nil, errors.New("sparse tensor attributes are supported only as Constant's sparse_value")
		}
		a.Kind = graph.AttrTensor
		a.T, _, err = p.sparse.densify(b.ext)
	case graph.AttrGraph:
		if p.g == nil {
			return nil, errors.New("graph attribute has no graph")
		}
		a.G, err = b.graph(p.g, sc)
		if a.G != nil {
			a.G.Parent = n
		}
	case graph.AttrGraphs:
		for i, pg := range p.graphs {
			sg, err := b.graph(pg, sc)
			if err != nil {
				return nil, fmt.Errorf("graph %d: %w", i, err)
			}
			sg.Parent = n
			a.Gs = append(a.Gs, sg)
		}
	default:
		return nil, fmt.Errorf("attributes of type %s (%d) are not supported", kind, int32(kind))
	}
	if err != nil {
		return nil, err
	}
	return a, nil
}

// inferKind finds an attribute's kind from the value field present, for
// files written before AttributeProto had a type (IR version 1).
func (p *pAttr) inferKind() graph.AttrKind {
	order := []struct {
		field int
		kind  graph.AttrKind
	}{{2, graph.AttrFloat}, {3, graph.AttrInt}, {4, graph.AttrString}, {5, graph.AttrTensor}, {6, graph.AttrGraph},
		{22, graph.AttrSparseTensor}, {7, graph.AttrFloats}, {8, graph.AttrInts}, {9, graph.AttrStrings},
		{10, graph.AttrTensors}, {11, graph.AttrGraphs}, {14, graph.AttrTypeProto}}
	for _, o := range order {
		if p.seen[o.field] {
			return o.kind
		}
	}
	return graph.AttrUndefined
}

// Limits on densifying sparse tensors: at most sparseExpansion dense
// elements per stored value, and maxSparseDense in all.
const (
	sparseExpansion = 1 << 12
	maxSparseDense  = 1 << 28
)

// densify expands a SparseTensorProto into a dense tensor.
func (sp *pSparse) densify(ext *externalFiles) (*tensor.Tensor, graph.ElemType, error) {
	if sp.values == nil || sp.indices == nil {
		return nil, 0, errors.New("sparse tensor lacks values or indices")
	}
	vals, elem, err := sp.values.materialize(ext)
	if err != nil {
		return nil, elem, fmt.Errorf("values: %w", err)
	}
	idx, _, err := sp.indices.materialize(ext)
	if err != nil {
		return nil, elem, fmt.Errorf("indices: %w", err)
	}
	shape, n, err := shapeOf(sp.dims)
	if err != nil {
		return nil, elem, err
	}
	nnz := vals.Numel()
	if vals.NDim() != 1 || idx.DType() != tensor.Int64 {
		return nil, elem, errors.New("sparse values must be 1-D and indices int64")
	}
	ix := idx.I64()
	rank := len(shape)
	var flat []int64
	switch {
	case len(ix) == nnz && idx.NDim() == 1:
		flat = ix
	case idx.NDim() == 2 && idx.Shape()[0] == nnz && idx.Shape()[1] == rank:
		flat = make([]int64, nnz)
		for i := range nnz {
			var f int64
			for j := range rank {
				k := ix[i*rank+j]
				if k < 0 || k >= int64(shape[j]) {
					return nil, elem, fmt.Errorf("sparse index %d out of range for dims %v", k, sp.dims)
				}
				f = f*int64(shape[j]) + k
			}
			flat[i] = f
		}
	default:
		return nil, elem, fmt.Errorf("sparse indices of shape %v do not match %d values of rank %d", idx.Shape(), nnz, rank)
	}
	if n > maxSparseDense || n > max(nnz, 1)*sparseExpansion {
		// A few bytes of file may not expand into a huge dense tensor.
		return nil, elem, fmt.Errorf("sparse tensor dims %v are too large for %d values", sp.dims, nnz)
	}
	out := tensor.New(vals.DType(), shape...)
	for i, f := range flat {
		if f < 0 || f >= int64(n) {
			return nil, elem, fmt.Errorf("sparse index %d out of range for dims %v", f, sp.dims)
		}
		if err := copyElem(out, int(f), vals, i); err != nil {
			return nil, elem, err
		}
	}
	return out, elem, nil
}

func copyElem(dst *tensor.Tensor, i int, src *tensor.Tensor, j int) error {
	switch dst.DType().Storage() {
	case tensor.Float32:
		dst.F32()[i] = src.F32()[j]
	case tensor.Int64:
		dst.I64()[i] = src.I64()[j]
	case tensor.Int32:
		dst.I32()[i] = src.I32()[j]
	case tensor.Int8:
		dst.I8()[i] = src.I8()[j]
	case tensor.Uint8:
		dst.U8()[i] = src.U8()[j]
	case tensor.Bool:
		dst.Bools()[i] = src.Bools()[j]
	default:
		return fmt.Errorf("sparse tensors of %s are not supported", dst.DType())
	}
	return nil
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
