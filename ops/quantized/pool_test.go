package quantized

import (
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/internal/kernels/pool"
	"github.com/quanta-go/quanta/internal/kernels/qelem"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

func TestPoolOps(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, dt := range dtypes {
		x := randQ(r, dt, 0.07, randZP(r, dt), 2, 3, 11, 14)
		a := ops.PoolAttrs{Kernel: [2]int{3, 3}, Stride: [2]int{2, 2}, Padding: [2]int{1, 1}, CeilMode: true, CountIncludePad: true}
		// Max pooling is the reference model exactly (monotonic quantization).
		mp := ok(t)(MaxPool2d(x, a))
		sameQ(t, name(dt, "maxpool"), mp, refModel(func(v ...*tensor.Tensor) *tensor.Tensor { return ops.MaxPool2d(v[0], a) }, dt, 0.07, x.QParams().ZeroPoint[0], x))
		if !tensor.SameShape(mp.Shape(), []int{2, 3, 6, 8}) {
			t.Fatalf("maxpool shape %v", mp.Shape())
		}
		// Average pooling: the qelem reference, and within one step of
		// the reference model.
		ap := ok(t)(AvgPool2d(x, a))
		p := pool.Pool2DParams{N: 2, C: 3, H: 11, W: 14, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, CeilMode: true, CountIncludePad: true}
		in, _ := perTensor("", "", x)
		want := make([]byte, p.OutputLen())
		if dt == tensor.QUInt8 {
			qelem.AvgPool2DReference(p, sameRequant(in), x.U8(), want)
		} else {
			w8 := make([]int8, len(want))
			qelem.AvgPool2DReference(p, sameRequant(in), x.I8(), w8)
			for i, v := range w8 {
				want[i] = byte(v)
			}
		}
		for i, v := range bytesOf(ap) {
			if v != want[i] {
				t.Fatalf("%v avgpool[%d] = %d, want %d", dt, i, v, want[i])
			}
		}
		within1(t, name(dt, "avgpool"), ap, refModel(func(v ...*tensor.Tensor) *tensor.Tensor { return ops.AvgPool2d(v[0], a) }, dt, 0.07, in.zp, x))
		ad := ok(t)(AdaptiveAvgPool2d(x, 4, 5))
		within1(t, name(dt, "adaptive"), ad, refModel(func(v ...*tensor.Tensor) *tensor.Tensor { return ops.AdaptiveAvgPool2d(v[0], 4, 5) }, dt, 0.07, in.zp, x))
		g := ok(t)(GlobalAvgPool2d(x))
		sameQ(t, name(dt, "global"), g, ok(t)(AdaptiveAvgPool2d(x, 1, 1)))
		if !tensor.SameShape(g.Shape(), []int{2, 3, 1, 1}) {
			t.Fatalf("global shape %v", g.Shape())
		}
		// Unbatched input.
		x3 := ok(t)(Reshape(x, 6, 11, 14))
		y3 := ok(t)(MaxPool2d(x3, a))
		if !tensor.SameShape(y3.Shape(), []int{6, 6, 8}) {
			t.Fatalf("unbatched maxpool shape %v", y3.Shape())
		}
	}
	if _, err := MaxPool2d(randQ(r, tensor.QUInt8, 1, 0, 4, 4), ops.PoolAttrs{Kernel: [2]int{2, 2}}); err == nil {
		t.Error("2-D input accepted")
	}
	if _, err := AvgPool2d(randQ(r, tensor.QUInt8, 1, 0, 1, 1, 4, 4), ops.PoolAttrs{Kernel: [2]int{2, 2}, Padding: [2]int{2, 0}}); err == nil {
		t.Error("padding above half the kernel accepted")
	}
}

// within1 fails when codes differ by more than one step.
func within1(t *testing.T, what string, got, want *tensor.Tensor) {
	t.Helper()
	g, w := codes(got), codes(want)
	for i := range w {
		if d := g[i] - w[i]; d < -1 || d > 1 {
			t.Fatalf("%s: element %d = %d, reference model %d", what, i, g[i], w[i])
		}
	}
}

func TestAvgPoolHandValues(t *testing.T) {
	// Raw means 2.5 -> 2 and 68 (zero point 1, PyTorch's native rounding).
	x := tensor.NewQuantized(tensor.QUInt8, []uint8{1, 2, 10, 0, 4, 3, 7, 255}, tensor.PerTensor(0.5, 1), 1, 1, 2, 4)
	y := ok(t)(AvgPool2d(x, ops.PoolAttrs{Kernel: [2]int{2, 2}}))
	if got := y.U8(); got[0] != 2 || got[1] != 68 {
		t.Fatalf("AvgPool2d = %v, want [2 68]", got)
	}
}

func TestUpsampleOps(t *testing.T) {
	x := tensor.NewQuantized(tensor.QUInt8, []uint8{10, 20, 30, 40}, tensor.PerTensor(1, 10), 1, 1, 2, 2)
	y := ok(t)(UpsampleBilinear2d(x, UpsampleAttrs{ScaleFactor: [2]float64{2, 2}}))
	want := []uint8{10, 12, 18, 20, 15, 18, 22, 25, 25, 28, 32, 35, 30, 32, 38, 40}
	for i, w := range want {
		if y.U8()[i] != w {
			t.Fatalf("bilinear = %v, want %v", y.U8(), want)
		}
	}
	y = ok(t)(UpsampleNearest2d(x, UpsampleAttrs{Size: [2]int{3, 5}}))
	if !tensor.SameShape(y.Shape(), []int{1, 1, 3, 5}) || y.QParams().ZeroPoint[0] != 10 {
		t.Fatalf("nearest %v", y.Shape())
	}
	// Rows 0,0,1 (floor(i*2/3)), columns floor(j*0.4): 0,0,0,1,1.
	wantN := []uint8{10, 10, 10, 20, 20, 10, 10, 10, 20, 20, 30, 30, 30, 40, 40}
	for i, w := range wantN {
		if y.U8()[i] != w {
			t.Fatalf("nearest = %v, want %v", y.U8(), wantN)
		}
	}
	y = ok(t)(UpsampleNearest2d(x, UpsampleAttrs{ScaleFactor: [2]float64{1.7, 2.6}}))
	if !tensor.SameShape(y.Shape(), []int{1, 1, 3, 5}) {
		t.Fatalf("scale-factor nearest shape %v", y.Shape())
	}
	if _, err := UpsampleBilinear2d(x, UpsampleAttrs{}); err == nil {
		t.Error("no size and no scale accepted")
	}
}
