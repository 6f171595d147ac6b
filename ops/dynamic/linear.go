// Package dynamic holds quanta's dynamic and weight-only quantized ops:
//
//   - dynamic Linear: int8 weights packed once, activations quantized to
//     uint8 on every call from that call's min and max (ONNX's
//     DynamicQuantizeLinear rule or PyTorch's ChooseQuantizationParams),
//     an int8 GEMM with int32 accumulation, and float32 output
//     float32(acc)*(s_a*s_w[c]) + bias[c]. LinearInto and LinearRows write
//     into caller storage, for the per-time-step gate products of LSTM and
//     GRU cells;
//   - fp16-weight Linear: weights rounded to IEEE half, float32 compute;
//   - weight-only Embedding and EmbeddingBag on 8-bit and 4-bit rows with
//     a float scale and bias per row (PyTorch's float_qparams scheme and
//     byte layout).
//
// Functions return errors for bad input (shapes, dtypes, indices, and NaN
// or ±Inf activations, which have no quantization parameters), naming the
// op. Results do not depend on the thread count.
package dynamic

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/internal/kernels/qdyn"
	"github.com/quanta-go/quanta/internal/kernels/qgemm"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/tensor"
)

// Rule selects how each call chooses its activations' uint8 quantization
// parameters from their min and max (both extended to include 0).
type Rule uint8

const (
	// RuleONNX is ONNX's DynamicQuantizeLinear as ONNX Runtime computes
	// it: scale = (max-min)/255, zero point saturate(RNE(-min/scale)) in
	// float32; an all-zero input gets scale 1, zero point 0.
	RuleONNX Rule = iota
	// RuleTorch is PyTorch's ChooseQuantizationParams over 0..255 (scale
	// floors, zero point from the min- or max-anchored candidate with the
	// smaller error), the rule of the qnnpack and onednn presets.
	RuleTorch
	// RuleTorchReduceRange is ChooseQuantizationParams with reduce_range:
	// codes 0..127, the rule of the x86/fbgemm preset.
	RuleTorchReduceRange
)

// String returns the rule's name.
func (r Rule) String() string {
	switch r {
	case RuleONNX:
		return "onnx"
	case RuleTorch:
		return "torch"
	case RuleTorchReduceRange:
		return "torch-reduce-range"
	}
	return fmt.Sprintf("Rule(%d)", int(r))
}

func (r Rule) kernel(op string) (qdyn.Rule, error) {
	switch r {
	case RuleONNX:
		return qdyn.ONNX, nil
	case RuleTorch:
		return qdyn.Torch, nil
	case RuleTorchReduceRange:
		return qdyn.TorchReduceRange, nil
	}
	return 0, fmt.Errorf("dynamic.%s: unknown activation rule %d", op, int(r))
}

// WeightScheme is how PackLinear quantizes float weights to qint8.
type WeightScheme uint8

const (
	// PerTensor mirrors PyTorch's default dynamic qconfig weight observer
	// (MinMaxObserver, qint8, per_tensor_symmetric): one scale
	// max(-min(w, 0), max(w, 0)) / 127.5, floored at float32 epsilon,
	// zero point 0.
	PerTensor WeightScheme = iota
	// PerChannel mirrors per_channel_dynamic_qconfig's observer
	// (PerChannelMinMaxObserver, qint8, per_channel_symmetric, axis 0):
	// the same formula for each output channel.
	PerChannel
)

// String returns the scheme's name.
func (s WeightScheme) String() string {
	switch s {
	case PerTensor:
		return "per-tensor"
	case PerChannel:
		return "per-channel"
	}
	return fmt.Sprintf("WeightScheme(%d)", int(s))
}

// PackedLinear is a dynamic Linear layer's int8 weights [out, in] with
// their scales and zero points, prepacked for the int8 GEMM, and its float
// bias. It is read-only once built and safe for concurrent calls.
type PackedLinear struct {
	in, out int
	qw      *tensor.Tensor // qint8 [out, in]
	scales  []float32      // 1 or out
	bias    []float32      // nil or out
	packed  *qgemm.Packed
}

// float32 epsilon, the floor of observer scales (torch.finfo.eps).
const eps32 = float32(1.1920929e-07)

// symmetricScale is MinMaxObserver's qint8 symmetric scale for data in
// [lo, hi], in float32 like PyTorch's tensor arithmetic.
func symmetricScale(lo, hi float32) float32 {
	a := max(-min(lo, 0), max(hi, 0))
	return max(a/127.5, eps32)
}

// PackLinear quantizes float32 weights w [out, in] to qint8 as PyTorch's
// quantize_dynamic does by default (scheme PerTensor) or with
// per_channel_dynamic_qconfig (PerChannel) and prepacks them with the
// float32 bias (nil or [out]). The codes are PyTorch's,
// saturate(RNE(w * float32(1/scale))) in -128..127, so the int8 weights
// equal those of a PyTorch-converted module exactly. Weights must be
// finite.
func PackLinear(w, bias *tensor.Tensor, scheme WeightScheme) (*PackedLinear, error) {
	const op = "PackLinear"
	if w == nil || w.DType() != tensor.Float32 || w.NDim() != 2 {
		return nil, fmt.Errorf("dynamic.%s: weight must be a 2-D float32 tensor [out, in], got %v", op, describe(w))
	}
	out, in := w.Dim(0), w.Dim(1)
	wv := w.F32()
	lo, hi, nan := qdyn.MinMax(wv)
	if nan || (len(wv) > 0 && (isInf(lo) || isInf(hi))) {
		return nil, fmt.Errorf("dynamic.%s: weight %v holds NaN or ±Inf", op, w.Shape())
	}
	codes := make([]int8, len(wv))
	var scales []float32
	quant := func(dst []int8, src []float32, s float32) {
		inv := float32(1) / s
		for i, x := range src {
			dst[i] = int8(qmath.QuantizeMulInv(x, inv, 0, -128, 127))
		}
	}
	switch scheme {
	case PerTensor:
		s := symmetricScale(lo, hi)
		if len(wv) == 0 {
			s = 1 // PyTorch's uninitialised observer gives (1.0, 0)
		}
		scales = []float32{s}
		quant(codes, wv, s)
	case PerChannel:
		scales = make([]float32, out)
		for c := range scales {
			row := wv[c*in : (c+1)*in]
			l, h, _ := qdyn.MinMax(row)
			scales[c] = 1
			if in > 0 {
				scales[c] = symmetricScale(l, h)
			}
			quant(codes[c*in:(c+1)*in], row, scales[c])
		}
	default:
		return nil, fmt.Errorf("dynamic.%s: unknown weight scheme %d", op, int(scheme))
	}
	q := &tensor.QParams{Scheme: tensor.PerTensorAffine, Scale: scales, ZeroPoint: []int32{0}, QuantMin: -128, QuantMax: 127}
	if scheme == PerChannel {
		q.Scheme = tensor.PerChannelAffine
		q.ZeroPoint = make([]int32, out)
	}
	return PackLinearQuantized(tensor.NewQuantized(tensor.QInt8, codes, q, out, in), bias)
}

// PackLinearQuantized prepacks already quantized weights: qw is a qint8
// tensor [out, in], per tensor or per channel along axis 0 (any zero
// points in -128..127); bias is nil or float32 [out]. qw's storage is
// kept, not copied: do not modify it afterwards.
func PackLinearQuantized(qw, bias *tensor.Tensor) (*PackedLinear, error) {
	const op = "PackLinearQuantized"
	if qw == nil || qw.DType() != tensor.QInt8 || qw.NDim() != 2 || qw.QParams() == nil {
		return nil, fmt.Errorf("dynamic.%s: weight must be a 2-D qint8 tensor with qparams, got %v", op, describe(qw))
	}
	out, in := qw.Dim(0), qw.Dim(1)
	qp := qw.QParams()
	nq := 1
	if qp.Scheme.PerChannel() {
		if qp.Axis != 0 || qp.Scheme == tensor.PerChannelAffineFloatQParams {
			return nil, fmt.Errorf("dynamic.%s: per-channel weights must be quantized along axis 0 with integer zero points (got %v, axis %d)", op, qp.Scheme, qp.Axis)
		}
		nq = out
	}
	if len(qp.Scale) != nq || len(qp.ZeroPoint) != nq {
		return nil, fmt.Errorf("dynamic.%s: %d scales and %d zero points for %v weights %v", op, len(qp.Scale), len(qp.ZeroPoint), qp.Scheme, qw.Shape())
	}
	for i, s := range qp.Scale {
		if !(s > 0) || isInf(s) {
			return nil, fmt.Errorf("dynamic.%s: weight scale %d is %v, want finite and positive", op, i, s)
		}
		if z := qp.ZeroPoint[i]; z < -128 || z > 127 {
			return nil, fmt.Errorf("dynamic.%s: weight zero point %d is %d, outside -128..127", op, i, z)
		}
	}
	var bv []float32
	if bias != nil {
		if bias.DType() != tensor.Float32 || bias.NDim() != 1 || bias.Dim(0) != out {
			return nil, fmt.Errorf("dynamic.%s: bias must be float32 [%d], got %v", op, out, describe(bias))
		}
		bv = append([]float32(nil), bias.F32()...)
	}
	return &PackedLinear{
		in: in, out: out, qw: qw,
		scales: append([]float32(nil), qp.Scale...),
		bias:   bv,
		packed: qgemm.Pack(out, in, qw.I8(), in, qp.ZeroPoint),
	}, nil
}

// InFeatures returns the input width.
func (p *PackedLinear) InFeatures() int { return p.in }

// OutFeatures returns the output width.
func (p *PackedLinear) OutFeatures() int { return p.out }

// Weight returns the qint8 weight tensor [out, in] (shared: read only).
func (p *PackedLinear) Weight() *tensor.Tensor { return p.qw }

// Bias returns a copy of the float32 bias, or nil.
func (p *PackedLinear) Bias() *tensor.Tensor {
	if p.bias == nil {
		return nil
	}
	return tensor.FromFloat32(append([]float32(nil), p.bias...), p.out)
}

// Linear computes the dynamic quantized linear layer on x [..., in]:
// activation qparams from x's min and max under rule, uint8 codes
// saturate(RNE(x/scale) + zp), int32 accumulation against the int8
// weights, and the float32 output [..., out]
//
//	y = float32(acc) * float32(s_a * s_w[c]) + bias[c]
//
// (torch.ao.nn.quantized.dynamic.Linear; ONNX DynamicQuantizeLinear +
// MatMulInteger + scale + Add). A NaN or ±Inf in x is an error.
func Linear(x *tensor.Tensor, w *PackedLinear, rule Rule) (*tensor.Tensor, error) {
	const op = "Linear"
	if err := checkInput(op, x, w); err != nil {
		return nil, err
	}
	shape := append(append([]int(nil), x.Shape()[:x.NDim()-1]...), w.out)
	y := tensor.New(tensor.Float32, shape...)
	m := x.Numel() / max(w.in, 1)
	if w.in == 0 {
		m = y.Numel() / max(w.out, 1)
	}
	if err := linearRows(op, m, x.F32(), w.in, w, rule, y.F32(), w.out); err != nil {
		return nil, err
	}
	return y, nil
}

// LinearInto is Linear writing into y, a float32 tensor of exactly the
// output shape [..., out]; steady-state calls allocate no tensor or
// activation storage. On error y is left unchanged.
func LinearInto(y, x *tensor.Tensor, w *PackedLinear, rule Rule) error {
	const op = "LinearInto"
	if err := checkInput(op, x, w); err != nil {
		return err
	}
	if y == nil || y.DType() != tensor.Float32 || y.NDim() != x.NDim() || y.Dim(-1) != w.out || !tensor.SameShape(y.Shape()[:y.NDim()-1], x.Shape()[:x.NDim()-1]) {
		return fmt.Errorf("dynamic.%s: output %v does not fit input %v and %d output features", op, describe(y), x.Shape(), w.out)
	}
	m := y.Numel() / max(w.out, 1)
	return linearRows(op, m, x.F32(), w.in, w, rule, y.F32(), w.out)
}

// LinearRows is Linear on float32 slices: x holds m rows of InFeatures
// values at row stride ldx (>= InFeatures), y receives m rows of
// OutFeatures values at row stride ldy (>= OutFeatures); the gaps between
// rows are neither read nor written. The activation qparams come from all
// m rows together. It suits per-time-step products inside sequence
// buffers (an LSTM's x_t of a [batch, time, in] input has stride
// time*in). To reproduce PyTorch's dynamic LSTM and GRU on CPU, project
// the whole input sequence with one call (one set of activation qparams
// for all time*batch rows) and the hidden state with one call per step.
func LinearRows(m int, x []float32, ldx int, w *PackedLinear, rule Rule, y []float32, ldy int) error {
	const op = "LinearRows"
	if w == nil {
		return fmt.Errorf("dynamic.%s: nil weights", op)
	}
	if m < 0 || ldx < w.in || ldy < w.out {
		return fmt.Errorf("dynamic.%s: %d rows with strides %d, %d for %d inputs and %d outputs", op, m, ldx, ldy, w.in, w.out)
	}
	if m > 0 && (len(x) < (m-1)*ldx+w.in || len(y) < (m-1)*ldy+w.out) {
		return fmt.Errorf("dynamic.%s: %d inputs and %d outputs are too short for %d rows with strides %d, %d", op, len(x), len(y), m, ldx, ldy)
	}
	return linearRows(op, m, x, ldx, w, rule, y, ldy)
}

func linearRows(op string, m int, x []float32, ldx int, w *PackedLinear, rule Rule, y []float32, ldy int) error {
	kr, err := rule.kernel(op)
	if err != nil {
		return err
	}
	if _, ok := qdyn.Linear(kr, m, x, ldx, w.packed, w.scales, w.bias, y, ldy); !ok {
		return fmt.Errorf("dynamic.%s: input holds NaN or ±Inf, which have no quantization parameters", op)
	}
	return nil
}

func checkInput(op string, x *tensor.Tensor, w *PackedLinear) error {
	if w == nil {
		return fmt.Errorf("dynamic.%s: nil weights", op)
	}
	if x == nil || x.DType() != tensor.Float32 || x.NDim() < 1 || x.Dim(-1) != w.in {
		return fmt.Errorf("dynamic.%s: input must be float32 [..., %d], got %v", op, w.in, describe(x))
	}
	return nil
}

// ChooseQParams returns the per-tensor quint8 qparams rule gives x (for
// the x86 preset's reduce_range, QuantMax is 127), as
// torch._choose_qparams_per_tensor and ONNX DynamicQuantizeLinear compute
// them. A NaN or ±Inf in x is an error; an empty x counts as [0, 0].
func ChooseQParams(x *tensor.Tensor, rule Rule) (*tensor.QParams, error) {
	const op = "ChooseQParams"
	kr, err := rule.kernel(op)
	if err != nil {
		return nil, err
	}
	if x == nil || x.DType() != tensor.Float32 {
		return nil, fmt.Errorf("dynamic.%s: input must be float32, got %v", op, describe(x))
	}
	p, ok := qdyn.ScanActivations(kr, 1, x.Numel(), x.F32(), x.Numel())
	if !ok {
		return nil, fmt.Errorf("dynamic.%s: input holds NaN or ±Inf, which have no quantization parameters", op)
	}
	return &tensor.QParams{Scheme: tensor.PerTensorAffine, Scale: []float32{p.Scale}, ZeroPoint: []int32{p.ZeroPoint}, QuantMin: p.QMin, QuantMax: p.QMax}, nil
}

// QuantizeDynamic quantizes x to quint8 with the qparams ChooseQParams
// gives it (ONNX DynamicQuantizeLinear's y, y_scale and y_zero_point;
// torch.quantize_per_tensor_dynamic). Codes are
// saturate(RNE(x/scale) + zp) in float32, as everywhere in quanta.
func QuantizeDynamic(x *tensor.Tensor, rule Rule) (*tensor.Tensor, error) {
	q, err := ChooseQParams(x, rule)
	if err != nil {
		return nil, fmt.Errorf("dynamic.QuantizeDynamic: %w", err)
	}
	codes := make([]uint8, x.Numel())
	qdyn.Quantize(codes, x.F32(), q.Scale[0], q.ZeroPoint[0], q.QuantMin, q.QuantMax)
	return tensor.NewQuantized(tensor.QUInt8, codes, q, x.Shape()...), nil
}

func isInf(f float32) bool { return math.IsInf(float64(f), 0) }

// describe names a tensor's dtype and shape for error messages.
func describe(t *tensor.Tensor) string {
	if t == nil {
		return "nil"
	}
	return fmt.Sprintf("%v%v", t.DType(), t.Shape())
}
