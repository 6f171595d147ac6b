package eager

import (
	"fmt"

	"github.com/quanta-go/quanta/nn"
	qdynamic "github.com/quanta-go/quanta/nn/quantized/dynamic"
	opsdyn "github.com/quanta-go/quanta/ops/dynamic"
	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/tensor"
)

// DynamicOptions configure QuantizeDynamic. The zero value quantizes every
// Linear, LSTM, GRU, LSTMCell, GRUCell and RNNCell to per-tensor qint8
// weights with activations quantized per call, as PyTorch's
// quantize_dynamic(model, dtype=torch.qint8) does.
type DynamicOptions struct {
	// Types lists the module types to quantize (nn.TypeName, e.g.
	// "Linear", "LSTM"); empty means all the dynamic-capable ones.
	Types []string
	// Float16 stores weights as IEEE halves instead of int8 (PyTorch's
	// dtype=torch.float16).
	Float16 bool
	// PerChannel quantizes weights per output channel
	// (per_channel_dynamic_qconfig).
	PerChannel bool
	// Engine picks the activation rule: "x86" and "fbgemm" use PyTorch's
	// reduce_range rule for Linear, LSTM and GRU (not for cells, as
	// PyTorch); "qnnpack", "onednn" and "quanta" (the default) use the full
	// range. An unknown engine is an error.
	Engine string
	// Mapping, when set, decides per module instead of Types/Float16/
	// PerChannel: a module is quantized when Mapping.Lookup(path, type) is
	// not nil, as float16 when that qconfig has Float16, per channel when
	// its weight observer is per-channel.
	Mapping *quant.QConfigMapping
}

var dynamicTypes = []string{"Linear", "LSTM", "GRU", "LSTMCell", "GRUCell", "RNNCell"}

// QuantizeDynamic replaces float modules by dynamically quantized ones in
// place (torch.ao.quantization.quantize_dynamic with inplace=True): weights
// are quantized once, activations per call. A module whose nn.Base.QConfig
// was set to a nil *quant.QConfig is left float, with its children (PyTorch's
// `model.fc.qconfig = None`). It returns the dotted paths it replaced.
func QuantizeDynamic(root nn.Module, opt DynamicOptions) ([]string, error) {
	if root == nil {
		return nil, fmt.Errorf("eager: QuantizeDynamic: nil model")
	}
	engine := opt.Engine
	if engine == "" {
		engine = "quanta"
	}
	if _, err := quant.GetBackendConfig(engine); err != nil {
		return nil, fmt.Errorf("eager: QuantizeDynamic: %w", err)
	}
	reduce := engine == "x86" || engine == "fbgemm"
	types := opt.Types
	if len(types) == 0 {
		types = dynamicTypes
	}
	want := map[string]bool{}
	for _, t := range types {
		supported := false
		for _, d := range dynamicTypes {
			supported = supported || d == t
		}
		if !supported {
			return nil, fmt.Errorf("eager: QuantizeDynamic: %q has no dynamically quantized counterpart (want one of %v)", t, dynamicTypes)
		}
		want[t] = true
	}

	type swap struct {
		path string
		m    nn.Module
	}
	var swaps []swap
	var walk func(m nn.Module, path string) error
	walk = func(m nn.Module, path string) error {
		if qc, set := m.ModuleBase().QConfig.(*quant.QConfig); set && qc == nil {
			return nil // qconfig = None: keep this subtree float
		}
		typ := nn.TypeName(m)
		o := qdynamic.Options{Float16: opt.Float16, PerChannel: opt.PerChannel, Rule: opsdyn.RuleTorch}
		quantize := want[typ] && path != ""
		if opt.Mapping != nil && path != "" && isDynamicType(typ) {
			qc := opt.Mapping.Lookup(path, typ)
			quantize = qc != nil
			if qc != nil {
				o.Float16 = qc.Float16
				o.PerChannel = false
				if qc.Weight != nil {
					o.PerChannel = perChannel(qc)
				}
			}
		}
		if quantize {
			if reduce && (typ == "Linear" || typ == "LSTM" || typ == "GRU") {
				o.Rule = opsdyn.RuleTorchReduceRange
			}
			q, err := convertDynamic(m, o)
			if err != nil {
				return fmt.Errorf("eager: QuantizeDynamic: %s (%s): %w", path, typ, err)
			}
			swaps = append(swaps, swap{path, q})
			return nil
		}
		for _, c := range nn.Children(m) {
			p := c.Name
			if path != "" {
				p = path + "." + c.Name
			}
			if err := walk(c.Module, p); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root, ""); err != nil {
		return nil, err
	}
	var done []string
	for _, s := range swaps {
		if err := nn.Set(root, s.path, s.m); err != nil {
			return done, fmt.Errorf("eager: QuantizeDynamic: %w", err)
		}
		done = append(done, s.path)
	}
	return done, nil
}

func isDynamicType(t string) bool {
	for _, d := range dynamicTypes {
		if d == t {
			return true
		}
	}
	return false
}

// perChannel reports whether a qconfig's weight observer is per-channel,
// by observing a small 2x2 weight with a fresh instance.
func perChannel(qc *quant.QConfig) bool {
	o := qc.Weight()
	if err := o.Observe(tensor.FromFloat32([]float32{-1, 1, -2, 2}, 2, 2)); err != nil {
		return false
	}
	q, err := o.CalculateQParams()
	return err == nil && q.Scheme.PerChannel()
}

func convertDynamic(m nn.Module, o qdynamic.Options) (nn.Module, error) {
	switch f := m.(type) {
	case *nn.Linear:
		return qdynamic.LinearFromFloat(f, o)
	case *nn.LSTM:
		return qdynamic.LSTMFromFloat(f, o)
	case *nn.GRU:
		return qdynamic.GRUFromFloat(f, o)
	case *nn.LSTMCell:
		return qdynamic.LSTMCellFromFloat(f, o)
	case *nn.GRUCell:
		return qdynamic.GRUCellFromFloat(f, o)
	case *nn.RNNCell:
		return qdynamic.RNNCellFromFloat(f, o)
	}
	return nil, fmt.Errorf("type %T has no dynamically quantized counterpart", m)
}
