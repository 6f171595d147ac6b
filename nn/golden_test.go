package nn

import (
	"strings"
	"testing"

	"github.com/quanta-go/quanta/tensor"
)

// The golden file holds PyTorch 1.13 parameters, inputs and outputs written
// by testdata/gen_golden.py. Loading the parameters strictly also checks
// that parameter names and shapes match PyTorch's state_dict.
func loadGolden(t *testing.T) map[string]*tensor.Tensor {
	t.Helper()
	sd, err := LoadFile("testdata/torch_golden.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	return sd
}

// subDict returns the entries of sd under prefix+"." with the prefix removed.
func subDict(sd map[string]*tensor.Tensor, prefix string) map[string]*tensor.Tensor {
	out := map[string]*tensor.Tensor{}
	for k, v := range sd {
		if rest, ok := strings.CutPrefix(k, prefix+"."); ok {
			out[rest] = v
		}
	}
	return out
}

func loadInto(t *testing.T, m Module, sd map[string]*tensor.Tensor, name string) map[string]*tensor.Tensor {
	t.Helper()
	if err := LoadStateDict(m, subDict(sd, name)); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return subDict(sd, "io."+name)
}

func near(t *testing.T, name string, got, want *tensor.Tensor, tol float64) {
	t.Helper()
	if got == nil || !tensor.SameShape(got.Shape(), want.Shape()) {
		t.Fatalf("%s: got %v, want shape %v", name, got, want.Shape())
	}
	if d := tensor.MaxAbsDiff(got, want); d > tol {
		t.Errorf("%s: max abs diff %g from PyTorch", name, d)
	}
}

func TestGoldenRNN(t *testing.T) {
	sd := loadGolden(t)
	lstm := must(NewLSTM(3, 4, RNNOptions{NumLayers: 2, Bidirectional: true, BatchFirst: true}))
	io := loadInto(t, lstm, sd, "lstm")
	y, st := lstm.Forward(io["x"], &LSTMState{H: io["h0"], C: io["c0"]})
	near(t, "lstm out", y, io["out"], 1e-6)
	near(t, "lstm h_n", st.H, io["hn"], 1e-6)
	near(t, "lstm c_n", st.C, io["cn"], 1e-6)

	gru := must(NewGRU(3, 4, RNNOptions{NumLayers: 2, Bidirectional: true}))
	io = loadInto(t, gru, sd, "gru")
	y, hn := gru.Forward(io["x"], io["h0"])
	near(t, "gru out", y, io["out"], 1e-6)
	near(t, "gru h_n", hn, io["hn"], 1e-6)
}

func TestGoldenAttention(t *testing.T) {
	sd := loadGolden(t)
	mha := must(NewMultiheadAttention(8, 2, MultiheadAttentionOptions{BatchFirst: true}))
	io := loadInto(t, mha, sd, "mha")
	y, w := mha.Forward(io["q"], io["k"], io["v"], AttentionOptions{KeyPaddingMask: io["kpm"], AttnMask: io["am"], NeedWeights: true})
	near(t, "mha out", y, io["out"], 1e-6)
	near(t, "mha weights", w, io["w"], 1e-6)

	mkv := must(NewMultiheadAttention(6, 3, MultiheadAttentionOptions{KDim: 5, VDim: 7}))
	io = loadInto(t, mkv, sd, "mkv")
	y, w = mkv.Forward(io["q"], io["k"], io["v"], AttentionOptions{AttnMask: io["am"], NeedWeights: true, PerHeadWeights: true})
	near(t, "mkv out", y, io["out"], 1e-6)
	near(t, "mkv weights", w, io["w"], 1e-6)
}

func TestGoldenTransformerEncoderLayer(t *testing.T) {
	sd := loadGolden(t)
	for _, c := range []struct {
		name string
		o    TransformerEncoderLayerOptions
	}{
		{"enc", TransformerEncoderLayerOptions{DimFeedforward: 16, BatchFirst: true}},
		{"encpre", TransformerEncoderLayerOptions{DimFeedforward: 16, NormFirst: true, Activation: "gelu"}},
	} {
		enc := must(NewTransformerEncoderLayer(8, 2, c.o))
		io := loadInto(t, enc, sd, c.name)
		Eval(enc)
		near(t, c.name, enc.ForwardMasked(io["src"], nil, io["kpm"]), io["out"], 2e-6)
	}
}

func TestGoldenBatchNorm(t *testing.T) {
	sd := loadGolden(t)
	bn := must(NewBatchNorm2d(3, BatchNormOptions{}))
	io := loadInto(t, bn, sd, "bn")
	near(t, "bn train", bn.Forward(io["x"]), io["out_train"], 2e-6)
	near(t, "running_mean", bn.RunningMean, io["running_mean"], 1e-6)
	near(t, "running_var", bn.RunningVar, io["running_var"], 1e-6)
	if nbt := io["num_batches_tracked"]; nbt.NDim() != 0 || bn.NumBatchesTracked.NDim() != 0 || bn.NumBatchesTracked.I64()[0] != nbt.I64()[0] {
		t.Errorf("num_batches_tracked %v, PyTorch %v", bn.NumBatchesTracked, nbt)
	}
	Eval(bn)
	near(t, "bn eval", bn.Forward(io["x"]), io["out_eval"], 2e-6)
}
