package quantize

import (
	"regexp"
	"strings"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/passes"
	"github.com/quanta-go/quanta/quant"
)

// path returns the module path of n: the traced module path, else the
// scope an exporter wrote into the node name, else the node name.
func path(n *graph.Node) string {
	if n.ModulePath != "" {
		return n.ModulePath
	}
	if s := ScopeOf(n.Name); s != "" {
		return s
	}
	return n.Name
}

// ScopeOf returns the module path PyTorch's ONNX exporter encoded in a
// node name: "/features/features.3/conv/Conv" gives "features.3.conv" (a
// component that extends the path so far replaces it, others are
// appended). Names without a leading "/" give "".
func ScopeOf(name string) string {
	if !strings.HasPrefix(name, "/") {
		return ""
	}
	parts := strings.Split(strings.TrimPrefix(name, "/"), "/")
	if len(parts) < 2 {
		return ""
	}
	p := ""
	for _, c := range parts[:len(parts)-1] {
		switch {
		case c == "":
		case p == "":
			p = c
		case strings.HasPrefix(c, p+"."):
			p = c
		default:
			p += "." + c
		}
	}
	return p
}

// qconfig resolves a unit's qconfig: object-type rules are tried for the
// traced module type, the op kind and the ONNX op type, in that order.
func (a *analysis) qconfig(u *Unit) *quant.QConfig {
	root := u.Nodes[0]
	m := a.opts.Mapping
	p := path(root)
	cands := []string{root.ModuleType, passes.OpKind(root), root.OpType}
	if u.Key != "Elementwise" && u.cfg != nil {
		cands = append([]string{root.ModuleType, u.cfg.Pattern[0]}, cands[1:]...)
	}
	typ := cands[len(cands)-1]
	types := m.ObjectTypes()
	found := false
	for _, c := range cands {
		if c == "" || found {
			continue
		}
		for _, t := range types {
			if t == c {
				typ, found = c, true
				break
			}
		}
	}
	if !found && passes.OpKind(root) != "" {
		typ = passes.OpKind(root)
	}
	key := p + "\x00" + typ
	idx := a.orders[key]
	a.orders[key]++
	qc := m.LookupCall(p, typ, idx)
	// A fixed-qparams op keeps its fixed qconfig unless a name rule says
	// otherwise: the global qconfig must not give a sigmoid an observer.
	if fq := quant.FixedQParamsQConfig(fixedType(root.OpType), a.opts.QAT); fq != nil && u.obs == quant.OutputFixedQParams && qc != nil && !found {
		qc = fq
	}
	return qc
}

// fixedType maps ONNX op types to the PyTorch names of the fixed-qparams
// ops.
func fixedType(op string) string {
	switch op {
	case "Sigmoid":
		return "Sigmoid"
	case "HardSigmoid":
		return "Hardsigmoid"
	case "Softmax":
		return "Softmax"
	case "Tanh":
		return "Tanh"
	}
	return ""
}

func (a *analysis) excluded(u *Unit) bool { return a.matches(u, a.opts.Exclude) }

// matches reports whether a node of u has a name, module path or scope
// path one of res matches.
func (a *analysis) matches(u *Unit, res []*regexp.Regexp) bool {
	for _, re := range res {
		for _, n := range u.Nodes {
			if re.MatchString(n.Name) || (n.ModulePath != "" && re.MatchString(n.ModulePath)) || re.MatchString(path(n)) {
				return true
			}
		}
	}
	return false
}
