package qelem

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/internal/parallel"
)

func randBinParams(r *rand.Rand, signed bool) *BinaryParams {
	scales := []float32{0.1, 0.02, 1.0 / 3, 0.0078125, 1, 5e-4, 7.5}
	p := &BinaryParams{ScaleA: scales[r.IntN(len(scales))], ScaleB: scales[r.IntN(len(scales))], ScaleY: scales[r.IntN(len(scales))]}
	lo, hi := int32(0), int32(255)
	if signed {
		lo, hi = -128, 127
	}
	p.ZeroA, p.ZeroB, p.ZeroY = lo+int32(r.IntN(256)), lo+int32(r.IntN(256)), lo+int32(r.IntN(256))
	p.Min, p.Max = lo, hi
	if r.IntN(3) == 0 {
		p.Min = p.ZeroY // fused ReLU
	}
	return p
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		switch r.IntN(8) {
		case 0:
			b[i] = 0
		case 1:
			b[i] = 255
		case 2:
			b[i] = 128
		case 3:
			b[i] = 127
		default:
			b[i] = byte(r.IntN(256))
		}
	}
	return b
}

// TestBinaryVariants compares every add/mul tier with the scalar
// definition on every tail and offset, with guards.
func TestBinaryVariants(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	extreme := []*BinaryParams{
		{ScaleA: 1e38, ScaleB: 1e38, ScaleY: 1, ZeroA: 0, ZeroB: 255, ZeroY: 3, Min: 0, Max: 255}, // inf - inf = NaN
		{ScaleA: 1e-40, ScaleB: 3e-41, ScaleY: 1e-42, ZeroA: 10, ZeroB: 20, ZeroY: 30, Min: 0, Max: 255},
		{ScaleA: 0.5, ScaleB: 0.5, ScaleY: 0.5, ZeroA: 0, ZeroB: 0, ZeroY: 0, Min: 0, Max: 255}, // exact halves
		{ScaleA: 0.25, ScaleB: 0.25, ScaleY: 1, ZeroA: 1, ZeroB: 0, ZeroY: -5, Min: -128, Max: 127},
	}
	for _, v := range binVariants {
		if !runnable(v) {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			for _, op := range []binOp{opAdd, opMul} {
				f := addValue
				if op == opMul {
					f = mulValue
				}
				for trial := 0; trial < 6; trial++ {
					for _, signed := range []bool{false, true} {
						p := randBinParams(r, signed)
						if trial < len(extreme) {
							p = extreme[trial]
							signed = p.Min < 0
						}
						for _, n := range tailSizes {
							off := r.IntN(4)
							a, b := randBytes(r, n), randBytes(r, n)
							got, all := guarded(n, off, byte(guardByte))
							v.fn(op, got, a, b, signed, p)
							for i := range got {
								want := byte(f(valueOf(a[i], signed), valueOf(b[i], signed), p))
								if got[i] != want {
									t.Fatalf("op %d %+v n=%d: (%d, %d) gives %d, want %d", op, *p, n, a[i], b[i], got[i], want)
								}
							}
							checkGuards(t, fmt.Sprintf("op %d n=%d", op, n), all, off, n, byte(guardByte))
						}
					}
				}
			}
		})
	}
}

// TestBinaryHandValues checks a few sums and products by hand, and that
// add is the reference model: quantize(dequantize(a) + dequantize(b)).
func TestBinaryHandValues(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		p := &BinaryParams{ScaleA: 0.5, ScaleB: 0.25, ScaleY: 1, ZeroA: 10, ZeroB: 100, ZeroY: 50, Min: 0, Max: 255}
		a := []uint8{10, 14, 0, 255, 11, 13}
		b := []uint8{100, 104, 0, 255, 100, 100}
		// x = (a-10)/2, y = (b-100)/4; x+y: 0, 3, -5-25=-30, 122.5+38.75=161.25, 0.5, 1.5
		want := []uint8{50, 53, 20, 211, 50, 52}
		got := make([]uint8, len(a))
		Add(got, a, b, p)
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("Add(%d, %d) = %d, want %d", a[i], b[i], got[i], want[i])
			}
		}
		relu := *p
		relu.Min = relu.ZeroY
		Add(got, a, b, &relu)
		if got[2] != 50 || got[3] != 211 {
			t.Errorf("add_relu = %v", got)
		}
		// x*y: 0, 2*1=2, -5*-25=125, 122.5*38.75=4746.875 -> 255, 0, 1.5*0 = 0
		Mul(got, a, b, p)
		wantMul := []uint8{50, 52, 175, 255, 50, 50}
		for i := range wantMul {
			if got[i] != wantMul[i] {
				t.Errorf("Mul(%d, %d) = %d, want %d", a[i], b[i], got[i], wantMul[i])
			}
		}
		// int8: y = RNE((a+b)*0.1/0.3) - 2
		s := &BinaryParams{ScaleA: 0.1, ScaleB: 0.1, ScaleY: 0.3, ZeroA: 0, ZeroB: 0, ZeroY: -2, Min: -128, Max: 127}
		g8 := make([]int8, 3)
		Add(g8, []int8{127, -128, 3}, []int8{127, -128, 0}, s)
		for i, w := range []int8{int8(qmath.Quantize(float32(float32(12.7)+float32(12.7)), 0.3, -2, -128, 127)), int8(qmath.Quantize(-25.6, 0.3, -2, -128, 127)), -1} {
			if g8[i] != w {
				t.Errorf("int8 Add[%d] = %d, want %d", i, g8[i], w)
			}
		}
	})
}

// TestAddFloatEquivalence: quantized add equals quantizing the float sum
// of the dequantized inputs, computed with the slice kernels.
func TestAddFloatEquivalence(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	n := 4099
	a, b := randBytes(r, n), randBytes(r, n)
	p := &BinaryParams{ScaleA: 0.037, ScaleB: 0.011, ScaleY: 0.05, ZeroA: 120, ZeroB: 3, ZeroY: 77, Min: 0, Max: 255}
	fa, fb := make([]float32, n), make([]float32, n)
	Dequantize(fa, a, p.ScaleA, p.ZeroA)
	Dequantize(fb, b, p.ScaleB, p.ZeroB)
	for i := range fa {
		fa[i] += fb[i]
	}
	want := make([]uint8, n)
	Quantize(want, fa, p.ScaleY, p.ZeroY, 0, 255)
	for _, l := range []bool{false, true} {
		got := make([]uint8, n)
		if l {
			AddReference(got, a, b, p)
		} else {
			Add(got, a, b, p)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("element %d: add %d, reference model %d", i, got[i], want[i])
			}
		}
	}
}

func TestBinaryThreads(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	n := 3*grain + 5
	a, b := randBytes(r, n), randBytes(r, n)
	p := randBinParams(r, false)
	want := make([]uint8, n)
	MulReference(want, a, b, p)
	for _, th := range []int{1, 2, 3} {
		old := parallel.SetNumThreads(th)
		got := make([]uint8, n)
		Mul(got, a, b, p)
		parallel.SetNumThreads(old)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%d threads: element %d = %d, want %d", th, i, got[i], want[i])
			}
		}
	}
}

// FuzzBinary compares every add/mul tier with the scalar definition.
func FuzzBinary(f *testing.F) {
	f.Add(float32(0.1), float32(0.2), float32(0.3), uint8(3), uint8(4), uint8(5), false, true, []byte{1, 2, 3, 255, 0, 128})
	f.Add(float32(1e38), float32(1e38), float32(1e-3), uint8(0), uint8(255), uint8(128), true, false, []byte{0, 255})
	f.Fuzz(func(t *testing.T, sa, sb, sy float32, za, zb, zy uint8, signed, mul bool, data []byte) {
		lo, hi := int32(0), int32(255)
		zs := [3]int32{int32(za), int32(zb), int32(zy)}
		if signed {
			lo, hi = -128, 127
			for i := range zs {
				zs[i] -= 128
			}
		}
		p := &BinaryParams{ScaleA: sa, ScaleB: sb, ScaleY: sy, ZeroA: zs[0], ZeroB: zs[1], ZeroY: zs[2], Min: lo, Max: hi}
		op, fn := opAdd, addValue
		if mul {
			op, fn = opMul, mulValue
		}
		n := len(data) / 2
		a, b := data[:n], data[n:2*n]
		for _, v := range binVariants {
			if !runnable(v) {
				continue
			}
			got := make([]byte, n)
			v.fn(op, got, a, b, signed, p)
			for i := range got {
				if w := byte(fn(valueOf(a[i], signed), valueOf(b[i], signed), p)); got[i] != w {
					t.Fatalf("%s: %+v (%d, %d) = %d, want %d", v.name, *p, a[i], b[i], got[i], w)
				}
			}
		}
	})
}
