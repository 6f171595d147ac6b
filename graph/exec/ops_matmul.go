package exec

import (
	"fmt"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/internal/kernels/sgemm"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// Gemm (opsets 7 to 21) and MatMul (opsets 1 to 21) in float32 on the
// sgemm kernels. A constant 2-D right operand (a weight) is packed once at
// compile time.

func init() {
	register("Gemm", 7, compileGemm)
	register("MatMul", 1, compileMatMul)
}

// gemmKernel is a compiled Gemm node: Y = alpha*A'*B' + beta*C.
type gemmKernel struct {
	alpha, beta    float32
	transA, transB bool
	packed         *sgemm.PackedB // B packed when constant
	k, n           int            // op(B) is k×n when packed
}

func compileGemm(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 2, 3); err != nil {
		return nil, err
	}
	g := &gemmKernel{}
	var err error
	if g.alpha, err = n.Float("alpha", 1); err != nil {
		return nil, err
	}
	if g.beta, err = n.Float("beta", 1); err != nil {
		return nil, err
	}
	ta, err := n.Int("transA", 0)
	if err != nil {
		return nil, err
	}
	tb, err := n.Int("transB", 0)
	if err != nil {
		return nil, err
	}
	g.transA, g.transB = ta != 0, tb != 0
	if b := c.Const(n.Input(1)); b != nil {
		if err := wantFloat("B", b); err != nil {
			return nil, err
		}
		if b.NDim() != 2 {
			return nil, fmt.Errorf("B has shape %v, want 2-D", b.Shape())
		}
		g.k, g.n = b.Dim(0), b.Dim(1)
		if g.transB {
			g.k, g.n = g.n, g.k
		}
		if g.k > 0 && g.n > 0 {
			g.packed = sgemm.PackB(g.transB, g.k, g.n, b.F32(), b.Dim(1))
		}
	}
	return g, nil
}

// Run computes Gemm.
func (g *gemmKernel) Run(_ *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	a, b := in[0], in[1]
	if err := wantFloat("A", a); err != nil {
		return nil, err
	}
	if err := wantFloat("B", b); err != nil {
		return nil, err
	}
	if a.NDim() != 2 || b.NDim() != 2 {
		return nil, fmt.Errorf("A %v and B %v must be 2-D", a.Shape(), b.Shape())
	}
	m, ka := a.Dim(0), a.Dim(1)
	if g.transA {
		m, ka = ka, m
	}
	kb, nn := b.Dim(0), b.Dim(1)
	if g.transB {
		kb, nn = nn, kb
	}
	if ka != kb {
		return nil, fmt.Errorf("A %v (transA=%v) and B %v (transB=%v) have different inner dimensions", a.Shape(), g.transA, b.Shape(), g.transB)
	}
	y := make([]float32, m*nn)
	beta := float32(0)
	if len(in) > 2 && in[2] != nil && g.beta != 0 {
		c := in[2]
		if err := wantFloat("C", c); err != nil {
			return nil, err
		}
		bs, err := tensor.BroadcastShapes(c.Shape(), []int{m, nn})
		if err != nil || len(bs) != 2 || bs[0] != m || bs[1] != nn {
			return nil, fmt.Errorf("C %v does not broadcast to [%d %d]", c.Shape(), m, nn)
		}
		copy(y, tensor.Expand(c, m, nn).F32())
		beta = g.beta
	}
	if m == 0 || nn == 0 {
		return []*tensor.Tensor{nnTensor(y, []int{m, nn})}, nil
	}
	if ka == 0 {
		for i := range y {
			y[i] *= beta
		}
		return []*tensor.Tensor{nnTensor(y, []int{m, nn})}, nil
	}
	lda := a.Dim(1)
	if g.packed != nil {
		sgemm.SgemmPackedB(g.transA, m, g.alpha, a.F32(), lda, g.packed, beta, y, nn)
	} else {
		sgemm.Sgemm(g.transA, g.transB, m, nn, ka, g.alpha, a.F32(), lda, b.F32(), b.Dim(1), beta, y, nn)
	}
	return []*tensor.Tensor{nnTensor(y, []int{m, nn})}, nil
}

// matmulKernel is a compiled MatMul node.
type matmulKernel struct {
	packed *sgemm.PackedB // constant 2-D B, packed
	k, n   int
}

func compileMatMul(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 2, 2); err != nil {
		return nil, err
	}
	k := &matmulKernel{}
	if b := c.Const(n.Input(1)); b != nil && b.DType() == tensor.Float32 && b.NDim() == 2 && b.Numel() > 0 {
		k.k, k.n = b.Dim(0), b.Dim(1)
		k.packed = sgemm.PackB(false, k.k, k.n, b.F32(), k.n)
	}
	return k, nil
}

// Run computes MatMul with NumPy's matmul rules.
func (k *matmulKernel) Run(_ *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	a, b := in[0], in[1]
	if err := wantFloat("A", a); err != nil {
		return nil, err
	}
	if err := wantFloat("B", b); err != nil {
		return nil, err
	}
	as, bs := a.Shape(), b.Shape()
	if len(as) == 0 || len(bs) == 0 {
		return nil, fmt.Errorf("operands %v and %v must have at least one dimension", as, bs)
	}
	kb := bs[0]
	if len(bs) > 1 {
		kb = bs[len(bs)-2]
	}
	if as[len(as)-1] != kb {
		return nil, fmt.Errorf("inner dimensions of %v and %v differ", as, bs)
	}
	if k.packed != nil && as[len(as)-1] == k.k {
		// [..., M, K] x [K, N]: one product over all rows of A.
		rows := a.Numel() / k.k
		outShape := append(append([]int(nil), as[:len(as)-1]...), k.n)
		y := make([]float32, rows*k.n)
		if rows > 0 {
			sgemm.SgemmPackedB(false, rows, 1, a.F32(), k.k, k.packed, 0, y, k.n)
		}
		return []*tensor.Tensor{nnTensor(y, outShape)}, nil
	}
	if len(as) > 2 || len(bs) > 2 {
		ab, bb := as[:max(len(as)-2, 0)], bs[:max(len(bs)-2, 0)]
		if _, err := tensor.BroadcastShapes(ab, bb); err != nil {
			return nil, fmt.Errorf("batch dimensions of %v and %v do not broadcast", as, bs)
		}
	}
	return []*tensor.Tensor{ops.MatMul(a, b)}, nil
}
