package quant

import (
	"fmt"
	"strings"

	"github.com/quanta-go/quanta/tensor"
)

// ObservationType says how an op's output is observed, as PyTorch's
// ObservationType.
type ObservationType uint8

const (
	// OutputUseDifferentObserverAsInput gives the output its own observer
	// (conv, linear, add, ...).
	OutputUseDifferentObserverAsInput ObservationType = iota
	// OutputShareObserverWithInput makes the output reuse the input's
	// qparams (max pool, reshape, cat, relu, ...).
	OutputShareObserverWithInput
	// OutputFixedQParams gives the output fixed qparams (sigmoid, tanh,
	// hardsigmoid, softmax).
	OutputFixedQParams
)

// DTypeConfig is one supported combination of dtypes for a pattern, as
// PyTorch's DTypeConfig. Float32 means "stays float".
type DTypeConfig struct {
	Input, Output, Weight, Bias tensor.DType
	// IsDynamic marks dynamic quantization (activations quantized per call).
	IsDynamic bool
	// WeightOnly marks weight-only quantization (embeddings).
	WeightOnly bool
	// ScaleMin is the smallest allowed scale (qnnpack symmetric: 2^-12); 0
	// means no constraint.
	ScaleMin float32
}

// BackendPatternConfig says how one op or fused op sequence is quantized.
// Pattern lists op kinds in execution order, e.g. {"Conv2d", "BatchNorm2d",
// "ReLU"}; op kinds are module type names (eager mode) or the graph's op
// kinds (graph mode maps ONNX op types onto the same names).
type BackendPatternConfig struct {
	Pattern         []string
	Observation     ObservationType
	DTypeConfigs    []DTypeConfig
	FusedModule     string // eval-mode fused module ("ConvReLU2d"), if a fusion
	QATModule       string // QAT module type ("qat.ConvBnReLU2d")
	QuantizedModule string // quantized module type ("quantized.ConvReLU2d")
	// FoldsBN marks conv/linear+BN patterns: eval fusion folds the BN.
	FoldsBN bool
	// HasWeight marks patterns whose root op has a weight to quantize.
	HasWeight bool
}

// Key is the pattern joined with "+", e.g. "Conv2d+BatchNorm2d+ReLU".
func (p *BackendPatternConfig) Key() string { return strings.Join(p.Pattern, "+") }

// BackendConfig is the table of what an engine quantizes. Eager mode reads
// its fusion and module-swap columns; graph mode matches its patterns.
type BackendConfig struct {
	Name     string
	Patterns []BackendPatternConfig
	index    map[string]int
}

// Lookup returns the config of a pattern, or nil.
func (b *BackendConfig) Lookup(pattern ...string) *BackendPatternConfig {
	if b == nil {
		return nil
	}
	if b.index == nil {
		b.index = map[string]int{}
		for i := range b.Patterns {
			b.index[b.Patterns[i].Key()] = i
		}
	}
	if i, ok := b.index[strings.Join(pattern, "+")]; ok {
		return &b.Patterns[i]
	}
	return nil
}

// Fusions returns the patterns of two or more ops, longest first, for
// greedy fusion matching.
func (b *BackendConfig) Fusions() []*BackendPatternConfig {
	var out []*BackendPatternConfig
	for n := 3; n >= 2; n-- {
		for i := range b.Patterns {
			if len(b.Patterns[i].Pattern) == n {
				out = append(out, &b.Patterns[i])
			}
		}
	}
	return out
}

var (
	staticInt8 = DTypeConfig{Input: tensor.QUInt8, Output: tensor.QUInt8, Weight: tensor.QInt8, Bias: tensor.Float32}
	dynInt8    = DTypeConfig{Input: tensor.QUInt8, Output: tensor.Float32, Weight: tensor.QInt8, Bias: tensor.Float32, IsDynamic: true}
	dynFP16    = DTypeConfig{Input: tensor.Float32, Output: tensor.Float32, Weight: tensor.Float32, Bias: tensor.Float32, IsDynamic: true}
	actOnly    = DTypeConfig{Input: tensor.QUInt8, Output: tensor.QUInt8, Weight: tensor.Float32, Bias: tensor.Float32}
	weightOnly = DTypeConfig{Input: tensor.Float32, Output: tensor.Float32, Weight: tensor.QUInt8, WeightOnly: true}
	symInt8    = DTypeConfig{Input: tensor.QInt8, Output: tensor.QInt8, Weight: tensor.QInt8, Bias: tensor.Float32, ScaleMin: 1.0 / 4096}
)

// nativePatterns builds PyTorch's native backend table (1.13), forward
// order, shared by every engine preset; engines differ in dtype configs.
func nativePatterns(weighted []DTypeConfig) []BackendPatternConfig {
	var ps []BackendPatternConfig
	add := func(p BackendPatternConfig) { ps = append(ps, p) }
	for _, d := range []string{"1d", "2d"} {
		conv, bn := "Conv"+d, "BatchNorm"+d
		add(BackendPatternConfig{Pattern: []string{conv}, DTypeConfigs: weighted, HasWeight: true, QATModule: "qat." + conv, QuantizedModule: "quantized." + conv})
		add(BackendPatternConfig{Pattern: []string{conv, "ReLU"}, DTypeConfigs: weighted, HasWeight: true, FusedModule: "ConvReLU" + d, QATModule: "qat.ConvReLU" + d, QuantizedModule: "quantized.ConvReLU" + d})
		add(BackendPatternConfig{Pattern: []string{conv, bn}, DTypeConfigs: weighted, HasWeight: true, FoldsBN: true, FusedModule: "ConvBn" + d, QATModule: "qat.ConvBn" + d, QuantizedModule: "quantized." + conv})
		add(BackendPatternConfig{Pattern: []string{conv, bn, "ReLU"}, DTypeConfigs: weighted, HasWeight: true, FoldsBN: true, FusedModule: "ConvBnReLU" + d, QATModule: "qat.ConvBnReLU" + d, QuantizedModule: "quantized.ConvReLU" + d})
		add(BackendPatternConfig{Pattern: []string{"ConvTranspose" + d}, DTypeConfigs: []DTypeConfig{staticInt8}, HasWeight: true, QuantizedModule: "quantized.ConvTranspose" + d})
		add(BackendPatternConfig{Pattern: []string{"ConvTranspose" + d, bn}, DTypeConfigs: []DTypeConfig{staticInt8}, HasWeight: true, FoldsBN: true, FusedModule: "ConvTranspose" + d, QuantizedModule: "quantized.ConvTranspose" + d})
	}
	linear := append(append([]DTypeConfig(nil), weighted...), dynInt8, dynFP16)
	add(BackendPatternConfig{Pattern: []string{"Linear"}, DTypeConfigs: linear, HasWeight: true, QATModule: "qat.Linear", QuantizedModule: "quantized.Linear"})
	add(BackendPatternConfig{Pattern: []string{"Linear", "ReLU"}, DTypeConfigs: linear, HasWeight: true, FusedModule: "LinearReLU", QATModule: "qat.LinearReLU", QuantizedModule: "quantized.LinearReLU"})
	add(BackendPatternConfig{Pattern: []string{"Linear", "BatchNorm1d"}, DTypeConfigs: weighted, HasWeight: true, FoldsBN: true, FusedModule: "LinearBn1d", QATModule: "qat.LinearBn1d", QuantizedModule: "quantized.Linear"})
	add(BackendPatternConfig{Pattern: []string{"BatchNorm2d"}, DTypeConfigs: []DTypeConfig{actOnly}, QuantizedModule: "quantized.BatchNorm2d"})
	add(BackendPatternConfig{Pattern: []string{"BatchNorm2d", "ReLU"}, DTypeConfigs: []DTypeConfig{actOnly}, FusedModule: "BNReLU2d", QuantizedModule: "quantized.BNReLU2d"})
	for _, rnn := range []string{"LSTM", "GRU", "LSTMCell", "GRUCell", "RNNCell"} {
		add(BackendPatternConfig{Pattern: []string{rnn}, DTypeConfigs: []DTypeConfig{dynInt8, dynFP16, staticInt8}, HasWeight: true, QuantizedModule: "quantized." + rnn})
	}
	for _, e := range []string{"Embedding", "EmbeddingBag"} {
		add(BackendPatternConfig{Pattern: []string{e}, DTypeConfigs: []DTypeConfig{weightOnly}, HasWeight: true, QATModule: "qat." + e, QuantizedModule: "quantized." + e})
	}
	for _, op := range []string{"Add", "Mul", "MatMul"} {
		add(BackendPatternConfig{Pattern: []string{op}, DTypeConfigs: []DTypeConfig{actOnly}})
		if op != "MatMul" {
			add(BackendPatternConfig{Pattern: []string{op, "ReLU"}, DTypeConfigs: []DTypeConfig{actOnly}})
		}
	}
	for _, op := range []string{"LayerNorm", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "ELU", "Hardswish", "LeakyReLU", "GELU", "SiLU", "Dropout", "MultiheadAttention"} {
		add(BackendPatternConfig{Pattern: []string{op}, DTypeConfigs: []DTypeConfig{actOnly}, QuantizedModule: "quantized." + op})
	}
	for _, op := range []string{"ReLU", "ReLU6", "Hardtanh", "Clamp", "MaxPool1d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Cat", "Flatten", "Reshape", "Permute", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Mean", "Upsample", "Interpolate"} {
		add(BackendPatternConfig{Pattern: []string{op}, Observation: OutputShareObserverWithInput, DTypeConfigs: []DTypeConfig{actOnly}})
	}
	for _, op := range []string{"Sigmoid", "Hardsigmoid", "Tanh", "Softmax"} {
		add(BackendPatternConfig{Pattern: []string{op}, Observation: OutputFixedQParams, DTypeConfigs: []DTypeConfig{actOnly}})
	}
	return ps
}

// GetBackendConfig returns the table for an engine: "x86", "fbgemm",
// "qnnpack", "onednn" or "quanta". An unknown name is an error.
func GetBackendConfig(engine string) (*BackendConfig, error) {
	switch engine {
	case "x86", "fbgemm", "onednn", "quanta":
		return &BackendConfig{Name: engine, Patterns: nativePatterns([]DTypeConfig{staticInt8})}, nil
	case "qnnpack":
		return &BackendConfig{Name: engine, Patterns: nativePatterns([]DTypeConfig{staticInt8, symInt8})}, nil
	}
	return nil, fmt.Errorf("quant: unknown engine %q (want one of %s)", engine, strings.Join(Engines, ", "))
}

// Engines lists the engine presets quanta knows.
var Engines = []string{"quanta", "x86", "fbgemm", "qnnpack", "onednn"}
