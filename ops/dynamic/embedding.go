package dynamic

import (
	"fmt"

	"github.com/quanta-go/quanta/internal/kernels/embbag"
	"github.com/quanta-go/quanta/internal/kernels/qdyn"
	"github.com/quanta-go/quanta/tensor"
)

// PackedEmbedding is a weight-only quantized embedding table: each row's
// values as 8-bit or 4-bit (quint4x2) codes with a float scale and bias
// (per_channel_affine_float_qparams), in PyTorch's fused byte layout
// (embedding_bag_byte_prepack: codes then float32 scale and bias;
// embedding_bag_4bit_prepack: two codes per byte, low nibble first, then
// half scale and bias). A code q stands for scale*q + bias. It is
// read-only once built and safe for concurrent lookups.
type PackedEmbedding struct {
	t *embbag.Table
}

// PackEmbedding quantizes a float32 table w [num_embeddings, dim] to rows
// of bits 8 or 4 as PyTorch's embedding_bag_byte_prepack and
// embedding_bag_4bit_prepack do (rowwise min and max, not extended to 0;
// 4-bit tables need an even dim). The weights must be finite.
func PackEmbedding(w *tensor.Tensor, bits int) (*PackedEmbedding, error) {
	const op = "PackEmbedding"
	if w == nil || w.DType() != tensor.Float32 || w.NDim() != 2 {
		return nil, fmt.Errorf("dynamic.%s: weight must be a 2-D float32 tensor [num_embeddings, dim], got %v", op, describe(w))
	}
	rows, dim := w.Dim(0), w.Dim(1)
	if bits != 8 && bits != 4 {
		return nil, fmt.Errorf("dynamic.%s: %d-bit rows are not supported (want 8 or 4)", op, bits)
	}
	if bits == 4 && dim%2 != 0 {
		return nil, fmt.Errorf("dynamic.%s: 4-bit rows need an even dim, got %d", op, dim)
	}
	wv := w.F32()
	if _, _, nan := qdyn.MinMax(wv); nan {
		return nil, fmt.Errorf("dynamic.%s: weight %v holds NaN", op, w.Shape())
	}
	for i, x := range wv {
		if isInf(x) {
			return nil, fmt.Errorf("dynamic.%s: weight %v holds ±Inf at row %d", op, w.Shape(), i/dim)
		}
	}
	if bits == 4 {
		return &PackedEmbedding{embbag.Pack4(wv, rows, dim)}, nil
	}
	return &PackedEmbedding{embbag.Pack8(wv, rows, dim)}, nil
}

// LoadPackedEmbedding wraps a table already packed in PyTorch's layout
// (the uint8 tensor embedding_bag_byte_prepack or
// embedding_bag_4bit_prepack returns, flattened): rows rows of dim values
// of bits 8 or 4. data is copied.
func LoadPackedEmbedding(data []byte, rows, dim, bits int) (*PackedEmbedding, error) {
	t := &embbag.Table{Rows: rows, Dim: dim, Bits: bits, Data: append([]byte(nil), data...)}
	if err := t.Check(); err != nil {
		return nil, fmt.Errorf("dynamic.LoadPackedEmbedding: %w", err)
	}
	return &PackedEmbedding{t}, nil
}

// NumEmbeddings returns the number of rows.
func (e *PackedEmbedding) NumEmbeddings() int { return e.t.Rows }

// Dim returns the row width.
func (e *PackedEmbedding) Dim() int { return e.t.Dim }

// Bits returns 8 or 4.
func (e *PackedEmbedding) Bits() int { return e.t.Bits }

// Bytes returns the fused rows in PyTorch's layout (shared: read only).
func (e *PackedEmbedding) Bytes() []byte { return e.t.Data }

// Dequantize returns the table's values [num_embeddings, dim], each as a
// lookup returns it.
func (e *PackedEmbedding) Dequantize() *tensor.Tensor {
	out := make([]float32, e.t.Rows*e.t.Dim)
	for r := 0; r < e.t.Rows; r++ {
		e.t.Dequantize(r, out[r*e.t.Dim:])
	}
	return tensor.FromFloat32(out, e.t.Rows, e.t.Dim)
}

// BagMode is how EmbeddingBag reduces a bag.
type BagMode uint8

const (
	// BagSum adds the bag's rows (per-sample weights allowed). The sum
	// reproduces PyTorch's quantized embedding_bag kernels bit for bit.
	BagSum BagMode = iota
	// BagMean divides the sum by the bag's size.
	BagMean
	// BagMax takes the elementwise maximum (the first on ties).
	BagMax
)

// String returns PyTorch's name of the mode.
func (m BagMode) String() string {
	switch m {
	case BagSum:
		return "sum"
	case BagMean:
		return "mean"
	case BagMax:
		return "max"
	}
	return fmt.Sprintf("BagMode(%d)", int(m))
}

// BagOptions are EmbeddingBag's optional arguments. The zero value sums
// fixed-length bags given as rows of a 2-D index tensor.
type BagOptions struct {
	// Mode is the reduction.
	Mode BagMode
	// Offsets, for a 1-D index tensor, is a 1-D tensor of the same integer
	// dtype holding each bag's start: non-decreasing, offsets[0] == 0,
	// bag b running to offsets[b+1] (the last to the end of the indices).
	// It must be nil for a 2-D index tensor [bags, length].
	Offsets *tensor.Tensor
	// IncludeLastOffset means Offsets has one more entry, the end of the
	// last bag (PyTorch's include_last_offset).
	IncludeLastOffset bool
	// PerSampleWeights, if not nil, is a float32 tensor shaped like the
	// indices; each row's scale and bias are multiplied by its weight
	// (BagSum only).
	PerSampleWeights *tensor.Tensor
}

// Embedding looks up rows of the packed table for int64 or int32 indices
// idx of any shape, returning idx.Shape()+[dim] float32 values (PyTorch's
// quantized Embedding: value scale*q + bias, computed as a bag of one).
// An index outside [0, num_embeddings) is an error.
func Embedding(idx *tensor.Tensor, e *PackedEmbedding) (*tensor.Tensor, error) {
	const op = "Embedding"
	if e == nil {
		return nil, fmt.Errorf("dynamic.%s: nil table", op)
	}
	if err := checkIndices(op, "indices", idx, e.t.Rows); err != nil {
		return nil, err
	}
	y := tensor.New(tensor.Float32, append(append([]int(nil), idx.Shape()...), e.t.Dim)...)
	if idx.DType() == tensor.Int64 {
		embbag.Lookup(e.t, idx.I64(), y.F32())
	} else {
		embbag.Lookup(e.t, idx.I32(), y.F32())
	}
	return y, nil
}

// EmbeddingBag reduces bags of rows of the packed table, as
// torch.ao.nn.quantized.EmbeddingBag and the quantized
// embedding_bag_{byte,4bit}_rowwise_offsets ops (which implement sum; mean
// and max are quanta's, on the same row values). idx is a 1-D int64 or
// int32 tensor with opt.Offsets, or 2-D [bags, length] without. The result
// is [bags, dim]; an empty bag gives zeros.
func EmbeddingBag(idx *tensor.Tensor, e *PackedEmbedding, opt BagOptions) (*tensor.Tensor, error) {
	const op = "EmbeddingBag"
	if e == nil {
		return nil, fmt.Errorf("dynamic.%s: nil table", op)
	}
	if opt.Mode > BagMax {
		return nil, fmt.Errorf("dynamic.%s: unknown mode %d", op, int(opt.Mode))
	}
	if err := checkIndices(op, "indices", idx, e.t.Rows); err != nil {
		return nil, err
	}
	var weights []float32
	if w := opt.PerSampleWeights; w != nil {
		if opt.Mode != BagSum {
			return nil, fmt.Errorf("dynamic.%s: per-sample weights need mode sum, got %v", op, opt.Mode)
		}
		if w.DType() != tensor.Float32 || !tensor.SameShape(w.Shape(), idx.Shape()) {
			return nil, fmt.Errorf("dynamic.%s: per-sample weights %v must be float32 shaped like the indices %v", op, describe(w), idx.Shape())
		}
		weights = w.F32()
	}
	n := idx.Numel()
	switch {
	case idx.NDim() == 2 && opt.Offsets == nil:
		bags, l := idx.Dim(0), idx.Dim(1)
		if idx.DType() == tensor.Int64 {
			off := make([]int64, bags)
			for b := range off {
				off[b] = int64(b * l)
			}
			return runBag(e, opt.Mode, idx.I64(), off, n, weights), nil
		}
		off := make([]int32, bags)
		for b := range off {
			off[b] = int32(b * l)
		}
		return runBag(e, opt.Mode, idx.I32(), off, n, weights), nil
	case idx.NDim() == 1 && opt.Offsets != nil:
	default:
		return nil, fmt.Errorf("dynamic.%s: want 2-D indices without offsets or 1-D indices with offsets, got indices %v and offsets %v", op, idx.Shape(), describe(opt.Offsets))
	}
	off := opt.Offsets
	if off.NDim() != 1 || off.DType() != idx.DType() {
		return nil, fmt.Errorf("dynamic.%s: offsets %v must be 1-D with the indices' dtype %v", op, describe(off), idx.DType())
	}
	vals := make([]int64, off.Numel())
	if off.DType() == tensor.Int64 {
		copy(vals, off.I64())
	} else {
		for i, v := range off.I32() {
			vals[i] = int64(v)
		}
	}
	end := int64(n)
	bags := len(vals)
	if opt.IncludeLastOffset {
		if bags == 0 {
			return nil, fmt.Errorf("dynamic.%s: include_last_offset needs at least one offset", op)
		}
		bags--
		end = vals[bags]
	}
	if bags > 0 && vals[0] != 0 {
		return nil, fmt.Errorf("dynamic.%s: offsets[0] is %d, must be 0", op, vals[0])
	}
	for i, v := range vals {
		if v < 0 || v > int64(n) || (i > 0 && v < vals[i-1]) {
			return nil, fmt.Errorf("dynamic.%s: offsets must be non-decreasing within [0, %d], got %d at %d", op, n, v, i)
		}
	}
	if off.DType() == tensor.Int64 {
		return runBag(e, opt.Mode, idx.I64(), off.I64()[:bags], int(end), weights), nil
	}
	return runBag(e, opt.Mode, idx.I32(), off.I32()[:bags], int(end), weights), nil
}

func runBag[I embbag.Index](e *PackedEmbedding, mode BagMode, idx, offsets []I, end int, weights []float32) *tensor.Tensor {
	y := tensor.New(tensor.Float32, len(offsets), e.t.Dim)
	embbag.Bag(e.t, embbag.Mode(mode), idx, offsets, end, weights, y.F32())
	return y
}

// checkIndices checks an int64 or int32 index tensor against [0, rows).
func checkIndices(op, name string, t *tensor.Tensor, rows int) error {
	if t == nil {
		return fmt.Errorf("dynamic.%s: %s are nil", op, name)
	}
	bad := func(i int, v int64) error {
		return fmt.Errorf("dynamic.%s: %s[%d] = %d is outside [0, %d)", op, name, i, v, rows)
	}
	switch t.DType() {
	case tensor.Int64:
		for i, v := range t.I64() {
			if v < 0 || v >= int64(rows) {
				return bad(i, v)
			}
		}
	case tensor.Int32:
		for i, v := range t.I32() {
			if v < 0 || int64(v) >= int64(rows) {
				return bad(i, int64(v))
			}
		}
	default:
		return fmt.Errorf("dynamic.%s: %s must be int64 or int32, got %v", op, name, t.DType())
	}
	return nil
}
