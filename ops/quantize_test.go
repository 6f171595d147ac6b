package ops

import (
	"math"
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/internal/gradcheck"
	"github.com/quanta-go/quanta/tensor"
)

func TestQuantizePerTensorValues(t *testing.T) {
	x := tensor.FromFloat32([]float32{-1, 0, 0.25, 0.5, 0.75, 100, -100})
	q := QuantizePerTensor(x, 0.5, 10, tensor.QUInt8)
	// x/0.5 = -2, 0, 0.5, 1, 1.5, 200, -200 -> RNE -2 0 0 1 2 200 -200 -> +10, clamp 0..255
	want := []uint8{8, 10, 10, 11, 12, 210, 0}
	for i, w := range want {
		if q.U8()[i] != w {
			t.Fatalf("q[%d] = %d, want %d (all %v)", i, q.U8()[i], w, q.U8())
		}
	}
	d := Dequantize(q)
	wantD := []float32{-1, 0, 0, 0.5, 1, 100, -5}
	for i, w := range wantD {
		if d.F32()[i] != w {
			t.Fatalf("dq[%d] = %v, want %v", i, d.F32()[i], w)
		}
	}
	ir := IntRepr(q)
	if ir.DType() != tensor.Uint8 || ir.U8()[4] != 12 {
		t.Fatalf("IntRepr = %v", ir)
	}
	s := QuantizePerTensor(tensor.FromFloat32([]float32{-1000, 3.5, 1000}), 1, 0, tensor.QInt8)
	if got := s.I8(); got[0] != -128 || got[1] != 4 || got[2] != 127 {
		t.Fatalf("qint8 = %v", got)
	}
}

func TestQuantizePerChannel(t *testing.T) {
	x := tensor.FromFloat32([]float32{1, 2, 3, 1, 2, 3}, 2, 3)
	q := QuantizePerChannel(x, []float32{1, 0.5}, []int32{0, 1}, 0, tensor.QInt8)
	want := []int8{1, 2, 3, 3, 5, 7}
	for i, w := range want {
		if q.I8()[i] != w {
			t.Fatalf("q = %v, want %v", q.I8(), want)
		}
	}
	// axis 1: scales per column
	q = QuantizePerChannel(x, []float32{1, 2, 4}, []int32{0, 0, 0}, 1, tensor.QInt8)
	want = []int8{1, 1, 1, 1, 1, 1} // 1/1, 2/2, 3/4=0.75->1
	for i, w := range want {
		if q.I8()[i] != w {
			t.Fatalf("axis1 q = %v, want %v", q.I8(), want)
		}
	}
	d := Dequantize(q)
	if d.F32()[2] != 4 || d.F32()[1] != 2 {
		t.Fatalf("dequantize per channel = %v", d.F32())
	}
}

func TestFakeQuantizeSTE(t *testing.T) {
	// PyTorch 1.13: x = [-1, 0.2, 100, 300], s=1, zp=0, 0..255 -> grads [0, 1, 1, 0].
	x := tensor.FromFloat32([]float32{-1, 0.2, 100, 300}).SetRequiresGrad(true)
	y := FakeQuantizePerTensor(x, 1, 0, 0, 255)
	wantY := []float32{0, 0, 100, 255}
	for i, w := range wantY {
		if y.F32()[i] != w {
			t.Fatalf("y = %v, want %v", y.F32(), wantY)
		}
	}
	if err := autograd.Backward(y, nil); err != nil {
		t.Fatal(err)
	}
	wantG := []float32{0, 1, 1, 0}
	for i, w := range wantG {
		if x.Grad().F32()[i] != w {
			t.Fatalf("grad = %v, want %v", x.Grad().F32(), wantG)
		}
	}
}

func TestFakeQuantizePerChannelMatchesQuantDequant(t *testing.T) {
	g := tensor.NewRNG(3)
	x := tensor.Randn(g, 4, 3, 2)
	scales := []float32{0.01, 0.02, 0.05}
	zps := []int32{0, -3, 5}
	fq := FakeQuantizePerChannel(x, scales, zps, 1, -128, 127)
	qd := Dequantize(QuantizePerChannel(x, scales, zps, 1, tensor.QInt8))
	for i := range fq.F32() {
		a, b := fq.F32()[i], qd.F32()[i]
		if a != b {
			// x*(1/s) and x/s may round differently only near a half.
			r := float64(x.F32()[i]/scales[(i/2)%3]) - math.Floor(float64(x.F32()[i]/scales[(i/2)%3]))
			if math.Abs(r-0.5) > 1e-4 {
				t.Fatalf("element %d: fake quant %v, quant-dequant %v", i, a, b)
			}
		}
	}
}

func TestFakeQuantizeLearnable(t *testing.T) {
	// Hand-computed LSQ gradients: s=1, zp=2 (0..255).
	x := tensor.FromFloat32([]float32{-5, 0.3, 300}).SetRequiresGrad(true)
	s := tensor.FromFloat32([]float32{1}).SetRequiresGrad(true)
	zp := tensor.FromFloat32([]float32{2}).SetRequiresGrad(true)
	y := FakeQuantizeLearnable(x, s, zp, 0, 255, 1)
	// xq = 2 + round(x): -3 (below), 2, 302 (above)
	wantY := []float32{-2, 0, 253}
	for i, w := range wantY {
		if y.F32()[i] != w {
			t.Fatalf("y = %v, want %v", y.F32(), wantY)
		}
	}
	if err := autograd.Backward(y, nil); err != nil {
		t.Fatal(err)
	}
	// dx: [0,1,0]; dscale: (0-2) + (0 - 0.3) + (255-2) = 250.7; dzp: -1 -1 = -2
	if g := x.Grad().F32(); g[0] != 0 || g[1] != 1 || g[2] != 0 {
		t.Fatalf("dx = %v", g)
	}
	if g := s.Grad().F32()[0]; math.Abs(float64(g)-250.7) > 1e-4 {
		t.Fatalf("dscale = %v, want 250.7", g)
	}
	if g := zp.Grad().F32()[0]; g != -2 {
		t.Fatalf("dzp = %v, want -2", g)
	}
}

func TestFakeQuantizeGradcheckInterior(t *testing.T) {
	// Inside the range and away from rounding steps, the STE gradient is
	// the identity: compare with finite differences of a smooth input
	// through a fine grid (scale tiny relative to eps is not smooth, so
	// use a large quantization range and check the mask is all ones).
	x := tensor.FromFloat32([]float32{0.1, 0.2, -0.3}).SetRequiresGrad(true)
	err := gradcheck.Check(func(in []*tensor.Tensor) *tensor.Tensor {
		return FakeQuantizePerTensor(in[0], 1e-5, 0, -1<<30, 1<<30)
	}, []*tensor.Tensor{x}, gradcheck.Options{})
	if err != nil {
		t.Fatal(err)
	}
}
