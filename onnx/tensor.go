package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"strconv"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// pTensor is a TensorProto as read from the wire. Its raw_data is kept as
// a range of the stream (raw, rawN) so that a model read from a file is
// copied once, straight into the tensor's storage.
type pTensor struct {
	dims     []int64
	dataType int32
	name     string
	doc      string
	segment  bool

	hasRaw bool
	src    *stream
	raw    int64 // offset of raw_data in src
	rawN   int64

	floats  []uint32 // float_data bits
	int32s  []uint64 // int32_data
	int64s  []uint64 // int64_data
	doubles []uint64 // double_data bits
	uint64s []uint64 // uint64_data
	strings int      // number of string_data entries

	external []graph.StringPair
	location int32
}

func (d *decoder) tensor(off, end int64) (*pTensor, error) {
	t := &pTensor{src: d.s}
	err := d.s.fields(off, end, func(f field) (err error) {
		switch f.num {
		case 1:
			var u []uint64
			u, err = d.s.appendVarints(nil, f, "dims")
			for _, v := range u {
				t.dims = append(t.dims, int64(v))
			}
		case 2:
			t.dataType, err = f.int32("data_type")
		case 3:
			t.segment = true
		case 4:
			t.floats, err = d.s.appendFixed32(t.floats, f, "float_data")
		case 5:
			t.int32s, err = d.s.appendVarints(t.int32s, f, "int32_data")
		case 6:
			t.strings++
		case 7:
			t.int64s, err = d.s.appendVarints(t.int64s, f, "int64_data")
		case 8:
			t.name, err = d.s.str(f, "name")
		case 12:
			t.doc, err = d.s.str(f, "doc_string")
		case 9:
			if _, _, err = f.msg("raw_data"); err == nil {
				t.hasRaw, t.raw, t.rawN = true, f.off, f.n
			}
		case 10:
			t.doubles, err = d.s.appendFixed64(t.doubles, f, "double_data")
		case 11:
			t.uint64s, err = d.s.appendVarints(t.uint64s, f, "uint64_data")
		case 13:
			o, e, err := f.msg("external_data")
			if err != nil {
				return err
			}
			kv, err := d.stringPair(o, e)
			t.external = append(t.external, kv)
			return err
		case 14:
			t.location, err = f.int32("data_location")
		}
		return err
	})
	return t, err
}

// elemSize is the size in bytes of one element of an ONNX type in
// raw_data, or 0 for types quanta cannot hold.
func elemSize(e graph.ElemType) int {
	switch e {
	case graph.Uint8, graph.Int8, graph.Bool:
		return 1
	case graph.Float16, graph.BFloat16, graph.Int16, graph.Uint16:
		return 2
	case graph.Float, graph.Int32, graph.Uint32:
		return 4
	case graph.Double, graph.Int64:
		return 8
	}
	return 0
}

// typeName names an ONNX element type in errors, including the types
// graph.ElemType has no name for.
func typeName(e graph.ElemType) string {
	switch e {
	case 17:
		return "float8e4m3fn"
	case 18:
		return "float8e4m3fnuz"
	case 19:
		return "float8e5m2"
	case 20:
		return "float8e5m2fnuz"
	case 21:
		return "uint4"
	case 22:
		return "int4"
	case 23:
		return "float4e2m1"
	}
	return e.String()
}

// shapeOf checks dims and returns them as ints with the element count.
func shapeOf(dims []int64) ([]int, int, error) {
	shape := make([]int, len(dims))
	var n uint64 = 1
	for i, d := range dims {
		if d < 0 {
			return nil, 0, fmt.Errorf("negative dimension %d in dims %v", d, dims)
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > maxElems {
			return nil, 0, fmt.Errorf("dims %v hold too many elements", dims)
		}
		n = lo
		shape[i] = int(d)
	}
	return shape, int(n), nil
}

// maxElems bounds element counts, so byte sizes never overflow; data
// sizes are checked against the bytes present before any allocation.
const maxElems = 1 << 40

// materialize converts t to a quanta tensor. The returned element type is
// the file's (the tensor itself holds it as ElemType.DType says); external
// data is read through ext (nil forbids it).
func (t *pTensor) materialize(ext *externalFiles) (*tensor.Tensor, graph.ElemType, error) {
	elem := graph.ElemType(t.dataType)
	if t.segment {
		return nil, elem, errors.New("segmented tensors are not supported")
	}
	dt, ok := elem.DType()
	if !ok {
		if elem == graph.Undefined {
			return nil, elem, errors.New("data_type is not set")
		}
		return nil, elem, &UnsupportedTypeError{Name: t.name, Elem: elem, Dims: t.dims}
	}
	shape, n, err := shapeOf(t.dims)
	if err != nil {
		return nil, elem, err
	}
	size := int64(n) * int64(elemSize(elem))
	if t.location == 1 {
		src, off, err := ext.open(t.external, size)
		if err != nil {
			return nil, elem, fmt.Errorf("external data: %w", err)
		}
		out := tensor.New(dt, shape...)
		return out, elem, fillRaw(out, elem, src, off, size)
	}
	if t.hasRaw {
		if t.rawN != size {
			return nil, elem, fmt.Errorf("raw_data has %d bytes, dims %v of %s need %d", t.rawN, t.dims, elem, size)
		}
		out := tensor.New(dt, shape...)
		return out, elem, fillRaw(out, elem, t.src, t.raw, size)
	}
	return t.typed(elem, dt, shape, n)
}

// typed builds the tensor from the typed repeated fields.
func (t *pTensor) typed(elem graph.ElemType, dt tensor.DType, shape []int, n int) (*tensor.Tensor, graph.ElemType, error) {
	var have int
	var field string
	switch elem {
	case graph.Float:
		have, field = len(t.floats), "float_data"
	case graph.Double:
		have, field = len(t.doubles), "double_data"
	case graph.Int64:
		have, field = len(t.int64s), "int64_data"
	case graph.Uint32:
		have, field = len(t.uint64s), "uint64_data"
	default:
		have, field = len(t.int32s), "int32_data"
	}
	if have != n {
		if have == 0 && n > 0 {
			return nil, elem, fmt.Errorf("dims %v hold %d elements but the tensor has no data", t.dims, n)
		}
		return nil, elem, fmt.Errorf("%s has %d elements, dims %v need %d", field, have, t.dims, n)
	}
	out := tensor.New(dt, shape...)
	switch elem {
	case graph.Float:
		f := out.F32()
		for i, v := range t.floats {
			f[i] = math.Float32frombits(v)
		}
	case graph.Double:
		f := out.F32()
		for i, v := range t.doubles {
			f[i] = float32(math.Float64frombits(v))
		}
	case graph.Float16, graph.BFloat16:
		f := out.F32()
		for i, v := range t.int32s {
			f[i] = halfToFloat(elem, uint16(v))
		}
	case graph.Int64:
		d := out.I64()
		for i, v := range t.int64s {
			d[i] = int64(v)
		}
	case graph.Uint32:
		d := out.I64()
		for i, v := range t.uint64s {
			d[i] = int64(uint32(v))
		}
	case graph.Int32, graph.Int16, graph.Uint16:
		d := out.I32()
		for i, v := range t.int32s {
			switch elem {
			case graph.Int16:
				d[i] = int32(int16(v))
			case graph.Uint16:
				d[i] = int32(uint16(v))
			default:
				d[i] = int32(v)
			}
		}
	case graph.Int8:
		d := out.I8()
		for i, v := range t.int32s {
			d[i] = int8(v)
		}
	case graph.Uint8:
		d := out.U8()
		for i, v := range t.int32s {
			d[i] = uint8(v)
		}
	case graph.Bool:
		d := out.Bools()
		for i, v := range t.int32s {
			d[i] = v != 0
		}
	}
	return out, elem, nil
}

// fillRaw decodes size bytes of little-endian elements of type elem at off
// in src into out, a chunk at a time.
func fillRaw(out *tensor.Tensor, elem graph.ElemType, src *stream, off, size int64) error {
	es := int64(elemSize(elem))
	chunk := int64(windowSize) / 8 * 8
	for done := int64(0); done < size; {
		m := min(chunk, size-done)
		b, err := src.peek(off+done, m)
		if err != nil {
			return err
		}
		if int64(len(b)) != m {
			return fmt.Errorf("data ends after %d of %d bytes", done+int64(len(b)), size)
		}
		decodeLE(out, elem, int(done/es), b)
		done += m
	}
	return nil
}

// decodeLE decodes the little-endian elements b into out starting at
// element i.
func decodeLE(out *tensor.Tensor, elem graph.ElemType, i int, b []byte) {
	le := binary.LittleEndian
	switch elem {
	case graph.Float:
		f := out.F32()[i:]
		for j := range len(b) / 4 {
			f[j] = math.Float32frombits(le.Uint32(b[4*j:]))
		}
	case graph.Double:
		f := out.F32()[i:]
		for j := range len(b) / 8 {
			f[j] = float32(math.Float64frombits(le.Uint64(b[8*j:])))
		}
	case graph.Float16, graph.BFloat16:
		f := out.F32()[i:]
		for j := range len(b) / 2 {
			f[j] = halfToFloat(elem, le.Uint16(b[2*j:]))
		}
	case graph.Int64:
		d := out.I64()[i:]
		for j := range len(b) / 8 {
			d[j] = int64(le.Uint64(b[8*j:]))
		}
	case graph.Uint32:
		d := out.I64()[i:]
		for j := range len(b) / 4 {
			d[j] = int64(le.Uint32(b[4*j:]))
		}
	case graph.Int32:
		d := out.I32()[i:]
		for j := range len(b) / 4 {
			d[j] = int32(le.Uint32(b[4*j:]))
		}
	case graph.Int16:
		d := out.I32()[i:]
		for j := range len(b) / 2 {
			d[j] = int32(int16(le.Uint16(b[2*j:])))
		}
	case graph.Uint16:
		d := out.I32()[i:]
		for j := range len(b) / 2 {
			d[j] = int32(le.Uint16(b[2*j:]))
		}
	case graph.Int8:
		d := out.I8()[i:]
		for j, v := range b {
			d[j] = int8(v)
		}
	case graph.Uint8:
		copy(out.U8()[i:], b)
	case graph.Bool:
		d := out.Bools()[i:]
		for j, v := range b {
			d[j] = v != 0
		}
	}
}

// halfToFloat converts IEEE half (Float16) or bfloat16 bits to float32.
func halfToFloat(elem graph.ElemType, h uint16) float32 {
	if elem == graph.BFloat16 {
		return math.Float32frombits(uint32(h) << 16)
	}
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf, NaN
		return math.Float32frombits(sign | 0xff<<23 | man<<13)
	case exp == 0 && man == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: normalize
		e := uint32(127 - 15 + 1)
		for man&0x400 == 0 {
			man <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (man&0x3ff)<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
}

// externalFiles opens the files holding external data, confined to one
// directory, and keeps them open until close.
type externalFiles struct {
	dir   string
	root  *os.Root
	files map[string]*os.File
}

// open returns a stream over the file named by the external_data entries
// and the offset of the size bytes of the tensor in it.
func (x *externalFiles) open(kv []graph.StringPair, size int64) (*stream, int64, error) {
	var loc string
	var off, length int64 = 0, -1
	for _, p := range kv {
		if p.Key != "offset" && p.Key != "length" {
			if p.Key == "location" {
				loc = p.Value
			}
			continue
		}
		v, err := strconv.ParseInt(p.Value, 10, 64)
		if err != nil || v < 0 {
			return nil, 0, fmt.Errorf("bad %s %q", p.Key, p.Value)
		}
		if p.Key == "offset" {
			off = v
		} else {
			length = v
		}
	}
	if loc == "" {
		return nil, 0, errors.New("no location")
	}
	if x == nil || x.dir == "" {
		return nil, 0, fmt.Errorf("%q: no directory to read external data from", loc)
	}
	f, err := x.file(loc)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if off > st.Size() {
		return nil, 0, fmt.Errorf("%q has %d bytes, the tensor's data starts at %d", loc, st.Size(), off)
	}
	if length < 0 {
		length = st.Size() - off
	}
	if length != size {
		return nil, 0, fmt.Errorf("%q holds %d bytes for the tensor, its dims need %d", loc, length, size)
	}
	if length > st.Size()-off {
		return nil, 0, fmt.Errorf("%q has %d bytes, the tensor's data ends at %d", loc, st.Size(), off+length)
	}
	return fileStream(f, st.Size()), off, nil
}

func (x *externalFiles) file(loc string) (*os.File, error) {
	if f, ok := x.files[loc]; ok {
		return f, nil
	}
	if !isLocalPath(loc) {
		return nil, fmt.Errorf("location %q is not a relative path inside the model's directory", loc)
	}
	if x.root == nil {
		r, err := os.OpenRoot(x.dir)
		if err != nil {
			return nil, err
		}
		x.root = r
		x.files = map[string]*os.File{}
	}
	f, err := x.root.Open(loc)
	if err != nil {
		return nil, err
	}
	x.files[loc] = f
	return f, nil
}

func (x *externalFiles) close() {
	if x == nil {
		return
	}
	for _, f := range x.files {
		f.Close()
	}
	if x.root != nil {
		x.root.Close()
	}
}

// isLocalPath reports whether loc, a POSIX path, names a file inside the
// directory it is relative to (no absolute path, no ".." escape).
func isLocalPath(loc string) bool {
	return filepath.IsLocal(filepath.FromSlash(loc))
}
