package nn

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/tensor"
)

// Optimizer updates parameters from their gradients (torch.optim).
type Optimizer interface {
	// Step applies one update to every parameter that has a gradient.
	Step()
	// ZeroGrad clears the gradients of the parameters (sets them to nil).
	ZeroGrad()
	// LR returns the learning rate.
	LR() float64
	// SetLR sets the learning rate (schedulers call it).
	SetLR(lr float64)
}

func checkParams(op string, params []*tensor.Tensor) error {
	if len(params) == 0 {
		return fmt.Errorf("nn: %s: empty parameter list", op)
	}
	seen := map[*tensor.Tensor]bool{}
	for i, p := range params {
		if p == nil {
			return fmt.Errorf("nn: %s: parameter %d is nil", op, i)
		}
		if p.DType() != tensor.Float32 {
			return fmt.Errorf("nn: %s: parameter %d (%q) is %v, want float32", op, i, p.Name(), p.DType())
		}
		if seen[p] {
			return fmt.Errorf("nn: %s: parameter %d appears twice", op, i)
		}
		seen[p] = true
	}
	return nil
}

func zeroGrads(params []*tensor.Tensor) {
	for _, p := range params {
		p.SetGrad(nil)
	}
}

// SGDOptions configure SGD; the zero value is plain SGD with no momentum.
type SGDOptions struct {
	LR          float64
	Momentum    float64
	Dampening   float64
	WeightDecay float64
	Nesterov    bool
	// Maximize ascends the objective instead of descending it.
	Maximize bool
}

// SGD is stochastic gradient descent with optional momentum, dampening,
// Nesterov momentum and L2 weight decay, with torch.optim.SGD's exact
// update per parameter p with gradient g:
//
//	g = g + weight_decay*p                          (if weight_decay != 0)
//	buf = g (first step), else buf = momentum*buf + (1-dampening)*g
//	g = g + momentum*buf (nesterov) or g = buf      (if momentum != 0)
//	p = p - lr*g
type SGD struct {
	params []*tensor.Tensor
	opts   SGDOptions
	bufs   [][]float32
}

// NewSGD returns an SGD optimizer over params.
func NewSGD(params []*tensor.Tensor, o SGDOptions) (*SGD, error) {
	if err := checkParams("NewSGD", params); err != nil {
		return nil, err
	}
	switch {
	case o.LR < 0:
		return nil, fmt.Errorf("nn: NewSGD: invalid learning rate %g", o.LR)
	case o.Momentum < 0:
		return nil, fmt.Errorf("nn: NewSGD: invalid momentum %g", o.Momentum)
	case o.WeightDecay < 0:
		return nil, fmt.Errorf("nn: NewSGD: invalid weight decay %g", o.WeightDecay)
	case o.Nesterov && (o.Momentum <= 0 || o.Dampening != 0):
		return nil, fmt.Errorf("nn: NewSGD: Nesterov momentum requires a momentum and zero dampening")
	}
	return &SGD{params: append([]*tensor.Tensor(nil), params...), opts: o, bufs: make([][]float32, len(params))}, nil
}

// LR returns the learning rate.
func (o *SGD) LR() float64 { return o.opts.LR }

// SetLR sets the learning rate.
func (o *SGD) SetLR(lr float64) { o.opts.LR = lr }

// ZeroGrad clears the parameters' gradients.
func (o *SGD) ZeroGrad() { zeroGrads(o.params) }

// Step applies one SGD update.
func (o *SGD) Step() {
	lr := float32(o.opts.LR)
	wd := float32(o.opts.WeightDecay)
	mom := float32(o.opts.Momentum)
	damp := float32(1 - o.opts.Dampening)
	for i, p := range o.params {
		if p.Grad() == nil {
			continue
		}
		w, g := p.F32(), p.Grad().F32()
		buf := o.bufs[i]
		first := buf == nil
		if mom != 0 && first {
			buf = make([]float32, len(w))
			o.bufs[i] = buf
		}
		for j := range w {
			d := g[j]
			if o.opts.Maximize {
				d = -d
			}
			if wd != 0 {
				d += wd * w[j]
			}
			if mom != 0 {
				if first {
					buf[j] = d
				} else {
					buf[j] = mom*buf[j] + damp*d
				}
				if o.opts.Nesterov {
					d += mom * buf[j]
				} else {
					d = buf[j]
				}
			}
			w[j] -= lr * d
		}
	}
}

// AdamOptions configure Adam and AdamW. Zero Beta1, Beta2 and Eps mean
// PyTorch's defaults 0.9, 0.999 and 1e-8; a zero LR means 1e-3. AdamW's
// WeightDecay has no zero default: PyTorch's is 0.01, set it explicitly.
type AdamOptions struct {
	LR           float64
	Beta1, Beta2 float64
	Eps          float64
	WeightDecay  float64
	AMSGrad      bool
	Maximize     bool
}

func (o AdamOptions) withDefaults() AdamOptions {
	if o.LR == 0 {
		o.LR = 1e-3
	}
	if o.Beta1 == 0 {
		o.Beta1 = 0.9
	}
	if o.Beta2 == 0 {
		o.Beta2 = 0.999
	}
	if o.Eps == 0 {
		o.Eps = 1e-8
	}
	return o
}

// Adam is torch.optim.Adam (decoupled is false) or torch.optim.AdamW
// (decoupled is true). Per parameter p with gradient g at step t:
//
//	p = p*(1 - lr*weight_decay)                    (AdamW)
//	g = g + weight_decay*p                         (Adam, if weight_decay != 0)
//	m = lerp(m, g, 1-beta1);  v = beta2*v + (1-beta2)*g*g
//	vmax = max(vmax, v) and v = vmax               (AMSGrad)
//	denom = sqrt(v)/sqrt(1-beta2^t) + eps
//	p = p - (lr/(1-beta1^t)) * m/denom
type Adam struct {
	params    []*tensor.Tensor
	opts      AdamOptions
	decoupled bool
	step      []int
	m, v, vm  [][]float32
}

// NewAdam returns torch.optim.Adam over params.
func NewAdam(params []*tensor.Tensor, o AdamOptions) (*Adam, error) {
	return newAdam("NewAdam", params, o, false)
}

// NewAdamW returns torch.optim.AdamW (decoupled weight decay) over params.
func NewAdamW(params []*tensor.Tensor, o AdamOptions) (*Adam, error) {
	return newAdam("NewAdamW", params, o, true)
}

func newAdam(op string, params []*tensor.Tensor, o AdamOptions, decoupled bool) (*Adam, error) {
	if err := checkParams(op, params); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	switch {
	case o.LR < 0:
		return nil, fmt.Errorf("nn: %s: invalid learning rate %g", op, o.LR)
	case o.Eps < 0:
		return nil, fmt.Errorf("nn: %s: invalid epsilon %g", op, o.Eps)
	case o.Beta1 < 0 || o.Beta1 >= 1:
		return nil, fmt.Errorf("nn: %s: invalid beta1 %g", op, o.Beta1)
	case o.Beta2 < 0 || o.Beta2 >= 1:
		return nil, fmt.Errorf("nn: %s: invalid beta2 %g", op, o.Beta2)
	case o.WeightDecay < 0:
		return nil, fmt.Errorf("nn: %s: invalid weight decay %g", op, o.WeightDecay)
	}
	n := len(params)
	return &Adam{params: append([]*tensor.Tensor(nil), params...), opts: o, decoupled: decoupled,
		step: make([]int, n), m: make([][]float32, n), v: make([][]float32, n), vm: make([][]float32, n)}, nil
}

// LR returns the learning rate.
func (o *Adam) LR() float64 { return o.opts.LR }

// SetLR sets the learning rate.
func (o *Adam) SetLR(lr float64) { o.opts.LR = lr }

// ZeroGrad clears the parameters' gradients.
func (o *Adam) ZeroGrad() { zeroGrads(o.params) }

// lerp is torch.lerp's formula for a float32 weight.
func lerp(self, end, weight float32) float32 {
	if weight < 0.5 && weight > -0.5 {
		return self + weight*(end-self)
	}
	return end - (end-self)*(1-weight)
}

// Step applies one Adam (or AdamW) update.
func (o *Adam) Step() {
	op := o.opts
	for i, p := range o.params {
		if p.Grad() == nil {
			continue
		}
		w, g := p.F32(), p.Grad().F32()
		if o.m[i] == nil {
			o.m[i] = make([]float32, len(w))
			o.v[i] = make([]float32, len(w))
			if op.AMSGrad {
				o.vm[i] = make([]float32, len(w))
			}
		}
		o.step[i]++
		t := float64(o.step[i])
		bc1 := 1 - math.Pow(op.Beta1, t)
		bc2 := 1 - math.Pow(op.Beta2, t)
		stepSize := float32(op.LR / bc1)
		bc2Sqrt := float32(math.Sqrt(bc2))
		eps := float32(op.Eps)
		w1 := float32(1 - op.Beta1)
		b2, w2 := float32(op.Beta2), float32(1-op.Beta2)
		decay := float32(1 - op.LR*op.WeightDecay)
		wd := float32(op.WeightDecay)
		m, v, vm := o.m[i], o.v[i], o.vm[i]
		for j := range w {
			d := g[j]
			if op.Maximize {
				d = -d
			}
			if o.decoupled {
				w[j] *= decay
			} else if wd != 0 {
				d += wd * w[j]
			}
			m[j] = lerp(m[j], d, w1)
			v[j] = b2*v[j] + w2*d*d
			vv := v[j]
			if op.AMSGrad {
				if vv > vm[j] {
					vm[j] = vv
				}
				vv = vm[j]
			}
			denom := float32(math.Sqrt(float64(vv)))/bc2Sqrt + eps
			w[j] -= stepSize * (m[j] / denom)
		}
	}
}
