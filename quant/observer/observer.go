// Package observer holds quanta's observers: the modules that watch tensors
// during calibration and compute quantization parameters from what they saw,
// under the names and with the exact arithmetic of PyTorch's
// torch.ao.quantization.observer (1.13).
//
// Every observer's state can be serialized (MarshalBinary/UnmarshalBinary)
// and merged (Merge), so calibration can be sharded across goroutines,
// processes or machines and combined: merging the states of shards equals
// one observer that saw all the data.
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
	// Dtype is the quantized dtype: QUInt8 (default), QInt8, QInt32, or
	// Float32 for placeholder observers of unquantized values.
	Dtype tensor.DType
	// QScheme is the quantization scheme.
	QScheme tensor.QScheme
	// ReduceRange halves the integer range (0..127 for quint8), as
	// PyTorch's fbgemm/x86 presets use for activations.
	ReduceRange bool
	// QuantMin and QuantMax override the dtype's range when HasRange.
	QuantMin, QuantMax int32
	HasRange           bool
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
