//go:build !purego

package qgemm

import (
	"encoding/binary"
	"sync"
	"unsafe"

	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/parallel"
)

//go:generate go run asm_gen.go

const (
	panelN   = 32 // channels per VNNI panel
	maxTileM = 14 // rows of the largest VNNI micro-kernel
)

// packArch builds the VNNI layout when the CPU has VNNI.
func packArch(p *Packed) {
	if cpu.Hardware < cpu.AVX512VNNI || p.N == 0 || p.K == 0 {
		return
	}
	np := (p.N + panelN - 1) / panelN
	kq := (p.K + 3) / 4
	p.vnni = make([]int8, np*kq*128)
	for j := 0; j < p.N; j++ {
		pn, c := j/panelN, j%panelN
		for q := 0; q < p.K; q++ {
			p.vnni[(pn*kq+q/4)*128+c*4+q%4] = p.w[j*p.K+q]
		}
	}
}

// archVariants lists the assembly tiers compiled into this build.
var archVariants = []variant{{name: "avx512vnni", level: cpu.AVX512VNNI, run: runVNNI}}

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

// runVNNI is run for the VNNI kernels: row blocks of up to 14 rows, runs of
// 32-channel panels, K never split.
func runVNNI(m int, a []uint8, lda int, za int32, p *Packed, e *epilogue) {
	if p.vnni == nil || m == 0 || p.N == 0 {
		runGeneric(m, a, lda, za, p, e)
		return
	}
	np := (p.N + panelN - 1) / panelN
	kq := (p.K + 3) / 4
	width := np * panelN

	// Per-call column vectors, padded to whole panels: the accumulator
	// start values (zero-point corrections and int32 bias), and the
	// epilogue's multipliers, scales and float bias.
	ib := i32Pool.Get().(*i32buf)
	defer i32Pool.Put(ib)
	init := ib.get(width)
	k := int32(p.K)
	for j := 0; j < width; j++ {
		if j >= p.N {
			init[j] = 0
			continue
		}
		zw := p.zp(j)
		init[j] = -za*p.rowSum[j] + k*za*zw
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

	nrb := (m + maxTileM - 1) / maxTileM
	chunks := 1
	if t := parallel.NumThreads(); t > 1 && nrb < 4*t {
		chunks = min(np, (4*t+nrb-1)/nrb)
	}
	perChunk := (np + chunks - 1) / chunks
	chunks = (np + perChunk - 1) / perChunk
	parallel.For(nrb*chunks, 1, func(s, end int) {
		ab := u8Pool.Get().(*u8buf)
		defer u8Pool.Put(ab)
		cb := i32Pool.Get().(*i32buf)
		defer i32Pool.Put(cb)
		var sumA [maxTileM]int32
		for it := s; it < end; it++ {
			rb, ch := it/chunks, it%chunks
			// Balanced row blocks: the first m%nrb blocks get one row more.
			base, extra := m/nrb, m%nrb
			i0 := rb*base + min(rb, extra)
			rows := base
			if rb < extra {
				rows++
			}
			pa := ab.get(rows * kq * 4)
			packA(pa, a[i0*lda:], lda, rows, p.K, kq)
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
			j0 := pn0 * panelN
			ldt := npan * panelN
			cols := min(ldt, p.N-j0)
			tile := cb.get(rows * ldt)
			vnniKernels[rows](kq, &pa[0], &p.vnni[pn0*kq*128], &init[j0], &tile[0], npan, ldt)
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
					var dst *byte
					if e.u8 != nil {
						dst = &e.u8[i*e.ldc+j0]
					} else {
						dst = (*byte)(unsafe.Pointer(&e.s8[i*e.ldc+j0]))
					}
					requantRowAVX512(&src[0], &vec[j0], cols, e.rq.ZeroPoint, lo, hi, dst)
				case e.dq != nil:
					dequantRowAVX512(&src[0], &vec[j0], &fbias[j0], cols, &e.f32[i*e.ldc+j0])
				default:
					copy(e.s32[i*e.ldc+j0:i*e.ldc+j0+cols], src)
				}
			}
		}
	})
}

// packA lays out rows×K activations as kq groups of rows×4 bytes, zero
// padding K to 4*kq.
func packA(pa []uint8, a []uint8, lda, rows, k, kq int) {
	full := k / 4
	for r := 0; r < rows; r++ {
		row := a[r*lda : r*lda+k]
		off := r * 4
		step := rows * 4
		for g := 0; g < full; g++ {
			binary.LittleEndian.PutUint32(pa[off+g*step:], binary.LittleEndian.Uint32(row[g*4:]))
		}
		if full < kq {
			var w [4]uint8
			copy(w[:], row[full*4:])
			copy(pa[off+full*step:off+full*step+4], w[:])
		}
	}
}
