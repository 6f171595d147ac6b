package dynamic

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/tensor"
)

func TestEmbeddingHand(t *testing.T) {
	// Rows [10, 20] and [30, 40] (PyTorch's documented example): codes
	// [0, 255], scale 10/255, biases 10 and 30.
	e, err := PackEmbedding(tensor.FromFloat32([]float32{10, 20, 30, 40}, 2, 2), 8)
	if err != nil {
		t.Fatal(err)
	}
	y, err := Embedding(tensor.FromInt64([]int64{1, 0, 1}, 3), e)
	if err != nil {
		t.Fatal(err)
	}
	// 255 * float32(10/255) + 10 in float64, then float32.
	top := func(b float32) float32 { return float32(float64(float32(10)/255)*255 + float64(b)) }
	want := []float32{30, top(30), 10, top(10), 30, top(30)}
	for i, v := range y.F32() {
		if v != want[i] {
			t.Fatalf("y = %v, want %v", y.F32(), want)
		}
	}
	if math.Abs(float64(top(10)-20)) > 1e-5 || !tensor.SameShape(y.Shape(), []int{3, 2}) {
		t.Fatalf("top %v shape %v", top(10), y.Shape())
	}
	// Bags {1, 0} and {1} in the three modes.
	idx := tensor.FromInt64([]int64{1, 0, 1})
	off := tensor.FromInt64([]int64{0, 2})
	for _, c := range []struct {
		mode BagMode
		want []float32
	}{
		{BagSum, []float32{40, 60}},
		{BagMean, []float32{20, 30}},
		{BagMax, []float32{30, 40}},
	} {
		y, err := EmbeddingBag(idx, e, BagOptions{Mode: c.mode, Offsets: off})
		if err != nil {
			t.Fatal(err)
		}
		got := y.F32()
		for i, w := range []float32{c.want[0], c.want[1], 30, 40} {
			if math.Abs(float64(got[i]-w)) > 1e-4 {
				t.Fatalf("%v: %v, want [%v %v 30 40]", c.mode, got, c.want[0], c.want[1])
			}
		}
	}
}

func TestEmbeddingBagForms(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, bits := range []int{8, 4} {
		e, err := PackEmbedding(randTensor(r, 1, 40, 18), bits)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]int64, 12)
		ids32 := make([]int32, 12)
		for i := range ids {
			ids[i] = int64(r.IntN(40))
			ids32[i] = int32(ids[i])
		}
		for _, mode := range []BagMode{BagSum, BagMean, BagMax} {
			// 2-D [3, 4] equals 1-D with offsets 0, 4, 8, equals
			// include_last_offset with 12 appended, equals int32.
			a, err := EmbeddingBag(tensor.FromInt64(ids, 3, 4), e, BagOptions{Mode: mode})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := EmbeddingBag(tensor.FromInt64(ids), e, BagOptions{Mode: mode, Offsets: tensor.FromInt64([]int64{0, 4, 8})})
			c, _ := EmbeddingBag(tensor.FromInt64(ids), e, BagOptions{Mode: mode, Offsets: tensor.FromInt64([]int64{0, 4, 8, 12}), IncludeLastOffset: true})
			d, _ := EmbeddingBag(tensor.FromInt32(ids32), e, BagOptions{Mode: mode, Offsets: tensor.FromInt32([]int32{0, 4, 8})})
			f, _ := EmbeddingBag(tensor.FromInt32(ids32, 3, 4), e, BagOptions{Mode: mode})
			for i, v := range a.F32() {
				for _, o := range []*tensor.Tensor{b, c, d, f} {
					if o.F32()[i] != v {
						t.Fatalf("%d-bit %v: forms differ at %d", bits, mode, i)
					}
				}
			}
			// Against float64 loops over the dequantized table: max picks
			// the same values exactly; sum and mean agree to rounding.
			ref := naiveBag(ids, 3, 4, e.Dequantize().F32(), 18, mode)
			for i, v := range a.F32() {
				w := float32(ref[i])
				if (mode == BagMax && v != w) || math.Abs(float64(v-w)) > 1e-5*(1+math.Abs(float64(w))) {
					t.Fatalf("%d-bit %v: [%d] = %v, float op %v", bits, mode, i, v, w)
				}
			}
		}
		// Embedding of a 2-D index tensor equals Dequantize's rows.
		y, err := Embedding(tensor.FromInt32(ids32, 2, 6), e)
		if err != nil || !tensor.SameShape(y.Shape(), []int{2, 6, 18}) {
			t.Fatalf("%v %v", y, err)
		}
		deq := e.Dequantize().F32()
		for i, id := range ids {
			for j := 0; j < 18; j++ {
				if y.F32()[i*18+j] != deq[int(id)*18+j] {
					t.Fatalf("lookup %d differs from Dequantize", i)
				}
			}
		}
		// A table reloaded from its bytes behaves the same.
		e2, err := LoadPackedEmbedding(e.Bytes(), 40, 18, bits)
		if err != nil {
			t.Fatal(err)
		}
		y2, _ := Embedding(tensor.FromInt32(ids32, 2, 6), e2)
		for i, v := range y2.F32() {
			if v != y.F32()[i] {
				t.Fatal("reloaded table differs")
			}
		}
		if e2.NumEmbeddings() != 40 || e2.Dim() != 18 || e2.Bits() != bits {
			t.Fatal("reloaded shape")
		}
	}
}

func TestEmbeddingErrors(t *testing.T) {
	e, err := PackEmbedding(tensor.Ones(5, 4), 4)
	if err != nil {
		t.Fatal(err)
	}
	ids := tensor.FromInt64([]int64{0, 1, 2})
	nan := float32(math.NaN())
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"index", second(Embedding(tensor.FromInt64([]int64{5}), e)), "outside [0, 5)"},
		{"negative", second(EmbeddingBag(tensor.FromInt32([]int32{-1}), e, BagOptions{Offsets: tensor.FromInt32([]int32{0})})), "outside"},
		{"dtype", second(Embedding(tensor.Ones(2), e)), "int64 or int32"},
		{"offset0", second(EmbeddingBag(ids, e, BagOptions{Offsets: tensor.FromInt64([]int64{1, 2})})), "offsets[0]"},
		{"decreasing", second(EmbeddingBag(ids, e, BagOptions{Offsets: tensor.FromInt64([]int64{0, 2, 1})})), "non-decreasing"},
		{"beyond", second(EmbeddingBag(ids, e, BagOptions{Offsets: tensor.FromInt64([]int64{0, 4})})), "non-decreasing"},
		{"offdtype", second(EmbeddingBag(ids, e, BagOptions{Offsets: tensor.FromInt32([]int32{0})})), "dtype"},
		{"nooffsets", second(EmbeddingBag(ids, e, BagOptions{})), "1-D indices with offsets"},
		{"psw mode", second(EmbeddingBag(ids, e, BagOptions{Mode: BagMax, Offsets: tensor.FromInt64([]int64{0}), PerSampleWeights: tensor.Ones(3)})), "mode sum"},
		{"psw shape", second(EmbeddingBag(ids, e, BagOptions{Offsets: tensor.FromInt64([]int64{0}), PerSampleWeights: tensor.Ones(2)})), "shaped like"},
		{"mode", second(EmbeddingBag(ids, e, BagOptions{Mode: 9, Offsets: tensor.FromInt64([]int64{0})})), "unknown mode"},
		{"last", second(EmbeddingBag(ids, e, BagOptions{Offsets: tensor.FromInt64(nil), IncludeLastOffset: true})), "include_last_offset"},
		{"odd", second(PackEmbedding(tensor.Ones(2, 3), 4)), "even"},
		{"bits", second(PackEmbedding(tensor.Ones(2, 4), 2)), "2-bit"},
		{"nan", second(PackEmbedding(tensor.FromFloat32([]float32{1, nan}, 1, 2), 8)), "NaN"},
		{"inf", second(PackEmbedding(tensor.FromFloat32([]float32{1, float32(math.Inf(1))}, 1, 2), 8)), "Inf"},
		{"load", second(LoadPackedEmbedding(make([]byte, 10), 2, 4, 8)), "bytes"},
	}
	for _, c := range cases {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) || !strings.HasPrefix(c.err.Error(), "dynamic.") {
			t.Errorf("%s: error %v, want one naming the op and mentioning %q", c.name, c.err, c.want)
		}
	}
	// Empty bags and per-sample weights of zero.
	y, err := EmbeddingBag(ids, e, BagOptions{Offsets: tensor.FromInt64([]int64{0, 0, 3}), PerSampleWeights: tensor.Zeros(3)})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range y.F32() {
		if v != 0 {
			t.Fatalf("y = %v, want zeros", y.F32())
		}
	}
}

// naiveBag reduces fixed-length bags of rows of a float table in float64.
func naiveBag(ids []int64, bags, l int, w []float32, d int, mode BagMode) []float64 {
	out := make([]float64, bags*d)
	for b := 0; b < bags; b++ {
		for j := 0; j < d; j++ {
			acc := math.Inf(-1)
			if mode != BagMax {
				acc = 0
			}
			for _, id := range ids[b*l : (b+1)*l] {
				v := float64(w[int(id)*d+j])
				if mode == BagMax {
					acc = math.Max(acc, v)
				} else {
					acc += v
				}
			}
			if mode == BagMean {
				acc /= float64(l)
			}
			out[b*d+j] = acc
		}
	}
	return out
}
