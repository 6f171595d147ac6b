package quantized

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/quanta-go/quanta/internal/kernels/qdyn"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops/dynamic"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

// EmbeddingWeight is the state the weight-only quantized Embedding and
// EmbeddingBag share: the quantized table and the rows packed for lookups.
//
// Weight is a quint8 tensor [num_embeddings, dim] holding one code per
// element, 0..255 for 8-bit tables and 0..15 for 4-bit (quint4x2) ones,
// with per_channel_affine_float_qparams qparams along axis 0: a float
// scale and a float zero point per row, QuantMin 0 and QuantMax 255 or 15
// (QuantMax tells the width). The qparams travel with the tensor, so
// nn.StateDict and nn.LoadStateDict save and restore the table; loading
// repacks it (nn.StateLoader). PyTorch keeps 4-bit codes two to a byte in
// its quint4x2 tensors; quanta's state keeps them one to a byte and packs
// them for lookups.
//
// Lookups use PyTorch's prepacked rows (embedding_bag_prepack on a
// quantized weight): per row, the codes with scale s and bias
// b = -(zero_point*s) rounded to float32 (8-bit rows keep s and b as
// float32, 4-bit rows as IEEE halves, as PyTorch does), a code q standing
// for s*q + b (see ops/dynamic.PackedEmbedding).
type EmbeddingWeight struct {
	// Weight is the quantized table described above.
	Weight *tensor.Tensor `nn:"weight,buffer"`

	mu     sync.Mutex
	packed *dynamic.PackedEmbedding
}

// Bits returns the table's code width, 8 or 4.
func (e *EmbeddingWeight) Bits() int {
	if q := e.Weight.QParams(); q != nil && q.QuantMax == 15 {
		return 4
	}
	return 8
}

// Packed returns the packed rows lookups use (read only).
func (e *EmbeddingWeight) Packed() *dynamic.PackedEmbedding {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.packed
}

// AfterLoadStateDict checks the loaded table and its qparams and repacks
// it.
func (e *EmbeddingWeight) AfterLoadStateDict() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	pk, err := packEmbedding("loaded state", e.Weight)
	if err != nil {
		return err
	}
	e.packed = pk
	return nil
}

func (e *EmbeddingWeight) init(op string, w *tensor.Tensor) error {
	if w == nil {
		return fmt.Errorf("quantized: %s: nil weight", op)
	}
	c := w.Clone()
	c.SetQParams(w.QParams().Clone())
	pk, err := packEmbedding(op, c)
	if err != nil {
		return err
	}
	e.Weight, e.packed = c, pk
	return nil
}

// packEmbedding validates a quantized embedding table and packs its rows
// as PyTorch's embedding_bag_prepack does for a quantized weight.
func packEmbedding(op string, w *tensor.Tensor) (*dynamic.PackedEmbedding, error) {
	if w.DType() != tensor.QUInt8 || w.NDim() != 2 {
		return nil, fmt.Errorf("quantized: %s: weight must be a quint8 [num_embeddings, dim] table, got %v%v", op, w.DType(), w.Shape())
	}
	rows, dim := w.Dim(0), w.Dim(1)
	q := w.QParams()
	if q == nil || q.Scheme != tensor.PerChannelAffineFloatQParams || q.Axis != 0 || len(q.Scale) != rows || len(q.ZeroPointF) != rows {
		return nil, fmt.Errorf("quantized: %s: weight needs per_channel_affine_float_qparams with %d scales and float zero points along axis 0", op, rows)
	}
	if q.QuantMin != 0 || (q.QuantMax != 255 && q.QuantMax != 15) {
		return nil, fmt.Errorf("quantized: %s: weight range [%d, %d], want [0, 255] (quint8) or [0, 15] (quint4x2)", op, q.QuantMin, q.QuantMax)
	}
	bits := 8
	if q.QuantMax == 15 {
		bits = 4
		if dim%2 != 0 {
			return nil, fmt.Errorf("quantized: %s: 4-bit tables need an even dim, got %d", op, dim)
		}
	}
	for r := 0; r < rows; r++ {
		s, z := q.Scale[r], q.ZeroPointF[r]
		if !(s > 0) || math.IsInf(float64(s), 0) || z != z || math.IsInf(float64(z), 0) {
			return nil, fmt.Errorf("quantized: %s: row %d has scale %v and zero point %v (want a positive finite scale and a finite zero point)", op, r, s, z)
		}
	}
	codes := w.U8()
	rb := (dim+1)/2 + 4
	if bits == 8 {
		rb = dim + 8
	}
	data := make([]byte, rows*rb)
	for r := 0; r < rows; r++ {
		src := codes[r*dim : (r+1)*dim]
		row := data[r*rb : (r+1)*rb]
		s := q.Scale[r]
		b := -float32(q.ZeroPointF[r] * s) // weight_zero_points * weight_scales * -1
		if bits == 8 {
			copy(row, src)
			binary.LittleEndian.PutUint32(row[dim:], math.Float32bits(s))
			binary.LittleEndian.PutUint32(row[dim+4:], math.Float32bits(b))
			continue
		}
		for j, c := range src {
			if c > 15 {
				return nil, fmt.Errorf("quantized: %s: code %d at row %d exceeds 15 in a 4-bit table", op, c, r)
			}
			row[j/2] |= c << (4 * (j % 2))
		}
		binary.LittleEndian.PutUint16(row[dim/2:], qdyn.Float32ToFloat16(s))
		binary.LittleEndian.PutUint16(row[dim/2+2:], qdyn.Float32ToFloat16(b))
	}
	pk, err := dynamic.LoadPackedEmbedding(data, rows, dim, bits)
	if err != nil {
		return nil, fmt.Errorf("quantized: %s: %w", op, err)
	}
	return pk, nil
}

// QuantizeEmbeddingWeight quantizes a float32 table w [num_embeddings, dim]
// row by row with the qparams obs computes after observing it (PyTorch's
// weight_post_process in Embedding.from_float). obs must use
// per_channel_affine_float_qparams along axis 0 with the quint8 range
// (quant.FloatQParamsWeightOnlyQConfig's weight observer) or the 4-bit one
// (Bits4, ...QConfig4Bit's); nil means the 8-bit one. Codes are computed as
// PyTorch's quantize_per_channel does for float zero points, in float32:
// q = clamp(RNE(x*(1/scale) + zero_point), 0, QuantMax).
func QuantizeEmbeddingWeight(w *tensor.Tensor, obs observer.Observer) (*tensor.Tensor, error) {
	const op = "QuantizeEmbeddingWeight"
	if w == nil || w.DType() != tensor.Float32 || w.NDim() != 2 {
		return nil, fmt.Errorf("quantized: %s: want a 2-D float32 weight", op)
	}
	if obs == nil {
		obs = observer.NewPerChannelMinMax(observer.Config{QScheme: tensor.PerChannelAffineFloatQParams})
	}
	cfg := obs.Config()
	if cfg.QScheme != tensor.PerChannelAffineFloatQParams || cfg.ChAxis != 0 || (cfg.Dtype != tensor.Float32 && cfg.Dtype != tensor.QUInt8) {
		return nil, fmt.Errorf("quantized: %s: the weight observer must be quint8 per_channel_affine_float_qparams along axis 0 (quant.FloatQParamsWeightOnlyQConfig), got %v %v axis %d",
			op, cfg.Dtype, cfg.QScheme, cfg.ChAxis)
	}
	if err := obs.Observe(w.Detach()); err != nil {
		return nil, fmt.Errorf("quantized: %s: %w", op, err)
	}
	q, err := obs.CalculateQParams()
	if err != nil {
		return nil, fmt.Errorf("quantized: %s: %w", op, err)
	}
	rows, dim := w.Dim(0), w.Dim(1)
	if q.Scheme != tensor.PerChannelAffineFloatQParams || q.Axis != 0 || len(q.Scale) != rows || len(q.ZeroPointF) != rows {
		return nil, fmt.Errorf("quantized: %s: the observer gave %v qparams for %d rows", op, q.Scheme, rows)
	}
	codes := make([]uint8, rows*dim)
	wv := w.F32()
	for r := 0; r < rows; r++ {
		inv := float32(1)
		if s := q.Scale[r]; s != 0 {
			inv = 1 / s
		}
		zp := q.ZeroPointF[r]
		for j, x := range wv[r*dim : (r+1)*dim] {
			v := float32(float32(x*inv) + zp)
			codes[r*dim+j] = uint8(qmath.ClampRound(v, 0, q.QuantMin, q.QuantMax))
		}
	}
	return tensor.NewQuantized(tensor.QUInt8, codes, q.Clone(), rows, dim), nil
}

// Embedding is the weight-only quantized embedding
// (torch.ao.nn.quantized.Embedding): rows of 8-bit or 4-bit codes with a
// float scale and zero point each (see EmbeddingWeight), looked up by
// int64 or int32 indices into float32 values. It has no output qparams.
type Embedding struct {
	nn.Base
	NumEmbeddings, EmbeddingDim int
	EmbeddingWeight
}

// NewEmbedding returns an Embedding holding weight, a quantized table as
// EmbeddingWeight describes (QuantizeEmbeddingWeight makes one).
func NewEmbedding(weight *tensor.Tensor) (*Embedding, error) {
	m := &Embedding{}
	if err := m.init("Embedding", weight); err != nil {
		return nil, err
	}
	m.NumEmbeddings, m.EmbeddingDim = m.Weight.Dim(0), m.Weight.Dim(1)
	return m, nil
}

// EmbeddingFromFloat quantizes a float Embedding with the weight observer
// (Embedding.from_float): see QuantizeEmbeddingWeight.
func EmbeddingFromFloat(f *nn.Embedding, weightObserver observer.Observer) (*Embedding, error) {
	if f == nil {
		return nil, fmt.Errorf("quantized: Embedding: nil float module")
	}
	w, err := QuantizeEmbeddingWeight(f.Weight, weightObserver)
	if err != nil {
		return nil, err
	}
	return NewEmbedding(w)
}

// TypeName returns "quantized.Embedding".
func (m *Embedding) TypeName() string { return "quantized.Embedding" }

// Forward returns the rows of idx (int64 or int32, any shape) as float32
// values, shape idx.Shape() + [dim]. An index outside the table panics, as
// it does for the float module.
func (m *Embedding) Forward(idx *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, idx, func(idx *tensor.Tensor) *tensor.Tensor {
		y, err := dynamic.Embedding(idx, m.Packed())
		if err != nil {
			panic(fmt.Sprintf("quantized: Embedding: %v", err))
		}
		return y
	})
}

// EmbeddingBag is the weight-only quantized embedding bag
// (torch.ao.nn.quantized.EmbeddingBag) over a table as Embedding's. Mode is
// "sum", "mean" or "max". PyTorch's quantized EmbeddingBag always sums
// (its from_float does not carry the float module's mode over, and its
// forward passes mode 0), which changes the results of a float "mean" or
// "max" bag; quanta keeps the float module's mode (a sum is bit-exact with
// PyTorch's kernels; see ops/dynamic.EmbeddingBag).
type EmbeddingBag struct {
	nn.Base
	NumEmbeddings, EmbeddingDim int
	Mode                        string
	// IncludeLastOffset means offsets carry one more entry, the end of the
	// last bag (include_last_offset).
	IncludeLastOffset bool
	EmbeddingWeight
}

var bagModes = map[string]dynamic.BagMode{"sum": dynamic.BagSum, "mean": dynamic.BagMean, "max": dynamic.BagMax}

// NewEmbeddingBag returns an EmbeddingBag holding weight (see
// NewEmbedding) that reduces with mode ("sum", "mean" or "max"; "" means
// "sum", PyTorch's quantized default).
func NewEmbeddingBag(weight *tensor.Tensor, mode string) (*EmbeddingBag, error) {
	if mode == "" {
		mode = "sum"
	}
	if _, ok := bagModes[mode]; !ok {
		return nil, fmt.Errorf("quantized: EmbeddingBag: unknown mode %q (want sum, mean or max)", mode)
	}
	m := &EmbeddingBag{Mode: mode}
	if err := m.init("EmbeddingBag", weight); err != nil {
		return nil, err
	}
	m.NumEmbeddings, m.EmbeddingDim = m.Weight.Dim(0), m.Weight.Dim(1)
	return m, nil
}

// EmbeddingBagFromFloat quantizes a float EmbeddingBag with the weight
// observer (see QuantizeEmbeddingWeight), keeping its mode.
func EmbeddingBagFromFloat(f *nn.EmbeddingBag, weightObserver observer.Observer) (*EmbeddingBag, error) {
	if f == nil {
		return nil, fmt.Errorf("quantized: EmbeddingBag: nil float module")
	}
	w, err := QuantizeEmbeddingWeight(f.Weight, weightObserver)
	if err != nil {
		return nil, err
	}
	return NewEmbeddingBag(w, f.Mode)
}

// TypeName returns "quantized.EmbeddingBag".
func (m *EmbeddingBag) TypeName() string { return "quantized.EmbeddingBag" }

// Forward reduces bags as the float nn.EmbeddingBag does: idx is [B, L]
// with nil offsets (one bag per row), or 1-D with offsets [B] (the same
// integer dtype) holding each bag's start. The result is float32 [B, dim];
// an empty bag gives zeros. Bad indices or offsets panic, as they do for
// the float module; ForwardWeighted returns them as errors.
func (m *EmbeddingBag) Forward(idx, offsets *tensor.Tensor) *tensor.Tensor {
	in := []*tensor.Tensor{idx, offsets}
	return nn.Call(m, in, func(in []*tensor.Tensor) []*tensor.Tensor {
		y, err := m.ForwardWeighted(in[0], in[1], nil)
		if err != nil {
			panic(err.Error())
		}
		return []*tensor.Tensor{y}
	})[0]
}

// ForwardWeighted is Forward with optional per-sample weights (float32,
// shaped like idx; mode "sum" only), each row's values multiplied by its
// weight (PyTorch's per_sample_weights). It does not run hooks.
func (m *EmbeddingBag) ForwardWeighted(idx, offsets, perSampleWeights *tensor.Tensor) (*tensor.Tensor, error) {
	y, err := dynamic.EmbeddingBag(idx, m.Packed(), dynamic.BagOptions{Mode: bagModes[m.Mode], Offsets: offsets,
		IncludeLastOffset: m.IncludeLastOffset, PerSampleWeights: perSampleWeights})
	if err != nil {
		return nil, fmt.Errorf("quantized: EmbeddingBag: %w", err)
	}
	return y, nil
}
