package conv

import (
	"github.com/quanta-go/quanta/internal/kernels/sgemm"
	"github.com/quanta-go/quanta/internal/parallel"
)

// Batches of small images (training batches of small feature maps) run as
// one GEMM per chunk of images: the im2col matrices of nb images sit side by
// side in one column buffer [K, nb*P], so each product is wide enough to
// keep the GEMM efficient and is split over threads by the GEMM itself,
// with no per-image fork and join. Outputs are copied from (or gradients
// gathered into) a [OutC/Groups, nb*P] buffer. Chunk sizes depend only on
// the shapes, never on the thread count.

// kBlock is the number of im2col rows one parallel work item builds.
const kBlock = 32

// batchImages returns how many images a chunk of the batched path holds,
// or 0 if the path does not apply: one image, images too large to put two
// in a column buffer, a GEMM reduction (red) shorter than minBatchRed,
// where copying the outputs (or gathering gy) between the chunk buffer and
// the NCHW tensors would cost too much next to the product itself, or a 1x1
// convolution with at least 256 positions per image.
func (g *geom) batchImages(red int) int {
	if g.N < 2 || red < minBatchRed || (g.pointwise() && g.ohw() >= 256) {
		// A 1x1 convolution of images with many positions is a plain
		// GEMM per image, reading the input in place.
		return 0
	}
	nb := colBudget / (g.kdim() * g.ohw())
	if nb < 2 {
		return 0
	}
	return min(nb, g.N)
}

// minBatchRed is the shortest GEMM reduction for the batched path.
const minBatchRed = 64

// im2colChunk builds the column matrix of images [n0, n0+m) of group grp
// into col, row stride m*P, in parallel over images and row blocks.
func im2colChunk(g *geom, x []float32, grp, n0, m int, col []float32) {
	K, P, cg := g.kdim(), g.ohw(), g.cg()
	kb := (K + kBlock - 1) / kBlock
	ld := m * P
	parallel.For(m*kb, 1, func(i0, i1 int) {
		for it := i0; it < i1; it++ {
			i, b := it/kb, it%kb
			k0, k1 := b*kBlock, min(K, (b+1)*kBlock)
			im2col(g, x[((n0+i)*g.C+grp*cg)*g.hw():], k0, k1, 0, P, col[k0*ld+i*P:], ld)
		}
	})
}

// gatherChunk copies rows [grp*ocg, (grp+1)*ocg) of images [n0, n0+m) of
// v[N, OutC, P] into t[ocg, m*P].
func gatherChunk(g *geom, v []float32, grp, n0, m int, t []float32) {
	ocg, P := g.ocg(), g.ohw()
	parallel.For(m*ocg, max(1, 4096/P), func(i0, i1 int) {
		for it := i0; it < i1; it++ {
			i, o := it/ocg, it%ocg
			src := v[((n0+i)*g.OutC+grp*ocg+o)*P:][:P]
			copy(t[o*m*P+i*P:][:P], src)
		}
	})
}

func convForwardBatched(g *geom, x, w []float32, wp *Weights, bias, y []float32, nb int) {
	K, P, ocg := g.kdim(), g.ohw(), g.ocg()
	cb, yb := getBuf(K*nb*P), getBuf(ocg*nb*P)
	defer putBuf(cb)
	defer putBuf(yb)
	col, yt := *cb, *yb
	for grp := 0; grp < g.G; grp++ {
		for n0 := 0; n0 < g.N; n0 += nb {
			m := min(nb, g.N-n0)
			ld := m * P
			im2colChunk(g, x, grp, n0, m, col)
			if wp != nil {
				sgemm.SgemmInPlacePacked(wp.packed[grp], ld, col, ld, nil, false, yt, ld)
			} else {
				sgemm.SgemmInPlace(ocg, ld, K, w[grp*ocg*K:], K, col, ld, nil, false, yt, ld)
			}
			parallel.For(m*ocg, max(1, 4096/P), func(i0, i1 int) {
				for it := i0; it < i1; it++ {
					i, o := it/ocg, it%ocg
					oc := grp*ocg + o
					src := yt[o*ld+i*P:][:P]
					dst := y[((n0+i)*g.OutC+oc)*P:][:P]
					if bias == nil {
						copy(dst, src)
						continue
					}
					b := bias[oc]
					for j, v := range src {
						dst[j] = v + b
					}
				}
			})
		}
	}
}

func convAdjointBatched(g *geom, w, gy, gx []float32, nb int) {
	K, P, cg, ocg := g.kdim(), g.ohw(), g.cg(), g.ocg()
	cb, tb := getBuf(K*nb*P), getBuf(ocg*nb*P)
	defer putBuf(cb)
	defer putBuf(tb)
	col, gyt := *cb, *tb
	for grp := 0; grp < g.G; grp++ {
		for n0 := 0; n0 < g.N; n0 += nb {
			m := min(nb, g.N-n0)
			ld := m * P
			gatherChunk(g, gy, grp, n0, m, gyt)
			sgemm.Sgemm(true, false, K, ld, ocg, 1, w[grp*ocg*K:], K, gyt, ld, 0, col, ld)
			parallel.For(m*cg, 1, func(i0, i1 int) {
				for it := i0; it < i1; it++ {
					i, c := it/cg, it%cg
					img := gx[((n0+i)*g.C+grp*cg)*g.hw() : ((n0+i)*g.C+(grp+1)*cg)*g.hw()]
					clear(img[c*g.hw() : (c+1)*g.hw()])
					col2im(g, col[i*P:], ld, c, c+1, img, 0, g.OH)
				}
			})
		}
	}
}

func convWeightGradBatched(g *geom, x, gy, gw []float32, nb int) {
	K, P, ocg := g.kdim(), g.ohw(), g.ocg()
	cb, tb := getBuf(K*nb*P), getBuf(ocg*nb*P)
	defer putBuf(cb)
	defer putBuf(tb)
	col, gyt := *cb, *tb
	for grp := 0; grp < g.G; grp++ {
		wg := gw[grp*ocg*K : (grp+1)*ocg*K]
		var beta float32
		for n0 := 0; n0 < g.N; n0 += nb {
			m := min(nb, g.N-n0)
			ld := m * P
			im2colChunk(g, x, grp, n0, m, col)
			gatherChunk(g, gy, grp, n0, m, gyt)
			sgemm.Sgemm(false, true, ocg, K, ld, 1, gyt, ld, col, ld, beta, wg, K)
			beta = 1
		}
	}
}
