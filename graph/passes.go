package graph

import (
	"container/heap"
	"fmt"
	"strings"
)

// topoOrder returns g's nodes in a topological order that keeps the
// existing order where the dependencies allow it (Kahn's algorithm taking
// the earliest ready node). Reads of values defined in enclosing graphs
// impose no order. A cycle is an error naming its nodes.
func topoOrder(g *Graph) ([]*Node, error) {
	index := map[*Node]int{}
	for i, n := range g.Nodes {
		index[n] = i
	}
	deps := make([]int, len(g.Nodes))
	users := make([][]int, len(g.Nodes))
	addDep := func(i int, v *Value) {
		if v == nil || v.Producer == nil {
			return
		}
		if j, ok := index[v.Producer]; ok && v.Producer.Graph == g {
			deps[i]++
			users[j] = append(users[j], i)
		}
	}
	for i, n := range g.Nodes {
		for _, in := range n.Inputs {
			addDep(i, in)
		}
		// A subgraph's reads of this graph's values are the node's reads.
		for _, v := range outerReads(n) {
			addDep(i, v)
		}
	}
	ready := &intHeap{}
	for i, d := range deps {
		if d == 0 {
			ready.push(i)
		}
	}
	order := make([]*Node, 0, len(g.Nodes))
	for ready.len() > 0 {
		i := ready.pop()
		order = append(order, g.Nodes[i])
		for _, u := range users[i] {
			deps[u]--
			if deps[u] == 0 {
				ready.push(u)
			}
		}
	}
	if len(order) != len(g.Nodes) {
		var cyc []string
		for i, d := range deps {
			if d > 0 {
				cyc = append(cyc, g.Nodes[i].String())
			}
		}
		if len(cyc) > 8 {
			cyc = append(cyc[:8], "...")
		}
		return nil, fmt.Errorf("graph %s: cycle through nodes %s", g.Name, strings.Join(cyc, ", "))
	}
	return order, nil
}

// outerReads returns the values that n's subgraphs read but do not define
// (references to enclosing graphs).
func outerReads(n *Node) []*Value {
	var out []*Value
	seen := map[*Value]bool{}
	var walk func(g *Graph)
	walk = func(g *Graph) {
		for _, sn := range g.Nodes {
			for _, in := range sn.Inputs {
				if in != nil && in.Graph != g && !seen[in] && !definedWithin(in.Graph, n) {
					seen[in] = true
					out = append(out, in)
				}
			}
			for _, sg := range sn.Subgraphs() {
				walk(sg)
			}
		}
		for _, o := range g.Outputs {
			if o != nil && o.Graph != g && !seen[o] && !definedWithin(o.Graph, n) {
				seen[o] = true
				out = append(out, o)
			}
		}
	}
	for _, sg := range n.Subgraphs() {
		walk(sg)
	}
	return out
}

// definedWithin reports whether graph h is nested inside node n.
func definedWithin(h *Graph, n *Node) bool {
	for ; h != nil; h = parentGraph(h) {
		if h.Parent == n {
			return true
		}
	}
	return false
}

func parentGraph(h *Graph) *Graph {
	if h.Parent == nil {
		return nil
	}
	return h.Parent.Graph
}

// Sort puts g's nodes (and those of its subgraphs) in topological order,
// keeping the existing order where dependencies allow. A cycle is an
// error and leaves g unchanged.
func Sort(g *Graph) error {
	order, err := topoOrder(g)
	if err != nil {
		return err
	}
	for _, n := range order {
		for _, sg := range n.Subgraphs() {
			if err := Sort(sg); err != nil {
				return err
			}
		}
	}
	g.Nodes = order
	return nil
}

// EliminateDeadCode removes the nodes of g whose outputs no graph output
// depends on, and the initializers nothing reads, recursively in subgraphs.
// It returns how many nodes it removed.
func EliminateDeadCode(g *Graph) int {
	removed := 0
	live := map[*Value]bool{}
	for _, o := range g.Outputs {
		live[o] = true
	}
	keep := make([]bool, len(g.Nodes))
	for i := len(g.Nodes) - 1; i >= 0; i-- {
		n := g.Nodes[i]
		needed := false
		for _, o := range n.Outputs {
			if o != nil && live[o] {
				needed = true
			}
		}
		if !needed {
			continue
		}
		keep[i] = true
		for _, in := range n.Inputs {
			live[in] = true
		}
		for _, v := range outerReads(n) {
			live[v] = true
		}
	}
	nodes := g.Nodes[:0:0]
	for i, n := range g.Nodes {
		if keep[i] {
			nodes = append(nodes, n)
			for _, sg := range n.Subgraphs() {
				removed += EliminateDeadCode(sg)
			}
		} else {
			removed++
		}
	}
	g.Nodes = nodes
	inits := g.Initializers[:0:0]
	for _, v := range g.Initializers {
		if live[v] || isInput(g, v) {
			inits = append(inits, v)
		}
	}
	g.Initializers = inits
	return removed
}

func isInput(g *Graph, v *Value) bool {
	for _, in := range g.Inputs {
		if in == v {
			return true
		}
	}
	return false
}

// intHeap is a min-heap of node indices.
type intHeap struct{ a ints }

type ints []int

func (h ints) Len() int           { return len(h) }
func (h ints) Less(i, j int) bool { return h[i] < h[j] }
func (h ints) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *ints) Push(x any)        { *h = append(*h, x.(int)) }
func (h *ints) Pop() any {
	old := *h
	v := old[len(old)-1]
	*h = old[:len(old)-1]
	return v
}

func (h *intHeap) len() int   { return len(h.a) }
func (h *intHeap) push(v int) { heap.Push(&h.a, v) }
func (h *intHeap) pop() int   { return heap.Pop(&h.a).(int) }
