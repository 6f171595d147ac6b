package quant

import (
	"fmt"
	"strings"

	"github.com/quanta-go/quanta/quant/fakequant"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

// Observer factories with PyTorch 1.13's default settings.
var (
	// histogramReduced is HistogramObserver(reduce_range=True): quint8
	// 0..127, binned as PyTorch 1.13 bins (TorchCompat).
	histogramReduced = func() observer.Observer {
		return observer.NewHistogram(observer.HistogramConfig{Config: observer.Config{ReduceRange: true}, TorchCompat: true})
	}
	// histogramFull is HistogramObserver(): quint8 0..255, binned as
	// PyTorch 1.13 bins (TorchCompat).
	histogramFull = func() observer.Observer {
		return observer.NewHistogram(observer.HistogramConfig{TorchCompat: true})
	}
	// histogramExact is quanta's HistogramObserver: quint8 0..255, binned
	// over the true range.
	histogramExact = func() observer.Observer { return observer.NewHistogram(observer.HistogramConfig{}) }
	// perChannelWeight is default_per_channel_weight_observer.
	perChannelWeight = func() observer.Observer {
		return observer.NewPerChannelMinMax(observer.Config{Dtype: tensor.QInt8, QScheme: tensor.PerChannelSymmetric})
	}
	// perTensorWeight is default_weight_observer.
	perTensorWeight = func() observer.Observer {
		return observer.NewMinMax(observer.Config{Dtype: tensor.QInt8, QScheme: tensor.PerTensorSymmetric})
	}
	// minMax16 observes activations for uint16 codes (0..65535).
	minMax16 = func() observer.Observer {
		return observer.NewMinMax(observer.Config{Dtype: tensor.QInt32, QuantMin: 0, QuantMax: 65535, HasRange: true})
	}
	// perChannelWeight16 is per-channel symmetric int16 (-32768..32767).
	perChannelWeight16 = func() observer.Observer {
		return observer.NewPerChannelMinMax(observer.Config{Dtype: tensor.QInt32, QScheme: tensor.PerChannelSymmetric, QuantMin: -32768, QuantMax: 32767, HasRange: true})
	}
	// dynamicActivation is default_dynamic_quant_observer.
	dynamicActivation = func() observer.Observer {
		return observer.NewPlaceholder(observer.PlaceholderConfig{Config: observer.Config{Dtype: tensor.QUInt8}, IsDynamic: true})
	}
	// floatActivation is a placeholder that keeps activations float.
	floatActivation = func() observer.Observer { return observer.NewPlaceholder(observer.PlaceholderConfig{}) }
	// floatQParamsWeight is default_float_qparams_observer (8-bit rows).
	floatQParamsWeight = func() observer.Observer {
		return observer.NewPerChannelMinMax(observer.Config{QScheme: tensor.PerChannelAffineFloatQParams})
	}
	// floatQParamsWeight4 is default_float_qparams_observer_4bit.
	floatQParamsWeight4 = func() observer.Observer {
		return observer.NewPerChannelMinMax(observer.Config{QScheme: tensor.PerChannelAffineFloatQParams, Bits4: true})
	}
)

// fusedAct is the fused moving-average activation fake quant of the QAT
// qconfigs: quint8 declared 0..255, halved by reduceRange.
func fusedAct(reduceRange bool) ObserverFactory {
	return func() observer.Observer {
		return fakequant.NewFusedMovingAvgObs(observer.MovingAverageConfig{Config: observer.Config{
			QuantMin: 0, QuantMax: 255, HasRange: true, ReduceRange: reduceRange}})
	}
}

// fusedWeight is default_fused_wt_fake_quant (per tensor) or
// default_fused_per_channel_wt_fake_quant: qint8 -128..127, symmetric.
func fusedWeight(perChannel bool) ObserverFactory {
	return func() observer.Observer {
		cfg := observer.Config{Dtype: tensor.QInt8, QuantMin: -128, QuantMax: 127, HasRange: true, QScheme: tensor.PerTensorSymmetric}
		if perChannel {
			cfg.QScheme = tensor.PerChannelSymmetric
		}
		return fakequant.NewFusedMovingAvgObs(observer.MovingAverageConfig{Config: cfg})
	}
}

func normEngine(engine string) (string, error) {
	e := strings.ToLower(engine)
	if e == "" {
		return "quanta", nil
	}
	for _, k := range Engines {
		if k == e {
			return e, nil
		}
	}
	return "", fmt.Errorf("quant: unknown engine %q (want one of %s)", engine, strings.Join(Engines, ", "))
}

// DefaultQConfig returns the post-training static qconfig of an engine, as
// torch.ao.quantization.get_default_qconfig in PyTorch 1.13:
//
//	x86, fbgemm: HistogramObserver reduce_range (0..127), per-channel symmetric qint8 weights
//	qnnpack:     HistogramObserver (0..255), per-tensor symmetric qint8 weights
//	onednn:      HistogramObserver (0..255), per-channel symmetric qint8 weights
//	quanta:      HistogramObserver (0..255), per-channel symmetric qint8 weights
//
// The PyTorch presets reproduce PyTorch 1.13's calibration bit for bit,
// including the HistogramObserver's integer-truncated binning
// (observer.HistogramConfig.TorchCompat). "quanta" (also the empty name) is
// quanta's own preset: its int8 kernels are exact on every CPU, so
// activations keep all 8 bits, and its histogram bins over the true range.
// An unknown engine is an error.
func DefaultQConfig(engine string) (*QConfig, error) {
	e, err := normEngine(engine)
	if err != nil {
		return nil, err
	}
	switch e {
	case "x86", "fbgemm":
		return &QConfig{Activation: histogramReduced, Weight: perChannelWeight, Name: e + " default"}, nil
	case "qnnpack":
		return &QConfig{Activation: histogramFull, Weight: perTensorWeight, Name: e + " default"}, nil
	case "onednn":
		return &QConfig{Activation: histogramFull, Weight: perChannelWeight, Name: e + " default"}, nil
	default:
		return &QConfig{Activation: histogramExact, Weight: perChannelWeight, Name: e + " default"}, nil
	}
}

// DefaultQATQConfig returns the quantization-aware-training qconfig of an
// engine, as get_default_qat_qconfig(version=1) in PyTorch 1.13: fused
// moving-average fake quantization of activations (0..127 on x86/fbgemm,
// 0..255 elsewhere) and of weights (per-channel symmetric qint8, per-tensor
// on qnnpack). quanta's fused fake quant computes the same qparams as the
// observer used at convert (PyTorch's differ for symmetric schemes).
func DefaultQATQConfig(engine string) (*QConfig, error) {
	e, err := normEngine(engine)
	if err != nil {
		return nil, err
	}
	switch e {
	case "x86", "fbgemm":
		return &QConfig{Activation: fusedAct(true), Weight: fusedWeight(true), Name: e + " qat"}, nil
	case "qnnpack":
		return &QConfig{Activation: fusedAct(false), Weight: fusedWeight(false), Name: e + " qat"}, nil
	default:
		return &QConfig{Activation: fusedAct(false), Weight: fusedWeight(true), Name: e + " qat"}, nil
	}
}

// Dynamic and weight-only qconfigs, as PyTorch's named qconfigs.
var (
	// DefaultDynamicQConfig quantizes weights to per-tensor symmetric
	// qint8; activations are quantized per call (default_dynamic_qconfig).
	DefaultDynamicQConfig = &QConfig{Activation: dynamicActivation, Weight: perTensorWeight, Name: "dynamic qint8"}
	// PerChannelDynamicQConfig uses per-channel weights (per_channel_dynamic_qconfig).
	PerChannelDynamicQConfig = &QConfig{Activation: dynamicActivation, Weight: perChannelWeight, Name: "dynamic qint8 per-channel"}
	// Float16DynamicQConfig keeps weights in IEEE half precision and
	// computes in float32 (float16_dynamic_qconfig).
	Float16DynamicQConfig = &QConfig{Activation: floatActivation, Weight: floatActivation, Float16: true, Name: "dynamic float16"}
	// FloatQParamsWeightOnlyQConfig quantizes Embedding/EmbeddingBag
	// weights to 8-bit rows with float scale and zero point
	// (float_qparams_weight_only_qconfig).
	FloatQParamsWeightOnlyQConfig = &QConfig{Activation: floatActivation, Weight: floatQParamsWeight, Name: "weight-only float_qparams 8-bit"}
	// Int16QConfig is the 16-bit qconfig of graph mode's mixed precision
	// (what ONNX Runtime's quantizer writes for activation type QUInt16 and
	// weight type QInt16): activations observed by min/max over the full
	// uint16 range 0..65535, weights per-channel symmetric over int16
	// -32768..32767. Convert writes such units as 16-bit QDQ (opset 21)
	// and keeps their biases float; eager mode has no 16-bit modules.
	Int16QConfig = &QConfig{Activation: minMax16, Weight: perChannelWeight16, Name: "16-bit"}
	// FloatQParamsWeightOnlyQConfig4Bit is the quint4x2 version
	// (float_qparams_weight_only_qconfig_4bit).
	FloatQParamsWeightOnlyQConfig4Bit = &QConfig{Activation: floatActivation, Weight: floatQParamsWeight4, Name: "weight-only float_qparams 4-bit"}
)

// fixedQParamsOps are the op types whose outputs have fixed qparams.
var fixedQParamsOps = map[string]bool{"Sigmoid": true, "Hardsigmoid": true, "Softmax": true, "Tanh": true}

// FixedQParamsQConfig returns the qconfig PyTorch's default mappings give
// sigmoid, hardsigmoid and softmax ((1/256, 0)) and tanh ((2/256, 128))
// outputs; with qat, fixed-qparams fake quantization. It returns nil for
// other op types.
func FixedQParamsQConfig(opType string, qat bool) *QConfig {
	if !fixedQParamsOps[opType] {
		return nil
	}
	scale, zp := fakequant.SigmoidQParams.Scale, fakequant.SigmoidQParams.ZeroPoint
	if opType == "Tanh" {
		scale, zp = fakequant.TanhQParams.Scale, fakequant.TanhQParams.ZeroPoint
	}
	act := func() observer.Observer {
		if qat {
			return fakequant.NewFixedQParams(scale, zp, tensor.QUInt8, 0, 255)
		}
		return observer.NewFixedQParams(observer.FixedQParamsConfig{Scale: scale, ZeroPoint: zp})
	}
	return &QConfig{Activation: act, Name: "fixed qparams " + opType}
}

// DefaultQConfigMapping returns PyTorch's get_default_qconfig_mapping for
// an engine: the default qconfig globally, per-tensor weights for
// ConvTranspose on x86/fbgemm, float weights for LayerNorm, and fixed
// qparams for sigmoid, hardsigmoid, softmax and tanh.
func DefaultQConfigMapping(engine string) (*QConfigMapping, error) {
	return defaultMapping(engine, false)
}

// DefaultQATQConfigMapping is DefaultQConfigMapping for QAT.
func DefaultQATQConfigMapping(engine string) (*QConfigMapping, error) {
	return defaultMapping(engine, true)
}

func defaultMapping(engine string, qat bool) (*QConfigMapping, error) {
	e, err := normEngine(engine)
	if err != nil {
		return nil, err
	}
	var qc *QConfig
	if qat {
		qc, err = DefaultQATQConfig(e)
	} else {
		qc, err = DefaultQConfig(e)
	}
	if err != nil {
		return nil, err
	}
	m := NewQConfigMapping().SetGlobal(qc)
	if e == "x86" || e == "fbgemm" {
		w := perTensorWeight
		if qat {
			w = fusedWeight(false)
		}
		ct := &QConfig{Activation: qc.Activation, Weight: w, Name: e + " convtranspose"}
		for _, t := range []string{"ConvTranspose1d", "ConvTranspose2d"} {
			m.SetObjectType(t, ct)
		}
	}
	m.SetObjectType("LayerNorm", &QConfig{Activation: qc.Activation, Weight: floatActivation, Name: e + " layernorm"})
	for _, t := range []string{"Sigmoid", "Hardsigmoid", "Softmax", "Tanh"} {
		m.SetObjectType(t, FixedQParamsQConfig(t, qat))
	}
	return m, nil
}
