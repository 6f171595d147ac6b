// Package embbag holds weight-only quantized embedding tables and their
// lookups: rows of 8-bit or 4-bit codes with a float scale and bias per row
// (PyTorch's per_channel_affine_float_qparams scheme), in PyTorch's fused
// rowwise byte layout, so tables packed by either side can be exchanged:
//
//	8-bit (embedding_bag_byte_prepack): dim code bytes, then scale and
//	      bias as little-endian float32                 (dim+8 bytes/row)
//	4-bit (embedding_bag_4bit_prepack, quint4x2): dim/2 bytes, element 2i
//	      in the low and 2i+1 in the high nibble, then scale and bias as
//	      little-endian IEEE half                      (dim/2+4 bytes/row)
//
// A code q of a row with scale s and bias b stands for s*q + b. Lookups
// reproduce PyTorch's kernels exactly: each index of a bag adds
//
//	out[j] = float32(float64(w*s)*float64(q[j]) + float64(out[j] + w*b))
//
// to the bag's output (w the per-sample weight, 1 without; w*s, w*b and
// out[j]+b rounded to float32; the float64 sum rounded once, then to
// float32), which is what PyTorch's C++ fallback computes with std::fma on
// a uint8 argument (builds with FBGEMM use float32 fused multiply-adds
// instead and can differ in the last bit). The plain-Go code is the
// specification; the AVX2 and AVX-512 row kernels equal it bit for bit.
package embbag

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/quanta-go/quanta/internal/kernels/qdyn"
)

// Table is a quantized embedding table: Rows rows of Dim values in the
// fused layout of Bits (8 or 4), RowBytes(Bits, Dim) bytes per row.
type Table struct {
	Rows, Dim, Bits int
	Data            []byte
}

// RowBytes is the size of one fused row: dim+8 for 8 bits, dim/2+4 for 4
// bits (dim even).
func RowBytes(bits, dim int) int {
	if bits == 4 {
		return (dim+1)/2 + 4
	}
	return dim + 8
}

// Check reports whether t's fields describe a valid table: Bits 8 or 4,
// an even Dim for 4 bits, and Data of exactly Rows rows.
func (t *Table) Check() error {
	switch {
	case t.Bits != 8 && t.Bits != 4:
		return fmt.Errorf("embbag: %d-bit rows are not supported (want 8 or 4)", t.Bits)
	case t.Rows < 0 || t.Dim < 0:
		return fmt.Errorf("embbag: negative table shape %dx%d", t.Rows, t.Dim)
	case t.Bits == 4 && t.Dim%2 != 0:
		return fmt.Errorf("embbag: 4-bit rows need an even dimension, got %d", t.Dim)
	case len(t.Data) != t.Rows*RowBytes(t.Bits, t.Dim):
		return fmt.Errorf("embbag: %d bytes for %d rows of %d %d-bit values (want %d)", len(t.Data), t.Rows, t.Dim, t.Bits, t.Rows*RowBytes(t.Bits, t.Dim))
	}
	return nil
}

// RowBytes is the size of one of t's rows.
func (t *Table) RowBytes() int { return RowBytes(t.Bits, t.Dim) }

// Row returns row r's bytes (codes, then scale and bias).
func (t *Table) Row(r int) []byte {
	rb := t.RowBytes()
	return t.Data[r*rb : (r+1)*rb]
}

// ScaleBias returns row r's scale and bias as float32 (4-bit tables store
// them as halves, which convert exactly).
func (t *Table) ScaleBias(r int) (scale, bias float32) {
	row := t.Row(r)
	if t.Bits == 4 {
		sb := row[(t.Dim+1)/2:]
		return qdyn.Float16ToFloat32(binary.LittleEndian.Uint16(sb)), qdyn.Float16ToFloat32(binary.LittleEndian.Uint16(sb[2:]))
	}
	sb := row[t.Dim:]
	return math.Float32frombits(binary.LittleEndian.Uint32(sb)), math.Float32frombits(binary.LittleEndian.Uint32(sb[4:]))
}

// Code returns the code of element j of row r.
func (t *Table) Code(r, j int) uint8 {
	row := t.Row(r)
	if t.Bits == 4 {
		return row[j/2] >> (4 * (j % 2)) & 15
	}
	return row[j]
}

// Pack8 quantizes a rows×dim float32 matrix (row-major) to 8-bit rows as
// PyTorch's embedding_bag_byte_prepack does, in float32:
//
//	mn, mx = min and max of the row (not extended to 0)
//	scale  = (mx - mn) / 255,  bias = mn
//	q[j]   = RNE((w[j] - mn) * (255 / ((mx - mn) + 1e-8)))
//
// The weights must be finite (callers check); a row of dim 0 gets scale
// and bias 0.
func Pack8(w []float32, rows, dim int) *Table {
	checkMatrix("Pack8", w, rows, dim)
	t := &Table{Rows: rows, Dim: dim, Bits: 8, Data: make([]byte, rows*RowBytes(8, dim))}
	for r := 0; r < rows; r++ {
		src := w[r*dim : (r+1)*dim]
		row := t.Row(r)
		if dim == 0 {
			continue
		}
		mn, mx := rowMinMax(src)
		rng := mx - mn
		scale := rng / 255
		inv := 255 / float32(rng+1e-8)
		for j, x := range src {
			row[j] = uint8(min(255, max(0, math.RoundToEven(float64(float32(x-mn)*inv)))))
		}
		binary.LittleEndian.PutUint32(row[dim:], math.Float32bits(scale))
		binary.LittleEndian.PutUint32(row[dim+4:], math.Float32bits(mn))
	}
	return t
}

// Pack4 quantizes a rows×dim float32 matrix (dim even) to 4-bit rows as
// PyTorch's embedding_bag_4bit_prepack does (without optimized qparams):
//
//	mn = half(min of the row), mx = max of the row, rng = mx - mn
//	scale = half(rng == 0 ? 1 : rng/15); inv = 1/scale
//	if scale == 0 or inv is Inf: scale, inv = 1, 1
//	q[j] = clamp(RNE((w[j] - mn) * inv), 0, 15),  bias = mn
//
// with float32 arithmetic and half() the rounding of Float32ToFloat16.
// The weights must be finite (callers check).
func Pack4(w []float32, rows, dim int) *Table {
	checkMatrix("Pack4", w, rows, dim)
	if dim%2 != 0 {
		panic(fmt.Sprintf("embbag: Pack4: dimension %d is odd", dim))
	}
	t := &Table{Rows: rows, Dim: dim, Bits: 4, Data: make([]byte, rows*RowBytes(4, dim))}
	for r := 0; r < rows; r++ {
		src := w[r*dim : (r+1)*dim]
		row := t.Row(r)
		var mn, mx float32
		if dim > 0 {
			mn, mx = rowMinMax(src)
		}
		hmn := qdyn.Float32ToFloat16(mn)
		mn = qdyn.Float16ToFloat32(hmn)
		rng := mx - mn
		s := float32(1)
		if rng != 0 {
			s = rng / 15
		}
		hs := qdyn.Float32ToFloat16(s)
		sf := qdyn.Float16ToFloat32(hs)
		inv := float32(1)
		if sf != 0 {
			inv = 1 / sf
		}
		if sf == 0 || math.IsInf(float64(inv), 0) {
			hs, inv = qdyn.Float32ToFloat16(1), 1
		}
		for j, x := range src {
			q := uint8(min(15, max(0, math.RoundToEven(float64(float32(x-mn)*inv)))))
			row[j/2] |= q << (4 * (j % 2))
		}
		binary.LittleEndian.PutUint16(row[dim/2:], hs)
		binary.LittleEndian.PutUint16(row[dim/2+2:], hmn)
	}
	return t
}

func checkMatrix(op string, w []float32, rows, dim int) {
	if rows < 0 || dim < 0 || len(w) < rows*dim {
		panic(fmt.Sprintf("embbag: %s: %d weights for %dx%d", op, len(w), rows, dim))
	}
}

// rowMinMax is std::min_element and std::max_element of a non-empty row.
func rowMinMax(x []float32) (mn, mx float32) {
	mn, mx = x[0], x[0]
	for _, v := range x[1:] {
		if v < mn {
			mn = v
		}
		if mx < v {
			mx = v
		}
	}
	return mn, mx
}

// Dequantize writes the values of row r into dst[:Dim], each the value a
// one-index bag produces: float32(float64(s)*float64(q) + float64(0 + b)).
func (t *Table) Dequantize(r int, dst []float32) {
	dst = dst[:t.Dim]
	for j := range dst {
		dst[j] = 0
	}
	s, b := t.ScaleBias(r)
	pick().acc(t, r, s, b, dst)
}
