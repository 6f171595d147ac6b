package tensor

import "fmt"

// DType is a tensor's element type. The zero value is Float32.
type DType uint8

const (
	// Float32 is IEEE single precision, the default.
	Float32 DType = iota
	// Int8 is a signed byte.
	Int8
	// Uint8 is an unsigned byte.
	Uint8
	// Int32 is a 32-bit signed integer.
	Int32
	// Int64 is a 64-bit signed integer (indices, shapes).
	Int64
	// Bool is a boolean.
	Bool
	// QInt8 is a quantized signed 8-bit tensor: int8 storage plus QParams.
	QInt8
	// QUInt8 is a quantized unsigned 8-bit tensor: uint8 storage plus QParams.
	QUInt8
	// QInt32 is a quantized 32-bit tensor (e.g. biases): int32 storage plus QParams.
	QInt32
)

var dtypeNames = [...]string{"float32", "int8", "uint8", "int32", "int64", "bool", "qint8", "quint8", "qint32"}

// String returns PyTorch's name for the dtype ("float32", "quint8", ...).
func (d DType) String() string {
	if int(d) < len(dtypeNames) {
		return dtypeNames[d]
	}
	return fmt.Sprintf("DType(%d)", int(d))
}

// ParseDType returns the dtype named s, as printed by String.
func ParseDType(s string) (DType, error) {
	for i, n := range dtypeNames {
		if n == s {
			return DType(i), nil
		}
	}
	return 0, fmt.Errorf("tensor: unknown dtype %q", s)
}

// IsQuantized reports whether d is qint8, quint8 or qint32.
func (d DType) IsQuantized() bool { return d == QInt8 || d == QUInt8 || d == QInt32 }

// IsFloat reports whether d is a floating-point dtype.
func (d DType) IsFloat() bool { return d == Float32 }

// Size is the number of bytes one element occupies.
func (d DType) Size() int {
	switch d {
	case Float32, Int32, QInt32:
		return 4
	case Int64:
		return 8
	default:
		return 1
	}
}

// Storage returns the dtype whose slice holds d's elements: QInt8 is stored
// as Int8, QUInt8 as Uint8, QInt32 as Int32; other dtypes are their own.
func (d DType) Storage() DType {
	switch d {
	case QInt8:
		return Int8
	case QUInt8:
		return Uint8
	case QInt32:
		return Int32
	}
	return d
}

// QScheme is a quantization scheme, named as in PyTorch (torch.qscheme).
type QScheme uint8

const (
	// PerTensorAffine has one scale and zero point for the whole tensor.
	PerTensorAffine QScheme = iota
	// PerTensorSymmetric is per-tensor with a symmetric range (zero point fixed).
	PerTensorSymmetric
	// PerChannelAffine has one scale and zero point per index of Axis.
	PerChannelAffine
	// PerChannelSymmetric is per-channel with symmetric ranges.
	PerChannelSymmetric
	// PerChannelAffineFloatQParams is per-channel with float zero points
	// (x = (q - zp) * scale with zp a float), used for embedding weights.
	PerChannelAffineFloatQParams
)

var qschemeNames = [...]string{"per_tensor_affine", "per_tensor_symmetric", "per_channel_affine", "per_channel_symmetric", "per_channel_affine_float_qparams"}

// String returns PyTorch's name for the scheme ("per_tensor_affine", ...).
func (s QScheme) String() string {
	if int(s) < len(qschemeNames) {
		return qschemeNames[s]
	}
	return fmt.Sprintf("QScheme(%d)", int(s))
}

// PerChannel reports whether the scheme has one set of qparams per channel.
func (s QScheme) PerChannel() bool { return s >= PerChannelAffine }

// QParams are the quantization parameters of a quantized tensor. For a
// per-tensor scheme Scale and ZeroPoint have one element; for a per-channel
// scheme they have one element per index of Axis. ZeroPointF holds float zero
// points for PerChannelAffineFloatQParams (ZeroPoint is then unused).
type QParams struct {
	Scheme     QScheme
	Scale      []float32
	ZeroPoint  []int32
	ZeroPointF []float32
	Axis       int
	// QuantMin and QuantMax are the integer range the values were
	// quantized to (e.g. 0..255 for quint8, or 0..127 with reduce_range).
	QuantMin, QuantMax int32
}

// PerTensor returns per-tensor affine qparams.
func PerTensor(scale float32, zeroPoint int32) *QParams {
	return &QParams{Scheme: PerTensorAffine, Scale: []float32{scale}, ZeroPoint: []int32{zeroPoint}}
}

// Clone returns a deep copy of q (nil for nil).
func (q *QParams) Clone() *QParams {
	if q == nil {
		return nil
	}
	c := *q
	c.Scale = append([]float32(nil), q.Scale...)
	c.ZeroPoint = append([]int32(nil), q.ZeroPoint...)
	c.ZeroPointF = append([]float32(nil), q.ZeroPointF...)
	return &c
}
