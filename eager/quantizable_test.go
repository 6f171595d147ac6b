package eager

import (
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/tensor"
)

// lstmNet is QuantStub -> LSTM -> DeQuantStub, as a PyTorch user writes a
// model for eager static quantization.
type lstmNet struct {
	nn.Base
	Quant   nn.Layer `nn:"quant"`
	RNN     lstmLike `nn:"rnn"`
	DeQuant nn.Layer `nn:"dequant"`
}

// quantized runs the model up to the LSTM's output (quint8 once converted).
func (n *lstmNet) quantized(x *tensor.Tensor) (*tensor.Tensor, nn.LSTMState) {
	return n.RNN.Forward(n.Quant.Forward(x), nil)
}

func (n *lstmNet) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(n, x, func(x *tensor.Tensor) *tensor.Tensor {
		y, _ := n.quantized(x)
		return n.DeQuant.Forward(y)
	})
}

func newLSTMNet(t testing.TB, in, hidden int, o nn.RNNOptions) *lstmNet {
	t.Helper()
	rnn, err := nn.NewLSTM(in, hidden, o)
	must(t, err)
	m := &lstmNet{Quant: nn.NewQuantStub(nil), RNN: rnn, DeQuant: nn.NewDeQuantStub(nil)}
	nn.AssignPaths(m)
	return m
}

// attnNet is QuantStub -> self-attention -> DeQuantStub.
type attnNet struct {
	nn.Base
	Quant   nn.Layer     `nn:"quant"`
	Attn    nn.Attention `nn:"attn"`
	DeQuant nn.Layer     `nn:"dequant"`
	// Mask is passed to every call.
	Mask *tensor.Tensor `nn:"-"`
}

func (n *attnNet) quantized(x *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	q := n.Quant.Forward(x)
	return n.Attn.Forward(q, q, q, nn.AttentionOptions{NeedWeights: true, KeyPaddingMask: n.Mask})
}

func (n *attnNet) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(n, x, func(x *tensor.Tensor) *tensor.Tensor {
		y, _ := n.quantized(x)
		return n.DeQuant.Forward(y)
	})
}

func TestQuantizeLSTMStatic(t *testing.T) {
	configs := []struct {
		name  string
		o     nn.RNNOptions
		shape []int
	}{
		{"one layer", nn.RNNOptions{}, []int{12, 4, 8}},
		{"two layers bidirectional batch first", nn.RNNOptions{NumLayers: 2, Bidirectional: true, BatchFirst: true}, []int{4, 12, 8}},
	}
	for _, cfg := range configs {
		for _, engine := range []string{"qnnpack", "x86"} {
			t.Run(cfg.name+"/"+engine, func(t *testing.T) {
				cfg.o.RNG = tensor.NewRNG(3)
				m := newLSTMNet(t, 8, 16, cfg.o)
				nn.Eval(m)
				x := tensor.Randn(tensor.NewRNG(9), cfg.shape...)
				var want *tensor.Tensor
				var wantS nn.LSTMState
				autograd.NoGrad(func() {
					want = m.Forward(x)
					_, wantS = m.quantized(x)
				})

				qc, err := quant.DefaultQConfig(engine)
				must(t, err)
				SetQConfig(m, qc)
				must(t, Prepare(m, Options{}))
				if got := typeAt(t, m, "rnn"); got != "quantizable.LSTM" {
					t.Fatalf("rnn is %s after Prepare, want quantizable.LSTM", got)
				}
				cell := "rnn.layers.0.layer_fw.cell."
				for _, p := range []string{"igates", "hgates", "gates", "fgate_cx", "ogate_cy"} {
					part, err := nn.Get(m, cell+p)
					must(t, err)
					if _, ok := part.ModuleBase().ActivationPostProcess.(*ObserverModule); !ok {
						t.Errorf("%s has no observer after Prepare", cell+p)
					}
				}
				autograd.NoGrad(func() {
					g := tensor.NewRNG(11)
					for i := 0; i < 6; i++ {
						m.Forward(tensor.Randn(g, cfg.shape...))
					}
					m.Forward(x)
				})
				must(t, Convert(m, Options{}))
				for path, typ := range map[string]string{
					"quant": "quantized.Quantize", "rnn": "quantizable.LSTM", "dequant": "quantized.DeQuantize",
					cell + "igates": "quantized.Linear", cell + "hgates": "quantized.Linear",
					cell + "gates": "quantized.QFunctional", cell + "fgate_cx": "quantized.QFunctional",
					cell + "igate_cgate": "quantized.QFunctional", cell + "fgate_cx_igate_cgate": "quantized.QFunctional",
					cell + "ogate_cy": "quantized.QFunctional", cell + "input_gate": "Sigmoid", cell + "tanh_cy": "Tanh",
				} {
					if got := typeAt(t, m, path); got != typ {
						t.Errorf("%s: %s after Convert, want %s", path, got, typ)
					}
				}
				if cfg.o.Bidirectional {
					if got := typeAt(t, m, "rnn.layers.1.layer_bw.cell.hgates"); got != "quantized.Linear" {
						t.Errorf("reverse cell of layer 1: hgates is %s", got)
					}
				}
				var got, yq *tensor.Tensor
				var st nn.LSTMState
				autograd.NoGrad(func() {
					got = m.Forward(x)
					yq, st = m.quantized(x)
				})
				if yq.DType() != tensor.QUInt8 || st.H.DType() != tensor.QUInt8 || st.C.DType() != tensor.QUInt8 {
					t.Errorf("converted LSTM returns %v output, %v/%v states; want quint8", yq.DType(), st.H.DType(), st.C.DType())
				}
				if got.DType() != tensor.Float32 || !tensor.SameShape(got.Shape(), want.Shape()) {
					t.Fatalf("output %v %v, want float32 %v", got.DType(), got.Shape(), want.Shape())
				}
				if !cfg.o.Bidirectional {
					// Streaming: the second half of the sequence from the
					// first half's (quint8) final state gives the codes of
					// one pass over the whole sequence. With one layer the
					// state is the cells' own output, not re-joined.
					checkStreaming(t, m, x, yq, cfg.o.NumLayers <= 1)
				}
				s := sqnr(got, want)
				sh, sc := sqnr(ops.Dequantize(st.H), wantS.H), sqnr(ops.Dequantize(st.C), wantS.C)
				t.Logf("int8 LSTM vs float: SQNR output %.1f dB, h_n %.1f dB, c_n %.1f dB", s, sh, sc)
				if s < 20 || sh < 20 || sc < 20 {
					t.Errorf("SQNR output %.1f dB, h_n %.1f dB, c_n %.1f dB; want >= 20", s, sh, sc)
				}
			})
		}
	}
}

func TestQuantizeMultiheadAttentionStatic(t *testing.T) {
	pad := tensor.New(tensor.Bool, 3, 6)
	pad.Bools()[5], pad.Bools()[10], pad.Bools()[11] = true, true, true
	for _, mask := range []*tensor.Tensor{nil, pad} {
		for _, engine := range []string{"qnnpack", "x86"} {
			name := engine
			if mask != nil {
				name += "/key padding mask"
			}
			t.Run(name, func(t *testing.T) {
				attn, err := nn.NewMultiheadAttention(16, 4, nn.MultiheadAttentionOptions{RNG: tensor.NewRNG(4)})
				must(t, err)
				// Non-zero projection biases, as after training.
				copy(attn.InProjBias.F32(), tensor.Randn(tensor.NewRNG(5), 48).F32())
				m := &attnNet{Quant: nn.NewQuantStub(nil), Attn: attn, DeQuant: nn.NewDeQuantStub(nil), Mask: mask}
				nn.AssignPaths(m)
				nn.Eval(m)
				x := tensor.Randn(tensor.NewRNG(6), 6, 3, 16)
				var want, wantW *tensor.Tensor
				autograd.NoGrad(func() {
					want = m.Forward(x)
					_, wantW = m.quantized(x)
				})
				qc, err := quant.DefaultQConfig(engine)
				must(t, err)
				SetQConfig(m, qc)
				must(t, Prepare(m, Options{}))
				if got := typeAt(t, m, "attn"); got != "quantizable.MultiheadAttention" {
					t.Fatalf("attn is %s after Prepare, want quantizable.MultiheadAttention", got)
				}
				autograd.NoGrad(func() {
					g := tensor.NewRNG(7)
					for i := 0; i < 6; i++ {
						m.Forward(tensor.Randn(g, 6, 3, 16))
					}
					m.Forward(x)
				})
				must(t, Convert(m, Options{}))
				for path, typ := range map[string]string{
					"attn.linear_Q": "quantized.Linear", "attn.linear_K": "quantized.Linear", "attn.linear_V": "quantized.Linear",
					"attn.out_proj": "quantized.Linear", "attn.q_scaling_product": "quantized.QFunctional",
					"attn.quant_attn_output": "quantized.Quantize", "attn.quant_attn_output_weights": "quantized.Quantize",
					"attn.dequant_q": "quantized.DeQuantize", "attn.dequant_k": "quantized.DeQuantize", "attn.dequant_v": "quantized.DeQuantize",
				} {
					if got := typeAt(t, m, path); got != typ {
						t.Errorf("%s: %s after Convert, want %s", path, got, typ)
					}
				}
				var got, yq, w *tensor.Tensor
				autograd.NoGrad(func() {
					got = m.Forward(x)
					yq, w = m.quantized(x)
				})
				if yq.DType() != tensor.QUInt8 || w.DType() != tensor.QUInt8 {
					t.Fatalf("converted attention returns %v output and %v weights, want quint8", yq.DType(), w.DType())
				}
				s, sw := sqnr(got, want), sqnr(ops.Dequantize(w), wantW)
				t.Logf("int8 attention vs float: SQNR output %.1f dB, weights %.1f dB", s, sw)
				if s < 20 || sw < 20 {
					t.Errorf("SQNR output %.1f dB, weights %.1f dB; want >= 20", s, sw)
				}
			})
		}
	}
}

// checkStreaming runs the converted model over x in two halves, passing
// the final state on, and compares with whole, the output of one pass:
// codes must be equal when exact, else close.
func checkStreaming(t *testing.T, m *lstmNet, x, whole *tensor.Tensor, exact bool) {
	t.Helper()
	T := x.Dim(0)
	var a, b *tensor.Tensor
	autograd.NoGrad(func() {
		var st nn.LSTMState
		a, st = m.RNN.Forward(m.Quant.Forward(ops.Narrow(x, 0, 0, T/2)), nil)
		b, _ = m.RNN.Forward(m.Quant.Forward(ops.Narrow(x, 0, T/2, T-T/2)), &st)
	})
	got := ops.Concat([]*tensor.Tensor{a, b}, 0)
	diff := 0
	for i, c := range got.U8() {
		if c != whole.U8()[i] {
			diff++
		}
	}
	if exact && diff != 0 {
		t.Errorf("streaming in two halves: %d of %d codes differ from one pass", diff, got.Numel())
	}
	if s := sqnr(ops.Dequantize(got), ops.Dequantize(whole)); !exact && s < 30 {
		t.Errorf("streaming in two halves: SQNR %.1f dB against one pass", s)
	}
}

// cellNet runs an LSTMCell over the steps of a sequence between stubs.
type cellNet struct {
	nn.Base
	Quant nn.Layer `nn:"quant"`
	Cell  interface {
		nn.Module
		Forward(x *tensor.Tensor, s *nn.LSTMState) nn.LSTMState
	} `nn:"cell"`
	DeQuant nn.Layer `nn:"dequant"`
}

func (n *cellNet) Forward(x *tensor.Tensor) *tensor.Tensor {
	var st *nn.LSTMState
	var hs []*tensor.Tensor
	for t := 0; t < x.Dim(0); t++ {
		s := n.Cell.Forward(n.Quant.Forward(ops.Reshape(ops.Narrow(x, 0, t, 1), x.Dim(1), x.Dim(2))), st)
		st = &s
		hs = append(hs, n.DeQuant.Forward(s.H))
	}
	return ops.Stack(hs, 0)
}

func TestQuantizeLSTMCellStatic(t *testing.T) {
	cell, err := nn.NewLSTMCell(8, 16, nn.CellOptions{RNG: tensor.NewRNG(8)})
	must(t, err)
	m := &cellNet{Quant: nn.NewQuantStub(nil), Cell: cell, DeQuant: nn.NewDeQuantStub(nil)}
	nn.AssignPaths(m)
	nn.Eval(m)
	x := tensor.Randn(tensor.NewRNG(9), 10, 4, 8)
	var want, got *tensor.Tensor
	autograd.NoGrad(func() { want = m.Forward(x) })
	qc, err := quant.DefaultQConfig("qnnpack")
	must(t, err)
	must(t, Quantize(m, func(p nn.Module) error {
		autograd.NoGrad(func() {
			g := tensor.NewRNG(10)
			for i := 0; i < 4; i++ {
				p.(*cellNet).Forward(tensor.Randn(g, 10, 4, 8))
			}
		})
		return nil
	}, Options{Mapping: quant.NewQConfigMapping().SetGlobal(qc)}))
	if typ := typeAt(t, m, "cell"); typ != "quantizable.LSTMCell" {
		t.Fatalf("cell is %s, want quantizable.LSTMCell", typ)
	}
	if typ := typeAt(t, m, "cell.hgates"); typ != "quantized.Linear" {
		t.Errorf("cell.hgates is %s, want quantized.Linear", typ)
	}
	autograd.NoGrad(func() { got = m.Forward(x) })
	s := sqnr(got, want)
	t.Logf("int8 LSTMCell vs float: SQNR %.1f dB", s)
	if s < 20 {
		t.Errorf("SQNR %.1f dB, want >= 20", s)
	}
}
