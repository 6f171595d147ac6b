package conv

// The references below are the specification of every fast path: direct
// nested loops over the definition, accumulating in float32 in the order
// written. They are compiled on every platform and never parallelized.

// Conv2DReference computes y = conv2d(x, w) + bias by the definition
// y[n,o,oh,ow] = bias[o] + sum over c in o's group, kh, kw of
// x[n,c,oh*SH-PH+kh*DH,ow*SW-PW+kw*DW] * w[o,c%Cg,kh,kw], with x zero
// outside the image. bias may be nil.
func Conv2DReference(p Conv2DParams, x, w, bias, y []float32) {
	refConv(p.geom(), x, w, bias, y)
}

func refConv(g geom, x, w, bias, y []float32) {
	cg, ocg := g.cg(), g.ocg()
	for n := 0; n < g.N; n++ {
		for o := 0; o < g.OutC; o++ {
			grp := o / ocg
			for oh := 0; oh < g.OH; oh++ {
				for ow := 0; ow < g.OW; ow++ {
					var s float32
					if bias != nil {
						s = bias[o]
					}
					for ci := 0; ci < cg; ci++ {
						c := grp*cg + ci
						for kh := 0; kh < g.KH; kh++ {
							ih := oh*g.SH - g.PH + kh*g.DH
							if ih < 0 || ih >= g.H {
								continue
							}
							for kw := 0; kw < g.KW; kw++ {
								iw := ow*g.SW - g.PW + kw*g.DW
								if iw < 0 || iw >= g.W {
									continue
								}
								s += x[((n*g.C+c)*g.H+ih)*g.W+iw] * w[((o*cg+ci)*g.KH+kh)*g.KW+kw]
							}
						}
					}
					y[((n*g.OutC+o)*g.OH+oh)*g.OW+ow] = s
				}
			}
		}
	}
}

// refConvAdjoint scatters gy back through the convolution: it returns the
// gradient of <conv(x), gy> with respect to x, overwriting gx.
func refConvAdjoint(g geom, w, gy, gx []float32) {
	cg, ocg := g.cg(), g.ocg()
	clear(gx[:g.N*g.C*g.H*g.W])
	for n := 0; n < g.N; n++ {
		for o := 0; o < g.OutC; o++ {
			grp := o / ocg
			for oh := 0; oh < g.OH; oh++ {
				for ow := 0; ow < g.OW; ow++ {
					v := gy[((n*g.OutC+o)*g.OH+oh)*g.OW+ow]
					for ci := 0; ci < cg; ci++ {
						c := grp*cg + ci
						for kh := 0; kh < g.KH; kh++ {
							ih := oh*g.SH - g.PH + kh*g.DH
							if ih < 0 || ih >= g.H {
								continue
							}
							for kw := 0; kw < g.KW; kw++ {
								iw := ow*g.SW - g.PW + kw*g.DW
								if iw < 0 || iw >= g.W {
									continue
								}
								gx[((n*g.C+c)*g.H+ih)*g.W+iw] += v * w[((o*cg+ci)*g.KH+kh)*g.KW+kw]
							}
						}
					}
				}
			}
		}
	}
}

// refConvWeightGrad computes gw[o,ci,kh,kw] = sum over n, oh, ow of
// gy[n,o,oh,ow] * x[n,c,ih,iw], overwriting gw.
func refConvWeightGrad(g geom, x, gy, gw []float32) {
	cg, ocg := g.cg(), g.ocg()
	for o := 0; o < g.OutC; o++ {
		grp := o / ocg
		for ci := 0; ci < cg; ci++ {
			c := grp*cg + ci
			for kh := 0; kh < g.KH; kh++ {
				for kw := 0; kw < g.KW; kw++ {
					var s float32
					for n := 0; n < g.N; n++ {
						for oh := 0; oh < g.OH; oh++ {
							ih := oh*g.SH - g.PH + kh*g.DH
							if ih < 0 || ih >= g.H {
								continue
							}
							for ow := 0; ow < g.OW; ow++ {
								iw := ow*g.SW - g.PW + kw*g.DW
								if iw < 0 || iw >= g.W {
									continue
								}
								s += gy[((n*g.OutC+o)*g.OH+oh)*g.OW+ow] * x[((n*g.C+c)*g.H+ih)*g.W+iw]
							}
						}
					}
					gw[((o*cg+ci)*g.KH+kh)*g.KW+kw] = s
				}
			}
		}
	}
}

// refSumPlanes writes s[c] = sum over n and the plane of v[n, c, :],
// overwriting s.
func refSumPlanes(n, c, plane int, v, s []float32) {
	for ch := 0; ch < c; ch++ {
		var acc float32
		for b := 0; b < n; b++ {
			for _, e := range v[(b*c+ch)*plane : (b*c+ch+1)*plane] {
				acc += e
			}
		}
		s[ch] = acc
	}
}

// Conv2DBackwardInputReference computes the input gradient gx of Conv2D
// given the output gradient gy, by scattering each gy element through the
// kernel. gx is overwritten.
func Conv2DBackwardInputReference(p Conv2DParams, w, gy, gx []float32) {
	refConvAdjoint(p.geom(), w, gy, gx)
}

// Conv2DBackwardWeightReference computes the weight gradient gw of Conv2D,
// summing over the batch and output positions. gw is overwritten.
func Conv2DBackwardWeightReference(p Conv2DParams, x, gy, gw []float32) {
	refConvWeightGrad(p.geom(), x, gy, gw)
}

// Conv2DBackwardBiasReference computes gb[o] = sum of gy[:, o, :, :]. gb is
// overwritten.
func Conv2DBackwardBiasReference(p Conv2DParams, gy, gb []float32) {
	g := p.geom()
	refSumPlanes(g.N, g.OutC, g.ohw(), gy, gb)
}

// ConvTranspose2DReference computes y = conv_transpose2d(x, w) + bias by
// scattering: y[n,o,h*SH-PH+kh*DH,w*SW-PW+kw*DW] += x[n,c,h,w]*w[c,o%OCg,kh,kw]
// for every in-range target, where o runs over c's group. bias may be nil.
func ConvTranspose2DReference(p ConvTranspose2DParams, x, w, bias, y []float32) {
	g := p.geom()
	refConvAdjoint(g, w, x, y)
	if bias != nil {
		addBiasRef(g.N, g.C, g.hw(), bias, y)
	}
}

func addBiasRef(n, c, plane int, bias, y []float32) {
	for b := 0; b < n; b++ {
		for ch := 0; ch < c; ch++ {
			for i := range y[(b*c+ch)*plane : (b*c+ch+1)*plane] {
				y[(b*c+ch)*plane+i] += bias[ch]
			}
		}
	}
}

// ConvTranspose2DBackwardInputReference computes the input gradient of
// ConvTranspose2D: the Conv2D of gy with the same weight. gx is overwritten.
func ConvTranspose2DBackwardInputReference(p ConvTranspose2DParams, w, gy, gx []float32) {
	refConv(p.geom(), gy, w, nil, gx)
}

// ConvTranspose2DBackwardWeightReference computes the weight gradient of
// ConvTranspose2D, gw[c,o,kh,kw] = sum of x[n,c,h,w]*gy[n,o,target]. gw is
// overwritten.
func ConvTranspose2DBackwardWeightReference(p ConvTranspose2DParams, x, gy, gw []float32) {
	refConvWeightGrad(p.geom(), gy, x, gw)
}

// ConvTranspose2DBackwardBiasReference computes gb[o] = sum of gy[:, o, :, :].
func ConvTranspose2DBackwardBiasReference(p ConvTranspose2DParams, gy, gb []float32) {
	g := p.geom()
	refSumPlanes(g.N, g.C, g.hw(), gy, gb)
}
