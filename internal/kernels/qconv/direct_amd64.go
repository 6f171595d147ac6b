//go:build !purego

package qconv

import (
	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/kernels/qgemm"
	"github.com/quanta-go/quanta/internal/parallel"
)

//go:generate go run asm_gen.go

// directPack is the implicit-GEMM form of a convolution's weights: panels
// of panel (32, or 16 when there are at most 16 output channels) output
// channels, each [KH*KW taps][cq groups][panel channels][4].
type directPack struct {
	cp, cq, taps, np int
	panel            int
	w                []int8
	offs             []int // per tap: byte offset in the padded NHWC input
	pw               int   // padded width
}

// kernels returns the kernel table of d's panel width.
func (d *directPack) kernels() *[15]func(taps int, offs *int, cq int, a *uint8, rs int, b *int8, init *int32, c *int32, np, ldc int) {
	if d.panel == 16 {
		return &convKernels16
	}
	return &convKernels
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
	panel := 32
	if q.OutC <= 16 {
		// A stem's few output channels: half the multiply-adds and
		// requantized lanes of a 32-channel panel.
		panel = 16
	}
	d := &directPack{cp: cp, cq: cp / 4, taps: q.KH * q.KW, np: (q.OutC + panel - 1) / panel, panel: panel, pw: q.W + 2*q.PadW}
	d.w = make([]int8, d.np*d.taps*d.cq*4*panel)
	for oc := 0; oc < q.OutC; oc++ {
		pn, j := oc/panel, oc%panel
		for c := 0; c < q.C; c++ {
			for kh := 0; kh < q.KH; kh++ {
				for kw := 0; kw < q.KW; kw++ {
					t := kh*q.KW + kw
					d.w[((pn*d.taps+t)*d.cq+c/4)*4*panel+j*4+c%4] = w[((oc*q.C+c)*q.KH+kh)*q.KW+kw]
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
// in place (no im2col). Per image, workers convert the input to padded
// NHWC (pieces of rows), compute and requantize output rows (NHWC), and
// transpose blocks of 16 output channels to NCHW. Pieces are handed out one
// at a time and each is a fixed set of outputs, so results never depend on
// the thread count.
func convDirect(pk *Packed, x []uint8, r *qgemm.Requant, y []uint8) {
	p := &pk.p
	q := &p.Conv2DParams
	d := pk.direct
	oh, ow := q.OutH(), q.OutW()
	if q.N == 1 && q.H == 1 && q.W == 1 && oh == 1 && ow == 1 && q.KH == 1 && q.KW == 1 {
		convOnePixel(pk, x, r, y)
		return
	}
	ph := q.H + 2*q.PadH
	za := uint8(p.InZeroPoint)
	width := d.np * d.panel
	kernels := d.kernels()
	initB := getI32(width)
	defer i32Scratch.Put(initB)
	// The multipliers of a whole tile (14 pixels of width channels, those
	// past OutC 0), so that a tile is requantized in one call.
	multB := getF32(14 * width)
	defer f32Scratch.Put(multB)
	init, mult := *initB, *multB
	clear(init)
	clear(mult[:width])
	pk.epilogue(r, init, mult)
	for rr := 1; rr < 14; rr++ {
		copy(mult[rr*width:(rr+1)*width], mult[:width])
	}
	m := oh * ow
	padB := getBuf(ph*d.pw*d.cp + 64)
	defer scratch.Put(padB)
	outB := getBuf(m * width)
	defer scratch.Put(outB)
	pad, out := *padB, *outB
	nu := padUnits(q, d.cp)
	t := parallel.NumThreads()
	// Small convolutions (under ~2M multiply-adds, a few microseconds)
	// run on the calling goroutine: sharing them costs more than it saves.
	if m*q.OutC*q.C*q.KH*q.KW < 1<<21 {
		t = 1
	}
	// Pieces of the padded input, about four per worker.
	padPer := max(1, nu/(4*t))
	padTasks := (nu + padPer - 1) / padPer
	// Output pixels per piece: 64 (whole cache lines of every NCHW plane
	// a piece transposes into, so that two workers do not write the same
	// lines), fewer only on one thread, when that leaves under 16 pieces.
	ppt := 64
	for t == 1 && ppt > 16 && m/ppt < 16 {
		ppt /= 2
	}
	pixTasks := (m + ppt - 1) / ppt
	for n := 0; n < q.N; n++ {
		xn := x[n*q.C*q.H*q.W : (n+1)*q.C*q.H*q.W]
		yn := y[n*q.OutC*m : (n+1)*q.OutC*m]
		// The padded input first (every piece, since a tile reads several
		// rows), then pieces of output pixels, each computed, requantized
		// (NHWC) and transposed to NCHW by one worker.
		parallel.Tasks(t, padTasks, func(u int) {
			toPaddedNHWC(q, xn, d.cp, d.pw, za, pad, u*padPer, min(nu, (u+1)*padPer))
		})
		parallel.Tasks(t, pixTasks, func(pt int) {
			cb := getI32(14 * width)
			defer i32Scratch.Put(cb)
			tile := *cb
			p0, p1 := pt*ppt, min(m, (pt+1)*ppt)
			for p := p0; p < p1; {
				// The piece's part of output row i: columns [j, j+seg),
				// in balanced tiles of up to 14 pixels.
				i, j := p/ow, p%ow
				seg := min(ow-j, p1-p)
				nt := (seg + 13) / 14
				for tb := 0; tb < nt; tb++ {
					base, extra := seg/nt, seg%nt
					j0 := j + tb*base + min(tb, extra)
					rows := base
					if tb < extra {
						rows++
					}
					a := pad[(i*q.StrideH*d.pw+j0*q.StrideW)*d.cp:]
					kernels[rows](d.taps, &d.offs[0], d.cq, &a[0], q.StrideW*d.cp, &d.w[0], &init[0], &tile[0], d.np, width)
					pix := i*ow + j0
					qgemm.RequantizeRow(tile[:rows*width], mult[:rows*width], r.ZeroPoint, r.Min, r.Max, out[pix*width:(pix+rows)*width])
				}
				p += seg
			}
			nhwcToNCHW(out, width, m, q.OutC, yn, p0, p1)
		})
	}
}

// convOnePixel is convDirect for a 1x1 convolution of a single pixel (a
// squeeze-excite projection after global pooling): the pixel's channels
// are already its NHWC row, and its NCHW output is the kernel's row of
// output channels, so one kernel call and one requantization on the
// calling goroutine replace the padding, tiling and transposing passes.
func convOnePixel(pk *Packed, x []uint8, r *qgemm.Requant, y []uint8) {
	q := &pk.p.Conv2DParams
	d := pk.direct
	width := d.np * d.panel
	kernels := d.kernels()
	initB, accB := getI32(width), getI32(width)
	defer i32Scratch.Put(initB)
	defer i32Scratch.Put(accB)
	multB := getF32(width)
	defer f32Scratch.Put(multB)
	init, acc, mult := *initB, *accB, *multB
	clear(init)
	clear(mult)
	pk.epilogue(r, init, mult)
	// The channels padded to whole quadruples (their weights are 0) and
	// the output row padded to whole panels.
	inB, outB := getBuf(d.cp), getBuf(width)
	defer scratch.Put(inB)
	defer scratch.Put(outB)
	in, out := *inB, *outB
	copy(in, x[:q.C])
	clear(in[q.C:])
	kernels[1](d.taps, &d.offs[0], d.cq, &in[0], d.cp, &d.w[0], &init[0], &acc[0], d.np, width)
	qgemm.RequantizeRow(acc, mult, r.ZeroPoint, r.Min, r.Max, out)
	copy(y[:q.OutC], out)
}
