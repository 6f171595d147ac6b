package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
	"google.golang.org/protobuf/encoding/protowire"
)

// DefaultOpset is the default-domain opset written for a model that
// imports none (a graph built in Go rather than imported).
const DefaultOpset = 17

// Encode serializes m as an ONNX ModelProto. Initializers and tensor
// attributes are written as raw_data. An initializer is written in its
// Value's declared ONNX element type when that type is held in the
// tensor's dtype (float16, bfloat16 and double from float32 — rounding to
// nearest even for the 16-bit types; int16 from int32; uint32 from int64),
// so a model imported and exported keeps its types; a Constant's value
// takes its output's declared type when its values convert to it exactly.
// Other tensors are written in the type of their dtype. Inputs with a default value are written as inputs
// and initializers; for IR versions below 4 every initializer is also
// listed as an input, as those versions require.
func Encode(m *graph.Model) ([]byte, error) {
	if m == nil || m.Graph == nil {
		return nil, errors.New("onnx: Encode: the model has no graph")
	}
	if err := graph.Verify(m.Graph); err != nil {
		return nil, fmt.Errorf("onnx: Encode: %w", err)
	}
	e := &encoder{}
	ir, opsets := m.IRVersion, m.Opsets
	if len(opsets) == 0 {
		opsets = map[string]int64{"": DefaultOpset}
	}
	if ir == 0 {
		ir = irFor(opsets[""])
	}
	e.ir = ir
	e.buf = make([]byte, 0, 4096+constBytes(m.Graph))
	e.varint(1, uint64(ir))
	producer := m.ProducerName
	if producer == "" {
		producer = "quanta"
	}
	e.str(2, producer)
	e.str(3, m.ProducerVersion)
	e.str(4, m.Domain)
	if m.ModelVersion != 0 {
		e.varint(5, uint64(m.ModelVersion))
	}
	e.str(6, m.DocString)
	at := e.begin(7)
	if err := e.graph(m.Graph); err != nil {
		return nil, fmt.Errorf("onnx: Encode: %w", err)
	}
	e.end(at)
	for _, dom := range sortedKeys(opsets) {
		at := e.begin(8)
		e.str(1, dom)
		e.varint(2, uint64(opsets[dom]))
		e.end(at)
	}
	for _, kv := range m.Metadata {
		at := e.begin(14)
		e.str(1, kv.Key)
		e.str(2, kv.Value)
		e.end(at)
	}
	return e.buf, nil
}

// irFor returns the IR version ONNX released with a default-domain opset.
func irFor(opset int64) int64 {
	switch {
	case opset <= 8:
		return 3
	case opset <= 9:
		return 4
	case opset <= 10:
		return 5
	case opset <= 11:
		return 6
	case opset <= 14:
		return 7
	case opset <= 18:
		return 8
	case opset <= 20:
		return 9
	}
	return 10
}

// constBytes is the size of g's constant tensors, to size the buffer once.
func constBytes(g *graph.Graph) int {
	n := 0
	for _, v := range g.Values() {
		if v.Const != nil {
			n += v.Const.Numel()*v.Const.DType().Size() + 64
		}
	}
	return n
}

// Save writes m to path as an ONNX file: to a temporary file in the same
// directory first, renamed over path once complete, with mode 0644.
func Save(path string, m *graph.Model) error {
	data, err := Encode(m)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("onnx: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("onnx: saving %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("onnx: saving %s: %w", path, err)
	}
	return nil
}

// encoder appends protobuf fields to buf. Nested messages are written in
// place: begin reserves room for the longest length prefix, end writes the
// length and moves the body back over the unused room, so no message is
// copied into a second buffer.
type encoder struct {
	buf []byte
	ir  int64
}

func (e *encoder) tag(num protowire.Number, typ protowire.Type) {
	e.buf = protowire.AppendTag(e.buf, num, typ)
}

func (e *encoder) varint(num protowire.Number, v uint64) {
	e.tag(num, protowire.VarintType)
	e.buf = protowire.AppendVarint(e.buf, v)
}

// str writes a string field, omitting it when empty.
func (e *encoder) str(num protowire.Number, s string) {
	if s != "" {
		e.strAlways(num, s)
	}
}

func (e *encoder) strAlways(num protowire.Number, s string) {
	e.tag(num, protowire.BytesType)
	e.buf = protowire.AppendString(e.buf, s)
}

func (e *encoder) begin(num protowire.Number) int {
	e.tag(num, protowire.BytesType)
	at := len(e.buf)
	e.buf = append(e.buf, make([]byte, maxTagLen)...)
	return at
}

func (e *encoder) end(at int) {
	body := len(e.buf) - at - maxTagLen
	var pre [maxTagLen]byte
	k := len(protowire.AppendVarint(pre[:0], uint64(body)))
	copy(e.buf[at:], pre[:k])
	copy(e.buf[at+k:], e.buf[at+maxTagLen:])
	e.buf = e.buf[:at+k+body]
}

func (e *encoder) graph(g *graph.Graph) error {
	for _, n := range g.Nodes {
		at := e.begin(1)
		if err := e.node(n); err != nil {
			return fmt.Errorf("node %s: %w", n, err)
		}
		e.end(at)
	}
	e.str(2, g.Name)
	var defaults []*graph.Value
	for _, v := range g.Inputs {
		if v.Const != nil {
			defaults = append(defaults, v)
		}
	}
	for _, v := range append(defaults, g.Initializers...) {
		at := e.begin(5)
		if err := e.tensor(v.Name, v.DocString, v.Type.Elem, v.Const); err != nil {
			return fmt.Errorf("initializer %q: %w", v.Name, err)
		}
		e.end(at)
	}
	e.str(10, g.DocString)
	for _, v := range g.Inputs {
		e.valueInfo(11, v)
	}
	if e.ir < 4 {
		for _, v := range g.Initializers {
			e.valueInfo(11, v)
		}
	}
	for _, v := range g.Outputs {
		e.valueInfo(12, v)
	}
	outputs := map[*graph.Value]bool{}
	for _, v := range g.Outputs {
		outputs[v] = true
	}
	for _, n := range g.Nodes {
		for _, v := range n.Outputs {
			if v != nil && !outputs[v] && (v.Type.Elem != graph.Undefined || v.Type.HasShape || v.DocString != "") {
				e.valueInfo(13, v)
			}
		}
	}
	return nil
}

func (e *encoder) valueInfo(num protowire.Number, v *graph.Value) {
	at := e.begin(num)
	e.strAlways(1, v.Name)
	t := v.Type
	if t.Elem != graph.Undefined || t.HasShape {
		tp := e.begin(2)
		tt := e.begin(1)
		e.varint(1, uint64(t.Elem))
		if t.HasShape {
			sh := e.begin(2)
			for _, d := range t.Shape {
				dim := e.begin(1)
				switch {
				case d.Param != "":
					e.strAlways(2, d.Param)
				case d.Size >= 0:
					e.varint(1, uint64(d.Size))
				}
				e.end(dim)
			}
			e.end(sh)
		}
		e.end(tt)
		e.end(tp)
	}
	e.str(3, v.DocString)
	e.end(at)
}

func (e *encoder) node(n *graph.Node) error {
	for _, v := range n.Inputs {
		e.strAlways(1, valueName(v))
	}
	for _, v := range n.Outputs {
		e.strAlways(2, valueName(v))
	}
	e.str(3, n.Name)
	e.strAlways(4, n.OpType)
	for _, name := range sortedKeys(n.Attrs) {
		at := e.begin(5)
		if err := e.attr(name, n.Attrs[name], n); err != nil {
			return fmt.Errorf("attribute %q: %w", name, err)
		}
		e.end(at)
	}
	e.str(6, n.DocString)
	e.str(7, n.Domain)
	return nil
}

// valueName is v's name, or "" for an omitted optional value.
func valueName(v *graph.Value) string {
	if v == nil {
		return ""
	}
	return v.Name
}

func (e *encoder) attr(name string, a *graph.Attr, n *graph.Node) error {
	e.strAlways(1, name)
	e.varint(20, uint64(a.Kind))
	if a.RefAttrName != "" {
		e.strAlways(21, a.RefAttrName)
		return nil
	}
	switch a.Kind {
	case graph.AttrFloat:
		e.tag(2, protowire.Fixed32Type)
		e.buf = protowire.AppendFixed32(e.buf, math.Float32bits(a.F))
	case graph.AttrInt:
		e.varint(3, uint64(a.I))
	case graph.AttrString:
		e.strAlways(4, a.S)
	case graph.AttrTensor:
		if a.T == nil {
			return errors.New("tensor attribute without a tensor")
		}
		// A Constant's value takes its output's declared type when the
		// values convert to it exactly (they came from such a tensor).
		elem := graph.Undefined
		if out := n.Output(0); name == "value" && n.OpType == "Constant" && n.Domain == "" && out != nil && exact(out.Type.Elem, a.T) {
			elem = out.Type.Elem
		}
		at := e.begin(5)
		if err := e.tensor("", "", elem, a.T); err != nil {
			return err
		}
		e.end(at)
	case graph.AttrGraph:
		if a.G == nil {
			return errors.New("graph attribute without a graph")
		}
		at := e.begin(6)
		if err := e.graph(a.G); err != nil {
			return fmt.Errorf("graph %q: %w", a.G.Name, err)
		}
		e.end(at)
	case graph.AttrFloats:
		for _, f := range a.Fs {
			e.tag(7, protowire.Fixed32Type)
			e.buf = protowire.AppendFixed32(e.buf, math.Float32bits(f))
		}
	case graph.AttrInts:
		for _, v := range a.Is {
			e.varint(8, uint64(v))
		}
	case graph.AttrStrings:
		for _, s := range a.Ss {
			e.strAlways(9, s)
		}
	case graph.AttrTensors:
		for i, t := range a.Ts {
			if t == nil {
				return fmt.Errorf("tensor %d is nil", i)
			}
			at := e.begin(10)
			if err := e.tensor("", "", graph.Undefined, t); err != nil {
				return fmt.Errorf("tensor %d: %w", i, err)
			}
			e.end(at)
		}
	case graph.AttrGraphs:
		for i, g := range a.Gs {
			if g == nil {
				return fmt.Errorf("graph %d is nil", i)
			}
			at := e.begin(11)
			if err := e.graph(g); err != nil {
				return fmt.Errorf("graph %d: %w", i, err)
			}
			e.end(at)
		}
	default:
		return fmt.Errorf("attributes of type %s cannot be written", a.Kind)
	}
	return nil
}

// tensor writes a TensorProto's fields. elem is the declared ONNX type; it
// is used when t's dtype holds it, else t's own type is written.
func (e *encoder) tensor(name, doc string, elem graph.ElemType, t *tensor.Tensor) error {
	if dt, ok := elem.DType(); !ok || dt != t.DType().Storage() {
		elem = graph.ElemTypeOf(t.DType())
	}
	if elem == graph.Undefined {
		return fmt.Errorf("tensors of dtype %s cannot be written", t.DType())
	}
	for _, d := range t.Shape() {
		e.varint(1, uint64(d))
	}
	e.varint(2, uint64(elem))
	e.str(8, name)
	e.tag(9, protowire.BytesType)
	size := t.Numel() * elemSize(elem)
	e.buf = protowire.AppendVarint(e.buf, uint64(size))
	var err error
	e.buf, err = appendLE(e.buf, elem, t)
	if err != nil {
		return err
	}
	e.str(12, doc)
	return nil
}

// appendLE appends t's elements as little-endian values of type elem.
func appendLE(b []byte, elem graph.ElemType, t *tensor.Tensor) ([]byte, error) {
	le := binary.LittleEndian
	switch elem {
	case graph.Float:
		for _, v := range t.F32() {
			b = le.AppendUint32(b, math.Float32bits(v))
		}
	case graph.Double:
		for _, v := range t.F32() {
			b = le.AppendUint64(b, math.Float64bits(float64(v)))
		}
	case graph.Float16, graph.BFloat16:
		for _, v := range t.F32() {
			b = le.AppendUint16(b, floatToHalf(elem, v))
		}
	case graph.Int64:
		for _, v := range t.I64() {
			b = le.AppendUint64(b, uint64(v))
		}
	case graph.Uint32:
		for _, v := range t.I64() {
			if v < 0 || v > math.MaxUint32 {
				return nil, fmt.Errorf("value %d does not fit uint32", v)
			}
			b = le.AppendUint32(b, uint32(v))
		}
	case graph.Int32:
		for _, v := range t.I32() {
			b = le.AppendUint32(b, uint32(v))
		}
	case graph.Int16:
		for _, v := range t.I32() {
			if v < math.MinInt16 || v > math.MaxInt16 {
				return nil, fmt.Errorf("value %d does not fit int16", v)
			}
			b = le.AppendUint16(b, uint16(v))
		}
	case graph.Uint16:
		for _, v := range t.I32() {
			if v < 0 || v > math.MaxUint16 {
				return nil, fmt.Errorf("value %d does not fit uint16", v)
			}
			b = le.AppendUint16(b, uint16(v))
		}
	case graph.Int8:
		for _, v := range t.I8() {
			b = append(b, byte(v))
		}
	case graph.Uint8:
		b = append(b, t.U8()...)
	case graph.Bool:
		for _, v := range t.Bools() {
			if v {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
	default:
		return nil, fmt.Errorf("element type %s cannot be written", elem)
	}
	return b, nil
}

// exact reports whether every value of t converts to elem and back
// unchanged (so writing t as elem loses nothing).
func exact(elem graph.ElemType, t *tensor.Tensor) bool {
	if dt, ok := elem.DType(); !ok || dt != t.DType().Storage() {
		return false
	}
	switch elem {
	case graph.Float16, graph.BFloat16:
		for _, v := range t.F32() {
			if w := halfToFloat(elem, floatToHalf(elem, v)); w != v && v == v {
				return false
			}
		}
	case graph.Int16:
		for _, v := range t.I32() {
			if v != int32(int16(v)) {
				return false
			}
		}
	case graph.Uint16:
		for _, v := range t.I32() {
			if v != int32(uint16(v)) {
				return false
			}
		}
	case graph.Uint32:
		for _, v := range t.I64() {
			if v != int64(uint32(v)) {
				return false
			}
		}
	}
	return true
}

// floatToHalf rounds f to the nearest float16 (or bfloat16) value, ties
// to even, and returns its bits.
func floatToHalf(elem graph.ElemType, f float32) uint16 {
	x := math.Float32bits(f)
	if elem == graph.BFloat16 {
		if f != f { // NaN: keep the payload's top bits, and a NaN
			h := uint16(x >> 16)
			if h&0x7f == 0 {
				h |= 0x40
			}
			return h
		}
		x += 0x7fff + (x>>16)&1
		return uint16(x >> 16)
	}
	sign := uint16(x>>16) & 0x8000
	exp := int32(x>>23&0xff) - 127 + 15
	man := x & 0x7fffff
	switch {
	case x&0x7fffffff > 0x7f800000: // NaN: keep the payload's top bits
		if man>>13 == 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00 | uint16(man>>13)
	case exp >= 0x1f: // overflow or Inf
		return sign | 0x7c00
	case exp <= 0: // subnormal or zero
		if exp < -10 {
			return sign
		}
		man |= 0x800000
		shift := uint32(14 - exp)
		h := man >> shift
		rem := man & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(exp)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent, up to Inf: correct rounding
	}
	return sign | uint16(h)
}
