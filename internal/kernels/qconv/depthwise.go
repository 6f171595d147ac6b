package qconv

import (
	"sync"

	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/kernels/qgemm"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/internal/parallel"
)

// isDepthwise reports whether p is a depthwise convolution with channel
// multiplier 1 (Groups == C == OutC).
func isDepthwise(p *Params) bool {
	q := p.Norm()
	return q.Groups == q.C && q.OutC == q.C && q.C > 1
}

// dwAsmOK reports whether the assembly depthwise kernel handles p.
func dwAsmOK(p *Params) bool {
	lvl, ok := dwAsmLevel()
	if !ok || cpu.Max < lvl {
		return false
	}
	q := p.Norm()
	for _, z := range p.WeightZeroPoints {
		if z != 0 {
			return false
		}
	}
	return q.KW <= 8 && 15*q.StrideW+(q.KW-1)*q.DilW < 64
}

var planePool = sync.Pool{New: func() any { return new([]uint8) }}

// depthwise computes a depthwise convolution plane by plane, with the
// assembly kernel when available and plain Go otherwise.
func depthwise(p *Params, x []uint8, w []int8, sumW []int32, r *qgemm.Requant, y []uint8) {
	q := p.Norm()
	oh, ow := q.OutH(), q.OutW()
	if oh == 0 || ow == 0 {
		return
	}
	useAsm := dwPlane != nil && dwAsmOK(p)
	ph, pwid := q.H+2*q.PadH, q.W+2*q.PadW
	za := p.InZeroPoint
	taps := q.KH * q.KW
	groups := (q.KW + 3) / 4
	var idx [128]byte
	for g := 0; g < 2; g++ {
		for o := 0; o < 16; o++ {
			for t := 0; t < 4; t++ {
				kw := 4*g + t
				v := o * q.StrideW
				if kw < q.KW {
					v += kw * q.DilW
				}
				idx[g*64+o*4+t] = byte(v)
			}
		}
	}
	// Planes are handed out one at a time, so a worker that wakes late
	// takes fewer; tiny convolutions stay on the calling goroutine.
	planes := q.N * q.C
	t := min(parallel.NumThreads(), planes)
	if planes*oh*ow*taps < 1<<18 {
		t = 1
	}
	parallel.Tasks(t, planes, func(it int) {
		bp := planePool.Get().(*[]uint8)
		defer planePool.Put(bp)
		need := ph*pwid + 64
		if cap(*bp) < need {
			*bp = make([]uint8, need)
		}
		plane := (*bp)[:need]
		var wq [16]int32
		c := it % q.C
		src := x[it*q.H*q.W : (it+1)*q.H*q.W]
		dst := y[it*oh*ow : (it+1)*oh*ow]
		zw := p.zw(c)
		init := -za*sumW[c] + int32(taps)*za*zw
		if r.Bias != nil {
			init += r.Bias[c]
		}
		wc := w[c*taps : (c+1)*taps]
		mult := p.mult(r, c)
		// Padded plane: borders hold za.
		fill(plane[:q.PadH*pwid], uint8(za))
		fill(plane[(q.PadH+q.H)*pwid:], uint8(za))
		for i := 0; i < q.H; i++ {
			row := plane[(i+q.PadH)*pwid : (i+q.PadH+1)*pwid]
			for t := 0; t < q.PadW; t++ {
				row[t] = uint8(za)
				row[q.PadW+q.W+t] = uint8(za)
			}
			copy(row[q.PadW:], src[i*q.W:(i+1)*q.W])
		}
		if useAsm && q.KH <= 8 {
			for kh := 0; kh < q.KH; kh++ {
				for g := 0; g < groups; g++ {
					var v uint32
					for t := 0; t < 4; t++ {
						if kw := 4*g + t; kw < q.KW {
							v |= uint32(uint8(wc[kh*q.KW+kw])) << (8 * t)
						}
					}
					wq[kh*groups+g] = int32(v)
				}
			}
			lo, hi := float32(r.Min-r.ZeroPoint), float32(r.Max-r.ZeroPoint)
			dwPlane(&plane[0], pwid, pwid*q.StrideH, 16*q.StrideW, oh, ow, q.KH, q.DilH, &idx[0], groups, &wq[0], init, mult, r.ZeroPoint, lo, hi, &dst[0])
			return
		}
		for i := 0; i < oh; i++ {
			for j := 0; j < ow; j++ {
				acc := init
				for kh := 0; kh < q.KH; kh++ {
					row := plane[(i*q.StrideH+kh*q.DilH)*pwid+j*q.StrideW:]
					for kw := 0; kw < q.KW; kw++ {
						acc += int32(row[kw*q.DilW]) * (int32(wc[kh*q.KW+kw]) - zw)
					}
				}
				dst[i*ow+j] = uint8(qmath.Requantize(acc, mult, r.ZeroPoint, r.Min, r.Max))
			}
		}
	})
}
