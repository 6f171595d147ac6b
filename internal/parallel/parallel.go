// Package parallel runs loops over independent output ranges on a bounded
// number of goroutines. Work is only ever split over outputs, never over a
// reduction, so results do not depend on the thread count.
package parallel

import (
	"runtime"
	"sync/atomic"
	"time"
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
// goroutines run at once, the caller among them (see Tasks). With one
// thread, or n <= grain, fn runs on the calling goroutine as fn(0, n).
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
	// Split into about 4 chunks per thread for balance, each >= grain,
	// run as Tasks: the caller works too, and helpers that linger after
	// one loop join the next at once instead of being started again.
	per := (n + 4*t - 1) / (4 * t)
	if per < grain {
		per = grain
	}
	Tasks(t, (n+per-1)/per, func(i int) {
		s := i * per
		fn(s, min(n, s+per))
	})
}

// Tasks calls fn(i) exactly once for every i in [0, n), on up to t
// goroutines of which the calling goroutine is one, and returns when every
// call has returned. Tasks are handed out one at a time, so a helper that
// starts late simply takes fewer. Waking an idle core takes tens of
// microseconds (more under a hypervisor), so helpers that finish stay
// ready for a short while (helperLinger) and join the next Tasks call at
// once; when only tasks already running elsewhere remain, the caller waits
// for them yielding rather than parking. Use it for tens to hundreds of
// tasks of similar size; each task must own its outputs, as with For.
func Tasks(t, n int, fn func(i int)) {
	if n <= 0 {
		return
	}
	t = min(t, n)
	if t <= 1 {
		for i := 0; i < n; i++ {
			fn(i)
		}
		return
	}
	s := &taskSet{n: int64(n), fn: fn, fin: make(chan struct{})}
	// Lingering helpers take up to ready seats; goroutines are started
	// for the rest, so at most t-1 helpers join.
	ready := min(int(lingering.Load()), t-1)
	s.seats.Store(int64(ready))
	offered.Store(s)
	if ready < t-1 {
		for w := ready; w < t-1; w++ {
			go helper(s)
		}
		// The newest goroutine sits in this P's runnext slot, which idle
		// Ps steal from only after a back-off sleep (tens of
		// microseconds under a hypervisor's timer slack). A no-op
		// goroutine takes that slot, so the helpers wait in the ordinary
		// run queue, taken at once.
		go func() {}()
	}
	s.work()
	offered.CompareAndSwap(s, nil)
	// Only tasks claimed by running helpers remain: yield a little, then
	// park until the last one closes fin.
	for spin := 0; s.done.Load() < s.n; spin++ {
		if spin >= taskSpins {
			<-s.fin
			return
		}
		runtime.Gosched()
	}
}

// taskSpins bounds the caller's yield loop while helpers finish their last
// tasks (each yield costs well under a microsecond when nothing else is
// runnable).
const taskSpins = 1 << 11

// holds counts the Hold calls not yet released.
var holds atomic.Int32

// Hold keeps helpers that run out of tasks ready (yielding) until release
// is called, instead of helperLinger: for a sequence of parallel steps,
// such as one run of a model, whose serial steps in between would
// otherwise outlast the linger and make every parallel step wake an idle
// core again (tens of microseconds under a hypervisor). Release exactly
// once.
func Hold() (release func()) {
	holds.Add(1)
	var done atomic.Bool
	return func() {
		if done.CompareAndSwap(false, true) {
			holds.Add(-1)
		}
	}
}

// helperLinger is how long a helper that ran out of tasks stays ready for
// the next Tasks call before its goroutine exits.
const helperLinger = 50 * time.Microsecond

var (
	// offered is the latest Tasks call still handing out tasks.
	offered atomic.Pointer[taskSet]
	// lingering counts helpers waiting for a call to join.
	lingering atomic.Int32
)

type taskSet struct {
	n          int64
	next, done atomic.Int64
	// seats is how many lingering helpers may still join.
	seats atomic.Int64
	fn    func(int)
	fin   chan struct{}
}

// work runs tasks until none are left to claim, then counts them done
// (once per worker: shared counters cost a cache-line transfer per update).
func (s *taskSet) work() {
	var ran int64
	for {
		i := s.next.Add(1) - 1
		if i >= s.n {
			break
		}
		s.fn(int(i))
		ran++
	}
	if ran > 0 && s.done.Add(ran) == s.n {
		close(s.fin)
	}
}

// helper works on s, then lingers for helperLinger, joining any Tasks
// call that offers a seat.
func helper(s *taskSet) {
	for {
		s.work()
		lingering.Add(1)
		s = nil
		start := time.Now()
		for time.Since(start) < helperLinger || holds.Load() > 0 {
			if o := offered.Load(); o != nil && o.next.Load() < o.n && o.seats.Add(-1) >= 0 {
				s = o
				break
			}
			runtime.Gosched()
		}
		lingering.Add(-1)
		if s == nil {
			return
		}
	}
}
