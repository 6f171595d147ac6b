package quantized

import (
	"fmt"
	"math"
	"sync"

	"github.com/quanta-go/quanta/internal/kernels/qgemm"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/tensor"
)

// WeightParams is the state quantized Linear and convolution modules share,
// under PyTorch's names (see the package comment): the qint8 weight (its
// qparams travel with it), the float32 bias (nil without bias) and the
// output qparams. Change it through SetWeightBias or nn.LoadStateDict
// (which calls AfterLoadStateDict to repack), not by writing into the
// tensors.
type WeightParams struct {
	// Weight is the qint8 weight (per-tensor, or per-channel along the
	// output-channel axis).
	Weight *tensor.Tensor `nn:"weight,buffer"`
	// Bias is the float32 bias [out channels], or nil.
	Bias *tensor.Tensor `nn:"bias,buffer"`
	// Scale and ZeroPoint are the output qparams (0-d float32 and int64).
	Scale     *tensor.Tensor `nn:"scale,buffer"`
	ZeroPoint *tensor.Tensor `nn:"zero_point,buffer"`

	mu   sync.Mutex
	axis int
	pack func() error
}

// OutputQParams returns the output scale and zero point.
func (p *WeightParams) OutputQParams() (float32, int32) {
	return scalarF(p.Scale), scalarZP(p.ZeroPoint)
}

// init validates w and bias and fills p; axis is the channel axis of a
// per-channel weight and outC the number of output channels (bias length).
func (p *WeightParams) init(op string, w, bias *tensor.Tensor, axis, outC int, scale float32, zp int32, pack func() error) error {
	if w == nil || w.DType() != tensor.QInt8 {
		return fmt.Errorf("quantized: %s: weight must be qint8", op)
	}
	q := w.QParams()
	if q == nil || len(q.Scale) == 0 || len(q.Scale) != len(q.ZeroPoint) {
		return fmt.Errorf("quantized: %s: weight has no usable qparams", op)
	}
	if q.Scheme == tensor.PerChannelAffineFloatQParams {
		return fmt.Errorf("quantized: %s: float zero points are not supported for weights", op)
	}
	if q.Scheme.PerChannel() && q.Axis != axis {
		return fmt.Errorf("quantized: %s: per-channel weight along axis %d, want %d", op, q.Axis, axis)
	}
	for i, s := range q.Scale {
		if !(s > 0) || math.IsInf(float64(s), 0) {
			return fmt.Errorf("quantized: %s: weight scale %d is %v", op, i, s)
		}
	}
	if bias != nil && (bias.DType() != tensor.Float32 || bias.NDim() != 1 || bias.Dim(0) != outC) {
		return fmt.Errorf("quantized: %s: bias must be float32 [%d], got %v%v", op, outC, bias.DType(), bias.Shape())
	}
	s, z, err := outQParams(op, scale, zp)
	if err != nil {
		return err
	}
	p.Weight = w.Clone()
	p.Weight.SetQParams(q.Clone())
	if bias != nil {
		p.Bias = bias.Detach().Clone()
	}
	p.Scale, p.ZeroPoint = s, z
	p.axis, p.pack = axis, pack
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.repackLocked()
}

// repackLocked checks the weight's qparams and packs.
func (p *WeightParams) repackLocked() error {
	q := p.Weight.QParams()
	if q == nil || len(q.Scale) == 0 || len(q.Scale) != len(q.ZeroPoint) {
		return fmt.Errorf("weight has no usable qparams")
	}
	if q.Scheme.PerChannel() && (q.Axis != p.axis || len(q.Scale) != p.Weight.Dim(p.axis)) {
		return fmt.Errorf("per-channel weight qparams along axis %d with %d scales, want axis %d with %d", q.Axis, len(q.Scale), p.axis, p.Weight.Dim(p.axis))
	}
	if !q.Scheme.PerChannel() && len(q.Scale) != 1 {
		return fmt.Errorf("per-tensor weight with %d scales", len(q.Scale))
	}
	for i, s := range q.Scale {
		if !(s > 0) || math.IsInf(float64(s), 0) {
			return fmt.Errorf("weight scale %d is %v", i, s)
		}
	}
	return p.pack()
}

// AfterLoadStateDict repacks the weights after nn.LoadStateDict replaced
// them (with their qparams) and the bias.
func (p *WeightParams) AfterLoadStateDict() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.repackLocked(); err != nil {
		return fmt.Errorf("quantized: loaded state: %w", err)
	}
	return nil
}

// sync is kept for the modules' Forward: packing happens at construction,
// SetWeightBias and AfterLoadStateDict, so there is nothing to do.
func (p *WeightParams) sync(string) {}

// weightScales returns the weight scales and zero points (one or per channel).
func (p *WeightParams) weightQ() ([]float32, []int32) {
	q := p.Weight.QParams()
	return q.Scale, q.ZeroPoint
}

// requant builds the static epilogue for input scale sa: int32 bias
// RNE(b[c]/float32(sa*sw[c])) and multipliers float32(float32(sa*sw[c])/sy).
func (p *WeightParams) requant(sa float32, n int, relu bool) *qgemm.Requant {
	sw, _ := p.weightQ()
	sy, zy := p.OutputQParams()
	r := &qgemm.Requant{ZeroPoint: zy, Min: 0, Max: 255}
	if relu {
		r.Min = zy
	}
	ws := func(c int) float32 {
		if len(sw) == 1 {
			return sw[0]
		}
		return sw[c]
	}
	r.Multiplier = make([]float32, n)
	for c := range r.Multiplier {
		r.Multiplier[c] = qmath.Multiplier(sa, ws(c), sy)
	}
	if p.Bias != nil {
		b := p.Bias.F32()
		r.Bias = make([]int32, n)
		for c := range r.Bias {
			r.Bias[c] = qmath.Quantize(b[c], float32(sa*ws(c)), 0, math.MinInt32, math.MaxInt32)
		}
	}
	return r
}

// SetWeightBias replaces the weight and bias (PyTorch's set_weight_bias)
// and repacks. The shapes must stay those of the module.
func (p *WeightParams) SetWeightBias(w, bias *tensor.Tensor) error {
	if w == nil || !tensor.SameShape(w.Shape(), p.Weight.Shape()) {
		return fmt.Errorf("quantized: SetWeightBias: weight shape must stay %v", p.Weight.Shape())
	}
	outC := p.Weight.Dim(p.axis)
	if p.axis == 1 {
		outC = -1 // checked by the transposed convolution's pack
	}
	np := &WeightParams{}
	if err := np.init("SetWeightBias", w, bias, p.axis, biasLen(bias, outC), scalarF(p.Scale), scalarZP(p.ZeroPoint), func() error { return nil }); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := *p.snapshot()
	p.Weight, p.Bias = np.Weight, np.Bias
	if err := p.repackLocked(); err != nil {
		p.restore(old)
		_ = p.repackLocked()
		return err
	}
	return nil
}

type weightSnapshot struct {
	w, b *tensor.Tensor
}

func (p *WeightParams) snapshot() *weightSnapshot {
	return &weightSnapshot{p.Weight, p.Bias}
}

func (p *WeightParams) restore(s weightSnapshot) {
	p.Weight, p.Bias = s.w, s.b
}

func biasLen(b *tensor.Tensor, outC int) int {
	if outC < 0 && b != nil && b.NDim() == 1 {
		return b.Dim(0)
	}
	return outC
}
