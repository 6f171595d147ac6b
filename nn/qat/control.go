package qat

import (
	"fmt"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/nn/intrinsic"
	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/quant/fakequant"
)

// FromFloat returns the QAT module for a float or fused module, as
// PyTorch's QAT module mapping: Linear, Conv1d, Conv2d and the intrinsic
// LinearReLU, ConvReLU1d/2d, ConvBn1d/2d, ConvBnReLU1d/2d and LinearBn1d.
// A nil qc means the module's own QConfig. Any other module is an error.
func FromFloat(m nn.Module, qc *quant.QConfig) (Module, error) {
	switch f := m.(type) {
	case *nn.Linear:
		return LinearFromFloat(f, qc)
	case *nn.Conv1d:
		return Conv1dFromFloat(f, qc)
	case *nn.Conv2d:
		return Conv2dFromFloat(f, qc)
	case *intrinsic.LinearReLU:
		return LinearReLUFromFloat(f, qc)
	case *intrinsic.ConvReLU1d:
		return ConvReLU1dFromFloat(f, qc)
	case *intrinsic.ConvReLU2d:
		return ConvReLU2dFromFloat(f, qc)
	case *intrinsic.ConvBn1d:
		return ConvBn1dFromFloat(f, qc)
	case *intrinsic.ConvBn2d:
		return ConvBn2dFromFloat(f, qc)
	case *intrinsic.ConvBnReLU1d:
		return ConvBnReLU1dFromFloat(f, qc)
	case *intrinsic.ConvBnReLU2d:
		return ConvBnReLU2dFromFloat(f, qc)
	case *intrinsic.LinearBn1d:
		return LinearBn1dFromFloat(f, qc)
	case nil:
		return nil, errNilModule
	}
	return nil, fmt.Errorf("qat: FromFloat: no QAT module for %s", nn.TypeName(m))
}

// weightHolder is a module with a weight fake quantizer.
type weightHolder interface {
	WeightFakeQuantizer() fakequant.FakeQuantizer
}

// switchable is a fake quantizer (or a module wrapping one, such as an
// activation post-process) whose stages can be switched.
type switchable interface {
	EnableObserver(on bool)
	EnableFakeQuant(on bool)
}

// bnFreezer is a Conv-BN QAT module.
type bnFreezer interface {
	FreezeBNStats()
	UpdateBNStats()
}

// visit calls fn on every fake quantizer under root: the weight fake
// quantizers of QAT modules, and every module (such as an
// activation_post_process) that is itself switchable.
func visit(root nn.Module, fn func(s switchable)) {
	for _, m := range nn.Modules(root) {
		if w, ok := m.(weightHolder); ok {
			if s, ok := w.WeightFakeQuantizer().(switchable); ok && s != nil {
				fn(s)
			}
		}
		if s, ok := m.(switchable); ok {
			fn(s)
		}
	}
}

// EnableObserver switches observation on or off in every fake quantizer
// under root (torch.ao.quantization.enable_observer / disable_observer
// applied with model.apply): weights' and activations'. Turning observers off
// keeps the current qparams, as PyTorch's QAT recipes do after a few epochs.
func EnableObserver(root nn.Module, on bool) {
	visit(root, func(s switchable) { s.EnableObserver(on) })
}

// EnableFakeQuant switches fake quantization on or off in every fake
// quantizer under root (enable_fake_quant / disable_fake_quant). With it off
// a QAT Linear or Conv computes exactly its float module's output.
func EnableFakeQuant(root nn.Module, on bool) {
	visit(root, func(s switchable) { s.EnableFakeQuant(on) })
}

// FreezeBNStats freezes the batch norm statistics of every Conv-BN QAT
// module under root (torch.nn.intrinsic.qat.freeze_bn_stats): they
// normalize with, and no longer update, their running statistics.
func FreezeBNStats(root nn.Module) {
	for _, m := range nn.Modules(root) {
		if f, ok := m.(bnFreezer); ok {
			f.FreezeBNStats()
		}
	}
}

// UpdateBNStats undoes FreezeBNStats under root
// (torch.nn.intrinsic.qat.update_bn_stats).
func UpdateBNStats(root nn.Module) {
	for _, m := range nn.Modules(root) {
		if f, ok := m.(bnFreezer); ok {
			f.UpdateBNStats()
		}
	}
}

// Every QAT module of the package implements Module.
var (
	_ Module = (*Linear)(nil)
	_ Module = (*Conv1d)(nil)
	_ Module = (*Conv2d)(nil)
	_ Module = (*LinearReLU)(nil)
	_ Module = (*ConvReLU1d)(nil)
	_ Module = (*ConvReLU2d)(nil)
	_ Module = (*ConvBn1d)(nil)
	_ Module = (*ConvBn2d)(nil)
	_ Module = (*ConvBnReLU1d)(nil)
	_ Module = (*ConvBnReLU2d)(nil)
	_ Module = (*LinearBn1d)(nil)
)
