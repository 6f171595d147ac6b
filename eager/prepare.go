package eager

import (
	"errors"
	"fmt"
	"sync"
	"weak"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/nn/qat"
	"github.com/quanta-go/quanta/quant"
)

// Options configure Prepare, PrepareQAT, Convert, Quantize and QuantizeQAT.
// The zero value uses the qconfigs set on the modules (SetQConfig) and no
// custom modules.
type Options struct {
	// Mapping assigns qconfigs by module name, regex and type before the
	// model is prepared (PyTorch's qconfig_dict for propagate_qconfig_):
	// see PropagateQConfig. A qconfig set on a module with SetQConfig
	// takes precedence over the mapping.
	Mapping *quant.QConfigMapping
	// CustomModules lists a user's float module types with their own
	// observed and quantized forms.
	CustomModules []CustomModule
	// Uncalibrated lets Convert build the quantized form of a model that
	// was prepared but not calibrated, with placeholder qparams (output
	// scale 1, zero point 0; weights quantized with the qconfig's observer
	// or per-tensor), to receive a saved quantized state with
	// nn.LoadStateDict: PyTorch's fuse, prepare, convert, load_state_dict
	// for reloading a quantized model without recalibrating. Without it,
	// Convert reports every module that observed nothing.
	Uncalibrated bool
}

// CustomModule maps a user's float module type to its observed and
// quantized forms, as PyTorch's prepare_custom_config_dict
// ("float_to_observed_custom_module_class") and convert_custom_config_dict
// ("observed_to_quantized_custom_module_class"). Prepare does not look
// inside a custom module: it replaces it by FromFloat's result (or keeps it)
// and observes its output; Convert replaces that by FromObserved's result.
type CustomModule struct {
	// FloatType is the nn.TypeName of the user's float module.
	FloatType string
	// FromFloat returns the observed module that replaces the float one at
	// Prepare, given the module and its qconfig (PyTorch's
	// ObservedClass.from_float). nil keeps the float module.
	FromFloat func(float nn.Module, qc *quant.QConfig) (nn.Module, error)
	// ObservedType is the nn.TypeName of FromFloat's modules; empty means
	// FloatType.
	ObservedType string
	// FromObserved returns the quantized module that replaces the observed
	// one at Convert (QuantizedClass.from_observed). The observed module's
	// output observer is its ActivationPostProcess (an *ObserverModule, or
	// read it with nn/quantized.ObservedQParams).
	FromObserved func(observed nn.Module) (nn.Module, error)
}

func (c *CustomModule) observedType() string {
	if c.ObservedType != "" {
		return c.ObservedType
	}
	return c.FloatType
}

// SetQConfig attaches qc to m (PyTorch's `m.qconfig = qc`). A nil qc keeps
// m and its children float: eager.SetQConfig(net.FC, nil) is PyTorch's
// `net.fc.qconfig = None`. Prepare propagates qconfigs from parents to
// children that have none of their own.
func SetQConfig(m nn.Module, qc *quant.QConfig) {
	if m != nil {
		m.ModuleBase().QConfig = qc
	}
}

// qconfigOf returns the *quant.QConfig attached to m and whether one (nil
// included) was set.
func qconfigOf(m nn.Module) (*quant.QConfig, bool) {
	qc, ok := m.ModuleBase().QConfig.(*quant.QConfig)
	return qc, ok
}

// PropagateQConfig gives every module of the model a qconfig (PyTorch's
// propagate_qconfig_): a module keeps the one set on it with SetQConfig;
// otherwise it takes the mapping's rule that names it (its module name,
// a matching regex, or its type: quant.QConfigMapping.Rule), otherwise its
// parent's. The root's default is the mapping's global qconfig. With a nil
// mapping only qconfigs set on modules spread.
func PropagateQConfig(root nn.Module, mapping *quant.QConfigMapping) error {
	if root == nil {
		return errors.New("eager: PropagateQConfig: nil model")
	}
	_, err := propagate(root, mapping)
	return err
}

// propagate runs PropagateQConfig and returns the modules whose qconfig was
// chosen for them (set on them or by a rule naming them) rather than
// inherited.
func propagate(root nn.Module, mapping *quant.QConfigMapping) (map[nn.Module]bool, error) {
	explicit := map[nn.Module]bool{}
	var walk func(m nn.Module, path string, parent *quant.QConfig)
	walk = func(m nn.Module, path string, parent *quant.QConfig) {
		qc := parent
		if own, ok := qconfigOf(m); ok {
			qc = own
			explicit[m] = true
		} else if r, ok := mapping.Rule(path, nn.TypeName(m)); ok {
			qc = r
			explicit[m] = true
		}
		m.ModuleBase().QConfig = qc
		for _, c := range nn.Children(m) {
			if _, isObs := c.Module.(*ObserverModule); isObs {
				continue
			}
			walk(c.Module, join(path, c.Name), qc)
		}
	}
	if b := root.ModuleBase(); b.QConfig != nil {
		if _, ok := b.QConfig.(*quant.QConfig); !ok {
			return nil, fmt.Errorf("eager: the model's QConfig is a %T, want a *quant.QConfig", b.QConfig)
		}
	}
	var bad error
	for _, nm := range nn.NamedModules(root) {
		if q := nm.Module.ModuleBase().QConfig; q != nil {
			if _, ok := q.(*quant.QConfig); !ok && bad == nil {
				bad = fmt.Errorf("eager: %s: QConfig is a %T, want a *quant.QConfig (use eager.SetQConfig)", nm.Name, q)
			}
		}
	}
	if bad != nil {
		return nil, bad
	}
	global, _ := mapping.Global()
	walk(root, "", global)
	return explicit, nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// Module kinds eager mode knows.
var (
	// nativeTypes run on quantized tensors as they are: the float ops
	// dispatch to quantized kernels (ops.RegisterQuantized), or only move
	// data.
	nativeTypes = set("ReLU", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Upsample", "Flatten", "Identity",
		"Sigmoid", "Tanh", "Hardsigmoid", "GELU", "Sequential", "ModuleList", "QuantWrapper")
	// fixedQParamsTypes get a (fixed-qparams fake quantize) observer in
	// training mode only, as PyTorch's prepare for QAT.
	fixedQParamsTypes = set("Sigmoid", "Tanh", "Hardsigmoid")
	// qatFusions are QAT-only fusions (FuseModulesQAT).
	qatFusions = set("ConvBn1d", "ConvBn2d", "ConvBnReLU1d", "ConvBnReLU2d", "LinearBn1d")
	// qatSwappable are the float and fused types PrepareQAT swaps for
	// nn/qat modules.
	qatSwappable = set("Linear", "Conv1d", "Conv2d", "LinearReLU", "ConvReLU1d", "ConvReLU2d",
		"ConvBn1d", "ConvBn2d", "ConvBnReLU1d", "ConvBnReLU2d", "LinearBn1d")
)

func set(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

// quantizableSwaps maps float types that have no quantized module of their
// own but an observable form built from quantizable parts (PyTorch's
// torch.ao.nn.quantizable LSTM and MultiheadAttention) to the function
// making that form. Prepare swaps such a module, when its qconfig is not
// nil, and observes inside the new form like any other subtree, so Convert
// quantizes its parts. Other files of the package fill it in their init.
var quantizableSwaps = map[string]func(float nn.Module) (nn.Module, error){}

// hooked remembers the modules that carry observerHook, so that preparing
// a model again does not observe twice.
var (
	hookedMu sync.Mutex
	hooked   = map[weak.Pointer[nn.Base]]bool{}
)

// attachObserver gives m an ObserverModule made by qc.Activation, called by
// a forward hook unless m calls it itself (FloatFunctional).
func attachObserver(m nn.Module, qc *quant.QConfig, hook bool) {
	b := m.ModuleBase()
	b.ActivationPostProcess = NewObserverModule(qc.Activation())
	if !hook {
		return
	}
	hookedMu.Lock()
	defer hookedMu.Unlock()
	k := weak.Make(b)
	if !hooked[k] {
		hooked[k] = true
		b.RegisterForwardHook(observerHook)
	}
}

// Prepare readies a float model for post-training static quantization, in
// place (torch.ao.quantization.prepare): it propagates qconfigs
// (PropagateQConfig with opt.Mapping), then attaches an observer, made by
// the module's QConfig.Activation, to the output of every module that
// Convert will quantize: QuantStub, the modules with statically quantized
// counterparts (Linear, Conv1d/2d, ConvTranspose1d/2d, the fused
// LinearReLU, ConvReLU1d/2d and BNReLU2d, BatchNorm2d, LayerNorm,
// GroupNorm, InstanceNorm1d/2d, ReLU6, Hardswish, LeakyReLU, ELU, Softmax,
// Dropout, and the weight-only Embedding and EmbeddingBag), the observable
// forms of LSTM and MultiheadAttention, nn/qat modules, and custom modules;
// FloatFunctional gets its observer without a hook (it calls it itself).
// In training mode Sigmoid, Tanh and Hardsigmoid are observed too (their
// fixed-qparams fake quantization, for QAT). Inputs are observed only by
// QuantStub; DeQuantStub is never observed. Modules whose qconfig is nil
// stay float. Run the prepared model on sample inputs (calibration), then
// call Convert.
//
// A module given a qconfig of its own (SetQConfig or a mapping rule naming
// it) whose type has no quantized form and does not run on quantized
// tensors (for example a GRU: use QuantizeDynamic) is an error naming
// its path; a qconfig inherited from a parent leaves such a module float,
// as in PyTorch.
func Prepare(root nn.Module, opt Options) error {
	if root == nil {
		return errors.New("eager: Prepare: nil model")
	}
	explicit, err := propagate(root, opt.Mapping)
	if err != nil {
		return fmt.Errorf("eager: Prepare: %w", err)
	}
	return prepare(root, opt, explicit)
}

// prepare attaches the observers of Prepare to a model whose qconfigs were
// propagated; explicit holds the modules whose qconfig was their own.
func prepare(root nn.Module, opt Options, explicit map[nn.Module]bool) error {
	for _, nm := range nn.NamedModules(root) {
		if _, ok := nm.Module.ModuleBase().ActivationPostProcess.(*ObserverModule); ok {
			return fmt.Errorf("eager: Prepare: %s is already prepared (it has an observer); prepare a fresh float model", pathName(nm.Name))
		}
	}
	custom := map[string]*CustomModule{}
	for i := range opt.CustomModules {
		c := &opt.CustomModules[i]
		if c.FloatType == "" || c.FromObserved == nil {
			return fmt.Errorf("eager: Prepare: custom module %d: FloatType and FromObserved are required", i)
		}
		custom[c.FloatType] = c
	}
	type swap struct {
		path string
		m    nn.Module
		qc   *quant.QConfig
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
			qc, _ := qconfigOf(cm)
			if qc == nil {
				continue // qconfig = None: this subtree stays float
			}
			if qc.Activation != nil && quant.Is16Bit(qc.Activation().Config()) {
				return fmt.Errorf("eager: Prepare: %s (%s): qconfig %q is 16-bit, and eager mode's quantized modules are 8-bit; use graph mode (quantize.Options.Int16)", p, typ, qc.Name)
			}
			observe := qc.Activation != nil
			switch {
			case custom[typ] != nil:
				cu := custom[typ]
				if cu.FromFloat != nil {
					obs, err := cu.FromFloat(cm, qc)
					if err != nil {
						return fmt.Errorf("eager: Prepare: %s (%s): custom FromFloat: %w", p, typ, err)
					}
					obs.ModuleBase().QConfig = qc
					swaps = append(swaps, swap{p, obs, qc})
					continue
				}
				if observe {
					attachObserver(cm, qc, true)
				}
			case typ == "DeQuantStub":
			case typ == "FloatFunctional":
				if observe {
					attachObserver(cm, qc, false)
				}
			case typ == "QuantStub" || staticMapping[typ] != nil:
				if observe {
					attachObserver(cm, qc, true)
				}
			case isQAT(cm):
				if observe {
					attachObserver(cm, qc, true)
				}
			case quantizableSwaps[typ] != nil:
				q, err := quantizableSwaps[typ](cm)
				if err != nil {
					return fmt.Errorf("eager: Prepare: %s (%s): %w", p, typ, err)
				}
				q.ModuleBase().QConfig = qc
				if _, err := propagate(q, nil); err != nil {
					return fmt.Errorf("eager: Prepare: %s (%s): %w", p, typ, err)
				}
				if err := walk(q, p); err != nil {
					return err
				}
				swaps = append(swaps, swap{p, q, nil})
			case qatFusions[typ]:
				return fmt.Errorf("eager: Prepare: %s (%s) is a QAT fusion (FuseModulesQAT); use PrepareQAT, or fuse with FuseModules in eval mode for post-training quantization", p, typ)
			case fixedQParamsTypes[typ] && cm.ModuleBase().Training():
				if observe {
					attachObserver(cm, qc, true)
				}
			default:
				leaf := len(nn.Children(cm)) == 0
				if leaf && explicit[cm] && !nativeTypes[typ] && !fixedQParamsTypes[typ] && typ != "Dropout" {
					hint := "give it a nil qconfig (eager.SetQConfig(m, nil)) and surround it with DeQuantStub/QuantStub"
					if isDynamicType(typ) {
						hint = "use QuantizeDynamic for it, or " + hint
					}
					return fmt.Errorf("eager: Prepare: %s (%s) has a qconfig but no statically quantized counterpart; %s", p, typ, hint)
				}
				if err := walk(cm, p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(root, ""); err != nil {
		return err
	}
	for _, s := range swaps {
		if err := nn.Set(root, s.path, s.m); err != nil {
			return fmt.Errorf("eager: Prepare: %w", err)
		}
		if s.qc != nil && s.qc.Activation != nil {
			attachObserver(s.m, s.qc, true)
		}
	}
	return nil
}

func isQAT(m nn.Module) bool {
	_, ok := m.(qat.Module)
	return ok
}

func pathName(p string) string {
	if p == "" {
		return "the model"
	}
	return p
}

// PrepareQAT readies a float model for quantization-aware training, in
// place (torch.ao.quantization.prepare_qat): the model must be in training
// mode. It propagates qconfigs (use a QAT qconfig such as
// quant.DefaultQATQConfig), swaps every Linear, Conv1d, Conv2d and fused
// module (LinearReLU, ConvReLU1d/2d, and the ConvBn/ConvBnReLU/LinearBn1d
// fusions of FuseModulesQAT) that has a qconfig for its nn/qat module, whose
// weight is fake-quantized by the qconfig's Weight factory, then runs
// Prepare, which attaches fake quantizers to the outputs. Train the model
// as usual (gradients pass the rounding by the straight-through
// estimator); nn/qat.EnableObserver, EnableFakeQuant and FreezeBNStats
// switch the stages over the whole model; then Convert gives the int8
// model.
func PrepareQAT(root nn.Module, opt Options) error {
	if root == nil {
		return errors.New("eager: PrepareQAT: nil model")
	}
	if !root.ModuleBase().Training() {
		return errors.New("eager: PrepareQAT: the model is in evaluation mode; call nn.Train(model) first (QAT trains the model)")
	}
	explicit, err := propagate(root, opt.Mapping)
	if err != nil {
		return fmt.Errorf("eager: PrepareQAT: %w", err)
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
			qc, _ := qconfigOf(c.Module)
			if qc == nil {
				continue
			}
			typ := nn.TypeName(c.Module)
			if qatSwappable[typ] && qc.Weight != nil {
				q, err := qat.FromFloat(c.Module, qc)
				if err != nil {
					return fmt.Errorf("eager: PrepareQAT: %s (%s): %w", p, typ, err)
				}
				q.ModuleBase().QConfig = qc
				swaps = append(swaps, swap{p, q})
				continue
			}
			if err := walk(c.Module, p); err != nil {
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
			return fmt.Errorf("eager: PrepareQAT: %w", err)
		}
	}
	for _, s := range swaps {
		explicit[s.m] = true
	}
	return prepare(root, opt, explicit)
}
