package sgemm

import (
	"fmt"

	"github.com/quanta-go/quanta/internal/parallel"
)

// PackedB is a k×n right-hand operand packed once for repeated products,
// such as the weight of a linear or convolution layer. It is laid out for
// the kernel variant chosen when it was packed (cpu.Max at that time) and
// is read-only afterwards, so one PackedB may serve concurrent products.
type PackedB struct {
	k, n int
	v    *variant
	// data holds, for each k block q of v.kc rows (the last may be
	// shorter, kb rows), the block's nr-wide micro-panels back to back:
	// element (p, j) of the block is at q*v.kc*np*nr + (j/nr)*kb*nr +
	// p*nr + j%nr, where np is the number of panels.
	data []float32
}

// PackB packs op(B) for SgemmPackedB: op(B) is k×n; B is k×n with row
// stride ldb, or n×k when transB (the layout of a linear layer's weight,
// out_features×in_features). B is copied; later changes to it are not seen.
func PackB(transB bool, k, n int, b []float32, ldb int) *PackedB {
	if transB {
		checkMatrix("B", n, k, b, ldb)
	} else {
		checkMatrix("B", k, n, b, ldb)
	}
	return packBVariant(current(), transB, k, n, b, ldb)
}

// packBVariant is PackB for variant v.
func packBVariant(v *variant, transB bool, k, n int, b []float32, ldb int) *PackedB {
	pb := &PackedB{k: k, n: n, v: v}
	if k == 0 || n == 0 {
		return pb
	}
	np := (n + v.nr - 1) / v.nr
	pb.data = make([]float32, k*np*v.nr)
	blocks := (k + v.kc - 1) / v.kc
	parallel.For(blocks, 1, func(s, e int) {
		for q := s; q < e; q++ {
			p0 := q * v.kc
			kb := min(v.kc, k-p0)
			v.packB(pb.data[p0*np*v.nr:], v.nr, transB, b, ldb, p0, kb, 0, n)
		}
	})
	return pb
}

// K returns the number of rows of op(B).
func (pb *PackedB) K() int { return pb.k }

// N returns the number of columns of op(B).
func (pb *PackedB) N() int { return pb.n }

// block returns the packed panels of k block p0 (kb rows), from column j0
// (a multiple of the panel width) on.
func (pb *PackedB) block(p0, kb, j0 int) []float32 {
	np := (pb.n + pb.v.nr - 1) / pb.v.nr
	return pb.data[p0*np*pb.v.nr+(j0/pb.v.nr)*kb*pb.v.nr:]
}

// SgemmPackedB computes C = alpha*op(A)*B + beta*C with B packed by PackB:
// op(A) is m×k (A is k×m when transA) with row stride lda, C is m×n with
// row stride ldc, where k and n are pb's. When beta is 0, C is not read.
// The result equals Sgemm's with the variant that packed pb.
func SgemmPackedB(transA bool, m int, alpha float32, a []float32, lda int, pb *PackedB, beta float32, c []float32, ldc int) {
	k, n, v := pb.k, pb.n, pb.v
	if m < 0 {
		panic(fmt.Sprintf("sgemm: negative dimension m=%d", m))
	}
	if m == 0 || n == 0 {
		return
	}
	if transA {
		checkMatrix("A", k, m, a, lda)
	} else {
		checkMatrix("A", m, k, a, lda)
	}
	checkMatrix("C", m, n, c, ldc)
	if k == 0 {
		scaleC(m, n, alpha, beta, c, ldc)
		return
	}
	if m == 1 && v.rowPacked != nil && (!transA || lda == 1 || k == 1) {
		rowPackedB(v, alpha, a, pb, beta, c)
		return
	}
	bs := func(_ *workspace, p0, kb, j0, _ int) []float32 { return pb.block(p0, kb, j0) }
	gemmParallel(v, transA, m, n, k, alpha, a, lda, bs, beta, c, ldc)
}

// rowPackedPanels is the number of panels one rowPacked call covers.
const rowPackedPanels = 4

// rowPackedB computes the single row c[0:n] = alpha*a*B + beta*c from packed
// B, splitting groups of panels across threads.
func rowPackedB(v *variant, alpha float32, a []float32, pb *PackedB, beta float32, c []float32) {
	k, n := pb.k, pb.n
	np := (n + v.nr - 1) / v.nr
	groups := (np + rowPackedPanels - 1) / rowPackedPanels
	t := rowThreads(n, k)
	per := (groups + t - 1) / t
	parallel.ForThreads(t, groups, per, func(s, e int) {
		for g := s; g < e; g++ {
			j0 := g * rowPackedPanels * v.nr
			cols := min(rowPackedPanels*v.nr, n-j0)
			panels := (cols + v.nr - 1) / v.nr
			for p0 := 0; p0 < k; p0 += v.kc {
				kb := min(v.kc, k-p0)
				be := beta
				if p0 > 0 {
					be = 1
				}
				v.rowPacked(kb, a[p0:], pb.block(p0, kb, j0), panels, c[j0:], alpha, be, cols)
			}
		}
	})
}
