package qconv

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/quanta-go/quanta/internal/kernels/conv"
	"github.com/quanta-go/quanta/internal/kernels/qgemm"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/internal/parallel"
)

// TransposeParams describes a quantized transposed convolution
// (conv_transpose2d): uint8 activations x[N, C, H, W] with zero point za,
// int8 weights w[C, OutC/Groups, KH, KW] (PyTorch's layout) with one zero
// point per output channel or one for all, int32 bias with scale
// s_a*s_w[oc], and requantization of
//
//	acc[n][oc][oh][ow] = bias[oc] + sum over (ic in oc's group, kh, kw, ih, iw)
//	                     with oh = ih*SH - PH + kh*DH and ow = iw*SW - PW + kw*DW of
//	                     (x[n][ic][ih][iw] - za) * (w[ic][oc%opg][kh][kw] - zw[oc])
//	y = saturate(roundHalfEven(float32(acc) * M[oc]) + zy)  within [Min, Max]
//
// (the qgemm Requant epilogue). OutPadH/OutPadW only add output rows and
// columns that no input reaches (they hold the requantized bias). Outputs
// are bytes: uint8, or int8 in two's complement when the Requant's Min is
// negative. Per-channel weights (one scale and zero point per output
// channel) are supported, which PyTorch's engines do not offer for
// transposed convolutions.
type TransposeParams struct {
	conv.ConvTranspose2DParams
	// InZeroPoint is za, the input zero point (0..255).
	InZeroPoint int32
	// WeightZeroPoints holds one zero point per output channel, or one.
	WeightZeroPoints []int32
}

func (p *TransposeParams) zw(oc int) int32 {
	if len(p.WeightZeroPoints) == 1 {
		return p.WeightZeroPoints[0]
	}
	return p.WeightZeroPoints[oc]
}

// Validate reports whether p describes a transposed convolution these
// kernels compute.
func (p *TransposeParams) Validate() error {
	if err := p.ConvTranspose2DParams.Validate(); err != nil {
		return err
	}
	if n := len(p.WeightZeroPoints); n != 1 && n != p.OutC {
		return fmt.Errorf("qconv: %d weight zero points for %d output channels", n, p.OutC)
	}
	if p.InZeroPoint < 0 || p.InZeroPoint > 255 {
		return fmt.Errorf("qconv: input zero point %d outside 0..255", p.InZeroPoint)
	}
	return nil
}

func checkTransposeRequant(q *conv.ConvTranspose2DParams, r *qgemm.Requant) {
	if r.Bias != nil && len(r.Bias) < q.OutC {
		panic(fmt.Sprintf("qconv: ConvTranspose2D: %d biases for %d output channels", len(r.Bias), q.OutC))
	}
	if n := len(r.Multiplier); n != 1 && n < q.OutC {
		panic(fmt.Sprintf("qconv: ConvTranspose2D: %d multipliers for %d output channels", n, q.OutC))
	}
	if r.Min < -128 || r.Max > 255 || r.Min > r.Max || (r.Min < 0 && r.Max > 127) {
		panic(fmt.Sprintf("qconv: ConvTranspose2D: output range %d..%d is neither uint8 nor int8", r.Min, r.Max))
	}
}

func requantMult(r *qgemm.Requant, oc int) float32 {
	if len(r.Multiplier) == 1 {
		return r.Multiplier[0]
	}
	return r.Multiplier[oc]
}

// ConvTranspose2DReference is the specification: for every output, a
// direct loop over the input pixels and taps that reach it, with int32
// accumulation and the Requant epilogue.
func ConvTranspose2DReference(p *TransposeParams, x []uint8, w []int8, r *qgemm.Requant, y []uint8) {
	q := p.Norm()
	checkTransposeRequant(&q, r)
	oh, ow := q.OutH(), q.OutW()
	cpg, opg := q.C/q.Groups, q.OutC/q.Groups
	za := p.InZeroPoint
	for n := 0; n < q.N; n++ {
		for oc := 0; oc < q.OutC; oc++ {
			g, o := oc/opg, oc%opg
			zw := p.zw(oc)
			for i := 0; i < oh; i++ {
				for j := 0; j < ow; j++ {
					var acc int32
					if r.Bias != nil {
						acc = r.Bias[oc]
					}
					for icg := 0; icg < cpg; icg++ {
						ic := g*cpg + icg
						for kh := 0; kh < q.KH; kh++ {
							t := i + q.PadH - kh*q.DilH
							if t < 0 || t%q.StrideH != 0 || t/q.StrideH >= q.H {
								continue
							}
							ih := t / q.StrideH
							for kw := 0; kw < q.KW; kw++ {
								u := j + q.PadW - kw*q.DilW
								if u < 0 || u%q.StrideW != 0 || u/q.StrideW >= q.W {
									continue
								}
								iw := u / q.StrideW
								a := int32(x[((n*q.C+ic)*q.H+ih)*q.W+iw])
								wv := int32(w[((ic*opg+o)*q.KH+kh)*q.KW+kw])
								acc += (a - za) * (wv - zw)
							}
						}
					}
					y[((n*q.OutC+oc)*oh+i)*ow+j] = byte(qmath.Requantize(acc, requantMult(r, oc), r.ZeroPoint, r.Min, r.Max))
				}
			}
		}
	}
}

// TransposePacked holds a transposed convolution's weights prepared once:
// per group, the GEMM operand W_g[(o, kh, kw)][ic] packed for qgemm, so
// that one int32 GEMM per image and group gives every tap's contribution
// of every input pixel (a column buffer), which col2im then adds into the
// output planes.
type TransposePacked struct {
	p    TransposeParams
	w    []int8
	gemm []*qgemm.Packed
	// taps says the taps never overlap (kernel = stride, no dilation,
	// padding or output padding): every output is then one tap of one
	// input pixel, so the GEMM can requantize directly
	// (convTransposeTaps).
	taps bool
	// tapW and tapZ hold, when taps, per group the weights and zero
	// points of the 1x1 convolution of the group's input channels into its
	// (o, kh, kw) planes; tapConvs packs them per input size.
	tapW  [][]int8
	tapZ  [][]int32
	cache *tapCache
}

// tapCache holds the packed tap convolutions by input height and width,
// shared by the copies ForInput makes.
type tapCache struct {
	mu sync.Mutex
	m  map[[2]int][]*Packed
}

// tapConvs returns the per-group 1x1 convolutions for an h x w input.
func (pk *TransposePacked) tapConvs(h, w int) ([]*Packed, error) {
	c := pk.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if ps, ok := c.m[[2]int{h, w}]; ok {
		return ps, nil
	}
	cpg := pk.p.C / pk.p.Groups
	var ps []*Packed
	for g := range pk.tapW {
		cp := Params{Conv2DParams: conv.Conv2DParams{N: 1, C: cpg, H: h, W: w, OutC: len(pk.tapZ[g]), KH: 1, KW: 1}, WeightZeroPoints: pk.tapZ[g]}
		tc, err := Pack(cp, pk.tapW[g])
		if err != nil {
			return nil, err
		}
		ps = append(ps, tc)
	}
	if len(c.m) < 16 {
		c.m[[2]int{h, w}] = ps
	}
	return ps, nil
}

// Params returns the transposed convolution's parameters.
func (pk *TransposePacked) Params() TransposeParams { return pk.p }

// PackTranspose validates p and prepares the weights w ([C][OutC/Groups][KH][KW]).
func PackTranspose(p TransposeParams, w []int8) (*TransposePacked, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	p.ConvTranspose2DParams = p.Norm()
	p.WeightZeroPoints = append([]int32(nil), p.WeightZeroPoints...)
	q := p.ConvTranspose2DParams
	if len(w) != q.WeightLen() {
		return nil, fmt.Errorf("qconv: %d weights, want %d for %dx%dx%dx%d", len(w), q.WeightLen(), q.C, q.OutC/q.Groups, q.KH, q.KW)
	}
	pk := &TransposePacked{p: p, w: append([]int8(nil), w...)}
	cpg, opg := q.C/q.Groups, q.OutC/q.Groups
	kk := q.KH * q.KW
	rows := opg * kk
	for g := 0; g < q.Groups; g++ {
		re := make([]int8, rows*cpg)
		zps := make([]int32, rows)
		for o := 0; o < opg; o++ {
			for t := 0; t < kk; t++ {
				j := o*kk + t
				zps[j] = p.zw(g*opg + o)
				for icg := 0; icg < cpg; icg++ {
					re[j*cpg+icg] = w[((g*cpg+icg)*opg+o)*kk+t]
				}
			}
		}
		pk.gemm = append(pk.gemm, qgemm.Pack(rows, cpg, re, cpg, zps))
		pk.tapW, pk.tapZ = append(pk.tapW, re), append(pk.tapZ, zps)
	}
	pk.taps = nonOverlapping(&q)
	pk.cache = &tapCache{m: map[[2]int][]*Packed{}}
	return pk, nil
}

// nonOverlapping reports whether every output of q receives exactly one
// tap of one input pixel: kernel = stride, no dilation, padding or
// output padding.
func nonOverlapping(q *conv.ConvTranspose2DParams) bool {
	return q.KH == q.StrideH && q.KW == q.StrideW && q.DilH == 1 && q.DilW == 1 &&
		q.PadH == 0 && q.PadW == 0 && q.OutPadH == 0 && q.OutPadW == 0
}

// convTransposeTaps computes a non-overlapping transposed convolution with
// uint8 outputs as one requantizing 1x1 convolution per group (Conv2D of
// the group's input channels into (o, kh, kw) planes, each with its output
// channel's bias and multiplier), whose planes are then interleaved onto
// the taps' sub-grids: every output is bias + one tap's sum, as in the
// reference.
func convTransposeTaps(pk *TransposePacked, tcs []*Packed, x []uint8, r *qgemm.Requant, y []uint8) {
	p := &pk.p
	q := p.ConvTranspose2DParams
	oh, ow := q.OutH(), q.OutW()
	hw, ohw := q.H*q.W, oh*ow
	cpg, opg := q.C/q.Groups, q.OutC/q.Groups
	kk := q.KH * q.KW
	cols := opg * kk
	outB := getBuf(cols * hw)
	defer scratch.Put(outB)
	out := *outB
	// The requantization of column (o, t) is channel o's.
	rg := qgemm.Requant{ZeroPoint: r.ZeroPoint, Min: r.Min, Max: r.Max, Multiplier: r.Multiplier}
	if r.Bias != nil {
		rg.Bias = make([]int32, cols)
	}
	if len(r.Multiplier) > 1 {
		rg.Multiplier = make([]float32, cols)
	}
	for g := 0; g < q.Groups; g++ {
		for j := range cols {
			oc := g*opg + j/kk
			if r.Bias != nil {
				rg.Bias[j] = r.Bias[oc]
			}
			if len(r.Multiplier) > 1 {
				rg.Multiplier[j] = r.Multiplier[oc]
			}
		}
		tc := *tcs[g]
		tc.p.InZeroPoint = p.InZeroPoint
		for n := 0; n < q.N; n++ {
			Conv2D(&tc, x[(n*q.C+g*cpg)*hw:], &rg, out)
			parallel.For(opg*q.H, max(1, (1<<16)/max(1, q.W*kk)), func(s, e int) {
				for it := s; it < e; it++ {
					o, ih := it/q.H, it%q.H
					plane := y[(n*q.OutC+g*opg+o)*ohw : (n*q.OutC+g*opg+o+1)*ohw]
					for kh := 0; kh < q.KH; kh++ {
						row := plane[(ih*q.StrideH+kh)*ow:][:q.W*q.StrideW]
						src := out[(o*kk+kh*q.KW)*hw+ih*q.W:]
						switch q.KW {
						case 1:
							copy(row, src[:q.W])
						case 2:
							interleave2(row, src[:q.W], src[hw:hw+q.W])
						default:
							for kw := 0; kw < q.KW; kw++ {
								s := src[kw*hw : kw*hw+q.W]
								for iw, v := range s {
									row[iw*q.KW+kw] = v
								}
							}
						}
					}
				}
			})
		}
	}
}

// interleave2 writes a[i], b[i] to dst[2i], dst[2i+1] for i < len(a)
// (len(b) = len(a), len(dst) >= 2 len(a)), eight pairs per step.
func interleave2(dst, a, b []uint8) {
	i := 0
	for ; i+8 <= len(a); i += 8 {
		u, v := binary.LittleEndian.Uint64(a[i:]), binary.LittleEndian.Uint64(b[i:])
		binary.LittleEndian.PutUint64(dst[2*i:], spread4(uint32(u))|spread4(uint32(v))<<8)
		binary.LittleEndian.PutUint64(dst[2*i+8:], spread4(uint32(u>>32))|spread4(uint32(v>>32))<<8)
	}
	for ; i < len(a); i++ {
		dst[2*i], dst[2*i+1] = a[i], b[i]
	}
}

// spread4 moves byte k of x to byte 2k.
func spread4(x uint32) uint64 {
	v := uint64(x)
	v = (v | v<<16) & 0x0000ffff0000ffff
	return (v | v<<8) & 0x00ff00ff00ff00ff
}

// ForInput returns pk for another input batch size, height, width and
// zero point, sharing the packed weights (which depend on none of them).
func (pk *TransposePacked) ForInput(n, h, w int, inZeroPoint int32) (*TransposePacked, error) {
	c := *pk
	c.p.N, c.p.H, c.p.W, c.p.InZeroPoint = n, h, w, inZeroPoint
	if err := c.p.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// tapRange returns, for each input index i < in, the taps k in
// [lo[i], hi[i]) whose output index i*s - pad + k*d lies in [0, out).
func tapRange(in, out, k, s, pad, d int) (lo, hi []int) {
	lo, hi = make([]int, in), make([]int, in)
	for i := 0; i < in; i++ {
		base := i*s - pad
		a, b := 0, k
		for a < k && base+a*d < 0 {
			a++
		}
		for b > a && base+(b-1)*d >= out {
			b--
		}
		lo[i], hi[i] = a, b
	}
	return lo, hi
}

// ConvTranspose2D computes ConvTranspose2DReference: per image and group,
// the input channels to NHWC; then, for blocks of input rows, one int32
// GEMM (qgemm.GemmS32) into a column buffer col[pixel][(o, kh, kw)] and,
// per output channel in parallel, the col2im accumulation of every
// pixel's taps onto the bias-initialised int32 output planes; finally the
// planes are requantized. Integer sums are exact in any order, so the
// result equals the reference bit for bit for any thread count.
func ConvTranspose2D(pk *TransposePacked, x []uint8, r *qgemm.Requant, y []uint8) {
	p := &pk.p
	q := p.ConvTranspose2DParams
	checkTransposeRequant(&q, r)
	if len(x) < q.InputLen() || len(y) < q.OutputLen() {
		panic(fmt.Sprintf("qconv: ConvTranspose2D: input %d or output %d shorter than %d, %d", len(x), len(y), q.InputLen(), q.OutputLen()))
	}
	if pk.taps && r.Min >= 0 {
		if tcs, err := pk.tapConvs(q.H, q.W); err == nil {
			convTransposeTaps(pk, tcs, x, r, y)
			return
		}
	}
	oh, ow := q.OutH(), q.OutW()
	hw, ohw := q.H*q.W, oh*ow
	cpg, opg := q.C/q.Groups, q.OutC/q.Groups
	kk := q.KH * q.KW
	rows := opg * kk
	khLo, khHi := tapRange(q.H, oh, q.KH, q.StrideH, q.PadH, q.DilH)
	kwLo, kwHi := tapRange(q.W, ow, q.KW, q.StrideW, q.PadW, q.DilW)
	// Input rows per block: a column buffer of about 1 MiB.
	block := max(1, min(q.H, (1<<18)/max(1, q.W*rows)))
	nhwcB := getBuf(hw * cpg)
	defer scratch.Put(nhwcB)
	colB := getI32(block * q.W * rows)
	defer i32Scratch.Put(colB)
	accB := getI32(opg * ohw)
	defer i32Scratch.Put(accB)
	nhwc, col, acc := *nhwcB, *colB, *accB
	grain := max(1, (1<<16)/max(1, block*q.W*kk))
	for n := 0; n < q.N; n++ {
		for g := 0; g < q.Groups; g++ {
			groupNHWC(nhwc, x[(n*q.C+g*cpg)*hw:], q.H, q.W, cpg)
			parallel.For(opg, max(1, (1<<16)/max(1, ohw)), func(s, e int) {
				for o := s; o < e; o++ {
					var b int32
					if r.Bias != nil {
						b = r.Bias[g*opg+o]
					}
					plane := acc[o*ohw : (o+1)*ohw]
					for i := range plane {
						plane[i] = b
					}
				}
			})
			for h0 := 0; h0 < q.H; h0 += block {
				h1 := min(h0+block, q.H)
				qgemm.GemmS32((h1-h0)*q.W, nhwc[h0*q.W*cpg:], cpg, p.InZeroPoint, pk.gemm[g], col, rows)
				parallel.For(opg, grain, func(s, e int) {
					for o := s; o < e; o++ {
						plane := acc[o*ohw : (o+1)*ohw]
						for ih := h0; ih < h1; ih++ {
							for kh := khLo[ih]; kh < khHi[ih]; kh++ {
								orow := plane[(ih*q.StrideH-q.PadH+kh*q.DilH)*ow:]
								crow := col[(ih-h0)*q.W*rows+o*kk+kh*q.KW:]
								if q.DilW == 1 {
									// A pixel's taps land on consecutive outputs.
									for iw := 0; iw < q.W; iw++ {
										lo, hi := kwLo[iw], kwHi[iw]
										ob := iw*q.StrideW - q.PadW
										dst := orow[ob+lo : ob+hi]
										src := crow[iw*rows+lo : iw*rows+hi]
										for k := range dst {
											dst[k] += src[k]
										}
									}
									continue
								}
								for iw := 0; iw < q.W; iw++ {
									taps := crow[iw*rows:]
									ob := iw*q.StrideW - q.PadW
									for kw := kwLo[iw]; kw < kwHi[iw]; kw++ {
										orow[ob+kw*q.DilW] += taps[kw]
									}
								}
							}
						}
					}
				})
			}
			parallel.For(opg, max(1, (1<<15)/max(1, ohw)), func(s, e int) {
				mult := make([]float32, ohw)
				for o := s; o < e; o++ {
					oc := g*opg + o
					m := requantMult(r, oc)
					for i := range mult {
						mult[i] = m
					}
					qgemm.RequantizeRow(acc[o*ohw:(o+1)*ohw], mult, r.ZeroPoint, r.Min, r.Max, y[(n*q.OutC+oc)*ohw:(n*q.OutC+oc+1)*ohw])
				}
			})
		}
	}
}

// groupNHWC lays the cpg planes of h x w bytes at the start of x out as
// pixels of cpg channels in dst: with toPaddedNHWC's block transposes
// when cpg is a multiple of 4, else byte by byte.
func groupNHWC(dst, x []uint8, h, w, cpg int) {
	if cpg%4 == 0 {
		q := conv.Conv2DParams{C: cpg, H: h, W: w}
		toPaddedNHWC(&q, x, cpg, w, 0, dst, 0, padUnits(&q, cpg))
		return
	}
	hw := h * w
	for icg := 0; icg < cpg; icg++ {
		for i, v := range x[icg*hw : (icg+1)*hw] {
			dst[i*cpg+icg] = v
		}
	}
}
