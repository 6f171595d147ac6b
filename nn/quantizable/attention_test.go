package quantizable

import (
	"strings"
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/tensor"
)

func TestMultiheadAttentionMatchesFloat(t *testing.T) {
	causal := tensor.New(tensor.Bool, 5, 5)
	for i := 0; i < 5; i++ {
		for j := i + 1; j < 5; j++ {
			causal.Bools()[i*5+j] = true
		}
	}
	pad := tensor.New(tensor.Bool, 2, 5)
	pad.Bools()[4], pad.Bools()[8] = true, true
	cases := []struct {
		name    string
		o       nn.MultiheadAttentionOptions
		self    bool
		q, k, v []int
		opt     nn.AttentionOptions
	}{
		{name: "self attention", self: true, q: []int{5, 2, 8}, opt: nn.AttentionOptions{NeedWeights: true}},
		{name: "cross attention per-head weights", q: []int{3, 2, 8}, k: []int{5, 2, 8}, v: []int{5, 2, 8},
			opt: nn.AttentionOptions{NeedWeights: true, PerHeadWeights: true, KeyPaddingMask: pad}},
		{name: "kdim vdim", o: nn.MultiheadAttentionOptions{KDim: 6, VDim: 3}, q: []int{4, 2, 8}, k: []int{5, 2, 6}, v: []int{5, 2, 3},
			opt: nn.AttentionOptions{NeedWeights: true}},
		{name: "batch first masked no bias", o: nn.MultiheadAttentionOptions{BatchFirst: true, NoBias: true}, self: true, q: []int{2, 5, 8},
			opt: nn.AttentionOptions{AttnMask: causal, KeyPaddingMask: pad}},
		{name: "unbatched causal", self: true, q: []int{5, 8}, opt: nn.AttentionOptions{IsCausal: true, NeedWeights: true}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.o.RNG = tensor.NewRNG(uint64(20 + i))
			f, err := nn.NewMultiheadAttention(8, 2, c.o)
			if err != nil {
				t.Fatal(err)
			}
			nn.Eval(f)
			// Non-zero biases, so that the split of in_proj_bias is tested.
			if f.InProjBias != nil {
				copy(f.InProjBias.F32(), tensor.Randn(tensor.NewRNG(7), 24).F32())
				copy(f.OutProj.(*nn.Linear).Bias.F32(), tensor.Randn(tensor.NewRNG(8), 8).F32())
			}
			q, err := MultiheadAttentionFromFloat(f)
			if err != nil {
				t.Fatal(err)
			}
			g := tensor.NewRNG(uint64(200 + i))
			query := tensor.Randn(g, c.q...)
			key, value := query, query
			if !c.self {
				key, value = tensor.Randn(g, c.k...), tensor.Randn(g, c.v...)
			}
			autograd.NoGrad(func() {
				want, wantW := f.Forward(query, key, value, c.opt)
				got, gotW := q.Forward(query, key, value, c.opt)
				near(t, "output", got, want)
				if c.opt.NeedWeights {
					near(t, "weights", gotW, wantW)
				} else if gotW != nil {
					t.Error("weights returned without NeedWeights")
				}
			})
		})
	}
}

func TestMultiheadAttentionStructure(t *testing.T) {
	q, err := NewMultiheadAttention(8, 2, nn.MultiheadAttentionOptions{RNG: tensor.NewRNG(1)})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, nm := range nn.NamedModules(q) {
		if nm.Name != "" {
			names = append(names, nm.Name+":"+nn.TypeName(nm.Module))
		}
	}
	want := "linear_Q:Linear linear_K:Linear linear_V:Linear out_proj:Linear q_scaling_product:FloatFunctional " +
		"quant_attn_output:QuantStub quant_attn_output_weights:QuantStub dequant_q:DeQuantStub dequant_k:DeQuantStub dequant_v:DeQuantStub"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("children\n%s\nwant\n%s", got, want)
	}
	var a nn.Attention = q // stands where nn.MultiheadAttention stands
	_ = a
}

func TestMultiheadAttentionErrors(t *testing.T) {
	check := func(what string, err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one mentioning %q", what, err, want)
		}
	}
	_, err := MultiheadAttentionFromFloat(nil)
	check("nil", err, "nil module")
	_, err = NewMultiheadAttention(8, 3, nn.MultiheadAttentionOptions{})
	check("heads", err, "num_heads")
	f, _ := nn.NewMultiheadAttention(8, 2, nn.MultiheadAttentionOptions{})
	f.OutProj = nn.NewIdentity()
	_, err = MultiheadAttentionFromFloat(f)
	check("out_proj", err, "want a float Linear")
	f, _ = nn.NewMultiheadAttention(8, 2, nn.MultiheadAttentionOptions{KDim: 4})
	f.KProjWeight = nil
	_, err = MultiheadAttentionFromFloat(f)
	check("missing k_proj", err, "projection 1")
}
