package nn

import (
	"math"
	"reflect"
	"testing"

	"github.com/quanta-go/quanta/internal/gradcheck"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// naiveMHA computes one batch element of multi-head attention in float64
// from the module's parameters: q [L][E], k [S][KDim], v [S][VDim], mask
// [L][S] additive (nil for none). It returns out [L][E] and the head-averaged
// weights [L][S].
func naiveMHA(m *MultiheadAttention, q, k, v [][]float64, mask [][]float64) ([][]float64, [][]float64) {
	E, h := m.EmbedDim, m.NumHeads
	d := E / h
	proj := func(x []float64, which int) []float64 {
		var w *tensor.Tensor
		row0 := 0
		if m.InProjWeight != nil {
			w, row0 = m.InProjWeight, which*E
		} else {
			w = []*tensor.Tensor{m.QProjWeight, m.KProjWeight, m.VProjWeight}[which]
		}
		out := make([]float64, E)
		for r := 0; r < E; r++ {
			s := 0.0
			for c := range x {
				s += w.At(row0+r, c) * x[c]
			}
			if m.InProjBias != nil {
				s += m.InProjBias.At(which*E + r)
			}
			out[r] = s
		}
		return out
	}
	L, S := len(q), len(k)
	Q, K, V := make([][]float64, L), make([][]float64, S), make([][]float64, S)
	for i := range q {
		Q[i] = proj(q[i], 0)
	}
	for j := range k {
		K[j], V[j] = proj(k[j], 1), proj(v[j], 2)
	}
	concat := make([][]float64, L)
	weights := make([][]float64, L)
	for i := range concat {
		concat[i] = make([]float64, E)
		weights[i] = make([]float64, S)
	}
	for hd := 0; hd < h; hd++ {
		for i := 0; i < L; i++ {
			sc := make([]float64, S)
			mx := math.Inf(-1)
			for j := 0; j < S; j++ {
				s := 0.0
				for c := hd * d; c < (hd+1)*d; c++ {
					s += Q[i][c] * K[j][c]
				}
				s /= math.Sqrt(float64(d))
				if mask != nil {
					s += mask[i][j]
				}
				sc[j] = s
				mx = math.Max(mx, s)
			}
			sum := 0.0
			for j := range sc {
				sc[j] = math.Exp(sc[j] - mx)
				sum += sc[j]
			}
			for j := range sc {
				sc[j] /= sum
				weights[i][j] += sc[j] / float64(h)
				for c := hd * d; c < (hd+1)*d; c++ {
					concat[i][c] += sc[j] * V[j][c]
				}
			}
		}
	}
	op := m.OutProj.(*Linear)
	out := make([][]float64, L)
	for i := range out {
		out[i] = make([]float64, E)
		for r := 0; r < E; r++ {
			s := 0.0
			if op.Bias != nil {
				s = op.Bias.At(r)
			}
			for c := 0; c < E; c++ {
				s += op.Weight.At(r, c) * concat[i][c]
			}
			out[i][r] = s
		}
	}
	return out, weights
}

func rows(t *tensor.Tensor) [][]float64 {
	out := make([][]float64, t.Dim(0))
	for i := range out {
		out[i] = make([]float64, t.Dim(1))
		for j := range out[i] {
			out[i][j] = t.At(i, j)
		}
	}
	return out
}

func checkRows(t *testing.T, name string, got *tensor.Tensor, want [][]float64, tol float64) {
	t.Helper()
	if got.NDim() != 2 || got.Dim(0) != len(want) || got.Dim(1) != len(want[0]) {
		t.Fatalf("%s: shape %v, want [%d %d]", name, got.Shape(), len(want), len(want[0]))
	}
	for i := range want {
		for j := range want[i] {
			if math.Abs(got.At(i, j)-want[i][j]) > tol {
				t.Errorf("%s[%d][%d] = %g, want %g", name, i, j, got.At(i, j), want[i][j])
			}
		}
	}
}

func randomizeBiases(m Module, rng *tensor.RNG) {
	for _, p := range NamedParameters(m) {
		if len(p.Name) >= 4 && p.Name[len(p.Name)-4:] == "bias" {
			tensor.UniformFill(rng, p.Tensor, -0.5, 0.5)
		}
	}
}

func TestMultiheadAttentionNaive(t *testing.T) {
	rng := tensor.NewRNG(21)
	m := must(NewMultiheadAttention(6, 2, MultiheadAttentionOptions{RNG: rng}))
	randomizeBiases(m, rng)
	// Unbatched self-attention with a causal mask: [L, E].
	x := tensor.RandUniform(rng, -1, 1, 4, 6)
	y, w := m.Forward(x, x, x, AttentionOptions{IsCausal: true, NeedWeights: true})
	causal := make([][]float64, 4)
	for i := range causal {
		causal[i] = make([]float64, 4)
		for j := i + 1; j < 4; j++ {
			causal[i][j] = math.Inf(-1)
		}
	}
	wantY, wantW := naiveMHA(m, rows(x), rows(x), rows(x), causal)
	checkRows(t, "causal out", y, wantY, 2e-6)
	checkRows(t, "causal weights", w, wantW, 2e-6)
	// The packed self-attention path equals the separate-projection path.
	y2, _ := m.Forward(x, x.Clone(), x.Clone(), AttentionOptions{IsCausal: true})
	if d := tensor.MaxAbsDiff(y, y2); d > 1e-6 {
		t.Errorf("self-attention path differs by %g", d)
	}

	// Batched, sequence-first, bool key padding and bool attn mask, no biases.
	nb := must(NewMultiheadAttention(4, 4, MultiheadAttentionOptions{NoBias: true, RNG: rng}))
	q := tensor.RandUniform(rng, -1, 1, 3, 2, 4)
	kv := tensor.RandUniform(rng, -1, 1, 5, 2, 4)
	kpm := tensor.FromBool([]bool{false, true, false, false, false, false, false, false, false, true}, 2, 5)
	am := tensor.New(tensor.Bool, 3, 5)
	am.Bools()[3] = true // query 0 may not see key 3
	y, w = nb.Forward(q, kv, kv, AttentionOptions{KeyPaddingMask: kpm, AttnMask: am, NeedWeights: true})
	if !tensor.SameShape(y.Shape(), []int{3, 2, 4}) || !tensor.SameShape(w.Shape(), []int{2, 3, 5}) {
		t.Fatalf("shapes %v %v", y.Shape(), w.Shape())
	}
	for b := 0; b < 2; b++ {
		qb, kb := tensor.Zeros(3, 4), tensor.Zeros(5, 4)
		mask := make([][]float64, 3)
		for i := 0; i < 3; i++ {
			mask[i] = make([]float64, 5)
			for j := 0; j < 5; j++ {
				if kpm.Bools()[b*5+j] || am.Bools()[i*5+j] {
					mask[i][j] = math.Inf(-1)
				}
			}
			for c := 0; c < 4; c++ {
				qb.Set(q.At(i, b, c), i, c)
			}
		}
		for j := 0; j < 5; j++ {
			for c := 0; c < 4; c++ {
				kb.Set(kv.At(j, b, c), j, c)
			}
		}
		wantY, wantW := naiveMHA(nb, rows(qb), rows(kb), rows(kb), mask)
		yb := ops.Reshape(ops.Narrow(y, 1, b, 1), 3, 4)
		checkRows(t, "masked out", yb, wantY, 2e-6)
		checkRows(t, "masked weights", ops.Reshape(ops.Narrow(w, 0, b, 1), 3, 5), wantW, 2e-6)
	}
	if y, w := nb.Forward(q, kv, kv, AttentionOptions{}); w != nil || y == nil {
		t.Error("weights returned without NeedWeights")
	}
}

func TestMultiheadAttentionParams(t *testing.T) {
	m := must(NewMultiheadAttention(8, 2, MultiheadAttentionOptions{}))
	got := names(NamedParameters(m), func(n NamedTensor) string { return n.Name })
	if !reflect.DeepEqual(got, []string{"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"}) {
		t.Errorf("params %v", got)
	}
	bound := math.Sqrt(6.0 / (8 + 24))
	for _, v := range m.InProjWeight.F32() {
		if math.Abs(float64(v)) > bound {
			t.Fatalf("in_proj_weight value %g outside xavier bound %g", v, bound)
		}
	}
	for i, v := range m.InProjBias.F32() {
		if v != 0 || m.OutProj.(*Linear).Bias.F32()[i%8] != 0 {
			t.Fatal("biases not zero-initialized")
		}
	}
	kv := must(NewMultiheadAttention(6, 3, MultiheadAttentionOptions{KDim: 5, VDim: 7, NoBias: true}))
	got = names(NamedParameters(kv), func(n NamedTensor) string { return n.Name })
	if !reflect.DeepEqual(got, []string{"q_proj_weight", "k_proj_weight", "v_proj_weight", "out_proj.weight"}) {
		t.Errorf("kdim/vdim params %v", got)
	}
	if _, err := NewMultiheadAttention(6, 4, MultiheadAttentionOptions{}); err == nil {
		t.Error("embed_dim not divisible by heads accepted")
	}
}

func TestTransformerEncoderLayerStructure(t *testing.T) {
	l := must(NewTransformerEncoderLayer(8, 2, TransformerEncoderLayerOptions{DimFeedforward: 16}))
	got := StateDictKeys(l)
	want := []string{"self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight", "self_attn.out_proj.bias",
		"linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias", "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("state dict keys\n got %v\nwant %v", got, want)
	}
	mods := names(NamedModules(l), func(n NamedModule) string { return n.Name })
	if !reflect.DeepEqual(mods, []string{"", "self_attn", "self_attn.out_proj", "linear1", "dropout", "linear2", "norm1", "norm2", "dropout1", "dropout2"}) {
		t.Errorf("modules %v", mods)
	}
	// A linear can be replaced through its Layer-typed field.
	if err := Set(l, "linear1", NewSequential(must(NewLinear(8, 16, LinearOptions{})))); err != nil {
		t.Error(err)
	}
	if _, err := NewTransformerEncoderLayer(8, 2, TransformerEncoderLayerOptions{Activation: "swish"}); err == nil {
		t.Error("unknown activation accepted")
	}
	// Dropout is active in training mode and inactive in eval mode.
	d := must(NewTransformerEncoderLayer(4, 1, TransformerEncoderLayerOptions{DimFeedforward: 8, Dropout: 0.5, RNG: tensor.NewRNG(1)}))
	x := tensor.RandUniform(tensor.NewRNG(2), -1, 1, 3, 1, 4)
	a, b := d.Forward(x), d.Forward(x)
	if tensor.MaxAbsDiff(a, b) == 0 {
		t.Error("training-mode dropout gave identical outputs")
	}
	Eval(d)
	a, b = d.Forward(x), d.Forward(x)
	if tensor.MaxAbsDiff(a, b) != 0 {
		t.Error("eval mode is not deterministic")
	}
}

func TestAttentionGradcheck(t *testing.T) {
	rng := tensor.NewRNG(31)
	opt := gradcheck.Options{Eps: 1e-2, Atol: 3e-3, Rtol: 3e-2}
	m := must(NewMultiheadAttention(4, 2, MultiheadAttentionOptions{BatchFirst: true, RNG: rng}))
	randomizeBiases(m, rng)
	q := tensor.RandUniform(rng, -1, 1, 2, 3, 4).SetRequiresGrad(true)
	kv := tensor.RandUniform(rng, -1, 1, 2, 2, 4).SetRequiresGrad(true)
	kpm := tensor.FromBool([]bool{false, false, false, true}, 2, 2)
	in := append([]*tensor.Tensor{q, kv}, Parameters(m)...)
	err := gradcheck.Check(func(in []*tensor.Tensor) *tensor.Tensor {
		y, w := m.Forward(in[0], in[1], in[1], AttentionOptions{KeyPaddingMask: kpm, NeedWeights: true})
		return ops.Concat([]*tensor.Tensor{ops.Reshape(y, -1), ops.Reshape(w, -1)}, 0)
	}, in, opt)
	if err != nil {
		t.Errorf("MultiheadAttention: %v", err)
	}
	for _, normFirst := range []bool{false, true} {
		l := must(NewTransformerEncoderLayer(4, 2, TransformerEncoderLayerOptions{DimFeedforward: 6, NormFirst: normFirst,
			Activation: "gelu", RNG: rng}))
		randomizeBiases(l, rng)
		x := tensor.RandUniform(rng, -1, 1, 3, 2, 4).SetRequiresGrad(true)
		in := append([]*tensor.Tensor{x}, Parameters(l)...)
		err := gradcheck.Check(func(in []*tensor.Tensor) *tensor.Tensor { return l.Forward(in[0]) }, in, opt)
		if err != nil {
			t.Errorf("TransformerEncoderLayer normFirst=%v: %v", normFirst, err)
		}
	}
}
