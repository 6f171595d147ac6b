package nn

import (
	"math"
	"testing"

	"github.com/quanta-go/quanta/internal/gradcheck"
	"github.com/quanta-go/quanta/tensor"
)

// naiveInstanceNorm normalizes every (sample, channel) slice of x [N, C,
// ...] by its own mean and biased variance in float64, then applies w and
// b (nil for none).
func naiveInstanceNorm(x *tensor.Tensor, w, b []float32, eps float64) []float64 {
	n, c := x.Dim(0), x.Dim(1)
	s := x.Numel() / (n * c)
	xv := x.F32()
	out := make([]float64, len(xv))
	for i := 0; i < n*c; i++ {
		row := xv[i*s : (i+1)*s]
		var mu, q float64
		for _, v := range row {
			mu += float64(v)
		}
		mu /= float64(s)
		for _, v := range row {
			q += (float64(v) - mu) * (float64(v) - mu)
		}
		is := 1 / math.Sqrt(q/float64(s)+eps)
		for j, v := range row {
			y := (float64(v) - mu) * is
			if w != nil {
				y = y*float64(w[i%c]) + float64(b[i%c])
			}
			out[i*s+j] = y
		}
	}
	return out
}

func TestGroupNormHand(t *testing.T) {
	g := must(NewGroupNorm(2, 4, GroupNormOptions{Eps: 1e-12}))
	copy(g.Weight.F32(), []float32{1, 2, 1, 1})
	copy(g.Bias.F32(), []float32{0, 0, 0, 10})
	// Group 0 holds channels 0-1 = {1, 2, 3, 4}: mean 2.5, variance 1.25.
	// Group 1 holds channels 2-3 = {5, 5, 7, 7}: mean 6, variance 1.
	x := tensor.FromFloat32([]float32{1, 2, 3, 4, 5, 5, 7, 7}, 1, 4, 2)
	r := 1 / math.Sqrt(1.25)
	vals(t, "groupnorm", g.Forward(x), []int{1, 4, 2},
		[]float64{-1.5 * r, -0.5 * r, 2 * 0.5 * r, 2 * 1.5 * r, -1, -1, 11, 11}, 1e-6)
	if len(NamedParameters(g)) != 2 || len(StateDict(must(NewGroupNorm(1, 3, GroupNormOptions{NoAffine: true})))) != 0 {
		t.Error("affine parameters wrong")
	}
	for _, bad := range [][2]int{{0, 4}, {3, 4}, {2, 0}, {-1, 2}} {
		if _, err := NewGroupNorm(bad[0], bad[1], GroupNormOptions{}); err == nil {
			t.Errorf("NewGroupNorm(%d, %d) accepted", bad[0], bad[1])
		}
	}
	if _, err := NewGroupNorm(1, 2, GroupNormOptions{Eps: -1}); err == nil {
		t.Error("negative eps accepted")
	}
}

func TestInstanceNormNaive(t *testing.T) {
	rng := tensor.NewRNG(3)
	x := tensor.RandUniform(rng, -2, 3, 3, 4, 6)
	m := must(NewInstanceNorm1d(4, InstanceNormOptions{Affine: true, TrackRunningStats: true, Momentum: 0.3}))
	tensor.UniformFill(rng, m.Weight, 0.5, 1.5)
	tensor.UniformFill(rng, m.Bias, -1, 1)
	copy(m.RunningMean.F32(), []float32{0.5, -0.5, 1, 0})
	copy(m.RunningVar.F32(), []float32{1, 2, 0.5, 1})
	rm0 := append([]float32(nil), m.RunningMean.F32()...)
	rv0 := append([]float32(nil), m.RunningVar.F32()...)
	vals(t, "instancenorm1d", m.Forward(x), x.Shape(), naiveInstanceNorm(x, m.Weight.F32(), m.Bias.F32(), 1e-5), 2e-6)
	// Running statistics: the average over samples of each sample's
	// momentum update, with the unbiased variance.
	for c := 0; c < 4; c++ {
		var em, ev float64
		for n := 0; n < 3; n++ {
			row := x.F32()[(n*4+c)*6 : (n*4+c+1)*6]
			var mu, q float64
			for _, v := range row {
				mu += float64(v) / 6
			}
			for _, v := range row {
				q += (float64(v) - mu) * (float64(v) - mu)
			}
			em += (0.7*float64(rm0[c]) + 0.3*mu) / 3
			ev += (0.7*float64(rv0[c]) + 0.3*q/5) / 3
		}
		if math.Abs(float64(m.RunningMean.F32()[c])-em) > 1e-6 || math.Abs(float64(m.RunningVar.F32()[c])-ev) > 1e-6 {
			t.Errorf("channel %d: running stats %v %v, want %v %v", c, m.RunningMean.F32()[c], m.RunningVar.F32()[c], em, ev)
		}
	}
	// Evaluation uses the running statistics, per channel.
	Eval(m)
	y := m.Forward(x)
	want := make([]float64, x.Numel())
	for i, v := range x.F32() {
		c := (i / 6) % 4
		want[i] = (float64(v)-float64(m.RunningMean.F32()[c]))/math.Sqrt(float64(m.RunningVar.F32()[c])+1e-5)*
			float64(m.Weight.F32()[c]) + float64(m.Bias.F32()[c])
	}
	vals(t, "instancenorm1d eval", y, x.Shape(), want, 2e-6)

	// Without running statistics evaluation keeps normalizing per instance;
	// unbatched input is one sample.
	m2 := must(NewInstanceNorm2d(2, InstanceNormOptions{}))
	Eval(m2)
	x2 := tensor.RandUniform(rng, -1, 1, 2, 3, 3)
	vals(t, "instancenorm2d unbatched", m2.Forward(x2), []int{2, 3, 3}, naiveInstanceNorm(tensor.Unsqueeze(x2, 0), nil, nil, 1e-5), 2e-6)
	if len(StateDict(m2)) != 0 {
		t.Errorf("default InstanceNorm2d has state %v", StateDictKeys(m2))
	}
	keys := StateDictKeys(must(NewInstanceNorm2d(2, InstanceNormOptions{Affine: true, TrackRunningStats: true})))
	if len(keys) != 5 || keys[0] != "weight" || keys[4] != "num_batches_tracked" {
		t.Errorf("state dict keys %v", keys)
	}

	for _, o := range []InstanceNormOptions{{Eps: -1}, {Momentum: 2}, {Momentum: -0.5}} {
		if _, err := NewInstanceNorm1d(3, o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
	if _, err := NewInstanceNorm2d(0, InstanceNormOptions{}); err == nil {
		t.Error("zero features accepted")
	}
	mustPanic(t, "one spatial element", func() { must(NewInstanceNorm1d(2, InstanceNormOptions{})).Forward(tensor.Zeros(3, 2, 1)) })
	mustPanic(t, "wrong rank", func() { must(NewInstanceNorm2d(2, InstanceNormOptions{})).Forward(tensor.Zeros(2, 4)) })
	mustPanic(t, "wrong channels", func() {
		must(NewInstanceNorm1d(2, InstanceNormOptions{Affine: true})).Forward(tensor.Zeros(1, 3, 4))
	})
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s: no panic", what)
		}
	}()
	f()
}

func TestELUHand(t *testing.T) {
	e := NewELU(2)
	x := tensor.FromFloat32([]float32{-1, 0, 0.5, -3}, 4)
	vals(t, "elu", e.Forward(x), []int{4}, []float64{2 * (math.Exp(-1) - 1), 0, 0.5, 2 * (math.Exp(-3) - 1)}, 1e-6)
	if NewELU(1).Alpha != 1 {
		t.Error("alpha not kept")
	}
}

// naiveConvTranspose1d scatters every input element times the kernel into
// the output, the definition of a transposed convolution.
func naiveConvTranspose1d(x, w, b *tensor.Tensor, stride, pad, outPad, dil, groups int) (*tensor.Tensor, []float64) {
	n, cin, l := x.Dim(0), x.Dim(1), x.Dim(2)
	coutG, k := w.Dim(1), w.Dim(2)
	cout := coutG * groups
	ol := (l-1)*stride - 2*pad + dil*(k-1) + outPad + 1
	out := make([]float64, n*cout*ol)
	cinG := cin / groups
	for i := 0; i < n; i++ {
		for ci := 0; ci < cin; ci++ {
			g := ci / cinG
			for p := 0; p < l; p++ {
				v := float64(x.F32()[(i*cin+ci)*l+p])
				for co := 0; co < coutG; co++ {
					for j := 0; j < k; j++ {
						o := p*stride - pad + j*dil
						if o >= 0 && o < ol {
							out[(i*cout+g*coutG+co)*ol+o] += v * float64(w.F32()[(ci*coutG+co)*k+j])
						}
					}
				}
			}
		}
	}
	if b != nil {
		for i := range out {
			out[i] += float64(b.F32()[(i/ol)%cout])
		}
	}
	return tensor.New(tensor.Float32, n, cout, ol), out
}

func TestConvTranspose1d(t *testing.T) {
	rng := tensor.NewRNG(9)
	for _, o := range []ConvTranspose1dOptions{
		{},
		{Stride: 2, Padding: 1, OutputPadding: 1},
		{Stride: 3, Dilation: 2, Groups: 2, NoBias: true},
		{Padding: 2, Dilation: 3, OutputPadding: 2, Groups: 4},
	} {
		c := must(NewConvTranspose1d(4, 8, 3, ConvTranspose1dOptions{Stride: o.Stride, Padding: o.Padding,
			OutputPadding: o.OutputPadding, Dilation: o.Dilation, Groups: o.Groups, NoBias: o.NoBias, RNG: rng}))
		if !tensor.SameShape(c.Weight.Shape(), []int{4, 8 / max(o.Groups, 1), 3}) || (c.Bias == nil) != o.NoBias {
			t.Fatalf("%+v: weight %v bias %v", o, c.Weight.Shape(), c.Bias)
		}
		x := tensor.RandUniform(rng, -1, 1, 2, 4, 5)
		shape, want := naiveConvTranspose1d(x, c.Weight, c.Bias, c.Stride, c.Padding, c.OutputPadding, c.Dilation, c.Groups)
		vals(t, "convtranspose1d", c.Forward(x), shape.Shape(), want, 1e-5)
		// Unbatched input gives the batch's first sample.
		y0 := c.Forward(tensor.Squeeze(tensor.Narrow(x, 0, 0, 1), 0))
		vals(t, "convtranspose1d unbatched", y0, shape.Shape()[1:], want[:len(want)/2], 1e-5)

		in := append([]*tensor.Tensor{x.Clone().SetRequiresGrad(true)}, Parameters(c)...)
		if err := gradcheck.Check(func(in []*tensor.Tensor) *tensor.Tensor { return c.Forward(in[0]) }, in,
			gradcheck.Options{Eps: 1e-2, Atol: 2e-3, Rtol: 1e-2}); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
	// Initialization bound 1/sqrt(fan_in), fan_in = out/groups*k = 150.
	big := must(NewConvTranspose1d(200, 50, 3, ConvTranspose1dOptions{RNG: tensor.NewRNG(2)}))
	inBound(t, "convtranspose1d weight", big.Weight, 1/math.Sqrt(150))
	for _, o := range []ConvTranspose1dOptions{{OutputPadding: 1}, {Stride: 2, OutputPadding: 2}, {Groups: 3}, {Padding: -1}} {
		if _, err := NewConvTranspose1d(4, 8, 3, o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
	if _, err := NewConvTranspose1d(4, 8, 0, ConvTranspose1dOptions{}); err == nil {
		t.Error("kernel 0 accepted")
	}
	mustPanic(t, "4-D input", func() { big.Forward(tensor.Zeros(1, 200, 1, 3)) })
}

func TestNormELUGradcheck(t *testing.T) {
	rng := tensor.NewRNG(11)
	gn := must(NewGroupNorm(2, 4, GroupNormOptions{}))
	in1 := must(NewInstanceNorm1d(4, InstanceNormOptions{Affine: true, TrackRunningStats: true}))
	for _, p := range append(Parameters(gn), Parameters(in1)...) {
		tensor.UniformFill(rng, p, 0.5, 1.5)
	}
	model := NewSequential(gn, NewELU(1.3), in1)
	x := tensor.RandUniform(rng, -2, 2, 2, 4, 5).SetRequiresGrad(true)
	in := append([]*tensor.Tensor{x}, Parameters(model)...)
	opt := gradcheck.Options{Eps: 1e-2, Atol: 3e-3, Rtol: 3e-2}
	if err := gradcheck.Check(func(in []*tensor.Tensor) *tensor.Tensor { return model.Forward(in[0]) }, in, opt); err != nil {
		t.Errorf("train mode: %v", err)
	}
	Eval(model)
	if err := gradcheck.Check(func(in []*tensor.Tensor) *tensor.Tensor { return model.Forward(in[0]) }, in, opt); err != nil {
		t.Errorf("eval mode: %v", err)
	}
}
