package eager

import (
	"errors"
	"fmt"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/nn/intrinsic"
	"github.com/quanta-go/quanta/nn/qat"
	"github.com/quanta-go/quanta/nn/quantized"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

// staticConvert makes the statically quantized module for a float module,
// from the weight observer (nil for weightless modules) and the observed
// output qparams.
type staticConvert func(f nn.Module, w observer.Observer, out *tensor.QParams) (nn.Module, error)

// staticMapping is eager mode's DEFAULT_STATIC_QUANT_MODULE_MAPPINGS,
// keyed by nn.TypeName. QuantStub, DeQuantStub and FloatFunctional are
// handled apart. Other files of the package add entries in their init.
var staticMapping = map[string]staticConvert{
	"Linear": func(f nn.Module, w observer.Observer, out *tensor.QParams) (nn.Module, error) {
		return quantized.LinearFromFloat(f.(*nn.Linear), w, out)
	},
	"LinearReLU": func(f nn.Module, w observer.Observer, out *tensor.QParams) (nn.Module, error) {
		return quantized.LinearReLUFromFloat(f.(*intrinsic.LinearReLU).Linear, w, out)
	},
	"Conv1d": func(f nn.Module, w observer.Observer, out *tensor.QParams) (nn.Module, error) {
		return quantized.Conv1dFromFloat(f.(*nn.Conv1d), w, out)
	},
	"Conv2d": func(f nn.Module, w observer.Observer, out *tensor.QParams) (nn.Module, error) {
		return quantized.Conv2dFromFloat(f.(*nn.Conv2d), w, out)
	},
	"ConvReLU1d": func(f nn.Module, w observer.Observer, out *tensor.QParams) (nn.Module, error) {
		return quantized.ConvReLU1dFromFloat(f.(*intrinsic.ConvReLU1d).Conv, w, out)
	},
	"ConvReLU2d": func(f nn.Module, w observer.Observer, out *tensor.QParams) (nn.Module, error) {
		return quantized.ConvReLU2dFromFloat(f.(*intrinsic.ConvReLU2d).Conv, w, out)
	},
	"ConvTranspose2d": func(f nn.Module, w observer.Observer, out *tensor.QParams) (nn.Module, error) {
		return quantized.ConvTranspose2dFromFloat(f.(*nn.ConvTranspose2d), transposedWeightObserver(w), out)
	},
	"BatchNorm2d": func(f nn.Module, _ observer.Observer, out *tensor.QParams) (nn.Module, error) {
		return quantized.BatchNorm2dFromFloat(f.(*nn.BatchNorm2d), out)
	},
	"BNReLU2d": func(f nn.Module, _ observer.Observer, out *tensor.QParams) (nn.Module, error) {
		return quantized.BNReLU2dFromFloat(f.(*intrinsic.BNReLU2d).BN, out)
	},
	"LayerNorm": func(f nn.Module, _ observer.Observer, out *tensor.QParams) (nn.Module, error) {
		return quantized.LayerNormFromFloat(f.(*nn.LayerNorm), out)
	},
	"ReLU6": func(nn.Module, observer.Observer, *tensor.QParams) (nn.Module, error) {
		return quantized.NewReLU6(), nil
	},
	"Hardswish": func(_ nn.Module, _ observer.Observer, out *tensor.QParams) (nn.Module, error) {
		s, z, err := perTensor(out)
		if err != nil {
			return nil, err
		}
		return quantized.NewHardswish(s, z)
	},
	"LeakyReLU": func(f nn.Module, _ observer.Observer, out *tensor.QParams) (nn.Module, error) {
		s, z, err := perTensor(out)
		if err != nil {
			return nil, err
		}
		return quantized.NewLeakyReLU(f.(*nn.LeakyReLU).NegativeSlope, s, z)
	},
	"Softmax": func(f nn.Module, _ observer.Observer, out *tensor.QParams) (nn.Module, error) {
		s, z, err := perTensor(out)
		if err != nil {
			return nil, err
		}
		return quantized.NewSoftmax(f.(*nn.Softmax).Dim, s, z)
	},
	"Dropout": func(f nn.Module, _ observer.Observer, _ *tensor.QParams) (nn.Module, error) {
		return quantized.NewDropout(f.(*nn.Dropout).P), nil
	},
}

// weightless lists the mapped types that need no output qparams (the
// converter gets a nil out).
var weightless = set("ReLU6", "Dropout")

func perTensor(q *tensor.QParams) (float32, int32, error) {
	if q == nil || len(q.Scale) != 1 || q.Scheme.PerChannel() {
		return 0, 0, errors.New("want per-tensor output qparams")
	}
	return q.Scale[0], q.ZeroPoint[0], nil
}

// Convert replaces the modules of a prepared and calibrated (or
// QAT-trained) model by their quantized forms, in place
// (torch.ao.quantization.convert): QuantStub becomes quantized.Quantize
// with the observed qparams, DeQuantStub quantized.DeQuantize,
// FloatFunctional quantized.QFunctional, each mapped float or fused module
// (see Prepare) its nn/quantized module with int8 weights packed once and
// the observed output qparams, each nn/qat module the quantized module of
// its float form (batch norm folded) with the weight qparams of its weight
// fake quantizer, and custom modules what their FromObserved returns.
// Modules that stay float lose their observers; every module's qconfig is
// cleared, as PyTorch's remove_qconfig. ReLU, pooling, Flatten, Sigmoid and
// the like are not swapped: they run on quantized tensors as they are.
//
// Errors name the module path: a model that was never prepared, a module
// whose observer saw no data ("run the prepared model on sample inputs
// before Convert"), NaN or Inf met while calibrating.
func Convert(root nn.Module, opt Options) error {
	if root == nil {
		return errors.New("eager: Convert: nil model")
	}
	prepared := false
	for _, m := range nn.Modules(root) {
		if _, ok := m.ModuleBase().ActivationPostProcess.(*ObserverModule); ok {
			prepared = true
			break
		}
	}
	if !prepared {
		return errors.New("eager: Convert: the model has no observers; prepare it with eager.Prepare (or PrepareQAT), run it on sample inputs, then Convert")
	}
	custom := map[string]*CustomModule{}
	for i := range opt.CustomModules {
		c := &opt.CustomModules[i]
		if c.FloatType == "" || c.FromObserved == nil {
			return fmt.Errorf("eager: Convert: custom module %d: FloatType and FromObserved are required", i)
		}
		custom[c.observedType()] = c
	}
	type swap struct {
		path string
		m    nn.Module
	}
	var swaps []swap
	var walk func(m nn.Module, path string) error
	walk = func(m nn.Module, path string) error {
		for _, c := range nn.Children(m) {
			if _, isObs := c.Module.(*ObserverModule); isObs {
				continue
			}
			p := join(path, c.Name)
			cm := c.Module
			typ := nn.TypeName(cm)
			q, err := convertOne(cm, p, typ, custom, opt.Uncalibrated)
			if err != nil {
				return fmt.Errorf("eager: Convert: %w", err)
			}
			if q != nil {
				swaps = append(swaps, swap{p, q})
				continue
			}
			if err := walk(cm, p); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root, ""); err != nil {
		return err
	}
	for _, s := range swaps {
		if err := nn.Set(root, s.path, s.m); err != nil {
			return fmt.Errorf("eager: Convert: %w", err)
		}
	}
	for _, m := range nn.Modules(root) {
		b := m.ModuleBase()
		if _, ok := b.ActivationPostProcess.(*ObserverModule); ok {
			b.ActivationPostProcess = nil
		}
		b.QConfig = nil
	}
	nn.AssignPaths(root)
	return nil
}

// convertOne returns the quantized replacement of m, or nil when m is kept
// (and its children visited).
func convertOne(m nn.Module, path, typ string, custom map[string]*CustomModule, uncalibrated bool) (nn.Module, error) {
	qc, _ := qconfigOf(m)
	app, _ := m.ModuleBase().ActivationPostProcess.(*ObserverModule)
	if cu := custom[typ]; cu != nil && (qc != nil || app != nil) {
		if app != nil && app.Err() != nil {
			return nil, fmt.Errorf("%s (%s): calibration failed: %w", path, typ, app.Err())
		}
		q, err := cu.FromObserved(m)
		if err != nil {
			return nil, fmt.Errorf("%s (%s): custom FromObserved: %w", path, typ, err)
		}
		return q, nil
	}
	switch {
	case typ == "QuantStub":
		if qc == nil && app == nil {
			return nil, nil
		}
		out, err := observed(m, path, typ, uncalibrated)
		if err != nil {
			return nil, err
		}
		sc, zp, err := perTensor(out)
		if err != nil {
			return nil, fmt.Errorf("%s (%s): %w", path, typ, err)
		}
		q, err := quantized.NewQuantize(sc, zp)
		return wrap(q, err, path, typ)
	case typ == "DeQuantStub":
		if qc == nil {
			return nil, nil
		}
		return quantized.NewDeQuantize(), nil
	case typ == "FloatFunctional":
		if app == nil {
			return nil, nil
		}
		if app.Err() == nil && app.Calls() == 0 {
			// Only AddScalar/MulScalar (never observed) were used, or the
			// module never ran: PyTorch's unobserved default qparams.
			q, err := quantized.NewQFunctional(1, 0)
			return wrap(q, err, path, typ)
		}
		out, err := observed(m, path, typ, uncalibrated)
		if err != nil {
			return nil, err
		}
		sc, zp, err := perTensor(out)
		if err != nil {
			return nil, fmt.Errorf("%s (%s): %w", path, typ, err)
		}
		q, err := quantized.NewQFunctional(sc, zp)
		return wrap(q, err, path, typ)
	}
	if qm, ok := m.(qat.Module); ok {
		return convertQAT(qm, path, typ, uncalibrated)
	}
	conv := staticMapping[typ]
	if conv == nil || qc == nil {
		return nil, nil
	}
	var out *tensor.QParams
	if !weightless[typ] {
		var err error
		if out, err = observed(m, path, typ, uncalibrated); err != nil {
			return nil, err
		}
	}
	var wobs observer.Observer
	if qc.Weight != nil {
		wobs = qc.Weight()
	}
	q, err := conv(m, wobs, out)
	return wrap(q, err, path, typ)
}

// observed returns the output qparams m's observer recorded, with an error
// naming path when there are none, or when uncalibrated and the observer
// saw nothing the placeholder (1, 0).
func observed(m nn.Module, path, typ string, uncalibrated bool) (*tensor.QParams, error) {
	app, ok := m.ModuleBase().ActivationPostProcess.(*ObserverModule)
	if !ok || app == nil {
		return nil, fmt.Errorf("%s (%s): no observer attached; prepare the model with eager.Prepare and calibrate it before Convert", path, typ)
	}
	if app.Err() != nil {
		return nil, fmt.Errorf("%s (%s): calibration failed: %w", path, typ, app.Err())
	}
	if app.Calls() == 0 {
		if uncalibrated {
			return tensor.PerTensor(1, 0), nil
		}
		return nil, fmt.Errorf("%s (%s): no calibration data observed; run the prepared model on sample inputs before Convert", path, typ)
	}
	q, err := app.CalculateQParams()
	if err != nil {
		return nil, fmt.Errorf("%s (%s): %w", path, typ, err)
	}
	return q, nil
}

// convertQAT converts a QAT module through its float form (batch norm
// folded), with its weight fake quantizer's qparams.
func convertQAT(m qat.Module, path, typ string, uncalibrated bool) (nn.Module, error) {
	out, err := observed(m, path, typ, uncalibrated)
	if err != nil {
		return nil, err
	}
	wfq := m.WeightFakeQuantizer()
	var wobs observer.Observer
	if wq, err := wfq.CalculateQParams(); err == nil {
		wobs = frozenWeightObserver{wfq, wq}
	} else if !uncalibrated {
		return nil, fmt.Errorf("%s (%s): weight fake quantizer: %w", path, typ, err)
	}
	f, err := m.ToFloat()
	if err != nil {
		return nil, fmt.Errorf("%s (%s): %w", path, typ, err)
	}
	ft := nn.TypeName(f)
	conv := staticMapping[ft]
	if conv == nil {
		return nil, fmt.Errorf("%s (%s): its float form %s has no quantized counterpart", path, typ, ft)
	}
	q, err := conv(f, wobs, out)
	return wrap(q, err, path, typ)
}

func wrap[M nn.Module](q M, err error, path, typ string) (nn.Module, error) {
	if err != nil {
		return nil, fmt.Errorf("%s (%s): %w", path, typ, err)
	}
	return q, nil
}

// Quantize is post-training static quantization in one call
// (torch.ao.quantization.quantize, in place): it puts the model in
// evaluation mode, prepares it (Prepare), runs calibrate on it (feed it
// representative inputs; the observers record their ranges), and converts
// it (Convert).
func Quantize(root nn.Module, calibrate func(prepared nn.Module) error, opt Options) error {
	if root == nil {
		return errors.New("eager: Quantize: nil model")
	}
	if calibrate == nil {
		return errors.New("eager: Quantize: nil calibration function")
	}
	nn.Eval(root)
	if err := Prepare(root, opt); err != nil {
		return err
	}
	if err := calibrate(root); err != nil {
		return fmt.Errorf("eager: Quantize: calibration: %w", err)
	}
	return Convert(root, opt)
}

// QuantizeQAT is quantization-aware training in one call
// (torch.ao.quantization.quantize_qat, in place): it puts the model in
// training mode, prepares it (PrepareQAT), runs train on it, then puts it in
// evaluation mode and converts it (Convert).
func QuantizeQAT(root nn.Module, train func(prepared nn.Module) error, opt Options) error {
	if root == nil {
		return errors.New("eager: QuantizeQAT: nil model")
	}
	if train == nil {
		return errors.New("eager: QuantizeQAT: nil training function")
	}
	nn.Train(root)
	if err := PrepareQAT(root, opt); err != nil {
		return err
	}
	if err := train(root); err != nil {
		return fmt.Errorf("eager: QuantizeQAT: training: %w", err)
	}
	nn.Eval(root)
	return Convert(root, opt)
}
