package intrinsic

import (
	"errors"
	"fmt"
	"math"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/tensor"
)

// BNScale returns the per-channel factors gamma/sqrt(var+eps) of an
// evaluation-mode batch norm, with PyTorch's float32 arithmetic: the sum
// var+eps and the square root are each rounded to float32, then
// rsqrt = 1/sqrt (torch.rsqrt on CPU) and gamma*rsqrt are rounded to float32.
// The second result holds rsqrt itself. A batch norm without affine
// parameters has gamma = 1.
func BNScale(bn *nn.BatchNorm) (scale, rsqrt []float32, err error) {
	if bn.RunningMean == nil || bn.RunningVar == nil {
		return nil, nil, errors.New("intrinsic: batch norm keeps no running statistics (track_running_stats=False) and cannot be folded")
	}
	rv := bn.RunningVar.F32()
	scale = make([]float32, len(rv))
	rsqrt = make([]float32, len(rv))
	for c, v := range rv {
		s := float32(math.Sqrt(float64(float32(v + bn.Eps))))
		r := float32(1) / s
		rsqrt[c] = r
		g := float32(1)
		if bn.Weight != nil {
			g = bn.Weight.F32()[c]
		}
		scale[c] = float32(g * r)
	}
	return scale, rsqrt, nil
}

// foldWeights is torch.nn.utils.fusion.fuse_conv_bn_weights on raw slices:
// w' = w * (gamma*rsqrt) per output channel, and
// b' = ((b - mean) * rsqrt) * gamma + beta, each operation rounded to float32
// in PyTorch's order. chanOf maps a weight element index to its output
// channel. b may be nil (zeros).
func foldWeights(w, b []float32, bn *nn.BatchNorm, chanOf func(i int) int) (wf, bf []float32, err error) {
	scale, rsqrt, err := BNScale(bn)
	if err != nil {
		return nil, nil, err
	}
	wf = make([]float32, len(w))
	for i, v := range w {
		wf[i] = float32(v * scale[chanOf(i)])
	}
	rm := bn.RunningMean.F32()
	bf = make([]float32, len(scale))
	for c := range bf {
		var bc, g, beta float32 = 0, 1, 0
		if b != nil {
			bc = b[c]
		}
		if bn.Weight != nil {
			g = bn.Weight.F32()[c]
		}
		if bn.Bias != nil {
			beta = bn.Bias.F32()[c]
		}
		t := float32(float32(bc-rm[c]) * rsqrt[c])
		bf[c] = float32(t*g) + beta
	}
	return wf, bf, nil
}

// foldLinearWeights is torch.nn.utils.fusion.fuse_linear_bn_weights:
// scale = gamma*rsqrt, w' = w*scale per row and b' = (b - mean)*scale + beta
// (a different association from the conv rule, as in PyTorch).
func foldLinearWeights(w, b []float32, in int, bn *nn.BatchNorm) (wf, bf []float32, err error) {
	scale, _, err := BNScale(bn)
	if err != nil {
		return nil, nil, err
	}
	wf = make([]float32, len(w))
	for i, v := range w {
		wf[i] = float32(v * scale[i/in])
	}
	rm := bn.RunningMean.F32()
	bf = make([]float32, len(scale))
	for c := range bf {
		var bc, beta float32
		if b != nil {
			bc = b[c]
		}
		if bn.Bias != nil {
			beta = bn.Bias.F32()[c]
		}
		bf[c] = float32(float32(bc-rm[c])*scale[c]) + beta
	}
	return wf, bf, nil
}

func checkEval(op string, layer, bn nn.Module) error {
	if layer.ModuleBase().Training() || bn.ModuleBase().Training() {
		return fmt.Errorf("intrinsic: %s: folding needs both modules in evaluation mode (torch's fuse_conv_bn_eval asserts the same)", op)
	}
	return nil
}

func f32(t *tensor.Tensor) []float32 {
	if t == nil {
		return nil
	}
	return t.F32()
}

func param(data []float32, shape ...int) *tensor.Tensor {
	return tensor.FromFloat32(data, shape...).SetRequiresGrad(true)
}

// FoldConvBN2d returns a new Conv2d computing bn(conv(x)) for an
// evaluation-mode bn, as torch.nn.utils.fuse_conv_bn_eval: the weight of
// output channel c is scaled by gamma[c]/sqrt(var[c]+eps) and the bias becomes
// (b - mean)*gamma/sqrt(var+eps) + beta (a conv without bias counts as a zero
// bias; the result always has one). conv and bn are left unchanged; the new
// conv is in evaluation mode and keeps conv's QConfig.
func FoldConvBN2d(conv *nn.Conv2d, bn *nn.BatchNorm2d) (*nn.Conv2d, error) {
	if conv == nil || bn == nil {
		return nil, errors.New("intrinsic: FoldConvBN2d: nil module")
	}
	return foldConv("FoldConvBN2d", conv, conv.OutChannels, conv.Weight, conv.Bias, &bn.BatchNorm, func(w, b *tensor.Tensor) *nn.Conv2d {
		return &nn.Conv2d{
			InChannels: conv.InChannels, OutChannels: conv.OutChannels,
			KernelSize: conv.KernelSize, Stride: conv.Stride, Padding: conv.Padding, Dilation: conv.Dilation,
			Groups: conv.Groups, Weight: w, Bias: b,
		}
	})
}

// FoldConvBN1d is FoldConvBN2d for Conv1d and BatchNorm1d.
func FoldConvBN1d(conv *nn.Conv1d, bn *nn.BatchNorm1d) (*nn.Conv1d, error) {
	if conv == nil || bn == nil {
		return nil, errors.New("intrinsic: FoldConvBN1d: nil module")
	}
	return foldConv("FoldConvBN1d", conv, conv.OutChannels, conv.Weight, conv.Bias, &bn.BatchNorm, func(w, b *tensor.Tensor) *nn.Conv1d {
		return &nn.Conv1d{
			InChannels: conv.InChannels, OutChannels: conv.OutChannels,
			KernelSize: conv.KernelSize, Stride: conv.Stride, Padding: conv.Padding, Dilation: conv.Dilation,
			Groups: conv.Groups, Weight: w, Bias: b,
		}
	})
}

// foldConv is FoldConvBN1d and FoldConvBN2d (named op in errors) for conv,
// with out output channels, weight w [out, ...] and bias b (nil means
// zeros), and bn: it returns the conv that build makes from the folded
// weight and bias, with conv's QConfig and in evaluation mode.
func foldConv[C nn.Module](op string, conv nn.Module, out int, w, b *tensor.Tensor, bn *nn.BatchNorm,
	build func(w, b *tensor.Tensor) C) (C, error) {
	var folded C
	if err := checkBN(op, out, bn); err != nil {
		return folded, err
	}
	if err := checkEval(op, conv, bn); err != nil {
		return folded, err
	}
	per := w.Numel() / out
	fw, fb, err := foldWeights(w.F32(), f32(b), bn, func(i int) int { return i / per })
	if err != nil {
		return folded, err
	}
	folded = build(param(fw, w.Shape()...), param(fb, out))
	folded.ModuleBase().QConfig = conv.ModuleBase().QConfig
	nn.Eval(folded)
	return folded, nil
}

// FoldConvTransposeBN2d is FoldConvBN2d for ConvTranspose2d, whose weight
// [in, out/groups, kH, kW] holds output channels on axis 1 (PyTorch's
// transpose=True). With groups > 1 the output channel of weight[i, j] is
// (i / (in/groups))*(out/groups) + j; PyTorch's reshape fails there, quanta
// folds it correctly.
func FoldConvTransposeBN2d(conv *nn.ConvTranspose2d, bn *nn.BatchNorm2d) (*nn.ConvTranspose2d, error) {
	if conv == nil || bn == nil {
		return nil, errors.New("intrinsic: FoldConvTransposeBN2d: nil module")
	}
	if err := checkBN("FoldConvTransposeBN2d", conv.OutChannels, &bn.BatchNorm); err != nil {
		return nil, err
	}
	if err := checkEval("FoldConvTransposeBN2d", conv, bn); err != nil {
		return nil, err
	}
	sh := conv.Weight.Shape()
	g := max(conv.Groups, 1)
	inPer, outPer, k := sh[0]/g, sh[1], sh[2]*sh[3]
	w, b, err := foldWeights(conv.Weight.F32(), f32(conv.Bias), &bn.BatchNorm, func(i int) int {
		r := i / k
		in, j := r/outPer, r%outPer
		return (in/inPer)*outPer + j
	})
	if err != nil {
		return nil, err
	}
	out := &nn.ConvTranspose2d{
		InChannels: conv.InChannels, OutChannels: conv.OutChannels,
		KernelSize: conv.KernelSize, Stride: conv.Stride, Padding: conv.Padding,
		OutputPadding: conv.OutputPadding, Dilation: conv.Dilation, Groups: conv.Groups,
		Weight: param(w, sh...), Bias: param(b, conv.OutChannels),
	}
	out.QConfig = conv.QConfig
	nn.Eval(out)
	return out, nil
}

// FoldLinearBN returns a new Linear computing bn(linear(x)) for an
// evaluation-mode bn, as torch.nn.utils.fuse_linear_bn_eval: row c of the
// weight is scaled by s[c] = gamma[c]/sqrt(var[c]+eps) and the bias becomes
// (b - mean)*s + beta.
func FoldLinearBN(linear *nn.Linear, bn *nn.BatchNorm1d) (*nn.Linear, error) {
	if linear == nil || bn == nil {
		return nil, errors.New("intrinsic: FoldLinearBN: nil module")
	}
	if err := checkBN("FoldLinearBN", linear.OutFeatures, &bn.BatchNorm); err != nil {
		return nil, err
	}
	if err := checkEval("FoldLinearBN", linear, bn); err != nil {
		return nil, err
	}
	w, b, err := foldLinearWeights(linear.Weight.F32(), f32(linear.Bias), linear.InFeatures, &bn.BatchNorm)
	if err != nil {
		return nil, err
	}
	out := &nn.Linear{
		InFeatures: linear.InFeatures, OutFeatures: linear.OutFeatures,
		Weight: param(w, linear.Weight.Shape()...), Bias: param(b, linear.OutFeatures),
	}
	out.QConfig = linear.QConfig
	nn.Eval(out)
	return out, nil
}

// FoldBN folds an evaluation-mode batch norm into the layer before it, for
// every pair PyTorch's eager fusion folds: Conv1d+BatchNorm1d,
// Conv2d+BatchNorm2d, ConvTranspose2d+BatchNorm2d and Linear+BatchNorm1d.
// Other pairs are an error.
func FoldBN(layer, bn nn.Module) (nn.Layer, error) {
	switch l := layer.(type) {
	case *nn.Conv2d:
		if b, ok := bn.(*nn.BatchNorm2d); ok {
			return FoldConvBN2d(l, b)
		}
	case *nn.Conv1d:
		if b, ok := bn.(*nn.BatchNorm1d); ok {
			return FoldConvBN1d(l, b)
		}
	case *nn.ConvTranspose2d:
		if b, ok := bn.(*nn.BatchNorm2d); ok {
			return FoldConvTransposeBN2d(l, b)
		}
	case *nn.Linear:
		if b, ok := bn.(*nn.BatchNorm1d); ok {
			return FoldLinearBN(l, b)
		}
	}
	return nil, fmt.Errorf("intrinsic: FoldBN: cannot fold %s into %s", nn.TypeName(bn), nn.TypeName(layer))
}

// FuseConvBNWeights is torch.nn.utils.fusion.fuse_conv_bn_weights for a
// convolution weight w [out, ...] (output channels on axis 0) and bias b
// (nil means zeros): it returns new tensors w' = w*gamma/sqrt(var+eps) per
// output channel and b' = (b - mean)/sqrt(var+eps)*gamma + beta, whatever
// bn's mode (QAT's to_float and convert fold this way). bn must keep running
// statistics.
func FuseConvBNWeights(w, b *tensor.Tensor, bn *nn.BatchNorm) (wf, bf *tensor.Tensor, err error) {
	if w.NDim() < 1 || w.Dim(0) != bn.NumFeatures {
		return nil, nil, fmt.Errorf("intrinsic: FuseConvBNWeights: weight %v does not have %d output channels", w.Shape(), bn.NumFeatures)
	}
	per := w.Numel() / bn.NumFeatures
	fw, fb, err := foldWeights(w.F32(), f32(b), bn, func(i int) int { return i / per })
	if err != nil {
		return nil, nil, err
	}
	return param(fw, w.Shape()...), param(fb, bn.NumFeatures), nil
}

// FuseLinearBNWeights is torch.nn.utils.fusion.fuse_linear_bn_weights for a
// weight w [out, in] and bias b (nil means zeros), whatever bn's mode.
func FuseLinearBNWeights(w, b *tensor.Tensor, bn *nn.BatchNorm) (wf, bf *tensor.Tensor, err error) {
	if w.NDim() != 2 || w.Dim(0) != bn.NumFeatures {
		return nil, nil, fmt.Errorf("intrinsic: FuseLinearBNWeights: weight %v does not have %d rows", w.Shape(), bn.NumFeatures)
	}
	fw, fb, err := foldLinearWeights(w.F32(), f32(b), w.Dim(1), bn)
	if err != nil {
		return nil, nil, err
	}
	return param(fw, w.Shape()...), param(fb, bn.NumFeatures), nil
}
