package exec

import (
	"fmt"
	"math"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

func TestQuantizeLinear(t *testing.T) {
	// Ties round to even; results saturate.
	x := tensor.FromFloat32([]float32{2.5, 3.5, -2.5, -3.5, 0.49, 1000, -1000}, 7)
	one := tensor.Scalar(1)
	zp := tensor.FromUint8([]uint8{128}).Reshape()
	r := mustOp(t, 13, "QuantizeLinear", nil, x, one, zp)
	expect(t, "uint8", r, tensor.Uint8, []int{7}, 130, 132, 126, 124, 128, 255, 0)
	r = mustOp(t, 13, "QuantizeLinear", nil, x, one)
	expect(t, "no zero point", r, tensor.Uint8, []int{7}, 2, 4, 0, 0, 0, 255, 0)
	r = mustOp(t, 10, "QuantizeLinear", nil, x, tensor.Scalar(0.5), tensor.FromInt8([]int8{-1}).Reshape())
	expect(t, "int8", r, tensor.Int8, []int{7}, 4, 6, -6, -8, 0, 127, -128)
	// int32 input.
	r = mustOp(t, 13, "QuantizeLinear", nil, tensor.FromInt32([]int32{5, -7}, 2), tensor.Scalar(2), tensor.FromInt8([]int8{0}).Reshape())
	expect(t, "int32 input", r, tensor.Int8, []int{2}, 2, -4)
	// Per axis (axis 0 of a [2, 3] tensor).
	m := tensor.FromFloat32([]float32{1, 2, 3, 1, 2, 3}, 2, 3)
	r = mustOp(t, 13, "QuantizeLinear", map[string]*graph.Attr{"axis": graph.AInt(0)}, m,
		tensor.FromFloat32([]float32{1, 0.5}, 2), tensor.FromInt8([]int8{0, -10}, 2))
	expect(t, "per axis", r, tensor.Int8, []int{2, 3}, 1, 2, 3, -8, -6, -4)
	_, err := runOp(13, "QuantizeLinear", nil, 1, m, tensor.FromFloat32([]float32{1, 0.5}, 2))
	wantErr(t, "axis size", err, "2 scales for dimension 1")
	_, err = runOp(21, "QuantizeLinear", map[string]*graph.Attr{"block_size": graph.AInt(2)}, 1, m, one)
	wantErr(t, "blocked", err, "block_size 2")
	r = mustOp(t, 21, "QuantizeLinear", map[string]*graph.Attr{"output_dtype": graph.AInt(int64(graph.Int8))}, x, one)
	expect(t, "output_dtype", r, tensor.Int8, []int{7}, 2, 4, -2, -4, 0, 127, -128)
}

func TestDequantizeLinear(t *testing.T) {
	q := tensor.FromUint8([]uint8{0, 128, 255}, 3)
	r := mustOp(t, 13, "DequantizeLinear", nil, q, tensor.Scalar(0.5), tensor.FromUint8([]uint8{128}).Reshape())
	expect(t, "uint8", r, tensor.Float32, []int{3}, -64, 0, 63.5)
	// int32 per axis (axis 1 of [1, 2, 2]), as biases are stored.
	b := tensor.FromInt32([]int32{1000, -1000, 7, 8}, 1, 2, 2)
	r = mustOp(t, 13, "DequantizeLinear", map[string]*graph.Attr{"axis": graph.AInt(1)}, b, tensor.FromFloat32([]float32{0.25, 2}, 2))
	expect(t, "int32 per axis", r, tensor.Float32, []int{1, 2, 2}, 250, -250, 14, 16)
	// int8 per tensor: every code, against (q - zp) * scale.
	codes := make([]int8, 256)
	want := make([]float64, 256)
	for i := range codes {
		codes[i] = int8(i - 128)
		want[i] = float64(float32(int32(codes[i])-(-3)) * float32(0.37))
	}
	r = mustOp(t, 13, "DequantizeLinear", nil, tensor.FromInt8(codes, 256), tensor.Scalar(0.37), tensor.FromInt8([]int8{-3}).Reshape())
	expect(t, "int8", r, tensor.Float32, []int{256}, want...)
	// Without a zero point: uint8, zero point 0.
	r = mustOp(t, 13, "DequantizeLinear", nil, q, tensor.Scalar(0.5))
	expect(t, "uint8 without zero point", r, tensor.Float32, []int{3}, 0, 64, 127.5)
	_, err := runOp(13, "DequantizeLinear", nil, 1, q, tensor.Scalar(1), tensor.FromInt8([]int8{0}).Reshape())
	wantErr(t, "zero point type", err, "x is uint8 and its zero point int8")
}

func TestDynamicQuantizeLinear(t *testing.T) {
	out, err := runOp(11, "DynamicQuantizeLinear", nil, 3, tensor.FromFloat32([]float32{-1, 0, 2, 1}, 2, 2))
	if err != nil {
		t.Fatal(err)
	}
	// scale = 3/255, zero point = RNE(1/scale) = 85.
	s := float32(3) / 255
	expect(t, "scale", out[1], tensor.Float32, []int{}, float64(s))
	expect(t, "zero point", out[2], tensor.Uint8, []int{}, 85)
	expect(t, "y", out[0], tensor.Uint8, []int{2, 2}, 0, 85, 255, float64(85+math.RoundToEven(float64(1/s))))
	// Positive inputs: the range is extended to 0 (zero point 0).
	out, err = runOp(11, "DynamicQuantizeLinear", nil, 3, tensor.FromFloat32([]float32{1, 2.55}, 2))
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "positive zp", out[2], tensor.Uint8, []int{}, 0)
	expect(t, "positive y", out[0], tensor.Uint8, []int{2}, 100, 255)
}

// randQ returns n random values of an 8-bit dtype.
func randQ(g *tensor.RNG, dt tensor.DType, n int, shape ...int) *tensor.Tensor {
	if dt == tensor.Uint8 {
		v := make([]uint8, n)
		for i := range v {
			v[i] = uint8(g.IntN(256))
		}
		return tensor.FromUint8(v, shape...)
	}
	v := make([]int8, n)
	for i := range v {
		v[i] = int8(g.IntN(256) - 128)
	}
	return tensor.FromInt8(v, shape...)
}

// TestMatMulInteger compares with a naive product: a [2,1,M,K] uint8 with
// per-row zero points times b [3,K,N] int8 with per-column zero points.
func TestMatMulInteger(t *testing.T) {
	g := tensor.NewRNG(3)
	M, K, N := 3, 5, 4
	a := randQ(g, tensor.Uint8, 2*M*K, 2, 1, M, K)
	b := randQ(g, tensor.Int8, 3*K*N, 3, K, N)
	za := randQ(g, tensor.Uint8, M, M)
	zb := randQ(g, tensor.Int8, N, N)
	r := mustOp(t, 13, "MatMulInteger", nil, a, b, za, zb)
	if !tensor.SameShape(r.Shape(), []int{2, 3, M, N}) || r.DType() != tensor.Int32 {
		t.Fatalf("got %s%v", r.DType(), r.Shape())
	}
	av, bv, zav, zbv := a.U8(), b.I8(), za.U8(), zb.I8()
	for p := 0; p < 2; p++ {
		for q := 0; q < 3; q++ {
			for i := 0; i < M; i++ {
				for j := 0; j < N; j++ {
					var acc int32
					for k := 0; k < K; k++ {
						acc += (int32(av[(p*M+i)*K+k]) - int32(zav[i])) * (int32(bv[(q*K+k)*N+j]) - int32(zbv[j]))
					}
					if got := r.I32()[((p*3+q)*M+i)*N+j]; got != acc {
						t.Fatalf("[%d %d %d %d] = %d, want %d", p, q, i, j, got, acc)
					}
				}
			}
		}
	}
	// uint8 A [2, M, K] with one zero point times int8 B [K, N] with
	// per-column zero points runs on qgemm.
	a2 := randQ(g, tensor.Uint8, 2*M*K, 2, M, K)
	b2 := randQ(g, tensor.Int8, K*N, K, N)
	za2 := tensor.FromUint8([]uint8{77}).Reshape()
	r = mustOp(t, 13, "MatMulInteger", nil, a2, b2, za2, zb)
	if !tensor.SameShape(r.Shape(), []int{2, M, N}) {
		t.Fatalf("fast path shape %v", r.Shape())
	}
	for i := 0; i < 2*M; i++ {
		for j := 0; j < N; j++ {
			var acc int32
			for k := 0; k < K; k++ {
				acc += (int32(a2.U8()[i*K+k]) - 77) * (int32(b2.I8()[k*N+j]) - int32(zbv[j]))
			}
			if got := r.I32()[i*N+j]; got != acc {
				t.Fatalf("fast path [%d %d] = %d, want %d", i, j, got, acc)
			}
		}
	}
	// 1-D A: the row dimension is dropped.
	r = mustOp(t, 13, "MatMulInteger", nil, tensor.FromUint8([]uint8{1, 2}, 2), tensor.FromUint8([]uint8{3, 4, 5, 6}, 2, 2), tensor.FromUint8([]uint8{1}).Reshape())
	expect(t, "1-D", r, tensor.Int32, []int{2}, 5, 6)
}

// naiveConv is a direct N-d convolution of zero-point-shifted values
// (padding contributes nothing), used as the reference.
func naiveConv(x, w []int32, xsh, wsh, strides, dils, padBegin, outSp []int, group int) []int32 {
	nd := len(xsh) - 2
	N, C, M := xsh[0], xsh[1], wsh[0]
	cg, mg := C/group, M/group
	inSp, kSp := xsh[2:], wsh[2:]
	P, K := shapeNumel(outSp), shapeNumel(kSp)
	out := make([]int32, N*M*P)
	oc, kc := make([]int, nd), make([]int, nd)
	for n := 0; n < N; n++ {
		for m := 0; m < M; m++ {
			gr := m / mg
			for p := 0; p < P; p++ {
				unflatten(p, outSp, oc)
				var acc int32
				for c := 0; c < cg; c++ {
					for k := 0; k < K; k++ {
						unflatten(k, kSp, kc)
						off, ok := 0, true
						for d := 0; d < nd; d++ {
							i := oc[d]*strides[d] - padBegin[d] + kc[d]*dils[d]
							if i < 0 || i >= inSp[d] {
								ok = false
								break
							}
							off = off*inSp[d] + i
						}
						if ok {
							acc += x[(n*C+gr*cg+c)*shapeNumel(inSp)+off] * w[(m*cg+c)*K+k]
						}
					}
				}
				out[(n*M+m)*P+p] = acc
			}
		}
	}
	return out
}

func shifted(t, zp *tensor.Tensor, perChannel int) []int32 {
	v, _ := int32s(t)
	z, _ := int32s(zp)
	out := make([]int32, len(v))
	per := len(v) / max(1, perChannel)
	for i, x := range v {
		k := 0
		if len(z) > 1 {
			k = i / per
		}
		out[i] = x - z[k]
	}
	return out
}

func TestConvIntegerAndQLinearConv(t *testing.T) {
	g := tensor.NewRNG(11)
	cases := []struct {
		xsh, wsh                []int
		attrs                   map[string]*graph.Attr
		strides, dils, pad, out []int
		group                   int
	}{
		{[]int{2, 4, 7, 6}, []int{6, 2, 3, 2}, map[string]*graph.Attr{
			"group": graph.AInt(2), "strides": graph.AInts(2, 1), "dilations": graph.AInts(2, 1), "pads": graph.AInts(1, 0, 2, 1)},
			[]int{2, 1}, []int{2, 1}, []int{1, 0}, []int{3, 6}, 2},
		{[]int{1, 3, 5, 5}, []int{2, 3, 3, 3}, map[string]*graph.Attr{"auto_pad": graph.AString("SAME_LOWER"), "strides": graph.AInts(2, 2)},
			[]int{2, 2}, []int{1, 1}, []int{1, 1}, []int{3, 3}, 1},
		{[]int{1, 2, 9}, []int{3, 2, 4}, map[string]*graph.Attr{"auto_pad": graph.AString("VALID"), "strides": graph.AInts(2)},
			[]int{2}, []int{1}, []int{0}, []int{3}, 1},
	}
	// uint8 x with int8 w runs on qgemm, int8 x with uint8 w on the plain
	// loops; both must equal the naive convolution.
	for run, ci := 0, 0; run < 2*len(cases); run, ci = run+1, (run+1)%len(cases) {
		c := cases[ci]
		xt, wt := tensor.Uint8, tensor.Int8
		if run >= len(cases) {
			xt, wt = tensor.Int8, tensor.Uint8
		}
		x := randQ(g, xt, shapeNumel(c.xsh), c.xsh...)
		w := randQ(g, wt, shapeNumel(c.wsh), c.wsh...)
		xzp := randQ(g, xt, 1).Reshape()
		wzp := randQ(g, wt, c.wsh[0], c.wsh[0])
		want := naiveConv(shifted(x, xzp, 1), shifted(w, wzp, c.wsh[0]), c.xsh, c.wsh, c.strides, c.dils, c.pad, c.out, c.group)
		oshape := append([]int{c.xsh[0], c.wsh[0]}, c.out...)
		r := mustOp(t, 13, "ConvInteger", c.attrs, x, w, xzp, wzp)
		if !tensor.SameShape(r.Shape(), oshape) {
			t.Fatalf("case %d: shape %v, want %v", ci, r.Shape(), oshape)
		}
		for i, v := range r.I32() {
			if v != want[i] {
				t.Fatalf("case %d: ConvInteger element %d = %d, want %d", ci, i, v, want[i])
			}
		}
		// QLinearConv: the same accumulators plus bias, requantized per
		// channel with M = float32(float32(sx*sw)/sy).
		sx, sy := float32(0.02), float32(0.7)
		sw := make([]float32, c.wsh[0])
		bias := make([]int32, c.wsh[0])
		for i := range sw {
			sw[i] = 0.01 + 0.02*float32(i)
			bias[i] = int32(g.IntN(2001) - 1000)
		}
		yzp := tensor.FromInt8([]int8{-5}).Reshape()
		q := mustOp(t, 13, "QLinearConv", c.attrs, x, tensor.Scalar(sx), xzp, w, tensor.FromFloat32(sw, len(sw)), wzp,
			tensor.Scalar(sy), yzp, tensor.FromInt32(bias, len(bias)))
		P := shapeNumel(c.out)
		for i, v := range q.I8() {
			ch := i / P % c.wsh[0]
			m := float32(float32(sx*sw[ch]) / sy)
			ref := math.RoundToEven(float64(float32(float32(want[i]+bias[ch])*m))) - 5
			ref = math.Max(-128, math.Min(127, ref))
			if float64(v) != ref {
				t.Fatalf("case %d: QLinearConv element %d = %d, want %v", ci, i, v, ref)
			}
		}
	}
}

func TestQLinearMatMul(t *testing.T) {
	g := tensor.NewRNG(5)
	M, K, N := 4, 6, 3
	a := randQ(g, tensor.Int8, M*K, M, K)
	b := randQ(g, tensor.Int8, K*N, K, N)
	sa, sy := float32(0.05), float32(0.3)
	sb := []float32{0.01, 0.02, 0.04}
	za, zb := tensor.FromInt8([]int8{3}).Reshape(), tensor.FromInt8([]int8{-2, 0, 5}, 3)
	y := mustOp(t, 13, "QLinearMatMul", nil, a, tensor.Scalar(sa), za, b, tensor.FromFloat32(sb, 3), zb, tensor.Scalar(sy), tensor.FromUint8([]uint8{100}).Reshape())
	if y.DType() != tensor.Uint8 || !tensor.SameShape(y.Shape(), []int{M, N}) {
		t.Fatalf("got %s%v", y.DType(), y.Shape())
	}
	for i := 0; i < M; i++ {
		for j := 0; j < N; j++ {
			var acc int32
			for k := 0; k < K; k++ {
				acc += (int32(a.I8()[i*K+k]) - 3) * (int32(b.I8()[k*N+j]) - int32(zb.I8()[j]))
			}
			m := float32(float32(sa*sb[j]) / sy)
			ref := math.Max(0, math.Min(255, math.RoundToEven(float64(float32(float32(acc)*m)))+100))
			if got := y.U8()[i*N+j]; float64(got) != ref {
				t.Fatalf("[%d %d] = %d, want %v (acc %d)", i, j, got, ref, acc)
			}
		}
	}
	_, err := runOp(13, "QLinearMatMul", nil, 1, a, tensor.Scalar(sa), za, b, tensor.FromFloat32([]float32{1, 2}, 2), zb, tensor.Scalar(sy), tensor.FromUint8([]uint8{100}).Reshape())
	wantErr(t, "scales", err, fmt.Sprintf("b_scale has 2 values, want 1 or %d", N))
}
