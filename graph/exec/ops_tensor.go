package exec

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/internal/kernels/qdyn"
	"github.com/quanta-go/quanta/tensor"
)

// This file holds the indexing and tensor-creating operators: Gather,
// GatherElements, GatherND, ScatterND, ScatterElements (and its older name
// Scatter), Cast, CastLike, ConstantOfShape, Range, NonZero, Trilu and
// OneHot, with the flat-index helpers the shape operators share.

func init() {
	register("Gather", 1, compileGather)
	register("GatherElements", 11, compileGatherElements)
	register("GatherND", 11, compileGatherND)
	register("ScatterND", 11, compileScatterND)
	register("ScatterElements", 11, compileScatterElements)
	register("Scatter", 9, compileScatterElements)
	register("Cast", 6, compileCast)
	register("CastLike", 15, compileCastLike)
	register("ConstantOfShape", 9, compileConstantOfShape)
	register("Range", 11, compileRange)
	register("NonZero", 9, compileNonZero)
	register("Trilu", 14, compileTrilu)
	register("OneHot", 9, compileOneHot)
}

// gatherFlat returns a tensor of t's dtype and the given shape whose
// element i is t's flat element idx[i].
func gatherFlat(t *tensor.Tensor, idx []int, shape []int) *tensor.Tensor {
	out := tensor.New(t.DType(), shape...)
	switch t.DType().Storage() {
	case tensor.Float32:
		gatherT(out.F32(), t.F32(), idx)
	case tensor.Int8:
		gatherT(out.I8(), t.I8(), idx)
	case tensor.Uint8:
		gatherT(out.U8(), t.U8(), idx)
	case tensor.Int32:
		gatherT(out.I32(), t.I32(), idx)
	case tensor.Int64:
		gatherT(out.I64(), t.I64(), idx)
	case tensor.Bool:
		gatherT(out.Bools(), t.Bools(), idx)
	}
	return out
}

func gatherT[T any](dst, src []T, idx []int) {
	for i, j := range idx {
		dst[i] = src[j]
	}
}

// scatterFlat combines src's element i into dst's flat element idx[i] in
// place: replacing it (reduction "none") or with add, mul, max or min.
func scatterFlat(dst, src *tensor.Tensor, idx []int, reduction string) error {
	if dst.DType() != src.DType() {
		return fmt.Errorf("updates are %s for data of %s", src.DType(), dst.DType())
	}
	if reduction != "none" && dst.DType() == tensor.Bool {
		return fmt.Errorf("reduction %q on bool data", reduction)
	}
	switch dst.DType().Storage() {
	case tensor.Float32:
		return scatterT(dst.F32(), src.F32(), idx, reduction)
	case tensor.Int8:
		return scatterT(dst.I8(), src.I8(), idx, reduction)
	case tensor.Uint8:
		return scatterT(dst.U8(), src.U8(), idx, reduction)
	case tensor.Int32:
		return scatterT(dst.I32(), src.I32(), idx, reduction)
	case tensor.Int64:
		return scatterT(dst.I64(), src.I64(), idx, reduction)
	case tensor.Bool:
		b := dst.Bools()
		for i, j := range idx {
			b[j] = src.Bools()[i]
		}
		return nil
	}
	return fmt.Errorf("data of type %s is not supported", dst.DType())
}

type scatterNum interface {
	~float32 | ~int8 | ~uint8 | ~int32 | ~int64
}

func scatterT[T scatterNum](dst, src []T, idx []int, reduction string) error {
	var f func(a, b T) T
	switch reduction {
	case "none":
		f = func(_, b T) T { return b }
	case "add":
		f = func(a, b T) T { return a + b }
	case "mul":
		f = func(a, b T) T { return a * b }
	case "max":
		f = func(a, b T) T { return max(a, b) }
	case "min":
		f = func(a, b T) T { return min(a, b) }
	default:
		return fmt.Errorf("unknown reduction %q", reduction)
	}
	for i, j := range idx {
		dst[j] = f(dst[j], src[i])
	}
	return nil
}

// readIndices reads an index tensor, resolving negative entries against a
// dimension of size n; entries outside [-n, n) are an error.
func readIndices(what string, t *tensor.Tensor, n int) ([]int, error) {
	v, err := ints64(t)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out := make([]int, len(v))
	for i, x := range v {
		if x < 0 {
			x += int64(n)
		}
		if x < 0 || x >= int64(n) {
			return nil, fmt.Errorf("%s: index %d out of range for a dimension of size %d", what, v[i], n)
		}
		out[i] = int(x)
	}
	return out, nil
}

func compileGather(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 2, 2); err != nil {
		return nil, err
	}
	ax, err := n.Int("axis", 0)
	if err != nil {
		return nil, err
	}
	return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
		x, ind := in[0], in[1]
		a, idx, err := axisIndices(x, ind, ax)
		if err != nil {
			return nil, err
		}
		sh := x.Shape()
		outer, inner := shapeNumel(sh[:a]), shapeNumel(sh[a+1:])
		flat := make([]int, 0, outer*len(idx)*inner)
		for o := 0; o < outer; o++ {
			for _, j := range idx {
				base := (o*sh[a] + j) * inner
				for k := 0; k < inner; k++ {
					flat = append(flat, base+k)
				}
			}
		}
		shape := append(append(append([]int{}, sh[:a]...), ind.Shape()...), sh[a+1:]...)
		return gatherFlat(x, flat, shape), nil
	}), nil
}

func shapeNumel(s []int) int {
	p := 1
	for _, d := range s {
		p *= d
	}
	return p
}

// axisIndices resolves the axis attribute ax against x's rank and reads
// the index tensor ind against x's size along that axis (Gather,
// GatherElements and ScatterElements).
func axisIndices(x, ind *tensor.Tensor, ax int64) (int, []int, error) {
	a, err := axis(ax, x.NDim())
	if err != nil {
		return 0, nil, err
	}
	idx, err := readIndices("indices", ind, x.Dim(a))
	if err != nil {
		return 0, nil, err
	}
	return a, idx, nil
}

// elementsPlan returns, for every element p of the index tensor ind, the
// flat offset in x of p with its coordinate on axis ax replaced by ind[p]
// (GatherElements and ScatterElements).
func elementsPlan(x, ind *tensor.Tensor, ax int64) ([]int, error) {
	dim, idx, err := axisIndices(x, ind, ax)
	if err != nil {
		return nil, err
	}
	dsh, ish := x.Shape(), ind.Shape()
	if len(ish) != len(dsh) {
		return nil, fmt.Errorf("indices have rank %d, data rank %d", len(ish), len(dsh))
	}
	for d := range dsh {
		if d != dim && ish[d] > dsh[d] {
			return nil, fmt.Errorf("indices of shape %v do not fit data of shape %v", ish, dsh)
		}
	}
	ds := tensor.Strides(dsh)
	out := make([]int, len(idx))
	pos := make([]int, len(ish))
	for p := range idx {
		off := idx[p] * ds[dim]
		for d, c := range pos {
			if d != dim {
				off += c * ds[d]
			}
		}
		out[p] = off
		for d := len(pos) - 1; d >= 0; d-- {
			pos[d]++
			if pos[d] < ish[d] {
				break
			}
			pos[d] = 0
		}
	}
	return out, nil
}

func compileGatherElements(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 2, 2); err != nil {
		return nil, err
	}
	ax, err := n.Int("axis", 0)
	if err != nil {
		return nil, err
	}
	return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
		x, ind := in[0], in[1]
		plan, err := elementsPlan(x, ind, ax)
		if err != nil {
			return nil, err
		}
		return gatherFlat(x, plan, ind.Shape()), nil
	}), nil
}

func compileScatterElements(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 3, 3); err != nil {
		return nil, err
	}
	ax, err := n.Int("axis", 0)
	if err != nil {
		return nil, err
	}
	red, err := n.StringAttr("reduction", "none")
	if err != nil {
		return nil, err
	}
	return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
		x, ind, upd := in[0], in[1], in[2]
		if !tensor.SameShape(ind.Shape(), upd.Shape()) {
			return nil, fmt.Errorf("indices %v and updates %v differ in shape", ind.Shape(), upd.Shape())
		}
		plan, err := elementsPlan(x, ind, ax)
		if err != nil {
			return nil, err
		}
		out := x.Clone()
		return out, scatterFlat(out, upd, plan, red)
	}), nil
}

// ndPlan returns, for GatherND and ScatterND, the flat offsets in data of
// the start of every slice the index tuples address, and the slice size.
func ndPlan(dsh []int, ind *tensor.Tensor, batch int) (starts []int, slice int, err error) {
	ish := ind.Shape()
	if len(ish) < 1 || batch < 0 || batch >= len(ish) || batch >= len(dsh)+1 {
		return nil, 0, fmt.Errorf("indices of shape %v with batch_dims %d for data of shape %v", ish, batch, dsh)
	}
	k := ish[len(ish)-1]
	if k < 0 || batch+k > len(dsh) {
		return nil, 0, fmt.Errorf("index tuples of length %d for data of rank %d (batch_dims %d)", k, len(dsh), batch)
	}
	for i := 0; i < batch; i++ {
		if ish[i] != dsh[i] {
			return nil, 0, fmt.Errorf("batch dimensions of indices %v and data %v differ", ish, dsh)
		}
	}
	v, err := ints64(ind)
	if err != nil {
		return nil, 0, fmt.Errorf("indices: %w", err)
	}
	ds := tensor.Strides(dsh)
	slice = shapeNumel(dsh[batch+k:])
	nb := shapeNumel(ish[:batch])
	tuples := shapeNumel(ish[:len(ish)-1])
	perBatch := 1
	if nb > 0 {
		perBatch = tuples / nb
	}
	batchStride := shapeNumel(dsh[batch:])
	starts = make([]int, tuples)
	for t := 0; t < tuples; t++ {
		off := 0
		if perBatch > 0 {
			off = t / perBatch * batchStride
		}
		for j := 0; j < k; j++ {
			x := v[t*k+j]
			dim := int64(dsh[batch+j])
			if x < 0 {
				x += dim
			}
			if x < 0 || x >= dim {
				return nil, 0, fmt.Errorf("index %d out of range for dimension %d of data %v", v[t*k+j], batch+j, dsh)
			}
			off += int(x) * ds[batch+j]
		}
		starts[t] = off
	}
	return starts, slice, nil
}

func expandPlan(starts []int, slice int) []int {
	flat := make([]int, 0, len(starts)*slice)
	for _, s := range starts {
		for i := 0; i < slice; i++ {
			flat = append(flat, s+i)
		}
	}
	return flat
}

func compileGatherND(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 2, 2); err != nil {
		return nil, err
	}
	batch, err := n.Int("batch_dims", 0)
	if err != nil {
		return nil, err
	}
	return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
		x, ind := in[0], in[1]
		starts, slice, err := ndPlan(x.Shape(), ind, int(batch))
		if err != nil {
			return nil, err
		}
		ish := ind.Shape()
		k := ish[len(ish)-1]
		shape := append(append([]int{}, ish[:len(ish)-1]...), x.Shape()[int(batch)+k:]...)
		return gatherFlat(x, expandPlan(starts, slice), shape), nil
	}), nil
}

func compileScatterND(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 3, 3); err != nil {
		return nil, err
	}
	red, err := n.StringAttr("reduction", "none")
	if err != nil {
		return nil, err
	}
	return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
		x, ind, upd := in[0], in[1], in[2]
		starts, slice, err := ndPlan(x.Shape(), ind, 0)
		if err != nil {
			return nil, err
		}
		ish := ind.Shape()
		want := append(append([]int{}, ish[:len(ish)-1]...), x.Shape()[ish[len(ish)-1]:]...)
		if !tensor.SameShape(upd.Shape(), want) {
			return nil, fmt.Errorf("updates have shape %v, want %v", upd.Shape(), want)
		}
		out := x.Clone()
		return out, scatterFlat(out, upd, expandPlan(starts, slice), red)
	}), nil
}

// castTo converts t to the ONNX element type to: values are computed in
// the dtype quanta holds the type in (see graph.ElemType.DType), rounded to
// float16 or bfloat16 precision and wrapped to 16-bit or unsigned 32-bit
// integer ranges when the type is narrower than its holder.
func castTo(t *tensor.Tensor, to graph.ElemType) (*tensor.Tensor, error) {
	d, ok := to.DType()
	if !ok {
		return nil, fmt.Errorf("cast to %s is not supported", to)
	}
	if t.DType().IsQuantized() {
		return nil, fmt.Errorf("cast of a %s tensor", t.DType())
	}
	r := tensor.Cast(t, d)
	switch to {
	case graph.Float16:
		v := r.F32()
		for i, x := range v {
			v[i] = qdyn.Float16ToFloat32(qdyn.Float32ToFloat16(x))
		}
	case graph.BFloat16:
		v := r.F32()
		for i, x := range v {
			v[i] = roundBFloat16(x)
		}
	case graph.Int16:
		v := r.I32()
		if t.DType() == tensor.Int64 {
			for i, x := range t.I64() {
				v[i] = int32(int16(x))
			}
			break
		}
		for i, x := range v {
			v[i] = int32(int16(x))
		}
	case graph.Uint16:
		v := r.I32()
		if t.DType() == tensor.Int64 {
			for i, x := range t.I64() {
				v[i] = int32(uint16(x))
			}
			break
		}
		for i, x := range v {
			v[i] = int32(uint16(x))
		}
	case graph.Uint32:
		v := r.I64()
		for i, x := range v {
			v[i] = int64(uint32(x))
		}
	}
	return r, nil
}

// roundBFloat16 rounds x to the nearest bfloat16, ties to even (NaN stays
// NaN).
func roundBFloat16(x float32) float32 {
	if x != x {
		return x
	}
	b := math.Float32bits(x)
	b += 0x7fff + (b>>16)&1
	return math.Float32frombits(b &^ 0xffff)
}

func compileCast(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 1, 1); err != nil {
		return nil, err
	}
	to, err := n.Int("to", -1)
	if err != nil {
		return nil, err
	}
	if to < 0 {
		return nil, fmt.Errorf("attribute to is required")
	}
	et := graph.ElemType(to)
	if _, ok := et.DType(); !ok {
		return nil, fmt.Errorf("cast to %s is not supported", et)
	}
	return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) { return castTo(in[0], et) }), nil
}

func compileCastLike(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 2, 2); err != nil {
		return nil, err
	}
	declared := n.Inputs[1].Type.Elem
	return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
		et := graph.ElemTypeOf(in[1].DType())
		if d, ok := declared.DType(); ok && d == in[1].DType() {
			et = declared // float16, bfloat16, double: keep the declared precision
		}
		return castTo(in[0], et)
	}), nil
}

func compileConstantOfShape(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 1, 1); err != nil {
		return nil, err
	}
	v, err := n.Tensor("value")
	if err != nil {
		return nil, err
	}
	if v == nil {
		v = tensor.Scalar(0)
	}
	if v.Numel() != 1 {
		return nil, fmt.Errorf("value must hold one element, has shape %v", v.Shape())
	}
	v = v.Reshape()
	return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
		shape, err := shapeInput("shape", in[0])
		if err != nil {
			return nil, err
		}
		return tensor.Expand(v, shape...), nil
	}), nil
}

func compileRange(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 3, 3); err != nil {
		return nil, err
	}
	return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
		dt := in[0].DType()
		for i, t := range in {
			if t.DType() != dt || t.Numel() != 1 {
				return nil, fmt.Errorf("input %d is %s%v; start, limit and delta must be scalars of one type", i, t.DType(), t.Shape())
			}
		}
		switch dt {
		case tensor.Float32:
			start, limit, delta := in[0].F32()[0], in[1].F32()[0], in[2].F32()[0]
			if delta == 0 {
				return nil, fmt.Errorf("delta is 0")
			}
			cnt := math.Ceil(float64(limit-start) / float64(delta))
			if !(cnt < 1<<31) {
				return nil, fmt.Errorf("range of %g to %g by %g is too long", start, limit, delta)
			}
			out := make([]float32, max(0, int(cnt)))
			v := start
			for i := range out {
				out[i] = v
				v += delta // ONNX's definition accumulates
			}
			return tensor.FromFloat32(out, len(out)), nil
		case tensor.Int32, tensor.Int64:
			var v [3]int64
			for i, t := range in {
				x, _ := ints64(t)
				v[i] = x[0]
			}
			start, limit, delta := v[0], v[1], v[2]
			if delta == 0 {
				return nil, fmt.Errorf("delta is 0")
			}
			var cnt int64
			if delta > 0 && limit > start {
				cnt = (limit - start + delta - 1) / delta
			} else if delta < 0 && limit < start {
				cnt = (start - limit - delta - 1) / -delta
			}
			if cnt > 1<<31 {
				return nil, fmt.Errorf("range of %d to %d by %d is too long", start, limit, delta)
			}
			out := make([]int64, cnt)
			for i := range out {
				out[i] = start + int64(i)*delta
			}
			r := tensor.FromInt64(out, len(out))
			if dt == tensor.Int32 {
				r = tensor.Cast(r, tensor.Int32)
			}
			return r, nil
		}
		return nil, fmt.Errorf("Range of %s is not supported", dt)
	}), nil
}

// nonZeroMask returns whether each element of t is nonzero.
func nonZeroMask(t *tensor.Tensor) []bool {
	if t.DType() == tensor.Bool {
		return t.Bools()
	}
	return tensor.Cast(t, tensor.Bool).Bools()
}

func compileNonZero(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 1, 1); err != nil {
		return nil, err
	}
	return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
		x := in[0]
		sh := x.Shape()
		if len(sh) == 0 {
			sh = []int{1} // a scalar counts as a 1-element vector, as numpy
		}
		mask := nonZeroMask(x)
		var hits []int
		for i, b := range mask {
			if b {
				hits = append(hits, i)
			}
		}
		r, nnz := len(sh), len(hits)
		out := make([]int64, r*nnz)
		st := tensor.Strides(sh)
		for j, flat := range hits {
			for d := 0; d < r; d++ {
				out[d*nnz+j] = int64(flat / st[d] % sh[d])
			}
		}
		return tensor.FromInt64(out, r, nnz), nil
	}), nil
}

func compileTrilu(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 1, 2); err != nil {
		return nil, err
	}
	upper, err := n.Int("upper", 1)
	if err != nil {
		return nil, err
	}
	return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
		x := in[0]
		if x.NDim() < 2 {
			return nil, fmt.Errorf("input must have rank 2 or more, has shape %v", x.Shape())
		}
		var k int64
		if len(in) > 1 && in[1] != nil {
			v, err := ints64(in[1])
			if err != nil || len(v) != 1 {
				return nil, fmt.Errorf("k must be one integer")
			}
			k = v[0]
		}
		rows, cols := x.Dim(-2), x.Dim(-1)
		keep := make([]bool, rows*cols)
		for i := 0; i < rows; i++ {
			for j := 0; j < cols; j++ {
				d := int64(j - i)
				keep[i*cols+j] = (upper != 0 && d >= k) || (upper == 0 && d <= k)
			}
		}
		return tensor.Where(tensor.FromBool(keep, rows, cols), x, tensor.New(x.DType(), 1)), nil
	}), nil
}

func compileOneHot(c *CompileContext, n *graph.Node) (Kernel, error) {
	if err := nIn(n, 3, 3); err != nil {
		return nil, err
	}
	ax, err := n.Int("axis", -1)
	if err != nil {
		return nil, err
	}
	return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
		ind, depthT, values := in[0], in[1], in[2]
		if depthT.Numel() != 1 {
			return nil, fmt.Errorf("depth must hold one value, has shape %v", depthT.Shape())
		}
		if values.Numel() != 2 {
			return nil, fmt.Errorf("values must hold [off, on], has shape %v", values.Shape())
		}
		depth := int64(depthT.At())
		if depth < 1 {
			return nil, fmt.Errorf("depth %d must be positive", depth)
		}
		sh := ind.Shape()
		r := len(sh) + 1
		a, err := axis(ax, r)
		if err != nil {
			return nil, err
		}
		idx := tensor.Cast(ind, tensor.Int64).I64()
		outer, inner := shapeNumel(sh[:a]), shapeNumel(sh[a:])
		shape := append(append(append([]int{}, sh[:a]...), int(depth)), sh[a:]...)
		pick := make([]int, outer*int(depth)*inner)
		for o := 0; o < outer; o++ {
			for i := 0; i < inner; i++ {
				v := idx[o*inner+i]
				if v < 0 {
					v += depth
				}
				if v >= 0 && v < depth {
					pick[(o*int(depth)+int(v))*inner+i] = 1
				}
			}
		}
		return gatherFlat(values, pick, shape), nil
	}), nil
}
