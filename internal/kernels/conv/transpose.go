package conv

import "github.com/quanta-go/quanta/internal/parallel"

// ConvTranspose2D computes y = conv_transpose2d(x, w) + bias as
// torch.nn.functional.conv_transpose2d: x is [N, C, H, W], w is
// [C, OutC/Groups, KH, KW], bias is [OutC] or nil, y is
// [N, OutC, OutH, OutW], overwritten. It is computed as the input gradient
// of the Conv2D from y's shape to x's shape (GEMM then col2im, or the
// depthwise gather kernel when OutC == Groups).
func ConvTranspose2D(p ConvTranspose2DParams, x, w, bias, y []float32) {
	g := p.geom()
	g.check("x", x, p.InputLen())
	g.check("w", w, p.WeightLen())
	g.check("y", y, p.OutputLen())
	if bias != nil {
		g.check("bias", bias, g.C)
	}
	if g.N == 0 {
		return
	}
	if g.direct() {
		depthwiseBackwardInput(&g, w, x, y)
	} else {
		convAdjoint(&g, w, x, y)
	}
	if bias != nil {
		addBias(g.N, g.C, g.hw(), bias, y)
	}
}

// ConvTranspose2DBackwardInput computes the input gradient gx[N, C, H, W] of
// ConvTranspose2D from gy[N, OutC, OutH, OutW]: the Conv2D of gy with w.
// gx is overwritten.
func ConvTranspose2DBackwardInput(p ConvTranspose2DParams, w, gy, gx []float32) {
	g := p.geom()
	g.check("w", w, p.WeightLen())
	g.check("gy", gy, p.OutputLen())
	g.check("gx", gx, p.InputLen())
	if g.N == 0 {
		return
	}
	if g.direct() {
		depthwiseForward(&g, gy, w, nil, gx)
		return
	}
	convForward(&g, gy, w, nil, nil, gx)
}

// ConvTranspose2DBackwardWeight computes the weight gradient
// gw[C, OutC/Groups, KH, KW] of ConvTranspose2D from its input x and the
// output gradient gy, summed over the batch. gw is overwritten.
func ConvTranspose2DBackwardWeight(p ConvTranspose2DParams, x, gy, gw []float32) {
	g := p.geom()
	g.check("x", x, p.InputLen())
	g.check("gy", gy, p.OutputLen())
	g.check("gw", gw, p.WeightLen())
	if g.N == 0 {
		clear(gw[:p.WeightLen()])
		return
	}
	if g.direct() {
		depthwiseBackwardWeight(&g, gy, x, gw)
		return
	}
	convWeightGrad(&g, gy, x, gw)
}

// ConvTranspose2DBackwardBias computes gb[o] = sum of gy[:, o, :, :]. gb is
// overwritten.
func ConvTranspose2DBackwardBias(p ConvTranspose2DParams, gy, gb []float32) {
	g := p.geom()
	g.check("gy", gy, p.OutputLen())
	g.check("gb", gb, g.C)
	sumPlanes(g.N, g.C, g.hw(), gy, gb)
}

// addBias adds bias[ch] to every element of plane ch of each image, split
// over planes.
func addBias(n, c, plane int, bias, y []float32) {
	parallel.For(n*c, max(1, 4096/plane), func(i0, i1 int) {
		for it := i0; it < i1; it++ {
			b := bias[it%c]
			row := y[it*plane : (it+1)*plane]
			for i := range row {
				row[i] += b
			}
		}
	})
}
