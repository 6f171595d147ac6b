package dynamic

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

func randTensor(r *rand.Rand, scale float64, shape ...int) *tensor.Tensor {
	t := tensor.New(tensor.Float32, shape...)
	for i := range t.F32() {
		t.F32()[i] = float32(r.NormFloat64() * scale)
	}
	return t
}

func TestPackLinearHand(t *testing.T) {
	// Scales that are powers of two make the codes exact: max |w| =
	// 127.5/64 gives scale 1/64, and 127.5 rounds to 128, saturating at
	// 127; per channel, row 1's max 127.5/128 gives scale 1/128.
	w := tensor.FromFloat32([]float32{1.9921875, -1, 0.99609375, -0.5}, 2, 2)
	p, err := PackLinear(w, nil, PerTensor)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Weight().I8(); got[0] != 127 || got[1] != -64 || got[2] != 64 || got[3] != -32 {
		t.Fatalf("per-tensor codes %v", got)
	}
	if q := p.Weight().QParams(); q.Scale[0] != 1.0/64 || q.ZeroPoint[0] != 0 || q.Scheme != tensor.PerTensorAffine {
		t.Fatalf("per-tensor qparams %+v", q)
	}
	p, err = PackLinear(w, nil, PerChannel)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Weight().I8(); got[0] != 127 || got[1] != -64 || got[2] != 127 || got[3] != -64 {
		t.Fatalf("per-channel codes %v", got)
	}
	if q := p.Weight().QParams(); q.Scale[0] != 1.0/64 || q.Scale[1] != 1.0/128 || q.Scheme != tensor.PerChannelAffine || len(q.ZeroPoint) != 2 {
		t.Fatalf("per-channel qparams %+v", q)
	}
	// All-zero weights: the scale is floored at float32 epsilon.
	p, err = PackLinear(tensor.Zeros(2, 3), nil, PerTensor)
	if err != nil || p.Weight().QParams().Scale[0] != float32(math.Nextafter32(1, 2)-1) {
		t.Fatalf("zero weights: %v %v", p.Weight().QParams(), err)
	}
}

func TestLinearHand(t *testing.T) {
	w := tensor.FromFloat32([]float32{1.9921875, -1, 0.99609375, -0.5}, 2, 2)
	p, err := PackLinear(w, tensor.FromFloat32([]float32{0.5, -1}, 2), PerTensor)
	if err != nil {
		t.Fatal(err)
	}
	// x = [-1, 3] under RuleTorch: scale 4/255, zero point 64, codes
	// [0, 255]. Weight codes [127, -64], [64, -32] with scale 1/64:
	// acc = -64*127 + 191*-64 = -20352 and -64*64 + 191*-32 = -10208.
	y, err := Linear(tensor.FromFloat32([]float32{-1, 3}, 1, 2), p, RuleTorch)
	if err != nil {
		t.Fatal(err)
	}
	s := float32(float32(4.0/255) * (1.0 / 64))
	want := []float32{float32(-20352)*s + 0.5, float32(-10208)*s - 1}
	if got := y.F32(); got[0] != want[0] || got[1] != want[1] || !tensor.SameShape(y.Shape(), []int{1, 2}) {
		t.Fatalf("y = %v %v, want %v", y.Shape(), got, want)
	}
	// The float layer gives nearly the same: [-1*1.99+3*-1, -1*0.996+3*-0.5] + b.
	if math.Abs(float64(y.F32()[0])-(-4.9921875+0.5)) > 0.05 || math.Abs(float64(y.F32()[1])-(-2.49609375-1)) > 0.05 {
		t.Fatalf("y = %v far from the float layer", y.F32())
	}
	// Under RuleONNX the scale is the same and the zero point RNE(63.75).
	y2, err := Linear(tensor.FromFloat32([]float32{-1, 3}, 1, 2), p, RuleONNX)
	if err != nil || y2.F32()[0] != want[0] {
		t.Fatalf("onnx: %v %v", y2, err)
	}
}

// naiveLinear is the float64 layer on the dequantized weights and
// activations, the value dynamic Linear approximates.
func naiveLinear(x []float32, m, k int, p *PackedLinear) []float64 {
	q := p.Weight().QParams()
	codes := p.Weight().I8()
	out := make([]float64, m*p.out)
	for i := 0; i < m; i++ {
		for j := 0; j < p.out; j++ {
			s := q.Scale[0]
			if len(q.Scale) > 1 {
				s = q.Scale[j]
			}
			var acc float64
			for c := 0; c < k; c++ {
				acc += float64(x[i*k+c]) * float64(codes[j*k+c]) * float64(s)
			}
			if p.bias != nil {
				acc += float64(p.bias[j])
			}
			out[i*p.out+j] = acc
		}
	}
	return out
}

func TestLinearApproximatesFloat(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, rule := range []Rule{RuleONNX, RuleTorch, RuleTorchReduceRange} {
		for _, scheme := range []WeightScheme{PerTensor, PerChannel} {
			m, k, n := 7, 50, 13
			p, err := PackLinear(randTensor(r, 0.5, n, k), randTensor(r, 1, n), scheme)
			if err != nil {
				t.Fatal(err)
			}
			x := randTensor(r, 2, m, k)
			y, err := Linear(x, p, rule)
			if err != nil {
				t.Fatal(err)
			}
			q, _ := ChooseQParams(x, rule)
			want := naiveLinear(x.F32(), m, k, p)
			wq := p.Weight()
			for i, v := range y.F32() {
				// Each activation code is off by at most half a step, so
				// |y - float| <= s_a/2 * sum_c |w[j][c]| (plus rounding).
				j := i % n
				s := wq.QParams().Scale[0]
				if scheme == PerChannel {
					s = wq.QParams().Scale[j]
				}
				var l1 float64
				for _, c := range wq.I8()[j*k : (j+1)*k] {
					l1 += math.Abs(float64(c) * float64(s))
				}
				tol := float64(q.Scale[0])/2*l1 + 1e-4
				if d := math.Abs(float64(v) - want[i]); d > tol {
					t.Fatalf("%v %v: y[%d] = %v, float %v", rule, scheme, i, v, want[i])
				}
			}
		}
	}
}

func TestLinearIntoAndRows(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	p, err := PackLinear(randTensor(r, 1, 9, 20), randTensor(r, 1, 9), PerChannel)
	if err != nil {
		t.Fatal(err)
	}
	x := randTensor(r, 1, 2, 3, 20)
	want, err := Linear(x, p, RuleTorchReduceRange)
	if err != nil || !tensor.SameShape(want.Shape(), []int{2, 3, 9}) {
		t.Fatalf("%v %v", want, err)
	}
	y := tensor.New(tensor.Float32, 2, 3, 9)
	if err := LinearInto(y, x, p, RuleTorchReduceRange); err != nil {
		t.Fatal(err)
	}
	for i, v := range y.F32() {
		if v != want.F32()[i] {
			t.Fatalf("LinearInto[%d] = %v, want %v", i, v, want.F32()[i])
		}
	}
	// Rows 0, 2, 4 of x as a strided view (stride 40), written at stride 11.
	xs := x.F32()
	ys := make([]float32, 2*11+9)
	if err := LinearRows(3, xs, 40, p, RuleTorch, ys, 11); err != nil {
		t.Fatal(err)
	}
	var picked []float32
	for _, r := range []int{0, 2, 4} {
		picked = append(picked, xs[r*20:(r+1)*20]...)
	}
	ref, _ := Linear(tensor.FromFloat32(picked, 3, 20), p, RuleTorch)
	for i := 0; i < 3; i++ {
		for j := 0; j < 9; j++ {
			if ys[i*11+j] != ref.F32()[i*9+j] {
				t.Fatalf("LinearRows[%d][%d] = %v, want %v", i, j, ys[i*11+j], ref.F32()[i*9+j])
			}
		}
		if i < 2 && ys[i*11+9] != 0 {
			t.Fatal("gap written")
		}
	}
}

func TestLinearErrors(t *testing.T) {
	p, err := PackLinear(tensor.Ones(3, 4), nil, PerTensor)
	if err != nil {
		t.Fatal(err)
	}
	nan := float32(math.NaN())
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"nan", second(Linear(tensor.FromFloat32([]float32{1, 2, nan, 4}, 1, 4), p, RuleTorch)), "NaN"},
		{"inf", second(Linear(tensor.FromFloat32([]float32{1, float32(math.Inf(-1)), 3, 4}, 1, 4), p, RuleONNX)), "NaN or ±Inf"},
		{"width", second(Linear(tensor.Ones(2, 5), p, RuleTorch)), "[..., 4]"},
		{"dtype", second(Linear(tensor.FromInt64([]int64{1, 2, 3, 4}), p, RuleTorch)), "float32"},
		{"rule", second(Linear(tensor.Ones(1, 4), p, Rule(7))), "unknown activation rule"},
		{"nil", second(Linear(tensor.Ones(1, 4), nil, RuleTorch)), "nil weights"},
		{"into", LinearInto(tensor.Zeros(2, 2), tensor.Ones(2, 4), p, RuleTorch), "does not fit"},
		{"rows", LinearRows(2, make([]float32, 7), 4, p, RuleTorch, make([]float32, 6), 3), "too short"},
		{"packnan", second(PackLinear(tensor.FromFloat32([]float32{nan, 1}, 1, 2), nil, PerTensor)), "NaN"},
		{"pack1d", second(PackLinear(tensor.Ones(4), nil, PerTensor)), "2-D"},
		{"bias", second(PackLinear(tensor.Ones(3, 4), tensor.Ones(4), PerTensor)), "bias"},
		{"scheme", second(PackLinear(tensor.Ones(3, 4), nil, WeightScheme(5))), "unknown weight scheme"},
		{"quantized", second(PackLinearQuantized(tensor.Ones(3, 4), nil)), "qint8"},
	}
	for _, c := range cases {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) || !strings.HasPrefix(c.err.Error(), "dynamic.") {
			t.Errorf("%s: error %v, want one naming the op and mentioning %q", c.name, c.err, c.want)
		}
	}
	// A failed LinearInto leaves the output unchanged.
	y := tensor.Full(5, 1, 3)
	if LinearInto(y, tensor.FromFloat32([]float32{nan, 0, 0, 0}, 1, 4), p, RuleTorch) == nil || y.F32()[0] != 5 {
		t.Fatal("LinearInto wrote on error")
	}
}

func second[T any](_ T, err error) error { return err }

func TestPackLinearQuantized(t *testing.T) {
	// Affine per-channel weights with non-zero zero points.
	codes := []int8{10, -20, 30, 5, 5, 5}
	q := &tensor.QParams{Scheme: tensor.PerChannelAffine, Scale: []float32{0.1, 0.2}, ZeroPoint: []int32{3, -4}, Axis: 0}
	p, err := PackLinearQuantized(tensor.NewQuantized(tensor.QInt8, codes, q, 2, 3), nil)
	if err != nil {
		t.Fatal(err)
	}
	// x = [0, 1, 2] under ONNX: scale float32(2/255) = 0.0078431377, just
	// above 2/255, so 1/scale = 127.49999 and the codes are [0, 127, 255].
	// acc0 = 127*(-20-3) + 255*(30-3) = 3964, acc1 = (127+255)*(5+4) = 3438.
	y, err := Linear(tensor.FromFloat32([]float32{0, 1, 2}, 1, 3), p, RuleONNX)
	if err != nil {
		t.Fatal(err)
	}
	sa := float32(2) / 255
	want := []float32{float32(3964) * float32(sa*0.1), float32(3438) * float32(sa*0.2)}
	if y.F32()[0] != want[0] || y.F32()[1] != want[1] {
		t.Fatalf("y = %v, want %v", y.F32(), want)
	}
	bad := &tensor.QParams{Scheme: tensor.PerChannelAffine, Scale: []float32{0.1, 0.2}, ZeroPoint: []int32{0, 0}, Axis: 1}
	if _, err := PackLinearQuantized(tensor.NewQuantized(tensor.QInt8, codes, bad, 2, 3), nil); err == nil {
		t.Fatal("axis 1 accepted")
	}
	bad = &tensor.QParams{Scheme: tensor.PerTensorAffine, Scale: []float32{0}, ZeroPoint: []int32{0}}
	if _, err := PackLinearQuantized(tensor.NewQuantized(tensor.QInt8, codes, bad, 2, 3), nil); err == nil {
		t.Fatal("zero scale accepted")
	}
}

func TestChooseAndQuantizeDynamic(t *testing.T) {
	x := tensor.FromFloat32([]float32{0, 2, -3, -2.5, 1.34, 0.5}, 2, 3)
	// ONNX's test_dynamicquantizelinear case.
	q, err := QuantizeDynamic(x, RuleONNX)
	if err != nil {
		t.Fatal(err)
	}
	want := []uint8{153, 255, 0, 26, 221, 179}
	if qp := q.QParams(); qp.Scale[0] != 0.019607844 || qp.ZeroPoint[0] != 153 || q.DType() != tensor.QUInt8 || !tensor.SameShape(q.Shape(), []int{2, 3}) {
		t.Fatalf("qparams %+v", qp)
	}
	for i, v := range q.U8() {
		if v != want[i] {
			t.Fatalf("codes %v, want %v", q.U8(), want)
		}
	}
	qp, err := ChooseQParams(tensor.FromFloat32([]float32{-1, 3}), RuleTorchReduceRange)
	if err != nil || qp.Scale[0] != float32(4.0/127) || qp.ZeroPoint[0] != 32 || qp.QuantMax != 127 {
		t.Fatalf("reduce range: %+v %v", qp, err)
	}
	if _, err := QuantizeDynamic(tensor.FromFloat32([]float32{float32(math.NaN())}), RuleTorch); err == nil || !strings.Contains(err.Error(), "QuantizeDynamic") {
		t.Fatalf("NaN: %v", err)
	}
}

func TestLinearThreadIndependent(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	p, err := PackLinear(randTensor(r, 1, 300, 129), randTensor(r, 1, 300), PerChannel)
	if err != nil {
		t.Fatal(err)
	}
	x := randTensor(r, 1, 37, 129)
	var ref []float32
	for _, th := range []int{1, 2, 3} {
		old := parallel.SetNumThreads(th)
		y, err := Linear(x, p, RuleTorch)
		parallel.SetNumThreads(old)
		if err != nil {
			t.Fatal(err)
		}
		if ref == nil {
			ref = y.F32()
			continue
		}
		for i, v := range y.F32() {
			if math.Float32bits(v) != math.Float32bits(ref[i]) {
				t.Fatalf("threads %d: y[%d] differs", th, i)
			}
		}
	}
}

// TestLinearIntoAllocations checks that LinearInto's allocations do not
// grow with the batch: the activation codes live in a pooled buffer.
func TestLinearIntoAllocations(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	p, err := PackLinear(randTensor(r, 1, 64, 96), nil, PerTensor)
	if err != nil {
		t.Fatal(err)
	}
	old := parallel.SetNumThreads(1)
	defer parallel.SetNumThreads(old)
	var counts []float64
	for _, m := range []int{1, 64} {
		x := randTensor(r, 1, m, 96)
		y := tensor.New(tensor.Float32, m, 64)
		LinearInto(y, x, p, RuleTorch)
		counts = append(counts, testing.AllocsPerRun(20, func() { LinearInto(y, x, p, RuleTorch) }))
	}
	t.Logf("allocations per call: %v", counts)
	if counts[0] != counts[1] || counts[1] > 4 {
		t.Fatalf("allocations per call %v (batch 1, 64)", counts)
	}
}

func TestLinearEmptyShapes(t *testing.T) {
	// No input features: the output is the bias.
	p, err := PackLinear(tensor.Zeros(3, 0), tensor.FromFloat32([]float32{1, 2, 3}, 3), PerChannel)
	if err != nil {
		t.Fatal(err)
	}
	y, err := Linear(tensor.Zeros(2, 0), p, RuleONNX)
	if err != nil || !tensor.SameShape(y.Shape(), []int{2, 3}) || y.F32()[3] != 1 || y.F32()[5] != 3 {
		t.Fatalf("y = %v, %v", y, err)
	}
	// An empty batch.
	p, err = PackLinear(tensor.Ones(3, 4), nil, PerTensor)
	if err != nil {
		t.Fatal(err)
	}
	y, err = Linear(tensor.Zeros(0, 4), p, RuleTorch)
	if err != nil || !tensor.SameShape(y.Shape(), []int{0, 3}) {
		t.Fatalf("y = %v, %v", y, err)
	}
}
