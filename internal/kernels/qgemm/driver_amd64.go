//go:build !purego

package qgemm

import (
	"math"
	"sync"
	"unsafe"

	"github.com/quanta-go/quanta/internal/parallel"
)

// tier describes one assembly implementation for the shared driver:
// panels of panelN channels, micro-kernels of up to maxM rows, K in groups
// of kgrp, and its epilogue loops.
type tier struct {
	panelN, maxM, kgrp int
	// bytesPerA is the packed size of one activation (1 for u8, 2 for
	// int16); 0 means 1.
	bytesPerA int
	packA     func(buf []byte, a []uint8, lda, rows, k, groups int)
	kernel    func(p *Packed, rows, groups int, buf []byte, pn0 int, init []int32, tile []int32, npan, ldt int)
	requant   func(src []int32, mult []float32, zp int32, lo, hi float32, dst unsafe.Pointer)
	// requantS8, if set, is used for int8 outputs (else requant serves
	// both: its byte store truncates values already within range).
	requantS8 func(src []int32, mult []float32, zp int32, lo, hi float32, dst unsafe.Pointer)
	dequant   func(src []int32, scale, bias []float32, dst []float32)
}

type i32buf struct{ b []int32 }
type f32buf struct{ b []float32 }
type u8buf struct{ b []uint8 }

var (
	i32Pool = sync.Pool{New: func() any { return new(i32buf) }}
	f32Pool = sync.Pool{New: func() any { return new(f32buf) }}
	u8Pool  = sync.Pool{New: func() any { return new(u8buf) }}
)

func (b *i32buf) get(n int) []int32 {
	if cap(b.b) < n {
		b.b = make([]int32, n)
	}
	return b.b[:n]
}

func (b *f32buf) get(n int) []float32 {
	if cap(b.b) < n {
		b.b = make([]float32, n)
	}
	return b.b[:n]
}

func (b *u8buf) get(n int) []uint8 {
	if cap(b.b) < n {
		b.b = make([]uint8, n)
	}
	return b.b[:n]
}

func roundEven(f float32) float32 { return float32(math.RoundToEven(float64(f))) }

// drive runs a tier: balanced row blocks of up to maxM rows, runs of
// panels, K never split; work is spread over row blocks and panel runs so
// results do not depend on the thread count.
func drive(tr *tier, m int, a []uint8, lda int, za int32, p *Packed, e *epilogue) {
	if m == 0 || p.N == 0 {
		return
	}
	pw := tr.panelN
	np := (p.N + pw - 1) / pw
	groups := (p.K + tr.kgrp - 1) / tr.kgrp
	width := np * pw

	// Per-call column vectors, padded to whole panels: accumulator start
	// values (zero-point corrections and int32 bias) and the epilogue's
	// multipliers, scales and float bias.
	ib := i32Pool.Get().(*i32buf)
	defer i32Pool.Put(ib)
	init := ib.get(width)
	k := int32(p.K)
	for j := 0; j < width; j++ {
		if j >= p.N {
			init[j] = 0
			continue
		}
		init[j] = -za*p.rowSum[j] + k*za*p.zp(j)
		if e.rq != nil && e.rq.Bias != nil {
			init[j] += e.rq.Bias[j]
		}
	}
	fb := f32Pool.Get().(*f32buf)
	defer f32Pool.Put(fb)
	var vec, fbias []float32
	switch {
	case e.rq != nil:
		vec = fb.get(width)
		for j := 0; j < p.N; j++ {
			vec[j] = e.rq.mult(j)
		}
	case e.dq != nil:
		both := fb.get(2 * width)
		vec, fbias = both[:width], both[width:]
		for j := 0; j < p.N; j++ {
			sw := e.dq.ScaleW[0]
			if len(e.dq.ScaleW) > 1 {
				sw = e.dq.ScaleW[j]
			}
			vec[j] = float32(e.dq.ScaleA * sw)
			fbias[j] = 0
			if e.dq.Bias != nil {
				fbias[j] = e.dq.Bias[j]
			}
		}
	}

	nrb := (m + tr.maxM - 1) / tr.maxM
	// Small products (under ~2M multiply-adds, a few microseconds) run on
	// the calling goroutine: waking another costs more than it saves.
	t := parallel.NumThreads()
	if m*p.N*p.K < 1<<21 {
		t = 1
	}
	chunks := 1
	if t > 1 && nrb < 4*t {
		chunks = min(np, (4*t+nrb-1)/nrb)
	}
	perChunk := (np + chunks - 1) / chunks
	chunks = (np + perChunk - 1) / perChunk
	bpa := max(tr.bytesPerA, 1)
	parallel.ForThreads(t, nrb*chunks, 1, func(s, end int) {
		ab := u8Pool.Get().(*u8buf)
		defer u8Pool.Put(ab)
		cb := i32Pool.Get().(*i32buf)
		defer i32Pool.Put(cb)
		var sumA [16]int32
		for it := s; it < end; it++ {
			rb, ch := it/chunks, it%chunks
			// Balanced row blocks: the first m%nrb blocks get one row more.
			base, extra := m/nrb, m%nrb
			i0 := rb*base + min(rb, extra)
			rows := base
			if rb < extra {
				rows++
			}
			buf := ab.get(rows * groups * tr.kgrp * bpa)
			tr.packA(buf, a[i0*lda:], lda, rows, p.K, groups)
			if p.anyZP {
				for r := 0; r < rows; r++ {
					var sum int32
					for _, v := range a[(i0+r)*lda : (i0+r)*lda+p.K] {
						sum += int32(v)
					}
					sumA[r] = sum
				}
			}
			pn0 := ch * perChunk
			npan := min(np, pn0+perChunk) - pn0
			j0 := pn0 * pw
			ldt := npan * pw
			cols := min(ldt, p.N-j0)
			tile := cb.get(rows * ldt)
			tr.kernel(p, rows, groups, buf, pn0, init[j0:], tile, npan, ldt)
			if p.anyZP {
				for r := 0; r < rows; r++ {
					row := tile[r*ldt : r*ldt+cols]
					for t := range row {
						row[t] -= p.zp(j0+t) * sumA[r]
					}
				}
			}
			for r := 0; r < rows; r++ {
				i := i0 + r
				src := tile[r*ldt : r*ldt+cols]
				switch {
				case e.rq != nil:
					lo, hi := float32(e.rq.Min-e.rq.ZeroPoint), float32(e.rq.Max-e.rq.ZeroPoint)
					if e.u8 != nil {
						tr.requant(src, vec[j0:j0+cols], e.rq.ZeroPoint, lo, hi, unsafe.Pointer(&e.u8[i*e.ldc+j0]))
					} else if tr.requantS8 != nil {
						tr.requantS8(src, vec[j0:j0+cols], e.rq.ZeroPoint, lo, hi, unsafe.Pointer(&e.s8[i*e.ldc+j0]))
					} else {
						tr.requant(src, vec[j0:j0+cols], e.rq.ZeroPoint, lo, hi, unsafe.Pointer(&e.s8[i*e.ldc+j0]))
					}
				case e.dq != nil:
					tr.dequant(src, vec[j0:j0+cols], fbias[j0:j0+cols], e.f32[i*e.ldc+j0:i*e.ldc+j0+cols])
				default:
					copy(e.s32[i*e.ldc+j0:i*e.ldc+j0+cols], src)
				}
			}
		}
	})
}
