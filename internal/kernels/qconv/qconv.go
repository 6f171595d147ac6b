// Package qconv computes quantized 2-D convolutions: uint8 activations
// (NCHW) with zero point za, int8 weights [OutC, C/Groups, KH, KW] with one
// zero point per output channel (or one for all), int32 bias with scale
// s_a*s_w[c], and requantization to uint8 outputs:
//
//	acc[n][oc][oh][ow] = bias[oc] + sum over (ic, kh, kw) of
//	                     (x[n][ic][ih][iw] - za) * (w[oc][ic][kh][kw] - zw[oc])
//	y = saturate(roundHalfEven(float32(acc) * M[oc]) + zy)  within [Min, Max]
//
// where (ih, iw) = (oh*sh - ph + kh*dh, ow*sw - pw + kw*dw) and padded
// positions hold za, so they contribute nothing. Reference is the
// specification; every fast path equals it bit for bit, and results do not
// depend on the thread count.
package qconv

import (
	"fmt"

	"github.com/quanta-go/quanta/internal/kernels/conv"
	"github.com/quanta-go/quanta/internal/kernels/qgemm"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
)

// Params describes a quantized convolution: the geometry (conv.Conv2DParams)
// and the quantization of input and weights.
type Params struct {
	conv.Conv2DParams
	// InZeroPoint is za, the input zero point.
	InZeroPoint int32
	// WeightZeroPoints holds one zero point per output channel, or one.
	WeightZeroPoints []int32
}

func (p *Params) zw(oc int) int32 {
	if len(p.WeightZeroPoints) == 1 {
		return p.WeightZeroPoints[0]
	}
	return p.WeightZeroPoints[oc]
}

// Validate reports whether p describes a convolution these kernels compute.
func (p *Params) Validate() error {
	if err := p.Conv2DParams.Validate(); err != nil {
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

func (p *Params) mult(r *qgemm.Requant, oc int) float32 {
	if len(r.Multiplier) == 1 {
		return r.Multiplier[0]
	}
	return r.Multiplier[oc]
}

// Reference is the specification: a direct loop over every output and
// every tap, with int32 accumulation and the Requant epilogue of package
// qgemm (Bias, Multiplier, ZeroPoint, Min, Max, per output channel).
func Reference(p *Params, x []uint8, w []int8, r *qgemm.Requant, y []uint8) {
	q := p.Norm()
	oh, ow := q.OutH(), q.OutW()
	cpg, opg := q.C/q.Groups, q.OutC/q.Groups
	za := p.InZeroPoint
	for n := 0; n < q.N; n++ {
		for oc := 0; oc < q.OutC; oc++ {
			g := oc / opg
			zw := p.zw(oc)
			for i := 0; i < oh; i++ {
				for j := 0; j < ow; j++ {
					var acc int32
					if r.Bias != nil {
						acc = r.Bias[oc]
					}
					for ic := 0; ic < cpg; ic++ {
						c := g*cpg + ic
						for kh := 0; kh < q.KH; kh++ {
							ih := i*q.StrideH - q.PadH + kh*q.DilH
							for kw := 0; kw < q.KW; kw++ {
								iw := j*q.StrideW - q.PadW + kw*q.DilW
								a := za
								if ih >= 0 && ih < q.H && iw >= 0 && iw < q.W {
									a = int32(x[((n*q.C+c)*q.H+ih)*q.W+iw])
								}
								wv := int32(w[((oc*cpg+ic)*q.KH+kh)*q.KW+kw])
								acc += (a - za) * (wv - zw)
							}
						}
					}
					y[((n*q.OutC+oc)*oh+i)*ow+j] = uint8(qmath.Requantize(acc, p.mult(r, oc), r.ZeroPoint, r.Min, r.Max))
				}
			}
		}
	}
}
