// Package observer holds quanta's observers: the modules that watch tensors
// during calibration and compute quantization parameters from what they saw,
// under the names and with the exact arithmetic of PyTorch's
// torch.ao.quantization.observer (1.13).
//
// PyTorch's observers: MinMax, MovingAverageMinMax, PerChannelMinMax,
// MovingAveragePerChannelMinMax, Histogram, Placeholder, Noop, FixedQParams
// and Recording. Their qparams equal PyTorch's bit for bit (scale as the
// same float32, the same zero points): the float32 and float64 operations
// of PyTorch's Python code and of the ATen kernels it calls are reproduced
// in order. testdata/golden_observers.json, written by
// scripts/golden_observers.py with PyTorch 1.13, holds the proof the tests
// check.
//
// Beyond PyTorch: Percentile and Entropy (ONNX Runtime's and TensorRT's
// calibrators) and MSE (the range with the least quantization error). They
// share a histogram on a power-of-two grid that merges exactly.
//
// Every observer's state can be serialized (MarshalBinary, and
// DecodeObserver for any kind) and merged (Merge), so calibration can be
// sharded across goroutines, processes or machines and combined. For
// MinMax, PerChannelMinMax, Percentile, Entropy and MSE, merging shards
// equals one observer that saw all the data, bit for bit. The moving
// averages do too with MovingAverageConfig.RecordBatches (otherwise within
// float32 rounding). Histogram merges as PyTorch combines batches, which is
// exact when the shards cover the same range.
//
// Where PyTorch 1.13 is wrong, quanta does it right; each case is
// documented where it applies:
//   - HistogramObserver bins with integer-truncated bounds and drops
//     samples, and forgets a histogram that holds one value (Histogram).
//   - The affine zero point overflows int32 for qint32 ranges whose
//     negative part dominates (quanta computes it in int64).
//   - Asking for qparams before anything was observed returns PyTorch's
//     (1.0, 0) with a warning; quanta returns ErrNotObserved.
//   - NaN or ±Inf in an observed tensor corrupts PyTorch's statistics (or
//     raises deep inside histc); quanta returns ErrNonFinite, or with
//     Config.IgnoreNonFinite skips and counts them. Either way the
//     statistics are never corrupted.
//   - PyTorch's histc counts in float32 and stops counting at 2^24 values
//     in one bin in one call; quanta counts in integers.
//
// Behaviour PyTorch merely documents wrongly is matched: a constant-zero
// tensor gets scale eps, not 1.0.
//
// Observers are not safe for concurrent use; give each goroutine its own
// and Merge them.
package observer

import (
	"encoding"

	"github.com/quanta-go/quanta/tensor"
)

// Observer records statistics of the tensors it sees and derives
// quantization parameters from them.
type Observer interface {
	// Observe records x's statistics. It returns an error when x holds NaN
	// or Inf (unless the observer was configured to ignore and count them).
	Observe(x *tensor.Tensor) error
	// CalculateQParams returns the scale and zero point(s) for what was
	// observed (PyTorch's calculate_qparams). Asking before anything was
	// observed is an error.
	CalculateQParams() (*tensor.QParams, error)
	// Config returns the observer's target dtype, scheme and range.
	Config() Config
	// Reset forgets everything observed.
	Reset()
	// Merge folds another observer's state (of the same kind and
	// configuration) into this one.
	Merge(other Observer) error
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}

// Config is the part of an observer's configuration every kind shares, with
// PyTorch's meanings. The zero value is quint8, per-tensor affine, full
// range, eps = float32 machine epsilon.
type Config struct {
	// Dtype is the quantized dtype: QUInt8, QInt8 or QInt32. The zero
	// value (Float32) means quint8 for the observers that compute qparams;
	// Placeholder and Noop pass it on as is.
	Dtype tensor.DType
	// QScheme is the quantization scheme. For the per-channel observers the
	// zero value (PerTensorAffine) means their default per_channel_affine.
	QScheme tensor.QScheme
	// ReduceRange halves the integer range (0..127 for quint8), as
	// PyTorch's fbgemm/x86 presets use for activations.
	ReduceRange bool
	// QuantMin and QuantMax override the dtype's range when HasRange
	// (PyTorch's quant_min/quant_max); the range must include 0, and
	// ReduceRange still halves it, as in PyTorch.
	QuantMin, QuantMax int32
	// HasRange says QuantMin and QuantMax are set.
	HasRange bool
	// Eps is the smallest scale; 0 means float32 machine epsilon.
	Eps float32
	// ChAxis is the channel axis of per-channel observers.
	ChAxis int
	// Bits4 marks quint4x2 (4-bit) weight-only quantization: range 0..15.
	Bits4 bool
	// IgnoreNonFinite makes Observe skip NaN and Inf values and count them
	// instead of returning an error.
	IgnoreNonFinite bool
}
