package tensor

import "fmt"

// BroadcastShapes returns the shape NumPy broadcasting gives operands of
// shapes a and b: shapes are aligned at their last dimension, and each pair
// of dimensions must be equal or contain a 1. It returns an error naming both
// shapes when they do not broadcast.
func BroadcastShapes(a, b []int) ([]int, error) {
	n := max(len(a), len(b))
	out := make([]int, n)
	for i := 0; i < n; i++ {
		da, db := 1, 1
		if j := len(a) - n + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da == db:
			out[i] = da
		case da == 1:
			out[i] = db
		case db == 1:
			out[i] = da
		default:
			return nil, fmt.Errorf("tensor: shapes %v and %v do not broadcast (dimension %d: %d vs %d)", a, b, i, da, db)
		}
	}
	return out, nil
}

// ewBroadcastShape is BroadcastShapes that panics with the op's name.
func ewBroadcastShape(op string, a, b []int) []int {
	out, err := BroadcastShapes(a, b)
	if err != nil {
		panic(fmt.Sprintf("tensor: %s: shapes %v and %v do not broadcast", op, a, b))
	}
	return out
}

// ewPlan walks a contiguous output shape row by row, tracking the offset of
// each broadcast operand. Dimensions of size 1 are dropped and adjacent
// dimensions that are contiguous for every operand are merged, so the inner
// row is as long as possible and the per-element work is a plain loop.
type ewPlan struct {
	dims    []int   // merged output dimensions; the last is the inner row
	st      [][]int // per operand: element stride of each merged dimension (0 = broadcast)
	inner   int     // length of the inner row
	innerSt []int   // per operand: stride along the inner row (0 or 1)
}

// newEwPlan plans the walk over out for operands of the given shapes, each
// of which must broadcast to out.
func newEwPlan(out []int, ins ...[]int) *ewPlan {
	r := len(out)
	full := make([][]int, len(ins))
	for k, s := range ins {
		full[k] = make([]int, r)
		acc := 1
		for i := r - 1; i >= 0; i-- {
			d := 1
			if j := len(s) - r + i; j >= 0 {
				d = s[j]
			}
			if d != 1 {
				full[k][i] = acc
			}
			acc *= d
		}
	}
	p := &ewPlan{st: make([][]int, len(ins))}
	for i := 0; i < r; i++ {
		if out[i] == 1 {
			continue
		}
		if last := len(p.dims) - 1; last >= 0 {
			merge := true
			for k := range ins {
				if p.st[k][last] != full[k][i]*out[i] {
					merge = false
					break
				}
			}
			if merge {
				p.dims[last] *= out[i]
				for k := range ins {
					p.st[k][last] = full[k][i]
				}
				continue
			}
		}
		p.dims = append(p.dims, out[i])
		for k := range ins {
			p.st[k] = append(p.st[k], full[k][i])
		}
	}
	if len(p.dims) == 0 {
		p.dims = []int{1}
		for k := range ins {
			p.st[k] = []int{0}
		}
	}
	last := len(p.dims) - 1
	p.inner = p.dims[last]
	p.innerSt = make([]int, len(ins))
	for k := range ins {
		p.innerSt[k] = p.st[k][last]
	}
	return p
}

// each calls fn once per inner row with the row's output offset (rows are
// visited in order, so it is row*inner) and the operands' offsets. fn must
// not keep offs.
func (p *ewPlan) each(fn func(o int, offs []int)) {
	nd := len(p.dims) - 1
	rows := 1
	for _, d := range p.dims[:nd] {
		rows *= d
	}
	if rows == 0 || p.inner == 0 {
		return
	}
	idx := make([]int, nd)
	offs := make([]int, len(p.st))
	for r := 0; r < rows; r++ {
		fn(r*p.inner, offs)
		for i := nd - 1; i >= 0; i-- {
			idx[i]++
			for k := range offs {
				offs[k] += p.st[k][i]
			}
			if idx[i] < p.dims[i] {
				break
			}
			for k := range offs {
				offs[k] -= p.st[k][i] * p.dims[i]
			}
			idx[i] = 0
		}
	}
}

// ewBroadcast2 runs a binary kernel over two operands broadcast to outShape.
// vv combines two rows, vs a row with a scalar, sv a scalar with a row.
// Same-shape and one-element operands take a single call.
func ewBroadcast2[T, U any](outShape, as, bs []int, d []U, a, b []T,
	vv func(d []U, a, b []T), vs func(d []U, a []T, s T), sv func(d []U, s T, b []T)) {
	switch {
	case SameShape(as, bs):
		vv(d, a, b)
		return
	case len(b) == 1 && len(d) == len(a):
		vs(d, a, b[0])
		return
	case len(a) == 1 && len(d) == len(b):
		sv(d, a[0], b)
		return
	}
	p := newEwPlan(outShape, as, bs)
	n := p.inner
	sa, sb := p.innerSt[0], p.innerSt[1]
	p.each(func(o int, off []int) {
		dd := d[o : o+n]
		switch {
		case sa == 1 && sb == 1:
			vv(dd, a[off[0]:off[0]+n], b[off[1]:off[1]+n])
		case sa == 1:
			vs(dd, a[off[0]:off[0]+n], b[off[1]])
		case sb == 1:
			sv(dd, a[off[0]], b[off[1]:off[1]+n])
		default:
			// Both operands broadcast along a dimension of size > 1: the
			// output dimension would then be 1, so this cannot happen.
			panic("tensor: internal error: broadcast row with no operand")
		}
	})
}

// ewExpandCopy fills d (of shape out) with s (of shape in) broadcast.
func ewExpandCopy[T any](out, in []int, d, s []T) {
	if len(d) == len(s) {
		copy(d, s)
		return
	}
	p := newEwPlan(out, in)
	n := p.inner
	if p.innerSt[0] == 1 {
		p.each(func(o int, off []int) { copy(d[o:o+n], s[off[0]:off[0]+n]) })
		return
	}
	p.each(func(o int, off []int) {
		v := s[off[0]]
		row := d[o : o+n]
		for i := range row {
			row[i] = v
		}
	})
}

// expandShape resolves Expand's target shape against t's shape.
func expandShape(t *Tensor, shape []int) []int {
	src := t.Shape()
	if len(shape) < len(src) {
		panic(fmt.Sprintf("tensor: Expand: shape %v has fewer dimensions than tensor shape %v", shape, src))
	}
	out := append([]int(nil), shape...)
	lead := len(shape) - len(src)
	for i, d := range out {
		if i < lead {
			if d < 0 {
				panic(fmt.Sprintf("tensor: Expand: cannot expand %v to %v (new dimension %d is %d)", src, shape, i, d))
			}
			continue
		}
		s := src[i-lead]
		if d == -1 {
			out[i] = s
			continue
		}
		if d < 0 || (s != d && s != 1) {
			panic(fmt.Sprintf("tensor: Expand: cannot expand %v to %v (dimension %d)", src, shape, i))
		}
	}
	return out
}

// Expand returns a copy of t broadcast to shape (torch.Tensor.expand, but
// materialized: quanta tensors are always contiguous). A -1 keeps a
// dimension's size; new leading dimensions may be added. It works for every
// dtype and panics when t does not broadcast to shape.
func Expand(t *Tensor, shape ...int) *Tensor {
	out := expandShape(t, shape)
	r := ewNew(t.dtype, out)
	if q := t.qparams.Clone(); q != nil {
		if q.Scheme.PerChannel() {
			q.Axis += len(out) - t.NDim()
		}
		r.qparams = q
	}
	in := t.Shape()
	switch t.dtype.Storage() {
	case Float32:
		ewExpandCopy(out, in, r.f32, t.f32)
	case Int8:
		ewExpandCopy(out, in, r.i8, t.i8)
	case Uint8:
		ewExpandCopy(out, in, r.u8, t.u8)
	case Int32:
		ewExpandCopy(out, in, r.i32, t.i32)
	case Int64:
		ewExpandCopy(out, in, r.i64, t.i64)
	case Bool:
		ewExpandCopy(out, in, r.b, t.b)
	}
	return r
}

// SumTo sums the float32 tensor t down to shape, the inverse of
// broadcasting: it is how a broadcast op's gradient returns to an operand's
// shape. shape must broadcast to t's shape (extra leading dimensions of
// shape must be 1). When shape already equals t's shape, t itself is
// returned, not a copy. The summation order is fixed, so results are
// reproducible.
func SumTo(t *Tensor, shape []int) *Tensor {
	t.need("SumTo", Float32)
	src := t.Shape()
	if SameShape(src, shape) {
		return t
	}
	tgt := shape
	ok := true
	if lead := len(shape) - len(src); lead > 0 {
		for _, d := range shape[:lead] {
			ok = ok && d == 1
		}
		tgt = shape[lead:]
	}
	if b, err := BroadcastShapes(tgt, src); err != nil || !SameShape(b, src) {
		ok = false
	}
	if !ok {
		panic(fmt.Sprintf("tensor: SumTo: cannot sum shape %v to %v", src, shape))
	}
	out := New(Float32, shape...)
	if SameShape(tgt, src) {
		// Only leading 1s were added: same elements.
		copy(out.f32, t.f32)
		return out
	}
	d, s := out.f32, t.f32
	p := newEwPlan(src, tgt)
	n := p.inner
	if p.innerSt[0] == 1 {
		p.each(func(o int, off []int) {
			row, acc := s[o:o+n], d[off[0]:off[0]+n]
			for i := range acc {
				acc[i] += row[i]
			}
		})
		return out
	}
	p.each(func(o int, off []int) {
		var sum float64
		for _, v := range s[o : o+n] {
			sum += float64(v)
		}
		d[off[0]] += float32(sum)
	})
	return out
}

// ewNew is New with a non-nil shape slice, so that 0-dimensional results
// of every dtype report shape [] (New leaves the slice nil for an empty
// shape, which Shape reads as [0] when there is no float32 storage).
func ewNew(dtype DType, shape []int) *Tensor {
	t := New(dtype, shape...)
	if t.shape == nil {
		t.shape = []int{}
	}
	return t
}
