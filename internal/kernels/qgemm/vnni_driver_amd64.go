//go:build !purego

package qgemm

import (
	"unsafe"

	"github.com/quanta-go/quanta/internal/parallel"
)

// vnniRows is the tallest VNNI micro-kernel.
const vnniRows = 14

// l2Budget is how many bytes of packed weights one pass over the row
// blocks keeps in use: the panels of a chunk stay in the core's L2 cache
// while every row block streams them.
const l2Budget = 384 << 10

// driveVNNI runs the AVX-512 VNNI tier. The output is cut into tiles of
// one row block (up to 14 rows, balanced) by one chunk of 32-channel
// panels; each tile is one micro-kernel call that reads the activations in
// place and finishes the outputs in registers. K is never split, so every
// output is computed the same way whatever the thread count.
func driveVNNI(m int, a []uint8, lda int, za int32, p *Packed, e *epilogue) {
	if m == 0 || p.N == 0 {
		return
	}
	np := (p.N + 31) / 32
	kq := (p.K + 3) / 4
	width := np * 32

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
		for j := 0; j < width; j++ {
			vec[j] = 0
			if j < p.N {
				vec[j] = e.rq.mult(j)
			}
		}
	case e.dq != nil:
		both := fb.get(2 * width)
		vec, fbias = both[:width], both[width:]
		for j := 0; j < width; j++ {
			vec[j], fbias[j] = 0, 0
			if j >= p.N {
				continue
			}
			sw := e.dq.ScaleW[0]
			if len(e.dq.ScaleW) > 1 {
				sw = e.dq.ScaleW[j]
			}
			vec[j] = float32(e.dq.ScaleA * sw)
			if e.dq.Bias != nil {
				fbias[j] = e.dq.Bias[j]
			}
		}
	}

	nrb := (m + vnniRows - 1) / vnniRows
	// Panels per chunk: as many as fit the L2 budget.
	per := max(1, min(np, l2Budget/(p.K*32)))
	nch := (np + per - 1) / per
	per = (np + nch - 1) / nch

	t := parallel.NumThreads()
	// Small products (under ~2M multiply-adds, a few microseconds) run on
	// the calling goroutine: waking another costs more than it saves.
	if m*p.N*p.K < 1<<21 {
		t = 1
	}
	direct := p.K%4 == 0
	tasks := nch * nrb
	// Tiles are outputs: which goroutine computes one never changes its
	// value. They are handed out one at a time, so a helper that wakes late
	// simply takes fewer.
	parallel.Tasks(min(t, tasks), tasks, func(it int) {
		ch, rb := it/nrb, it%nrb
		base, extra := m/nrb, m%nrb
		i0 := rb*base + min(rb, extra)
		rows := base
		if rb < extra {
			rows++
		}
		pn0 := ch * per
		npan := min(np, pn0+per) - pn0
		j0 := pn0 * 32
		cols := min(npan*32, p.N-j0)
		last := uint32(1)<<(cols-(npan-1)*32) - 1
		if cols-(npan-1)*32 == 32 {
			last = 0xFFFFFFFF
		}
		ap, ldA := &a[i0*lda], lda
		if !direct {
			// Rows copied with K padded to whole groups of 4.
			ab := u8Pool.Get().(*u8buf)
			defer u8Pool.Put(ab)
			ldA = kq * 4
			buf := ab.get(rows * ldA)
			for r := 0; r < rows; r++ {
				row := buf[r*ldA : (r+1)*ldA]
				copy(row, a[(i0+r)*lda:(i0+r)*lda+p.K])
				clear(row[p.K:])
			}
			ap = &buf[0]
		}
		b := &p.vnni[pn0*kq*128]
		in := &init[j0]
		if p.anyZP {
			cb := i32Pool.Get().(*i32buf)
			defer i32Pool.Put(cb)
			ldt := npan * 32
			tile := cb.get(rows * ldt)
			vnniKernelss32[rows](kq, ap, ldA, b, npan, in, &tile[0], ldt, 0xFFFFFFFF)
			finishTile(tile, ldt, rows, cols, i0, j0, a, lda, p, e, vec, fbias)
			return
		}
		switch {
		case e.rq != nil:
			lo, hi := float32(e.rq.Min-e.rq.ZeroPoint), float32(e.rq.Max-e.rq.ZeroPoint)
			var c *byte
			if e.u8 != nil {
				c = &e.u8[i0*e.ldc+j0]
			} else {
				c = (*byte)(unsafe.Pointer(&e.s8[i0*e.ldc+j0]))
			}
			vnniKernelsrq[rows](kq, ap, ldA, b, npan, in, &vec[j0], e.rq.ZeroPoint, lo, hi, c, e.ldc, last)
		case e.dq != nil:
			vnniKernelsdq[rows](kq, ap, ldA, b, npan, in, &vec[j0], &fbias[j0], &e.f32[i0*e.ldc+j0], e.ldc, last)
		default:
			vnniKernelss32[rows](kq, ap, ldA, b, npan, in, &e.s32[i0*e.ldc+j0], e.ldc, last)
		}
	})
}

// finishTile applies the per-channel weight zero points (acc -= zw[j] *
// sum of activation row) to a tile of int32 accumulators and then the
// epilogue, row by row.
func finishTile(tile []int32, ldt, rows, cols, i0, j0 int, a []uint8, lda int, p *Packed, e *epilogue, vec, fbias []float32) {
	for r := 0; r < rows; r++ {
		i := i0 + r
		var sumA int32
		for _, v := range a[i*lda : i*lda+p.K] {
			sumA += int32(v)
		}
		src := tile[r*ldt : r*ldt+cols]
		for t := range src {
			src[t] -= p.zp(j0+t) * sumA
		}
		switch {
		case e.rq != nil:
			lo, hi := float32(e.rq.Min-e.rq.ZeroPoint), float32(e.rq.Max-e.rq.ZeroPoint)
			var dst unsafe.Pointer
			if e.u8 != nil {
				dst = unsafe.Pointer(&e.u8[i*e.ldc+j0])
			} else {
				dst = unsafe.Pointer(&e.s8[i*e.ldc+j0])
			}
			requantRowAVX512(&src[0], &vec[j0], cols, e.rq.ZeroPoint, lo, hi, (*byte)(dst))
		case e.dq != nil:
			dequantRowAVX512(&src[0], &vec[j0], &fbias[j0], cols, &e.f32[i*e.ldc+j0])
		default:
			copy(e.s32[i*e.ldc+j0:i*e.ldc+j0+cols], src)
		}
	}
}
