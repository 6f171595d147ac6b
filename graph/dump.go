package graph

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/quanta-go/quanta/tensor"
)

// Dump writes a deterministic text form of g for golden tests and
// debugging:
//
//	graph main(x: float32[1,3,N,N]) -> (y: float32[1,8,?,?]) {
//	  init w: float32[8,3,3,3]
//	  y = Conv(x, w, _) {kernel_shape=[3,3], pads=[1,1,1,1]}  # conv0
//	}
//
// Omitted optional inputs print as "_"; constant tensors print their type
// and, up to eight elements, their values; subgraphs are indented.
func Dump(w io.Writer, g *Graph) error {
	d := dumper{w: w}
	d.graph(g, "")
	return d.err
}

// String returns Dump's text of g.
func (g *Graph) String() string {
	var b strings.Builder
	_ = Dump(&b, g)
	return b.String()
}

type dumper struct {
	w   io.Writer
	err error
}

func (d *dumper) printf(format string, args ...any) {
	if d.err == nil {
		_, d.err = fmt.Fprintf(d.w, format, args...)
	}
}

func (d *dumper) graph(g *Graph, indent string) {
	var ins, outs []string
	for _, v := range g.Inputs {
		ins = append(ins, v.Name+": "+v.Type.String())
	}
	for _, v := range g.Outputs {
		outs = append(outs, v.Name+": "+v.Type.String())
	}
	d.printf("graph %s(%s) -> (%s) {\n", g.Name, strings.Join(ins, ", "), strings.Join(outs, ", "))
	for _, v := range g.Initializers {
		d.printf("%s  init %s: %s%s\n", indent, v.Name, v.Type, tensorPreview(v.Const))
	}
	for _, n := range g.Nodes {
		var o, in []string
		for _, v := range n.Outputs {
			if v == nil {
				o = append(o, "_")
			} else {
				o = append(o, v.Name)
			}
		}
		for _, v := range n.Inputs {
			if v == nil {
				in = append(in, "_")
			} else {
				in = append(in, v.Name)
			}
		}
		op := n.OpType
		if n.Domain != "" {
			op = n.Domain + "." + op
		}
		d.printf("%s  %s = %s(%s)", indent, strings.Join(o, ", "), op, strings.Join(in, ", "))
		var sub []string
		if len(n.Attrs) > 0 {
			var parts []string
			for _, name := range sortedAttrNames(n.Attrs) {
				a := n.Attrs[name]
				if a.Kind == AttrGraph || a.Kind == AttrGraphs {
					sub = append(sub, name)
					continue
				}
				parts = append(parts, name+"="+attrString(a))
			}
			if len(parts) > 0 {
				d.printf(" {%s}", strings.Join(parts, ", "))
			}
		}
		if n.Name != "" {
			d.printf("  # %s", n.Name)
		}
		d.printf("\n")
		for _, name := range sub {
			a := n.Attrs[name]
			gs := a.Gs
			if a.G != nil {
				gs = []*Graph{a.G}
			}
			for _, sg := range gs {
				d.printf("%s    %s: ", indent, name)
				d.graph(sg, indent+"    ")
			}
		}
	}
	d.printf("%s}\n", indent)
}

func sortedAttrNames(m map[string]*Attr) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func fmtFloat(f float32) string {
	if math.IsInf(float64(f), 0) || math.IsNaN(float64(f)) {
		return fmt.Sprint(f)
	}
	return strconv.FormatFloat(float64(f), 'g', -1, 32)
}

func attrString(a *Attr) string {
	if a.RefAttrName != "" {
		return "@" + a.RefAttrName
	}
	switch a.Kind {
	case AttrFloat:
		return fmtFloat(a.F)
	case AttrInt:
		return strconv.FormatInt(a.I, 10)
	case AttrString:
		return strconv.Quote(a.S)
	case AttrTensor:
		if a.T == nil {
			return "tensor(nil)"
		}
		return "tensor " + TypeOf(a.T).String() + tensorPreview(a.T)
	case AttrFloats:
		s := make([]string, len(a.Fs))
		for i, f := range a.Fs {
			s[i] = fmtFloat(f)
		}
		return "[" + strings.Join(s, ",") + "]"
	case AttrInts:
		s := make([]string, len(a.Is))
		for i, v := range a.Is {
			s[i] = strconv.FormatInt(v, 10)
		}
		return "[" + strings.Join(s, ",") + "]"
	case AttrStrings:
		s := make([]string, len(a.Ss))
		for i, v := range a.Ss {
			s[i] = strconv.Quote(v)
		}
		return "[" + strings.Join(s, ",") + "]"
	case AttrTensors:
		return fmt.Sprintf("<%d tensors>", len(a.Ts))
	}
	return "<" + a.Kind.String() + ">"
}

// tensorPreview returns " = [v0, v1, ...]" for tensors of at most eight
// elements, else "".
func tensorPreview(t *tensor.Tensor) string {
	if t == nil || t.Numel() > 8 {
		return ""
	}
	var s []string
	switch t.DType().Storage() {
	case tensor.Float32:
		for _, v := range t.F32() {
			s = append(s, fmtFloat(v))
		}
	case tensor.Int64:
		for _, v := range t.I64() {
			s = append(s, strconv.FormatInt(v, 10))
		}
	case tensor.Int32:
		for _, v := range t.I32() {
			s = append(s, strconv.Itoa(int(v)))
		}
	case tensor.Int8:
		for _, v := range t.I8() {
			s = append(s, strconv.Itoa(int(v)))
		}
	case tensor.Uint8:
		for _, v := range t.U8() {
			s = append(s, strconv.Itoa(int(v)))
		}
	case tensor.Bool:
		for _, v := range t.Bools() {
			s = append(s, strconv.FormatBool(v))
		}
	default:
		return ""
	}
	return " = [" + strings.Join(s, ", ") + "]"
}
