package dynamic

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/quanta-go/quanta/nn"
	opsdyn "github.com/quanta-go/quanta/ops/dynamic"
	"github.com/quanta-go/quanta/tensor"
)

func TestLinearReference(t *testing.T) {
	g := tensor.NewRNG(2)
	for _, o := range refOptions {
		for _, relu := range []bool{false, true} {
			for _, shape := range [][]int{{1, 33}, {5, 33}, {2, 3, 33}, {33}} {
				name := fmt.Sprintf("%s/relu=%v/%v", optName(o), relu, shape)
				f, err := nn.NewLinear(33, 17, nn.LinearOptions{RNG: g})
				if err != nil {
					t.Fatal(err)
				}
				conv := LinearFromFloat
				if relu {
					conv = LinearReLUFromFloat
				}
				q, err := conv(f, o)
				if err != nil {
					t.Fatal(err)
				}
				if q.Float16() != o.Float16 {
					t.Fatalf("%s: Float16() = %v", name, q.Float16())
				}
				x := randT(g, 4, shape...)
				// Reference: the float Linear with dequantized weights on the
				// fake-quantized input.
				ref, _ := nn.NewLinear(33, 17, nn.LinearOptions{RNG: g})
				ref.Weight.CopyFrom(dequantize(q.Weight()))
				ref.Bias.CopyFrom(f.Bias)
				want := ref.Forward(tensor.FromFloat32(fakeQuant(t, x.F32(), o), shape...)).F32()
				if relu {
					for i, v := range want {
						want[i] = max(v, 0)
					}
				}
				ys := append(append([]int(nil), shape[:len(shape)-1]...), 17)
				if d := maxDiff(t, name, q.Forward(x), want, ys); d > refTol {
					t.Errorf("%s: differs from the reference by %g", name, d)
				}
			}
		}
	}
}

// TestFloat16Weights checks that fp16 modules hold the weights rounded to
// half and that int8 modules hold PyTorch's symmetric qint8 codes.
func TestWeightFormats(t *testing.T) {
	g := tensor.NewRNG(3)
	f, _ := nn.NewLinear(8, 4, nn.LinearOptions{RNG: g})
	f.Weight.F32()[0] = 1.0 + 1.0/4096 // not a half: rounds to 1 (tie to even)
	f.Weight.F32()[1] = 70000          // saturates to 65504
	h, err := LinearFromFloat(f, Options{Float16: true})
	if err != nil {
		t.Fatal(err)
	}
	if w := h.Weight(); w.DType() != tensor.Float32 || w.F32()[0] != 1 || w.F32()[1] != 65504 {
		t.Errorf("fp16 weights %v %v", w.DType(), w.F32()[:2])
	}
	for i, v := range h.Weight().F32() {
		if i > 1 && math.Abs(float64(v-f.Weight.F32()[i])) > 1e-3*math.Abs(float64(f.Weight.F32()[i]))+1e-7 {
			t.Errorf("fp16 weight %d: %v from %v", i, v, f.Weight.F32()[i])
		}
	}
	f.Weight.F32()[1] = 0.5
	for _, pc := range []bool{false, true} {
		q, err := LinearFromFloat(f, Options{PerChannel: pc, Rule: opsdyn.RuleTorch})
		if err != nil {
			t.Fatal(err)
		}
		w := q.Weight()
		qp := w.QParams()
		if w.DType() != tensor.QInt8 || (len(qp.Scale) == 4) != pc {
			t.Fatalf("perchannel=%v: weight %v with %d scales", pc, w.DType(), len(qp.Scale))
		}
		for r := 0; r < 4; r++ {
			s := qp.Scale[min(r, len(qp.Scale)-1)]
			for k := 0; k < 8; k++ {
				v := f.Weight.F32()[r*8+k]
				want := int8(max(-128, min(127, math.RoundToEven(float64(v*(1/s))))))
				if got := w.I8()[r*8+k]; got != want {
					t.Errorf("perchannel=%v: code [%d,%d] = %d, want %d", pc, r, k, got, want)
				}
			}
		}
	}
}

func TestCellsReference(t *testing.T) {
	g := tensor.NewRNG(4)
	for _, o := range refOptions {
		for _, B := range []int{0, 1, 3} {
			const I, H = 7, 5
			shape := []int{B, I}
			hshape := []int{B, H}
			if B == 0 { // unbatched
				shape, hshape = []int{I}, []int{H}
			}
			name := fmt.Sprintf("%s/%v", optName(o), shape)
			rows := max(B, 1)
			x := randT(g, 3, shape...)
			h0, c0 := randT(g, 0.9, hshape...), randT(g, 0.9, hshape...)
			xq, hq := fakeQuant(t, x.F32(), o), fakeQuant(t, h0.F32(), o)

			// LSTMCell.
			lf, _ := nn.NewLSTMCell(I, H, nn.CellOptions{RNG: g})
			lq, err := LSTMCellFromFloat(lf, o)
			if err != nil {
				t.Fatal(err)
			}
			st := lq.Forward(x, &nn.LSTMState{H: h0, C: c0})
			xg := matmul(xq, rows, dequantize(lq.ih.weight), lf.BiasIH)
			hg := matmul(hq, rows, dequantize(lq.hh.weight), lf.BiasHH)
			wantH, wantC := make([]float32, rows*H), make([]float32, rows*H)
			for b := 0; b < rows; b++ {
				for j := 0; j < H; j++ {
					at := func(k int) float64 { return float64(hg[b*4*H+k*H+j] + xg[b*4*H+k*H+j]) }
					c := sig64(at(1))*float64(c0.F32()[b*H+j]) + sig64(at(0))*math.Tanh(at(2))
					wantC[b*H+j], wantH[b*H+j] = float32(c), float32(sig64(at(3))*math.Tanh(c))
				}
			}
			if d := math.Max(maxDiff(t, name, st.H, wantH, hshape), maxDiff(t, name, st.C, wantC, hshape)); d > refTol {
				t.Errorf("LSTMCell %s: differs from the reference by %g", name, d)
			}

			// GRUCell.
			gf, _ := nn.NewGRUCell(I, H, nn.CellOptions{RNG: g})
			gq, err := GRUCellFromFloat(gf, o)
			if err != nil {
				t.Fatal(err)
			}
			xg = matmul(xq, rows, dequantize(gq.ih.weight), gf.BiasIH)
			hg = matmul(hq, rows, dequantize(gq.hh.weight), gf.BiasHH)
			for b := 0; b < rows; b++ {
				for j := 0; j < H; j++ {
					r := sig64(float64(hg[b*3*H+j] + xg[b*3*H+j]))
					z := sig64(float64(hg[b*3*H+H+j] + xg[b*3*H+H+j]))
					n := math.Tanh(float64(xg[b*3*H+2*H+j]) + float64(hg[b*3*H+2*H+j])*r)
					wantH[b*H+j] = float32((float64(h0.F32()[b*H+j])-n)*z + n)
				}
			}
			if d := maxDiff(t, name, gq.Forward(x, h0), wantH, hshape); d > refTol {
				t.Errorf("GRUCell %s: differs from the reference by %g", name, d)
			}

			// RNNCell, tanh and relu, without bias.
			for _, relu := range []bool{false, true} {
				rf, _ := nn.NewRNNCell(I, H, nn.CellOptions{RNG: g, ReLU: relu, NoBias: true})
				rq, err := RNNCellFromFloat(rf, o)
				if err != nil {
					t.Fatal(err)
				}
				xg = matmul(xq, rows, dequantize(rq.ih.weight), nil)
				hg = matmul(hq, rows, dequantize(rq.hh.weight), nil)
				for i := range wantH {
					v := float64(hg[i] + xg[i])
					if relu {
						wantH[i] = float32(max(v, 0))
					} else {
						wantH[i] = float32(math.Tanh(v))
					}
				}
				if d := maxDiff(t, name, rq.Forward(x, h0), wantH, hshape); d > refTol {
					t.Errorf("RNNCell relu=%v %s: differs from the reference by %g", relu, name, d)
				}
			}
		}
	}
}

// TestStateDictRoundTrip saves converted modules to a safetensors file and
// loads them into modules converted from other float weights: the loaded
// modules must compute exactly what the saved ones did.
func TestStateDictRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, o := range []Options{{Rule: opsdyn.RuleTorch}, {Rule: opsdyn.RuleTorch, PerChannel: true}, {Float16: true}} {
		name := optName(o)
		build := func(seed uint64) (*testNet, error) {
			g := tensor.NewRNG(seed)
			fl, _ := nn.NewLSTM(6, 5, nn.RNNOptions{NumLayers: 2, Bidirectional: true, RNG: g})
			fc, _ := nn.NewLinear(10, 3, nn.LinearOptions{RNG: g})
			fcell, _ := nn.NewGRUCell(3, 4, nn.CellOptions{RNG: g})
			n := &testNet{}
			var err error
			if n.LSTM, err = LSTMFromFloat(fl, o); err != nil {
				return nil, err
			}
			if n.FC, err = LinearReLUFromFloat(fc, o); err != nil {
				return nil, err
			}
			if n.Cell, err = GRUCellFromFloat(fcell, o); err != nil {
				return nil, err
			}
			return n, nil
		}
		a, err := build(10)
		if err != nil {
			t.Fatal(err)
		}
		b, err := build(11)
		if err != nil {
			t.Fatal(err)
		}
		x := randT(tensor.NewRNG(12), 2, 4, 2, 6)
		want := a.forward(x)
		if d := maxDiff(t, name, b.forward(x), want.F32(), want.Shape()); d == 0 {
			t.Fatalf("%s: differently initialized models agree", name)
		}
		sd := nn.StateDict(a)
		for k, v := range sd {
			if want := tensor.QInt8; !o.Float16 && v.NDim() == 2 && v.DType() != want {
				t.Errorf("%s: %s is %v, want %v", name, k, v.DType(), want)
			}
		}
		path := filepath.Join(dir, "model.safetensors")
		if err := nn.SaveFile(path, sd); err != nil {
			t.Fatal(err)
		}
		loaded, err := nn.LoadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := LoadStateDict(b, loaded); err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(t, name, b.forward(x), want.F32(), want.Shape()); d != 0 {
			t.Errorf("%s: reloaded model differs by %g", name, d)
		}
		// The reloaded weights carry the saved qparams.
		for k, v := range nn.StateDict(b) {
			if v.DType() == tensor.QInt8 && v.QParams().Scale[0] != sd[k].QParams().Scale[0] {
				t.Errorf("%s: %s scale %v, saved %v", name, k, v.QParams().Scale[0], sd[k].QParams().Scale[0])
			}
		}
	}
}

type testNet struct {
	nn.Base
	LSTM *LSTM    `nn:"lstm"`
	FC   *Linear  `nn:"fc"`
	Cell *GRUCell `nn:"cell"`
}

func (n *testNet) forward(x *tensor.Tensor) *tensor.Tensor {
	y, _ := n.LSTM.Forward(x, nil)
	z := n.FC.Forward(y)                        // [4, 2, 3]
	return n.Cell.Forward(z.Reshape(8, 3), nil) // [8, 4]
}

// TestNoPerStepAllocations checks that the recurrent modules allocate
// nothing of their own per time step: the extra allocations of 30 more
// steps are exactly those of the 30 extra hidden products in ops/dynamic
// (whose kernels allocate a few small objects per call, but no storage).
func TestNoPerStepAllocations(t *testing.T) {
	for _, o := range []Options{{Rule: opsdyn.RuleTorch}, {Float16: true}} {
		g := tensor.NewRNG(5)
		f, _ := nn.NewLSTM(16, 16, nn.RNNOptions{RNG: g})
		q, err := LSTMFromFloat(f, o)
		if err != nil {
			t.Fatal(err)
		}
		gf, _ := nn.NewGRU(16, 16, nn.RNNOptions{RNG: g})
		qg, err := GRUFromFloat(gf, o)
		if err != nil {
			t.Fatal(err)
		}
		hh := q.hh[0][0]
		h, y := make([]float32, 16), make([]float32, 64)
		ht, yt := hh.view(h, 1, 16), hh.view(y, 1, 64)
		perProduct := testing.AllocsPerRun(10, func() { hh.rows(1, h, ht, y, yt) })
		allocs := func(T int) (float64, float64) {
			x := randT(g, 1, T, 1, 16)
			a := testing.AllocsPerRun(5, func() { q.Forward(x, nil) })
			b := testing.AllocsPerRun(5, func() { qg.Forward(x, nil) })
			return a, b
		}
		a2, b2 := allocs(2)
		a32, b32 := allocs(32)
		if a32-a2 != 30*perProduct || b32-b2 != 30*perProduct {
			t.Errorf("%s: allocations LSTM %v (T=2) vs %v (T=32), GRU %v vs %v; %v per hidden product",
				optName(o), a2, a32, b2, b32, perProduct)
		}
	}
}

// TestErrors checks that bad configurations and inputs are refused.
func TestErrors(t *testing.T) {
	g := tensor.NewRNG(6)
	f, _ := nn.NewLinear(4, 3, nn.LinearOptions{RNG: g})
	if _, err := LinearFromFloat(f, Options{Rule: opsdyn.Rule(9)}); err == nil {
		t.Error("unknown rule accepted")
	}
	if _, err := LinearFromFloat(nil, Options{}); err == nil {
		t.Error("nil module accepted")
	}
	f.Weight.F32()[0] = float32(math.NaN())
	if _, err := LinearFromFloat(f, Options{}); err == nil {
		t.Error("NaN weight accepted")
	}
	f.Weight.F32()[0] = 0
	q, err := LinearFromFloat(f, Options{Rule: opsdyn.RuleTorch})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []*tensor.Tensor{tensor.Zeros(2, 5), tensor.FromFloat32([]float32{1, float32(math.Inf(1)), 0, 0}, 1, 4)} {
		func() {
			defer func() {
				if r := recover(); r == nil {
					t.Errorf("input %v: no panic", x.Shape())
				}
			}()
			q.Forward(x)
		}()
	}
	lf, _ := nn.NewLSTM(4, 3, nn.RNNOptions{RNG: g})
	lq, _ := LSTMFromFloat(lf, Options{Rule: opsdyn.RuleTorch})
	sd := nn.StateDict(lq)
	delete(sd, "bias_hh_l0")
	if err := LoadStateDict(lq, sd); err == nil {
		t.Error("state dict without bias_hh_l0 accepted")
	}
	// A checkpoint with a bad weight scale is refused before anything is
	// copied: the model computes what it did.
	x := randT(g, 1, 3, 1, 4)
	before, _ := lq.Forward(x, nil)
	lf2, _ := nn.NewLSTM(4, 3, nn.RNNOptions{RNG: g})
	lq2, _ := LSTMFromFloat(lf2, Options{Rule: opsdyn.RuleTorch})
	sd = nn.StateDict(lq2)
	bad := sd["weight_hh_l0"].Clone()
	qp := bad.QParams().Clone()
	qp.Scale[0] = -1
	bad.SetQParams(qp)
	sd["weight_hh_l0"] = bad
	if err := LoadStateDict(lq, sd); err == nil {
		t.Error("negative weight scale accepted")
	}
	after, _ := lq.Forward(x, nil)
	if d := maxDiff(t, "after a failed load", after, before.F32(), before.Shape()); d != 0 {
		t.Errorf("a failed load changed the model (%g)", d)
	}
}
