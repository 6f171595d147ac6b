package exec

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

// Hand-built single-node models for what the vendored ONNX cases do not
// cover: opsets before 7 or after 17, attribute forms of old opsets,
// constant weights, and edge cases. Expected values are hand-computed,
// from naive loops, or (antialiased Resize) from the ONNX reference's
// formulas evaluated in NumPy.

// nnCase is one node applied to inputs; consts marks inputs that are
// initializers (so compile-time preparation runs).
type nnCase struct {
	opset  int64
	op     string
	attrs  map[string]*graph.Attr
	in     []*tensor.Tensor
	consts []bool
	nOut   int
}

func (c nnCase) run() ([]*tensor.Tensor, error) {
	g := graph.New(c.op)
	var ins []*graph.Value
	feeds := map[string]*tensor.Tensor{}
	for i, t := range c.in {
		name := fmt.Sprintf("in%d", i)
		switch {
		case t == nil:
			ins = append(ins, nil)
		case i < len(c.consts) && c.consts[i]:
			ins = append(ins, g.AddInitializer(name, t))
		default:
			ins = append(ins, g.AddInput(name, graph.TypeOf(t)))
			feeds[name] = t
		}
	}
	nOut := max(c.nOut, 1)
	var outs []string
	for i := range nOut {
		outs = append(outs, fmt.Sprintf("out%d", i))
	}
	n := g.AddNode("n", c.op, ins, outs, c.attrs)
	g.Outputs = n.Outputs
	p, err := Compile(model(g, c.opset), Options{})
	if err != nil {
		return nil, err
	}
	res, err := p.Run(context.Background(), feeds)
	if err != nil {
		return nil, err
	}
	var ys []*tensor.Tensor
	for i := range nOut {
		ys = append(ys, res[fmt.Sprintf("out%d", i)])
	}
	return ys, nil
}

func (c nnCase) must(t *testing.T) []*tensor.Tensor {
	t.Helper()
	ys, err := c.run()
	if err != nil {
		t.Fatalf("%s (opset %d): %v", c.op, c.opset, err)
	}
	return ys
}

func nnF32(shape []int, v ...float32) *tensor.Tensor { return tensor.FromFloat32(v, shape...) }

func nnI64(shape []int, v ...int64) *tensor.Tensor {
	if len(shape) == 0 {
		return tensor.FromInt64(v, 1).Reshape()
	}
	return tensor.FromInt64(v, shape...)
}

func nnSeq(n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32((i*7)%11)*scale - 1
	}
	return v
}

// nnNear checks shape and values within 1e-5 relative (1e-6 absolute);
// NaN never matches.
func nnNear(t *testing.T, what string, got *tensor.Tensor, shape []int, want []float64) {
	t.Helper()
	if !tensor.SameShape(got.Shape(), shape) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape(), shape)
	}
	g := got.Float64s()
	for i := range want {
		if !(math.Abs(g[i]-want[i]) <= 1e-6+1e-5*math.Abs(want[i])) {
			t.Fatalf("%s: [%d] = %v, want %v (all %v)", what, i, g[i], want[i], g)
		}
	}
}

func TestOldOpsetPoolsAndInstanceNorm(t *testing.T) {
	x := nnF32([]int{1, 2, 2, 2}, 1, 2, 3, 6, -1, -5, 0, 2)
	y := nnCase{opset: 1, op: "GlobalAveragePool", in: []*tensor.Tensor{x}}.must(t)[0]
	nnNear(t, "GlobalAveragePool", y, []int{1, 2, 1, 1}, []float64{3, -1})
	y = nnCase{opset: 1, op: "GlobalMaxPool", in: []*tensor.Tensor{x}}.must(t)[0]
	nnNear(t, "GlobalMaxPool", y, []int{1, 2, 1, 1}, []float64{6, 2})
	y = nnCase{opset: 6, op: "InstanceNormalization", attrs: map[string]*graph.Attr{"epsilon": graph.AFloat(0)},
		in: []*tensor.Tensor{x, nnF32([]int{2}, 2, 1), nnF32([]int{2}, 0, 10)}}.must(t)[0]
	// Plane 0: mean 3, variance (4+1+0+9)/4 = 3.5.
	s := 2 / math.Sqrt(3.5)
	nnNear(t, "InstanceNormalization", y, []int{1, 2, 2, 2}, []float64{-2 * s, -s, 0, 3 * s})
}

func TestSoftmaxOpsetSemantics(t *testing.T) {
	x := nnF32([]int{2, 2, 2}, 0, 1, 2, 3, 0, 0, 1, 1)
	// Opset 11, axis 1: each [2*2] block normalized as one row.
	y := nnCase{opset: 11, op: "Softmax", in: []*tensor.Tensor{x}}.must(t)[0]
	e := []float64{1, math.E, math.Exp(2), math.Exp(3)}
	s := e[0] + e[1] + e[2] + e[3]
	e2 := 2 + 2*math.E
	nnNear(t, "Softmax-11", y, []int{2, 2, 2}, []float64{e[0] / s, e[1] / s, e[2] / s, e[3] / s, 1 / e2, 1 / e2, math.E / e2, math.E / e2})
	// Opset 13, axis 1: along the middle axis only.
	y = nnCase{opset: 13, op: "LogSoftmax", attrs: map[string]*graph.Attr{"axis": graph.AInt(1)}, in: []*tensor.Tensor{x}}.must(t)[0]
	l := math.Log(1 + math.Exp(2))
	nnNear(t, "LogSoftmax-13", y, []int{2, 2, 2}, []float64{-l, -l, 2 - l, 2 - l, -math.Log(1 + math.E), -math.Log(1 + math.E), 1 - math.Log(1+math.E), 1 - math.Log(1+math.E)})
}

func TestClipAttributesAndTopKAttribute(t *testing.T) {
	x := nnF32([]int{4}, -3, 0.5, 2, 9)
	y := nnCase{opset: 6, op: "Clip", attrs: map[string]*graph.Attr{"min": graph.AFloat(0), "max": graph.AFloat(3)}, in: []*tensor.Tensor{x}}.must(t)[0]
	nnNear(t, "Clip-6", y, []int{4}, []float64{0, 0.5, 2, 3})
	y = nnCase{opset: 13, op: "Clip", in: []*tensor.Tensor{nnI64([]int{4}, -3, 0, 2, 9), nnI64(nil, 5), nnI64(nil, 1)}}.must(t)[0]
	nnNear(t, "Clip int64 min>max", y, []int{4}, []float64{1, 1, 1, 1})
	ys := nnCase{opset: 1, op: "TopK", attrs: map[string]*graph.Attr{"k": graph.AInt(2)}, in: []*tensor.Tensor{x}, nOut: 2}.must(t)
	nnNear(t, "TopK-1 values", ys[0], []int{2}, []float64{9, 2})
	nnNear(t, "TopK-1 indices", ys[1], []int{2}, []float64{3, 2})
}

func TestReduceAxesInputs(t *testing.T) {
	x := nnF32([]int{2, 3}, 1, 2, 3, 4, 5, 6)
	for _, c := range []struct {
		opset int64
		op    string
		axes  *tensor.Tensor
		attrs map[string]*graph.Attr
		shape []int
		want  []float64
	}{
		{18, "ReduceMean", nnI64([]int{1}, 1), nil, []int{2, 1}, []float64{2, 5}},
		{18, "ReduceMax", nnI64([]int{1}, -2), map[string]*graph.Attr{"keepdims": graph.AInt(0)}, []int{3}, []float64{4, 5, 6}},
		{18, "ReduceProd", nil, nil, []int{1, 1}, []float64{720}},
		{18, "ReduceL2", nnI64([]int{0}), map[string]*graph.Attr{"noop_with_empty_axes": graph.AInt(1)}, []int{2, 3}, []float64{1, 2, 3, 4, 5, 6}},
		{13, "ReduceSum", nnI64([]int{2}, 0, 1), map[string]*graph.Attr{"keepdims": graph.AInt(0)}, []int{}, []float64{21}},
		{11, "ReduceSum", nil, map[string]*graph.Attr{"axes": graph.AInts(0)}, []int{1, 3}, []float64{5, 7, 9}},
		{17, "ReduceLogSumExp", nil, map[string]*graph.Attr{"axes": graph.AInts(1)}, []int{2, 1}, []float64{3 + math.Log(1+math.Exp(-1)+math.Exp(-2)), 6 + math.Log(1+math.Exp(-1)+math.Exp(-2))}},
	} {
		in := []*tensor.Tensor{x}
		if c.axes != nil {
			in = append(in, c.axes)
		}
		y := nnCase{opset: c.opset, op: c.op, attrs: c.attrs, in: in}.must(t)[0]
		nnNear(t, fmt.Sprintf("%s-%d", c.op, c.opset), y, c.shape, c.want)
	}
	// Integer reductions are exact.
	y := nnCase{opset: 18, op: "ReduceSum", in: []*tensor.Tensor{nnI64([]int{3}, 1<<60, 1, 2)}}.must(t)[0]
	if y.DType() != tensor.Int64 || y.I64()[0] != 1<<60+3 {
		t.Errorf("int64 ReduceSum = %v", y)
	}
	// axes as an attribute at opset 18 is an error.
	_, err := nnCase{opset: 18, op: "ReduceMean", attrs: map[string]*graph.Attr{"axes": graph.AInts(0)}, in: []*tensor.Tensor{x}}.run()
	if err == nil || !strings.Contains(err.Error(), "axes is an input") {
		t.Errorf("ReduceMean-18 with axes attribute: %v", err)
	}
}

func TestPadModes(t *testing.T) {
	x := nnF32([]int{2, 3}, 1, 2, 3, 4, 5, 6)
	y := nnCase{opset: 2, op: "Pad", attrs: map[string]*graph.Attr{"pads": graph.AInts(0, 1, 0, 0), "value": graph.AFloat(9)}, in: []*tensor.Tensor{x}}.must(t)[0]
	nnNear(t, "Pad-2", y, []int{2, 4}, []float64{9, 1, 2, 3, 9, 4, 5, 6})
	y = nnCase{opset: 19, op: "Pad", attrs: map[string]*graph.Attr{"mode": graph.AString("wrap")},
		in: []*tensor.Tensor{x, nnI64([]int{2}, 2, 1), nil, nnI64([]int{1}, -1)}}.must(t)[0]
	nnNear(t, "Pad-19 wrap", y, []int{2, 6}, []float64{2, 3, 1, 2, 3, 1, 5, 6, 4, 5, 6, 4})
	y = nnCase{opset: 18, op: "Pad", attrs: map[string]*graph.Attr{"mode": graph.AString("reflect")},
		in: []*tensor.Tensor{x, nnI64([]int{4}, 1, 2, 0, -1)}}.must(t)[0]
	nnNear(t, "Pad-18 reflect with crop", y, []int{3, 4}, []float64{6, 5, 4, 5, 3, 2, 1, 2, 6, 5, 4, 5})
	y = nnCase{opset: 13, op: "Pad", attrs: map[string]*graph.Attr{"mode": graph.AString("edge")},
		in: []*tensor.Tensor{nnI64([]int{2}, 7, 8), nnI64([]int{2}, 2, 1)}}.must(t)[0]
	nnNear(t, "Pad-13 edge int64", y, []int{5}, []float64{7, 7, 7, 8, 8})
}

func TestMaxPoolIndicesAndCeil(t *testing.T) {
	x := nnF32([]int{1, 1, 3, 3}, 1, 9, 2, 8, 3, 7, 4, 6, 5)
	attrs := map[string]*graph.Attr{"kernel_shape": graph.AInts(2, 2), "strides": graph.AInts(2, 2), "ceil_mode": graph.AInt(1), "storage_order": graph.AInt(1)}
	ys := nnCase{opset: 12, op: "MaxPool", attrs: attrs, in: []*tensor.Tensor{x}, nOut: 2}.must(t)
	nnNear(t, "MaxPool ceil", ys[0], []int{1, 1, 2, 2}, []float64{9, 7, 6, 5})
	// Column-major offsets h + 3*w: 9 at (0,1), 7 at (1,2), 6 at (2,1), 5 at (2,2).
	nnNear(t, "MaxPool indices", ys[1], []int{1, 1, 2, 2}, []float64{3, 7, 5, 8})
	// A last window starting in the end padding is dropped: 4 + 1 pad,
	// kernel 2, stride 2, ceil -> 2 (not 3).
	x4 := nnF32([]int{1, 1, 4}, 1, 2, 3, 4)
	y := nnCase{opset: 12, op: "AveragePool", attrs: map[string]*graph.Attr{"kernel_shape": graph.AInts(2), "strides": graph.AInts(3), "pads": graph.AInts(1, 1), "ceil_mode": graph.AInt(1), "count_include_pad": graph.AInt(1)},
		in: []*tensor.Tensor{x4}}.must(t)[0]
	nnNear(t, "AveragePool ceil", y, []int{1, 1, 2}, []float64{0.5, 3.5})
}

// nnNaiveConv1d is a direct 1-D convolution with asymmetric pads.
func nnNaiveConv1d(x []float32, n, c, l int, w []float32, o, k, group, stride, dil, pb, pe int, b []float32) ([]float64, int) {
	ol := (l+pb+pe-dil*(k-1)-1)/stride + 1
	cg, og := c/group, o/group
	y := make([]float64, n*o*ol)
	for ni := range n {
		for oc := range o {
			g := oc / og
			for p := range ol {
				s := float64(b[oc])
				for ci := range cg {
					for t := range k {
						i := p*stride - pb + t*dil
						if i >= 0 && i < l {
							s += float64(x[(ni*c+g*cg+ci)*l+i]) * float64(w[(oc*cg+ci)*k+t])
						}
					}
				}
				y[(ni*o+oc)*ol+p] = s
			}
		}
	}
	return y, ol
}

func TestConv1dGroupedAsymmetric(t *testing.T) {
	n, c, l, o, k := 2, 4, 11, 6, 3
	x := nnSeq(n*c*l, 0.25)
	w := nnSeq(o*(c/2)*k, 0.5)
	b := nnSeq(o, 1)
	want, ol := nnNaiveConv1d(x, n, c, l, w, o, k, 2, 2, 2, 3, 1, b)
	for _, constW := range []bool{false, true} {
		y := nnCase{opset: 11, op: "Conv", attrs: map[string]*graph.Attr{"group": graph.AInt(2), "strides": graph.AInts(2), "dilations": graph.AInts(2), "pads": graph.AInts(3, 1)},
			in: []*tensor.Tensor{nnF32([]int{n, c, l}, x...), nnF32([]int{o, c / 2, k}, w...), nnF32([]int{o}, b...)}, consts: []bool{false, constW, constW}}.must(t)[0]
		nnNear(t, "Conv1d", y, []int{n, o, ol}, want)
	}
	// SAME_LOWER puts the odd padding first: l=4, k=2, stride 1 -> pads (1, 0).
	y := nnCase{opset: 11, op: "Conv", attrs: map[string]*graph.Attr{"auto_pad": graph.AString("SAME_LOWER")},
		in: []*tensor.Tensor{nnF32([]int{1, 1, 4}, 1, 2, 3, 4), nnF32([]int{1, 1, 2}, 1, 10)}}.must(t)[0]
	nnNear(t, "Conv SAME_LOWER", y, []int{1, 1, 4}, []float64{10, 21, 32, 43})
}

func TestConvTranspose1dOutputPadding(t *testing.T) {
	// x [1,1,3], w [1,1,2] ones, stride 2: full output 6 = [1,1,2,2,3,3];
	// output_padding 1 appends a zero (plus bias).
	x := nnF32([]int{1, 1, 3}, 1, 2, 3)
	w := nnF32([]int{1, 1, 2}, 1, 1)
	y := nnCase{opset: 11, op: "ConvTranspose", attrs: map[string]*graph.Attr{"strides": graph.AInts(2), "output_padding": graph.AInts(1)},
		in: []*tensor.Tensor{x, w, nnF32([]int{1}, 0.5)}, consts: []bool{false, true, true}}.must(t)[0]
	nnNear(t, "ConvTranspose1d", y, []int{1, 1, 7}, []float64{1.5, 1.5, 2.5, 2.5, 3.5, 3.5, 0.5})
	// Asymmetric pads crop the full output.
	y = nnCase{opset: 11, op: "ConvTranspose", attrs: map[string]*graph.Attr{"strides": graph.AInts(2), "pads": graph.AInts(1, 2)},
		in: []*tensor.Tensor{x, w}}.must(t)[0]
	nnNear(t, "ConvTranspose1d pads", y, []int{1, 1, 3}, []float64{1, 2, 2})
}

func TestMatMulPackedAndGemmBroadcast(t *testing.T) {
	a := nnSeq(2*3*4, 0.5)
	b := nnSeq(4*5, 0.25)
	want := make([]float64, 2*3*5)
	for i := range 6 {
		for j := range 5 {
			var s float64
			for k := range 4 {
				s += float64(a[i*4+k]) * float64(b[k*5+j])
			}
			want[i*5+j] = s
		}
	}
	for _, constB := range []bool{false, true} {
		y := nnCase{opset: 13, op: "MatMul", in: []*tensor.Tensor{nnF32([]int{2, 3, 4}, a...), nnF32([]int{4, 5}, b...)}, consts: []bool{false, constB}}.must(t)[0]
		nnNear(t, "MatMul", y, []int{2, 3, 5}, want)
		y = nnCase{opset: 13, op: "MatMul", in: []*tensor.Tensor{nnF32([]int{4}, a[:4]...), nnF32([]int{4, 5}, b...)}, consts: []bool{false, constB}}.must(t)[0]
		nnNear(t, "MatMul 1-D A", y, []int{5}, want[:5])
	}
	// Gemm with C [M, 1] broadcast along columns and transA.
	y := nnCase{opset: 11, op: "Gemm", attrs: map[string]*graph.Attr{"transA": graph.AInt(1), "alpha": graph.AFloat(2), "beta": graph.AFloat(-1)},
		in: []*tensor.Tensor{nnF32([]int{2, 2}, 1, 2, 3, 4), nnF32([]int{2, 1}, 1, 1), nnF32([]int{2, 1}, 10, 20)}, consts: []bool{false, true, false}}.must(t)[0]
	nnNear(t, "Gemm", y, []int{2, 1}, []float64{2*4 - 10, 2*6 - 20})
}

func TestEinsumPatterns(t *testing.T) {
	a := nnSeq(2*3*4*5, 0.125)
	b := nnSeq(2*3*6*5, 0.25)
	// bhid,bhjd->bhij
	want := make([]float64, 2*3*4*6)
	for bh := range 6 {
		for i := range 4 {
			for j := range 6 {
				var s float64
				for d := range 5 {
					s += float64(a[(bh*4+i)*5+d]) * float64(b[(bh*6+j)*5+d])
				}
				want[(bh*4+i)*6+j] = s
			}
		}
	}
	y := nnCase{opset: 12, op: "Einsum", attrs: map[string]*graph.Attr{"equation": graph.AString("bhid,bhjd->bhij")},
		in: []*tensor.Tensor{nnF32([]int{2, 3, 4, 5}, a...), nnF32([]int{2, 3, 6, 5}, b...)}}.must(t)[0]
	nnNear(t, "bhid,bhjd->bhij", y, []int{2, 3, 4, 6}, want)
	m := nnF32([]int{2, 2}, 1, 2, 3, 4)
	for _, c := range []struct {
		eq    string
		in    []*tensor.Tensor
		shape []int
		want  []float64
	}{
		{"ij,jk->ik", []*tensor.Tensor{m, m}, []int{2, 2}, []float64{7, 10, 15, 22}},
		{"ij,jk", []*tensor.Tensor{m, m}, []int{2, 2}, []float64{7, 10, 15, 22}},
		{"i,i->", []*tensor.Tensor{nnF32([]int{3}, 1, 2, 3), nnF32([]int{3}, 4, 5, 6)}, []int{}, []float64{32}},
		{"ii->i", []*tensor.Tensor{m}, []int{2}, []float64{1, 4}},
		{"ii", []*tensor.Tensor{m}, []int{}, []float64{5}},
		{"ji", []*tensor.Tensor{m}, []int{2, 2}, []float64{1, 3, 2, 4}},
		{"i,j->ij", []*tensor.Tensor{nnF32([]int{2}, 1, 2), nnF32([]int{3}, 1, 10, 100)}, []int{2, 3}, []float64{1, 10, 100, 2, 20, 200}},
		{"...j,j->...", []*tensor.Tensor{m, nnF32([]int{2}, 1, -1)}, []int{2}, []float64{-1, -1}},
		{"ij,jk,kl->il", []*tensor.Tensor{m, m, m}, []int{2, 2}, []float64{37, 54, 81, 118}},
		{"...ij,...jk->...ik", []*tensor.Tensor{nnF32([]int{1, 2, 2}, 1, 2, 3, 4), nnF32([]int{3, 2, 1}, 1, 1, 1, 0, 0, 1)}, []int{3, 2, 1}, []float64{3, 7, 1, 3, 2, 4}},
	} {
		y := nnCase{opset: 12, op: "Einsum", attrs: map[string]*graph.Attr{"equation": graph.AString(c.eq)}, in: c.in}.must(t)[0]
		nnNear(t, c.eq, y, c.shape, c.want)
	}
}

func TestResizeLegacyAndAntialias(t *testing.T) {
	x := nnF32([]int{1, 1, 1, 4}, 1, 2, 3, 4)
	// Resize-10 nearest downsampling takes the ceiling of x/scale.
	y := nnCase{opset: 10, op: "Resize", in: []*tensor.Tensor{x, nnF32([]int{4}, 1, 1, 1, 0.5)}}.must(t)[0]
	nnNear(t, "Resize-10 nearest", y, []int{1, 1, 1, 2}, []float64{1, 3})
	y = nnCase{opset: 7, op: "Upsample", attrs: map[string]*graph.Attr{"scales": graph.AFloats(1, 1, 1, 2), "mode": graph.AString("linear")}, in: []*tensor.Tensor{x}}.must(t)[0]
	nnNear(t, "Upsample-7 linear", y, []int{1, 1, 1, 8}, []float64{1, 1.5, 2, 2.5, 3, 3.5, 4, 4})
	// Antialiased downsampling, values from the ONNX reference formulas.
	d := nnF32([]int{10}, 1, 2, 4, 8, 3, 5, 7, 0, 2, 6)
	for _, c := range []struct {
		mode  string
		scale float32
		want  []float64
	}{
		{"linear", 0.4, []float64{2.24, 5.2, 4.36, 3.4}},
		{"cubic", 0.4, []float64{2.1887, 5.5645, 4.1377, 3.1453}},
		{"linear", 0.6, []float64{1.375, 4.444444444444445, 5.125, 5.5, 2, 4.5}},
	} {
		y := nnCase{opset: 18, op: "Resize", attrs: map[string]*graph.Attr{"mode": graph.AString(c.mode), "antialias": graph.AInt(1)},
			in: []*tensor.Tensor{d, nil, nnF32([]int{1}, c.scale)}}.must(t)[0]
		nnNear(t, "antialias "+c.mode, y, []int{len(c.want)}, c.want)
	}
	// axes and keep_aspect_ratio_policy: sizes (3, 3) for a 2x4 plane with
	// not_larger gives scale 0.75 on both axes -> (2, 3) (round half up of 1.5).
	x2 := nnF32([]int{1, 2, 4}, 1, 2, 3, 4, 5, 6, 7, 8)
	y = nnCase{opset: 18, op: "Resize", attrs: map[string]*graph.Attr{"axes": graph.AInts(1, 2), "keep_aspect_ratio_policy": graph.AString("not_larger")},
		in: []*tensor.Tensor{x2, nil, nil, nnI64([]int{2}, 3, 3)}}.must(t)[0]
	if !tensor.SameShape(y.Shape(), []int{1, 2, 3}) {
		t.Errorf("keep_aspect_ratio_policy: shape %v", y.Shape())
	}
}

func TestNormAndDropoutOpsets(t *testing.T) {
	// BatchNormalization-7 with spatial=0: one parameter per position.
	x := nnF32([]int{1, 1, 2}, 1, 2)
	y := nnCase{opset: 7, op: "BatchNormalization", attrs: map[string]*graph.Attr{"spatial": graph.AInt(0), "epsilon": graph.AFloat(0)},
		in: []*tensor.Tensor{x, nnF32([]int{1, 2}, 1, 2), nnF32([]int{1, 2}, 0, 1), nnF32([]int{1, 2}, 1, 0), nnF32([]int{1, 2}, 1, 4)}}.must(t)[0]
	nnNear(t, "BatchNormalization spatial=0", y, []int{1, 1, 2}, []float64{0, 3})
	_, err := nnCase{opset: 15, op: "BatchNormalization", attrs: map[string]*graph.Attr{"training_mode": graph.AInt(1)},
		in: []*tensor.Tensor{x, nnF32([]int{1}, 1), nnF32([]int{1}, 0), nnF32([]int{1}, 0), nnF32([]int{1}, 1)}}.run()
	if err == nil || !strings.Contains(err.Error(), "training_mode") {
		t.Errorf("training BatchNormalization: %v", err)
	}
	ys := nnCase{opset: 7, op: "Dropout", in: []*tensor.Tensor{x}, nOut: 2}.must(t)
	nnNear(t, "Dropout-7 mask", ys[1], []int{1, 1, 2}, []float64{1, 1})
	if ys[1].DType() != tensor.Float32 {
		t.Errorf("Dropout-7 mask is %s, want float32", ys[1].DType())
	}
	ys = nnCase{opset: 12, op: "Dropout", in: []*tensor.Tensor{x}, nOut: 2}.must(t)
	if ys[1].DType() != tensor.Bool {
		t.Errorf("Dropout-12 mask is %s, want bool", ys[1].DType())
	}
	// LayerNormalization with only Y requested.
	y = nnCase{opset: 17, op: "LayerNormalization", in: []*tensor.Tensor{nnF32([]int{1, 2}, 1, 3), nnF32([]int{2}, 1, 1)}}.must(t)[0]
	nnNear(t, "LayerNormalization", y, []int{1, 2}, []float64{-1 / math.Sqrt(1+1e-5), 1 / math.Sqrt(1+1e-5)})
}

// TestThreadCountIndependence checks that the NN kernels give the same bits
// with 1, 2 and 3 threads.
func TestThreadCountIndependence(t *testing.T) {
	x := nnF32([]int{2, 3, 9, 7}, nnSeq(2*3*9*7, 0.3)...)
	w := nnF32([]int{4, 3, 3, 3}, nnSeq(4*3*3*3, 0.2)...)
	cases := []nnCase{
		{opset: 13, op: "Conv", attrs: map[string]*graph.Attr{"pads": graph.AInts(1, 0, 2, 1)}, in: []*tensor.Tensor{x, w}},
		{opset: 13, op: "MaxPool", attrs: map[string]*graph.Attr{"kernel_shape": graph.AInts(3, 2)}, in: []*tensor.Tensor{x}},
		{opset: 13, op: "ReduceSum", in: []*tensor.Tensor{x, nnI64([]int{2}, 1, 3)}},
		{opset: 13, op: "Softmax", in: []*tensor.Tensor{x}},
		{opset: 17, op: "LayerNormalization", in: []*tensor.Tensor{x, nnF32([]int{7}, nnSeq(7, 1)...)}},
		{opset: 13, op: "Resize", attrs: map[string]*graph.Attr{"mode": graph.AString("linear")}, in: []*tensor.Tensor{x, nil, nnF32([]int{4}, 1, 1, 1.7, 0.6)}},
	}
	for _, c := range cases {
		var ref []float32
		for _, th := range []int{1, 2, 3} {
			prev := parallel.SetNumThreads(th)
			y := c.must(t)[0]
			parallel.SetNumThreads(prev)
			if ref == nil {
				ref = y.F32()
				continue
			}
			for i, v := range y.F32() {
				if math.Float32bits(v) != math.Float32bits(ref[i]) {
					t.Fatalf("%s: %d threads differ at %d", c.op, th, i)
				}
			}
		}
	}
}
