package exec

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/internal/kernels/conv"
	"github.com/quanta-go/quanta/tensor"
)

// TestMaxPool2DFast checks the 2-D MaxPool path without indices against
// the general path (the same node asked for its indices too) bit for bit,
// on windows with padding, strides, ceil mode, NaNs and signed zeros.
func TestMaxPool2DFast(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	negZero := float32(math.Copysign(0, -1))
	for _, c := range []struct {
		h, w          int
		k, s, pads    []int64
		ceil          int64
		nan, withZero bool
	}{
		{4, 6, []int64{2, 2}, []int64{2, 2}, []int64{0, 0, 0, 0}, 0, false, false},
		{7, 9, []int64{3, 3}, []int64{1, 1}, []int64{1, 1, 1, 1}, 0, true, true},
		{7, 8, []int64{3, 3}, []int64{2, 2}, []int64{1, 1, 1, 1}, 1, false, true},
		{9, 10, []int64{5, 5}, []int64{2, 1}, []int64{2, 2, 2, 2}, 0, true, false},
		{5, 5, []int64{2, 3}, []int64{3, 2}, []int64{0, 1, 1, 0}, 1, true, true},
	} {
		x := make([]float32, 2*3*c.h*c.w)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
			if c.nan && rng.IntN(17) == 0 {
				x[i] = float32(math.NaN())
			}
			if c.withZero && rng.IntN(3) == 0 {
				x[i] = 0
				if rng.IntN(2) == 0 {
					x[i] = negZero
				}
			}
		}
		xt := tensor.FromFloat32(x, 2, 3, c.h, c.w)
		attrs := map[string]*graph.Attr{"kernel_shape": graph.AInts(c.k...), "strides": graph.AInts(c.s...),
			"pads": graph.AInts(c.pads...), "ceil_mode": graph.AInt(c.ceil)}
		fast, err := runOp(12, "MaxPool", attrs, 1, xt)
		if err != nil {
			t.Fatal(err)
		}
		general, err := runOp(12, "MaxPool", attrs, 2, xt)
		if err != nil {
			t.Fatal(err)
		}
		if !tensor.SameShape(fast[0].Shape(), general[0].Shape()) {
			t.Fatalf("%+v: shape %v, general path %v", c, fast[0].Shape(), general[0].Shape())
		}
		for i, v := range fast[0].F32() {
			w := general[0].F32()[i]
			if math.Float32bits(v) != math.Float32bits(w) && !(v != v && w != w) {
				t.Fatalf("%+v: element %d = %v, general path %v", c, i, v, w)
			}
		}
	}
	// A hand-computed case: 2x2 windows, stride 2, a NaN in the second.
	x := tensor.FromFloat32([]float32{1, 5, 2, float32(math.NaN()), 3, -1, 0, 4}, 1, 1, 2, 4)
	y, err := runOp(12, "MaxPool", map[string]*graph.Attr{"kernel_shape": graph.AInts(2, 2), "strides": graph.AInts(2, 2)}, 1, x)
	if err != nil {
		t.Fatal(err)
	}
	if v := y[0].F32(); len(v) != 2 || v[0] != 5 || v[1] == v[1] {
		t.Errorf("MaxPool = %v, want [5 NaN]", v)
	}
}

// TestGlobalAveragePoolSum checks GlobalAveragePool's float64 sum against
// the sequential sum on planes of every length up to 40, and a
// hand-computed average.
func TestGlobalAveragePoolSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for n := 0; n <= 40; n++ {
		v := make([]float32, n)
		var seq float64
		for i := range v {
			v[i] = float32(rng.NormFloat64() * 100)
			seq += float64(v[i])
		}
		if got := conv.SumF64(v); math.Abs(got-seq) > 1e-9*(1+math.Abs(seq)) {
			t.Fatalf("n=%d: sumF64 = %v, sequential %v", n, got, seq)
		}
	}
	x := tensor.FromFloat32([]float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, -1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12}, 1, 2, 3, 4)
	y, err := runOp(1, "GlobalAveragePool", nil, 1, x)
	if err != nil {
		t.Fatal(err)
	}
	if v := y[0].F32(); len(v) != 2 || v[0] != 6.5 || v[1] != -6.5 {
		t.Errorf("GlobalAveragePool = %v, want [6.5 -6.5]", v)
	}
}

// TestMaxPoolCodes checks MaxPool on uint8 and int8 codes, which compares
// the codes directly, against the float path on the same values, on 2x2
// stride-2 windows, padded, strided, ceil-mode and 1-D windows, both
// through qelem.MaxPool2D and (padding over half the kernel) through
// maxPlaneCodes.
func TestMaxPoolCodes(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, c := range []struct {
		shape      []int
		k, s, pads []int64
		ceil       int64
	}{
		{[]int{1, 5, 2, 96}, []int64{2, 2}, []int64{2, 2}, []int64{0, 0, 0, 0}, 0},
		{[]int{2, 3, 7, 9}, []int64{2, 2}, []int64{2, 2}, []int64{0, 0, 0, 0}, 1},
		{[]int{2, 3, 7, 9}, []int64{3, 3}, []int64{2, 2}, []int64{1, 1, 1, 1}, 0},
		{[]int{1, 4, 6, 6}, []int64{2, 2}, []int64{2, 2}, []int64{1, 1, 1, 1}, 0},
		{[]int{1, 2, 9, 10}, []int64{5, 3}, []int64{2, 1}, []int64{2, 1, 2, 1}, 1},
		{[]int{2, 3, 11}, []int64{3}, []int64{2}, []int64{1, 1}, 0},
		{[]int{1, 3, 5, 5}, []int64{2, 3}, []int64{3, 2}, []int64{0, 1, 1, 0}, 1},
		{[]int{1, 2, 8, 8}, []int64{3, 3}, []int64{1, 1}, []int64{2, 2, 2, 2}, 0},
	} {
		n := 1
		for _, d := range c.shape {
			n *= d
		}
		attrs := map[string]*graph.Attr{"kernel_shape": graph.AInts(c.k...), "strides": graph.AInts(c.s...),
			"pads": graph.AInts(c.pads...), "ceil_mode": graph.AInt(c.ceil)}
		for _, signed := range []bool{false, true} {
			b := make([]byte, n)
			f := make([]float32, n)
			for i := range b {
				b[i] = byte(rng.IntN(256))
				f[i] = float32(b[i])
				if signed {
					f[i] = float32(int8(b[i]))
				}
			}
			y, err := runOp(12, "MaxPool", attrs, 1, byteTensor(b, signed, c.shape...))
			if err != nil {
				t.Fatal(err)
			}
			want, err := runOp(12, "MaxPool", attrs, 1, tensor.FromFloat32(f, c.shape...))
			if err != nil {
				t.Fatal(err)
			}
			if !tensor.SameShape(y[0].Shape(), want[0].Shape()) {
				t.Fatalf("%+v: shape %v, float path %v", c, y[0].Shape(), want[0].Shape())
			}
			wantType := tensor.Uint8
			if signed {
				wantType = tensor.Int8
			}
			if y[0].DType() != wantType {
				t.Fatalf("%+v: output %s, want %s", c, y[0].DType(), wantType)
			}
			got := tensor.Cast(y[0], tensor.Float32).F32()
			for i, v := range want[0].F32() {
				if got[i] != v {
					t.Fatalf("%+v signed=%v: element %d = %v, float path %v", c, signed, i, got[i], v)
				}
			}
		}
	}
}

// TestParams2D: pool3 geometries map to qelem's symmetric padding when
// the padding before the input, which places the windows, is at most half
// the kernel and the output size matches, in floor or ceil mode; padding
// after the input only sizes the output.
func TestParams2D(t *testing.T) {
	for _, c := range []struct {
		h, w, oh, ow, kh, kw, sh, sw, ph, pw int
		ok                                   bool
	}{
		{2, 96, 1, 48, 2, 2, 2, 2, 0, 0, true},
		{7, 9, 4, 5, 3, 3, 2, 2, 1, 1, true},
		{7, 9, 4, 5, 2, 2, 2, 2, 0, 0, true},    // ceil mode
		{5, 5, 2, 3, 2, 3, 3, 2, 0, 1, true},    // pads 0,1 before, 1,0 after
		{8, 8, 10, 10, 3, 3, 1, 1, 2, 2, false}, // padding over half the kernel
		{7, 9, 5, 5, 3, 3, 2, 2, 1, 1, false},   // an output size no mode gives
	} {
		p := pool3{in: [3]int{1, c.h, c.w}, out: [3]int{1, c.oh, c.ow}, k: [3]int{1, c.kh, c.kw},
			s: [3]int{1, c.sh, c.sw}, d: [3]int{1, 1, 1}, pb: [3]int{0, c.ph, c.pw}}
		pp, ok := p.params2D(2, 3)
		if ok != c.ok {
			t.Errorf("%+v: params2D ok = %v, want %v", c, ok, c.ok)
			continue
		}
		if ok && (pp.OutH() != c.oh || pp.OutW() != c.ow || pp.PadH != c.ph || pp.PadW != c.pw || pp.N != 2 || pp.C != 3) {
			t.Errorf("%+v: params %+v", c, pp)
		}
	}
}

// TestAveragePool2DWindows checks 2-D AveragePool (the precomputed-window
// path) against a direct loop over each window, summing in float32 row by
// row as the operator does, with padding counted and not counted, strides
// and ceil mode.
func TestAveragePool2DWindows(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, c := range []struct {
		h, w          int
		k, s, pads    []int64
		ceil, incPads int64
	}{
		{3, 80, []int64{3, 2}, []int64{3, 2}, []int64{0, 0, 0, 0}, 0, 0},
		{7, 9, []int64{3, 3}, []int64{2, 2}, []int64{1, 1, 1, 1}, 0, 0},
		{7, 9, []int64{3, 3}, []int64{2, 2}, []int64{1, 1, 1, 1}, 0, 1},
		{8, 7, []int64{2, 4}, []int64{3, 2}, []int64{1, 0, 0, 2}, 1, 0},
		{8, 7, []int64{2, 4}, []int64{3, 2}, []int64{1, 0, 0, 2}, 1, 1},
	} {
		x := make([]float32, 2*3*c.h*c.w)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		attrs := map[string]*graph.Attr{"kernel_shape": graph.AInts(c.k...), "strides": graph.AInts(c.s...),
			"pads": graph.AInts(c.pads...), "ceil_mode": graph.AInt(c.ceil), "count_include_pad": graph.AInt(c.incPads)}
		y, err := runOp(19, "AveragePool", attrs, 1, tensor.FromFloat32(x, 2, 3, c.h, c.w))
		if err != nil {
			t.Fatal(err)
		}
		oh, ow := y[0].Dim(2), y[0].Dim(3)
		kh, kw, sh, sw := int(c.k[0]), int(c.k[1]), int(c.s[0]), int(c.s[1])
		pt, pl, pb, pr := int(c.pads[0]), int(c.pads[1]), int(c.pads[2]), int(c.pads[3])
		got := y[0].F32()
		for pln := 0; pln < 6; pln++ {
			for i := 0; i < oh; i++ {
				for j := 0; j < ow; j++ {
					var sum float32
					valid, padded := 0, 0
					for a := 0; a < kh; a++ {
						for b := 0; b < kw; b++ {
							r, q := i*sh-pt+a, j*sw-pl+b
							if r >= -pt && r < c.h+pb && q >= -pl && q < c.w+pr {
								padded++
							}
							if r >= 0 && r < c.h && q >= 0 && q < c.w {
								sum += x[(pln*c.h+r)*c.w+q]
								valid++
							}
						}
					}
					cnt := valid
					if c.incPads != 0 {
						cnt = padded
					}
					want := sum / float32(cnt)
					if g := got[(pln*oh+i)*ow+j]; g != want {
						t.Fatalf("%+v: plane %d output (%d, %d) = %v, want %v", c, pln, i, j, g, want)
					}
				}
			}
		}
	}
}
