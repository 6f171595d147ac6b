package onnx

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// stream is the protobuf bytes being decoded: a buffer in memory, or a
// file read through a small window so that a large model is never held in
// memory as a whole. Offsets are absolute positions in the stream.
type stream struct {
	mem  []byte      // the whole stream, when in memory
	r    io.ReaderAt // else the file
	size int64

	win    []byte // window of the file at winOff
	winOff int64
}

const (
	windowSize = 64 << 10
	// maxTagLen is the longest tag or length prefix (a 10-byte varint).
	maxTagLen = binary.MaxVarintLen64
)

func memStream(b []byte) *stream { return &stream{mem: b, size: int64(len(b))} }

func fileStream(r io.ReaderAt, size int64) *stream {
	return &stream{r: r, size: size, winOff: -1}
}

// peek returns up to n bytes at off without copying; the slice is valid
// until the next call on s.
func (s *stream) peek(off, n int64) ([]byte, error) {
	if n > s.size-off {
		n = s.size - off
	}
	if s.mem != nil || s.r == nil {
		return s.mem[off : off+n], nil
	}
	n = min(n, windowSize)
	if s.winOff < 0 || off < s.winOff || off+n > s.winOff+int64(len(s.win)) {
		if err := s.fill(off); err != nil {
			return nil, err
		}
	}
	return s.win[off-s.winOff : off-s.winOff+n], nil
}

func (s *stream) fill(off int64) error {
	m := min(int64(windowSize), s.size-off)
	if cap(s.win) < windowSize {
		s.win = make([]byte, windowSize)
	}
	s.win = s.win[:m]
	if k, err := s.r.ReadAt(s.win, off); err != nil && !(err == io.EOF && k == int(m)) {
		s.winOff = -1
		return fmt.Errorf("reading %d bytes at %d: %w", m, off, err)
	}
	s.winOff = off
	return nil
}

// bytes returns the n bytes at off, which the caller may keep: a
// sub-slice for a stream in memory, a fresh copy for a file. The range has
// been checked against the enclosing message by the caller.
func (s *stream) bytes(off, n int64) ([]byte, error) {
	if s.mem != nil || s.r == nil {
		return s.mem[off : off+n : off+n], nil
	}
	out := make([]byte, n)
	if n <= windowSize/4 {
		b, err := s.peek(off, n)
		if err != nil {
			return nil, err
		}
		copy(out, b)
		return out, nil
	}
	if k, err := s.r.ReadAt(out, off); err != nil && !(err == io.EOF && k == int(n)) {
		return nil, fmt.Errorf("reading %d bytes at %d: %w", n, off, err)
	}
	return out, nil
}

// field is one decoded field of a message: its number and wire type, the
// value of a varint or fixed-size field, or the range of a length-delimited
// one (off, n).
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64
	off int64
	n   int64
	at  int64 // offset of the field's tag, for error messages
}

// fields calls fn for each field of the message at [off, end).
func (s *stream) fields(off, end int64, fn func(f field) error) error {
	for off < end {
		b, err := s.peek(off, min(end-off, 2*maxTagLen))
		if err != nil {
			return err
		}
		num, typ, k := protowire.ConsumeTag(b)
		if k < 0 {
			return fmt.Errorf("byte %d: bad field tag: %v", off, protowire.ParseError(k))
		}
		f := field{num: num, typ: typ, at: off}
		b = b[k:]
		pos := off + int64(k)
		switch typ {
		case protowire.VarintType:
			v, k := protowire.ConsumeVarint(b)
			if k < 0 {
				return fmt.Errorf("byte %d: field %d: truncated or overlong varint", pos, num)
			}
			f.v, pos = v, pos+int64(k)
		case protowire.Fixed32Type:
			if len(b) < 4 {
				return fmt.Errorf("byte %d: field %d: truncated fixed32", pos, num)
			}
			f.v, pos = uint64(binary.LittleEndian.Uint32(b)), pos+4
		case protowire.Fixed64Type:
			if len(b) < 8 {
				return fmt.Errorf("byte %d: field %d: truncated fixed64", pos, num)
			}
			f.v, pos = binary.LittleEndian.Uint64(b), pos+8
		case protowire.BytesType:
			v, k := protowire.ConsumeVarint(b)
			if k < 0 {
				return fmt.Errorf("byte %d: field %d: truncated length", pos, num)
			}
			pos += int64(k)
			if v > uint64(end-pos) {
				return fmt.Errorf("byte %d: field %d declares %d bytes but only %d remain", pos, num, v, end-pos)
			}
			f.off, f.n = pos, int64(v)
			pos += int64(v)
		default:
			// Groups (wire types 3 and 4) are not used by ONNX.
			return fmt.Errorf("byte %d: field %d has invalid wire type %d", off, num, typ)
		}
		if err := fn(f); err != nil {
			return err
		}
		off = pos
	}
	return nil
}

var wireNames = map[protowire.Type]string{
	protowire.VarintType: "varint", protowire.Fixed32Type: "fixed32", protowire.Fixed64Type: "fixed64",
	protowire.BytesType: "length-delimited", protowire.StartGroupType: "group",
}

func wrongWire(f field, name string, want protowire.Type) error {
	return fmt.Errorf("byte %d: field %d (%s) has wire type %s, want %s", f.at, f.num, name, wireNames[f.typ], wireNames[want])
}

// Scalar accessors: each checks the wire type.

func (f field) int64(name string) (int64, error) {
	if f.typ != protowire.VarintType {
		return 0, wrongWire(f, name, protowire.VarintType)
	}
	return int64(f.v), nil
}

func (f field) int32(name string) (int32, error) {
	if f.typ != protowire.VarintType {
		return 0, wrongWire(f, name, protowire.VarintType)
	}
	return int32(f.v), nil
}

func (f field) float32(name string) (float32, error) {
	if f.typ != protowire.Fixed32Type {
		return 0, wrongWire(f, name, protowire.Fixed32Type)
	}
	return math.Float32frombits(uint32(f.v)), nil
}

func (s *stream) raw(f field, name string) ([]byte, error) {
	if f.typ != protowire.BytesType {
		return nil, wrongWire(f, name, protowire.BytesType)
	}
	return s.bytes(f.off, f.n)
}

func (s *stream) str(f field, name string) (string, error) {
	b, err := s.raw(f, name)
	return string(b), err
}

// msg checks that f is length-delimited and returns its range.
func (f field) msg(name string) (off, end int64, err error) {
	if f.typ != protowire.BytesType {
		return 0, 0, wrongWire(f, name, protowire.BytesType)
	}
	return f.off, f.off + f.n, nil
}

// Repeated scalars come packed (one length-delimited field) or unpacked
// (one field per element); both are accepted.

func (s *stream) appendVarints(dst []uint64, f field, name string) ([]uint64, error) {
	switch f.typ {
	case protowire.VarintType:
		return append(dst, f.v), nil
	case protowire.BytesType:
		b, err := s.bytes(f.off, f.n)
		if err != nil {
			return nil, err
		}
		// Count first so a huge declared length never allocates more than
		// the bytes present can fill.
		n := 0
		for _, c := range b {
			if c < 0x80 {
				n++
			}
		}
		dst = growU64(dst, n)
		for len(b) > 0 {
			v, k := protowire.ConsumeVarint(b)
			if k < 0 {
				return nil, fmt.Errorf("byte %d: field %d (%s): truncated varint in packed data", f.off+f.n-int64(len(b)), f.num, name)
			}
			dst = append(dst, v)
			b = b[k:]
		}
		return dst, nil
	}
	return nil, wrongWire(f, name, protowire.VarintType)
}

func growU64(s []uint64, n int) []uint64 {
	if cap(s)-len(s) < n {
		t := make([]uint64, len(s), len(s)+n)
		copy(t, s)
		return t
	}
	return s
}

func (s *stream) appendFixed32(dst []uint32, f field, name string) ([]uint32, error) {
	switch f.typ {
	case protowire.Fixed32Type:
		return append(dst, uint32(f.v)), nil
	case protowire.BytesType:
		if f.n%4 != 0 {
			return nil, fmt.Errorf("byte %d: field %d (%s): packed fixed32 data of %d bytes", f.at, f.num, name, f.n)
		}
		b, err := s.bytes(f.off, f.n)
		if err != nil {
			return nil, err
		}
		for i := 0; i+4 <= len(b); i += 4 {
			dst = append(dst, binary.LittleEndian.Uint32(b[i:]))
		}
		return dst, nil
	}
	return nil, wrongWire(f, name, protowire.Fixed32Type)
}

func (s *stream) appendFixed64(dst []uint64, f field, name string) ([]uint64, error) {
	switch f.typ {
	case protowire.Fixed64Type:
		return append(dst, f.v), nil
	case protowire.BytesType:
		if f.n%8 != 0 {
			return nil, fmt.Errorf("byte %d: field %d (%s): packed fixed64 data of %d bytes", f.at, f.num, name, f.n)
		}
		b, err := s.bytes(f.off, f.n)
		if err != nil {
			return nil, err
		}
		for i := 0; i+8 <= len(b); i += 8 {
			dst = append(dst, binary.LittleEndian.Uint64(b[i:]))
		}
		return dst, nil
	}
	return nil, wrongWire(f, name, protowire.Fixed64Type)
}
