package tensor

import (
	"cmp"
	"fmt"
	"slices"
)

// This file holds indexing along a dimension: IndexSelect and its adjoint
// IndexAdd, Gather and its adjoint ScatterAdd, and TopK.
//
// Index tensors are int64 (or int32). Negative indices count from the end
// of the indexed dimension, as in ONNX Gather and GatherElements; PyTorch's
// index_select and gather reject them. An index outside [-n, n) panics.

// shIndices converts an int64/int32 index tensor to ints, resolving
// negative indices against a dimension of size n.
func shIndices(op string, idx *Tensor, n int) []int {
	var out []int
	switch idx.dtype {
	case Int64:
		out = make([]int, len(idx.i64))
		for i, v := range idx.i64 {
			out[i] = int(v)
		}
	case Int32:
		out = make([]int, len(idx.i32))
		for i, v := range idx.i32 {
			out[i] = int(v)
		}
	default:
		panic(fmt.Sprintf("tensor: %s: index tensor is %v, want int64 or int32", op, idx.dtype))
	}
	for i, v := range out {
		if v < 0 {
			v += n
		}
		if v < 0 || v >= n {
			panic(fmt.Sprintf("tensor: %s: index %d out of range for a dimension of size %d", op, out[i], n))
		}
		out[i] = v
	}
	return out
}

// shOIN splits shape around dim into outer, dim size and inner counts.
func shOIN(shape []int, dim int) (o, n, in int) {
	return shProd(shape[:dim]), shape[dim], shProd(shape[dim+1:])
}

func shIndexSelect[T any](dst, src []T, o, n, in int, idx []int) {
	k := len(idx)
	for a := 0; a < o; a++ {
		for i, j := range idx {
			copy(dst[(a*k+i)*in:(a*k+i+1)*in], src[(a*n+j)*in:(a*n+j+1)*in])
		}
	}
}

// IndexSelect returns the entries idx of t along dim (torch.index_select):
// the result has t's shape with dimension dim of size len(idx). idx is a
// 0- or 1-dimensional int64 or int32 tensor. Works for every dtype;
// per-channel qparams along dim are selected with their channels.
func IndexSelect(t *Tensor, dim int, idx *Tensor) *Tensor {
	dim = t.axis("IndexSelect", dim)
	if idx.NDim() > 1 {
		panic(fmt.Sprintf("tensor: IndexSelect: index must be 0- or 1-dimensional, got shape %v", idx.Shape()))
	}
	sh := t.Shape()
	ix := shIndices("IndexSelect", idx, sh[dim])
	shape := append([]int(nil), sh...)
	shape[dim] = len(ix)
	out := shAlloc(t, shape, shQPTake(t.qparams, dim, len(ix), func(i int) int { return ix[i] }))
	o, n, in := shOIN(sh, dim)
	switch t.dtype.Storage() {
	case Float32:
		shIndexSelect(out.f32, t.f32, o, n, in, ix)
	case Int8:
		shIndexSelect(out.i8, t.i8, o, n, in, ix)
	case Uint8:
		shIndexSelect(out.u8, t.u8, o, n, in, ix)
	case Int32:
		shIndexSelect(out.i32, t.i32, o, n, in, ix)
	case Int64:
		shIndexSelect(out.i64, t.i64, o, n, in, ix)
	case Bool:
		shIndexSelect(out.b, t.b, o, n, in, ix)
	}
	return out
}

// shNum is the element types that add.
type shNum interface {
	~float32 | ~int8 | ~uint8 | ~int32 | ~int64
}

func shIndexAdd[T shNum](dst, src []T, o, n, in int, idx []int) {
	k := len(idx)
	for a := 0; a < o; a++ {
		for i, j := range idx {
			d := dst[(a*n+j)*in : (a*n+j+1)*in]
			s := src[(a*k+i)*in : (a*k+i+1)*in]
			for e := range d {
				d[e] += s[e]
			}
		}
	}
}

// shNumeric panics unless t has plain (not quantized, not bool) numeric storage.
func shNumeric(op string, ts ...*Tensor) {
	for _, t := range ts {
		if t.dtype.IsQuantized() || t.dtype == Bool {
			panic(fmt.Sprintf("tensor: %s: %v tensors are not supported", op, t.dtype))
		}
		if t.dtype != ts[0].dtype {
			panic(fmt.Sprintf("tensor: %s: dtypes %v and %v differ", op, ts[0].dtype, t.dtype))
		}
	}
}

// IndexAdd returns a copy of t with src's entries i along dim added to
// t's entries idx[i] (torch.index_add); repeated indices accumulate in
// order. src has t's shape except that dimension dim has len(idx) entries.
// It is the adjoint of IndexSelect. Numeric dtypes only.
func IndexAdd(t *Tensor, dim int, idx, src *Tensor) *Tensor {
	dim = t.axis("IndexAdd", dim)
	shNumeric("IndexAdd", t, src)
	sh := t.Shape()
	ix := shIndices("IndexAdd", idx, sh[dim])
	want := append([]int(nil), sh...)
	want[dim] = len(ix)
	if !SameShape(src.Shape(), want) {
		panic(fmt.Sprintf("tensor: IndexAdd: source shape %v, want %v", src.Shape(), want))
	}
	out := t.Clone()
	o, n, in := shOIN(sh, dim)
	switch t.dtype.Storage() {
	case Float32:
		shIndexAdd(out.f32, src.f32, o, n, in, ix)
	case Int8:
		shIndexAdd(out.i8, src.i8, o, n, in, ix)
	case Uint8:
		shIndexAdd(out.u8, src.u8, o, n, in, ix)
	case Int32:
		shIndexAdd(out.i32, src.i32, o, n, in, ix)
	case Int64:
		shIndexAdd(out.i64, src.i64, o, n, in, ix)
	}
	return out
}

// shGatherPlan validates a gather/scatter index shape against the indexed
// tensor (and the source of a scatter) and returns the resolved indices.
func shGatherPlan(op string, t *Tensor, dim int, idx *Tensor, src *Tensor) []int {
	sh, ish := t.Shape(), idx.Shape()
	if len(ish) != len(sh) {
		panic(fmt.Sprintf("tensor: %s: index shape %v and tensor shape %v differ in rank", op, ish, sh))
	}
	for d := range sh {
		if d != dim && ish[d] > sh[d] {
			panic(fmt.Sprintf("tensor: %s: index shape %v larger than tensor shape %v outside dim %d", op, ish, sh, dim))
		}
		if src != nil && (len(src.Shape()) != len(ish) || ish[d] > src.Shape()[d]) {
			panic(fmt.Sprintf("tensor: %s: index shape %v larger than source shape %v", op, ish, src.Shape()))
		}
	}
	if len(sh) == 0 {
		return shIndices(op, idx, 1)
	}
	return shIndices(op, idx, sh[dim])
}

// shGatherWalk calls fn(p, tOff, sOff) for every index position p, where
// tOff is the offset in t (shape tsh) of position p with its coordinate
// along dim replaced by 0, and sOff the offset of p's coordinates in a
// tensor of shape ssh.
func shGatherWalk(ish, tsh, ssh []int, dim int, fn func(p, tOff, sOff int)) {
	if len(ish) == 0 {
		fn(0, 0, 0)
		return
	}
	ts, ss := Strides(tsh), Strides(ssh)
	tz := append([]int(nil), ts...)
	tz[dim] = 0
	o := shNewOdo(ish, tz, ss, 0, 0)
	n := shProd(ish)
	for p := 0; p < n; p++ {
		fn(p, o.a, o.b)
		o.next()
	}
}

func shGather[T any](dst, src []T, ix []int, ish, tsh []int, dim int) {
	stride := Strides(tsh)[dim]
	shGatherWalk(ish, tsh, ish, dim, func(p, tOff, _ int) {
		dst[p] = src[tOff+ix[p]*stride]
	})
}

// Gather picks values along dim by index (torch.gather):
// out[i][j][k] = t[idx[i][j][k]][j][k] for dim 0, and likewise for other
// dims. idx has t's rank and sizes no larger than t's outside dim; the
// result has idx's shape and t's dtype. Per-channel quantized tensors are
// only supported with their channel axis outside dim.
func Gather(t *Tensor, dim int, idx *Tensor) *Tensor {
	if t.NDim() == 0 && (dim == 0 || dim == -1) {
		dim = 0
	} else {
		dim = t.axis("Gather", dim)
	}
	ix := shGatherPlan("Gather", t, dim, idx, nil)
	ish := idx.Shape()
	q := t.qparams.Clone()
	if shPerChannel(q) {
		if q.Axis == dim {
			panic("tensor: Gather: cannot gather along the per-channel axis")
		}
		q = shQPTake(q, q.Axis, ish[q.Axis], func(i int) int { return i })
	}
	out := shAlloc(t, ish, q)
	tsh := t.Shape()
	if len(tsh) == 0 {
		tsh = []int{1}
		ish = []int{1}
	}
	switch t.dtype.Storage() {
	case Float32:
		shGather(out.f32, t.f32, ix, ish, tsh, dim)
	case Int8:
		shGather(out.i8, t.i8, ix, ish, tsh, dim)
	case Uint8:
		shGather(out.u8, t.u8, ix, ish, tsh, dim)
	case Int32:
		shGather(out.i32, t.i32, ix, ish, tsh, dim)
	case Int64:
		shGather(out.i64, t.i64, ix, ish, tsh, dim)
	case Bool:
		shGather(out.b, t.b, ix, ish, tsh, dim)
	}
	return out
}

func shScatterAdd[T shNum](dst, src []T, ix []int, ish, tsh, ssh []int, dim int) {
	stride := Strides(tsh)[dim]
	shGatherWalk(ish, tsh, ssh, dim, func(p, tOff, sOff int) {
		dst[tOff+ix[p]*stride] += src[sOff]
	})
}

// ScatterAdd returns a copy of t with src added at the positions idx
// names along dim (torch.scatter_add): for dim 0,
// out[idx[i][j][k]][j][k] += src[i][j][k]. idx has t's rank and sizes no
// larger than src's, and no larger than t's outside dim. Repeated indices
// accumulate in row-major order of idx. It is the adjoint of Gather.
// Numeric dtypes only.
func ScatterAdd(t *Tensor, dim int, idx, src *Tensor) *Tensor {
	shNumeric("ScatterAdd", t, src)
	if t.NDim() == 0 && (dim == 0 || dim == -1) {
		dim = 0
	} else {
		dim = t.axis("ScatterAdd", dim)
	}
	ix := shGatherPlan("ScatterAdd", t, dim, idx, src)
	out := t.Clone()
	ish, tsh, ssh := idx.Shape(), t.Shape(), src.Shape()
	if len(tsh) == 0 {
		ish, tsh, ssh = []int{1}, []int{1}, []int{1}
	}
	switch t.dtype.Storage() {
	case Float32:
		shScatterAdd(out.f32, src.f32, ix, ish, tsh, ssh, dim)
	case Int8:
		shScatterAdd(out.i8, src.i8, ix, ish, tsh, ssh, dim)
	case Uint8:
		shScatterAdd(out.u8, src.u8, ix, ish, tsh, ssh, dim)
	case Int32:
		shScatterAdd(out.i32, src.i32, ix, ish, tsh, ssh, dim)
	case Int64:
		shScatterAdd(out.i64, src.i64, ix, ish, tsh, ssh, dim)
	}
	return out
}

// shPair is a value with its index along the reduced dimension.
type shPair[T shNum] struct {
	v T
	i int
}

func shTopK[T shNum](vals []T, idx []int64, x []T, o, n, in, k int, largest bool) {
	line := make([]shPair[T], n)
	// NaN is the largest value, as in PyTorch; ties keep index order.
	isNaN := func(v T) bool { return v != v }
	less := func(a, b shPair[T]) int {
		an, bn := isNaN(a.v), isNaN(b.v)
		switch {
		case an && bn:
			return 0
		case an:
			return 1
		case bn:
			return -1
		}
		return cmp.Compare(a.v, b.v)
	}
	order := func(a, b shPair[T]) int {
		if largest {
			return -less(a, b)
		}
		return less(a, b)
	}
	for a := 0; a < o; a++ {
		for j := 0; j < in; j++ {
			for i := range line {
				line[i] = shPair[T]{x[(a*n+i)*in+j], i}
			}
			slices.SortStableFunc(line, order)
			for i := 0; i < k; i++ {
				p := (a*k+i)*in + j
				vals[p], idx[p] = line[i].v, int64(line[i].i)
			}
		}
	}
}

// TopK returns the k largest (or, with largest false, smallest) entries of
// t along dim, sorted, and their int64 indices (torch.topk with
// sorted=True). NaN counts as larger than every number, as in PyTorch;
// equal values keep their index order. Plain numeric dtypes and
// per-tensor quantized tensors (whose integer order is the real order).
func TopK(t *Tensor, k, dim int, largest bool) (values, indices *Tensor) {
	shOrderable("TopK", t, dim)
	dim = t.axis("TopK", dim)
	sh := t.Shape()
	if k < 0 || k > sh[dim] {
		panic(fmt.Sprintf("tensor: TopK: k=%d out of range for dimension %d of %v", k, dim, sh))
	}
	shape := append([]int(nil), sh...)
	shape[dim] = k
	values = shAlloc(t, shape, t.qparams.Clone())
	indices = shNew(Int64, shape...)
	o, n, in := shOIN(sh, dim)
	switch t.dtype.Storage() {
	case Float32:
		shTopK(values.f32, indices.i64, t.f32, o, n, in, k, largest)
	case Int8:
		shTopK(values.i8, indices.i64, t.i8, o, n, in, k, largest)
	case Uint8:
		shTopK(values.u8, indices.i64, t.u8, o, n, in, k, largest)
	case Int32:
		shTopK(values.i32, indices.i64, t.i32, o, n, in, k, largest)
	case Int64:
		shTopK(values.i64, indices.i64, t.i64, o, n, in, k, largest)
	}
	return values, indices
}

// shOrderable panics unless comparing t's stored values along dim compares
// the values they represent: plain numbers, or quantized tensors whose
// scale does not change along dim.
func shOrderable(op string, t *Tensor, dim int) {
	if t.dtype == Bool {
		panic(fmt.Sprintf("tensor: %s: bool tensors are not supported", op))
	}
	if q := t.qparams; t.dtype.IsQuantized() && shPerChannel(q) && t.NDim() > 0 && q.Axis == t.axis(op, dim) {
		panic(fmt.Sprintf("tensor: %s: cannot compare along the per-channel axis %d", op, q.Axis))
	}
}
