package quantized

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

// moreGolden is testdata/torch_golden_more.json, written by
// testdata/gen_torch_more.py with PyTorch 1.13.
type moreGolden struct {
	Embedding []struct {
		Rows, Dim, Bits int
		W               []float32
		Codes           []uint8
		Scales          []float32
		ZeroPoints      []float32 `json:"zero_points"`
		IdxShape        []int     `json:"idx_shape"`
		Idx             []int64
		Y               []float32
		Bags            []struct {
			Idx               []int64
			Offsets           []int64
			IncludeLastOffset bool      `json:"include_last_offset"`
			PerSampleWeights  []float32 `json:"per_sample_weights"`
			Y                 []float32
		}
	}
	ConvTranspose1d []struct {
		Attrs struct {
			Stride, Padding, Dilation, Groups int
			OutputPadding                     int `json:"output_padding"`
		}
		XShape     []int     `json:"x_shape"`
		X          []uint8   `json:"x"`
		XScale     float32   `json:"x_scale"`
		XZeroPoint int32     `json:"x_zero_point"`
		WShape     []int     `json:"w_shape"`
		W          []int8    `json:"w"`
		WScale     float32   `json:"w_scale"`
		Bias       []float32 `json:"bias"`
		OutScale   float32   `json:"out_scale"`
		OutZP      int32     `json:"out_zero_point"`
		YShape     []int     `json:"y_shape"`
		Y          []uint8   `json:"y"`
	} `json:"conv_transpose1d"`
}

func loadMoreGolden(t *testing.T) *moreGolden {
	t.Helper()
	raw, err := os.ReadFile("testdata/torch_golden_more.json")
	if err != nil {
		t.Fatal(err)
	}
	var g moreGolden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Embedding) != 4 || len(g.ConvTranspose1d) != 3 {
		t.Fatalf("golden file has %d tables and %d ConvTranspose1d cases", len(g.Embedding), len(g.ConvTranspose1d))
	}
	return &g
}

// floatQParamsObserver is the weight observer of
// quant.FloatQParamsWeightOnlyQConfig (8 bits) or its 4-bit version.
func floatQParamsObserver(bits int) observer.Observer {
	return observer.NewPerChannelMinMax(observer.Config{QScheme: tensor.PerChannelAffineFloatQParams, Bits4: bits == 4})
}

func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: element %d is %v, PyTorch %v", what, i, got[i], want[i])
		}
	}
}

// TestEmbeddingTorchGolden checks EmbeddingFromFloat's quantized table
// (codes, scales, zero points) and the lookups and bags of Embedding and
// EmbeddingBag against PyTorch's from_float and forward, bit for bit.
func TestEmbeddingTorchGolden(t *testing.T) {
	g := loadMoreGolden(t)
	lookups, bagValues := 0, 0
	for ci, c := range g.Embedding {
		f, err := nn.NewEmbedding(c.Rows, c.Dim, nn.EmbeddingOptions{})
		if err != nil {
			t.Fatal(err)
		}
		copy(f.Weight.F32(), c.W)
		m, err := EmbeddingFromFloat(f, floatQParamsObserver(c.Bits))
		if err != nil {
			t.Fatal(err)
		}
		if m.Bits() != c.Bits || m.NumEmbeddings != c.Rows || m.EmbeddingDim != c.Dim {
			t.Fatalf("case %d: %d bits %dx%d", ci, m.Bits(), m.NumEmbeddings, m.EmbeddingDim)
		}
		q := m.Weight.QParams()
		sameBits(t, "scales", q.Scale, c.Scales)
		sameBits(t, "zero points", q.ZeroPointF, c.ZeroPoints)
		for i, v := range m.Weight.U8() {
			if v != c.Codes[i] {
				t.Fatalf("case %d (%d bits): code %d is %d, PyTorch %d", ci, c.Bits, i, v, c.Codes[i])
			}
		}
		y := m.Forward(tensor.FromInt64(c.Idx))
		sameBits(t, "lookup", y.F32(), c.Y)
		lookups += len(c.Y)

		fb, err := nn.NewEmbeddingBag(c.Rows, c.Dim, nn.EmbeddingOptions{Mode: "sum"})
		if err != nil {
			t.Fatal(err)
		}
		copy(fb.Weight.F32(), c.W)
		b, err := EmbeddingBagFromFloat(fb, floatQParamsObserver(c.Bits))
		if err != nil {
			t.Fatal(err)
		}
		for _, bag := range c.Bags {
			b.IncludeLastOffset = bag.IncludeLastOffset
			var psw *tensor.Tensor
			if bag.PerSampleWeights != nil {
				psw = tensor.FromFloat32(bag.PerSampleWeights)
			}
			yb, err := b.ForwardWeighted(tensor.FromInt64(bag.Idx), tensor.FromInt64(bag.Offsets), psw)
			if err != nil {
				t.Fatal(err)
			}
			sameBits(t, "bag", yb.F32(), bag.Y)
			bagValues += len(bag.Y)
		}
	}
	t.Logf("%d lookup values and %d bag values equal PyTorch's bit for bit", lookups, bagValues)
}

// TestEmbeddingMatchesDequantizedReference compares lookups with the
// dequantize-then-float-op reference: a lookup equals ops.Embedding on the
// packed table's values exactly, and those values are within an ulp-level
// distance of ops.Dequantize of the quantized weight ((q - zp)*s against
// s*q + b with b rounded); bags match ops.EmbeddingBag on them within
// float32 rounding of the sums.
func TestEmbeddingMatchesDequantizedReference(t *testing.T) {
	rng := tensor.NewRNG(12)
	for _, bits := range []int{8, 4} {
		f, err := nn.NewEmbeddingBag(40, 10, nn.EmbeddingOptions{Mode: "mean", RNG: rng})
		if err != nil {
			t.Fatal(err)
		}
		b, err := EmbeddingBagFromFloat(f, floatQParamsObserver(bits))
		if err != nil {
			t.Fatal(err)
		}
		if b.Mode != "mean" {
			t.Fatalf("mode %q not kept", b.Mode)
		}
		e, err := NewEmbedding(b.Weight)
		if err != nil {
			t.Fatal(err)
		}
		table := b.Packed().Dequantize()
		deqW := ops.Dequantize(b.Weight)
		// 8-bit rows keep the float32 scale and bias, so the values differ
		// from dequantize's by float32 rounding; 4-bit rows keep them as
		// halves (relative error up to 2^-11 each), as PyTorch does.
		tol := 1e-5
		if bits == 4 {
			q := b.Weight.QParams()
			for r, sc := range q.Scale {
				tol = max(tol, float64(sc)*(15+math.Abs(float64(q.ZeroPointF[r])))/2048)
			}
		}
		if d := tensor.MaxAbsDiff(table, deqW); d > tol {
			t.Errorf("%d bits: packed values differ from dequantize by %g (bound %g)", bits, d, tol)
		} else {
			t.Logf("%d bits: packed values within %g of dequantize (bound %g)", bits, d, tol)
		}
		// The quantization error is at most half a step per row (plus the
		// halves' rounding of 4-bit scales and biases).
		step := float32(0)
		for _, s := range b.Weight.QParams().Scale {
			step = max(step, s)
		}
		if d := tensor.MaxAbsDiff(table, f.Weight.Detach()); d > float64(step)*0.5+1e-3 {
			t.Errorf("%d bits: values %g from the float weights, step %g", bits, d, step)
		}
		idx := tensor.FromInt64([]int64{3, 0, 39, 3, 17, 8, 8, 1, 22})
		if d := tensor.MaxAbsDiff(e.Forward(idx), ops.Embedding(idx, table)); d != 0 {
			t.Errorf("%d bits: lookup differs from the reference by %g", bits, d)
		}
		idx2 := tensor.FromInt64([]int64{3, 0, 39, 3, 17, 8}).Reshape(2, 3)
		if !tensor.SameShape(e.Forward(idx2).Shape(), []int{2, 3, 10}) {
			t.Errorf("lookup shape %v", e.Forward(idx2).Shape())
		}
		off := tensor.FromInt64([]int64{0, 2, 2, 5})
		for _, mode := range []string{"sum", "mean", "max"} {
			b.Mode = mode
			got := b.Forward(idx, off)
			want := ops.EmbeddingBag(idx, off, table, mode)
			if d := tensor.MaxAbsDiff(got, want); d > 1e-5 {
				t.Errorf("%d bits %s: bag differs from the reference by %g", bits, mode, d)
			}
			if mode == "max" && tensor.MaxAbsDiff(got, want) != 0 {
				t.Errorf("%d bits: max bag not exact", bits)
			}
		}
	}
}

func TestEmbeddingStateDictRoundTrip(t *testing.T) {
	build := func(seed uint64) *embModel {
		r := tensor.NewRNG(seed)
		f8, _ := nn.NewEmbedding(20, 6, nn.EmbeddingOptions{RNG: r})
		f4, _ := nn.NewEmbeddingBag(15, 8, nn.EmbeddingOptions{Mode: "sum", RNG: r})
		e, err := EmbeddingFromFloat(f8, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := EmbeddingBagFromFloat(f4, floatQParamsObserver(4))
		if err != nil {
			t.Fatal(err)
		}
		return &embModel{E: e, B: b}
	}
	src, dst := build(1), build(2)
	idx := tensor.FromInt64([]int64{1, 4, 14, 0, 7, 7})
	off := tensor.FromInt64([]int64{0, 3})
	e := func(s *embModel) *Embedding { return s.E }
	b := func(s *embModel) *EmbeddingBag { return s.B }
	if tensor.MaxAbsDiff(e(src).Forward(idx), e(dst).Forward(idx)) == 0 {
		t.Fatal("two seeds gave the same tables")
	}
	sd := nn.StateDict(src)
	if len(sd) != 2 || sd["e.weight"].QParams().QuantMax != 255 || sd["b.weight"].QParams().QuantMax != 15 {
		t.Fatalf("state dict %v", nn.StateDictKeys(src))
	}
	path := filepath.Join(t.TempDir(), "emb.safetensors")
	if err := nn.SaveFile(path, sd); err != nil {
		t.Fatal(err)
	}
	loaded, err := nn.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := nn.LoadStateDict(dst, loaded); err != nil {
		t.Fatal(err)
	}
	if d := tensor.MaxAbsDiff(e(src).Forward(idx), e(dst).Forward(idx)); d != 0 {
		t.Errorf("8-bit lookups differ by %g after loading", d)
	}
	if d := tensor.MaxAbsDiff(b(src).Forward(idx, off), b(dst).Forward(idx, off)); d != 0 {
		t.Errorf("4-bit bags differ by %g after loading", d)
	}
	for i, v := range b(src).Packed().Bytes() {
		if b(dst).Packed().Bytes()[i] != v {
			t.Fatalf("packed byte %d differs after loading", i)
		}
	}
	// A table whose qparams lost their float zero points cannot load.
	bad := nn.StateDict(src)
	w := bad["e.weight"].Clone()
	w.SetQParams(&tensor.QParams{Scheme: tensor.PerChannelAffine, Scale: w.QParams().Scale, ZeroPoint: make([]int32, 20), QuantMax: 255})
	bad["e.weight"] = w
	if err := nn.LoadStateDict(build(3), bad); err == nil {
		t.Error("integer-zero-point table loaded")
	}
}

// embModel holds an 8-bit Embedding and a 4-bit EmbeddingBag.
type embModel struct {
	nn.Base
	E *Embedding    `nn:"e"`
	B *EmbeddingBag `nn:"b"`
}

func TestEmbeddingErrors(t *testing.T) {
	f, _ := nn.NewEmbedding(4, 3, nn.EmbeddingOptions{RNG: tensor.NewRNG(1)})
	if _, err := EmbeddingFromFloat(f, floatQParamsObserver(4)); err == nil {
		t.Error("4-bit table of odd dim accepted")
	}
	if _, err := EmbeddingFromFloat(f, observer.NewPerChannelMinMax(observer.Config{Dtype: tensor.QInt8, QScheme: tensor.PerChannelSymmetric})); err == nil {
		t.Error("qint8 symmetric observer accepted")
	}
	if _, err := EmbeddingFromFloat(nil, nil); err == nil {
		t.Error("nil module accepted")
	}
	if _, err := NewEmbedding(tensor.NewQuantized(tensor.QUInt8, []uint8{1, 2}, tensor.PerTensor(1, 0), 1, 2)); err == nil {
		t.Error("per-tensor table accepted")
	}
	nanW := f.Weight.Detach().Clone()
	nanW.F32()[2] = float32(math.NaN())
	if _, err := QuantizeEmbeddingWeight(nanW, nil); err == nil {
		t.Error("NaN weight accepted")
	}
	q4 := &tensor.QParams{Scheme: tensor.PerChannelAffineFloatQParams, Scale: []float32{1}, ZeroPointF: []float32{0}, QuantMax: 15}
	if _, err := NewEmbedding(tensor.NewQuantized(tensor.QUInt8, []uint8{1, 16}, q4, 1, 2)); err == nil {
		t.Error("4-bit code 16 accepted")
	}
	fb, _ := nn.NewEmbeddingBag(4, 2, nn.EmbeddingOptions{})
	b, err := EmbeddingBagFromFloat(fb, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.ForwardWeighted(tensor.FromInt64([]int64{0, 4}), tensor.FromInt64([]int64{0}), nil); err == nil {
		t.Error("index 4 of 4 rows accepted")
	}
	if _, err := NewEmbeddingBag(b.Weight, "median"); err == nil {
		t.Error("mode median accepted")
	}
}
