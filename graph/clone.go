package graph

import "github.com/quanta-go/quanta/tensor"

// Clone returns a deep copy of m: new graphs, values, nodes and attributes
// (subgraphs included), so passes may rewrite the copy while m stays as it
// was. Constant tensors (initializers, tensor attributes) are shared, not
// copied: quanta's passes never write into a constant, they add new ones.
func (m *Model) Clone() *Model {
	c, _, _ := m.CloneMap()
	return c
}

// CloneMap is Clone that also returns the correspondence from m's values
// and nodes to the copy's, for passes that hold on to the original's.
func (m *Model) CloneMap() (*Model, map[*Value]*Value, map[*Node]*Node) {
	if m == nil {
		return nil, nil, nil
	}
	c := *m
	c.Opsets = make(map[string]int64, len(m.Opsets))
	for k, v := range m.Opsets {
		c.Opsets[k] = v
	}
	c.Metadata = append([]StringPair(nil), m.Metadata...)
	vals := map[*Value]*Value{}
	nodes := map[*Node]*Node{}
	c.Graph = cloneGraph(m.Graph, nil, vals, nodes)
	return &c, vals, nodes
}

// cloneGraph copies g (held by the node parent, nil for a main graph);
// vals maps the values copied so far, so subgraph reads of enclosing
// values resolve to the copies.
func cloneGraph(g *Graph, parent *Node, vals map[*Value]*Value, nodes map[*Node]*Node) *Graph {
	if g == nil {
		return nil
	}
	ng := &Graph{Name: g.Name, DocString: g.DocString, Parent: parent}
	val := func(v *Value) *Value {
		if v == nil {
			return nil
		}
		if nv, ok := vals[v]; ok {
			return nv
		}
		nv := &Value{Name: v.Name, Type: v.Type.clone(), Const: v.Const, Graph: ng, DocString: v.DocString}
		vals[v] = nv
		return nv
	}
	for _, v := range g.Inputs {
		ng.Inputs = append(ng.Inputs, val(v))
	}
	for _, v := range g.Initializers {
		ng.Initializers = append(ng.Initializers, val(v))
	}
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			val(o)
		}
	}
	for _, n := range g.Nodes {
		nn := &Node{Name: n.Name, OpType: n.OpType, Domain: n.Domain, Graph: ng, DocString: n.DocString,
			ModulePath: n.ModulePath, ModuleType: n.ModuleType, Attrs: make(map[string]*Attr, len(n.Attrs))}
		for _, in := range n.Inputs {
			if in == nil {
				nn.Inputs = append(nn.Inputs, nil)
				continue
			}
			if nv, ok := vals[in]; ok {
				nn.Inputs = append(nn.Inputs, nv)
			} else {
				// A value this graph reads without defining it (an
				// enclosing graph's, not yet seen): keep the original.
				nn.Inputs = append(nn.Inputs, in)
			}
		}
		for _, o := range n.Outputs {
			if o == nil {
				nn.Outputs = append(nn.Outputs, nil)
				continue
			}
			no := vals[o]
			no.Producer = nn
			nn.Outputs = append(nn.Outputs, no)
		}
		for k, a := range n.Attrs {
			na := *a
			na.Fs = append([]float32(nil), a.Fs...)
			na.Is = append([]int64(nil), a.Is...)
			na.Ss = append([]string(nil), a.Ss...)
			na.Ts = append([]*tensor.Tensor(nil), a.Ts...)
			if a.G != nil {
				na.G = cloneGraph(a.G, nn, vals, nodes)
			}
			if a.Gs != nil {
				na.Gs = make([]*Graph, len(a.Gs))
				for i, sg := range a.Gs {
					na.Gs[i] = cloneGraph(sg, nn, vals, nodes)
				}
			}
			nn.Attrs[k] = &na
		}
		nodes[n] = nn
		ng.Nodes = append(ng.Nodes, nn)
	}
	for _, v := range g.Outputs {
		if nv, ok := vals[v]; ok {
			ng.Outputs = append(ng.Outputs, nv)
		} else {
			ng.Outputs = append(ng.Outputs, v)
		}
	}
	return ng
}

// clone copies t's shape slice.
func (t Type) clone() Type {
	t.Shape = append([]Dim(nil), t.Shape...)
	return t
}
