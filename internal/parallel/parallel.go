// Package parallel runs loops over independent output ranges on a bounded
// number of goroutines. Work is only ever split over outputs, never over a
// reduction, so results do not depend on the thread count.
package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
)

var threads atomic.Int32

func init() { threads.Store(int32(runtime.GOMAXPROCS(0))) }

// SetNumThreads sets how many goroutines kernels use for one operation, like
// torch.set_num_threads. n < 1 means 1. It returns the previous setting.
func SetNumThreads(n int) int {
	if n < 1 {
		n = 1
	}
	return int(threads.Swap(int32(n)))
}

// NumThreads returns the current intra-op thread count.
func NumThreads() int { return int(threads.Load()) }

// For calls fn(start, end) over disjoint ranges that cover [0, n). Ranges
// hold at least grain items (except the last), and at most NumThreads
// goroutines run at once. With one thread, or n <= grain, fn runs on the
// calling goroutine as fn(0, n).
func For(n, grain int, fn func(start, end int)) {
	ForThreads(NumThreads(), n, grain, fn)
}

// ForThreads is For with an explicit thread count.
func ForThreads(t, n, grain int, fn func(start, end int)) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	chunks := (n + grain - 1) / grain
	if t > chunks {
		t = chunks
	}
	if t <= 1 {
		fn(0, n)
		return
	}
	// Split into about 4 chunks per thread for balance, each >= grain.
	per := (n + 4*t - 1) / (4 * t)
	if per < grain {
		per = grain
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	wg.Add(t)
	for w := 0; w < t; w++ {
		go func() {
			defer wg.Done()
			for {
				s := int(next.Add(int64(per))) - per
				if s >= n {
					return
				}
				e := s + per
				if e > n {
					e = n
				}
				fn(s, e)
			}
		}()
	}
	wg.Wait()
}
