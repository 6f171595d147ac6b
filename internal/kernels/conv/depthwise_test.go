package conv

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/internal/cpu"
)

var tailSizes = func() []int {
	s := []int{}
	for n := 0; n <= 17; n++ {
		s = append(s, n)
	}
	return append(s, 31, 32, 33, 47, 48, 49, 56, 63, 64, 65, 79, 80, 127, 128, 129, 200)
}()

// TestRowKernels compares every rows-kernel variant this CPU runs with a
// float64 evaluation of its definition, on every tail length, 1-3 rows,
// tap counts 0-12 and unaligned offsets, with guard elements after y.
func TestRowKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for _, k := range rowKernels {
		if !cpu.Has(k.level) {
			continue
		}
		for _, n := range tailSizes {
			for rows := 1; rows <= 3; rows++ {
				for taps := 0; taps <= 12; taps += 1 + rows/2 {
					ystride := n + r.IntN(3)
					bstride := r.IntN(n + 5)
					base := randSlice(r, (rows-1)*bstride+n+40)
					offs := make([]int, taps)
					for i := range offs {
						offs[i] = r.IntN(41)
					}
					w := randSlice(r, taps)
					b := r.Float32()
					y := guarded((rows-1)*ystride + n)
					for i := range y {
						y[i] = -7 // gaps between rows must stay untouched
					}
					k.row(y, n, rows, ystride, base, bstride, offs, w, b)
					checkGuard(t, k.name, y)
					for ro := 0; ro < rows; ro++ {
						for i := 0; i < ystride && ro*ystride+i < len(y); i++ {
							got := y[ro*ystride+i]
							if i >= n {
								if got != -7 {
									t.Fatalf("%s n=%d rows=%d: gap element y[%d,%d] written", k.name, n, rows, ro, i)
								}
								continue
							}
							want := float64(b)
							mag := math.Abs(want)
							for tp, o := range offs {
								v := float64(w[tp]) * float64(base[o+ro*bstride+i])
								want += v
								mag += math.Abs(v)
							}
							if d := math.Abs(float64(got) - want); d > 1e-6*(1+mag) {
								t.Fatalf("%s n=%d rows=%d taps=%d: y[%d,%d] = %v, want %v", k.name, n, rows, taps, ro, i, got, want)
							}
						}
					}
				}
			}
		}
	}
}

// TestRowKernelEdgeValues checks that the variants treat signed zeros,
// infinities and NaN like the generic kernel.
func TestRowKernelEdgeValues(t *testing.T) {
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	base := []float32{0, float32(math.Copysign(0, -1)), inf, -inf, nan, 1e-45, -3e38, 3e38, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	for _, k := range rowKernels {
		if !cpu.Has(k.level) {
			continue
		}
		for _, c := range []struct {
			offs []int
			w    []float32
			b    float32
		}{
			{nil, nil, float32(math.Copysign(0, -1))},
			{[]int{0}, []float32{-1}, 0},
			{[]int{0, 1}, []float32{1, 1}, float32(math.Copysign(0, -1))},
			{[]int{1, 2}, []float32{2, 0.5}, 1},
		} {
			n := len(base) - 3
			want := make([]float32, n)
			dwRowsGeneric(want, n, 1, n, base, 0, c.offs, c.w, c.b)
			got := guarded(n)
			k.row(got, n, 1, n, base, 0, c.offs, c.w, c.b)
			checkGuard(t, k.name, got)
			for i := range want {
				g, w := got[i], want[i]
				if math.IsNaN(float64(w)) != math.IsNaN(float64(g)) || (!math.IsNaN(float64(w)) && math.Float32bits(g) != math.Float32bits(w)) {
					t.Fatalf("%s %v: y[%d] = %v, generic %v", k.name, c.offs, i, g, w)
				}
			}
		}
	}
}

func TestDotKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	for _, k := range dotKernels {
		if !cpu.Has(k.level) {
			continue
		}
		for _, n := range tailSizes {
			for rows := 0; rows <= 3; rows++ {
				for off := 0; off < 3; off++ {
					as, bs := n+r.IntN(3), r.IntN(n+4)
					a := randSlice(r, off+max(0, rows-1)*as+n)[off:]
					b := randSlice(r, max(0, rows-1)*bs+n)
					got := k.dot(a, as, b, bs, n, rows)
					var want, mag float64
					for ro := 0; ro < rows; ro++ {
						for i := 0; i < n; i++ {
							v := float64(a[ro*as+i]) * float64(b[ro*bs+i])
							want += v
							mag += math.Abs(v)
						}
					}
					if d := math.Abs(float64(got) - want); d > 1e-6*(1+mag) {
						t.Fatalf("%s n=%d rows=%d: dot = %v, want %v", k.name, n, rows, got, want)
					}
				}
			}
		}
	}
}

func TestDeinterleaveKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(35, 36))
	for _, k := range deinterleaveKernels {
		if !cpu.Has(k.level) {
			continue
		}
		for _, n := range tailSizes {
			src := randSlice(r, 2*n)
			even, odd := guarded(n), guarded(n)
			k.split(even, odd, src)
			checkGuard(t, k.name+" even", even)
			checkGuard(t, k.name+" odd", odd)
			for j := 0; j < n; j++ {
				if even[j] != src[2*j] || odd[j] != src[2*j+1] {
					t.Fatalf("%s n=%d: pair %d = (%v, %v), want (%v, %v)", k.name, n, j, even[j], odd[j], src[2*j], src[2*j+1])
				}
			}
		}
	}
}

// TestConvAtEveryLevel reruns the forward and backward comparisons with the
// CPU level capped at each tier this machine has.
func TestConvAtEveryLevel(t *testing.T) {
	for _, l := range cpu.Levels() {
		t.Run(l.String(), func(t *testing.T) {
			old := cpu.SetMax(l)
			defer cpu.SetMax(old)
			TestConv2DMatchesReference(t)
			TestConv2DBackwardMatchesReference(t)
			TestConvTranspose2DMatchesReference(t)
		})
	}
}
