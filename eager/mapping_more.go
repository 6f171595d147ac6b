package eager

import (
	"fmt"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/nn/quantized"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

// init completes the static mapping with the rest of PyTorch's
// torch.ao.nn.quantized modules: the group and instance normalizations,
// ELU, ConvTranspose1d, and the weight-only Embedding and EmbeddingBag.
// ConvTranspose1d takes per-channel weight qparams along its output
// channels (see transposedWeightObserver), so the per-channel presets
// work for it.
//
// The embeddings are quantized by their qconfig's Weight observer alone
// (give them quant.FloatQParamsWeightOnlyQConfig or its 4-bit version with
// SetQConfig or a QConfigMapping rule): they take integer indices and give
// float32 values, so they need no output qparams (they are weightless in
// the table's sense). Prepare still attaches the qconfig's Activation
// observer to their output, a float placeholder for the weight-only
// qconfigs, which Convert discards.
func init() {
	more := map[string]staticConvert{
		"GroupNorm": func(f nn.Module, _ observer.Observer, out *tensor.QParams) (nn.Module, error) {
			return quantized.GroupNormFromFloat(f.(*nn.GroupNorm), out)
		},
		"InstanceNorm1d": func(f nn.Module, _ observer.Observer, out *tensor.QParams) (nn.Module, error) {
			return quantized.InstanceNorm1dFromFloat(f.(*nn.InstanceNorm1d), out)
		},
		"InstanceNorm2d": func(f nn.Module, _ observer.Observer, out *tensor.QParams) (nn.Module, error) {
			return quantized.InstanceNorm2dFromFloat(f.(*nn.InstanceNorm2d), out)
		},
		"ELU": func(f nn.Module, _ observer.Observer, out *tensor.QParams) (nn.Module, error) {
			return quantized.ELUFromFloat(f.(*nn.ELU), out)
		},
		"ConvTranspose1d": func(f nn.Module, w observer.Observer, out *tensor.QParams) (nn.Module, error) {
			return quantized.ConvTranspose1dFromFloat(f.(*nn.ConvTranspose1d), transposedWeightObserver(w), out)
		},
		"Embedding": func(f nn.Module, w observer.Observer, _ *tensor.QParams) (nn.Module, error) {
			if err := checkFloatQParams(w); err != nil {
				return nil, err
			}
			return quantized.EmbeddingFromFloat(f.(*nn.Embedding), w)
		},
		"EmbeddingBag": func(f nn.Module, w observer.Observer, _ *tensor.QParams) (nn.Module, error) {
			if err := checkFloatQParams(w); err != nil {
				return nil, err
			}
			return quantized.EmbeddingBagFromFloat(f.(*nn.EmbeddingBag), w)
		},
	}
	for k, v := range more {
		if staticMapping[k] != nil {
			panic("eager: static mapping for " + k + " registered twice")
		}
		staticMapping[k] = v
	}
	weightless["Embedding"] = true
	weightless["EmbeddingBag"] = true
}

// checkFloatQParams explains the one qconfig embeddings accept, as
// PyTorch's Embedding.from_float asserts: a weight observer with
// per_channel_affine_float_qparams.
func checkFloatQParams(w observer.Observer) error {
	if w == nil || w.Config().QScheme != tensor.PerChannelAffineFloatQParams {
		return fmt.Errorf("embeddings quantize with a float_qparams weight observer only: give the module quant.FloatQParamsWeightOnlyQConfig (or ...4Bit) with eager.SetQConfig, or a nil qconfig to keep it float")
	}
	return nil
}

// transposedWeightObserver returns the weight observer for a transposed
// convolution. A transposed convolution's weight is [in, out/groups, k...],
// so per-channel weight qparams belong on axis 1 (the output channels),
// while the per-channel weight observers of the engine presets use axis 0
// (PyTorch's engines reject per-channel transposed convolutions instead).
// A per-channel observer on another axis is replaced by a per-channel
// min/max observer of the same configuration on axis 1: the weight is
// observed once, and for one observation every min/max observer gives the
// same qparams. Other observers are returned as they are.
func transposedWeightObserver(w observer.Observer) observer.Observer {
	if w == nil {
		return nil
	}
	cfg := w.Config()
	if !cfg.QScheme.PerChannel() || cfg.ChAxis == 1 {
		return w
	}
	cfg.ChAxis = 1
	return observer.NewPerChannelMinMax(cfg)
}
