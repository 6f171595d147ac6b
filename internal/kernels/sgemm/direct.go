package sgemm

import (
	"fmt"

	"github.com/quanta-go/quanta/internal/parallel"
)

// In-place products. A convolution's activations are already a GEMM
// operand: for a 1x1 stride-1 convolution of an NCHW image the input is
// the k×n matrix [C, H*W], and the stride-1 "wide" convolutions read
// shifted views of a padded copy. Packing such a B costs a full copy of
// the activations per call while a small weight matrix reuses each packed
// panel only a few times, so SgemmInPlace reads B where it lies.

// Epilogue modes of SgemmInPlace's kernels.
const (
	directPlain = iota // c = s
	directAcc          // c = s + c
	directBias         // c = s + bias[i]
)

// SgemmInPlace computes, for row-major A (m×k, row stride lda), B (k×n,
// row stride ldb) and C (m×n, row stride ldc):
//
//	C = A·B + bias[i] on row i   (accumulate false; bias nil adds nothing)
//	C = A·B + C                  (accumulate true; bias must be nil)
//
// B is read in place rather than packed. For a given CPU tier the result
// is bit-identical to Sgemm(false, false, m, n, k, 1, a, lda, b, ldb,
// beta, c, ldc) with beta = 1 after filling row i of C with bias[i] (or
// with C as given when accumulating), and beta = 0 otherwise; it does not
// depend on the thread count. It panics if a slice is too short.
func SgemmInPlace(m, n, k int, a []float32, lda int, b []float32, ldb int, bias []float32, accumulate bool, c []float32, ldc int) {
	inPlaceVariant(current(), m, n, k, a, lda, b, ldb, bias, accumulate, c, ldc)
}

func inPlaceVariant(v *variant, m, n, k int, a []float32, lda int, b []float32, ldb int, bias []float32, accumulate bool, c []float32, ldc int) {
	checkArgs(false, false, m, n, k, a, lda, b, ldb, c, ldc)
	if accumulate && bias != nil {
		panic("sgemm: SgemmInPlace with both bias and accumulate")
	}
	if bias != nil && len(bias) < m {
		panic(fmt.Sprintf("sgemm: bias has %d elements, need %d", len(bias), m))
	}
	if m == 0 || n == 0 {
		return
	}
	var beta float32
	if v.direct == nil || k == 0 || m == 1 {
		// The packed path, with C prepared as the equivalence states.
		if bias != nil {
			for i := 0; i < m; i++ {
				row := c[i*ldc : i*ldc+n]
				for j := range row {
					row[j] = bias[i]
				}
			}
			beta = 1
		} else if accumulate {
			beta = 1
		}
		sgemmVariant(v, false, false, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
		return
	}
	mode := directPlain
	switch {
	case bias != nil:
		mode = directBias
	case accumulate:
		mode = directAcc
	}
	// Pack all of A once: k block q holds its panels of mr rows from
	// q*kc*mp on (mp is m rounded up to whole panels), panel r at
	// r*kb*mr within the block.
	mr, nr, kc := v.mr, v.nr, v.kc
	mp := (m + mr - 1) / mr * mr
	ws := workspaces.Get().(*workspace)
	ws.a = grow(ws.a, mp*k)
	ap := ws.a
	for p0 := 0; p0 < k; p0 += kc {
		v.packA(ap[p0*mp:], mr, false, a, lda, 0, m, p0, min(kc, k-p0))
	}
	panels := (n + nr - 1) / nr
	t := parallel.NumThreads()
	if 2*m*n*k < minParallelFlops {
		t = 1
	}
	per := (panels + t - 1) / t
	parallel.ForThreads(t, panels, per, func(s, e int) {
		for q := s; q < e; q++ {
			j0 := q * nr
			nn := min(nr, n-j0)
			for p0 := 0; p0 < k; p0 += kc {
				kb := min(kc, k-p0)
				md := mode
				if p0 > 0 {
					md = directAcc
				}
				for i0 := 0; i0 < m; i0 += mr {
					rows := min(mr, m-i0)
					var bi []float32
					if md == directBias {
						bi = bias[i0:]
					}
					v.direct(kb, ap[p0*mp+i0*kb:], b[p0*ldb+j0:], ldb, c[i0*ldc+j0:], ldc, rows, nn, bi, md)
				}
			}
		}
	})
	workspaces.Put(ws)
}
