package qconv

import (
	"sync"

	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/kernels/conv"
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

// dwQuads packs a depthwise convolution's taps w ([C][KH][KW]) for the
// assembly kernel: per channel and kernel row, (KW+3)/4 int32s holding
// four taps each (low byte first, zero past KW). Nil for kernels over 8
// rows or columns, which the assembly kernel does not take.
func dwQuads(q *conv.Conv2DParams, w []int8) []int32 {
	if q.KH > 8 || q.KW > 8 {
		return nil
	}
	taps, groups := q.KH*q.KW, (q.KW+3)/4
	wq := make([]int32, q.C*q.KH*groups)
	for c := 0; c < q.C; c++ {
		wc := w[c*taps : (c+1)*taps]
		for kh := 0; kh < q.KH; kh++ {
			for g := 0; g < groups; g++ {
				var v uint32
				for t := 0; t < 4; t++ {
					if kw := 4*g + t; kw < q.KW {
						v |= uint32(uint8(wc[kh*q.KW+kw])) << (8 * t)
					}
				}
				wq[(c*q.KH+kh)*groups+g] = int32(v)
			}
		}
	}
	return wq
}

var planePool = sync.Pool{New: func() any { return new([]uint8) }}

// depthwise computes a depthwise convolution plane by plane, with the
// assembly kernel when available and plain Go otherwise.
func depthwise(pk *Packed, x []uint8, r *qgemm.Requant, y []uint8) {
	p := &pk.p
	q := p.Norm()
	oh, ow := q.OutH(), q.OutW()
	if oh == 0 || ow == 0 {
		return
	}
	useAsm := dwPlane != nil && dwAsmOK(p)
	ph, pwid := q.H+2*q.PadH, q.W+2*q.PadW
	za := p.InZeroPoint
	taps := q.KH * q.KW
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
	// The assembly kernel needs the packed quadruples (kernels up to 8x8).
	useAsm = useAsm && pk.dwq != nil
	// Runs of planes are handed out one at a time (about four per
	// worker), so a worker that wakes late takes fewer; tiny convolutions
	// stay on the calling goroutine.
	planes := q.N * q.C
	t := min(parallel.NumThreads(), planes)
	if planes*oh*ow*taps < 1<<20 {
		t = 1
	}
	per := max(1, planes/(4*t))
	parallel.Tasks(t, (planes+per-1)/per, func(task int) {
		bp := planePool.Get().(*[]uint8)
		defer planePool.Put(bp)
		need := ph*pwid + 64
		if cap(*bp) < need {
			*bp = make([]uint8, need)
		}
		plane := (*bp)[:need]
		// The padding (borders and slack) holds za; each plane then
		// only overwrites the interior.
		fill(plane, uint8(za))
		for it := task * per; it < min(planes, (task+1)*per); it++ {
			dwOnePlane(pk, &q, oh, ow, x, r, y, plane, it, &idx, useAsm)
		}
	})
}

// dwOnePlane computes plane it (image it/C, channel it%C, oh x ow
// outputs, q the normalized geometry) of depthwise into y, through plane,
// a padded buffer whose padding already holds the input zero point; idx
// is the assembly kernel's byte gather, used when useAsm.
func dwOnePlane(pk *Packed, q *conv.Conv2DParams, oh, ow int, x []uint8, r *qgemm.Requant, y, plane []uint8, it int, idx *[128]byte, useAsm bool) {
	p, w, sumW := &pk.p, pk.w, pk.sumW
	pwid := q.W + 2*q.PadW
	za := p.InZeroPoint
	taps := q.KH * q.KW
	groups := (q.KW + 3) / 4
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
	for i := 0; i < q.H; i++ {
		copy(plane[(i+q.PadH)*pwid+q.PadW:], src[i*q.W:(i+1)*q.W])
	}
	if useAsm {
		wq := pk.dwq[c*q.KH*groups : (c+1)*q.KH*groups]
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
}
