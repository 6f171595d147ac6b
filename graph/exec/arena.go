package exec

import (
	"sync"
	"unsafe"

	"github.com/quanta-go/quanta/tensor"
)

// Buffer reuse. Kernels that overwrite their whole output take it from
// Frame.allocF32; with an arena (an optimized Program's Run), the buffer
// comes from the buffers of values that died earlier in this run or in
// an earlier one, so large outputs are neither allocated nor zeroed again.
//
// The arena knows only the buffers it handed out. After each step, every
// value the step computed is looked up by address: if its float32 data
// lies inside an arena buffer (the buffer itself, or a view of it a
// kernel such as Reshape or Identity returned), the buffer gains a
// reference. When a value's last reader has run (Subprogram.release),
// its buffer loses one; at zero it is free for the next allocF32 of the
// same length. Values the graph returns or subgraphs read are never
// released, and buffers still referenced at the end of a run are left to
// the caller and the garbage collector. A frame shares its arena with the
// frames of the subgraphs it runs, which run one at a time.

// arena is the buffer pool of one Run at a time.
type arena struct {
	free map[int][][]float32 // by length
	live []arenaBuf
}

// arenaBuf is a buffer handed out in this run.
type arenaBuf struct {
	lo, hi uintptr // address range of the buffer's elements
	buf    []float32
	refs   int
}

// maxFreePerSize bounds the free buffers kept per length.
const maxFreePerSize = 16

// arenas holds idle arenas; any Program may use any of them.
var arenas = sync.Pool{New: func() any { return &arena{free: map[int][][]float32{}} }}

// allocF32 returns n float32 elements whose old contents are arbitrary:
// the caller must overwrite every one of them.
func (f *Frame) allocF32(n int) []float32 {
	if f == nil || f.arena == nil || n < minArenaLen {
		return make([]float32, n)
	}
	a := f.arena
	var b []float32
	if l := a.free[n]; len(l) > 0 {
		b = l[len(l)-1]
		a.free[n] = l[:len(l)-1]
	} else {
		b = make([]float32, n)
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	a.live = append(a.live, arenaBuf{lo: lo, hi: lo + uintptr(n)*4, buf: b})
	return b
}

// allocBytes returns n bytes whose old contents are arbitrary (the
// caller must overwrite every one), for the 8-bit outputs of int8 steps:
// an arena buffer of float32 words seen as bytes, so one pool serves both.
func (f *Frame) allocBytes(n int) []byte {
	if f == nil || f.arena == nil || n < 4*minArenaLen {
		return make([]byte, n)
	}
	w := f.allocF32((n + 3) / 4)
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(w))), n)
}

// allocI32 returns n int32 elements whose old contents are arbitrary (the
// caller must overwrite every one), for the 16-bit codes held as int32:
// an arena buffer of float32 words seen as int32.
func (f *Frame) allocI32(n int) []int32 {
	if f == nil || f.arena == nil || n < minArenaLen {
		return make([]int32, n)
	}
	w := f.allocF32(n)
	return unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(w))), n)
}

// minArenaLen is the shortest buffer worth pooling.
const minArenaLen = 1024

// find returns the index of the live buffer holding t's data, or -1.
func (a *arena) find(t *tensor.Tensor) int {
	if t == nil || len(a.live) == 0 {
		return -1
	}
	var p uintptr
	switch t.DType() {
	case tensor.Float32:
		s := t.F32()
		if cap(s) == 0 {
			return -1
		}
		p = uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	case tensor.Uint8:
		s := t.U8()
		if cap(s) == 0 {
			return -1
		}
		p = uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	case tensor.Int8:
		s := t.I8()
		if cap(s) == 0 {
			return -1
		}
		p = uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	case tensor.Int32:
		s := t.I32()
		if cap(s) == 0 {
			return -1
		}
		p = uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	default:
		return -1
	}
	for i := range a.live {
		if p >= a.live[i].lo && p < a.live[i].hi {
			return i
		}
	}
	return -1
}

// retain adds a reference for a value now holding t.
func (a *arena) retain(t *tensor.Tensor) {
	if i := a.find(t); i >= 0 {
		a.live[i].refs++
	}
}

// drop removes a reference of a dead value that held t, freeing the
// buffer at zero.
func (a *arena) drop(t *tensor.Tensor) {
	if i := a.find(t); i >= 0 {
		a.live[i].refs--
		if a.live[i].refs <= 0 {
			a.freeAt(i)
		}
	}
}

// sweep frees the buffers handed out since live had n entries that no
// value references (scratch a kernel did not return).
func (a *arena) sweep(n int) {
	for i := len(a.live) - 1; i >= n; i-- {
		if a.live[i].refs <= 0 {
			a.freeAt(i)
		}
	}
}

func (a *arena) freeAt(i int) {
	b := a.live[i].buf
	if l := a.free[len(b)]; len(l) < maxFreePerSize {
		a.free[len(b)] = append(l, b)
	}
	last := len(a.live) - 1
	a.live[i] = a.live[last]
	a.live[last] = arenaBuf{}
	a.live = a.live[:last]
}

// reset forgets the buffers still referenced (returned to the caller).
func (a *arena) reset() {
	clear(a.live)
	a.live = a.live[:0]
}

// releasePlan returns, per step of sp, the values computed by sp's steps
// that are dead after it: read for the last time, or never read. Values
// the graph returns or subgraphs read are kept.
func releasePlan(sp *Subprogram) [][]int {
	si := newStepInfo(sp)
	last := make([]int, sp.nslots)
	for i := range last {
		last[i] = -1
	}
	for i, st := range sp.steps {
		for _, s := range st.in {
			if s >= 0 {
				last[s] = i
			}
		}
	}
	rel := make([][]int, len(sp.steps))
	for i, st := range sp.steps {
		for _, o := range st.out {
			if o < 0 || si.pinned[o] {
				continue
			}
			at := max(last[o], i)
			rel[at] = append(rel[at], o)
		}
	}
	return rel
}
