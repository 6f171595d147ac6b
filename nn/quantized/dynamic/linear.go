// Package dynamic holds quanta's dynamic quantized modules, after
// torch.ao.nn.quantized.dynamic: Linear (and the fused LinearReLU), LSTM,
// GRU, LSTMCell, GRUCell and RNNCell, built from float nn modules.
//
// Weights are quantized once, at construction, to qint8 (per tensor or per
// output channel, symmetric, as PyTorch's default_dynamic_qconfig and
// per_channel_dynamic_qconfig) or rounded to float16 (float16_dynamic_qconfig).
// Activations stay float32 between modules: every int8 product quantizes
// its input to quint8 on the fly with the qparams the call's min and max
// give under Options.Rule (ops/dynamic.RuleTorch reproduces PyTorch's qnnpack
// and onednn engines, RuleTorchReduceRange the x86/fbgemm engine), multiplies
// with int32 accumulation and returns float32(acc)*(s_a*s_w[c]) + bias[c].
// Biases stay float32.
//
// The recurrent modules follow PyTorch's CPU dynamic kernels
// (quantized_lstm / quantized_gru with QuantizedCellParamsDynamic): for each
// layer and direction the input projection of the whole sequence is one
// dynamic product (one set of activation qparams for all time steps and
// batch rows, bias b_ih included), and each time step adds the hidden
// projection, a dynamic product on that step's hidden state (bias b_hh),
// before float32 gate math (gate order i, f, g, o for LSTM and r, z, n for
// GRU; sigmoid and tanh in float32 within 2.5 ulp, as PyTorch computes
// them in float32). Per-step products write into buffers allocated once
// per call.
//
// State: each module's quantized weights are buffers holding qint8 tensors
// with their qparams (float16 weights as float32 tensors whose values are
// exactly representable in half precision), and its biases float32 buffers,
// under PyTorch's parameter names (weight, bias; weight_ih_l0, ...). They
// save with nn.StateDict and nn.SaveFile; load them back with this
// package's LoadStateDict, which copies the tensors, restores the weights'
// qparams and repacks the weights (nn.LoadStateDict alone copies the values
// but cannot refresh the packed weights the products run on).
//
// The modules are inference modules: dropout between recurrent layers is
// not applied, and a NaN or ±Inf activation entering an int8 product, which
// has no quantization parameters, makes Forward panic with a "dynamic: ..."
// message (as a shape mismatch does); fp16 modules propagate NaN.
package dynamic

import (
	"fmt"

	"github.com/quanta-go/quanta/nn"
	opsdyn "github.com/quanta-go/quanta/ops/dynamic"
	"github.com/quanta-go/quanta/tensor"
)

// Options configure the conversion of a float module. The zero value gives
// per-tensor int8 weights and ops/dynamic.RuleONNX activations; set Rule to
// opsdyn.RuleTorch (qnnpack, onednn and quanta presets) or
// opsdyn.RuleTorchReduceRange (x86/fbgemm preset) to reproduce PyTorch.
type Options struct {
	// Float16 rounds the weights to IEEE half and computes in float32
	// (PyTorch's float16 dynamic qconfig); PerChannel and Rule are then
	// unused.
	Float16 bool
	// PerChannel quantizes each output row with its own scale
	// (per_channel_dynamic_qconfig) instead of one scale per weight
	// tensor (default_dynamic_qconfig).
	PerChannel bool
	// Rule chooses each call's activation qparams. PyTorch's x86/fbgemm
	// engine quantizes the activations of dynamic Linear, LSTM and GRU
	// with reduce_range (opsdyn.RuleTorchReduceRange) but those of the
	// dynamic cells without it (quantized_lstm_cell_dynamic and its
	// siblings take no reduce_range flag): convert cells with
	// opsdyn.RuleTorch to reproduce that engine. qnnpack and onednn use
	// opsdyn.RuleTorch throughout.
	Rule opsdyn.Rule
}

func (o Options) scheme() opsdyn.WeightScheme {
	if o.PerChannel {
		return opsdyn.PerChannel
	}
	return opsdyn.PerTensor
}

// gemm is one packed weight matrix [out, in] with its bias, int8 or fp16,
// and the tensors that hold its state in the module's state dict.
type gemm struct {
	in, out int
	rule    opsdyn.Rule
	q       *opsdyn.PackedLinear
	h       *opsdyn.PackedLinearFP16
	weight  *tensor.Tensor // qint8 [out, in] or float32 half values
	bias    *tensor.Tensor // float32 [out] or nil
}

func newGemm(op string, w, b *tensor.Tensor, o Options) (*gemm, error) {
	if w == nil || w.DType() != tensor.Float32 || w.NDim() != 2 {
		return nil, fmt.Errorf("dynamic: %s: weight must be float32 [out, in], got %v", op, desc(w))
	}
	g := &gemm{out: w.Dim(0), in: w.Dim(1), rule: o.Rule}
	if _, err := ruleOK(op, o); err != nil {
		return nil, err
	}
	if b != nil {
		g.bias = b.Detach().Clone()
	}
	var err error
	if o.Float16 {
		if g.h, err = opsdyn.PackLinearFP16(w, g.bias); err != nil {
			return nil, fmt.Errorf("dynamic: %s: %w", op, err)
		}
		g.weight = g.h.Weight()
		return g, nil
	}
	if g.q, err = opsdyn.PackLinear(w, g.bias, o.scheme()); err != nil {
		return nil, fmt.Errorf("dynamic: %s: %w", op, err)
	}
	g.weight = g.q.Weight()
	return g, nil
}

func ruleOK(op string, o Options) (bool, error) {
	switch o.Rule {
	case opsdyn.RuleONNX, opsdyn.RuleTorch, opsdyn.RuleTorchReduceRange:
		return true, nil
	}
	return false, fmt.Errorf("dynamic: %s: unknown activation rule %v", op, o.Rule)
}

// prepare packs a loaded checkpoint's weight w and bias b (the entries
// that will replace this gemm's state) and returns the function that
// installs the packs once the state tensors have been overwritten. Nothing
// changes when it fails.
func (g *gemm) prepare(key string, w, b *tensor.Tensor) (func(), error) {
	if b == nil && g.bias != nil {
		return nil, fmt.Errorf("%s: no bias in the checkpoint", key)
	}
	if g.h != nil {
		h, err := opsdyn.PackLinearFP16(w, b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		return func() { g.h = h }, nil
	}
	q, err := opsdyn.PackLinearQuantized(w, b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if q.InFeatures() != g.in || q.OutFeatures() != g.out {
		return nil, fmt.Errorf("%s: weight %v, want [%d, %d]", key, w.Shape(), g.out, g.in)
	}
	qp := w.QParams().Clone()
	return func() { g.q = q; g.weight.SetQParams(qp) }, nil
}

// rows computes y = x Wᵀ + b for m contiguous rows of x into y. For fp16
// weights xt and yt are x and y as [m, in] and [m, out] tensors.
func (g *gemm) rows(m int, x []float32, xt *tensor.Tensor, y []float32, yt *tensor.Tensor) {
	var err error
	if g.h != nil {
		err = opsdyn.LinearFP16Into(yt, xt, g.h)
	} else {
		err = opsdyn.LinearRows(m, x, g.in, g.q, g.rule, y, g.out)
	}
	if err != nil {
		panic("dynamic: " + err.Error())
	}
}

// view returns s as an [m, n] tensor for fp16 products (nil for int8,
// which runs on slices).
func (g *gemm) view(s []float32, m, n int) *tensor.Tensor {
	if g.h == nil {
		return nil
	}
	return tensor.FromFloat32(s[:m*n], m, n)
}

func desc(t *tensor.Tensor) string {
	if t == nil {
		return "nil"
	}
	return fmt.Sprintf("%v%v", t.DType(), t.Shape())
}

// Linear is a dynamic quantized linear layer y = x Wᵀ + b
// (torch.ao.nn.quantized.dynamic.Linear): int8 weights [out, in] (or fp16),
// float32 input [..., in] quantized per call, float32 output [..., out].
// Its state dict holds "weight" (qint8 with qparams, or float32 half
// values) and "bias" (float32, absent without bias).
type Linear struct {
	nn.Base
	InFeatures, OutFeatures int
	// ReLU clamps the output at zero (the fused LinearReLU).
	ReLU bool
	g    *gemm
}

// LinearFromFloat converts a float Linear (torch's
// quantize_dynamic/from_float).
func LinearFromFloat(f *nn.Linear, o Options) (*Linear, error) {
	return newLinear("LinearFromFloat", f, false, o)
}

// LinearReLUFromFloat converts a float Linear followed by a ReLU into the
// fused dynamic LinearReLU (torch.ao.nn.intrinsic.quantized.dynamic.LinearReLU):
// the output of the dynamic product is clamped at zero.
func LinearReLUFromFloat(f *nn.Linear, o Options) (*Linear, error) {
	return newLinear("LinearReLUFromFloat", f, true, o)
}

func newLinear(op string, f *nn.Linear, relu bool, o Options) (*Linear, error) {
	if f == nil {
		return nil, fmt.Errorf("dynamic: %s: nil module", op)
	}
	g, err := newGemm(op, f.Weight, f.Bias, o)
	if err != nil {
		return nil, err
	}
	l := &Linear{InFeatures: g.in, OutFeatures: g.out, ReLU: relu, g: g}
	l.RegisterBuffer("weight", g.weight)
	if g.bias != nil {
		l.RegisterBuffer("bias", g.bias)
	}
	nn.Eval(l)
	return l, nil
}

// TypeName returns "quantized.dynamic.Linear" or
// "quantized.dynamic.LinearReLU".
func (l *Linear) TypeName() string {
	if l.ReLU {
		return "quantized.dynamic.LinearReLU"
	}
	return "quantized.dynamic.Linear"
}

// Float16 reports whether the weights are float16.
func (l *Linear) Float16() bool { return l.g.h != nil }

// Weight returns the weights: qint8 with qparams, or float32 half values
// (shared: read only).
func (l *Linear) Weight() *tensor.Tensor { return l.g.weight }

// Forward applies the layer to float32 x [..., in]. A wrong dtype or shape,
// or a NaN or ±Inf in x, panics.
func (l *Linear) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(l, x, func(x *tensor.Tensor) *tensor.Tensor {
		if x == nil || x.DType() != tensor.Float32 || x.NDim() < 1 || x.Dim(-1) != l.InFeatures {
			panic(fmt.Sprintf("dynamic: Linear: input must be float32 [..., %d], got %v", l.InFeatures, desc(x)))
		}
		shape := append(append([]int(nil), x.Shape()[:x.NDim()-1]...), l.OutFeatures)
		y := tensor.New(tensor.Float32, shape...)
		m := y.Numel() / max(l.OutFeatures, 1)
		l.g.rows(m, x.F32(), l.g.view(x.F32(), m, l.InFeatures), y.F32(), l.g.view(y.F32(), m, l.OutFeatures))
		if l.ReLU {
			v := y.F32()
			for i, a := range v {
				v[i] = max(a, 0)
			}
		}
		return y
	})
}

func (l *Linear) reload(prefix string, sd map[string]*tensor.Tensor) ([]func(), error) {
	f, err := l.g.prepare(prefix+"weight", sd[prefix+"weight"], sd[prefix+"bias"])
	return []func(){f}, err
}

// reloader is implemented by the modules of this package: it packs a
// checkpoint's weights (module state under prefix) and returns the
// functions that install the packs and the weights' qparams once the
// state tensors have been overwritten.
type reloader interface {
	reload(prefix string, sd map[string]*tensor.Tensor) ([]func(), error)
}

// LoadStateDict loads sd into root as nn.LoadStateDict does (strict: every
// key, dtype and shape must match) and brings every dynamic module under
// root up to date: quantized weights take the checkpoint's qparams and all
// weights are repacked. Every weight of sd is checked and packed before
// anything is copied, so on error root is unchanged. Use it instead of
// nn.LoadStateDict for models holding this package's modules.
func LoadStateDict(root nn.Module, sd map[string]*tensor.Tensor) error {
	var commits []func()
	for _, nm := range nn.NamedModules(root) {
		r, ok := nm.Module.(reloader)
		if !ok {
			continue
		}
		prefix := ""
		if nm.Name != "" {
			prefix = nm.Name + "."
		}
		fs, err := r.reload(prefix, sd)
		if err != nil {
			return fmt.Errorf("dynamic: LoadStateDict: %w", err)
		}
		commits = append(commits, fs...)
	}
	if err := nn.LoadStateDict(root, sd); err != nil {
		return err
	}
	for _, f := range commits {
		f()
	}
	return nil
}
