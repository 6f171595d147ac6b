package exec

import (
	"math"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

func castAttr(to graph.ElemType) map[string]*graph.Attr {
	return map[string]*graph.Attr{"to": graph.AInt(int64(to))}
}

func TestCast(t *testing.T) {
	f := tensor.FromFloat32([]float32{-2.7, -0.5, 0, 0.5, 2.7, 300}, 6)
	expect(t, "float->int64", mustOp(t, 13, "Cast", castAttr(graph.Int64), f), tensor.Int64, []int{6}, -2, 0, 0, 0, 2, 300)
	expect(t, "float->int32", mustOp(t, 13, "Cast", castAttr(graph.Int32), f), tensor.Int32, []int{6}, -2, 0, 0, 0, 2, 300)
	expect(t, "float->bool", mustOp(t, 13, "Cast", castAttr(graph.Bool), f), tensor.Bool, []int{6}, 1, 1, 0, 1, 1, 1)
	b := tensor.FromBool([]bool{true, false}, 2)
	expect(t, "bool->float", mustOp(t, 13, "Cast", castAttr(graph.Float), b), tensor.Float32, []int{2}, 1, 0)
	expect(t, "bool->uint8", mustOp(t, 13, "Cast", castAttr(graph.Uint8), b), tensor.Uint8, []int{2}, 1, 0)
	i := tensor.FromInt64([]int64{70000, -3, 1 << 40}, 3)
	expect(t, "int64->int16", mustOp(t, 13, "Cast", castAttr(graph.Int16), i), tensor.Int32, []int{3}, 70000-65536, -3, 0)
	expect(t, "int64->uint32", mustOp(t, 13, "Cast", castAttr(graph.Uint32), i), tensor.Int64, []int{3}, 70000, 1<<32-3, 0)
	expect(t, "int64->float", mustOp(t, 13, "Cast", castAttr(graph.Double), i), tensor.Float32, []int{3}, 70000, -3, 1<<40)
	// float16: 1 + 2^-11 is a tie between 1 and 1 + 2^-10 and rounds to
	// even (1); 1 + 3*2^-11 rounds up to 1 + 2^-9; 70000 overflows to +Inf.
	h := tensor.FromFloat32([]float32{1 + 1.0/2048, 1 + 3.0/2048, 70000, 0.1}, 4)
	expect(t, "float->float16", mustOp(t, 13, "Cast", castAttr(graph.Float16), h), tensor.Float32, []int{4},
		1, 1+1.0/512, math.Inf(1), float64(float32(0.0999755859375)))
	// bfloat16 keeps 8 significant bits: 1 + 2^-8 ties to 1, 1 + 3*2^-8 to 1 + 2^-6.
	bf := tensor.FromFloat32([]float32{1 + 1.0/256, 1 + 3.0/256}, 2)
	expect(t, "float->bfloat16", mustOp(t, 13, "Cast", castAttr(graph.BFloat16), bf), tensor.Float32, []int{2}, 1, 1+1.0/64)
	_, err := runOp(13, "Cast", castAttr(graph.String), 1, f)
	wantErr(t, "string", err, "cast to string is not supported")
	// CastLike takes the second input's type.
	expect(t, "castlike", mustOp(t, 15, "CastLike", nil, f, tensor.FromInt8([]int8{0}, 1)), tensor.Int8, []int{6}, -2, 0, 0, 0, 2, 44)
}

func TestRangeConstantOfShape(t *testing.T) {
	s := func(v int64) *tensor.Tensor { return tensor.FromInt64([]int64{v}).Reshape() }
	expect(t, "int64 range", mustOp(t, 11, "Range", nil, s(10), s(1), s(-4)), tensor.Int64, []int{3}, 10, 6, 2)
	expect(t, "empty range", mustOp(t, 11, "Range", nil, s(1), s(10), s(-1)), tensor.Int64, []int{0})
	f := func(v float32) *tensor.Tensor { return tensor.Scalar(v) }
	// Accumulated in float32, as ONNX's definition: 0.1+0.1+0.1 != 0.3.
	r := mustOp(t, 11, "Range", nil, f(0), f(0.35), f(0.1))
	v := float32(0)
	var want []float64
	for k := 0; k < 4; k++ {
		want = append(want, float64(v))
		v += 0.1
	}
	expect(t, "float range", r, tensor.Float32, []int{4}, want...)
	_, err := runOp(11, "Range", nil, 1, s(0), s(1), s(0))
	wantErr(t, "delta 0", err, "delta is 0")
	c := mustOp(t, 9, "ConstantOfShape", map[string]*graph.Attr{"value": graph.ATensor(tensor.FromInt32([]int32{7}, 1))}, i64(2, 2))
	expect(t, "constant int32", c, tensor.Int32, []int{2, 2}, 7, 7, 7, 7)
	c = mustOp(t, 9, "ConstantOfShape", nil, i64())
	expect(t, "constant scalar", c, tensor.Float32, []int{}, 0)
}

func TestGatherScatter(t *testing.T) {
	x := iota32(3, 4)
	r := mustOp(t, 13, "Gather", map[string]*graph.Attr{"axis": graph.AInt(1)}, x, tensor.FromInt64([]int64{-1, 0}, 2, 1))
	expect(t, "gather", r, tensor.Float32, []int{3, 2, 1}, 3, 0, 7, 4, 11, 8)
	r = mustOp(t, 13, "Gather", nil, i64(5, 6, 7), tensor.FromInt32([]int32{2}, 1).Reshape())
	expect(t, "gather scalar index", r, tensor.Int64, []int{}, 7)
	_, err := runOp(13, "Gather", nil, 1, x, i64(3))
	wantErr(t, "out of range", err, "index 3 out of range")
	r = mustOp(t, 13, "GatherElements", map[string]*graph.Attr{"axis": graph.AInt(1)}, x, tensor.FromInt64([]int64{3, -4, 1, 1}, 2, 2))
	expect(t, "gather elements", r, tensor.Float32, []int{2, 2}, 3, 0, 5, 5)
	// ScatterElements with duplicate indices and reductions.
	data := tensor.FromInt64([]int64{1, 2, 3, 4}, 1, 4)
	idx := tensor.FromInt64([]int64{1, 1, -1}, 1, 3)
	upd := tensor.FromInt64([]int64{10, 20, 5}, 1, 3)
	for red, want := range map[string][]float64{"add": {1, 32, 3, 9}, "mul": {1, 400, 3, 20}, "max": {1, 20, 3, 5}, "min": {1, 2, 3, 4}} {
		r = mustOp(t, 18, "ScatterElements", map[string]*graph.Attr{"axis": graph.AInt(1), "reduction": graph.AString(red)}, data, idx, upd)
		expect(t, "scatter "+red, r, tensor.Int64, []int{1, 4}, want...)
	}
	// ScatterND updating rows.
	r = mustOp(t, 16, "ScatterND", map[string]*graph.Attr{"reduction": graph.AString("add")}, iota32(3, 2), tensor.FromInt64([]int64{2, 0, 2}, 3, 1), tensor.FromFloat32([]float32{1, 1, 2, 2, 3, 3}, 3, 2))
	expect(t, "scatternd add", r, tensor.Float32, []int{3, 2}, 2, 3, 2, 3, 8, 9)
	// GatherND with batch_dims 1.
	r = mustOp(t, 13, "GatherND", map[string]*graph.Attr{"batch_dims": graph.AInt(1)}, iota32(2, 3), tensor.FromInt64([]int64{2, 0}, 2, 1))
	expect(t, "gathernd", r, tensor.Float32, []int{2}, 2, 3)
}

func TestNonZeroTriluOneHot(t *testing.T) {
	r := mustOp(t, 13, "NonZero", nil, tensor.FromInt32([]int32{0, 5, 0, -1, 2, 0}, 2, 3))
	expect(t, "nonzero", r, tensor.Int64, []int{2, 3}, 0, 1, 1, 1, 0, 1)
	r = mustOp(t, 13, "NonZero", nil, tensor.FromBool([]bool{false, false}, 2))
	expect(t, "nonzero none", r, tensor.Int64, []int{1, 0})
	x := iota32(3, 3)
	k := tensor.FromInt64([]int64{-1}).Reshape()
	r = mustOp(t, 14, "Trilu", map[string]*graph.Attr{"upper": graph.AInt(0)}, x, k)
	expect(t, "tril -1", r, tensor.Float32, []int{3, 3}, 0, 0, 0, 3, 0, 0, 6, 7, 0)
	r = mustOp(t, 14, "Trilu", nil, tensor.FromInt64([]int64{1, 2, 3, 4, 5, 6}, 1, 2, 3))
	expect(t, "triu", r, tensor.Int64, []int{1, 2, 3}, 1, 2, 3, 0, 5, 6)
	vals := tensor.FromInt64([]int64{-1, 9}, 2)
	r = mustOp(t, 11, "OneHot", map[string]*graph.Attr{"axis": graph.AInt(0)}, tensor.FromFloat32([]float32{1.7, -1, 3}, 3), tensor.Scalar(3), vals)
	expect(t, "onehot axis 0", r, tensor.Int64, []int{3, 3}, -1, -1, -1, 9, -1, -1, -1, 9, -1)
}
