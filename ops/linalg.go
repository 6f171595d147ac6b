package ops

import (
	"fmt"

	"github.com/quanta-go/quanta/internal/kernels/sgemm"
	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

// MatMul returns the matrix product of a and b with torch.matmul's rules:
//
//   - both 1-D: the dot product, a 0-dimensional tensor;
//   - both 2-D: the matrix product, [m,k] x [k,n] -> [m,n];
//   - a 1-D [k]: treated as [1,k], and the prepended dimension is removed
//     from the result;
//   - b 1-D [k]: treated as [k,1], and the appended dimension is removed;
//   - otherwise the leading (batch) dimensions broadcast with NumPy rules,
//     e.g. [j,1,m,k] x [l,k,n] -> [j,l,m,n].
//
// Both operands are float32. MatMul panics when the inner dimensions differ
// or the batch dimensions do not broadcast. The traced op is "MatMul" with
// inputs (a, b) and nil attributes.
func MatMul(a, b *tensor.Tensor) *tensor.Tensor {
	av, bv := nnopF32("MatMul", "a", a), nnopF32("MatMul", "b", b)
	p := nnopPlanMatMul(a.Shape(), b.Shape())
	out := make([]float32, nnopProd(p.out))
	nnopBatchedGemm(p.batch, false, false, p.m, p.n, p.k, av, p.aBatch, bv, p.bBatch, out, p.batch)
	y := nnopTensor(out, p.out)
	return Apply("MatMul", nil, Ts(a, b), Ts(y), func(g []*tensor.Tensor) []*tensor.Tensor {
		gv := g[0].F32()
		var ga, gb *tensor.Tensor
		if needs(a) {
			// dA = dY B^T, summed over broadcast batch dimensions.
			d := make([]float32, len(av))
			nnopBatchedGemm(p.batch, false, true, p.m, p.k, p.n, gv, p.batch, bv, p.bBatch, d, p.aBatch)
			ga = nnopTensor(d, a.Shape())
		}
		if needs(b) {
			// dB = A^T dY, summed over broadcast batch dimensions.
			d := make([]float32, len(bv))
			nnopBatchedGemm(p.batch, true, false, p.k, p.n, p.m, av, p.aBatch, gv, p.batch, d, p.bBatch)
			gb = nnopTensor(d, b.Shape())
		}
		return Ts(ga, gb)
	})
}

// Linear returns x W^T + b, as torch.nn.functional.linear: x is [..., in]
// with any number of leading dimensions (including none), w is [out, in]
// and b is [out] or nil. The result is [..., out]. The traced op is
// "Linear" with inputs (x, w, b), b possibly nil, and nil attributes.
func Linear(x, w, b *tensor.Tensor) *tensor.Tensor {
	xv, wv := nnopF32("Linear", "x", x), nnopF32("Linear", "w", w)
	xs, ws := x.Shape(), w.Shape()
	if len(ws) != 2 || len(xs) == 0 || xs[len(xs)-1] != ws[1] {
		panic(fmt.Sprintf("ops: Linear: input %v does not fit weight %v (want [..., in] and [out, in])", xs, ws))
	}
	in, out := ws[1], ws[0]
	var bv []float32
	if b != nil {
		bv = nnopF32("Linear", "b", b)
		if b.NDim() != 1 || len(bv) != out {
			panic(fmt.Sprintf("ops: Linear: bias %v does not fit weight %v", b.Shape(), ws))
		}
	}
	m := nnopProd(xs[:len(xs)-1])
	yShape := append(append([]int(nil), xs[:len(xs)-1]...), out)
	yv := make([]float32, m*out)
	if m > 0 && out > 0 && in > 0 {
		sgemm.Sgemm(false, true, m, out, in, 1, xv, in, wv, in, 0, yv, out)
	}
	if bv != nil {
		for r := 0; r < m; r++ {
			row := yv[r*out : (r+1)*out]
			for j := range row {
				row[j] += bv[j]
			}
		}
	}
	y := nnopTensor(yv, yShape)
	return Apply("Linear", nil, Ts(x, w, b), Ts(y), func(g []*tensor.Tensor) []*tensor.Tensor {
		gv := g[0].F32()
		var gx, gw, gb *tensor.Tensor
		if needs(x) {
			// dX = dY W: [m,out] x [out,in].
			d := make([]float32, len(xv))
			if m > 0 && out > 0 && in > 0 {
				sgemm.Sgemm(false, false, m, in, out, 1, gv, out, wv, in, 0, d, in)
			}
			gx = nnopTensor(d, xs)
		}
		if needs(w) {
			// dW = dY^T X: [out,m] x [m,in].
			d := make([]float32, len(wv))
			if m > 0 && out > 0 && in > 0 {
				sgemm.Sgemm(true, false, out, in, m, 1, gv, out, xv, in, 0, d, in)
			}
			gw = nnopTensor(d, ws)
		}
		if needs(b) {
			gb = nnopTensor(nnopSumRows(gv, m, out), b.Shape())
		}
		return Ts(gx, gw, gb)
	})
}

// nnopMM is the plan of one MatMul: operands viewed as batches of m×k and
// k×n matrices whose batch shapes broadcast to batch.
type nnopMM struct {
	m, n, k               int
	aBatch, bBatch, batch []int
	out                   []int
}

func nnopPlanMatMul(as, bs []int) nnopMM {
	if len(as) == 0 || len(bs) == 0 {
		panic(fmt.Sprintf("ops: MatMul: both operands need at least one dimension, got %v and %v", as, bs))
	}
	var p nnopMM
	var ka, kb int
	if len(as) == 1 {
		p.m, ka = 1, as[0]
	} else {
		p.m, ka = as[len(as)-2], as[len(as)-1]
		p.aBatch = append([]int(nil), as[:len(as)-2]...)
	}
	if len(bs) == 1 {
		kb, p.n = bs[0], 1
	} else {
		kb, p.n = bs[len(bs)-2], bs[len(bs)-1]
		p.bBatch = append([]int(nil), bs[:len(bs)-2]...)
	}
	if ka != kb {
		panic(fmt.Sprintf("ops: MatMul: inner dimensions differ: %v x %v", as, bs))
	}
	p.k = ka
	p.batch = nnopBroadcast("MatMul", p.aBatch, p.bBatch)
	p.out = append([]int(nil), p.batch...)
	if len(as) > 1 {
		p.out = append(p.out, p.m)
	}
	if len(bs) > 1 {
		p.out = append(p.out, p.n)
	}
	return p
}

// nnopBatchedGemm computes, for every index i of the batch shape iter,
// C[ci] = op(A[ai]) op(B[bi]) with op(A) m×k and op(B) k×n, where ai, bi and
// ci are i mapped into each operand's batch shape by broadcasting (aBatch,
// bBatch and cBatch each broadcast to iter). A matrices are stored m×k (k×m
// when transA), B matrices k×n (n×k when transB), C matrices m×n. When
// cBatch has fewer elements than iter, products that map to the same C
// matrix are summed in increasing i, so the result does not depend on the
// thread count.
func nnopBatchedGemm(iter []int, transA, transB bool, m, n, k int, a []float32, aBatch []int, b []float32, bBatch []int, c []float32, cBatch []int) {
	lda, ldb := k, n
	if transA {
		lda = m
	}
	if transB {
		ldb = k
	}
	nb := nnopProd(iter)
	reduce := nnopProd(cBatch) != nb
	if reduce || k == 0 {
		clear(c)
	}
	if nb == 0 || m == 0 || n == 0 || k == 0 {
		return
	}
	full := func(sh []int) bool { return nnopProd(sh) == nb }
	if nb > 1 && !transA && nnopProd(bBatch) == 1 && full(aBatch) && full(cBatch) {
		// One shared B: stack the A matrices into one (nb*m)×k matrix.
		sgemm.Sgemm(false, transB, nb*m, n, k, 1, a, lda, b, ldb, 0, c, n)
		return
	}
	if nb > 1 && transA && !transB && nnopProd(cBatch) == 1 && full(aBatch) && full(bBatch) {
		// Sum over all batches of A_i^T B_i: one product with inner
		// dimension nb*k over the stacked matrices.
		sgemm.Sgemm(true, false, m, n, nb*k, 1, a, lda, b, ldb, 0, c, n)
		return
	}
	as, bs, cs := nnopBatchStrides(aBatch, iter), nnopBatchStrides(bBatch, iter), nnopBatchStrides(cBatch, iter)
	var beta float32
	if reduce {
		beta = 1
	}
	one := func(i int) {
		ao, bo, co := 0, 0, 0
		r := i
		for d := len(iter) - 1; d >= 0; d-- {
			x := r % iter[d]
			r /= iter[d]
			ao += x * as[d]
			bo += x * bs[d]
			co += x * cs[d]
		}
		sgemm.Sgemm(transA, transB, m, n, k, 1, a[ao*m*k:], lda, b[bo*k*n:], ldb, beta, c[co*m*n:], n)
	}
	if reduce || nb == 1 || m*n*k >= 1<<16 {
		for i := 0; i < nb; i++ {
			one(i)
		}
		return
	}
	parallel.For(nb, 1, func(s, e int) {
		for i := s; i < e; i++ {
			one(i)
		}
	})
}

// nnopBatchStrides returns, for each dimension of iter, the matrix stride
// of an operand whose batch shape sh broadcasts to iter (right-aligned); 0
// where sh is missing the dimension or has size 1.
func nnopBatchStrides(sh, iter []int) []int {
	st := make([]int, len(iter))
	off := len(iter) - len(sh)
	acc := 1
	for j := len(sh) - 1; j >= 0; j-- {
		if sh[j] != 1 {
			st[j+off] = acc
		}
		acc *= sh[j]
	}
	return st
}

// nnopBroadcast returns the NumPy broadcast of two shapes (tensor.BroadcastShapes),
// panicking with the op's name when they do not broadcast.
func nnopBroadcast(op string, a, b []int) []int {
	out, err := tensor.BroadcastShapes(a, b)
	if err != nil {
		panic(fmt.Sprintf("ops: %s: shapes %v and %v do not broadcast", op, a, b))
	}
	return out
}

// nnopF32 returns t's float32 storage, panicking with the op's name when t
// is nil or not float32.
func nnopF32(op, name string, t *tensor.Tensor) []float32 {
	if t == nil {
		panic(fmt.Sprintf("ops: %s: %s is nil", op, name))
	}
	if t.DType() != tensor.Float32 {
		panic(fmt.Sprintf("ops: %s: %s is %v, want float32", op, name, t.DType()))
	}
	return t.F32()
}

// nnopProd returns the number of elements of a shape.
func nnopProd(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// nnopTensor wraps data as a float32 tensor of the given shape (which may
// be 0-dimensional).
func nnopTensor(data []float32, shape []int) *tensor.Tensor {
	if len(shape) == 0 {
		return tensor.FromFloat32(data, 1).Reshape()
	}
	return tensor.FromFloat32(data, shape...)
}

// nnopSumRows returns the column sums of a rows×cols matrix, accumulated in
// float64 in row order.
func nnopSumRows(v []float32, rows, cols int) []float32 {
	acc := make([]float64, cols)
	for r := 0; r < rows; r++ {
		for j, x := range v[r*cols : (r+1)*cols] {
			acc[j] += float64(x)
		}
	}
	out := make([]float32, cols)
	for j, s := range acc {
		out[j] = float32(s)
	}
	return out
}
