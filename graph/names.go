package graph

import "strconv"

// Names is a set of names in use in a graph, from which passes take fresh
// names for the values and nodes they add.
type Names map[string]bool

// NamesOf returns the names of every value and node of g and of its
// subgraphs.
func NamesOf(g *Graph) Names {
	n := Names{}
	var walk func(g *Graph)
	walk = func(g *Graph) {
		for _, v := range g.Values() {
			n[v.Name] = true
		}
		for _, nd := range g.Nodes {
			n[nd.Name] = true
			for _, sg := range nd.Subgraphs() {
				walk(sg)
			}
		}
	}
	if g != nil {
		walk(g)
	}
	return n
}

// Unique returns base, or base_N for the smallest N that makes it unused,
// and marks it used.
func (n Names) Unique(base string) string {
	name := base
	for i := 1; n[name]; i++ {
		name = base + "_" + strconv.Itoa(i)
	}
	n[name] = true
	return name
}
