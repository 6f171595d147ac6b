package exec

import (
	"math"
	"sync"

	"github.com/quanta-go/quanta/internal/kernels/conv"
	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

// ewFused runs a group of float32 elementwise nodes (Add, Sub, Mul, Div,
// Clip, Relu, Sigmoid, Tanh, HardSigmoid, HardSwish) that Compile found
// chained, in one pass over the output: a block of elements at a time,
// every node of the group computed on the block while it is in cache, so
// the intermediate values are never stored in memory. Each element goes
// through the nodes' own arithmetic in the nodes' order (one float32
// rounding per node, the same expressions as the single-node kernels), so
// the result is bit-identical to running the nodes one by one, and blocks
// are split among threads, so it does not depend on the thread count.
//
// Operands are the group's inputs, broadcast into the output: the full
// output shape, a scalar, or a tensor whose non-1 dimensions are one
// contiguous run of the output's (per-channel constants, a squeeze-excite
// scale [N, C, 1, 1]). Anything else (other dtypes, other broadcasts)
// runs the original kernels one after another.
type ewFused struct {
	instrs []ewInstr
	// orig is the group as compiled, run instead when the inputs do not
	// fit the fused kernel; its slots index the fused kernel's inputs
	// (0..nIn-1) and values (nIn...).
	orig []step
	nIn  int
}

// ewCode is a fused instruction.
type ewCode uint8

const (
	ewcAdd ewCode = iota
	ewcSub
	ewcMul
	ewcDiv
	ewcClip
	ewcRelu
	ewcSigmoid
	ewcTanh
	ewcHardSigmoid
	ewcHardSwish
	// ewcRoundTrip16 is a 16-bit QuantizeLinear -> DequantizeLinear pair
	// (roundTrip16).
	ewcRoundTrip16
)

// ewInstr computes register dst from operands a and b (b unused by unary
// codes). An operand is an input index (>= 0) or a register (-1-r). Clip
// reads its bounds from inputs lo and hi (-1: the attribute values p0,
// p1); HardSigmoid has alpha p0 and beta p1.
type ewInstr struct {
	code   ewCode
	a, b   int
	lo, hi int
	p0, p1 float32
	rt     *roundTrip16 // ewcRoundTrip16's qparams
}

// ewBlock is the number of elements computed per block.
const ewBlock = 1024

// ewOperand is an input resolved against the output shape: element i reads
// data[(i/inner)%cnt].
type ewOperand struct {
	data       []float32
	inner, cnt int
	full       bool
}

// ewPattern resolves s broadcast into out, or reports false when its
// non-1 dimensions are not one contiguous run of out's.
func ewPattern(s, out []int) (inner, cnt int, ok bool) {
	r := len(out)
	off := r - len(s)
	first, last := -1, -1
	for d := 0; d < r; d++ {
		sd := 1
		if d >= off {
			sd = s[d-off]
		}
		if out[d] == 1 {
			continue
		}
		if sd == out[d] {
			if first < 0 {
				first = d
			} else if last != d-1 {
				// A gap of broadcast dimensions between matching ones.
				for e := last + 1; e < d; e++ {
					if out[e] != 1 {
						return 0, 0, false
					}
				}
			}
			last = d
		} else if sd != 1 {
			return 0, 0, false
		}
	}
	if first < 0 {
		return 1, 1, true
	}
	inner, cnt = 1, 1
	for d := last + 1; d < r; d++ {
		inner *= out[d]
	}
	for d := first; d <= last; d++ {
		cnt *= out[d]
	}
	return inner, cnt, true
}

// Run computes the group's output.
func (k *ewFused) Run(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	ops, shape, ok := k.resolve(in)
	if !ok {
		return k.fallback(f, in)
	}
	n := 1
	for _, d := range shape {
		n *= d
	}
	y := f.allocF32(n)
	blk := ewBlockFor(ops)
	nb := (n + blk - 1) / blk
	parallel.For(nb, max(1, 16384/blk), func(b0, b1 int) {
		r := getEwRegs(len(k.instrs)+2, blk)
		defer ewRegPool.Put(r)
		for b := b0; b < b1; b++ {
			i0 := b * blk
			k.block(ops, r, y, i0, min(n, i0+blk))
		}
	})
	return []*tensor.Tensor{nnTensor(y, shape)}, nil
}

// ewBlockFor returns the block length for ops: ewBlock, or the run of
// elements one value of a broadcast operand covers (a squeeze-excite
// scale [N, C, 1, 1] over [N, C, H, W] covers H*W) when that is between
// ewBlock/8 and 4*ewBlock, so that the operand is one scalar per block
// instead of a vector materialized for every block. Blocks only group
// the elements; each element's arithmetic is the same whatever they are.
func ewBlockFor(ops []ewOperand) int {
	for i := range ops {
		op := &ops[i]
		if !op.full && op.cnt > 1 && op.inner > 1 {
			if op.inner >= ewBlock/8 && op.inner <= 4*ewBlock {
				return op.inner
			}
			return ewBlock
		}
	}
	return ewBlock
}

// resolve checks the inputs and resolves them against the output shape.
func (k *ewFused) resolve(in []*tensor.Tensor) ([]ewOperand, []int, bool) {
	var shape []int
	for i, t := range in {
		if t == nil || t.DType() != tensor.Float32 {
			return nil, nil, false
		}
		if k.bound(i) {
			if t.Numel() != 1 {
				return nil, nil, false
			}
			continue
		}
		if shape == nil {
			shape = t.Shape()
			continue
		}
		s, err := tensor.BroadcastShapes(shape, t.Shape())
		if err != nil {
			return nil, nil, false
		}
		shape = s
	}
	if shape == nil {
		return nil, nil, false
	}
	ops := make([]ewOperand, len(in))
	for i, t := range in {
		ops[i].data = t.F32()
		if k.bound(i) {
			ops[i].inner, ops[i].cnt = 1, 1
			continue
		}
		inner, cnt, ok := ewPattern(t.Shape(), shape)
		if !ok {
			return nil, nil, false
		}
		ops[i].inner, ops[i].cnt = inner, cnt
		ops[i].full = inner == 1 && cnt == t.Numel() && t.Numel() == nnProd(shape)
	}
	return ops, shape, true
}

// bound reports whether input i is only a Clip bound.
func (k *ewFused) bound(i int) bool {
	used := false
	for _, in := range k.instrs {
		if in.code == ewcClip && (in.lo == i || in.hi == i) {
			used = true
		}
		if in.a == i || (in.b == i && in.code <= ewcDiv) {
			return false
		}
	}
	return used
}

// fallback runs the original kernels in order.
func (k *ewFused) fallback(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	vals := make([]*tensor.Tensor, k.nIn+len(k.orig))
	copy(vals, in)
	var last *tensor.Tensor
	args := make([]*tensor.Tensor, 0, 3)
	for _, st := range k.orig {
		args = args[:0]
		for _, s := range st.in {
			if s < 0 {
				args = append(args, nil)
			} else {
				args = append(args, vals[s])
			}
		}
		res, err := st.kernel.Run(f, args)
		if err != nil {
			return nil, errAt(st.node, err)
		}
		if len(res) < 1 || res[0] == nil {
			return nil, errAt(st.node, errNoOutput)
		}
		vals[st.out[0]] = res[0]
		last = res[0]
	}
	return []*tensor.Tensor{last}, nil
}

// operand returns operand o of the block [i0, i1): a slice, or a scalar
// when it is constant over the block (a register holding a scalar, see
// block). tmp receives materialized broadcasts.
func (k *ewFused) operand(ops []ewOperand, r *ewRegs, o, i0, i1 int, tmp []float32) ([]float32, float32, bool) {
	if o < 0 {
		if r.scalar[-1-o] {
			return nil, r.value[-1-o], true
		}
		return r.regs[-1-o][:i1-i0], 0, false
	}
	op := &ops[o]
	if op.full {
		return op.data[i0:i1], 0, false
	}
	if op.cnt == 1 {
		return nil, op.data[0], true
	}
	c0 := i0 / op.inner
	c1 := (i1 - 1) / op.inner
	if c0 == c1 {
		return nil, op.data[c0%op.cnt], true
	}
	d := tmp[:i1-i0]
	if op.inner == 1 {
		// Consecutive elements read consecutive values: copy runs.
		for i := i0; i < i1; {
			c := i % op.cnt
			n := copy(d[i-i0:], op.data[c:op.cnt])
			i += n
		}
		return d, 0, false
	}
	for i := i0; i < i1; {
		c := i / op.inner
		e := min(i1, (c+1)*op.inner)
		seg := d[i-i0 : e-i0]
		seg[0] = op.data[c%op.cnt]
		for f := 1; f < len(seg); f *= 2 {
			copy(seg[f:], seg[:f])
		}
		i = e
	}
	return d, 0, false
}

// block computes elements [i0, i1) into y. An instruction whose operands
// are all constant over the block (a squeeze-excite branch's activation
// of a per-channel value) is computed once, on one element, and its
// register holds that scalar: the same arithmetic as per element.
func (k *ewFused) block(ops []ewOperand, r *ewRegs, y []float32, i0, i1 int) {
	n := i1 - i0
	last := len(k.instrs) - 1
	tmpA, tmpB := r.regs[len(k.instrs)], r.regs[len(k.instrs)+1]
	for ri, in := range k.instrs {
		a, as, aScalar := k.operand(ops, r, in.a, i0, i1, tmpA)
		var b []float32
		var bs float32
		bScalar := true
		if in.code <= ewcDiv {
			b, bs, bScalar = k.operand(ops, r, in.b, i0, i1, tmpB)
		}
		if aScalar && bScalar {
			one := r.one[:]
			one[1] = as
			k.exec(in, ops, one[:1], one[1:], nil, bs, true, r.codes)
			if ri == last {
				d := y[i0:i1]
				for i := range d {
					d[i] = one[0]
				}
				continue
			}
			r.scalar[ri], r.value[ri] = true, one[0]
			continue
		}
		d := r.regs[ri][:n]
		if ri == last {
			d = y[i0:i1]
		}
		r.scalar[ri] = false
		if aScalar {
			// A vector b with a scalar a.
			conv.EwSV(conv.EwOp(in.code-ewcAdd), d, as, b)
			continue
		}
		k.exec(in, ops, d, a, b, bs, bScalar, r.codes)
	}
}

// exec computes instruction in into d from the vector a and b (or the
// scalar bs when bScalar); codes is scratch for a 16-bit round trip.
func (k *ewFused) exec(in ewInstr, ops []ewOperand, d, a, b []float32, bs float32, bScalar bool, codes []int32) {
	switch in.code {
	case ewcAdd, ewcSub, ewcMul, ewcDiv:
		op := conv.EwOp(in.code - ewcAdd)
		if bScalar {
			conv.EwVS(op, d, a, bs)
		} else {
			conv.EwVV(op, d, a, b)
		}
	case ewcClip:
		l, h := in.p0, in.p1
		if in.lo >= 0 {
			l = ops[in.lo].data[0]
		}
		if in.hi >= 0 {
			h = ops[in.hi].data[0]
		}
		conv.EwClip(d, a, l, h)
	case ewcRelu:
		conv.EwRelu(d, a)
	case ewcSigmoid:
		conv.EwSigmoid(d, a)
	case ewcTanh:
		a = a[:len(d)]
		for i, v := range a {
			d[i] = float32(math.Tanh(float64(v)))
		}
	case ewcHardSigmoid:
		conv.EwHardSigmoid(d, a, in.p0, in.p1)
	case ewcHardSwish:
		conv.EwHardSwish(d, a)
	case ewcRoundTrip16:
		in.rt.apply(d, a, codes)
	}
}

// ewRegPool holds per-worker register files.
var ewRegPool sync.Pool

// ewRegs is a register file: n registers of blk elements, each holding
// a vector or (scalar[i]) the scalar value[i].
type ewRegs struct {
	buf    []float32
	regs   [][]float32
	scalar []bool
	value  []float32
	one    *[2]float32 // an instruction on scalars: result, operand
	codes  []int32     // a 16-bit round trip's codes
}

func getEwRegs(n, blk int) *ewRegs {
	r, _ := ewRegPool.Get().(*ewRegs)
	if r == nil {
		r = &ewRegs{}
	}
	if len(r.buf) < n*blk {
		r.buf = make([]float32, n*blk)
	}
	if len(r.scalar) < n {
		r.scalar, r.value = make([]bool, n), make([]float32, n)
	}
	if r.one == nil {
		r.one = new([2]float32)
	}
	if r.codes == nil {
		r.codes = make([]int32, rtChunk)
	}
	r.regs = r.regs[:0]
	for i := range n {
		r.regs = append(r.regs, r.buf[i*blk:(i+1)*blk])
	}
	return r
}
