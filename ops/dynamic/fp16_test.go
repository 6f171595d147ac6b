package dynamic

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

func TestPackLinearFP16Hand(t *testing.T) {
	// 1 and -2.5 are halves; 0.1 rounds to 0x2e66 = 0.0999755859375;
	// 1e5 saturates to 65504 (0x7bff) as PyTorch does, -Inf to -65504;
	// 3e-8 rounds to the smallest subnormal 2^-24 (0x0001).
	w := tensor.FromFloat32([]float32{1, -2.5, 0.1, 1e5, float32(math.Inf(-1)), 3e-8}, 2, 3)
	p, err := PackLinearFP16(w, tensor.FromFloat32([]float32{0.5, -1}, 2))
	if err != nil {
		t.Fatal(err)
	}
	want := []uint16{0x3c00, 0xc100, 0x2e66, 0x7bff, 0xfbff, 0x0001}
	for i, h := range p.WeightFP16() {
		if h != want[i] {
			t.Fatalf("half %d = %#04x, want %#04x", i, h, want[i])
		}
	}
	wide := p.Weight().F32()
	if wide[2] != 0.0999755859375 || wide[3] != 65504 || wide[5] != float32(math.Ldexp(1, -24)) {
		t.Fatalf("widened %v", wide)
	}
	// y = x·Wᵀ + b with x = [2, 1, 0]: [2 - 2.5 + 0.5, 65504*2 - 65504 - 1].
	y, err := LinearFP16(tensor.FromFloat32([]float32{2, 1, 0}, 1, 3), p)
	if err != nil {
		t.Fatal(err)
	}
	if got := y.F32(); got[0] != 0 || got[1] != 65503 {
		t.Fatalf("y = %v", got)
	}
}

func TestLinearFP16MatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for _, sh := range [][3]int{{1, 17, 5}, {4, 64, 33}, {1, 768, 64}, {9, 130, 65}} {
		m, k, n := sh[0], sh[1], sh[2]
		p, err := PackLinearFP16(randTensor(r, 1, n, k), randTensor(r, 1, n))
		if err != nil {
			t.Fatal(err)
		}
		x := randTensor(r, 1, 1, m, k)
		var ref []float32
		for _, th := range []int{1, 2, 3} {
			old := parallel.SetNumThreads(th)
			y, err := LinearFP16(x, p)
			parallel.SetNumThreads(old)
			if err != nil || !tensor.SameShape(y.Shape(), []int{1, m, n}) {
				t.Fatalf("%v %v", y, err)
			}
			if ref == nil {
				ref = y.F32()
			} else {
				for i, v := range y.F32() {
					if math.Float32bits(v) != math.Float32bits(ref[i]) {
						t.Fatalf("threads %d: y[%d] differs", th, i)
					}
				}
			}
		}
		wide, b := p.Weight().F32(), p.bias
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				var s, mag float64
				for c := 0; c < k; c++ {
					v := float64(x.F32()[i*k+c]) * float64(wide[j*k+c])
					s += v
					mag += math.Abs(v)
				}
				s += float64(b[j])
				if d := math.Abs(float64(ref[i*n+j]) - s); d > float64(k+2)*6e-8*(mag+math.Abs(float64(b[j]))) {
					t.Fatalf("%v: y[%d][%d] = %v, float64 %v", sh, i, j, ref[i*n+j], s)
				}
			}
		}
		into := tensor.New(tensor.Float32, 1, m, n)
		if err := LinearFP16Into(into, x, p); err != nil {
			t.Fatal(err)
		}
		for i, v := range into.F32() {
			if v != ref[i] {
				t.Fatalf("LinearFP16Into differs at %d", i)
			}
		}
	}
}

func TestLinearFP16Errors(t *testing.T) {
	nan := float32(math.NaN())
	if _, err := PackLinearFP16(tensor.FromFloat32([]float32{1, nan}, 1, 2), nil); err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Fatalf("NaN weights: %v", err)
	}
	p, err := PackLinearFP16(tensor.Ones(2, 3), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LinearFP16(tensor.Ones(2, 4), p); err == nil {
		t.Fatal("wrong width accepted")
	}
	if err := LinearFP16Into(tensor.Zeros(3, 2), tensor.Ones(2, 3), p); err == nil {
		t.Fatal("wrong output accepted")
	}
	// Without bias; NaN activations propagate.
	y, err := LinearFP16(tensor.FromFloat32([]float32{1, 2, nan}, 1, 3), p)
	if err != nil || y.F32()[0] == y.F32()[0] {
		t.Fatalf("NaN input: %v %v", y, err)
	}
}
