package onnx

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/graph"
)

// The p* types are ONNX messages as read from the wire, before names are
// resolved into a graph. Field numbers follow onnx.proto.

type pModel struct {
	irVersion                     int64
	opsets                        []pOpset
	producerName, producerVersion string
	domain                        string
	modelVersion                  int64
	doc                           string
	graph                         *pGraph
	metadata                      []graph.StringPair
	functions                     []pOpset // domain and name of each model-local function
}

type pOpset struct {
	domain  string
	version int64 // for functions: unused
	name    string
}

type pGraph struct {
	name, doc                 string
	nodes                     []*pNode
	inits                     []*pTensor
	sparse                    []*pSparse
	inputs, outputs, valueInf []*pValueInfo
}

type pNode struct {
	inputs, outputs           []string
	name, opType, domain, doc string
	attrs                     []*pAttr
}

type pAttr struct {
	name, ref, doc string
	typ            int32
	hasType        bool
	f              float32
	i              int64
	s              []byte
	t              *pTensor
	g              *pGraph
	sparse         *pSparse
	floats         []float32
	ints           []int64
	strs           [][]byte
	tensors        []*pTensor
	graphs         []*pGraph
	// seen records which value fields were present (by field number), for
	// files that omit the type (IR version 1).
	seen map[int]bool
}

type pSparse struct {
	values, indices *pTensor
	dims            []int64
}

type pValueInfo struct {
	name, doc string
	typ       graph.Type
}

// maxDepth bounds the nesting of subgraphs (and so the decoder's recursion).
const maxDepth = 64

type decoder struct {
	s *stream
}

func (d *decoder) model(off, end int64) (*pModel, error) {
	m := &pModel{}
	err := d.s.fields(off, end, func(f field) (err error) {
		switch f.num {
		case 1:
			m.irVersion, err = f.int64("ir_version")
		case 2:
			m.producerName, err = d.s.str(f, "producer_name")
		case 3:
			m.producerVersion, err = d.s.str(f, "producer_version")
		case 4:
			m.domain, err = d.s.str(f, "domain")
		case 5:
			m.modelVersion, err = f.int64("model_version")
		case 6:
			m.doc, err = d.s.str(f, "doc_string")
		case 7:
			o, e, err := f.msg("graph")
			if err != nil {
				return err
			}
			if m.graph == nil {
				m.graph = &pGraph{}
			}
			// A repeated message field merges, as protobuf specifies.
			if err := d.graphInto(m.graph, o, e, 0); err != nil {
				return fmt.Errorf("graph: %w", err)
			}
		case 8:
			o, e, err := f.msg("opset_import")
			if err != nil {
				return err
			}
			op, err := d.opset(o, e)
			if err != nil {
				return fmt.Errorf("opset_import: %w", err)
			}
			m.opsets = append(m.opsets, op)
		case 14:
			o, e, err := f.msg("metadata_props")
			if err != nil {
				return err
			}
			kv, err := d.stringPair(o, e)
			if err != nil {
				return fmt.Errorf("metadata_props: %w", err)
			}
			m.metadata = append(m.metadata, kv)
		case 25:
			o, e, err := f.msg("functions")
			if err != nil {
				return err
			}
			fn, err := d.function(o, e)
			if err != nil {
				return fmt.Errorf("functions: %w", err)
			}
			m.functions = append(m.functions, fn)
		}
		return err
	})
	return m, err
}

func (d *decoder) opset(off, end int64) (op pOpset, err error) {
	err = d.s.fields(off, end, func(f field) (err error) {
		switch f.num {
		case 1:
			op.domain, err = d.s.str(f, "domain")
		case 2:
			op.version, err = f.int64("version")
		}
		return err
	})
	return op, err
}

// function reads the identity of a FunctionProto (name 1, domain 10).
func (d *decoder) function(off, end int64) (op pOpset, err error) {
	err = d.s.fields(off, end, func(f field) (err error) {
		switch f.num {
		case 1:
			op.name, err = d.s.str(f, "name")
		case 10:
			op.domain, err = d.s.str(f, "domain")
		}
		return err
	})
	return op, err
}

func (d *decoder) stringPair(off, end int64) (kv graph.StringPair, err error) {
	err = d.s.fields(off, end, func(f field) (err error) {
		switch f.num {
		case 1:
			kv.Key, err = d.s.str(f, "key")
		case 2:
			kv.Value, err = d.s.str(f, "value")
		}
		return err
	})
	return kv, err
}

func (d *decoder) graphInto(g *pGraph, off, end int64, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("subgraphs nested deeper than %d levels", maxDepth)
	}
	return d.s.fields(off, end, func(f field) (err error) {
		switch f.num {
		case 1:
			o, e, err := f.msg("node")
			if err != nil {
				return err
			}
			n, err := d.node(o, e, depth)
			if err != nil {
				return fmt.Errorf("node %d%s: %w", len(g.nodes), nodeLabel(n), err)
			}
			g.nodes = append(g.nodes, n)
		case 2:
			g.name, err = d.s.str(f, "name")
		case 5:
			o, e, err := f.msg("initializer")
			if err != nil {
				return err
			}
			t, err := d.tensor(o, e)
			if err != nil {
				return fmt.Errorf("initializer %d%s: %w", len(g.inits), tensorLabel(t), err)
			}
			g.inits = append(g.inits, t)
		case 15:
			o, e, err := f.msg("sparse_initializer")
			if err != nil {
				return err
			}
			sp, err := d.sparse(o, e)
			if err != nil {
				return fmt.Errorf("sparse_initializer %d: %w", len(g.sparse), err)
			}
			g.sparse = append(g.sparse, sp)
		case 10:
			g.doc, err = d.s.str(f, "doc_string")
		case 11, 12, 13:
			name := map[int]string{11: "input", 12: "output", 13: "value_info"}[int(f.num)]
			o, e, err := f.msg(name)
			if err != nil {
				return err
			}
			vi, err := d.valueInfo(o, e)
			if err != nil {
				return fmt.Errorf("%s %q: %w", name, vi.name, err)
			}
			switch f.num {
			case 11:
				g.inputs = append(g.inputs, vi)
			case 12:
				g.outputs = append(g.outputs, vi)
			default:
				g.valueInf = append(g.valueInf, vi)
			}
		}
		return err
	})
}

// nodeLabel and tensorLabel name a partly decoded message in errors.
func nodeLabel(n *pNode) string {
	if n == nil || (n.name == "" && n.opType == "") {
		return ""
	}
	if n.name == "" {
		return fmt.Sprintf(" (%s)", n.opType)
	}
	return fmt.Sprintf(" (%s, %s)", n.name, n.opType)
}

func tensorLabel(t *pTensor) string {
	if t == nil || t.name == "" {
		return ""
	}
	return fmt.Sprintf(" %q", t.name)
}

func (d *decoder) node(off, end int64, depth int) (*pNode, error) {
	n := &pNode{}
	err := d.s.fields(off, end, func(f field) (err error) {
		var s string
		switch f.num {
		case 1:
			s, err = d.s.str(f, "input")
			n.inputs = append(n.inputs, s)
		case 2:
			s, err = d.s.str(f, "output")
			n.outputs = append(n.outputs, s)
		case 3:
			n.name, err = d.s.str(f, "name")
		case 4:
			n.opType, err = d.s.str(f, "op_type")
		case 7:
			n.domain, err = d.s.str(f, "domain")
		case 6:
			n.doc, err = d.s.str(f, "doc_string")
		case 5:
			o, e, err := f.msg("attribute")
			if err != nil {
				return err
			}
			a, err := d.attr(o, e, depth)
			if err != nil {
				if a != nil && a.name != "" {
					return fmt.Errorf("attribute %q: %w", a.name, err)
				}
				return fmt.Errorf("attribute %d: %w", len(n.attrs), err)
			}
			n.attrs = append(n.attrs, a)
		}
		return err
	})
	return n, err
}

func (d *decoder) attr(off, end int64, depth int) (*pAttr, error) {
	a := &pAttr{seen: map[int]bool{}}
	// The name may follow the value on the wire: find it first so errors
	// can name the attribute.
	_ = d.s.fields(off, end, func(f field) error {
		if f.num == 1 && f.typ == 2 {
			a.name, _ = d.s.str(f, "name")
		}
		return nil
	})
	err := d.s.fields(off, end, func(f field) (err error) {
		a.seen[int(f.num)] = true
		switch f.num {
		case 1:
			a.name, err = d.s.str(f, "name")
		case 21:
			a.ref, err = d.s.str(f, "ref_attr_name")
		case 13:
			a.doc, err = d.s.str(f, "doc_string")
		case 20:
			a.typ, err = f.int32("type")
			a.hasType = true
		case 2:
			a.f, err = f.float32("f")
		case 3:
			a.i, err = f.int64("i")
		case 4:
			a.s, err = d.s.raw(f, "s")
		case 5:
			o, e, err := f.msg("t")
			if err != nil {
				return err
			}
			a.t, err = d.tensor(o, e)
			return err
		case 6:
			o, e, err := f.msg("g")
			if err != nil {
				return err
			}
			if a.g == nil {
				a.g = &pGraph{}
			}
			return d.graphInto(a.g, o, e, depth+1)
		case 22:
			o, e, err := f.msg("sparse_tensor")
			if err != nil {
				return err
			}
			a.sparse, err = d.sparse(o, e)
			return err
		case 7:
			var u []uint32
			u, err = d.s.appendFixed32(nil, f, "floats")
			for _, v := range u {
				a.floats = append(a.floats, math.Float32frombits(v))
			}
		case 8:
			var u []uint64
			u, err = d.s.appendVarints(nil, f, "ints")
			for _, v := range u {
				a.ints = append(a.ints, int64(v))
			}
		case 9:
			var b []byte
			b, err = d.s.raw(f, "strings")
			a.strs = append(a.strs, b)
		case 10:
			o, e, err := f.msg("tensors")
			if err != nil {
				return err
			}
			t, err := d.tensor(o, e)
			if err != nil {
				return fmt.Errorf("tensor %d: %w", len(a.tensors), err)
			}
			a.tensors = append(a.tensors, t)
		case 11:
			o, e, err := f.msg("graphs")
			if err != nil {
				return err
			}
			g := &pGraph{}
			if err := d.graphInto(g, o, e, depth+1); err != nil {
				return fmt.Errorf("graph %d: %w", len(a.graphs), err)
			}
			a.graphs = append(a.graphs, g)
		}
		return err
	})
	return a, err
}

func (d *decoder) sparse(off, end int64) (*pSparse, error) {
	sp := &pSparse{}
	err := d.s.fields(off, end, func(f field) error {
		switch f.num {
		case 1, 2:
			o, e, err := f.msg("values")
			if err != nil {
				return err
			}
			t, err := d.tensor(o, e)
			if err != nil {
				return err
			}
			if f.num == 1 {
				sp.values = t
			} else {
				sp.indices = t
			}
		case 3:
			u, err := d.s.appendVarints(nil, f, "dims")
			if err != nil {
				return err
			}
			for _, v := range u {
				sp.dims = append(sp.dims, int64(v))
			}
		}
		return nil
	})
	return sp, err
}

func (d *decoder) valueInfo(off, end int64) (*pValueInfo, error) {
	vi := &pValueInfo{}
	err := d.s.fields(off, end, func(f field) (err error) {
		switch f.num {
		case 1:
			vi.name, err = d.s.str(f, "name")
		case 2:
			o, e, err := f.msg("type")
			if err != nil {
				return err
			}
			vi.typ, err = d.typeProto(o, e)
			return err
		case 3:
			vi.doc, err = d.s.str(f, "doc_string")
		}
		return err
	})
	return vi, err
}

// typeProto reads a TypeProto. Only tensor types (tensor_type 1) map onto
// graph.Type; sequence (4), map (5), optional (9) and sparse tensor (8)
// types give the zero Type (unknown element type and rank).
func (d *decoder) typeProto(off, end int64) (t graph.Type, err error) {
	err = d.s.fields(off, end, func(f field) error {
		if f.num != 1 {
			return nil
		}
		o, e, err := f.msg("tensor_type")
		if err != nil {
			return err
		}
		return d.s.fields(o, e, func(f field) error {
			switch f.num {
			case 1:
				v, err := f.int32("elem_type")
				t.Elem = graph.ElemType(v)
				return err
			case 2:
				o, e, err := f.msg("shape")
				if err != nil {
					return err
				}
				t.HasShape = true
				t.Shape = t.Shape[:0]
				return d.s.fields(o, e, func(f field) error {
					if f.num != 1 {
						return nil
					}
					o, e, err := f.msg("dim")
					if err != nil {
						return err
					}
					dim := graph.Dim{Size: -1}
					err = d.s.fields(o, e, func(f field) (err error) {
						switch f.num {
						case 1:
							dim.Size, err = f.int64("dim_value")
						case 2:
							dim.Param, err = d.s.str(f, "dim_param")
						}
						return err
					})
					if dim.Param != "" {
						dim.Size = -1
					}
					t.Shape = append(t.Shape, dim)
					return err
				})
			}
			return nil
		})
	})
	if t.HasShape && t.Shape == nil {
		t.Shape = []graph.Dim{}
	}
	return t, err
}
