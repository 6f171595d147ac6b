// Package gradcheck compares autograd gradients with central finite
// differences, as torch.autograd.gradcheck does, for quanta's tests.
package gradcheck

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/tensor"
)

// Options tune the comparison. The zero value uses Eps 1e-2, Atol 1e-2,
// Rtol 1e-2 (the ops compute in float32) and seed 1.
type Options struct {
	Eps, Atol, Rtol float64
	Seed            uint64
}

// Check evaluates f(inputs), weights its output with fixed random values w,
// and compares the autograd gradient of sum(w*f) with respect to every input
// that requires grad against central differences. It returns a descriptive
// error at the first mismatch.
func Check(f func(in []*tensor.Tensor) *tensor.Tensor, inputs []*tensor.Tensor, o Options) error {
	if o.Eps == 0 {
		o.Eps = 1e-2
	}
	if o.Atol == 0 {
		o.Atol = 1e-2
	}
	if o.Rtol == 0 {
		o.Rtol = 1e-2
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	for _, in := range inputs {
		if in != nil {
			in.SetGrad(nil)
		}
	}
	y := f(inputs)
	rng := tensor.NewRNG(o.Seed)
	w := tensor.RandUniform(rng, -1, 1, y.Shape()...)
	if err := autograd.Backward(y, w); err != nil {
		return err
	}
	loss := func() float64 {
		var s float64
		var out *tensor.Tensor
		autograd.NoGrad(func() { out = f(inputs) })
		for i, v := range out.F32() {
			s += float64(v) * float64(w.F32()[i])
		}
		return s
	}
	for k, in := range inputs {
		if in == nil || !in.RequiresGrad() {
			continue
		}
		g := in.Grad()
		if g == nil {
			return fmt.Errorf("gradcheck: input %d: no gradient was computed", k)
		}
		x := in.F32()
		for i := range x {
			orig := x[i]
			x[i] = orig + float32(o.Eps)
			up := loss()
			x[i] = orig - float32(o.Eps)
			down := loss()
			x[i] = orig
			num := (up - down) / (2 * o.Eps)
			ana := float64(g.F32()[i])
			if math.Abs(num-ana) > o.Atol+o.Rtol*math.Abs(num) || math.IsNaN(ana) {
				return fmt.Errorf("gradcheck: input %d element %d: analytic %g, numerical %g", k, i, ana, num)
			}
		}
	}
	return nil
}
