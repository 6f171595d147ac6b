package eager

import (
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	opsq "github.com/quanta-go/quanta/ops/quantized"
	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/tensor"
)

// upNet is the decoder step of a segmentation or detection model as a
// PyTorch user writes it for eager mode: a convolution, then nn.Upsample.
type upNet struct {
	nn.Base
	Quant   nn.Layer `nn:"quant"`
	Conv    nn.Layer `nn:"conv"`
	Up      nn.Layer `nn:"up"`
	DeQuant nn.Layer `nn:"dequant"`
}

func (n *upNet) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(n, x, func(x *tensor.Tensor) *tensor.Tensor {
		return n.DeQuant.Forward(n.Up.Forward(n.Conv.Forward(n.Quant.Forward(x))))
	})
}

func TestQuantizeKeepsUpsample(t *testing.T) {
	for _, c := range []struct {
		name string
		o    nn.UpsampleOptions
	}{
		{"nearest_x2", nn.UpsampleOptions{ScaleFactor: [2]float64{2, 2}}},
		{"bilinear_x1.5x2.5", nn.UpsampleOptions{ScaleFactor: [2]float64{1.5, 2.5}, Mode: "bilinear"}},
		{"bilinear_align_13x11", nn.UpsampleOptions{Size: [2]int{13, 11}, Mode: "bilinear", AlignCorners: true}},
	} {
		o := c.o
		t.Run(c.name, func(t *testing.T) {
			rng := tensor.NewRNG(3)
			conv, err := nn.NewConv2d(3, 6, nn.Pair(3), nn.Conv2dOptions{Padding: nn.Pair(1), RNG: rng})
			must(t, err)
			up, err := nn.NewUpsample(o)
			must(t, err)
			m := &upNet{Quant: nn.NewQuantStub(nil), Conv: conv, Up: up, DeQuant: nn.NewDeQuantStub(nil)}
			nn.AssignPaths(m)
			nn.Eval(m)
			x := tensor.Randn(tensor.NewRNG(4), 4, 3, 8, 8)
			var want *tensor.Tensor
			autograd.NoGrad(func() { want = m.Forward(x) })

			qc, err := quant.DefaultQConfig("qnnpack")
			must(t, err)
			SetQConfig(m, qc)
			// A qconfig on the Upsample itself is accepted: it runs natively.
			SetQConfig(up, qc)
			calib := func(p nn.Module) error {
				if obs := p.(*upNet).Up.ModuleBase().ActivationPostProcess; obs != nil {
					t.Errorf("Prepare observes the Upsample's output (%s)", nn.TypeName(obs))
				}
				autograd.NoGrad(func() {
					g := tensor.NewRNG(5)
					for range 4 {
						p.(*upNet).Forward(tensor.Randn(g, 4, 3, 8, 8))
					}
					p.(*upNet).Forward(x)
				})
				return nil
			}
			must(t, Quantize(m, calib, Options{}))
			for path, typ := range map[string]string{
				"quant": "quantized.Quantize", "conv": "quantized.Conv2d", "up": "Upsample", "dequant": "quantized.DeQuantize",
			} {
				if got := typeAt(t, m, path); got != typ {
					t.Errorf("%s: %s after Convert, want %s", path, got, typ)
				}
			}
			if m.Up != up {
				t.Error("the Upsample module was replaced")
			}

			var got, convOut *tensor.Tensor
			autograd.NoGrad(func() {
				got = m.Forward(x)
				convOut = m.Conv.Forward(m.Quant.Forward(x))
			})
			if !tensor.SameShape(got.Shape(), want.Shape()) || got.DType() != tensor.Float32 {
				t.Fatalf("output %v %v, want float32 %v", got.DType(), got.Shape(), want.Shape())
			}
			// The Upsample ran the quantized kernel on the conv's quint8
			// output: the model's output is that kernel's, dequantized.
			if convOut.DType() != tensor.QUInt8 {
				t.Fatalf("conv output is %v, want quint8", convOut.DType())
			}
			kernel := opsq.UpsampleNearest2d
			if up.Mode == "bilinear" {
				kernel = opsq.UpsampleBilinear2d
			}
			ref, err := kernel(convOut, up.Attrs)
			must(t, err)
			for i, v := range ops.Dequantize(ref).F32() {
				if got.F32()[i] != v {
					t.Fatalf("output element %d = %v, quantized kernel on the conv output gives %v", i, got.F32()[i], v)
				}
			}
			if s := sqnr(got, want); s < 30 {
				t.Errorf("int8 model SQNR %.1f dB against the float model, want >= 30", s)
			} else {
				t.Logf("SQNR %.1f dB", s)
			}
		})
	}
}
