package qdyn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/internal/kernels/qgemm"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/internal/parallel"
)

var linSizes = []int{1, 2, 3, 5, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129}

// referenceLinear composes the specifications: the rule on a float64
// scan, qmath.Quantize and qgemm.ReferenceF32.
func referenceLinear(r Rule, m int, x []float32, ldx int, w *qgemm.Packed, scaleW, bias []float32, y []float32, ldy int) Params {
	k := w.K
	var rows []float32
	for i := 0; i < m; i++ {
		rows = append(rows, x[i*ldx:i*ldx+k]...)
	}
	lo, hi, _ := naiveMinMax(rows)
	if len(rows) == 0 {
		lo, hi = 0, 0
	}
	p := r.Choose(float32(lo)+0, float32(hi)+0)
	a := make([]uint8, len(rows))
	for i, v := range rows {
		a[i] = uint8(qmath.Quantize(v, p.Scale, p.ZeroPoint, p.QMin, p.QMax))
	}
	out := make([]float32, m*w.N)
	qgemm.ReferenceF32(m, a, k, p.ZeroPoint, w, &qgemm.Dequant{ScaleA: p.Scale, ScaleW: scaleW, Bias: bias}, out, w.N)
	for i := 0; i < m; i++ {
		copy(y[i*ldy:], out[i*w.N:(i+1)*w.N])
	}
	return p
}

func randWeights(r *rand.Rand, n, k int) []int8 {
	w := make([]int8, n*k)
	for i := range w {
		w[i] = int8(r.IntN(256) - 128)
	}
	return w
}

func TestLinearMatchesReference(t *testing.T) {
	forEachVariant(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 5))
		for trial := 0; trial < 120; trial++ {
			m, n, k := linSizes[r.IntN(len(linSizes))], linSizes[r.IntN(len(linSizes))], linSizes[r.IntN(len(linSizes))]
			if trial < 15 {
				m = 1
			}
			ldx := k + trial%3
			x := randFloats(r, (m-1)*ldx+k, false)
			if trial%4 == 0 {
				for i := range x {
					x[i] = float32(math.Abs(float64(x[i]))) // all positive: zp 0
				}
			}
			zps := []int32{0}
			sw := []float32{0.01 + r.Float32()}
			if trial%2 == 1 {
				zps = make([]int32, n)
				sw = make([]float32, n)
				for j := range sw {
					sw[j] = 0.001 + r.Float32()*0.1
				}
			}
			var bias []float32
			if trial%3 != 2 {
				bias = randFloats(r, n, false)
			}
			w := qgemm.Pack(n, k, randWeights(r, n, k), k, zps)
			rule := Rule(trial % 3)
			ldy := n + 1
			want := make([]float32, (m-1)*ldy+n)
			wp := referenceLinear(rule, m, x, ldx, w, sw, bias, want, ldy)
			got := make([]float32, (m-1)*ldy+n+1)
			for i := range got {
				got[i] = -7
			}
			p, ok := Linear(rule, m, x, ldx, w, sw, bias, got, ldy)
			if !ok || p != wp {
				t.Fatalf("%v %dx%dx%d: params %+v ok=%v, want %+v", rule, m, n, k, p, ok, wp)
			}
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					if g, w := got[i*ldy+j], want[i*ldy+j]; g != w {
						t.Fatalf("%v %dx%dx%d: y[%d][%d] = %v, want %v", rule, m, n, k, i, j, g, w)
					}
				}
				if i < m-1 && got[i*ldy+n] != -7 {
					t.Fatalf("gap element written")
				}
			}
			if got[len(got)-1] != -7 {
				t.Fatal("guard element written")
			}
		}
	})
}

func TestLinearHand(t *testing.T) {
	// x = [-1, 3] under Torch: scale 4/255, zp 64, codes [0, 255]
	// (-63.75 -> -64, 191.25 -> 191). w = [1, -2] (scale 0.5), bias 0.25:
	// acc = (0-64)*1 + (255-64)*(-2) = -446.
	w := qgemm.Pack(1, 2, []int8{1, -2}, 2, []int32{0})
	y := make([]float32, 1)
	p, ok := Linear(Torch, 1, []float32{-1, 3}, 2, w, []float32{0.5}, []float32{0.25}, y, 1)
	if !ok || p.Scale != float32(4.0/255) || p.ZeroPoint != 64 {
		t.Fatalf("params %+v", p)
	}
	s := float32(float32(4.0/255) * 0.5)
	if want := float32(float32(-446)*s) + 0.25; y[0] != want {
		t.Fatalf("y = %v, want %v", y[0], want)
	}
	// reduce_range: scale 4/127, zp 32, codes [0, 127] (-31.75 -> -32,
	// 95.25 -> 95): acc = -32 - 2*95 = -222.
	p, _ = Linear(TorchReduceRange, 1, []float32{-1, 3}, 2, w, []float32{0.5}, nil, y, 1)
	if s := float32(p.Scale * 0.5); p.ZeroPoint != 32 || y[0] != float32(-222)*s {
		t.Fatalf("reduce range: %+v y=%v", p, y[0])
	}
}

func TestLinearNonFinite(t *testing.T) {
	w := qgemm.Pack(2, 3, []int8{1, 2, 3, 4, 5, 6}, 3, []int32{0})
	for _, bad := range []float32{nan32, inf32, -inf32} {
		forEachVariant(t, func(t *testing.T) {
			for _, m := range []int{1, 7} {
				x := make([]float32, m*3)
				x[len(x)-1] = bad
				y := make([]float32, 2*m)
				for i := range y {
					y[i] = 42
				}
				if _, ok := Linear(ONNX, m, x, 3, w, []float32{1}, nil, y, 2); ok {
					t.Fatalf("%v m=%d: ok", bad, m)
				}
				for _, v := range y {
					if v != 42 {
						t.Fatalf("%v m=%d: y written: %v", bad, m, y)
					}
				}
			}
		})
	}
	// Empty batch: nothing to do, ok.
	if _, ok := Linear(ONNX, 0, nil, 3, w, []float32{1}, nil, nil, 2); !ok {
		t.Fatal("empty batch not ok")
	}
}

func TestLinearThreadIndependent(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 6))
	m, n, k := 37, 300, 129
	x := randFloats(r, m*k, false)
	w := qgemm.Pack(n, k, randWeights(r, n, k), k, []int32{0})
	forEachVariant(t, func(t *testing.T) {
		var ref []float32
		for _, th := range []int{1, 2, 3} {
			old := parallel.SetNumThreads(th)
			y := make([]float32, m*n)
			Linear(Torch, m, x, k, w, []float32{0.02}, nil, y, n)
			parallel.SetNumThreads(old)
			if ref == nil {
				ref = y
				continue
			}
			for i := range y {
				if math.Float32bits(y[i]) != math.Float32bits(ref[i]) {
					t.Fatalf("threads %d: element %d differs", th, i)
				}
			}
		}
	})
}

func TestLinearNoInputs(t *testing.T) {
	// K = 0: every accumulator is 0 and y is the bias.
	w := qgemm.Pack(3, 0, nil, 0, []int32{0})
	y := make([]float32, 2*3)
	want := make([]float32, 2*3)
	qgemm.ReferenceF32(2, nil, 0, 0, w, &qgemm.Dequant{ScaleA: 1, ScaleW: []float32{0.5}, Bias: []float32{1, -2, 3}}, want, 3)
	if _, ok := Linear(Torch, 2, nil, 0, w, []float32{0.5}, []float32{1, -2, 3}, y, 3); !ok {
		t.Fatal("not ok")
	}
	for i := range want {
		if y[i] != want[i] || want[i] != []float32{1, -2, 3}[i%3] {
			t.Fatalf("y = %v, want %v", y, want)
		}
	}
}
