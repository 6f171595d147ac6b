package exec

import (
	"fmt"
	"math"
	"sync/atomic"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/internal/kernels/qelem"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

// Binary QDQ patterns (see qdq_elem.go): Add, Sub, Mul or Div of two DQ'd
// activations, ops by constants after them, Relu/Clip bounds, and the
// QuantizeLinear, bit-identical to the literal graph.

// binKernel is a fused binary op of two 8-bit activations.
type binKernel struct {
	qdqBase
	code       ewCode // ewcAdd, ewcSub, ewcMul or ewcDiv
	sa, sb     bool   // signed inputs
	za, zb     int32
	scA, scB   float32
	ta, tb     [256]float32 // DequantizeLinear's value per stored byte
	y          outQ
	lo, hi     int32
	sameFastOK bool // Add/Mul with one signedness and no tails: qelem's kernels
	tails      []binTail
	// codeTabs caches, when every tail is one value, the row tables of
	// rowTables by which operand varies along the row (0: a, 1: b) and
	// the other operand's code: they then depend on nothing else, so
	// they are computed once per code and reused by every row and run.
	codeTabs [2][256]atomic.Pointer[qelem.Table]
}

// binTail is an op by a constant after a binary op: v = v op c, or
// c op v with constFirst; c is one value or broadcasts along a run of
// the output's dimensions.
type binTail struct {
	code       ewCode
	c          *tensor.Tensor
	constFirst bool
}

// matchBinary fuses Add/Sub/Mul/Div of two DQ'd activations at step i
// (a node, or a fused elementwise run starting with the op), the ops by
// constants and the Relu/Clip steps after it, and the QuantizeLinear.
func (m *qdqFuser) matchBinary(i int) {
	st := &m.sp.steps[i]
	if len(st.out) != 1 || st.out[0] < 0 || st.node == nil {
		return
	}
	type clamp struct{ lo, hi float32 }
	var clamps []clamp
	var tails []binTail
	// add takes one op after the binary one: running is its operand
	// holding the running value, slot maps its other operands to slots.
	add := func(r *step, running int, slot func(int) int) bool {
		if len(r.in) == 0 {
			return false
		}
		if isOp(r, "Relu") || isOp(r, "Clip") {
			if r.in[0] != running || len(clamps) >= 4 {
				return false
			}
			c := clamp{0, float32(math.Inf(1))}
			if isOp(r, "Clip") {
				var ok bool
				if c.lo, c.hi, ok = m.clipBoundsNode(r); !ok {
					return false
				}
			}
			clamps = append(clamps, c)
			return true
		}
		code, isBin := binCode(r)
		if !isBin || len(r.in) != 2 || len(clamps) > 0 || len(tails) >= 4 || (r.in[0] == running) == (r.in[1] == running) {
			return false
		}
		other := r.in[1]
		if other == running {
			other = r.in[0]
		}
		c := m.si.constant(slot(other))
		if c == nil || c.DType() != tensor.Float32 {
			return false
		}
		tails = append(tails, binTail{code: code, c: c, constFirst: r.in[0] != running})
		return true
	}
	var code ewCode
	var ia, ib int
	k := &binKernel{}
	if ew, ok := st.kernel.(*ewFused); ok {
		o := ew.orig
		if len(o) == 0 || len(o[0].in) != 2 || o[0].in[0] >= ew.nIn || o[0].in[1] >= ew.nIn {
			return
		}
		var isBin bool
		if code, isBin = binCode(&o[0]); !isBin {
			return
		}
		ia, ib = st.in[o[0].in[0]], st.in[o[0].in[1]]
		slot := func(x int) int {
			if x < 0 || x >= ew.nIn {
				return -1
			}
			return st.in[x]
		}
		for r := 1; r < len(o); r++ {
			if !add(&o[r], ew.nIn+r-1, slot) {
				return
			}
		}
		for _, os := range o {
			k.nodes = append(k.nodes, os.node)
		}
	} else {
		var isBin bool
		if code, isBin = binCode(st); !isBin || !m.literal(st) || len(st.in) != 2 {
			return
		}
		ia, ib = st.in[0], st.in[1]
		k.nodes = append(k.nodes, st.node)
	}
	a, okA := m.act(ia)
	b, okB := m.act(ib)
	if !okA || !okB || a.out == b.out {
		return
	}
	consumed := []int{i}
	o := st.out[0]
	var q outQ
	for {
		if !m.private(o) {
			return
		}
		j := m.readers[o][0]
		r := &m.sp.steps[j]
		if ew, isEw := r.kernel.(*ewFused); isEw && len(ew.orig) != 1 {
			return
		}
		if m.live(j) && len(r.out) == 1 && r.out[0] >= 0 && add(r, o, func(x int) int { return x }) {
			k.nodes = append(k.nodes, r.node)
			consumed = append(consumed, j)
			o = r.out[0]
			continue
		}
		var ok bool
		if q, ok = m.quantOut(o); !ok {
			return
		}
		break
	}
	// Constants must not widen the output: at most the operands' rank.
	rank := 0
	for _, v := range []*graph.Value{m.sp.values[ia], m.sp.values[ib], m.sp.values[a.src], m.sp.values[b.src]} {
		if v != nil && v.Type.HasShape {
			rank = max(rank, len(v.Type.Shape))
		}
	}
	for _, t := range tails {
		if t.c.Numel() != 1 && t.c.NDim() > rank {
			return
		}
	}
	consumed = append(consumed, q.q)
	k.nodes = append([]*graph.Node{m.sp.steps[a.dq].node, m.sp.steps[b.dq].node}, append(k.nodes, m.sp.steps[q.q].node)...)
	k.code, k.sa, k.sb, k.za, k.zb, k.scA, k.scB, k.y = code, a.signed, b.signed, a.zp, b.zp, a.scale, b.scale, q
	k.tails = tails
	k.lo, k.hi = q.lo(), q.hi()
	for _, c := range clamps {
		// NaN results (0/0) quantize to the zero point with or without
		// the clamp, as a Relu or Clip of NaN does after them.
		k.lo = max(k.lo, qmath.Quantize(c.lo, q.scale, q.zp, q.lo(), q.hi()))
		k.hi = min(k.hi, qmath.Quantize(c.hi, q.scale, q.zp, q.lo(), q.hi()))
	}
	if k.lo > k.hi {
		return
	}
	for c := 0; c < 256; c++ {
		k.ta[c] = qmath.Dequantize(storedValue(byte(c), a.signed), a.zp, a.scale)
		k.tb[c] = qmath.Dequantize(storedValue(byte(c), b.signed), b.zp, b.scale)
	}
	k.sameFastOK = (code == ewcAdd || code == ewcMul) && a.signed == b.signed && b.signed == q.signed && len(tails) == 0
	k.pattern = map[ewCode]string{ewcAdd: "QLinearAdd", ewcSub: "QLinearSub", ewcMul: "QLinearMul", ewcDiv: "QLinearDiv"}[code]
	m.commit(step{node: st.node, kernel: k, in: []int{a.src, b.src}, out: []int{q.out}}, consumed, []actQ{a, b})
}

// qarith returns float32(x op y), rounded on its own.
func qarith(code ewCode, x, y float32) float32 {
	switch code {
	case ewcAdd:
		return float32(x + y)
	case ewcSub:
		return float32(x - y)
	case ewcMul:
		return float32(x * y)
	}
	return float32(x / y)
}

// tailAt resolves the tails against the output shape: per tail, element
// i reads c[(i/inner)%cnt].
func (k *binKernel) tailAt(shape []int) ([][2]int, error) {
	at := make([][2]int, len(k.tails))
	for t, tl := range k.tails {
		if tl.c.Numel() == 1 {
			at[t] = [2]int{1, 1}
			continue
		}
		if s, err := tensor.BroadcastShapes(shape, tl.c.Shape()); err != nil || !tensor.SameShape(s, shape) {
			return nil, fmt.Errorf("constant of shape %v does not broadcast into %v", tl.c.Shape(), shape)
		}
		inner, cnt, ok := ewPattern(tl.c.Shape(), shape)
		if !ok {
			return nil, fmt.Errorf("constant of shape %v broadcast into %v is not supported", tl.c.Shape(), shape)
		}
		at[t] = [2]int{inner, cnt}
	}
	return at, nil
}

// scalarTails reports whether every tail is one value.
func (k *binKernel) scalarTails() bool {
	for _, t := range k.tails {
		if t.c.Numel() != 1 {
			return false
		}
	}
	return true
}

// applyTails applies the tails to v, the elements from flat index i0, a
// run of elements reading one constant value at a time.
func (k *binKernel) applyTails(v []float32, i0 int, at [][2]int) {
	for t, tl := range k.tails {
		c := tl.c.F32()
		inner, cnt := at[t][0], at[t][1]
		for j := 0; j < len(v); {
			i := i0 + j
			cv := c[(i/inner)%cnt]
			e := min(len(v), j+inner-i%inner)
			seg := v[j:e]
			if tl.constFirst {
				for q, x := range seg {
					seg[q] = qarith(tl.code, cv, x)
				}
			} else {
				for q, x := range seg {
					seg[q] = qarith(tl.code, x, cv)
				}
			}
			j = e
		}
	}
}

// binCode returns the code of an Add/Sub/Mul/Div step.
func binCode(st *step) (ewCode, bool) {
	switch {
	case isOp(st, "Add"):
		return ewcAdd, true
	case isOp(st, "Sub"):
		return ewcSub, true
	case isOp(st, "Mul"):
		return ewcMul, true
	case isOp(st, "Div"):
		return ewcDiv, true
	}
	return 0, false
}

// clipBoundsNode returns the constant bounds of a Clip step inside a fused
// run (its kernel is the Clip's own).
func (m *qdqFuser) clipBoundsNode(st *step) (float32, float32, bool) {
	r := step{node: st.node, kernel: st.kernel}
	return m.clipBounds(&r)
}

// binBlock is the number of elements a binary kernel computes at a time.
const binBlock = 2048

// Run computes the quantized op.
func (k *binKernel) Run(f *Frame, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	a, b := in[0], in[1]
	if err := wantBytes(a, k.sa); err != nil {
		return nil, err
	}
	if err := wantBytes(b, k.sb); err != nil {
		return nil, err
	}
	shape, err := tensor.BroadcastShapes(a.Shape(), b.Shape())
	if err != nil {
		return nil, err
	}
	n := shapeNumel(shape)
	y := f.allocBytes(n)
	ab, bb := bytesOf(a), bytesOf(b)
	if k.sameFastOK && a.Numel() == n && b.Numel() == n {
		p := &qelem.BinaryParams{ScaleA: k.scA, ScaleB: k.scB, ScaleY: k.y.scale, ZeroA: k.za, ZeroB: k.zb, ZeroY: k.y.zp, Min: k.lo, Max: k.hi}
		yt := byteTensor(y, k.y.signed, shape...)
		switch {
		case k.code == ewcAdd && !k.sa:
			qelem.Add(y, ab, bb, p)
		case k.code == ewcMul && !k.sa:
			qelem.Mul(y, ab, bb, p)
		case k.code == ewcAdd:
			qelem.Add(yt.I8(), a.I8(), b.I8(), p)
		default:
			qelem.Mul(yt.I8(), a.I8(), b.I8(), p)
		}
		return []*tensor.Tensor{yt}, nil
	}
	if n == 0 {
		return []*tensor.Tensor{byteTensor(y, k.y.signed, shape...)}, nil
	}
	at, err := k.tailAt(shape)
	if err != nil {
		return nil, err
	}
	dims, sa, sb := collapse(shape, a.Shape(), b.Shape())
	inner := dims[len(dims)-1]
	rowConst := true // every tail is one value per row
	for _, t := range at {
		rowConst = rowConst && (t[1] == 1 || t[0]%inner == 0)
	}
	// A table per row (256 entries computed and quantized) pays off on
	// rows several times longer than the table, or on any row when every
	// tail is one value: the table then depends only on the scalar
	// operand's code and is kept across rows and runs (codeTabs). Other
	// short rows (a per-channel tail) are computed directly.
	minRow := 1024
	if l := len(dims) - 1; rowConst && (sa[l] == 1 && sb[l] == 0 || sa[l] == 0 && sb[l] == 1) {
		if inner >= minRow || k.scalarTails() {
			k.rowTables(y, ab, bb, dims, sa, sb, at)
		} else {
			k.rowScalars(y, ab, bb, dims, sa, sb, at)
		}
		return []*tensor.Tensor{byteTensor(y, k.y.signed, shape...)}, nil
	}
	nb := (n + binBlock - 1) / binBlock
	l := len(dims) - 1
	parallel.For(nb, max(1, byteGrain/binBlock), func(s, e int) {
		var fa, fb [binBlock]float32
		for blk := s; blk < e; blk++ {
			i0 := blk * binBlock
			i1 := min(n, i0+binBlock)
			for i := i0; i < i1; {
				row, j0 := i/inner, i%inner
				j1 := min(inner, j0+i1-i)
				// The offsets of the row in a and b.
				oa, ob, rem := 0, 0, row
				for d := l - 1; d >= 0; d-- {
					c := rem % dims[d]
					rem /= dims[d]
					oa += c * sa[d]
					ob += c * sb[d]
				}
				xa, xb := fa[i-i0:i-i0+j1-j0], fb[i-i0:i-i0+j1-j0]
				ia, ib := sa[l], sb[l]
				for j := range xa {
					xa[j] = k.ta[ab[oa+(j0+j)*ia]]
					xb[j] = k.tb[bb[ob+(j0+j)*ib]]
				}
				i += j1 - j0
			}
			xa, xb := fa[:i1-i0], fb[:i1-i0]
			switch k.code {
			case ewcAdd:
				for j := range xa {
					xa[j] = float32(xa[j] + xb[j])
				}
			case ewcSub:
				for j := range xa {
					xa[j] = float32(xa[j] - xb[j])
				}
			case ewcMul:
				for j := range xa {
					xa[j] = float32(xa[j] * xb[j])
				}
			default:
				for j := range xa {
					xa[j] = float32(xa[j] / xb[j])
				}
			}
			k.applyTails(xa, i0, at)
			quantizeBytesSerial(y[i0:i1], xa, k.y.scale, k.y.zp, k.lo, k.hi, k.y.signed)
		}
	})
	return []*tensor.Tensor{byteTensor(y, k.y.signed, shape...)}, nil
}

// rowTables computes rows along which one operand is one value (a
// squeeze-excite scale, a per-channel bias): per row, the table of the
// op with that value over the other operand's 256 codes (the same float
// operation and rounding per element), then a lookup.
func (k *binKernel) rowTables(y, ab, bb []byte, dims, sa, sb []int, at [][2]int) {
	l := len(dims) - 1
	inner := dims[l]
	rows := len(y) / inner
	aVaries := sa[l] == 1
	cached := k.scalarTails()
	side := 0
	if !aVaries {
		side = 1
	}
	parallel.For(rows, max(1, byteGrain/inner), func(s, e int) {
		var tabs [256]*qelem.Table
		for row := s; row < e; row++ {
			oa, ob, rem := 0, 0, row
			for d := l - 1; d >= 0; d-- {
				c := rem % dims[d]
				rem /= dims[d]
				oa += c * sa[d]
				ob += c * sb[d]
			}
			var src []byte
			var code byte
			if aVaries {
				src, code = ab[oa:oa+inner], bb[ob]
			} else {
				src, code = bb[ob:ob+inner], ab[oa]
			}
			t := tabs[code]
			if cached {
				t = k.codeTabs[side][code].Load()
			}
			if t == nil || !cached {
				if t == nil {
					t = new(qelem.Table)
				}
				var r [256]float32
				for c := range r {
					x, v := k.ta[c], k.tb[code]
					if !aVaries {
						x, v = k.ta[code], k.tb[c]
					}
					r[c] = qarith(k.code, x, v)
				}
				// Every element of the row reads the tails' values of
				// its first element.
				for ti, tl := range k.tails {
					cv := tl.c.F32()[(row*inner/at[ti][0])%at[ti][1]]
					for c, x := range r {
						if tl.constFirst {
							r[c] = qarith(tl.code, cv, x)
						} else {
							r[c] = qarith(tl.code, x, cv)
						}
					}
				}
				quantizeBytesSerial(t[:], r[:], k.y.scale, k.y.zp, k.lo, k.hi, k.y.signed)
				tabs[code] = t
				if cached {
					// Tables for one code are equal, whichever
					// goroutine stores last.
					k.codeTabs[side][code].Store(t)
				}
			}
			lutRow(y[row*inner:(row+1)*inner], src, t)
		}
	})
}

// rowScalars computes rows along which one operand and every tail are
// one value each: per element, the other operand's value, the op and the
// tails with those scalars (the same float operations in the same order),
// then QuantizeLinear on the row.
func (k *binKernel) rowScalars(y, ab, bb []byte, dims, sa, sb []int, at [][2]int) {
	l := len(dims) - 1
	inner := dims[l]
	rows := len(y) / inner
	aVaries := sa[l] == 1
	parallel.For(rows, max(1, byteGrain/4/inner), func(s, e int) {
		buf := make([]float32, inner)
		cv := make([]float32, len(k.tails))
		for row := s; row < e; row++ {
			oa, ob, rem := 0, 0, row
			for d := l - 1; d >= 0; d-- {
				c := rem % dims[d]
				rem /= dims[d]
				oa += c * sa[d]
				ob += c * sb[d]
			}
			for ti, tl := range k.tails {
				cv[ti] = tl.c.F32()[(row*inner/at[ti][0])%at[ti][1]]
			}
			switch {
			case aVaries && k.code == ewcMul:
				// Squeeze-excite scaling, the common case: the same
				// product without the per-element dispatch.
				v := k.tb[bb[ob]]
				for j, b := range ab[oa : oa+inner] {
					buf[j] = k.ta[b] * v
				}
			case aVaries:
				v := k.tb[bb[ob]]
				for j, b := range ab[oa : oa+inner] {
					buf[j] = qarith(k.code, k.ta[b], v)
				}
			case k.code == ewcMul:
				v := k.ta[ab[oa]]
				for j, b := range bb[ob : ob+inner] {
					buf[j] = v * k.tb[b]
				}
			default:
				v := k.ta[ab[oa]]
				for j, b := range bb[ob : ob+inner] {
					buf[j] = qarith(k.code, v, k.tb[b])
				}
			}
			for ti, tl := range k.tails {
				c := cv[ti]
				if tl.constFirst {
					for j, x := range buf {
						buf[j] = qarith(tl.code, c, x)
					}
				} else {
					for j, x := range buf {
						buf[j] = qarith(tl.code, x, c)
					}
				}
			}
			quantizeBytesSerial(y[row*inner:(row+1)*inner], buf, k.y.scale, k.y.zp, k.lo, k.hi, k.y.signed)
		}
	})
}

// lutRow maps one row of bytes through a table on the calling goroutine,
// with the fastest lookup kernel.
func lutRow(dst, src []byte, t *qelem.Table) {
	qelem.LookupSerial(dst, src[:len(dst)], t)
}

// quantizeBytesSerial is quantizeBytes on the calling goroutine, inside
// loops already split over threads.
func quantizeBytesSerial(dst []byte, src []float32, scale float32, zp, lo, hi int32, signed bool) {
	if signed {
		qelem.QuantizeSerial(byteTensor(dst, true, len(dst)).I8(), src, scale, zp, lo, hi)
		return
	}
	qelem.QuantizeSerial(dst, src, scale, zp, lo, hi)
}

// quantizeBytes is QuantizeLinear of src into 8-bit dst within lo..hi.
func quantizeBytes(dst []byte, src []float32, scale float32, zp, lo, hi int32, signed bool) {
	if signed {
		qelem.Quantize(byteTensor(dst, true, len(dst)).I8(), src, scale, zp, lo, hi)
		return
	}
	qelem.Quantize(dst, src, scale, zp, lo, hi)
}

// collapse returns the broadcast output shape with adjacent dimensions
// merged where both inputs step through them contiguously, and the
// inputs' element strides per merged dimension (0 where broadcast).
func collapse(shape, as, bs []int) (dims, sa, sb []int) {
	r := len(shape)
	stride := func(s []int) []int {
		st := make([]int, r)
		acc := 1
		for d := r - 1; d >= 0; d-- {
			i := d - (r - len(s))
			if i >= 0 && s[i] != 1 {
				st[d] = acc
				acc *= s[i]
			} else if i >= 0 {
				acc *= 1
			}
		}
		return st
	}
	fa, fb := stride(as), stride(bs)
	for d := 0; d < r; d++ {
		if shape[d] == 1 {
			continue
		}
		if l := len(dims) - 1; l >= 0 && sa[l] == fa[d]*shape[d] && sb[l] == fb[d]*shape[d] {
			dims[l] *= shape[d]
			sa[l], sb[l] = fa[d], fb[d]
			continue
		}
		dims = append(dims, shape[d])
		sa = append(sa, fa[d])
		sb = append(sb, fb[d])
	}
	if len(dims) == 0 {
		return []int{1}, []int{0}, []int{0}
	}
	return dims, sa, sb
}
