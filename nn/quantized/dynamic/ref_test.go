package dynamic

import (
	"fmt"
	"math"
	"testing"

	"github.com/quanta-go/quanta/nn"
	opsdyn "github.com/quanta-go/quanta/ops/dynamic"
	"github.com/quanta-go/quanta/tensor"
)

// The tests of this file compare every module with a reference built from
// its float module: the weights replaced by the module's dequantized int8
// values (or its half-rounded values), the activations fake-quantized with
// PyTorch's rule exactly where the dynamic kernels quantize them (the whole
// layer input once, the hidden state at every step), products and gates
// computed in float64 by naive loops.

const refTol = 1e-5

// dequantize returns the float values of a qint8 weight, or a float32
// weight itself (fp16 modules keep half values as float32).
func dequantize(w *tensor.Tensor) *tensor.Tensor {
	if w.DType() == tensor.Float32 {
		return w.Clone()
	}
	q := w.QParams()
	out, in := w.Dim(0), w.Dim(1)
	v := make([]float32, out*in)
	for r := 0; r < out; r++ {
		c := 0
		if len(q.Scale) > 1 {
			c = r
		}
		for k := 0; k < in; k++ {
			v[r*in+k] = float32(int32(w.I8()[r*in+k])-q.ZeroPoint[c]) * q.Scale[c]
		}
	}
	return tensor.FromFloat32(v, out, in)
}

// fakeQuant returns x quantized to quint8 with the qparams rule gives all
// of x, dequantized; fp16 modules leave activations float.
func fakeQuant(t *testing.T, x []float32, o Options) []float32 {
	t.Helper()
	if o.Float16 {
		return append([]float32(nil), x...)
	}
	q, err := opsdyn.QuantizeDynamic(tensor.FromFloat32(append([]float32(nil), x...)), o.Rule)
	if err != nil {
		t.Fatal(err)
	}
	p := q.QParams()
	out := make([]float32, len(x))
	for i, c := range q.U8() {
		out[i] = float32(int32(c)-p.ZeroPoint[0]) * p.Scale[0]
	}
	return out
}

// matmul returns x [m, in] · wᵀ + b in float64, rounded to float32.
func matmul(x []float32, m int, w, b *tensor.Tensor) []float32 {
	out, in := w.Dim(0), w.Dim(1)
	y := make([]float32, m*out)
	for i := 0; i < m; i++ {
		for j := 0; j < out; j++ {
			s := 0.0
			if b != nil {
				s = float64(b.F32()[j])
			}
			for k := 0; k < in; k++ {
				s += float64(x[i*in+k]) * float64(w.F32()[j*in+k])
			}
			y[i*out+j] = float32(s)
		}
	}
	return y
}

func sig64(v float64) float64 { return 1 / (1 + math.Exp(-v)) }

// refRNN runs an LSTM (gates 4) or GRU (gates 3) over seq [T, B, I] from
// h (and c) [L*D, B, H] with the weights of f, updating h and c and
// returning the top layer's output [T, B, D*H].
func refRNN(t *testing.T, f *nn.RNNBase, gates int, seq []float32, T, B int, h, c []float32, o Options) []float32 {
	H := f.HiddenSize
	D := 1
	if f.Bidirectional {
		D = 2
	}
	in := seq
	var out []float32
	for l := 0; l < f.NumLayers; l++ {
		out = make([]float32, T*B*D*H)
		F := len(in) / max(T*B, 1)
		xq := fakeQuant(t, in, o)
		for d := 0; d < D; d++ {
			wih, whh, bih, bhh := f.Weights(l, d)
			xg := matmul(xq, T*B, wih, bih)
			_ = F
			k := l*D + d
			hk := h[k*B*H : (k+1)*B*H]
			for s := 0; s < T; s++ {
				tt := s
				if d == 1 {
					tt = T - 1 - s
				}
				hg := matmul(fakeQuant(t, hk, o), B, whh, bhh)
				for b := 0; b < B; b++ {
					x := xg[(tt*B+b)*gates*H:]
					hr := hg[b*gates*H:]
					for j := 0; j < H; j++ {
						if gates == 4 {
							ck := c[k*B*H:]
							i := sig64(float64(hr[j] + x[j]))
							fg := sig64(float64(hr[H+j] + x[H+j]))
							g := math.Tanh(float64(hr[2*H+j] + x[2*H+j]))
							og := sig64(float64(hr[3*H+j] + x[3*H+j]))
							cv := fg*float64(ck[b*H+j]) + i*g
							ck[b*H+j] = float32(cv)
							hk[b*H+j] = float32(og * math.Tanh(cv))
						} else {
							r := sig64(float64(hr[j] + x[j]))
							z := sig64(float64(hr[H+j] + x[H+j]))
							n := math.Tanh(float64(x[2*H+j]) + float64(hr[2*H+j])*r)
							hk[b*H+j] = float32((float64(hk[b*H+j])-n)*z + n)
						}
					}
				}
				for b := 0; b < B; b++ {
					copy(out[(tt*B+b)*D*H+d*H:], hk[b*H:(b+1)*H])
				}
			}
		}
		in = out
	}
	return out
}

// dequantizedRNN returns a float copy of q's float module with its weights
// replaced by q's dequantized ones.
func dequantizedRNN(t *testing.T, f *nn.RNNBase, q *rnn) *nn.RNNBase {
	sd := nn.StateDict(q)
	for k, v := range sd {
		if v.NDim() == 2 {
			sd[k] = dequantize(v)
		}
	}
	var g nn.Module
	o := nn.RNNOptions{NumLayers: f.NumLayers, Bidirectional: f.Bidirectional, BatchFirst: f.BatchFirst, NoBias: !f.HasBias}
	if q.gates == 4 {
		m, err := nn.NewLSTM(f.InputSize, f.HiddenSize, o)
		if err != nil {
			t.Fatal(err)
		}
		g = m
	} else {
		m, err := nn.NewGRU(f.InputSize, f.HiddenSize, o)
		if err != nil {
			t.Fatal(err)
		}
		g = m
	}
	if err := nn.LoadStateDict(g, sd); err != nil {
		t.Fatal(err)
	}
	if m, ok := g.(*nn.LSTM); ok {
		return &m.RNNBase
	}
	return &g.(*nn.GRU).RNNBase
}

func randT(g *tensor.RNG, scale float32, shape ...int) *tensor.Tensor {
	return tensor.RandUniform(g, -scale, scale, shape...)
}

var refOptions = []Options{
	{Rule: opsdyn.RuleTorch},
	{Rule: opsdyn.RuleTorchReduceRange},
	{Rule: opsdyn.RuleTorch, PerChannel: true},
	{Rule: opsdyn.RuleTorchReduceRange, PerChannel: true},
	{Rule: opsdyn.RuleONNX},
	{Float16: true},
}

func optName(o Options) string {
	if o.Float16 {
		return "fp16"
	}
	return fmt.Sprintf("%v/perchannel=%v", o.Rule, o.PerChannel)
}

func TestLSTMGRUReference(t *testing.T) {
	g := tensor.NewRNG(1)
	for _, o := range refOptions {
		for _, cfg := range []struct {
			layers            int
			bidir, batchFirst bool
			noBias, unbatched bool
			T, B, I, H        int
		}{
			{1, false, false, false, false, 5, 2, 7, 6},
			{2, true, true, false, false, 6, 3, 4, 5},
			{3, true, false, true, false, 4, 1, 9, 8},
			{2, false, false, false, true, 7, 1, 5, 3},
		} {
			for _, gates := range []int{4, 3} {
				name := fmt.Sprintf("%s/gates=%d/%+v", optName(o), gates, cfg)
				ro := nn.RNNOptions{NumLayers: cfg.layers, Bidirectional: cfg.bidir, BatchFirst: cfg.batchFirst, NoBias: cfg.noBias, RNG: g}
				D := 1
				if cfg.bidir {
					D = 2
				}
				xs := []int{cfg.T, cfg.B, cfg.I}
				hs := []int{cfg.layers * D, cfg.B, cfg.H}
				switch {
				case cfg.unbatched:
					xs, hs = []int{cfg.T, cfg.I}, []int{cfg.layers * D, cfg.H}
				case cfg.batchFirst:
					xs = []int{cfg.B, cfg.T, cfg.I}
				}
				x := randT(g, 3, xs...)
				h0, c0 := randT(g, 0.8, hs...), randT(g, 0.8, hs...)
				// The reference works on [T, B, I].
				seq := x.F32()
				if cfg.batchFirst {
					seq = transposeTB(seq, cfg.B, cfg.T, cfg.I)
				}
				h, c := append([]float32(nil), h0.F32()...), append([]float32(nil), c0.F32()...)
				var out, hn, cn *tensor.Tensor
				var want []float32
				var fd *nn.RNNBase
				if gates == 4 {
					f, err := nn.NewLSTM(cfg.I, cfg.H, ro)
					if err != nil {
						t.Fatal(err)
					}
					q, err := LSTMFromFloat(f, o)
					if err != nil {
						t.Fatal(err)
					}
					var st nn.LSTMState
					out, st = q.Forward(x, &nn.LSTMState{H: h0, C: c0})
					hn, cn = st.H, st.C
					fd = dequantizedRNN(t, &f.RNNBase, &q.rnn)
					want = refRNN(t, fd, 4, seq, cfg.T, cfg.B, h, c, o)
				} else {
					f, err := nn.NewGRU(cfg.I, cfg.H, ro)
					if err != nil {
						t.Fatal(err)
					}
					q, err := GRUFromFloat(f, o)
					if err != nil {
						t.Fatal(err)
					}
					out, hn = q.Forward(x, h0)
					fd = dequantizedRNN(t, &f.RNNBase, &q.rnn)
					want = refRNN(t, fd, 3, seq, cfg.T, cfg.B, h, nil, o)
				}
				if cfg.batchFirst {
					want = transposeTB(want, cfg.T, cfg.B, D*cfg.H)
				}
				if !o.Float16 {
					// The same reference without activation quantization is
					// far off: the activations really are quantized.
					hu, cu := append([]float32(nil), h0.F32()...), append([]float32(nil), c0.F32()...)
					if gates == 3 {
						cu = nil
					}
					unq := refRNN(t, fd, gates, seq, cfg.T, cfg.B, hu, cu, Options{Float16: true})
					if cfg.batchFirst {
						unq = transposeTB(unq, cfg.T, cfg.B, D*cfg.H)
					}
					if d := maxDiff(t, name, tensor.FromFloat32(want, len(want)), unq, []int{len(want)}); d < 1e-4 {
						t.Errorf("%s: float activations give the same outputs (%g): the test cannot see activation quantization", name, d)
					}
				}
				ys := append(append([]int(nil), xs[:len(xs)-1]...), D*cfg.H)
				if d := maxDiff(t, name+" output", out, want, ys); d > refTol {
					t.Errorf("%s: output differs from the reference by %g", name, d)
				}
				if d := maxDiff(t, name+" h_n", hn, h, hs); d > refTol {
					t.Errorf("%s: h_n differs from the reference by %g", name, d)
				}
				if cn != nil {
					if d := maxDiff(t, name+" c_n", cn, c, hs); d > refTol {
						t.Errorf("%s: c_n differs from the reference by %g", name, d)
					}
				}
			}
		}
	}
}
