package qconv

import (
	"fmt"
	"sync"

	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/kernels/conv"
	"github.com/quanta-go/quanta/internal/kernels/qgemm"
)

// Packed holds a convolution's weights prepared once for the kernels.
type Packed struct {
	p    Params
	dw   bool
	w    []int8  // [OutC][C/Groups][KH][KW], as given
	sumW []int32 // per output channel
	// dwq holds a depthwise convolution's taps as the assembly kernel's
	// quadruples: per channel and kernel row, (KW+3)/4 packed int32s.
	dwq []int32
	// gemm holds, per group, the weights reordered to [OutC/Groups][KH][KW][C/Groups]
	// for an NHWC im2col, packed for qgemm.
	gemm []*qgemm.Packed
	// direct is the implicit-GEMM layout, when that kernel applies.
	direct *directPack
	// pw is the NCHW pointwise layout, when that kernel applies.
	pw *pwPack
}

// Params returns the convolution's parameters.
func (pk *Packed) Params() Params { return pk.p }

// Pack validates p and prepares the weights w ([OutC][C/Groups][KH][KW]).
func Pack(p Params, w []int8) (*Packed, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	p.Conv2DParams = p.Norm()
	p.WeightZeroPoints = append([]int32(nil), p.WeightZeroPoints...)
	q := p.Conv2DParams
	if len(w) != q.WeightLen() {
		return nil, fmt.Errorf("qconv: %d weights, want %d for %dx%dx%dx%d", len(w), q.WeightLen(), q.OutC, q.C/q.Groups, q.KH, q.KW)
	}
	pk := &Packed{p: p, dw: isDepthwise(&p), w: append([]int8(nil), w...), sumW: make([]int32, q.OutC)}
	per := q.WeightLen() / q.OutC
	for oc := 0; oc < q.OutC; oc++ {
		var s int32
		for _, v := range w[oc*per : (oc+1)*per] {
			s += int32(v)
		}
		pk.sumW[oc] = s
	}
	if pk.dw {
		pk.dwq = dwQuads(&q, w)
		return pk, nil
	}
	pk.direct = packDirect(&p, w)
	pk.pw = packPointwise(&p, w)
	cpg, opg := q.C/q.Groups, q.OutC/q.Groups
	k := q.KH * q.KW * cpg
	for g := 0; g < q.Groups; g++ {
		re := make([]int8, opg*k)
		for o := 0; o < opg; o++ {
			oc := g*opg + o
			for ic := 0; ic < cpg; ic++ {
				for kh := 0; kh < q.KH; kh++ {
					for kw := 0; kw < q.KW; kw++ {
						re[o*k+(kh*q.KW+kw)*cpg+ic] = w[((oc*cpg+ic)*q.KH+kh)*q.KW+kw]
					}
				}
			}
		}
		zps := p.WeightZeroPoints
		if len(zps) > 1 {
			zps = zps[g*opg : (g+1)*opg]
		}
		pk.gemm = append(pk.gemm, qgemm.Pack(opg, k, re, k, zps))
	}
	return pk, nil
}

// epilogue writes, per output channel of a kernel whose weight zero
// points are 0, the accumulator's start (bias less za times the channel's
// weight sum) into init and the requantization multiplier into mult.
func (pk *Packed) epilogue(r *qgemm.Requant, init []int32, mult []float32) {
	za := pk.p.InZeroPoint
	for oc := range pk.p.OutC {
		init[oc] = -za * pk.sumW[oc]
		if r.Bias != nil {
			init[oc] += r.Bias[oc]
		}
		mult[oc] = pk.p.mult(r, oc)
	}
}

var scratch = sync.Pool{New: func() any { return new([]uint8) }}

func getBuf(n int) *[]uint8 {
	b := scratch.Get().(*[]uint8)
	if cap(*b) < n {
		*b = make([]uint8, n)
	}
	*b = (*b)[:n]
	return b
}

// Conv2D computes the quantized convolution of x (NCHW uint8) into y (NCHW
// uint8) with the Requant epilogue r, whose Bias and Multiplier hold one
// value per output channel (Multiplier may hold one for all). It equals
// Reference bit for bit.
func Conv2D(pk *Packed, x []uint8, r *qgemm.Requant, y []uint8) {
	p := &pk.p
	q := p.Conv2DParams
	if len(x) < q.InputLen() || len(y) < q.OutputLen() {
		panic(fmt.Sprintf("qconv: Conv2D: input %d or output %d shorter than %d, %d", len(x), len(y), q.InputLen(), q.OutputLen()))
	}
	if pk.dw {
		depthwise(pk, x, r, y)
		return
	}
	if usePointwise(pk) {
		convPointwise(pk, x, r, y)
		return
	}
	if pk.direct != nil && cpu.Max >= cpu.AVX512VNNI {
		convDirect(pk, x, r, y)
		return
	}
	oh, ow := q.OutH(), q.OutW()
	cpg, opg := q.C/q.Groups, q.OutC/q.Groups
	k := q.KH * q.KW * cpg
	m := oh * ow
	za := uint8(p.InZeroPoint)
	pointwise := q.KH == 1 && q.KW == 1 && q.StrideH == 1 && q.StrideW == 1 && q.PadH == 0 && q.PadW == 0
	nhwcB := getBuf(q.H * q.W * cpg)
	defer scratch.Put(nhwcB)
	colB := getBuf(m * k)
	defer scratch.Put(colB)
	outB := getBuf(m * opg)
	defer scratch.Put(outB)
	nhwc, col, out := *nhwcB, *colB, *outB
	for n := 0; n < q.N; n++ {
		for g := 0; g < q.Groups; g++ {
			// Input channels of this group to NHWC.
			groupNHWC(nhwc, x[(n*q.C+g*cpg)*q.H*q.W:], q.H, q.W, cpg)
			a := nhwc
			if !pointwise {
				im2colNHWC(&q, nhwc, cpg, za, col)
				a = col
			}
			rg := *r
			if r.Bias != nil {
				rg.Bias = r.Bias[g*opg : (g+1)*opg]
			}
			if len(r.Multiplier) > 1 {
				rg.Multiplier = r.Multiplier[g*opg : (g+1)*opg]
			}
			qgemm.GemmU8(m, a, k, p.InZeroPoint, pk.gemm[g], &rg, out, opg)
			// [pixel][oc] to NCHW.
			for o := 0; o < opg; o++ {
				dst := y[(n*q.OutC+g*opg+o)*m : (n*q.OutC+g*opg+o+1)*m]
				for i := range dst {
					dst[i] = out[i*opg+o]
				}
			}
		}
	}
}

// im2colNHWC writes one row per output pixel: for each (kh, kw) the cpg
// channels of the input pixel it covers, or za where it falls in padding.
func im2colNHWC(q *conv.Conv2DParams, src []uint8, cpg int, za uint8, col []uint8) {
	oh, ow := q.OutH(), q.OutW()
	k := q.KH * q.KW * cpg
	for i := 0; i < oh; i++ {
		for j := 0; j < ow; j++ {
			row := col[(i*ow+j)*k : (i*ow+j+1)*k]
			for kh := 0; kh < q.KH; kh++ {
				ih := i*q.StrideH - q.PadH + kh*q.DilH
				for kw := 0; kw < q.KW; kw++ {
					iw := j*q.StrideW - q.PadW + kw*q.DilW
					seg := row[(kh*q.KW+kw)*cpg : (kh*q.KW+kw+1)*cpg]
					if ih < 0 || ih >= q.H || iw < 0 || iw >= q.W {
						for t := range seg {
							seg[t] = za
						}
						continue
					}
					copy(seg, src[(ih*q.W+iw)*cpg:(ih*q.W+iw+1)*cpg])
				}
			}
		}
	}
}
