package conv

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestConvPaths runs every GEMM-based path on every non-depthwise case,
// whether or not dispatch would choose it: per-image im2col tiles, and the
// batched path with chunks of 1, 2 and N images, for the forward pass, the
// input gradient and the weight gradient; each against the references, and
// with 1, 2 and 3 threads agreeing bit for bit.
func TestConvPaths(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	for _, p := range convCases(r, 120) {
		g := p.geom()
		if g.direct() {
			continue
		}
		x := randSlice(r, p.InputLen())
		w := randSlice(r, p.WeightLen())
		b := randSlice(r, p.OutC)
		gy := randSlice(r, p.OutputLen())
		wantY := make([]float32, p.OutputLen())
		Conv2DReference(p, x, w, b, wantY)
		magY := make([]float32, p.OutputLen())
		Conv2DReference(p, absOf(x), absOf(w), absOf(b), magY)
		wantX := make([]float32, p.InputLen())
		Conv2DBackwardInputReference(p, w, gy, wantX)
		magX := make([]float32, p.InputLen())
		Conv2DBackwardInputReference(p, absOf(w), absOf(gy), magX)
		wantW := make([]float32, p.WeightLen())
		Conv2DBackwardWeightReference(p, x, gy, wantW)
		magW := make([]float32, p.WeightLen())
		Conv2DBackwardWeightReference(p, absOf(x), absOf(gy), magW)

		wp := PackWeights(w, p.OutC, p.Norm().Groups)
		type path struct {
			name string
			n    int // output length
			run  func(out []float32)
			want []float32
			mag  []float32
		}
		paths := []path{
			{"forward tiles", p.OutputLen(), func(o []float32) { convForwardTiles(&g, x, w, nil, b, o) }, wantY, magY},
			{"forward tiles, packed weights", p.OutputLen(), func(o []float32) { convForwardTiles(&g, x, w, wp, b, o) }, wantY, magY},
			{"adjoint images", p.InputLen(), func(o []float32) { convAdjointImages(&g, w, gy, o) }, wantX, magX},
			{"adjoint images, one-row bands", p.InputLen(), func(o []float32) {
				old := adjointBand
				adjointBand = 1
				defer func() { adjointBand = old }()
				convAdjointImages(&g, w, gy, o)
			}, wantX, magX},
			{"weight images", p.WeightLen(), func(o []float32) { convWeightGradImages(&g, x, gy, o) }, wantW, magW},
		}
		for _, nb := range []int{1, 2, g.N} {
			paths = append(paths,
				path{fmt.Sprintf("forward batched %d", nb), p.OutputLen(), func(o []float32) { convForwardBatched(&g, x, w, nil, b, o, nb) }, wantY, magY},
				path{fmt.Sprintf("forward batched %d, packed weights", nb), p.OutputLen(), func(o []float32) { convForwardBatched(&g, x, w, wp, b, o, nb) }, wantY, magY},
				path{fmt.Sprintf("adjoint batched %d", nb), p.InputLen(), func(o []float32) { convAdjointBatched(&g, w, gy, o, nb) }, wantX, magX},
				path{fmt.Sprintf("weight batched %d", nb), p.WeightLen(), func(o []float32) { convWeightGradBatched(&g, x, gy, o, nb) }, wantW, magW},
			)
		}
		for _, pa := range paths {
			var first []float32
			for _, th := range []int{1, 2, 3} {
				got := guarded(pa.n)
				withThreads(th, func() { pa.run(got) })
				name := p.String() + " " + pa.name
				checkGuard(t, name, got)
				assertCloseMag(t, name, got, pa.want, pa.mag, convTol)
				if first == nil {
					first = got
				} else {
					assertBits(t, name+" threads", got, first)
				}
			}
		}
	}
}
