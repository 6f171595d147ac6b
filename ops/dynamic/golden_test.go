package dynamic

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/quanta-go/quanta/internal/kernels/qgemm"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/tensor"
)

type golden struct {
	Linear []struct {
		Shape        []int     `json:"shape"`
		N            int       `json:"n"`
		PerChannel   bool      `json:"per_channel"`
		X            []float32 `json:"x"`
		W            []float32 `json:"w"`
		B            []float32 `json:"b"`
		QWeight      []int8    `json:"qweight"`
		WScales      []float32 `json:"w_scales"`
		WZeroPoints  []int32   `json:"w_zero_points"`
		ActScale     float64   `json:"act_scale"`
		ActZeroPoint int32     `json:"act_zero_point"`
		ActCodes     []uint8   `json:"act_codes"`
		Y            []float32 `json:"y"`
	} `json:"linear"`
	FP16 []struct {
		M, K, N int
		W, B, X []float32
		WHalf   []uint16 `json:"w_half"`
		Y       []float32
	} `json:"fp16"`
	Embedding []struct {
		Rows, Dim, Bits  int
		W                []float32
		Packed           []int     `json:"packed"`
		Idx              []int64   `json:"idx"`
		Offsets          []int64   `json:"offsets"`
		PerSampleWeights []float32 `json:"per_sample_weights"`
		Y                []float32 `json:"y"`
		YWeighted        []float32 `json:"y_weighted"`
	} `json:"embedding"`
	LSTM []struct {
		T, B, I, H int
		X, H0, C0  []float32
		WIh        []float32 `json:"w_ih"`
		WHh        []float32 `json:"w_hh"`
		BIh        []float32 `json:"b_ih"`
		BHh        []float32 `json:"b_hh"`
		Y, HN, CN  []float32
	} `json:"lstm"`
}

func loadGolden(t *testing.T) *golden {
	t.Helper()
	raw, err := os.ReadFile("testdata/torch_dynamic.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Linear) < 9 || len(g.FP16) < 3 || len(g.Embedding) < 2 {
		t.Fatalf("golden file has %d linear, %d fp16, %d embedding cases", len(g.Linear), len(g.FP16), len(g.Embedding))
	}
	return &g
}

// TestLinearTorchGolden compares dynamic Linear with PyTorch 1.13's
// torch.ao.nn.quantized.dynamic.Linear on the qnnpack engine (per-tensor
// and per-channel qint8 weights, converted by quantize_dynamic):
//
//   - the int8 weights and their scales equal PyTorch's exactly;
//   - the activation qparams (RuleTorch) equal PyTorch's exactly;
//   - the activation codes: quanta divides by the scale where PyTorch
//     multiplies by float32(1/scale); they may differ by one step where
//     x/scale is within an ulp of a half, which is counted and must be
//     rare (0 in these cases);
//   - the outputs: qnnpack computes float32(acc)*float32(s_a*s_w) + b
//     like quanta, so with PyTorch's codes the GEMM and epilogue must give
//     PyTorch's floats bit for bit, and quanta's own outputs equal them
//     wherever the codes agree.
func TestLinearTorchGolden(t *testing.T) {
	g := loadGolden(t)
	var codes, codeDiffs int
	for ci, c := range g.Linear {
		k := c.Shape[len(c.Shape)-1]
		scheme := PerTensor
		if c.PerChannel {
			scheme = PerChannel
		}
		w, err := PackLinear(tensor.FromFloat32(c.W, c.N, k), tensor.FromFloat32(c.B, c.N), scheme)
		if err != nil {
			t.Fatal(err)
		}
		qw := w.Weight()
		for i, v := range qw.I8() {
			if v != c.QWeight[i] {
				t.Fatalf("case %d: weight code %d = %d, PyTorch %d", ci, i, v, c.QWeight[i])
			}
		}
		for i, s := range qw.QParams().Scale {
			if s != c.WScales[i] || qw.QParams().ZeroPoint[i] != c.WZeroPoints[i] {
				t.Fatalf("case %d: weight qparams %d = (%v, %d), PyTorch (%v, %d)", ci, i, s, qw.QParams().ZeroPoint[i], c.WScales[i], c.WZeroPoints[i])
			}
		}
		x := tensor.FromFloat32(c.X, c.Shape...)
		q, err := ChooseQParams(x, RuleTorch)
		if err != nil {
			t.Fatal(err)
		}
		if q.Scale[0] != float32(c.ActScale) || q.ZeroPoint[0] != c.ActZeroPoint {
			t.Fatalf("case %d: activation qparams (%v, %d), PyTorch (%v, %d)", ci, q.Scale[0], q.ZeroPoint[0], float32(c.ActScale), c.ActZeroPoint)
		}
		xq, err := QuantizeDynamic(x, RuleTorch)
		if err != nil {
			t.Fatal(err)
		}
		same := true
		for i, v := range xq.U8() {
			codes++
			if v != c.ActCodes[i] {
				same = false
				codeDiffs++
				if d := int(v) - int(c.ActCodes[i]); d != 1 && d != -1 {
					t.Fatalf("case %d: code %d = %d, PyTorch %d", ci, i, v, c.ActCodes[i])
				}
			}
		}
		// PyTorch's codes through quanta's GEMM and epilogue.
		m := len(c.X) / k
		fromTorch := make([]float32, m*c.N)
		qgemm.GemmF32(m, c.ActCodes, k, c.ActZeroPoint, qgemm.Pack(c.N, k, c.QWeight, k, c.WZeroPoints),
			&qgemm.Dequant{ScaleA: float32(c.ActScale), ScaleW: c.WScales, Bias: c.B}, fromTorch, c.N)
		for i := range fromTorch {
			if math.Float32bits(fromTorch[i]) != math.Float32bits(c.Y[i]) {
				t.Fatalf("case %d: with PyTorch's codes y[%d] = %v, PyTorch %v", ci, i, fromTorch[i], c.Y[i])
			}
		}
		y, err := Linear(x, w, RuleTorch)
		if err != nil {
			t.Fatal(err)
		}
		if want := append(append([]int(nil), c.Shape[:len(c.Shape)-1]...), c.N); !tensor.SameShape(y.Shape(), want) {
			t.Fatalf("case %d: shape %v, want %v", ci, y.Shape(), want)
		}
		for i, v := range y.F32() {
			if same && math.Float32bits(v) != math.Float32bits(c.Y[i]) {
				t.Fatalf("case %d: y[%d] = %v, PyTorch %v", ci, i, v, c.Y[i])
			}
		}
	}
	t.Logf("%d activation codes, %d differ from PyTorch's (x/scale vs x*(1/scale))", codes, codeDiffs)
	if codeDiffs*1000 > codes {
		t.Fatalf("%d of %d activation codes differ", codeDiffs, codes)
	}
}

// TestQuantizeMulInvIsPyTorchs pins the reason for the one-step code
// differences: a value whose x/scale is just below a half while
// x*float32(1/scale) rounds to the half.
func TestQuantizeMulInvIsPyTorchs(t *testing.T) {
	// With scale 0.00214854861 and x 0.273939937, x/scale is 127.49999 but
	// x*(1/scale) is 127.5 (FBGEMM's documented example).
	s, x := float32(0.00214854861), float32(0.273939937)
	if a, b := qmath.Quantize(x, s, 0, 0, 255), qmath.QuantizeMulInv(x, 1/s, 0, 0, 255); a != 127 || b != 128 {
		t.Fatalf("division gives %d, multiplication %d", a, b)
	}
}

// TestLinearFP16TorchGolden compares fp16 weights with PyTorch's
// clamp(±65504).half() bit for bit, and outputs with F.linear on the
// widened weights within float32 summation-order error.
func TestLinearFP16TorchGolden(t *testing.T) {
	g := loadGolden(t)
	for ci, c := range g.FP16 {
		p, err := PackLinearFP16(tensor.FromFloat32(c.W, c.N, c.K), tensor.FromFloat32(c.B, c.N))
		if err != nil {
			t.Fatal(err)
		}
		for i, h := range p.WeightFP16() {
			if h != c.WHalf[i] {
				t.Fatalf("case %d: half %d = %#04x, PyTorch %#04x (w = %v)", ci, i, h, c.WHalf[i], c.W[i])
			}
		}
		y, err := LinearFP16(tensor.FromFloat32(c.X, c.M, c.K), p)
		if err != nil {
			t.Fatal(err)
		}
		wide := p.Weight().F32()
		for i := 0; i < c.M; i++ {
			for j := 0; j < c.N; j++ {
				var mag float64
				for q := 0; q < c.K; q++ {
					mag += math.Abs(float64(c.X[i*c.K+q]) * float64(wide[j*c.K+q]))
				}
				mag += math.Abs(float64(c.B[j]))
				tol := 4 * float64(c.K) * 6e-8 * mag
				if d := math.Abs(float64(y.F32()[i*c.N+j] - c.Y[i*c.N+j])); d > tol {
					t.Fatalf("case %d: y[%d][%d] = %v, PyTorch %v (tolerance %g)", ci, i, j, y.F32()[i*c.N+j], c.Y[i*c.N+j], tol)
				}
			}
		}
	}
}

// TestEmbeddingBagTorchGolden checks PackEmbedding's bytes and
// EmbeddingBag's sums (plain and with per-sample weights) against
// PyTorch's prepack and rowwise_offsets ops, exactly.
func TestEmbeddingBagTorchGolden(t *testing.T) {
	g := loadGolden(t)
	for ci, c := range g.Embedding {
		e, err := PackEmbedding(tensor.FromFloat32(c.W, c.Rows, c.Dim), c.Bits)
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Bytes()) != len(c.Packed) {
			t.Fatalf("case %d: %d bytes, PyTorch %d", ci, len(e.Bytes()), len(c.Packed))
		}
		for i, b := range e.Bytes() {
			if int(b) != c.Packed[i] {
				t.Fatalf("case %d: byte %d = %d, PyTorch %d", ci, i, b, c.Packed[i])
			}
		}
		idx := tensor.FromInt64(c.Idx)
		off := tensor.FromInt64(c.Offsets)
		for _, weighted := range []bool{false, true} {
			opt := BagOptions{Offsets: off}
			want := c.Y
			if weighted {
				opt.PerSampleWeights = tensor.FromFloat32(c.PerSampleWeights)
				want = c.YWeighted
			}
			y, err := EmbeddingBag(idx, e, opt)
			if err != nil {
				t.Fatal(err)
			}
			if !tensor.SameShape(y.Shape(), []int{len(c.Offsets), c.Dim}) {
				t.Fatalf("shape %v", y.Shape())
			}
			for i, v := range y.F32() {
				if math.Float32bits(v) != math.Float32bits(want[i]) {
					t.Fatalf("case %d weighted=%v: y[%d] = %v, PyTorch %v", ci, weighted, i, v, want[i])
				}
			}
		}
	}
}
