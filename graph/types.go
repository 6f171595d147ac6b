package graph

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/quanta-go/quanta/tensor"
)

// ElemType is a tensor element type with ONNX's TensorProto.DataType
// numbering, so it converts to and from ONNX files unchanged.
type ElemType int32

// The ONNX element types.
const (
	Undefined  ElemType = 0
	Float      ElemType = 1
	Uint8      ElemType = 2
	Int8       ElemType = 3
	Uint16     ElemType = 4
	Int16      ElemType = 5
	Int32      ElemType = 6
	Int64      ElemType = 7
	String     ElemType = 8
	Bool       ElemType = 9
	Float16    ElemType = 10
	Double     ElemType = 11
	Uint32     ElemType = 12
	Uint64     ElemType = 13
	Complex64  ElemType = 14
	Complex128 ElemType = 15
	BFloat16   ElemType = 16
)

var elemNames = map[ElemType]string{
	Undefined: "undefined", Float: "float32", Uint8: "uint8", Int8: "int8", Uint16: "uint16", Int16: "int16",
	Int32: "int32", Int64: "int64", String: "string", Bool: "bool", Float16: "float16", Double: "float64",
	Uint32: "uint32", Uint64: "uint64", Complex64: "complex64", Complex128: "complex128", BFloat16: "bfloat16",
}

// String returns the type's name ("float32", "int64", ...), or
// "elem(N)" for numbers ONNX defines beyond these.
func (e ElemType) String() string {
	if s, ok := elemNames[e]; ok {
		return s
	}
	return "elem(" + strconv.Itoa(int(e)) + ")"
}

// DType returns the tensor dtype that holds values of e in quanta:
// float16, bfloat16 and double are computed in float32; ok is false for
// types quanta cannot hold (strings, complex, unsigned 64 bit). int16
// and uint16 are held as int32.
func (e ElemType) DType() (d tensor.DType, ok bool) {
	switch e {
	case Float, Float16, Double, BFloat16:
		return tensor.Float32, true
	case Uint8:
		return tensor.Uint8, true
	case Int8:
		return tensor.Int8, true
	case Int16, Uint16, Int32:
		return tensor.Int32, true
	case Int64, Uint32:
		return tensor.Int64, true
	case Bool:
		return tensor.Bool, true
	}
	return 0, false
}

// ElemTypeOf returns the element type of tensors of dtype d (quantized
// dtypes map to their storage type).
func ElemTypeOf(d tensor.DType) ElemType {
	switch d.Storage() {
	case tensor.Float32:
		return Float
	case tensor.Uint8:
		return Uint8
	case tensor.Int8:
		return Int8
	case tensor.Int32:
		return Int32
	case tensor.Int64:
		return Int64
	case tensor.Bool:
		return Bool
	}
	return Undefined
}

// Dim is one dimension of a shape: a known size, a named symbolic size
// (Param, e.g. "batch"), or unknown (Size < 0 and no Param).
type Dim struct {
	Size  int64
	Param string
}

// Known reports whether the dimension's size is known.
func (d Dim) Known() bool { return d.Size >= 0 && d.Param == "" }

// String returns the size, the parameter name, or "?".
func (d Dim) String() string {
	switch {
	case d.Param != "":
		return d.Param
	case d.Size >= 0:
		return strconv.FormatInt(d.Size, 10)
	}
	return "?"
}

// Type is a value's element type and shape. Shape is nil when the rank is
// unknown (HasShape false); a scalar has HasShape true and no dims.
type Type struct {
	Elem     ElemType
	Shape    []Dim
	HasShape bool
}

// TensorType returns the type of elem with known dims.
func TensorType(elem ElemType, dims ...int64) Type {
	t := Type{Elem: elem, HasShape: true, Shape: make([]Dim, len(dims))}
	for i, d := range dims {
		t.Shape[i] = Dim{Size: d}
	}
	return t
}

// TypeOf returns the type of a tensor.
func TypeOf(t *tensor.Tensor) Type {
	dims := make([]int64, t.NDim())
	for i, d := range t.Shape() {
		dims[i] = int64(d)
	}
	return TensorType(ElemTypeOf(t.DType()), dims...)
}

// Rank returns the number of dimensions, or -1 when unknown.
func (t Type) Rank() int {
	if !t.HasShape {
		return -1
	}
	return len(t.Shape)
}

// Static returns the shape as ints when every dimension is known.
func (t Type) Static() ([]int, bool) {
	if !t.HasShape {
		return nil, false
	}
	s := make([]int, len(t.Shape))
	for i, d := range t.Shape {
		if !d.Known() {
			return nil, false
		}
		s[i] = int(d.Size)
	}
	return s, true
}

// String formats the type as "float32[1,3,N,?]", "int64[]" for a scalar,
// "float32[*]" for unknown rank.
func (t Type) String() string {
	var b strings.Builder
	b.WriteString(t.Elem.String())
	if !t.HasShape {
		b.WriteString("[*]")
		return b.String()
	}
	b.WriteByte('[')
	for i, d := range t.Shape {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(d.String())
	}
	b.WriteByte(']')
	return b.String()
}

// AttrKind is the kind of an attribute value, with ONNX's
// AttributeProto.AttributeType numbering.
type AttrKind int32

// The attribute kinds.
const (
	AttrUndefined     AttrKind = 0
	AttrFloat         AttrKind = 1
	AttrInt           AttrKind = 2
	AttrString        AttrKind = 3
	AttrTensor        AttrKind = 4
	AttrGraph         AttrKind = 5
	AttrFloats        AttrKind = 6
	AttrInts          AttrKind = 7
	AttrStrings       AttrKind = 8
	AttrTensors       AttrKind = 9
	AttrGraphs        AttrKind = 10
	AttrSparseTensor  AttrKind = 11
	AttrSparseTensors AttrKind = 12
	AttrTypeProto     AttrKind = 13
	AttrTypeProtos    AttrKind = 14
)

// Attr is a node attribute: one of the fields set according to Kind.
type Attr struct {
	Kind AttrKind
	F    float32
	I    int64
	S    string
	T    *tensor.Tensor
	G    *Graph
	Fs   []float32
	Is   []int64
	Ss   []string
	Ts   []*tensor.Tensor
	Gs   []*Graph
	// RefAttrName, when set, makes this attribute a reference to an
	// attribute of the enclosing function (ONNX functions).
	RefAttrName string
}

// Attribute constructors.

// CopyAttrs returns a copy of an attribute map whose attributes are
// copies (their tensors and subgraphs are shared); nil stays nil. Passes
// give a new node the attributes of an existing one with it.
func CopyAttrs(a map[string]*Attr) map[string]*Attr {
	if a == nil {
		return nil
	}
	out := make(map[string]*Attr, len(a))
	for k, v := range a {
		c := *v
		out[k] = &c
	}
	return out
}

// AInt returns an int attribute.
func AInt(v int64) *Attr { return &Attr{Kind: AttrInt, I: v} }

// AFloat returns a float attribute.
func AFloat(v float32) *Attr { return &Attr{Kind: AttrFloat, F: v} }

// AString returns a string attribute.
func AString(v string) *Attr { return &Attr{Kind: AttrString, S: v} }

// AInts returns an ints attribute.
func AInts(v ...int64) *Attr { return &Attr{Kind: AttrInts, Is: v} }

// AFloats returns a floats attribute.
func AFloats(v ...float32) *Attr { return &Attr{Kind: AttrFloats, Fs: v} }

// ATensor returns a tensor attribute.
func ATensor(t *tensor.Tensor) *Attr { return &Attr{Kind: AttrTensor, T: t} }

// AGraph returns a graph attribute.
func AGraph(g *Graph) *Attr { return &Attr{Kind: AttrGraph, G: g} }

// Attribute getters on a node. Each returns def when the attribute is
// absent and an error naming the node when it has another kind.

// Int returns attribute name as an int.
func (n *Node) Int(name string, def int64) (int64, error) {
	a, ok := n.Attrs[name]
	if !ok {
		return def, nil
	}
	if a.Kind != AttrInt {
		return 0, n.attrKindError(name, a, "an int")
	}
	return a.I, nil
}

// Float returns attribute name as a float.
func (n *Node) Float(name string, def float32) (float32, error) {
	a, ok := n.Attrs[name]
	if !ok {
		return def, nil
	}
	if a.Kind != AttrFloat {
		return 0, n.attrKindError(name, a, "a float")
	}
	return a.F, nil
}

// StringAttr returns attribute name as a string.
func (n *Node) StringAttr(name, def string) (string, error) {
	a, ok := n.Attrs[name]
	if !ok {
		return def, nil
	}
	if a.Kind != AttrString {
		return "", n.attrKindError(name, a, "a string")
	}
	return a.S, nil
}

// Ints returns attribute name as ints.
func (n *Node) Ints(name string, def []int64) ([]int64, error) {
	a, ok := n.Attrs[name]
	if !ok {
		return def, nil
	}
	if a.Kind != AttrInts {
		return nil, n.attrKindError(name, a, "ints")
	}
	return a.Is, nil
}

// Floats returns attribute name as floats.
func (n *Node) Floats(name string, def []float32) ([]float32, error) {
	a, ok := n.Attrs[name]
	if !ok {
		return def, nil
	}
	if a.Kind != AttrFloats {
		return nil, n.attrKindError(name, a, "floats")
	}
	return a.Fs, nil
}

// Tensor returns attribute name as a tensor, or nil when absent.
func (n *Node) Tensor(name string) (*tensor.Tensor, error) {
	a, ok := n.Attrs[name]
	if !ok {
		return nil, nil
	}
	if a.Kind != AttrTensor {
		return nil, n.attrKindError(name, a, "a tensor")
	}
	return a.T, nil
}

// Has reports whether the node has attribute name.
func (n *Node) Has(name string) bool { _, ok := n.Attrs[name]; return ok }

func (n *Node) attrKindError(name string, a *Attr, want string) error {
	return fmt.Errorf("node %s: attribute %q is %s, want %s", n, name, a.Kind, want)
}

var attrKindNames = map[AttrKind]string{
	AttrUndefined: "undefined", AttrFloat: "float", AttrInt: "int", AttrString: "string", AttrTensor: "tensor",
	AttrGraph: "graph", AttrFloats: "floats", AttrInts: "ints", AttrStrings: "strings", AttrTensors: "tensors",
	AttrGraphs: "graphs", AttrSparseTensor: "sparse tensor", AttrSparseTensors: "sparse tensors",
	AttrTypeProto: "type", AttrTypeProtos: "types",
}

// String returns the kind's name.
func (k AttrKind) String() string {
	if s, ok := attrKindNames[k]; ok {
		return s
	}
	return "attr(" + strconv.Itoa(int(k)) + ")"
}
