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
	ws := workspaces.Get().(*workspace)
	mp := (m + v.mr - 1) / v.mr * v.mr
	ws.a = grow(ws.a, mp*k)
	packAllA(v, ws.a, m, k, a, lda)
	directProduct(v, m, n, k, ws.a, b, ldb, bias, mode, c, ldc)
	workspaces.Put(ws)
}

// packAllA packs all of the m×k matrix A for the direct kernels: k block q
// holds its panels of mr rows from q*kc*mp on (mp is m rounded up to
// whole panels), panel r at r*kb*mr within the block.
func packAllA(v *variant, dst []float32, m, k int, a []float32, lda int) {
	mp := (m + v.mr - 1) / v.mr * v.mr
	for p0 := 0; p0 < k; p0 += v.kc {
		v.packA(dst[p0*mp:], v.mr, false, a, lda, 0, m, p0, min(v.kc, k-p0))
	}
}

// directProduct runs the direct kernels over C with A packed by packAllA,
// column panels split among threads.
func directProduct(v *variant, m, n, k int, ap, b []float32, ldb int, bias []float32, mode int, c []float32, ldc int) {
	mr, nr, kc := v.mr, v.nr, v.kc
	mp := (m + mr - 1) / mr * mr
	panels := (n + nr - 1) / nr
	t := parallel.NumThreads()
	if 2*m*n*k < minParallelFlops {
		t = 1
	}
	// Work items are column panels, or (when there are fewer panels than
	// twice the threads) groups of row tiles of one panel; contiguous
	// ranges of items go to the threads. Each tile's arithmetic is the
	// same however the items fall.
	rt := (m + mr - 1) / mr
	groups := 1
	if t > 1 && panels < 2*t {
		groups = min(rt, (2*t+panels-1)/panels)
	}
	tilesPer := (rt + groups - 1) / groups
	items := panels * groups
	per := (items + t - 1) / t
	parallel.ForThreads(t, items, per, func(s, e int) {
		for it := s; it < e; it++ {
			q, gi := it/groups, it%groups
			j0 := q * nr
			nn := min(nr, n-j0)
			r0, r1 := gi*tilesPer*mr, min(m, (gi+1)*tilesPer*mr)
			for p0 := 0; p0 < k; p0 += kc {
				kb := min(kc, k-p0)
				md := mode
				if p0 > 0 {
					md = directAcc
				}
				for i0 := r0; i0 < r1; i0 += mr {
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
}

// PackedA is an m×k left-hand operand of SgemmInPlace packed once, such as
// a convolution's weight. It is laid out for the kernel variant chosen
// when it was packed and is read-only afterwards, so one PackedA may serve
// concurrent products.
type PackedA struct {
	m, k int
	v    *variant
	a    []float32 // A itself (row stride k), for the paths that do not read packed panels
	data []float32 // packAllA's layout, or nil
}

// PackA packs the m×k row-major matrix a (row stride lda) for
// SgemmInPlacePacked. a is copied; later changes to it are not seen.
func PackA(m, k int, a []float32, lda int) *PackedA {
	checkMatrix("A", m, k, a, lda)
	return packAVariant(current(), m, k, a, lda)
}

func packAVariant(v *variant, m, k int, a []float32, lda int) *PackedA {
	pa := &PackedA{m: m, k: k, v: v, a: make([]float32, m*k)}
	for i := 0; i < m; i++ {
		copy(pa.a[i*k:(i+1)*k], a[i*lda:i*lda+k])
	}
	if v.direct != nil && m > 1 && k > 0 {
		pa.data = make([]float32, (m+v.mr-1)/v.mr*v.mr*k)
		packAllA(v, pa.data, m, k, pa.a, k)
	}
	return pa
}

// M returns the number of rows of A.
func (pa *PackedA) M() int { return pa.m }

// K returns the number of columns of A.
func (pa *PackedA) K() int { return pa.k }

// SgemmInPlacePacked is SgemmInPlace with A packed by PackA: the same
// result, bit for bit, as SgemmInPlace with the variant that packed pa.
func SgemmInPlacePacked(pa *PackedA, n int, b []float32, ldb int, bias []float32, accumulate bool, c []float32, ldc int) {
	m, k, v := pa.m, pa.k, pa.v
	if pa.data == nil {
		inPlaceVariant(v, m, n, k, pa.a, k, b, ldb, bias, accumulate, c, ldc)
		return
	}
	checkArgs(false, false, m, n, k, pa.a, k, b, ldb, c, ldc)
	if accumulate && bias != nil {
		panic("sgemm: SgemmInPlacePacked with both bias and accumulate")
	}
	if bias != nil && len(bias) < m {
		panic(fmt.Sprintf("sgemm: bias has %d elements, need %d", len(bias), m))
	}
	if n == 0 {
		return
	}
	mode := directPlain
	switch {
	case bias != nil:
		mode = directBias
	case accumulate:
		mode = directAcc
	}
	directProduct(v, m, n, k, pa.data, b, ldb, bias, mode, c, ldc)
}
