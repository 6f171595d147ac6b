package parallel

import (
	"sync/atomic"
	"testing"
)

// TestForCovers checks that For's ranges cover [0, n) exactly once, hold
// at least grain items but the last, and that fn runs inline as fn(0, n)
// with one thread or n <= grain.
func TestForCovers(t *testing.T) {
	for _, th := range []int{1, 2, 3, 8} {
		for _, n := range []int{0, 1, 2, 7, 100, 1001} {
			for _, grain := range []int{0, 1, 3, 64} {
				counts := make([]atomic.Int32, n)
				var calls atomic.Int32
				ForThreads(th, n, grain, func(s, e int) {
					calls.Add(1)
					if e <= s || (e-s < grain && e != n) {
						t.Errorf("t=%d n=%d grain=%d: range [%d, %d)", th, n, grain, s, e)
					}
					for i := s; i < e; i++ {
						counts[i].Add(1)
					}
				})
				for i := range counts {
					if c := counts[i].Load(); c != 1 {
						t.Fatalf("t=%d n=%d grain=%d: item %d covered %d times", th, n, grain, i, c)
					}
				}
				if n > 0 && (th == 1 || n <= max(grain, 1)) && calls.Load() != 1 {
					t.Errorf("t=%d n=%d grain=%d: %d calls, want one inline call", th, n, grain, calls.Load())
				}
			}
		}
	}
}

// TestForNested runs For inside For.
func TestForNested(t *testing.T) {
	var sum atomic.Int64
	ForThreads(2, 10, 1, func(s, e int) {
		for i := s; i < e; i++ {
			ForThreads(3, 10, 1, func(s2, e2 int) {
				for j := s2; j < e2; j++ {
					sum.Add(int64(i*10 + j))
				}
			})
		}
	})
	if got := sum.Load(); got != 99*100/2 {
		t.Fatalf("nested sum %d, want %d", got, 99*100/2)
	}
}
