//go:build !purego

package qgemm

import (
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

var aPool = sync.Pool{New: func() any { b := make([]uint8, 0, 1<<14); return &b }}

// runVNNI is run for the VNNI kernels: row blocks of up to 14 rows, panels
// of 32 channels, K never split.
func runVNNI(m int, a []uint8, lda int, za int32, p *Packed, e *epilogue) {
	if p.vnni == nil {
		runGeneric(m, a, lda, za, p, e)
		return
	}
	np := (p.N + panelN - 1) / panelN
	kq := (p.K + 3) / 4
	nrb := (m + maxTileM - 1) / maxTileM
	chunks := 1
	if t := parallel.NumThreads(); nrb < 4*t {
		chunks = min(np, (4*t+nrb-1)/nrb)
	}
	perChunk := (np + chunks - 1) / chunks
	chunks = (np + perChunk - 1) / perChunk
	work := p.K * panelN * maxTileM
	grain := max(1, (1<<16)/max(work*perChunk, 1))
	parallel.For(nrb*chunks, grain, func(s, end int) {
		bufp := aPool.Get().(*[]uint8)
		defer aPool.Put(bufp)
		var tile [maxTileM * panelN]int32
		var init [panelN]int32
		var vec [panelN]float32
		var bias [panelN]float32
		var sumA [maxTileM]int32
		for it := s; it < end; it++ {
			rb, ch := it/chunks, it%chunks
			i0 := rb * maxTileM
			rows := min(maxTileM, m-i0)
			// Pack the rows: kq groups of rows×4 bytes, zero padded.
			need := rows * kq * 4
			if cap(*bufp) < need {
				*bufp = make([]uint8, need)
			}
			pa := (*bufp)[:need]
			for r := 0; r < rows; r++ {
				row := a[(i0+r)*lda : (i0+r)*lda+p.K]
				var sum int32
				for q, v := range row {
					pa[(q/4)*rows*4+r*4+q%4] = v
					sum += int32(v)
				}
				for q := p.K; q < kq*4; q++ {
					pa[(q/4)*rows*4+r*4+q%4] = 0
				}
				sumA[r] = sum
			}
			kern := vnniKernels[rows]
			for pn := ch * perChunk; pn < min(np, (ch+1)*perChunk); pn++ {
				j0 := pn * panelN
				cols := min(panelN, p.N-j0)
				k := int32(p.K)
				for t := 0; t < panelN; t++ {
					init[t] = 0
					if t < cols {
						j := j0 + t
						zw := p.zp(j)
						init[t] = -za*p.rowSum[j] + k*za*zw
						if e.rq != nil && e.rq.Bias != nil {
							init[t] += e.rq.Bias[j]
						}
					}
				}
				kern(kq, &pa[0], &p.vnni[pn*kq*128], &init[0], &tile[0])
				if p.anyZP {
					for r := 0; r < rows; r++ {
						for t := 0; t < cols; t++ {
							tile[r*panelN+t] -= p.zp(j0+t) * sumA[r]
						}
					}
				}
				e.emitTile(tile[:], rows, i0, j0, cols, &vec, &bias)
			}
		}
	})
}

// emitTile writes rows×cols accumulators (row stride 32) at (i0, j0).
func (e *epilogue) emitTile(tile []int32, rows, i0, j0, cols int, vec, bias *[panelN]float32) {
	switch {
	case e.rq != nil:
		r := e.rq
		for t := 0; t < cols; t++ {
			vec[t] = r.mult(j0 + t)
		}
		lo, hi := float32(r.Min-r.ZeroPoint), float32(r.Max-r.ZeroPoint)
		for i := 0; i < rows; i++ {
			var dst *byte
			if e.u8 != nil {
				dst = &e.u8[(i0+i)*e.ldc+j0]
			} else {
				dst = (*byte)(unsafe.Pointer(&e.s8[(i0+i)*e.ldc+j0]))
			}
			requantRowAVX512(&tile[i*panelN], &vec[0], cols, r.ZeroPoint, lo, hi, dst)
		}
	case e.dq != nil:
		d := e.dq
		for t := 0; t < cols; t++ {
			sw := d.ScaleW[0]
			if len(d.ScaleW) > 1 {
				sw = d.ScaleW[j0+t]
			}
			vec[t] = float32(d.ScaleA * sw)
			bias[t] = 0
			if d.Bias != nil {
				bias[t] = d.Bias[j0+t]
			}
		}
		for i := 0; i < rows; i++ {
			dequantRowAVX512(&tile[i*panelN], &vec[0], &bias[0], cols, &e.f32[(i0+i)*e.ldc+j0])
		}
	default:
		for i := 0; i < rows; i++ {
			copy(e.s32[(i0+i)*e.ldc+j0:(i0+i)*e.ldc+j0+cols], tile[i*panelN:i*panelN+cols])
		}
	}
}
