//go:build !purego

package qconv

import (
	"runtime"
	"sync/atomic"

	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/kernels/qgemm"
	"github.com/quanta-go/quanta/internal/parallel"
)

//go:generate go run asm_gen.go

// directPack is the implicit-GEMM form of a convolution's weights: panels
// of 32 output channels, each [KH*KW taps][cq groups][32 channels][4].
type directPack struct {
	cp, cq, taps, np int
	w                []int8
	offs             []int // per tap: byte offset in the padded NHWC input
	pw               int   // padded width
}

// packDirect builds the implicit-GEMM weights when the kernel applies:
// AVX-512 VNNI, groups == 1 and symmetric weights (zero points 0).
func packDirect(p *Params, w []int8) *directPack {
	q := p.Conv2DParams
	if cpu.Hardware < cpu.AVX512VNNI || q.Groups != 1 {
		return nil
	}
	for _, z := range p.WeightZeroPoints {
		if z != 0 {
			return nil
		}
	}
	cp := (q.C + 3) &^ 3
	d := &directPack{cp: cp, cq: cp / 4, taps: q.KH * q.KW, np: (q.OutC + 31) / 32, pw: q.W + 2*q.PadW}
	d.w = make([]int8, d.np*d.taps*d.cq*128)
	for oc := 0; oc < q.OutC; oc++ {
		pn, j := oc/32, oc%32
		for c := 0; c < q.C; c++ {
			for kh := 0; kh < q.KH; kh++ {
				for kw := 0; kw < q.KW; kw++ {
					t := kh*q.KW + kw
					d.w[((pn*d.taps+t)*d.cq+c/4)*128+j*4+c%4] = w[((oc*q.C+c)*q.KH+kh)*q.KW+kw]
				}
			}
		}
	}
	for kh := 0; kh < q.KH; kh++ {
		for kw := 0; kw < q.KW; kw++ {
			d.offs = append(d.offs, (kh*q.DilH*d.pw+kw*q.DilW)*cp)
		}
	}
	return d
}

// convDirect runs the implicit GEMM: pixels of an output row in tiles of up
// to 14, all output channels per kernel call, reading the padded NHWC input
// in place (no im2col). Per image, one parallel region first converts the
// input to padded NHWC (pieces of rows), waits for every piece, then
// computes groups of output rows and transposes each group's outputs to
// NCHW. Workers take pieces one at a time; every piece is a fixed set of
// outputs, so results never depend on the thread count.
func convDirect(pk *Packed, x []uint8, r *qgemm.Requant, y []uint8) {
	p := &pk.p
	q := p.Conv2DParams
	d := pk.direct
	oh, ow := q.OutH(), q.OutW()
	ph := q.H + 2*q.PadH
	za := uint8(p.InZeroPoint)
	width := d.np * 32
	init := make([]int32, width)
	mult := make([]float32, width)
	for oc := 0; oc < q.OutC; oc++ {
		init[oc] = -int32(za) * pk.sumW[oc]
		if r.Bias != nil {
			init[oc] += r.Bias[oc]
		}
		mult[oc] = p.mult(r, oc)
	}
	nt := (ow + 13) / 14
	m := oh * ow
	padB := getBuf(ph*d.pw*d.cp + 64)
	defer scratch.Put(padB)
	outB := getBuf(m * q.OutC)
	defer scratch.Put(outB)
	pad, out := *padB, *outB
	// Output rows per task: enough pixels for whole 16-pixel transposes.
	rpt := min(oh, (16+ow-1)/ow)
	tasks := (oh + rpt - 1) / rpt
	nu := padUnits(&q, d.cp)
	t := parallel.NumThreads()
	// Small convolutions (under ~8M multiply-adds) run on the calling
	// goroutine: waking another costs more than it saves.
	if m*q.OutC*q.C*q.KH*q.KW < 1<<23 {
		t = 1
	}
	t = min(t, tasks)
	for n := 0; n < q.N; n++ {
		xn := x[n*q.C*q.H*q.W : (n+1)*q.C*q.H*q.W]
		yn := y[n*q.OutC*m : (n+1)*q.OutC*m]
		var nextPad, donePad, next atomic.Int64
		parallel.ForThreads(t, t, 1, func(_, _ int) {
			for {
				u := int(nextPad.Add(1)) - 1
				if u >= nu {
					break
				}
				toPaddedNHWC(&q, xn, d.cp, d.pw, za, pad, u, u+1)
				donePad.Add(1)
			}
			// Pieces still being converted are in the hands of running
			// workers: wait for them.
			for donePad.Load() < int64(nu) {
				runtime.Gosched()
			}
			cb := getI32(14 * width)
			defer i32Scratch.Put(cb)
			tile := *cb
			for {
				tk := int(next.Add(1)) - 1
				if tk >= tasks {
					return
				}
				i0, i1 := tk*rpt, min(oh, (tk+1)*rpt)
				for i := i0; i < i1; i++ {
					for tb := 0; tb < nt; tb++ {
						base, extra := ow/nt, ow%nt
						j0 := tb*base + min(tb, extra)
						rows := base
						if tb < extra {
							rows++
						}
						a := pad[(i*q.StrideH*d.pw+j0*q.StrideW)*d.cp:]
						convKernels[rows](d.taps, &d.offs[0], d.cq, &a[0], q.StrideW*d.cp, &d.w[0], &init[0], &tile[0], d.np, width)
						for rr := 0; rr < rows; rr++ {
							pix := i*ow + j0 + rr
							qgemm.RequantizeRow(tile[rr*width:rr*width+q.OutC], mult, r.ZeroPoint, r.Min, r.Max, out[pix*q.OutC:(pix+1)*q.OutC])
						}
					}
				}
				nhwcToNCHW(out, m, q.OutC, yn, i0*ow, i1*ow)
			}
		})
	}
}
