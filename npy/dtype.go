package npy

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/quanta-go/quanta/tensor"
)

// elem describes an on-disk element type: its kind ('f' float, 'i' signed,
// 'u' unsigned, 'b' bool), its size in bytes, its byte order and the tensor
// dtype it is read as.
type elem struct {
	kind      byte
	size      int
	bigEndian bool
	dtype     tensor.DType
}

// readTypes maps kind and size to the tensor dtype an element is read as.
var readTypes = map[[2]byte]tensor.DType{
	{'f', 2}: tensor.Float32, // widened exactly
	{'f', 4}: tensor.Float32,
	{'f', 8}: tensor.Float32, // rounded to nearest
	{'i', 1}: tensor.Int8,
	{'u', 1}: tensor.Uint8,
	{'b', 1}: tensor.Bool,
	{'i', 2}: tensor.Int32, // widened exactly
	{'u', 2}: tensor.Int32, // widened exactly
	{'i', 4}: tensor.Int32,
	{'u', 4}: tensor.Int64, // widened exactly
	{'i', 8}: tensor.Int64,
}

// typeNames names NumPy's element types for error messages.
var typeNames = map[byte]string{
	'f': "float", 'i': "int", 'u': "uint", 'b': "bool", 'c': "complex",
	'U': "unicode string", 'S': "byte string", 'a': "byte string", 'V': "void (raw or structured)",
	'O': "Python object", 'M': "datetime64", 'm': "timedelta64",
}

// parseDescr parses a NumPy array-protocol type string: a byte-order
// character, a kind and a size in bytes ('<f4', '>i8', '|u1'). Multi-byte
// types must state '<' or '>'; one-byte types may use any order character
// or none.
func parseDescr(descr string) (elem, error) {
	s := descr
	order := byte(0)
	if s != "" && (s[0] == '<' || s[0] == '>' || s[0] == '|' || s[0] == '=') {
		order, s = s[0], s[1:]
	}
	const supported = "quanta reads float16/32/64, int8/16/32/64, uint8/16/32 and bool"
	if s == "" {
		return elem{}, fmt.Errorf("dtype '%s' is not a type string such as '<f4'", descr)
	}
	name, known := typeNames[s[0]]
	switch {
	case !known:
		return elem{}, fmt.Errorf("dtype '%s' is not a type string such as '<f4'", descr)
	case s[0] != 'f' && s[0] != 'i' && s[0] != 'u' && s[0] != 'b':
		return elem{}, fmt.Errorf("dtype '%s' (%s) is not supported: %s", descr, name, supported)
	case len(s) < 2 || len(s) > 3 || strings.Trim(s[1:], "0123456789") != "" || s[1] == '0':
		return elem{}, fmt.Errorf("dtype '%s' is not a type string such as '<f4'", descr)
	}
	e := elem{kind: s[0]}
	e.size, _ = strconv.Atoi(s[1:])
	dt, ok := readTypes[[2]byte{e.kind, byte(e.size)}]
	if !ok || e.size > 8 {
		if e.kind == 'u' && e.size == 8 {
			return elem{}, fmt.Errorf("dtype '%s' (uint64) is not supported: quanta has no unsigned 64-bit dtype", descr)
		}
		return elem{}, fmt.Errorf("dtype '%s' (%s of %d bytes) is not supported: %s", descr, name, e.size, supported)
	}
	e.dtype = dt
	if e.size > 1 {
		switch order {
		case '<':
		case '>':
			e.bigEndian = true
		case '=':
			return elem{}, fmt.Errorf("dtype '%s' has native byte order ('='), which does not say how the file was written: expected '<' or '>'", descr)
		default:
			return elem{}, fmt.Errorf("dtype '%s' has no byte order: expected '<%c%d' or '>%c%d'", descr, e.kind, e.size, e.kind, e.size)
		}
	}
	return e, nil
}

// writeDescr returns the type string Write uses for a tensor dtype, as
// NumPy writes it on a little-endian machine.
func writeDescr(dt tensor.DType) (string, error) {
	switch dt {
	case tensor.Float32:
		return "<f4", nil
	case tensor.Int64:
		return "<i8", nil
	case tensor.Int32:
		return "<i4", nil
	case tensor.Uint8:
		return "|u1", nil
	case tensor.Int8:
		return "|i1", nil
	case tensor.Bool:
		return "|b1", nil
	}
	if dt.IsQuantized() {
		return "", fmt.Errorf("tensor is %v, which NumPy has no dtype for: write its dequantized values, or its integer storage", dt)
	}
	return "", fmt.Errorf("tensor dtype %v has no .npy encoding", dt)
}
