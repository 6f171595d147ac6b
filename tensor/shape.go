package tensor

import (
	"fmt"
	"math"
)

// This file holds the shape operations: permutations, slicing, joining,
// splitting, padding and repetition. They work for every dtype, including
// quantized ones, whose QParams follow the data (a per-channel Axis moves
// with permutations, and per-channel scales are sliced, selected or
// repeated with their channels).
//
// Operations that only change the shape (Squeeze, Unsqueeze, Flatten) share
// storage with their input, like Reshape; all others return new contiguous
// tensors. Every copy goes through one strided-copy kernel, shCopy, which
// merges dimensions that are contiguous in both source and destination so
// that contiguous runs are moved with the built-in copy.

// shView is a strided view of a flat storage slice.
type shView struct {
	shape, strides []int
	off            int
}

func shContig(shape []int) shView { return shView{shape: shape, strides: Strides(shape)} }

// shCoalesce drops size-1 dimensions and merges neighbouring dimensions
// that are contiguous in both stride sets. It reports false when the shape
// holds no elements.
func shCoalesce(shape, as, bs []int) (sh, a, b []int, ok bool) {
	for i, d := range shape {
		if d == 0 {
			return nil, nil, nil, false
		}
		if d == 1 {
			continue
		}
		k := len(sh) - 1
		if k >= 0 && a[k] == as[i]*d && b[k] == bs[i]*d {
			sh[k] *= d
			a[k], b[k] = as[i], bs[i]
			continue
		}
		sh = append(sh, d)
		a = append(a, as[i])
		b = append(b, bs[i])
	}
	return sh, a, b, true
}

// shOdo walks the positions of a shape in row-major order, tracking the
// offsets of two strided views.
type shOdo struct {
	shape, as, bs, idx []int
	a, b               int
}

func shNewOdo(shape, as, bs []int, a, b int) *shOdo {
	return &shOdo{shape: shape, as: as, bs: bs, idx: make([]int, len(shape)), a: a, b: b}
}

func (o *shOdo) next() {
	for j := len(o.shape) - 1; j >= 0; j-- {
		o.idx[j]++
		o.a += o.as[j]
		o.b += o.bs[j]
		if o.idx[j] < o.shape[j] {
			return
		}
		o.a -= o.as[j] * o.shape[j]
		o.b -= o.bs[j] * o.shape[j]
		o.idx[j] = 0
	}
}

// Tile of the cache-blocked transpose path: shTileI rows of the output by
// shTileJ columns, so that only shTileJ lines of the strided side are live
// at once (power-of-two strides alias to one cache set; 64x8 measured
// fastest on 1024x1024 and 4096x4096 transposes, 32x32 the slowest).
const (
	shTileI = 64
	shTileJ = 8
)

// shCopy copies the elements of view sv of src into view dv of dst (both
// views have the same shape).
func shCopy[T any](dst []T, dv shView, src []T, sv shView) {
	shape, ds, ss, ok := shCoalesce(dv.shape, dv.strides, sv.strides)
	if !ok {
		return
	}
	n := len(shape)
	if n == 0 {
		dst[dv.off] = src[sv.off]
		return
	}
	// A transpose of the last two dimensions: copy in square tiles so both
	// sides stay in cache.
	if n >= 2 && ds[n-1] == 1 && ss[n-2] == 1 && ss[n-1] != 1 && shape[n-1] >= 8 && shape[n-2] >= 8 {
		rows, cols := shape[n-2], shape[n-1]
		dr, sc := ds[n-2], ss[n-1]
		o := shNewOdo(shape[:n-2], ds[:n-2], ss[:n-2], dv.off, sv.off)
		outer := shProd(shape[:n-2])
		for k := 0; k < outer; k++ {
			for i0 := 0; i0 < rows; i0 += shTileI {
				i1 := min(i0+shTileI, rows)
				for j0 := 0; j0 < cols; j0 += shTileJ {
					j1 := min(j0+shTileJ, cols)
					for i := i0; i < i1; i++ {
						d := dst[o.a+i*dr+j0 : o.a+i*dr+j1]
						s := o.b + i + j0*sc
						for j := range d {
							d[j] = src[s]
							s += sc
						}
					}
				}
			}
			o.next()
		}
		return
	}
	inner, di, si := shape[n-1], ds[n-1], ss[n-1]
	o := shNewOdo(shape[:n-1], ds[:n-1], ss[:n-1], dv.off, sv.off)
	outer := shProd(shape[:n-1])
	for k := 0; k < outer; k++ {
		switch {
		case di == 1 && si == 1:
			copy(dst[o.a:o.a+inner], src[o.b:o.b+inner])
		case di == 1 && si == 0:
			v := src[o.b]
			d := dst[o.a : o.a+inner]
			for j := range d {
				d[j] = v
			}
		default:
			d, s := o.a, o.b
			for j := 0; j < inner; j++ {
				dst[d] = src[s]
				d += di
				s += si
			}
		}
		o.next()
	}
}

// shCopyT is shCopy on the storage of two tensors of the same storage dtype.
func shCopyT(dst *Tensor, dv shView, src *Tensor, sv shView) {
	switch src.dtype.Storage() {
	case Float32:
		shCopy(dst.f32, dv, src.f32, sv)
	case Int8:
		shCopy(dst.i8, dv, src.i8, sv)
	case Uint8:
		shCopy(dst.u8, dv, src.u8, sv)
	case Int32:
		shCopy(dst.i32, dv, src.i32, sv)
	case Int64:
		shCopy(dst.i64, dv, src.i64, sv)
	case Bool:
		shCopy(dst.b, dv, src.b, sv)
	}
}

func shProd(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// shAlloc returns a zeroed tensor of t's dtype with the given shape and qparams.
func shAlloc(t *Tensor, shape []int, q *QParams) *Tensor {
	out := shNew(t.dtype, shape...)
	out.qparams = q
	return out
}

// shAxisIncl normalizes an insertion position in [-(n+1), n].
func shAxisIncl(op string, n, d int) int {
	if d < 0 {
		d += n + 1
	}
	if d < 0 || d > n {
		panic(fmt.Sprintf("tensor: %s: dimension %d out of range for %d dimensions", op, d, n))
	}
	return d
}

// shPerChannel reports whether q is per-channel.
func shPerChannel(q *QParams) bool { return q != nil && q.Scheme.PerChannel() }

// shQPTake returns a copy of q for an output whose dimension dim has n
// entries, entry i coming from input entry take(i). Only per-channel qparams
// on that axis change.
func shQPTake(q *QParams, dim, n int, take func(i int) int) *QParams {
	q = q.Clone()
	if !shPerChannel(q) || q.Axis != dim {
		return q
	}
	sc, zp, zf := q.Scale, q.ZeroPoint, q.ZeroPointF
	q.Scale, q.ZeroPoint, q.ZeroPointF = nil, nil, nil
	for i := 0; i < n; i++ {
		j := take(i)
		if len(sc) > 0 {
			q.Scale = append(q.Scale, sc[j])
		}
		if len(zp) > 0 {
			q.ZeroPoint = append(q.ZeroPoint, zp[j])
		}
		if len(zf) > 0 {
			q.ZeroPointF = append(q.ZeroPointF, zf[j])
		}
	}
	return q
}

// shQPAxis returns a copy of q with a per-channel axis mapped through f.
func shQPAxis(q *QParams, f func(axis int) int) *QParams {
	q = q.Clone()
	if shPerChannel(q) {
		q.Axis = f(q.Axis)
	}
	return q
}

func shQPEqual(a, b *QParams) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Scheme != b.Scheme || a.Axis != b.Axis || a.QuantMin != b.QuantMin || a.QuantMax != b.QuantMax ||
		len(a.Scale) != len(b.Scale) || len(a.ZeroPoint) != len(b.ZeroPoint) || len(a.ZeroPointF) != len(b.ZeroPointF) {
		return false
	}
	for i := range a.Scale {
		if a.Scale[i] != b.Scale[i] {
			return false
		}
	}
	for i := range a.ZeroPoint {
		if a.ZeroPoint[i] != b.ZeroPoint[i] {
			return false
		}
	}
	for i := range a.ZeroPointF {
		if a.ZeroPointF[i] != b.ZeroPointF[i] {
			return false
		}
	}
	return true
}

// shReshare returns a tensor sharing t's storage with a new shape and
// qparams (no autograd state).
func shReshare(t *Tensor, shape []int, q *QParams) *Tensor {
	c := t.Reshape(shape...)
	c.shape = append([]int{}, c.shape...)
	c.qparams = q
	return c
}

// Permute returns a copy of t with its dimensions reordered: dimension i of
// the result is dimension perm[i] of t (torch.permute followed by
// contiguous). Negative entries count from the end.
func Permute(t *Tensor, perm ...int) *Tensor {
	sh := t.Shape()
	n := len(sh)
	if len(perm) != n {
		panic(fmt.Sprintf("tensor: Permute: permutation %v for shape %v", perm, sh))
	}
	p := make([]int, n)
	seen := make([]bool, n)
	for i, d := range perm {
		d = t.axis("Permute", d)
		if seen[d] {
			panic(fmt.Sprintf("tensor: Permute: %v is not a permutation of %d dimensions", perm, n))
		}
		seen[d] = true
		p[i] = d
	}
	st := Strides(sh)
	shape, strides := make([]int, n), make([]int, n)
	for i, d := range p {
		shape[i], strides[i] = sh[d], st[d]
	}
	q := shQPAxis(t.qparams, func(a int) int {
		for i, d := range p {
			if d == a {
				return i
			}
		}
		return a
	})
	out := shAlloc(t, shape, q)
	shCopyT(out, shContig(shape), t, shView{shape: shape, strides: strides})
	return out
}

// Transpose returns a copy of t with dimensions d0 and d1 swapped
// (torch.transpose followed by contiguous).
func Transpose(t *Tensor, d0, d1 int) *Tensor {
	n := t.NDim()
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	if n == 0 && (d0 == 0 || d0 == -1) && (d1 == 0 || d1 == -1) {
		return t.Clone()
	}
	d0, d1 = t.axis("Transpose", d0), t.axis("Transpose", d1)
	perm[d0], perm[d1] = d1, d0
	return Permute(t, perm...)
}

// SliceBounds resolves Python slice bounds on a dimension of size n:
// negative start and end count from the end, and both are clamped to
// [0, n]. It returns the first index and the number of selected elements
// for a positive step.
func SliceBounds(n, start, end, step int) (first, count int) {
	if step < 1 {
		panic(fmt.Sprintf("tensor: Slice: step %d must be positive", step))
	}
	clamp := func(i int) int {
		if i < 0 {
			i += n
		}
		return max(0, min(i, n))
	}
	s, e := clamp(start), clamp(end)
	if e <= s {
		return s, 0
	}
	return s, (e - s + step - 1) / step
}

// Slice returns a copy of t[..., start:end:step, ...] along dim, with
// Python/PyTorch slicing rules: negative start or end count from the end,
// out-of-range bounds are clamped, and the step must be positive. Use
// math.MaxInt as end to slice to the end.
func Slice(t *Tensor, dim, start, end, step int) *Tensor {
	dim = t.axis("Slice", dim)
	first, count := SliceBounds(t.Shape()[dim], start, end, step)
	out, dv, sv := shSliceViews(t, dim, first, count, step)
	shCopyT(out, dv, t, sv)
	return out
}

// shSliceViews allocates the output of a slice and returns the contiguous
// output view and the strided view of t it copies from.
func shSliceViews(t *Tensor, dim, first, count, step int) (*Tensor, shView, shView) {
	sh := t.Shape()
	shape := append([]int(nil), sh...)
	shape[dim] = count
	st := Strides(sh)
	strides := append([]int(nil), st...)
	strides[dim] *= step
	q := shQPTake(t.qparams, dim, count, func(i int) int { return first + i*step })
	out := shAlloc(t, shape, q)
	return out, shContig(shape), shView{shape: shape, strides: strides, off: first * st[dim]}
}

// SliceScatter returns a copy of t in which the slice start:end:step along
// dim is replaced by src (torch.slice_scatter). src must have the slice's
// shape and t's dtype.
func SliceScatter(t, src *Tensor, dim, start, end, step int) *Tensor {
	dim = t.axis("SliceScatter", dim)
	sh := t.Shape()
	first, count := SliceBounds(sh[dim], start, end, step)
	shape := append([]int(nil), sh...)
	shape[dim] = count
	if src.dtype != t.dtype || !SameShape(src.Shape(), shape) {
		panic(fmt.Sprintf("tensor: SliceScatter: source %v%v for a slice of shape %v%v", src.dtype, src.Shape(), t.dtype, shape))
	}
	out := t.Clone()
	st := Strides(sh)
	strides := append([]int(nil), st...)
	strides[dim] *= step
	shCopyT(out, shView{shape: shape, strides: strides, off: first * st[dim]}, src, shContig(shape))
	return out
}

// Narrow returns a copy of length elements of t along dim starting at
// start (torch.narrow). A negative start counts from the end; the range
// must lie inside the dimension.
func Narrow(t *Tensor, dim, start, length int) *Tensor {
	dim = t.axis("Narrow", dim)
	n := t.Shape()[dim]
	if start < 0 {
		start += n
	}
	if start < 0 || start > n || length < 0 || start+length > n {
		panic(fmt.Sprintf("tensor: Narrow: start %d length %d outside dimension %d of %v", start, length, dim, t.Shape()))
	}
	return Slice(t, dim, start, start+length, 1)
}

// Concat joins tensors along dim (torch.cat). All must have t's dtype and
// equal sizes outside dim; one-dimensional empty tensors (shape [0]) are
// skipped, as in PyTorch. Quantized inputs must share qparams, except
// per-channel ones joined along their channel axis, whose scales are
// concatenated.
func Concat(ts []*Tensor, dim int) *Tensor {
	var in []*Tensor
	for _, t := range ts {
		if s := t.Shape(); len(s) == 1 && s[0] == 0 {
			continue
		}
		in = append(in, t)
	}
	if len(in) == 0 {
		if len(ts) == 0 {
			panic("tensor: Concat: no tensors")
		}
		return shNew(ts[0].dtype, 0)
	}
	t0 := in[0]
	dim = t0.axis("Concat", dim)
	shape := append([]int(nil), t0.Shape()...)
	shape[dim] = 0
	q := t0.qparams.Clone()
	along := shPerChannel(q) && q.Axis == dim
	for i, t := range in {
		s := t.Shape()
		if t.dtype != t0.dtype || len(s) != len(shape) {
			panic(fmt.Sprintf("tensor: Concat: tensor %d is %v%v, tensor 0 is %v%v", i, t.dtype, s, t0.dtype, t0.Shape()))
		}
		for d := range s {
			if d != dim && s[d] != shape[d] {
				panic(fmt.Sprintf("tensor: Concat: tensor %d has shape %v, tensor 0 has %v (dim %d)", i, s, t0.Shape(), dim))
			}
		}
		shape[dim] += s[dim]
		if i == 0 {
			continue
		}
		if along && shPerChannel(t.qparams) && t.qparams.Axis == dim && t.qparams.Scheme == q.Scheme {
			q.Scale = append(q.Scale, t.qparams.Scale...)
			q.ZeroPoint = append(q.ZeroPoint, t.qparams.ZeroPoint...)
			q.ZeroPointF = append(q.ZeroPointF, t.qparams.ZeroPointF...)
		} else if !shQPEqual(t.qparams, t0.qparams) {
			panic(fmt.Sprintf("tensor: Concat: tensor %d has different quantization parameters", i))
		}
	}
	out := shAlloc(t0, shape, q)
	st := Strides(shape)
	at := 0
	for _, t := range in {
		s := t.Shape()
		shCopyT(out, shView{shape: s, strides: st, off: at * st[dim]}, t, shContig(s))
		at += s[dim]
	}
	return out
}

// Stack joins tensors of equal shape along a new dimension dim
// (torch.stack); dim may be in [-(n+1), n] for n-dimensional inputs.
func Stack(ts []*Tensor, dim int) *Tensor {
	if len(ts) == 0 {
		panic("tensor: Stack: no tensors")
	}
	dim = shAxisIncl("Stack", ts[0].NDim(), dim)
	u := make([]*Tensor, len(ts))
	for i, t := range ts {
		if !SameShape(t.Shape(), ts[0].Shape()) {
			panic(fmt.Sprintf("tensor: Stack: tensor %d has shape %v, tensor 0 has %v", i, t.Shape(), ts[0].Shape()))
		}
		u[i] = Unsqueeze(t, dim)
	}
	if len(u) == 1 {
		return u[0].Clone()
	}
	return Concat(u, dim)
}

// Split cuts t along dim into pieces of the given sizes, which must add up
// to the size of dim (torch.split with a list of sizes). The pieces are
// copies.
func Split(t *Tensor, sizes []int, dim int) []*Tensor {
	dim = t.axis("Split", dim)
	total := 0
	for _, s := range sizes {
		if s < 0 {
			panic(fmt.Sprintf("tensor: Split: negative size in %v", sizes))
		}
		total += s
	}
	if total != t.Shape()[dim] {
		panic(fmt.Sprintf("tensor: Split: sizes %v do not add up to dimension %d of %v", sizes, dim, t.Shape()))
	}
	out := make([]*Tensor, len(sizes))
	at := 0
	for i, s := range sizes {
		out[i] = Slice(t, dim, at, at+s, 1)
		at += s
	}
	return out
}

// ChunkSizes returns the piece sizes torch.chunk uses to cut a dimension
// of size n into at most chunks pieces: ceil(n/chunks) each, the last one
// smaller, possibly fewer pieces than asked; a dimension of size 0 gives
// chunks empty pieces.
func ChunkSizes(n, chunks int) []int {
	if chunks < 1 {
		panic(fmt.Sprintf("tensor: Chunk: %d chunks", chunks))
	}
	if n == 0 {
		return make([]int, chunks)
	}
	per := (n + chunks - 1) / chunks
	var sizes []int
	for at := 0; at < n; at += per {
		sizes = append(sizes, min(per, n-at))
	}
	return sizes
}

// Chunk cuts t along dim into at most n pieces as torch.chunk does (see
// ChunkSizes).
func Chunk(t *Tensor, n, dim int) []*Tensor {
	dim = t.axis("Chunk", dim)
	return Split(t, ChunkSizes(t.Shape()[dim], n), dim)
}

// Squeeze removes dimensions of size 1: all of them when dims is empty,
// else those listed that have size 1 (torch.squeeze). The result shares
// storage with t.
func Squeeze(t *Tensor, dims ...int) *Tensor {
	sh := t.Shape()
	drop := make([]bool, len(sh))
	if len(dims) == 0 {
		for i, d := range sh {
			drop[i] = d == 1
		}
	}
	for _, d := range dims {
		if len(sh) == 0 && (d == 0 || d == -1) {
			continue
		}
		d = t.axis("Squeeze", d)
		drop[d] = sh[d] == 1
	}
	var shape []int
	newAxis := make([]int, len(sh))
	for i, d := range sh {
		newAxis[i] = len(shape)
		if !drop[i] {
			shape = append(shape, d)
		}
	}
	q := shQPAxis(t.qparams, func(a int) int {
		if drop[a] {
			panic(fmt.Sprintf("tensor: Squeeze: cannot remove per-channel axis %d of %v", a, sh))
		}
		return newAxis[a]
	})
	return shReshare(t, append([]int{}, shape...), q)
}

// Unsqueeze inserts a dimension of size 1 at position dim, in
// [-(n+1), n] (torch.unsqueeze). The result shares storage with t.
func Unsqueeze(t *Tensor, dim int) *Tensor {
	sh := t.Shape()
	dim = shAxisIncl("Unsqueeze", len(sh), dim)
	shape := make([]int, 0, len(sh)+1)
	shape = append(shape, sh[:dim]...)
	shape = append(shape, 1)
	shape = append(shape, sh[dim:]...)
	q := shQPAxis(t.qparams, func(a int) int {
		if a >= dim {
			return a + 1
		}
		return a
	})
	return shReshare(t, shape, q)
}

// Flatten merges dimensions startDim..endDim (inclusive, negative counting
// from the end) into one (torch.flatten). A 0-dimensional tensor becomes
// shape [1]. The result shares storage with t.
func Flatten(t *Tensor, startDim, endDim int) *Tensor {
	sh := t.Shape()
	if len(sh) == 0 {
		return shReshare(t, []int{1}, t.qparams.Clone())
	}
	s, e := t.axis("Flatten", startDim), t.axis("Flatten", endDim)
	if s > e {
		panic(fmt.Sprintf("tensor: Flatten: start dimension %d after end dimension %d", startDim, endDim))
	}
	shape := append([]int(nil), sh[:s]...)
	shape = append(shape, shProd(sh[s:e+1]))
	shape = append(shape, sh[e+1:]...)
	q := shQPAxis(t.qparams, func(a int) int {
		switch {
		case a < s:
			return a
		case a > e:
			return a - (e - s)
		}
		if shProd(sh[s:e+1]) != sh[a] {
			panic(fmt.Sprintf("tensor: Flatten: cannot merge per-channel axis %d of %v with other dimensions", a, sh))
		}
		return s
	})
	return shReshare(t, shape, q)
}

// Repeat tiles t reps[i] times along each dimension (torch.Tensor.repeat).
// reps needs at least t.NDim() entries; extra leading entries add leading
// dimensions.
func Repeat(t *Tensor, reps ...int) *Tensor {
	sh := t.Shape()
	if len(reps) < len(sh) {
		panic(fmt.Sprintf("tensor: Repeat: %d repeats for shape %v", len(reps), sh))
	}
	lead := len(reps) - len(sh)
	full := append(make([]int, lead), sh...)
	for i := 0; i < lead; i++ {
		full[i] = 1
	}
	st := Strides(full)
	shape := make([]int, len(full))
	vshape := make([]int, 0, 2*len(full))
	vstr := make([]int, 0, 2*len(full))
	for i, r := range reps {
		if r < 0 {
			panic(fmt.Sprintf("tensor: Repeat: negative repeat in %v", reps))
		}
		shape[i] = r * full[i]
		vshape = append(vshape, r, full[i])
		vstr = append(vstr, 0, st[i])
	}
	q := shQPAxis(t.qparams, func(a int) int { return a + lead })
	if shPerChannel(q) {
		a := q.Axis
		q = shQPTake(q, a, shape[a], func(i int) int { return i % full[a] })
	}
	out := shAlloc(t, shape, q)
	shCopyT(out, shContig(vshape), t, shView{shape: vshape, strides: vstr})
	return out
}

// Tile is torch.tile: like Repeat, but when reps has fewer entries than t
// has dimensions it is padded with leading ones.
func Tile(t *Tensor, reps ...int) *Tensor {
	if n := t.NDim(); len(reps) < n {
		r := make([]int, n)
		for i := range r {
			r[i] = 1
		}
		copy(r[n-len(reps):], reps)
		reps = r
	}
	return Repeat(t, reps...)
}

// Pad pads t with a constant value as torch.nn.functional.pad does in
// "constant" mode: pads holds (before, after) pairs starting from the last
// dimension, e.g. {left, right, top, bottom} for the last two dimensions.
// Negative pads crop. For integer dtypes value is converted like Set; for
// quantized tensors value is a real number, quantized with each channel's
// qparams (round half to even, saturated).
func Pad(t *Tensor, pads []int, value float32) *Tensor {
	sh := t.Shape()
	if len(pads)%2 != 0 || len(pads)/2 > len(sh) {
		panic(fmt.Sprintf("tensor: Pad: %d pads for shape %v (need an even number, at most 2 per dimension)", len(pads), sh))
	}
	n := len(sh)
	shape := append([]int(nil), sh...)
	srcShape := append([]int(nil), sh...)
	srcOff, dstOff := make([]int, n), make([]int, n)
	for i := 0; i < len(pads)/2; i++ {
		d := n - 1 - i
		lo, hi := pads[2*i], pads[2*i+1]
		shape[d] = sh[d] + lo + hi
		if shape[d] < 0 {
			panic(fmt.Sprintf("tensor: Pad: pads %v give a negative size for dimension %d of %v", pads, d, sh))
		}
		if (lo != 0 || hi != 0) && shPerChannel(t.qparams) && t.qparams.Axis == d {
			panic(fmt.Sprintf("tensor: Pad: cannot pad per-channel axis %d", d))
		}
		srcOff[d], dstOff[d] = max(0, -lo), max(0, lo)
		srcShape[d] = max(0, sh[d]-max(0, -lo)-max(0, -hi))
	}
	out := shAlloc(t, shape, t.qparams.Clone())
	shFill(out, value)
	sst, dst := Strides(sh), Strides(shape)
	so, do := 0, 0
	for d := range sh {
		so += srcOff[d] * sst[d]
		do += dstOff[d] * dst[d]
	}
	shCopyT(out, shView{shape: srcShape, strides: dst, off: do}, t, shView{shape: srcShape, strides: sst, off: so})
	return out
}

// shFill sets every element of t to v, converted to t's dtype (quantized
// with t's qparams for quantized dtypes).
func shFill(t *Tensor, v float32) {
	if t.dtype.IsQuantized() && t.qparams != nil {
		q := t.qparams
		nch, inner := 1, 1
		if shPerChannel(q) {
			nch = t.Shape()[q.Axis]
			inner = shProd(t.Shape()[q.Axis+1:])
		}
		vals := make([]float64, nch)
		for c := range vals {
			vals[c] = shQuantize(v, q, c, t.dtype)
		}
		n := t.Numel()
		for i := 0; i < n; i += inner {
			c := (i / inner) % nch
			for j := i; j < i+inner && j < n; j++ {
				shSetFlat(t, j, vals[c])
			}
		}
		return
	}
	if v == 0 {
		return
	}
	switch t.dtype.Storage() {
	case Float32:
		for i := range t.f32 {
			t.f32[i] = v
		}
	default:
		n := t.Numel()
		for i := 0; i < n; i++ {
			shSetFlat(t, i, float64(v))
		}
	}
}

// shQuantize quantizes v with channel c of q: saturate(RNE(v/scale)+zp).
func shQuantize(v float32, q *QParams, c int, dtype DType) float64 {
	pick := func(n int) int {
		if n == 1 {
			return 0
		}
		return c
	}
	scale := q.Scale[pick(len(q.Scale))]
	var r float64
	if len(q.ZeroPointF) > 0 {
		r = math.RoundToEven(float64(v/scale + q.ZeroPointF[pick(len(q.ZeroPointF))]))
	} else {
		r = math.RoundToEven(float64(v/scale)) + float64(q.ZeroPoint[pick(len(q.ZeroPoint))])
	}
	lo, hi := q.QuantMin, q.QuantMax
	if lo == 0 && hi == 0 {
		switch dtype {
		case QInt8:
			lo, hi = math.MinInt8, math.MaxInt8
		case QUInt8:
			lo, hi = 0, math.MaxUint8
		default:
			lo, hi = math.MinInt32, math.MaxInt32
		}
	}
	return max(float64(lo), min(r, float64(hi)))
}

// shSetFlat stores v (converted like Set) at flat position i.
func shSetFlat(t *Tensor, i int, v float64) {
	switch t.dtype.Storage() {
	case Float32:
		t.f32[i] = float32(v)
	case Int8:
		t.i8[i] = int8(v)
	case Uint8:
		t.u8[i] = uint8(v)
	case Int32:
		t.i32[i] = int32(v)
	case Int64:
		t.i64[i] = int64(v)
	case Bool:
		t.b[i] = v != 0
	}
}

// shNew is New with a non-nil shape, so that 0-dimensional results of
// every dtype report shape [].
func shNew(dtype DType, shape ...int) *Tensor {
	t := New(dtype, shape...)
	t.shape = append([]int{}, shape...)
	return t
}
