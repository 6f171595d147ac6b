package passes

import (
	"errors"
	"fmt"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/quant"
)

// Match is one occurrence of a fusable BackendConfig pattern in a graph.
type Match struct {
	// Root is the pattern's root op: its first op, whose weight (if any)
	// is quantized (the Conv of Conv2d+ReLU, the Add of Add+ReLU).
	Root *graph.Node
	// Nodes are the matched nodes in execution order; the last one
	// computes the fused output. A Linear may span a MatMul or Gemm and
	// the Add of its constant bias.
	Nodes []*graph.Node
	// Key is the pattern's key, e.g. "Conv2d+ReLU".
	Key string
	// Config is the BackendConfig entry of the pattern (for the
	// extension patterns, an entry derived from the root op's).
	Config *quant.BackendPatternConfig
}

// Output returns the value the matched sequence computes.
func (m Match) Output() *graph.Value { return m.Nodes[len(m.Nodes)-1].Outputs[0] }

// FusePatterns returns the op sequences of g (subgraphs included) that cfg
// quantizes as one: its patterns of two or more ops (Conv2d+ReLU,
// Conv2d+BatchNorm2d+ReLU, Linear+ReLU, BatchNorm2d+ReLU, Add+ReLU, ...),
// the extension patterns Conv1d/Conv2d+Add and Conv1d/Conv2d+Add+ReLU
// (PyTorch's onednn ConvAdd2d and ConvAddReLU2d; the Add's other operand
// is not constant) unless cfg has them, and Linear layers written as a
// MatMul or Gemm followed by the Add of a constant bias (key "Linear").
// It does not rewrite g.
//
// ONNX op types map onto cfg's op kinds (see OpKind): Conv is Conv1d or
// Conv2d by weight rank, Gemm and MatMul with a constant weight are
// Linear, Relu is ReLU, BatchNormalization is BatchNorm1d or BatchNorm2d
// by input rank, Add is Add. Every value between two matched nodes must
// have that single user and not be a graph output. Nodes are claimed
// greedily in topological order, longest pattern first, so each node is
// in at most one match; matches come in that order.
func FusePatterns(g *graph.Graph, cfg *quant.BackendConfig) ([]Match, error) {
	if g == nil {
		return nil, errors.New("passes: FusePatterns: nil graph")
	}
	if cfg == nil {
		return nil, errors.New("passes: FusePatterns: nil BackendConfig")
	}
	pats := append(cfg.Fusions(), extensions(cfg)...)
	// Longest first, stable: three-op patterns before two-op ones.
	var ordered []*quant.BackendPatternConfig
	for n := 3; n >= 2; n-- {
		for _, p := range pats {
			if len(p.Pattern) == n {
				ordered = append(ordered, p)
			}
		}
	}
	linear := cfg.Lookup("Linear")
	return matchGraph(g, ordered, linear)
}

func matchGraph(g *graph.Graph, pats []*quant.BackendPatternConfig, linear *quant.BackendPatternConfig) ([]Match, error) {
	order, err := topo(g)
	if err != nil {
		return nil, err
	}
	m := &matcher{g: g, users: g.Users(), outputs: map[*graph.Value]bool{}, claimed: map[*graph.Node]bool{}}
	for _, o := range g.Outputs {
		m.outputs[o] = true
	}
	var out []Match
	for _, n := range order {
		if m.claimed[n] {
			continue
		}
		found := false
		for _, p := range pats {
			if nodes := m.match(n, p.Pattern); nodes != nil {
				out = append(out, m.claim(n, nodes, p))
				found = true
				break
			}
		}
		if !found && linear != nil {
			if nodes := m.step(n, "Linear"); len(nodes) > 1 {
				out = append(out, m.claim(n, nodes, linear))
			}
		}
	}
	for _, n := range order {
		for _, sg := range n.Subgraphs() {
			sub, err := matchGraph(sg, pats, linear)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
		}
	}
	return out, nil
}

type matcher struct {
	g       *graph.Graph
	users   map[*graph.Value][]*graph.Node
	outputs map[*graph.Value]bool
	claimed map[*graph.Node]bool
}

func (m *matcher) claim(root *graph.Node, nodes []*graph.Node, p *quant.BackendPatternConfig) Match {
	for _, n := range nodes {
		m.claimed[n] = true
	}
	return Match{Root: root, Nodes: nodes, Key: p.Key(), Config: p}
}

// match returns the nodes of pattern starting at root, or nil.
func (m *matcher) match(root *graph.Node, pattern []string) []*graph.Node {
	nodes := m.step(root, pattern[0])
	if nodes == nil {
		return nil
	}
	for i, kind := range pattern[1:] {
		last := nodes[len(nodes)-1]
		next := m.soleUser(last)
		if next == nil {
			return nil
		}
		prev := pattern[i]
		more := m.step(next, kind)
		if more == nil {
			return nil
		}
		// Conv+Add reads an activation as the Add's other operand;
		// a constant there is a bias, not this pattern.
		if kind == "Add" && isConvKind(prev) && constOther(next, last.Outputs[0]) {
			return nil
		}
		nodes = append(nodes, more...)
	}
	return nodes
}

// step returns the nodes that make up one op of kind starting at n (n
// alone, or a MatMul/Gemm with the Add of its constant bias for Linear),
// or nil when n is not of that kind or is claimed.
func (m *matcher) step(n *graph.Node, kind string) []*graph.Node {
	if m.claimed[n] || n.Graph != m.g || OpKind(n) != kind || len(n.Outputs) < 1 || n.Outputs[0] == nil {
		return nil
	}
	for _, o := range n.Outputs[1:] {
		if o != nil && (len(m.users[o]) > 0 || m.outputs[o]) {
			return nil
		}
	}
	nodes := []*graph.Node{n}
	if kind == "Linear" && (n.OpType == "MatMul" || (n.OpType == "Gemm" && n.Input(2) == nil)) {
		if add := m.soleUser(n); add != nil && !m.claimed[add] && isDefault(add) && add.OpType == "Add" && len(add.Inputs) == 2 && constOther(add, n.Outputs[0]) {
			nodes = append(nodes, add)
		}
	}
	return nodes
}

// soleUser returns the one node reading n's first output when that value
// has exactly one user, in n's graph, and is not a graph output.
func (m *matcher) soleUser(n *graph.Node) *graph.Node {
	v := n.Outputs[0]
	if m.outputs[v] || len(m.users[v]) != 1 {
		return nil
	}
	u := m.users[v][0]
	if u.Graph != m.g {
		return nil
	}
	return u
}

// constOther reports whether the two-input node n reads v and a constant
// as its other operand.
func constOther(n *graph.Node, v *graph.Value) bool {
	if len(n.Inputs) != 2 {
		return false
	}
	switch v {
	case n.Inputs[0]:
		return n.Inputs[1].IsConst()
	case n.Inputs[1]:
		return n.Inputs[0].IsConst()
	}
	return false
}

func isConvKind(k string) bool { return k == "Conv1d" || k == "Conv2d" || k == "Conv3d" }

// extensions derives Conv+Add and Conv+Add+ReLU from cfg's Conv entries
// when cfg lacks them.
func extensions(cfg *quant.BackendConfig) []*quant.BackendPatternConfig {
	var out []*quant.BackendPatternConfig
	for _, d := range []string{"1d", "2d"} {
		conv := cfg.Lookup("Conv" + d)
		if conv == nil {
			continue
		}
		for _, relu := range []bool{true, false} {
			p := []string{"Conv" + d, "Add"}
			mod := "ConvAdd" + d
			if relu {
				p = append(p, "ReLU")
				mod = "ConvAddReLU" + d
			}
			if cfg.Lookup(p...) != nil {
				continue
			}
			out = append(out, &quant.BackendPatternConfig{
				Pattern: p, Observation: conv.Observation, DTypeConfigs: conv.DTypeConfigs,
				HasWeight: true, FusedModule: mod, QuantizedModule: "quantized." + mod,
			})
		}
	}
	return out
}

// OpKind returns the BackendConfig op kind of an ONNX node ("Conv2d",
// "Linear", "ReLU", ...), or "" when it has none. Conv and ConvTranspose
// take their dimension from the weight's rank; Gemm with a constant B and
// MatMul with a constant (or constant transposed) second operand are
// Linear, a MatMul of two activations is MatMul; BatchNormalization and
// pooling take theirs from the input's rank (2-D when unknown).
func OpKind(n *graph.Node) string {
	if !isDefault(n) {
		return ""
	}
	switch n.OpType {
	case "Conv", "ConvTranspose":
		r := rankOf(n.Input(1))
		if r < 3 || r > 5 {
			return ""
		}
		return n.OpType + fmt.Sprintf("%dd", r-2)
	case "Gemm":
		if transA, err := n.Int("transA", 0); err == nil && transA == 0 && constWeight(n.Input(1)) {
			return "Linear"
		}
		return ""
	case "MatMul":
		if constWeight(n.Input(1)) && rankOf(n.Input(1)) == 2 {
			return "Linear"
		}
		return "MatMul"
	case "BatchNormalization", "InstanceNormalization":
		base := map[string]string{"BatchNormalization": "BatchNorm", "InstanceNormalization": "InstanceNorm"}[n.OpType]
		switch r := rankOf(n.Input(0)); r {
		case 2, 3:
			return base + "1d"
		case 5:
			return base + "3d"
		}
		return base + "2d"
	case "MaxPool", "AveragePool":
		base := map[string]string{"MaxPool": "MaxPool", "AveragePool": "AvgPool"}[n.OpType]
		if rankOf(n.Input(0)) == 3 {
			return base + "1d"
		}
		return base + "2d"
	}
	return onnxKinds[n.OpType]
}

// onnxKinds maps the ONNX op types with one BackendConfig kind.
var onnxKinds = map[string]string{
	"Relu": "ReLU", "Add": "Add", "Mul": "Mul", "Sigmoid": "Sigmoid", "Tanh": "Tanh",
	"Softmax": "Softmax", "HardSigmoid": "Hardsigmoid", "HardSwish": "Hardswish",
	"LeakyRelu": "LeakyReLU", "Elu": "ELU", "Gelu": "GELU", "Clip": "Clamp",
	"GlobalAveragePool": "AdaptiveAvgPool2d", "Concat": "Cat", "Flatten": "Flatten",
	"Reshape": "Reshape", "Transpose": "Transpose", "Squeeze": "Squeeze",
	"Unsqueeze": "Unsqueeze", "Identity": "Identity", "ReduceMean": "Mean",
	"Resize": "Upsample", "LayerNormalization": "LayerNorm", "Dropout": "Dropout",
	"LSTM": "LSTM", "GRU": "GRU", "Gather": "Embedding",
}

// constWeight reports whether v is constant, or the Transpose of a
// constant (how a traced Linear on a 3-D input reads its weight).
func constWeight(v *graph.Value) bool {
	if v.IsConst() {
		return true
	}
	if v == nil || v.Producer == nil {
		return false
	}
	p := v.Producer
	return isDefault(p) && p.OpType == "Transpose" && len(p.Inputs) == 1 && p.Inputs[0].IsConst()
}

// rankOf returns v's rank from its constant or its type, or -1.
func rankOf(v *graph.Value) int {
	if v == nil {
		return -1
	}
	if v.Const != nil {
		return v.Const.NDim()
	}
	if v.Type.HasShape {
		return len(v.Type.Shape)
	}
	return -1
}

// topo returns g's nodes in a topological order that keeps g's order
// where dependencies allow (g itself is not changed); a cycle is an error.
func topo(g *graph.Graph) ([]*graph.Node, error) {
	done := map[*graph.Node]bool{}
	onStack := map[*graph.Node]bool{}
	var order []*graph.Node
	var visit func(n *graph.Node) error
	visit = func(n *graph.Node) error {
		if done[n] {
			return nil
		}
		if onStack[n] {
			return fmt.Errorf("passes: graph %s: cycle through node %s", g.Name, n)
		}
		onStack[n] = true
		for _, in := range n.Inputs {
			if in != nil && in.Producer != nil && in.Producer.Graph == g {
				if err := visit(in.Producer); err != nil {
					return err
				}
			}
		}
		onStack[n] = false
		done[n] = true
		order = append(order, n)
		return nil
	}
	for _, n := range g.Nodes {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return order, nil
}
