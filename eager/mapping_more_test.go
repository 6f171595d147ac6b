package eager

import (
	"math"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/nn/quantized"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/tensor"
)

// normNet uses the normalization, activation and transposed-convolution
// modules of mapping_more.go between stubs: [N, 4, L] -> ConvTranspose1d
// -> GroupNorm -> ELU -> InstanceNorm1d -> (as [N, 6, 1, L'])
// InstanceNorm2d -> [N, 6, L'].
type normNet struct {
	nn.Base
	Quant   nn.Layer `nn:"quant"`
	CT      nn.Layer `nn:"ct"`
	GN      nn.Layer `nn:"gn"`
	ELU     nn.Layer `nn:"elu"`
	IN1     nn.Layer `nn:"in1"`
	IN2     nn.Layer `nn:"in2"`
	DeQuant nn.Layer `nn:"dequant"`
}

func (n *normNet) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(n, x, func(x *tensor.Tensor) *tensor.Tensor {
		h := n.IN1.Forward(n.ELU.Forward(n.GN.Forward(n.CT.Forward(n.Quant.Forward(x)))))
		h = tensor.Squeeze(n.IN2.Forward(tensor.Unsqueeze(h, 2)), 2)
		return n.DeQuant.Forward(h)
	})
}

func newNormNet(t *testing.T, seed uint64) *normNet {
	t.Helper()
	rng := tensor.NewRNG(seed)
	ct, err := nn.NewConvTranspose1d(4, 6, 3, nn.ConvTranspose1dOptions{Stride: 2, Padding: 1, OutputPadding: 1, RNG: rng})
	mmNoErr(t, err)
	gn, err := nn.NewGroupNorm(3, 6, nn.GroupNormOptions{})
	mmNoErr(t, err)
	in1, err := nn.NewInstanceNorm1d(6, nn.InstanceNormOptions{Affine: true})
	mmNoErr(t, err)
	in2, err := nn.NewInstanceNorm2d(6, nn.InstanceNormOptions{})
	mmNoErr(t, err)
	for _, p := range []*tensor.Tensor{gn.Weight, in1.Weight} {
		tensor.UniformFill(rng, p, 0.5, 1.5)
	}
	for _, p := range []*tensor.Tensor{gn.Bias, in1.Bias} {
		tensor.UniformFill(rng, p, -0.5, 0.5)
	}
	m := &normNet{Quant: nn.NewQuantStub(nil), CT: ct, GN: gn, ELU: nn.NewELU(1), IN1: in1, IN2: in2, DeQuant: nn.NewDeQuantStub(nil)}
	nn.AssignPaths(m)
	return m
}

// bagLayer is the field type a model declares for an EmbeddingBag that
// eager mode may swap for its quantized form.
type bagLayer interface {
	nn.Module
	Forward(idx, offsets *tensor.Tensor) *tensor.Tensor
}

// embNet averages an Embedding's rows and an EmbeddingBag's bag per sample
// and classifies the concatenation with a quantized Linear.
type embNet struct {
	nn.Base
	Emb     nn.Layer `nn:"emb"`
	Bag     bagLayer `nn:"bag"`
	Quant   nn.Layer `nn:"quant"`
	FC      nn.Layer `nn:"fc"`
	DeQuant nn.Layer `nn:"dequant"`
}

func (n *embNet) Forward(idx *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(n, idx, func(idx *tensor.Tensor) *tensor.Tensor {
		e := ops.Mean(n.Emb.Forward(idx), []int{1}, false)
		h := ops.Concat([]*tensor.Tensor{e, n.Bag.Forward(idx, nil)}, 1)
		return n.DeQuant.Forward(n.FC.Forward(n.Quant.Forward(h)))
	})
}

func newEmbNet(t *testing.T, seed uint64) *embNet {
	t.Helper()
	rng := tensor.NewRNG(seed)
	emb, err := nn.NewEmbedding(50, 8, nn.EmbeddingOptions{RNG: rng})
	mmNoErr(t, err)
	bag, err := nn.NewEmbeddingBag(50, 8, nn.EmbeddingOptions{Mode: "mean", RNG: rng})
	mmNoErr(t, err)
	fc, err := nn.NewLinear(16, 4, nn.LinearOptions{RNG: rng})
	mmNoErr(t, err)
	m := &embNet{Emb: emb, Bag: bag, Quant: nn.NewQuantStub(nil), FC: fc, DeQuant: nn.NewDeQuantStub(nil)}
	nn.AssignPaths(m)
	return m
}

func randIdx(g *tensor.RNG, rows int, shape ...int) *tensor.Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := make([]int64, n)
	for i := range v {
		v[i] = int64(g.IntN(rows))
	}
	return tensor.FromInt64(v).Reshape(shape...)
}

func mmNoErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mmType(t *testing.T, root nn.Module, path string) string {
	t.Helper()
	m, err := nn.Get(root, path)
	mmNoErr(t, err)
	return nn.TypeName(m)
}

// mmSQNR is the signal-to-quantization-noise ratio of got against want in
// dB.
func mmSQNR(got, want *tensor.Tensor) float64 {
	var s, n float64
	for i, w := range want.F32() {
		d := float64(got.F32()[i] - w)
		s += float64(w) * float64(w)
		n += d * d
	}
	return 10 * math.Log10(s/n)
}

func TestQuantizeNormELUConvTranspose1d(t *testing.T) {
	m := newNormNet(t, 1)
	nn.Eval(m)
	x := tensor.Randn(tensor.NewRNG(2), 8, 4, 10)
	var want *tensor.Tensor
	autograd.NoGrad(func() { want = m.Forward(x) })
	// qnnpack's preset: per-tensor weights (TestConvTranspose1dPerChannelAxis
	// runs the per-channel one).
	qc, err := quant.DefaultQConfig("qnnpack")
	mmNoErr(t, err)
	SetQConfig(m, qc)
	mmNoErr(t, Quantize(m, func(p nn.Module) error {
		autograd.NoGrad(func() {
			g := tensor.NewRNG(3)
			for i := 0; i < 6; i++ {
				p.(*normNet).Forward(tensor.Randn(g, 8, 4, 10))
			}
			p.(*normNet).Forward(x)
		})
		return nil
	}, Options{}))
	for path, typ := range map[string]string{"quant": "quantized.Quantize", "ct": "quantized.ConvTranspose1d",
		"gn": "quantized.GroupNorm", "elu": "quantized.ELU", "in1": "quantized.InstanceNorm1d",
		"in2": "quantized.InstanceNorm2d", "dequant": "quantized.DeQuantize"} {
		if got := mmType(t, m, path); got != typ {
			t.Errorf("%s is %s, want %s", path, got, typ)
		}
	}
	y := m.Forward(x)
	if !tensor.SameShape(y.Shape(), want.Shape()) {
		t.Fatalf("shape %v, want %v", y.Shape(), want.Shape())
	}
	s := mmSQNR(y, want)
	t.Logf("int8 vs float: SQNR %.1f dB, max abs diff %.3g", s, tensor.MaxAbsDiff(y, want))
	if s < 25 {
		t.Errorf("SQNR %.1f dB, want at least 25", s)
	}
}

// TestConvTranspose1dPerChannelAxis quantizes a model on the default
// (per-channel) preset: ConvTranspose1d's weight gets its per-channel
// qparams along axis 1, its output channels.
func TestConvTranspose1dPerChannelAxis(t *testing.T) {
	m := newNormNet(t, 4)
	nn.Eval(m)
	x := tensor.Randn(tensor.NewRNG(5), 4, 4, 9)
	var want *tensor.Tensor
	autograd.NoGrad(func() { want = m.Forward(x) })
	qc, err := quant.DefaultQConfig("quanta")
	mmNoErr(t, err)
	SetQConfig(m, qc)
	mmNoErr(t, Quantize(m, func(p nn.Module) error {
		autograd.NoGrad(func() { p.(*normNet).Forward(x) })
		return nil
	}, Options{}))
	ct, ok := m.CT.(*quantized.ConvTranspose1d)
	if !ok {
		t.Fatalf("ct is %s", nn.TypeName(m.CT))
	}
	if q := ct.Weight.QParams(); q.Scheme != tensor.PerChannelSymmetric || q.Axis != 1 || len(q.Scale) != 6 {
		t.Fatalf("weight qparams %v axis %d with %d scales", q.Scheme, q.Axis, len(q.Scale))
	}
	s := mmSQNR(m.Forward(x), want)
	t.Logf("per-channel preset: SQNR %.1f dB", s)
	if s < 25 {
		t.Errorf("SQNR %.1f dB, want at least 25", s)
	}
}

func TestQuantizeEmbeddings(t *testing.T) {
	for _, bits := range []int{8, 4} {
		m := newEmbNet(t, 7)
		nn.Eval(m)
		idx := randIdx(tensor.NewRNG(8), 50, 16, 5)
		var want *tensor.Tensor
		autograd.NoGrad(func() { want = m.Forward(idx) })
		qc, err := quant.DefaultQConfig("quanta")
		mmNoErr(t, err)
		SetQConfig(m, qc)
		wo := quant.FloatQParamsWeightOnlyQConfig
		if bits == 4 {
			wo = quant.FloatQParamsWeightOnlyQConfig4Bit
		}
		SetQConfig(m.Emb, wo)
		SetQConfig(m.Bag, wo)
		mmNoErr(t, Quantize(m, func(p nn.Module) error {
			autograd.NoGrad(func() {
				g := tensor.NewRNG(9)
				for i := 0; i < 4; i++ {
					p.(*embNet).Forward(randIdx(g, 50, 16, 5))
				}
				p.(*embNet).Forward(idx)
			})
			return nil
		}, Options{}))
		for path, typ := range map[string]string{"emb": "quantized.Embedding", "bag": "quantized.EmbeddingBag",
			"fc": "quantized.Linear", "quant": "quantized.Quantize"} {
			if got := mmType(t, m, path); got != typ {
				t.Errorf("%d bits: %s is %s, want %s", bits, path, got, typ)
			}
		}
		if b := m.Bag.(interface{ Bits() int }).Bits(); b != bits {
			t.Errorf("bag quantized to %d bits, want %d", b, bits)
		}
		if m.Emb.ModuleBase().ActivationPostProcess != nil || m.Emb.ModuleBase().QConfig != nil {
			t.Errorf("%d bits: embedding kept its observer or qconfig", bits)
		}
		y := m.Forward(idx)
		s := mmSQNR(y, want)
		t.Logf("%d-bit embeddings + int8 linear vs float: SQNR %.1f dB", bits, s)
		if min := map[int]float64{8: 30, 4: 18}[bits]; s < min {
			t.Errorf("%d bits: SQNR %.1f dB, want at least %.0f", bits, s, min)
		}
	}
}

// TestEmbeddingWeightOnlyAlone is Prepare and Convert on a model whose only
// quantized module is an Embedding given the weight-only qconfig at the
// root: the placeholder activation observer counts as the preparation, and
// Convert needs no output qparams.
func TestEmbeddingWeightOnlyAlone(t *testing.T) {
	emb, err := nn.NewEmbedding(30, 6, nn.EmbeddingOptions{RNG: tensor.NewRNG(1)})
	mmNoErr(t, err)
	m := nn.NewSequential(emb)
	nn.Eval(m)
	idx := randIdx(tensor.NewRNG(2), 30, 12)
	want := emb.Forward(idx).Detach()
	SetQConfig(m, quant.FloatQParamsWeightOnlyQConfig)
	mmNoErr(t, Prepare(m, Options{}))
	if _, ok := emb.ActivationPostProcess.(*ObserverModule); !ok {
		t.Fatalf("Prepare attached %T", emb.ActivationPostProcess)
	}
	m.Forward(idx)
	mmNoErr(t, Convert(m, Options{}))
	if got := mmType(t, m, "0"); got != "quantized.Embedding" {
		t.Fatalf("0 is %s", got)
	}
	y := m.Forward(idx)
	if d := tensor.MaxAbsDiff(y, want); d > 0.02 {
		t.Errorf("lookups %g from float", d)
	}
}

// TestEmbeddingWithActivationQConfig is an Embedding that inherits a
// static qconfig: as PyTorch's from_float, Convert refuses it and says
// which qconfig to use.
func TestEmbeddingWithActivationQConfig(t *testing.T) {
	m := newEmbNet(t, 11)
	nn.Eval(m)
	qc, err := quant.DefaultQConfig("quanta")
	mmNoErr(t, err)
	SetQConfig(m, qc)
	err = Quantize(m, func(p nn.Module) error {
		autograd.NoGrad(func() { p.(*embNet).Forward(randIdx(tensor.NewRNG(1), 50, 4, 3)) })
		return nil
	}, Options{})
	if err == nil || !strings.Contains(err.Error(), "emb") || !strings.Contains(err.Error(), "FloatQParamsWeightOnlyQConfig") {
		t.Fatalf("error %v", err)
	}
}
