// Package quantized holds quanta's statically quantized modules, after
// torch.ao.nn.quantized (and the fused torch.ao.nn.intrinsic.quantized
// modules LinearReLU, ConvReLU1d and ConvReLU2d): Quantize and DeQuantize,
// Linear, Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d, the
// normalizations, activations with their own output qparams, Dropout,
// QFunctional, the quantized form of nn.FloatFunctional, and the
// weight-only Embedding and EmbeddingBag (8- or 4-bit rows with float
// qparams, float32 output).
//
// Modules take and return quint8 tensors with per-tensor qparams (Quantize
// takes float32, DeQuantize returns it); a tensor of another dtype is a
// programmer error and panics with a "quantized: ..." message. Every module
// implements nn.Layer and runs through nn.Call1, so hooks and tracing see it.
//
// # Numerics
//
// Linear and convolutions follow DESIGN.md: int32 accumulation of
// (x - zx)(w - zw[c]) with int8 weights (per-tensor or per-channel), int32
// bias RNE(b / float32(sx*sw[c])), and requantization with
// M[c] = float32(float32(sx*sw[c])/sy); a fused ReLU is a lower bound at the
// output zero point. Bias and multipliers depend on the input scale, so they
// are recomputed per call (O(output channels)); the weights are packed once.
// This reproduces PyTorch's qnnpack engine. Other modules are the reference
// quantized model (dequantize, float op, quantize) exactly.
//
// # State
//
// Modules keep the state names of PyTorch's quantized convolutions: the
// quantized weight "weight" (qint8, its per-tensor or per-channel qparams
// saved with it), the float "bias", and the output "scale" (0-d float32)
// and "zero_point" (0-d int64), all buffers (Linear uses the same names,
// where PyTorch nests weight and bias in "_packed_params"), so nn.StateDict,
// nn.SaveFile, nn.LoadFile and nn.LoadStateDict save and restore a
// converted model without recalibration; loading repacks the weights
// (nn.StateLoader).
package quantized

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

// QParamsSource is anything that yields quantization parameters: an
// observer, a fake-quantize module, or an observer module attached as a
// float module's ActivationPostProcess.
type QParamsSource interface {
	CalculateQParams() (*tensor.QParams, error)
}

// ObservedQParams returns the qparams recorded by m's
// ActivationPostProcess (PyTorch's activation_post_process.calculate_qparams
// used by from_float): the output qparams of the quantized module that
// replaces m.
func ObservedQParams(m nn.Module) (*tensor.QParams, error) {
	app := m.ModuleBase().ActivationPostProcess
	if app == nil {
		return nil, fmt.Errorf("quantized: %s has no activation_post_process (was it prepared and calibrated?)", nn.TypeName(m))
	}
	src, ok := app.(QParamsSource)
	if !ok {
		return nil, fmt.Errorf("quantized: %s's activation_post_process %s yields no qparams", nn.TypeName(m), nn.TypeName(app))
	}
	q, err := src.CalculateQParams()
	if err != nil {
		return nil, fmt.Errorf("quantized: %s: %w", nn.TypeName(m), err)
	}
	return q, nil
}

// QuantizeWeight quantizes a float weight with the qparams obs computes
// after observing it (PyTorch's weight_post_process in from_float). A nil
// obs means per-tensor symmetric qint8 min/max (PyTorch's
// default_weight_observer). The result is qint8 with per-tensor or
// per-channel qparams.
func QuantizeWeight(w *tensor.Tensor, obs observer.Observer) (*tensor.Tensor, error) {
	if w == nil || w.DType() != tensor.Float32 {
		return nil, fmt.Errorf("quantized: QuantizeWeight: want a float32 weight")
	}
	if obs == nil {
		obs = observer.NewMinMax(observer.Config{Dtype: tensor.QInt8, QScheme: tensor.PerTensorSymmetric})
	}
	if obs.Config().Dtype != tensor.QInt8 {
		return nil, fmt.Errorf("quantized: QuantizeWeight: weight observer dtype %v, want qint8", obs.Config().Dtype)
	}
	if err := obs.Observe(w.Detach()); err != nil {
		return nil, fmt.Errorf("quantized: QuantizeWeight: %w", err)
	}
	q, err := obs.CalculateQParams()
	if err != nil {
		return nil, fmt.Errorf("quantized: QuantizeWeight: %w", err)
	}
	return ops.QuantizeWithQParams(w.Detach(), q, tensor.QInt8), nil
}

// outQParams checks output qparams and returns them as buffers.
func outQParams(op string, scale float32, zp int32) (s, z *tensor.Tensor, err error) {
	if !(scale > 0) || math.IsInf(float64(scale), 0) {
		return nil, nil, fmt.Errorf("quantized: %s: output scale %v must be positive and finite", op, scale)
	}
	if zp < 0 || zp > 255 {
		return nil, nil, fmt.Errorf("quantized: %s: output zero point %d outside 0..255 (quint8)", op, zp)
	}
	s = tensor.Scalar(scale)
	z = tensor.FromInt64([]int64{int64(zp)})
	return s, z.Reshape(), nil
}

// fromQParams extracts per-tensor output qparams.
func fromQParams(op string, q *tensor.QParams) (float32, int32, error) {
	if q == nil || len(q.Scale) != 1 || len(q.ZeroPoint) != 1 || q.Scheme.PerChannel() {
		return 0, 0, fmt.Errorf("quantized: %s: want per-tensor output qparams", op)
	}
	return q.Scale[0], q.ZeroPoint[0], nil
}

func scalarF(t *tensor.Tensor) float32 { return t.F32()[0] }
func scalarZP(t *tensor.Tensor) int32  { return int32(t.I64()[0]) }

// checkQ panics unless x is a per-tensor quint8 tensor.
func checkQ(op string, x *tensor.Tensor) (float32, int32) {
	if x == nil || x.DType() != tensor.QUInt8 {
		dt := "nil"
		if x != nil {
			dt = x.DType().String()
		}
		panic(fmt.Sprintf("quantized: %s: input must be quint8, got %s", op, dt))
	}
	q := x.QParams()
	if q == nil || q.Scheme.PerChannel() || len(q.Scale) != 1 {
		panic(fmt.Sprintf("quantized: %s: input must have per-tensor qparams", op))
	}
	return q.Scale[0], q.ZeroPoint[0]
}

// must panics on an error of a quantized op that checkQ's conditions
// should have ruled out (shape errors are the caller's programmer error).
func must(t *tensor.Tensor, err error) *tensor.Tensor {
	if err != nil {
		panic(fmt.Sprintf("quantized: %v", err))
	}
	return t
}

// quantizeOut quantizes a float result to quint8 (scale, zp).
func quantizeOut(y *tensor.Tensor, scale float32, zp int32) *tensor.Tensor {
	return ops.QuantizePerTensor(y, scale, zp, tensor.QUInt8)
}
