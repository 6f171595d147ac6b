package quantized

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// TestQuantizePerTensorVectorized checks ops.QuantizePerTensor and
// ops.Dequantize (which run on the vectorized kernels) against qmath
// element by element, at every CPU tier, including extremes.
func TestQuantizePerTensorVectorized(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	n := 70001
	x := make([]float32, n)
	special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)), 1e-45, 3e38, -3e38, 0.5, 1.5, -2.5}
	for i := range x {
		if i%17 == 0 {
			x[i] = special[(i/17)%len(special)]
		} else {
			x[i] = float32(r.NormFloat64() * 3)
		}
	}
	xt := tensor.FromFloat32(x)
	for _, l := range cpu.Levels() {
		old := cpu.SetMax(l)
		for _, dt := range dtypes {
			for _, s := range []float32{0.02, 0.1, 1.0 / 3} {
				zp := randZP(r, dt)
				lo, hi := dtypeRange(dt)
				q := ops.QuantizePerTensor(xt, s, zp, dt)
				got := codes(q)
				for i, v := range x {
					if w := qmath.Quantize(v, s, zp, lo, hi); got[i] != w {
						t.Fatalf("%v %v: Quantize(%g) = %d, want %d", l, dt, v, got[i], w)
					}
				}
				d := ops.Dequantize(q).F32()
				for i, c := range got {
					if w := qmath.Dequantize(c, zp, s); math.Float32bits(d[i]) != math.Float32bits(w) {
						t.Fatalf("%v %v: Dequantize(%d) = %g, want %g", l, dt, c, d[i], w)
					}
				}
			}
		}
		// Reduced range through QuantizeWithQParams.
		qp := &tensor.QParams{Scheme: tensor.PerTensorAffine, Scale: []float32{0.05}, ZeroPoint: []int32{64}, QuantMin: 0, QuantMax: 127}
		got := codes(ops.QuantizeWithQParams(xt, qp, tensor.QUInt8))
		for i, v := range x {
			if w := qmath.Quantize(v, 0.05, 64, 0, 127); got[i] != w {
				t.Fatalf("%v: reduced-range Quantize(%g) = %d, want %d", l, v, got[i], w)
			}
		}
		cpu.SetMax(old)
	}
}

// TestThreadIndependence runs several ops with 1, 2 and 3 threads.
func TestThreadIndependence(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	a := randQ(r, tensor.QUInt8, 0.05, 7, 2, 16, 40, 41)
	b := randQ(r, tensor.QUInt8, 0.03, 200, 2, 16, 40, 41)
	w := ops.QuantizePerTensor(tensor.RandUniform(tensor.NewRNG(9), -1, 1, 16, 8, 4, 4), 0.01, 0, tensor.QInt8)
	pk, err := PackConvTranspose2d(w, tensor.RandUniform(tensor.NewRNG(10), -1, 1, 8), ops.ConvTransposeAttrs{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}})
	if err != nil {
		t.Fatal(err)
	}
	pa := ops.PoolAttrs{Kernel: [2]int{3, 3}, Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}
	run := func() []*tensor.Tensor {
		return []*tensor.Tensor{
			ok(t)(Add(a, b, 0.06, 100)), ok(t)(Mul(a, b, 0.2, 0)), ok(t)(Hardswish(a, 0.05, 10)),
			ok(t)(MaxPool2d(a, pa)), ok(t)(AvgPool2d(a, pa)), ok(t)(AdaptiveAvgPool2d(a, 7, 3)),
			ok(t)(UpsampleBilinear2d(a, UpsampleAttrs{ScaleFactor: [2]float64{2, 2}})),
			ok(t)(Cat([]*tensor.Tensor{a, b}, 1, 0.04, 50)), ok(t)(ConvTranspose2d(a, pk, 0.1, 128)),
			ops.QuantizePerTensor(ops.Dequantize(a), 0.02, 9, tensor.QUInt8),
		}
	}
	var res [][]*tensor.Tensor
	for _, th := range []int{1, 2, 3} {
		old := parallel.SetNumThreads(th)
		res = append(res, run())
		parallel.SetNumThreads(old)
	}
	for k := range res[0] {
		for th := 1; th < 3; th++ {
			sameQ(t, name(tensor.QUInt8, "op", k, "threads", th+1), res[th][k], res[0][k])
		}
	}
}
