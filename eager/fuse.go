// Package eager is quanta's eager-mode quantization, after
// torch.ao.quantization's eager API, with PyTorch's three workflows:
//
//   - Dynamic: QuantizeDynamic swaps Linear, LSTM, GRU and the RNN cells
//     for modules with int8 (or float16) weights whose activations are
//     quantized per call.
//   - Static (post-training): FuseModules, SetQConfig (or a
//     quant.QConfigMapping in Options), Prepare to attach observers, a
//     calibration run, Convert to swap in nn/quantized modules; or
//     Quantize for all of it.
//   - Quantization-aware training: FuseModulesQAT, PrepareQAT (nn/qat
//     modules with fake quantization), training, Convert; or QuantizeQAT.
//
// A model marks its float boundaries with nn.QuantStub and nn.DeQuantStub
// and does residual adds and concatenations through an nn.FloatFunctional,
// as in PyTorch. Modules are addressed by dotted path; fields that
// quantization replaces must be of an nn interface type (nn.Layer,
// nn.Functional), as nn.Set requires. Everything works in place. Errors
// name the module path and say what to do.
package eager

import (
	"errors"
	"fmt"
	"strings"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/nn/intrinsic"
)

// FuseModules fuses each group of modules, named by dotted paths, into
// one module, as torch.ao.quantization.fuse_modules (in place). The first
// module of a group is replaced by the fused module and the others by
// nn.Identity. The model must be in eval mode: batch norms are folded into
// the preceding convolution or linear layer. Supported groups, as PyTorch:
//
//	Conv1d/Conv2d + BatchNorm      -> folded Conv
//	Conv1d/Conv2d + BatchNorm + ReLU -> ConvReLU1d/2d (folded)
//	Conv1d/Conv2d + ReLU           -> ConvReLU1d/2d
//	Linear + ReLU                  -> LinearReLU
//	Linear + BatchNorm1d           -> folded Linear
//	BatchNorm2d + ReLU             -> BNReLU2d
//	ConvTranspose2d + BatchNorm2d  -> folded ConvTranspose2d
//
// Every group is checked before anything changes: an error (unknown path,
// a sequence that cannot be fused, a module in training mode, a field that
// cannot hold the fused module) leaves the model as it was, except that a
// failing nn.Set midway is reported with the group it concerns.
func FuseModules(root nn.Module, groups [][]string) error { return fuse(root, groups, false) }

// FuseModulesQAT is FuseModules for quantization-aware training
// (torch.ao.quantization.fuse_modules_qat): batch norms are kept, in the
// fused ConvBn1d/2d, ConvBnReLU1d/2d and LinearBn1d modules that nn/qat
// turns into modules simulating the folding while training. The model must
// be in training mode. ConvTranspose + BatchNorm has no QAT form.
func FuseModulesQAT(root nn.Module, groups [][]string) error { return fuse(root, groups, true) }

type plan struct {
	names []string
	fused nn.Module
}

func fuse(root nn.Module, groups [][]string, qat bool) error {
	if root == nil {
		return errors.New("eager: FuseModules: nil model")
	}
	seen := map[string]bool{}
	var plans []plan
	for _, g := range groups {
		if len(g) < 2 || len(g) > 3 {
			return fmt.Errorf("eager: FuseModules: group %q: want 2 or 3 module names", g)
		}
		mods := make([]nn.Module, len(g))
		for i, name := range g {
			if seen[name] {
				return fmt.Errorf("eager: FuseModules: %s appears in more than one group", name)
			}
			seen[name] = true
			m, err := nn.Get(root, name)
			if err != nil {
				return fmt.Errorf("eager: FuseModules: %w", err)
			}
			mods[i] = m
		}
		fused, err := fuseOne(g, mods, qat)
		if err != nil {
			return err
		}
		plans = append(plans, plan{g, fused})
	}
	for _, p := range plans {
		if err := nn.Set(root, p.names[0], p.fused); err != nil {
			return fmt.Errorf("eager: FuseModules: group %q: %w", p.names, err)
		}
		for _, name := range p.names[1:] {
			if err := nn.Set(root, name, nn.NewIdentity()); err != nil {
				return fmt.Errorf("eager: FuseModules: group %q: %w", p.names, err)
			}
		}
	}
	return nil
}

func typeNames(mods []nn.Module) string {
	var ts []string
	for _, m := range mods {
		ts = append(ts, nn.TypeName(m))
	}
	return strings.Join(ts, ", ")
}

func fuseOne(names []string, mods []nn.Module, qat bool) (nn.Module, error) {
	where := fmt.Sprintf("eager: FuseModules: %s (%s)", strings.Join(names, ", "), typeNames(mods))
	for i, m := range mods {
		if tr := m.ModuleBase().Training(); tr != qat {
			if qat {
				return nil, fmt.Errorf("%s: %s is in eval mode; QAT fusion needs training mode (nn.Train(model))", where, names[i])
			}
			return nil, fmt.Errorf("%s: %s is in training mode; fusing for inference folds batch norms with their running statistics, so call nn.Eval(model) first (or use FuseModulesQAT)", where, names[i])
		}
	}
	var relu *nn.ReLU
	if len(mods) == 3 || len(mods) == 2 {
		relu, _ = mods[len(mods)-1].(*nn.ReLU)
	}
	var (
		out nn.Module
		err error
	)
	switch a := mods[0].(type) {
	case *nn.Conv2d:
		switch {
		case len(mods) == 2 && relu != nil:
			out, err = intrinsic.NewConvReLU2d(a, relu)
		case len(mods) >= 2:
			bn, ok := mods[1].(*nn.BatchNorm2d)
			if !ok || (len(mods) == 3 && relu == nil) {
				break
			}
			switch {
			case qat && len(mods) == 3:
				out, err = intrinsic.NewConvBnReLU2d(a, bn, relu)
			case qat:
				out, err = intrinsic.NewConvBn2d(a, bn)
			default:
				var c *nn.Conv2d
				if c, err = intrinsic.FoldConvBN2d(a, bn); err == nil {
					out = c
					if len(mods) == 3 {
						out, err = intrinsic.NewConvReLU2d(c, relu)
					}
				}
			}
		}
	case *nn.Conv1d:
		switch {
		case len(mods) == 2 && relu != nil:
			out, err = intrinsic.NewConvReLU1d(a, relu)
		case len(mods) >= 2:
			bn, ok := mods[1].(*nn.BatchNorm1d)
			if !ok || (len(mods) == 3 && relu == nil) {
				break
			}
			switch {
			case qat && len(mods) == 3:
				out, err = intrinsic.NewConvBnReLU1d(a, bn, relu)
			case qat:
				out, err = intrinsic.NewConvBn1d(a, bn)
			default:
				var c *nn.Conv1d
				if c, err = intrinsic.FoldConvBN1d(a, bn); err == nil {
					out = c
					if len(mods) == 3 {
						out, err = intrinsic.NewConvReLU1d(c, relu)
					}
				}
			}
		}
	case *nn.Linear:
		if len(mods) != 2 {
			break
		}
		if relu != nil {
			out, err = intrinsic.NewLinearReLU(a, relu)
		} else if bn, ok := mods[1].(*nn.BatchNorm1d); ok {
			if qat {
				out, err = intrinsic.NewLinearBn1d(a, bn)
			} else {
				out, err = intrinsic.FoldLinearBN(a, bn)
			}
		}
	case *nn.BatchNorm2d:
		if len(mods) == 2 && relu != nil {
			out, err = intrinsic.NewBNReLU2d(a, relu)
		}
	case *nn.ConvTranspose2d:
		if bn, ok := mods[1].(*nn.BatchNorm2d); ok && len(mods) == 2 {
			if qat {
				return nil, fmt.Errorf("%s: ConvTranspose2d + BatchNorm2d fuses for inference only (as in PyTorch); fuse it with FuseModules in eval mode", where)
			}
			out, err = intrinsic.FoldConvTransposeBN2d(a, bn)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if out == nil {
		return nil, fmt.Errorf("%s: not a fusable sequence (want conv+bn, conv+bn+relu, conv+relu, linear+relu, linear+bn1d, bn2d+relu or convtranspose2d+bn2d)", where)
	}
	return out, nil
}
