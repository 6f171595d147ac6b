package npy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"github.com/quanta-go/quanta/tensor"
)

// chunkBytes is how much data is read and decoded at a time.
const chunkBytes = 1 << 18

// source is the stream an array is read from, with what is known of its
// length.
type source struct {
	r io.Reader
	// left is the number of bytes that remain, or -1 when unknown. For a
	// zip member it is the size the archive declares.
	left int64
	// trusted means left is real data (a file's or buffer's size), so
	// buffers may be sized from a declared shape once it has been checked
	// against left. Otherwise buffers grow only as data actually arrives.
	trusted bool
}

// readFull reads len(p) bytes, keeping left up to date.
func (s *source) readFull(p []byte) (int, error) {
	n, err := io.ReadFull(s.r, p)
	if s.left >= 0 {
		s.left -= int64(n)
	}
	return n, err
}

// lener is implemented by in-memory readers (bytes.Reader, strings.Reader,
// bytes.Buffer) that know how much they hold.
type lener interface{ Len() int }

// Read reads one .npy array from r and returns it as a tensor, leaving r
// just after the array's data (so arrays saved one after another into one
// stream are read by calling Read repeatedly).
//
// Format versions 1.0, 2.0 and 3.0 are read. The header must be the Python
// dictionary NumPy writes, with exactly the keys 'descr', 'fortran_order'
// and 'shape'; it is parsed strictly (see the package documentation).
// Element types map to tensor dtypes as follows:
//
//	'<f4'              Float32
//	'<f8'              Float32, each value rounded to the nearest float32
//	                   (magnitudes beyond float32's range become ±Inf)
//	'<f2'              Float32, exactly
//	'<i8'              Int64
//	'<i4'              Int32
//	'<i2', '<u2'       Int32, exactly
//	'<u4'              Int64, exactly
//	'|i1'              Int8
//	'|u1'              Uint8
//	'|b1'              Bool (each byte must be 0 or 1)
//
// Big-endian types ('>f4', '>i8', ...) are converted to host values.
// Fortran-order arrays, structured dtypes and every other type are
// rejected with an error saying so.
func Read(r io.Reader) (*tensor.Tensor, error) {
	src := &source{r: r, left: -1}
	if l, ok := r.(lener); ok {
		src.left, src.trusted = int64(l.Len()), true
	}
	t, err := readArray(src)
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	return t, nil
}

// ReadFile reads the .npy file at path (see Read). The file must hold
// exactly one array: bytes after the array's data are an error. Errors
// name the file.
func ReadFile(path string) (*tensor.Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("npy: %s: not a regular file", path)
	}
	src := &source{r: f, left: fi.Size(), trusted: true}
	t, err := readArray(src)
	if err == nil && src.left > 0 {
		err = fmt.Errorf("%d bytes follow the array's data (a .npy file holds one array)", src.left)
	}
	if err != nil {
		return nil, fmt.Errorf("npy: %s: %w", path, err)
	}
	return t, nil
}

// readErr describes a short read: a plain truncation, or the underlying
// error (a checksum failure in a zip member, an I/O error).
func readErr(n int, want int, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("the input ends after %d of %d bytes", n, want)
	}
	return fmt.Errorf("read %d of %d bytes: %w", n, want, err)
}

// readArray reads the magic, header and data of one array from src.
func readArray(src *source) (*tensor.Tensor, error) {
	var pre [8]byte
	if n, err := src.readFull(pre[:]); err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("empty input: not an .npy file")
		}
		if m := min(n, len(magic)); string(pre[:m]) != magic[:m] {
			return nil, fmt.Errorf("not an .npy file: starts with %q, not \\x93NUMPY", pre[:m])
		}
		return nil, fmt.Errorf("truncated magic and version: %w", readErr(n, len(pre), err))
	}
	if string(pre[:len(magic)]) != magic {
		return nil, fmt.Errorf("not an .npy file: starts with %q, not \\x93NUMPY", pre[:len(magic)])
	}
	major, minor := pre[6], pre[7]
	if minor != 0 || major < 1 || major > 3 {
		return nil, fmt.Errorf("format version %d.%d is not supported (1.0, 2.0 and 3.0 are)", major, minor)
	}
	lenBytes := 2
	if major > 1 {
		lenBytes = 4
	}
	var lb [4]byte
	if n, err := src.readFull(lb[:lenBytes]); err != nil {
		return nil, fmt.Errorf("truncated header length: %w", readErr(n, lenBytes, err))
	}
	hlen := int64(binary.LittleEndian.Uint32(lb[:]))
	switch {
	case hlen > maxHeaderLen:
		return nil, fmt.Errorf("header length %d exceeds the %d-byte limit", hlen, maxHeaderLen)
	case src.left >= 0 && hlen > src.left:
		return nil, fmt.Errorf("header length %d exceeds the %d bytes that remain", hlen, src.left)
	}
	hb := make([]byte, hlen)
	if n, err := src.readFull(hb); err != nil {
		return nil, fmt.Errorf("truncated header: %w", readErr(n, len(hb), err))
	}
	h, err := parseHeader(string(hb), major)
	if err != nil {
		return nil, err
	}
	e, err := parseDescr(h.descr)
	if err != nil {
		return nil, err
	}
	if h.fortran {
		return nil, fmt.Errorf("array of shape %s is stored in Fortran order, which is not supported: save it in C order (np.ascontiguousarray)", shapeString(h.shape))
	}
	n, nbytes, err := dataSize(h.shape, e.size)
	if err != nil {
		return nil, err
	}
	if src.left >= 0 && nbytes > src.left {
		return nil, fmt.Errorf("shape %s of '%s' needs %d bytes of data but only %d remain", shapeString(h.shape), h.descr, nbytes, src.left)
	}
	return readData(src, e, h, n)
}

// dataSize returns the element count of shape and its size in bytes.
// As in NumPy, the product of the non-zero dimensions times the element
// size must fit an int even when a zero dimension makes the array empty.
func dataSize(shape []int, size int) (n int, nbytes int64, err error) {
	prod, empty := 1, false
	for _, d := range shape {
		if d == 0 {
			empty = true
			continue
		}
		if prod > math.MaxInt/size/d {
			return 0, 0, fmt.Errorf("shape %s holds more elements than can be addressed", shapeString(shape))
		}
		prod *= d
	}
	if empty {
		return 0, 0, nil
	}
	return prod, int64(prod) * int64(size), nil
}

// readData reads n elements of type e and wraps them in a tensor of h's
// shape.
func readData(src *source, e elem, h header, n int) (*tensor.Tensor, error) {
	what := "shape " + shapeString(h.shape) + " of '" + h.descr + "'"
	switch int(e.kind)<<4 | e.size {
	case 'f'<<4 | 4:
		v, err := readElems(src, e, n, what, decodeF4)
		return build(v, err, tensor.FromFloat32, h.shape)
	case 'f'<<4 | 8:
		v, err := readElems(src, e, n, what, decodeF8)
		return build(v, err, tensor.FromFloat32, h.shape)
	case 'f'<<4 | 2:
		v, err := readElems(src, e, n, what, decodeF2)
		return build(v, err, tensor.FromFloat32, h.shape)
	case 'i'<<4 | 8:
		v, err := readElems(src, e, n, what, decodeI8)
		return build(v, err, tensor.FromInt64, h.shape)
	case 'u'<<4 | 4:
		v, err := readElems(src, e, n, what, decodeU4)
		return build(v, err, tensor.FromInt64, h.shape)
	case 'i'<<4 | 4:
		v, err := readElems(src, e, n, what, decodeI4)
		return build(v, err, tensor.FromInt32, h.shape)
	case 'i'<<4 | 2:
		v, err := readElems(src, e, n, what, decodeI2)
		return build(v, err, tensor.FromInt32, h.shape)
	case 'u'<<4 | 2:
		v, err := readElems(src, e, n, what, decodeU2)
		return build(v, err, tensor.FromInt32, h.shape)
	case 'i'<<4 | 1:
		v, err := readElems(src, e, n, what, decodeI1)
		return build(v, err, tensor.FromInt8, h.shape)
	case 'u'<<4 | 1:
		v, err := readElems(src, e, n, what, decodeU1)
		return build(v, err, tensor.FromUint8, h.shape)
	case 'b'<<4 | 1:
		v, err := readElems(src, e, n, what, decodeB1)
		return build(v, err, tensor.FromBool, h.shape)
	}
	return nil, fmt.Errorf("dtype '%s' has no decoder", h.descr)
}

// build wraps decoded elements in a tensor of the given shape.
func build[T any](v []T, err error, from func([]T, ...int) *tensor.Tensor, shape []int) (*tensor.Tensor, error) {
	if err != nil {
		return nil, err
	}
	if len(shape) == 0 {
		// The From* constructors make a shapeless tensor one-dimensional.
		return from(v, 1).Reshape(), nil
	}
	return from(v, shape...), nil
}

// Decoders turn little-endian bytes into elements; they return the index
// of an invalid element, or -1.

func decodeF4(d []float32, b []byte) int {
	for i := range d {
		d[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return -1
}

func decodeF8(d []float32, b []byte) int {
	for i := range d {
		d[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
	}
	return -1
}

func decodeF2(d []float32, b []byte) int {
	for i := range d {
		d[i] = halfToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return -1
}

func decodeI8(d []int64, b []byte) int {
	for i := range d {
		d[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return -1
}

func decodeU4(d []int64, b []byte) int {
	for i := range d {
		d[i] = int64(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return -1
}

func decodeI4(d []int32, b []byte) int {
	for i := range d {
		d[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return -1
}

func decodeI2(d []int32, b []byte) int {
	for i := range d {
		d[i] = int32(int16(binary.LittleEndian.Uint16(b[2*i:])))
	}
	return -1
}

func decodeU2(d []int32, b []byte) int {
	for i := range d {
		d[i] = int32(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return -1
}

func decodeI1(d []int8, b []byte) int {
	for i := range d {
		d[i] = int8(b[i])
	}
	return -1
}

func decodeU1(d []uint8, b []byte) int {
	copy(d, b)
	return -1
}

// decodeB1 accepts only the bytes NumPy writes for booleans, 0 and 1.
func decodeB1(d []bool, b []byte) int {
	for i, c := range b {
		if c > 1 {
			return i
		}
		d[i] = c == 1
	}
	return -1
}

// readElems reads n elements of e.size bytes in chunks, decoding each
// chunk (byte-swapped to little-endian first when e is big-endian) with
// decode, which returns the index of an invalid element or -1. The result
// grows only as data arrives unless src's length is trusted.
func readElems[T any](src *source, e elem, n int, what string, decode func(dst []T, b []byte) int) ([]T, error) {
	total := int64(n) * int64(e.size)
	capHint := n
	if !src.trusted {
		capHint = min(n, chunkBytes/e.size)
	}
	out := make([]T, 0, capHint)
	buf := make([]byte, min(total, chunkBytes))
	for done := int64(0); done < total; {
		k := int(min(int64(len(buf)), total-done))
		got, err := src.readFull(buf[:k])
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("truncated data: %s needs %d bytes, the input ends after %d", what, total, done+int64(got))
			}
			return nil, fmt.Errorf("reading data of %s: %w", what, err)
		}
		if e.bigEndian {
			swapBytes(buf[:k], e.size)
		}
		m := k / e.size
		l := len(out)
		out = slices.Grow(out, m)[:l+m]
		if bad := decode(out[l:], buf[:k]); bad >= 0 {
			return nil, fmt.Errorf("%s: element %d is the byte %#02x, not 0 (False) or 1 (True)", what, l+bad, buf[bad])
		}
		done += int64(k)
	}
	return out, nil
}

// swapBytes reverses the byte order of each size-byte element of b.
func swapBytes(b []byte, size int) {
	for i := 0; i+size <= len(b); i += size {
		slices.Reverse(b[i : i+size])
	}
}

// halfToFloat32 converts IEEE half-precision bits to float32 exactly.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
	case frac == 0: // ±0
		return math.Float32frombits(sign)
	}
	// subnormal: frac * 2^-24
	v := float32(frac) * (1.0 / (1 << 24))
	if sign != 0 {
		v = -v
	}
	return v
}
