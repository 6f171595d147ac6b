package quantized

import (
	"fmt"
	"testing"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

// TestConvTranspose1dTorchGolden compares ConvTranspose1d with PyTorch
// 1.13's qnnpack quantized ConvTranspose1d, code for code.
func TestConvTranspose1dTorchGolden(t *testing.T) {
	g := loadMoreGolden(t)
	total := 0
	for i, c := range g.ConvTranspose1d {
		x := tensor.NewQuantized(tensor.QUInt8, c.X, outQ(c.XScale, c.XZeroPoint), c.XShape...)
		wq := tensor.PerTensor(c.WScale, 0)
		wq.Scheme, wq.QuantMin, wq.QuantMax = tensor.PerTensorSymmetric, -128, 127
		w := tensor.NewQuantized(tensor.QInt8, c.W, wq, c.WShape...)
		a := ConvTranspose1dAttrs{Stride: c.Attrs.Stride, Padding: c.Attrs.Padding, OutputPadding: c.Attrs.OutputPadding,
			Dilation: c.Attrs.Dilation, Groups: c.Attrs.Groups}
		m, err := NewConvTranspose1d(w, tensor.FromFloat32(c.Bias, len(c.Bias)), a, c.OutScale, c.OutZP)
		if err != nil {
			t.Fatal(err)
		}
		y := m.Forward(x)
		if !tensor.SameShape(y.Shape(), c.YShape) {
			t.Fatalf("case %d: shape %v, PyTorch %v", i, y.Shape(), c.YShape)
		}
		for j, v := range y.U8() {
			if v != c.Y[j] {
				t.Fatalf("case %d: code %d is %d, PyTorch %d", i, j, v, c.Y[j])
			}
		}
		total += len(c.Y)
	}
	t.Logf("%d output codes equal PyTorch's", total)
}

// TestConvTranspose1dMatchesReference compares with the reference model
// (dequantize, float transposed convolution, quantize) for per-tensor and
// per-channel weights, batched and unbatched, and with ConvTranspose2d on
// height-1 inputs (the same kernel: identical codes).
func TestConvTranspose1dMatchesReference(t *testing.T) {
	g := tensor.NewRNG(21)
	for _, pc := range []bool{false, true} {
		f, err := nn.NewConvTranspose1d(6, 4, 3, nn.ConvTranspose1dOptions{Stride: 2, Padding: 1, OutputPadding: 1, Groups: 2, RNG: g})
		if err != nil {
			t.Fatal(err)
		}
		var obs observer.Observer
		if pc {
			obs = observer.NewPerChannelMinMax(observer.Config{Dtype: tensor.QInt8, QScheme: tensor.PerChannelSymmetric, ChAxis: 1})
		}
		m, err := ConvTranspose1dFromFloat(f, obs, tensor.PerTensor(0.03, 110))
		if err != nil {
			t.Fatal(err)
		}
		if q := m.Weight.QParams(); q.Scheme.PerChannel() != pc || m.Weight.NDim() != 3 || m.OutChannels != 4 || m.KernelSize != 3 {
			t.Fatalf("pc=%v: weight %v %v", pc, m.Weight.Shape(), q.Scheme)
		}
		x := randQ(g, 0.04, 120, 3, 6, 7)
		// The float module on the dequantized weights is the reference.
		copy(f.Weight.F32(), deq(m.Weight).F32())
		ref := f.Forward(deq(x))
		compareQ(t, fmt.Sprintf("convtranspose1d pc=%v", pc), m.Forward(x), quantizeOut(ref, 0.03, 110), 0.99)

		w4 := m.Weight.Reshape(6, 2, 1, 3)
		m2, err := NewConvTranspose2d(w4, f.Bias, f.Attrs(), 0.03, 110)
		if err != nil {
			t.Fatal(err)
		}
		y2 := m2.Forward(tensor.Unsqueeze(x, 2))
		compareQ(t, "vs ConvTranspose2d", m.Forward(x), tensor.Squeeze(y2, 2), 1)

		xu := tensor.Squeeze(tensor.Narrow(x, 0, 1, 1), 0)
		compareQ(t, "unbatched", m.Forward(xu), tensor.Squeeze(tensor.Narrow(m.Forward(x), 0, 1, 1), 0), 1)
	}
	w := randW(t, g, false, 0, 4, 2, 3)
	if _, err := NewConvTranspose1d(w, nil, ConvTranspose1dAttrs{Groups: 3}, 1, 0); err == nil {
		t.Error("4 input channels in 3 groups accepted")
	}
	if _, err := NewConvTranspose1d(w, nil, ConvTranspose1dAttrs{Stride: 2, OutputPadding: 2}, 1, 0); err == nil {
		t.Error("output padding 2 with stride 2 accepted")
	}
	if _, err := NewConvTranspose1d(w.Reshape(4, 2, 1, 3), nil, ConvTranspose1dAttrs{}, 1, 0); err == nil {
		t.Error("4-D weight accepted")
	}
	if _, err := NewConvTranspose1d(w, tensor.Zeros(3), ConvTranspose1dAttrs{}, 1, 0); err == nil {
		t.Error("bias of 3 for 2 channels accepted")
	}
	m, err := NewConvTranspose1d(w, nil, ConvTranspose1dAttrs{}, 0.1, 5)
	if err != nil {
		t.Fatal(err)
	}
	if m.TypeName() != "quantized.ConvTranspose1d" {
		t.Error(m.TypeName())
	}
	// SetWeightBias repacks.
	w2 := randW(t, g, false, 0, 4, 2, 3)
	if err := m.SetWeightBias(w2, tensor.FromFloat32([]float32{0.5, -0.5}, 2)); err != nil {
		t.Fatal(err)
	}
	x := randQ(g, 0.05, 100, 1, 4, 5)
	ref := ops.ConvTranspose2d(tensor.Unsqueeze(deq(x), 2), tensor.Unsqueeze(deq(w2), 2), m.Bias, m.Attrs)
	compareQ(t, "after SetWeightBias", m.Forward(x), quantizeOut(tensor.Squeeze(ref, 2), 0.1, 5), 0.99)
}
