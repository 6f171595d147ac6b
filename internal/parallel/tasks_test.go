package parallel

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestTasksCallsEachOnce(t *testing.T) {
	for _, th := range []int{0, 1, 2, 3, 8} {
		for _, n := range []int{0, 1, 2, 5, 100, 1000} {
			counts := make([]atomic.Int32, n)
			Tasks(th, n, func(i int) { counts[i].Add(1) })
			for i := range counts {
				if c := counts[i].Load(); c != 1 {
					t.Fatalf("t=%d n=%d: task %d ran %d times", th, n, i, c)
				}
			}
		}
	}
}

func TestTasksWaitsForAll(t *testing.T) {
	// Every result must be visible when Tasks returns, whoever computed it.
	for rep := 0; rep < 200; rep++ {
		out := make([]int, 64)
		Tasks(2, len(out), func(i int) {
			s := 0
			for k := 0; k <= i*100; k++ {
				s += k
			}
			out[i] = s
		})
		for i, v := range out {
			if want := (i * 100) * (i*100 + 1) / 2; v != want {
				t.Fatalf("rep %d: out[%d] = %d, want %d", rep, i, v, want)
			}
		}
	}
}

func TestTasksNested(t *testing.T) {
	var sum atomic.Int64
	Tasks(3, 10, func(i int) {
		Tasks(2, 10, func(j int) { sum.Add(int64(i*10 + j)) })
	})
	if got := sum.Load(); got != 99*100/2 {
		t.Fatalf("nested sum %d, want %d", got, 99*100/2)
	}
}

// TestHold checks that a helper stays ready past helperLinger while a Hold
// is in force, leaves once it is released, and that releasing twice
// counts once.
func TestHold(t *testing.T) {
	release := Hold()
	var ran atomic.Int32
	Tasks(2, 8, func(int) {
		time.Sleep(200 * time.Microsecond)
		ran.Add(1)
	})
	if ran.Load() != 8 {
		t.Fatalf("%d of 8 tasks ran", ran.Load())
	}
	time.Sleep(10 * helperLinger)
	if n := lingering.Load(); n < 1 {
		t.Fatalf("%d helpers ready %v after the call with a Hold in force, want 1", n, 10*helperLinger)
	}
	release()
	release()
	if h := holds.Load(); h != 0 {
		t.Fatalf("holds %d after releasing twice, want 0", h)
	}
	deadline := time.Now().Add(2 * time.Second)
	for lingering.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(helperLinger)
	}
	if n := lingering.Load(); n != 0 {
		t.Fatalf("%d helpers still ready after the release", n)
	}
}
