package graph

import (
	"errors"
	"fmt"
)

// Verify checks the structure of g and its subgraphs: every value has a
// non-empty name unique in its scope (a graph and the graphs enclosing it),
// is defined once (graph input, initializer or one node output), each node
// reads only values defined in its graph before it (after Sort) or in an
// enclosing graph, each graph output is defined, and the back pointers
// (Value.Graph, Value.Producer, Node.Graph, Graph.Parent) agree. Errors name
// the graph, node and value at fault. A graph with a cycle fails with the
// nodes of the cycle named.
func Verify(g *Graph) error {
	if g == nil {
		return errors.New("graph: Verify: nil graph")
	}
	return verify(g, nil)
}

// scope is the set of value names defined in the enclosing graphs.
type scope struct {
	defined map[*Value]bool
	names   map[string]*Value
	parent  *scope
}

func (s *scope) lookup(v *Value) bool {
	for ; s != nil; s = s.parent {
		if s.defined[v] {
			return true
		}
	}
	return false
}

func (s *scope) name(name string) *Value {
	for ; s != nil; s = s.parent {
		if v, ok := s.names[name]; ok {
			return v
		}
	}
	return nil
}

func verify(g *Graph, outer *scope) error {
	sc := &scope{defined: map[*Value]bool{}, names: map[string]*Value{}, parent: outer}
	define := func(v *Value, what string) error {
		if v == nil {
			return fmt.Errorf("graph %s: nil %s", g.Name, what)
		}
		if v.Name == "" {
			return fmt.Errorf("graph %s: %s has no name", g.Name, what)
		}
		if prev := sc.name(v.Name); prev != nil {
			return fmt.Errorf("graph %s: value %q is defined twice (%s)", g.Name, v.Name, what)
		}
		if v.Graph != g {
			return fmt.Errorf("graph %s: value %q (%s) belongs to another graph", g.Name, v.Name, what)
		}
		sc.defined[v] = true
		sc.names[v.Name] = v
		return nil
	}
	for _, v := range g.Inputs {
		if err := define(v, "input"); err != nil {
			return err
		}
		if v.Producer != nil {
			return fmt.Errorf("graph %s: input %q has a producer", g.Name, v.Name)
		}
	}
	for _, v := range g.Initializers {
		if err := define(v, "initializer"); err != nil {
			return err
		}
		if v.Const == nil {
			return fmt.Errorf("graph %s: initializer %q has no value", g.Name, v.Name)
		}
	}
	order, err := topoOrder(g)
	if err != nil {
		return err
	}
	for _, n := range order {
		if n.Graph != g {
			return fmt.Errorf("graph %s: node %s belongs to another graph", g.Name, n)
		}
		if n.OpType == "" {
			return fmt.Errorf("graph %s: node %q has no op type", g.Name, n.Name)
		}
		for i, in := range n.Inputs {
			if in == nil {
				continue
			}
			if !sc.lookup(in) {
				return fmt.Errorf("graph %s: node %s input %d reads %q, which is not defined before it", g.Name, n, i, in.Name)
			}
		}
		for _, sg := range n.Subgraphs() {
			if sg.Parent != n {
				return fmt.Errorf("graph %s: node %s: subgraph %s has another parent", g.Name, n, sg.Name)
			}
			if err := verify(sg, sc); err != nil {
				return fmt.Errorf("graph %s: node %s: %w", g.Name, n, err)
			}
		}
		for i, o := range n.Outputs {
			if o == nil {
				continue
			}
			if err := define(o, fmt.Sprintf("output %d of node %s", i, n)); err != nil {
				return err
			}
			if o.Producer != n {
				return fmt.Errorf("graph %s: node %s output %q names another producer", g.Name, n, o.Name)
			}
		}
	}
	for i, o := range g.Outputs {
		if o == nil {
			return fmt.Errorf("graph %s: output %d is nil", g.Name, i)
		}
		if !sc.lookup(o) {
			return fmt.Errorf("graph %s: output %q is not defined", g.Name, o.Name)
		}
	}
	return nil
}
